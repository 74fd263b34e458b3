"""Support cases, shared by every world.

A **support case** (journey kind ``support``) runs, for every case at once:
inbound inquiry → (e-mail acknowledgement, chat bot) → an agent's reply →
sometimes a transfer to a second agent → sometimes a repeat contact by the
customer (often on another channel) and a further reply → sometimes a promise
(callback, fix, refund, reply) kept on time, late, never, or cancelled, with a
make-good (apology and/or credit) after some broken ones → an outcome.
Planted *ignored* cases get no outbound message at all after the customer's
message(s). Agents who beg for scores add their plea to the last message
before a survey could come. Promises are made by ``promises.py``, surveys by
``surveys.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.common import (
    A_BOT,
    A_CUSTOMER,
    A_PERSON,
    A_SYSTEM,
    ACHIEVED,
    ACTION,
    AS_OF,
    CHAT,
    DAY,
    EMAIL,
    FAILED,
    HOUR,
    I64,
    INBOUND,
    MINUTE,
    OPEN,
    PHONE,
    PROMISE,
    SECOND,
    choice_p,
    labels,
    subset,
    to_seconds,
    uniform_time,
)
from sawubona.demo.common import ACKNOWLEDGEMENT as K_ACK
from sawubona.demo.common import CALLBACK_K as K_CALLBACK
from sawubona.demo.common import FOLLOW_UP as K_FOLLOW_UP
from sawubona.demo.common import INQUIRY as K_INQUIRY
from sawubona.demo.common import REPLY as K_REPLY
from sawubona.demo.common import TRANSFER_K as K_TRANSFER
from sawubona.demo.people import BEGGING
from sawubona.demo.promises import make_promises
from sawubona.demo.text import (
    ACK,
    BEGGING_SENTENCES,
    BOT_HELLO,
    REPLY_CANNED,
    TRANSFER,
    chaser_text,
    inquiry_text,
    pick,
)

#: median reply wait (minutes) and log-sd per channel, in CHANNELS order
_WAIT_MEDIAN = np.array([360.0, 1.5, 5.0, 90.0, 3.0, 240.0, 360.0, 2880.0])
_WAIT_SIGMA = np.array([1.0, 0.5, 0.6, 0.9, 0.4, 0.9, 1.0, 0.5])


def reply_wait(rng: np.random.Generator, channel: np.ndarray) -> np.ndarray:
    """Time to an agent's reply on each channel (log-normal, whole seconds)."""
    med = _WAIT_MEDIAN[channel]
    w = med * np.exp(_WAIT_SIGMA[channel] * rng.standard_normal(len(channel)))
    w = np.clip(w, 0.3, 7 * 24 * 60)
    return to_seconds((w * MINUTE).astype(I64)) + SECOND


@dataclass(frozen=True)
class Topic:
    """What a support case is about."""

    key: str
    desired: str
    noun: str
    problem: str
    promise: str | None
    p_fail: float
    fail_reason: str


@dataclass
class Cases:
    """Support cases to play out (one row per journey)."""

    journey: np.ndarray
    cust: np.ndarray
    start: np.ndarray
    topic: np.ndarray
    ref: pa.Array
    detail: pa.Array
    ignored: np.ndarray


@dataclass
class CaseResult:
    """What happened in each case."""

    ended: np.ndarray
    outcome: np.ndarray
    reason: pa.Array
    agent: np.ndarray
    transfer: np.ndarray
    repeat: np.ndarray
    switch: np.ndarray
    broken: np.ndarray
    begged: np.ndarray


