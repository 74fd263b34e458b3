"""Texts of the demo worlds: templates, personal messages, customer messages, comments.

Two kinds of outbound text are planted (DESIGN.md §5.6):

* **templated** — one of the :class:`Template` patterns with slots (``{first}``,
  ``{ref}``, ``{amount}``...) filled in. Rendering loops over templates, never
  over rows: each template's rows are joined column-wise with Arrow.
* **personal** — composed per message from many independent phrase fragments
  (greeting, empathy, what I did, a specific detail, closing, sign-off), each
  fragment itself built from two or three sub-phrases, so that two personal
  messages sharing more than a few words is rare: no two are near-duplicates
  the way two instances of a template are.

Agents who beg for scores append one of :data:`BEGGING_SENTENCES`, each of which
contains one of :data:`BEGGING_PHRASES` (lower case).
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.common import I64, join, labels

# --------------------------------------------------------------------------- templates


@dataclass(frozen=True)
class Template:
    """An outbound message pattern; ``{slot}`` fields are filled per message.

    ``id_share`` is the share of its messages that carry ``template_id`` in the
    data (the rest must be recognised from the text alone).
    """

    key: str
    pattern: str
    id_share: float = 0.0

    @property
    def template_id(self) -> str:
        return f"tpl_{self.key}"

    @property
    def slots(self) -> list[str]:
        return [f for _, f, _, _ in string.Formatter().parse(self.pattern) if f]

    def pieces(self) -> list[tuple[str, str | None]]:
        return [(lit, f) for lit, f, _, _ in string.Formatter().parse(self.pattern)]


def render(tpl: Template, slots: Mapping[str, pa.Array], n: int) -> pa.Array:
    """Fill ``tpl`` for ``n`` rows from the slot arrays."""
    parts: list[object] = []
    for lit, field in tpl.pieces():
        if lit:
            parts.append(lit)
        if field:
            parts.append(slots[field])
    if not any(isinstance(p, pa.Array) for p in parts):
        return pa.array([tpl.pattern] * n, pa.string())
    return join(*parts)


def render_many(
    templates: Sequence[Template], which: np.ndarray, slots: Mapping[str, pa.Array]
) -> pa.Array:
    """Row ``i`` is ``templates[which[i]]`` filled from row ``i`` of the slots."""
    n = len(which)
    if n == 0:
        return pa.array([], pa.string())
    order_parts, text_parts = [], []
    for k, tpl in enumerate(templates):
        rows = np.flatnonzero(which == k)
        if len(rows) == 0:
            continue
        idx = pa.array(rows)
        sub = {s: slots[s].take(idx) for s in tpl.slots}
        text_parts.append(render(tpl, sub, len(rows)))
        order_parts.append(rows)
    order = np.concatenate(order_parts)
    inverse = np.empty(n, dtype=I64)
    inverse[order] = np.arange(n, dtype=I64)
    return pa.concat_arrays(text_parts).take(pa.array(inverse))


def pick(rng: np.random.Generator, pool: Sequence[str], n: int) -> pa.Array:
    """``n`` uniform draws from a pool of phrases."""
    return labels(pool, rng.integers(0, len(pool), n))


# --------------------------------------------------------------------------- shared templates

ACK = Template(
    "ack",
    "Hi {first}, thanks for getting in touch. Your reference is {ref}. "
    "We aim to reply within two working days.",
    0.5,
)
BOT_HELLO = Template(
    "bot_hello",
    "Hi {first}! I'm Sam, the virtual assistant. I'm finding someone from the team "
    "to help with {topic} - it won't be long.",
    0.5,
)
TRANSFER = Template(
    "transfer",
    "Thanks {first}. I'm passing {ref} to our {team} team, who can help with {topic}.",
    0.0,
)
REPLY_CANNED = (
    Template(
        "reply_resolved",
        "Dear {first}, thank you for contacting us about {topic}. We have looked into "
        "this and the matter is now resolved. Reference: {ref}. Kind regards, {agent}",
        0.2,
    ),
    Template(
        "reply_update",
        "Hello {first}, thanks for your message regarding {topic}. We are looking into "
        "it and will update you shortly. Your reference is {ref}. Regards, {agent}",
        0.2,
    ),
    Template(
        "reply_info",
        "Hi {first}, thanks for reaching out about {topic}. You can find more "
        "information in the help centre. If you need anything else, just reply to "
        "this message quoting {ref}. {agent}",
        0.2,
    ),
    Template(
        "reply_sorry",
        "Dear {first}, we are sorry to hear about {topic}. Your case {ref} has been "
        "passed to the relevant team. Thank you for your patience. {agent}",
        0.2,
    ),
)
APOLOGY_CANNED = Template(
    "apology",
    "Dear {first}, we are sorry we did not do what we said by {date}. As a gesture "
    "of goodwill we have added a credit to your account. Reference {ref}.",
    0.3,
)
PENDING_ASK = Template(
    "pending_ask",
    "Hi {first}, to finish {ref} we need one more detail from you. Please reply with it "
    "when you can; the work is on hold until then.",
    0.5,
)
RESUMED = Template(
    "resumed",
    "Thanks {first}, we have what we needed for {ref} and the work has resumed.",
    0.5,
)
SURVEY_INVITE = {
    "nps": Template(
        "invite_nps",
        "Hi {first}, how likely are you to recommend us to a friend or colleague? "
        "Tell us in one click (ref {ref}).",
        0.6,
    ),
    "csat": Template(
        "invite_csat",
        "Hi {first}, how satisfied were you with {ref}? Rate us from 1 to 5.",
        0.6,
    ),
    "ces": Template(
        "invite_ces",
        "Hi {first}, how easy was it to get {ref} sorted? One question, ten seconds.",
        0.6,
    ),
    "audit": Template(
        "invite_audit",
        "Hello {first}, we ask a random sample of customers about their recent "
        "contact with us. Would you share your view on {ref}?",
        0.6,
    ),
}

# --------------------------------------------------------------------------- begging

#: Core phrases of score begging; every begging sentence contains one (lower case).
BEGGING_PHRASES = ("rate me 10", "only 9s and 10s count", "tell me first if it's not a 10")

BEGGING_SENTENCES = (
    " You'll get a short survey - please rate me 10!",
    " If a survey comes through, could you rate me 10? It really helps me.",
    " Just so you know, on the survey only 9s and 10s count.",
    " A quick heads-up: only 9s and 10s count for us.",
    " If anything's not right, tell me first if it's not a 10 and I'll fix it.",
    " Please do rate me 10 - only 9s and 10s count towards my reviews.",
    " Before you fill in the survey, tell me first if it's not a 10!",
    " Honestly, only 9s and 10s count, so please rate me 10 if you can.",
)

# --------------------------------------------------------------------------- personal messages

_GREET = (
    "Hi",
    "Hello",
    "Dear",
    "Morning",
    "Hey",
    "Good afternoon",
    "Good morning",
    "Evening",
    "Hiya",
    "Hello again",
    "Hi there",
    "Afternoon",
)
_GREET_END = (",", "!", " -", ".", ",", "!")
_EMP_A = (
    "Thanks for bearing with me",
    "Sorry for the wait",
    "I've just picked up your note",
    "Really sorry about the hassle",
    "Thanks for letting us know",
    "Apologies for the delay",
    "Thank you for your patience",
    "Good to hear from you",
    "I'm sorry this happened",
    "Thanks for flagging this",
    "I can see why that was annoying",
    "Thanks for the detail",
    "That shouldn't have happened",
    "I hear you",
    "Thanks for explaining so clearly",
    "Sorry you had to chase",
    "I appreciate you writing in",
    "What a pain, I'm sorry",
    "Thanks for sticking with us",
    "I've read your message twice",
)
_EMP_B = (
    " on this",
    " this morning",
    " about this",
    " - I know it's been a long week",
    " and for being so patient",
    "",
    " today",
    " and for the photos",
    " after everything",
    " - it helps a lot",
    " while I looked into it",
    " once again",
    " so quickly",
    " and sorry it took me a while",
    " earlier",
)
_ACT_A = (
    "I've checked",
    "I went through",
    "I've had a proper look at",
    "I dug into",
    "I've gone over",
    "I've been looking at",
    "I spent some time on",
    "I followed up on",
    "I rang the team about",
    "I've reviewed",
    "I took a closer look at",
    "I've traced",
    "I sat down with a colleague over",
    "I went back through",
    "I chased up",
    "I've double-checked",
)
_ACT_B = (
    " and found what went wrong.",
    " and it's now sorted.",
    ", and here's where it stands.",
    " - good news, it's fixed.",
    " and I've put it right.",
    " and made a note so it won't recur.",
    " and updated your account.",
    ", and I think I've got to the bottom of it.",
    " and I've sorted the paperwork.",
    " and it should be fine from here.",
    " and escalated the bit I couldn't fix myself.",
    " and corrected the mistake.",
    ", which was our error, not yours.",
    " and cleared the block.",
    " and it's all back to normal now.",
)
_DET_A = (
    "You should see the change by",
    "Everything should be in place by",
    "I'll keep an eye on it until",
    "It will show on your account by",
    "Expect to hear from me again by",
    "Give it until",
    "I've set a reminder for",
    "It ought to be complete by",
    "I'll check back in on",
    "You'll have confirmation by",
    "The team expects to finish by",
    "I've noted it will be done by",
)
_DET_B = (
    ".",
    " at the latest.",
    ", all being well.",
    " - I'll confirm either way.",
    ", but shout if not.",
    " or sooner.",
    ", fingers crossed.",
    " and I'll drop you a line.",
)
_CLOSE_A = (
    "If anything else comes up",
    "Should you need me",
    "Any questions at all",
    "If it happens again",
    "If that doesn't do it",
    "If something still looks off",
    "Anything else you need",
    "If you spot anything odd",
    "If you'd rather talk it through",
    "If I missed something",
    "Whenever you have a minute",
    "If the app plays up",
)
_CLOSE_B = (
    ", just reply here.",
    ", give me a shout.",
    ", I'm in until six.",
    ", reply to this and it comes straight to me.",
    ", ring me directly.",
    " - you know where I am.",
    ", let me know and I'll jump on it.",
    ", I'll pick it up personally.",
    ", message me and I'll call you back.",
    ", just say the word.",
)
_SIGN = (
    "Best,",
    "Cheers,",
    "Speak soon,",
    "Thanks again,",
    "Take care,",
    "All the best,",
    "Kind regards,",
    "Warmly,",
    "Thanks,",
    "Have a good evening,",
    "Regards,",
    "Many thanks,",
)


def personal_text(
    rng: np.random.Generator,
    first: pa.Array,
    agent: pa.Array,
    detail: pa.Array,
    when: pa.Array,
    extra: pa.Array | None = None,
) -> pa.Array:
    """Individually composed messages from a person (no two near-duplicates).

    ``detail`` names what the message is about ("your order J00001234"),
    ``when`` a date ("14 March"), ``agent`` the writer's first name; ``extra``
    (e.g. a begging sentence, starting with a space) goes before the sign-off.
    """
    n = len(first)
    if n == 0:
        return pa.array([], pa.string())
    with_detail = pa.array(rng.random(n) < 0.7)
    with_close = pa.array(rng.random(n) < 0.8)
    det_text = join(" ", pick(rng, _DET_A, n), " ", when, pick(rng, _DET_B, n))
    det_text = pc.if_else(with_detail, det_text, "")
    close_text = join(" ", pick(rng, _CLOSE_A, n), pick(rng, _CLOSE_B, n))
    close_text = pc.if_else(with_close, close_text, "")
    return join(
        pick(rng, _GREET, n),
        " ",
        first,
        pick(rng, _GREET_END, n),
        " ",
        pick(rng, _EMP_A, n),
        pick(rng, _EMP_B, n),
        ". ",
        pick(rng, _ACT_A, n),
        " ",
        detail,
        pick(rng, _ACT_B, n),
        det_text,
        close_text,
        "" if extra is None else extra,
        " ",
        pick(rng, _SIGN, n),
        " ",
        agent,
    )


# --------------------------------------------------------------------------- customer messages

_IN_OPEN = (
    "Hi,",
    "Hello,",
    "Hi there,",
    "Hey,",
    "Good morning,",
    "",
    "To whom it may concern,",
    "Hello again,",
)
_IN_CHASE = (
    "I'm still waiting to hear back about",
    "Nobody has replied about",
    "Chasing again about",
    "Any news on",
    "Third time asking about",
    "Can someone please look at",
    "Still no answer on",
)
_IN_END = (
    "Thanks.",
    "Please help.",
    "Cheers",
    "Thanks in advance.",
    "",
    "Regards",
    "This is really frustrating.",
    "Can you call me?",
    "Thank you",
)


def inquiry_text(rng: np.random.Generator, problem: pa.Array, detail: pa.Array) -> pa.Array:
    """A customer's first message: greeting, the problem, the reference, a closing."""
    n = len(problem)
    return pc.utf8_trim_whitespace(
        join(pick(rng, _IN_OPEN, n), " ", problem, " (", detail, "). ", pick(rng, _IN_END, n))
    )


def chaser_text(rng: np.random.Generator, detail: pa.Array) -> pa.Array:
    """A customer chasing an earlier contact."""
    n = len(detail)
    return pc.utf8_trim_whitespace(
        join(
            pick(rng, _IN_OPEN, n),
            " ",
            pick(rng, _IN_CHASE, n),
            " ",
            detail,
            ". ",
            pick(rng, _IN_END, n),
        )
    )


# --------------------------------------------------------------------------- survey comments

_COMMENT_LOW = (
    "Took far too long.",
    "Nobody called me back.",
    "Still not fixed.",
    "I had to explain everything three times.",
    "Passed from pillar to post.",
    "Very disappointed.",
    "They ran out again.",
    "Arrived late and nobody said sorry.",
    "Promised a callback that never came.",
    "Waste of my time.",
    "The price keeps going up.",
    "Not what I ordered.",
)
_COMMENT_MID = (
    "It was okay in the end.",
    "Fine, but slow.",
    "Got there eventually.",
    "Friendly but I had to chase.",
    "Average.",
    "Would be better with fewer steps.",
    "Sorted, but it took two calls.",
    "Okay service.",
)
_COMMENT_HIGH = (
    "Quick and friendly.",
    "Sorted first time, thank you!",
    "Brilliant service.",
    "Really helpful person.",
    "Easy and fast.",
    "Lovely as always.",
    "Couldn't ask for more.",
    "Great, thanks!",
    "Very happy.",
    "Went above and beyond.",
)


def comments(rng: np.random.Generator, band: np.ndarray) -> pa.Array:
    """A short comment per response; ``band`` 0 low, 1 middle, 2 high."""
    pools = (_COMMENT_LOW, _COMMENT_MID, _COMMENT_HIGH)
    flat = pa.array([c for pool in pools for c in pool], pa.string())
    sizes = np.array([len(p) for p in pools])
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    band = np.asarray(band, dtype=I64)
    code = starts[band] + (rng.random(len(band)) * sizes[band]).astype(I64)
    return flat.take(pa.array(code))