def play_cases(
    b: Block, topics: Sequence[Topic], c: Cases, channel_p: Sequence[float]
) -> CaseResult:
    """Generate the touchpoints, promises and actions of support cases."""
    rng, ag = b.rng, b.agents
    m = len(c.cust)
    ch = choice_p(rng, m, channel_p)
    # ignored messages are written ones (a phone call or chat is always picked up)
    ch[c.ignored & ((ch == PHONE) | (ch == CHAT))] = EMAIL
    # neglected customers never hear a person's voice: no calls
    neglected = b.neglected[c.cust]
    ch[neglected & (ch == PHONE)] = EMAIL
    problem = labels([t.problem for t in topics], c.topic)
    noun = labels([t.noun for t in topics], c.topic)
    is_phone = pa.array(ch == PHONE)
    first = b.first(c.cust)
    msg = pc.if_else(is_phone, pa.nulls(m, pa.string()), inquiry_text(rng, problem, c.detail))
    b.tp.add(
        m,
        cust=c.cust,
        journey=c.journey,
        at=c.start,
        channel=ch,
        direction=INBOUND,
        actor=A_CUSTOMER,
        kind=K_INQUIRY,
        text=msg,
    )

    # ---- ignored: maybe a chaser, then silence
    chase = np.flatnonzero(c.ignored & (rng.random(m) < 0.3))
    b.tp.add(
        len(chase),
        cust=c.cust[chase],
        journey=c.journey[chase],
        at=c.start[chase] + uniform_time(rng, 2 * DAY, 5 * DAY, len(chase)),
        channel=ch[chase],
        direction=INBOUND,
        actor=A_CUSTOMER,
        kind=K_INQUIRY,
        text=chaser_text(rng, c.detail.take(pa.array(chase))),
    )

    ans = ~c.ignored
    slots = {"first": first, "ref": c.ref, "topic": noun}
    # ---- acknowledgement (e-mail) and chat bot
    r = np.flatnonzero(ans & (ch == EMAIL))
    b.send_templates(
        [ACK],
        np.zeros(len(r), I64),
        subset(slots, r),
        cust=c.cust[r],
        journey=c.journey[r],
        at=c.start[r] + uniform_time(rng, 30e6, 180e6, len(r)),
        channel=EMAIL,
        actor=A_SYSTEM,
        kind=K_ACK,
    )
    r = np.flatnonzero(ans & (ch == CHAT) & (rng.random(m) < 0.6))
    b.send_templates(
        [BOT_HELLO],
        np.zeros(len(r), I64),
        subset(slots, r),
        cust=c.cust[r],
        journey=c.journey[r],
        at=c.start[r] + uniform_time(rng, 5e6, 30e6, len(r)),
        channel=CHAT,
        actor=A_BOT,
        kind=K_REPLY,
    )

    # ---- replies, transfer, repeat contact
    a1 = ag.pick(rng, m)
    a2 = ag.pick(rng, m)
    r1 = c.start + reply_wait(rng, ch)
    transfer = ans & (rng.random(m) < 0.14)
    t_tr = r1 + uniform_time(rng, MINUTE, 8 * MINUTE, m)
    r2 = t_tr + reply_wait(rng, ch)
    last_agent = np.where(transfer, a2, a1)
    t_last = np.where(transfer, r2, r1)
    repeat = ans & (rng.random(m) < 0.16)
    switch = repeat & (rng.random(m) < 0.4)
    ch2 = np.where(switch & ~neglected, np.where(ch == PHONE, EMAIL, PHONE), ch)
    t_chase = t_last + uniform_time(rng, DAY, 5 * DAY, m)
    r3 = t_chase + reply_wait(rng, ch2)
    t_final = np.where(repeat, r3, t_last)
    ch_final = np.where(repeat, ch2, ch)
    beg = ans & (ag.behaviour[last_agent] == BEGGING) & (rng.random(m) < 0.65)
    follow = ans & (ch_final == PHONE) & (beg | (rng.random(m) < 0.4))
    t_follow = t_final + uniform_time(rng, 5 * MINUTE, HOUR, m)
    beg_sentence = pick(rng, BEGGING_SENTENCES, m)
    when = t_final + 2 * DAY

    def reply(
        rows: np.ndarray,
        agent: np.ndarray,
        at: np.ndarray,
        chan: np.ndarray,
        final: bool,
        kind: int = K_REPLY,
    ) -> None:
        phone = rows[chan[rows] == PHONE]
        b.tp.add(
            len(phone),
            cust=c.cust[phone],
            journey=c.journey[phone],
            at=at[phone],
            channel=PHONE,
            actor=A_PERSON,
            agent=agent[phone],
            kind=kind,
        )
        rows = rows[chan[rows] != PHONE]
        _reply_text(
            b,
            rows,
            c,
            agent,
            at,
            chan,
            kind,
            slots,
            neglected,
            when,
            beg if final else None,
            beg_sentence,
        )

    reply(np.flatnonzero(ans & ~transfer & ~repeat), a1, r1, ch, True)
    reply(np.flatnonzero(ans & (transfer | repeat)), a1, r1, ch, False)
    r = np.flatnonzero(transfer)
    team_names = ag.team_names().take(pa.array(a2[r]))
    b.send_templates(
        [TRANSFER],
        np.zeros(len(r), I64),
        {**subset(slots, r), "team": team_names},
        cust=c.cust[r],
        journey=c.journey[r],
        at=t_tr[r],
        channel=ch[r],
        actor=A_PERSON,
        agent=a1[r],
        kind=K_TRANSFER,
    )
    reply(np.flatnonzero(transfer & ~repeat), a2, r2, ch, True)
    reply(np.flatnonzero(transfer & repeat), a2, r2, ch, False)
    r = np.flatnonzero(repeat)
    b.tp.add(
        len(r),
        cust=c.cust[r],
        journey=c.journey[r],
        at=t_chase[r],
        channel=ch2[r],
        direction=INBOUND,
        actor=A_CUSTOMER,
        kind=K_INQUIRY,
        text=pc.if_else(
            pa.array(ch2[r] == PHONE),
            pa.nulls(len(r), pa.string()),
            chaser_text(rng, c.detail.take(pa.array(r))),
        ),
    )
    reply(np.flatnonzero(repeat), last_agent, r3, ch2, True)
    r = np.flatnonzero(follow)
    _reply_text(
        b,
        r,
        c,
        last_agent,
        t_follow,
        np.full(m, EMAIL),
        K_FOLLOW_UP,
        slots,
        neglected,
        when,
        beg,
        beg_sentence,
    )

    # ---- promises
    pkind = np.array([PROMISE[t.promise] if t.promise else -1 for t in topics])[c.topic]
    has_p = ans & (pkind >= 0) & (rng.random(m) < 0.5)
    has_p &= ~(neglected & (pkind == PROMISE["callback"]))
    rows = np.flatnonzero(has_p)
    st = make_promises(
        b,
        c.cust[rows],
        c.journey[rows],
        pkind[rows],
        r1[rows],
        a1[rows],
        ch[rows],
        first.take(pa.array(rows)),
        c.ref.take(pa.array(rows)),
    )
    broken = np.zeros(m, bool)
    broken[rows] = st.broken
    kept = np.full(m, -1, I64)
    kept[rows] = st.kept
    unkept = np.zeros(m, bool)
    unkept[rows] = st.broken & (st.kept < 0)
    cb = rows[(pkind[rows] == PROMISE["callback"]) & (st.kept >= 0)]
    b.tp.add(
        len(cb),
        cust=c.cust[cb],
        journey=c.journey[cb],
        at=kept[cb],
        channel=PHONE,
        actor=A_PERSON,
        agent=a1[cb],
        kind=K_CALLBACK,
    )
    rf = rows[(pkind[rows] == PROMISE["refund"]) & (st.kept >= 0)]
    b.actions.add(
        len(rf),
        cust=c.cust[rf],
        at=kept[rf],
        kind=ACTION["refund"],
        amount=np.round(rng.uniform(4, 60, len(rf)), 2),
        initiated=0,
        agent=a1[rf],
        journey=c.journey[rf],
        purpose="promised_refund",
    )

    # ---- outcome
    p_fail = np.array([t.p_fail for t in topics])[c.topic]
    fail = ans & ((rng.random(m) < p_fail + 0.15 * repeat) | unkept)
    reasons = [t.fail_reason for t in topics] + ["promise not kept", "no reply"]
    rcode = np.where(unkept, len(topics), c.topic)
    ended = np.maximum(
        np.maximum(t_final, np.where(kept > 0, kept, 0)), np.where(follow, t_follow, 0)
    )
    outcome = np.where(fail, FAILED, ACHIEVED)
    old_ignored = c.ignored & (c.start < AS_OF - 14 * DAY)
    outcome = np.where(c.ignored, np.where(old_ignored, FAILED, OPEN), outcome)
    rcode = np.where(c.ignored, len(topics) + 1, rcode)
    ended = np.where(c.ignored, -1, ended)
    # recent cases are often still being worked on
    late = (ended > AS_OF) | (ans & (c.start > AS_OF - 3 * DAY) & (rng.random(m) < 0.5))
    outcome[late] = OPEN
    ended[late] = -1
    reason = labels(reasons, np.where(outcome == FAILED, rcode, -1))
    return CaseResult(
        ended=ended,
        outcome=outcome,
        reason=reason,
        agent=np.where(c.ignored, -1, last_agent),
        transfer=transfer,
        repeat=repeat,
        switch=switch,
        broken=broken,
        begged=beg & ~late,
    )


def _reply_text(
    b: Block,
    rows: np.ndarray,
    c: Cases,
    agent: np.ndarray,
    at: np.ndarray,
    chan: np.ndarray,
    kind: int,
    slots: dict[str, pa.Array],
    neglected: np.ndarray,
    when: np.ndarray,
    beg: np.ndarray | None,
    beg_sentence: pa.Array,
) -> None:
    """Written replies for ``rows``: canned or personal, begging where asked."""
    if len(rows) == 0:
        return
    ag = b.agents
    templated = neglected[rows] | (b.rng.random(len(rows)) < ag.p_template[agent[rows]])
    suffix = None
    if beg is not None:
        suffix = pc.if_else(pa.array(beg[rows]), beg_sentence.take(pa.array(rows)), "")
    sub = {**subset(slots, rows), "agent": b.agent_first(agent[rows])}
    b.send_mixed(
        c.cust[rows],
        agent[rows],
        templated,
        REPLY_CANNED,
        sub,
        pc.binary_join_element_wise("your case ", c.ref.take(pa.array(rows)), ""),
        when[rows],
        suffix,
        journey=c.journey[rows],
        at=at[rows],
        channel=chan[rows],
        kind=kind,
        begging=np.zeros(len(rows), bool) if beg is None else beg[rows],
    )


# --------------------------------------------------------------------------- surveys


# --------------------------------------------------------------------------- marketing
