"""Preparation: the voice lens's per-survey and per-journey frames, as Ibis expressions.

Everything here runs where the data lives (DuckDB by default) and returns Ibis
expressions or small grouped counts; the statistics modules never see one row
per survey except the comments (themes) and the evidence rows of flagged units.

What a survey *is* at ``as_of`` (one definition, used by every table):

* **invited** — the row exists at ``as_of`` (:meth:`LensInput.until`);
* **answered** — ``responded_at <= as_of`` (or, with no ``responded_at`` at all,
  a score is present);
* **scored** — answered with a score. *Scored answers are the one denominator of
  every score*; answered-without-score and not-answered are counted apart.

Columns of :func:`survey_frame`: ``survey_id, customer_id, journey_id,
instrument, trigger, routine, agent_id, team, status`` (``scored`` / ``no_score``
/ ``no_answer``), ``score`` (int, only when scored), ``ref_at`` (invitation, else
answer time), ``responded_at``, ``month`` (``YYYY-MM`` of ``ref_at``), ``kind``,
``outcome``, ``promise`` (``kept`` / ``broken`` / ``open`` / null), ``channel``,
``conceded`` and ``concession_amount`` (a concession on the journey in the window
before the invitation), ``solicited`` (an agent's message in the journey before
the invitation asked for a top score).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import ibis
import ibis.expr.types as ir

from sawubona.lenses import engine
from sawubona.lenses.base import LensInput

#: Score-begging in agents' messages (English and Portuguese), written in lower case and
#: matched case-insensitively. Each alternative asks for a top score or says that only top
#: scores count; the setting ``solicitation_pattern`` adds one more.
SOLICITATION_PATTERNS: tuple[str, ...] = (
    r"\b(rate|score|give|mark)\s+(me|us)\s+(a\s+|an\s+)?(10|ten|9|nine|five stars?|5 stars?)\b",
    r"\bonly\s+(9s?|nines?)\s+(and|&|or)\s+(10s?|tens?)\s+(count|matter)",
    r"\b(anything|everything)\s+(below|less than|under)\s+(a\s+)?(9|10|nine|ten)\s+(is|counts)",
    r"\btell\s+me\s+(first\s+)?(if|when)\s+(it'?s|it is|you'?re)\s+not\s+(a\s+)?(10|ten)",
    r"\b(my|our)\s+(bonus|pay|job|review|target)s?\s+(depends?|relies?|rides?)\s+on",
    r"\bnota\s+(10|dez)\b",
    r"\bs[oó]\s+(9|nove)\s+e\s+(10|dez)\s+contam",
)

DEFAULT_CONCESSION_KINDS = "discount,credit"


def solicitation_regex(extra: str = "") -> str:
    """The one regular expression (alternatives of :data:`SOLICITATION_PATTERNS`)."""
    parts = [_word_edges(p) for p in SOLICITATION_PATTERNS]
    if extra.strip():
        parts.append(extra.strip())
    return "|".join(f"(?:{p})" for p in parts)


def _word_edges(pattern: str) -> str:
    r"""``\b`` at either end spelled so every engine reads it alike: PostgreSQL's regular
    expressions take ``\b`` for a backspace, DuckDB (RE2) and Spark (Java) for an ASCII
    word boundary — which, next to a word character, is exactly a non-word character or
    the end of the text."""
    if pattern.startswith(r"\b"):
        pattern = "(?:^|[^A-Za-z0-9_])" + pattern[2:]
    if pattern.endswith(r"\b"):
        pattern = pattern[:-2] + "(?:$|[^A-Za-z0-9_])"
    return pattern


def _csv(text: str) -> list[str]:
    return [p.strip().lower() for p in str(text).split(",") if p.strip()]


def _visible(t: ir.Table, column: str, as_of: dt.datetime) -> ir.Value:
    """``column`` if it happened by ``as_of``, else null (a later field is not yet known)."""
    col = t[column]
    return ibis.ifelse(col <= as_of, col, ibis.null(col.type()))


def journey_context(data: LensInput) -> ir.Table | None:
    """Per journey at ``as_of``: ``journey_id, customer_id, kind, outcome, started_at,
    ended_at, closed, promise, channel, journey_agent, journey_team``.

    ``outcome`` counts only once the journey ended by ``as_of`` (an end after it
    means still open). ``promise`` is ``broken`` if any of the journey's promises
    was kept late or is unkept past due, ``open`` if one is still running, else
    ``kept``. ``channel`` is the channel of the journey's first inbound touchpoint
    (else its first touchpoint); ``journey_agent``/``journey_team`` are the person
    who wrote or spoke last for the organisation in the journey, else the agent who
    made its last promise — never the survey's agent, so that attribution does not
    depend on whether the journey was surveyed.
    """
    if not data.has("journeys"):
        return None
    as_of = data.as_of
    j = data.until("journeys")
    ended = _visible(j, "ended_at", as_of)
    raw_outcome = j.outcome
    outcome = ibis.cases(
        (j.ended_at.notnull() & ended.isnull(), ibis.literal("open")),
        else_=raw_outcome,
    )
    closed = ended.notnull() | (j.ended_at.isnull() & raw_outcome.isin(["achieved", "failed"]))
    ctx = j.select(
        "journey_id",
        "customer_id",
        "kind",
        "started_at",
        outcome=outcome,
        ended_at=ended,
        closed=closed,
    )
    if data.has("promises"):
        p = data.until("promises").filter(lambda p: p.journey_id.notnull())
        kept = _visible(p, "kept_at", as_of)
        cancelled = _visible(p, "cancelled_at", as_of)
        live = cancelled.isnull()
        broken = live & ((kept > p.due_at) | (kept.isnull() & (p.due_at < as_of)))
        running = live & kept.isnull() & (p.due_at >= as_of)
        per = p.group_by("journey_id").aggregate(
            n_broken=broken.cast("int32").sum(),
            n_running=running.cast("int32").sum(),
            n_live=live.cast("int32").sum(),
        )
        status = ibis.cases(
            (per.n_broken > 0, ibis.literal("broken")),
            (per.n_running > 0, ibis.literal("open")),
            (per.n_live > 0, ibis.literal("kept")),
            else_=ibis.null("string"),
        )
        per = per.select("journey_id", promise=status)
        ctx = ctx.left_join(per, "journey_id").drop("journey_id_right")
    else:
        ctx = ctx.mutate(promise=ibis.null("string"))
    agent = ibis.null("string")
    team = ibis.null("string")
    if data.has("touchpoints"):
        t = data.until("touchpoints").filter(lambda t: t.journey_id.notnull())
        by_org = (t.direction == "outbound") & t.agent_id.notnull()
        per_t = t.group_by("journey_id").aggregate(
            first_in=t.channel.argmin(t.at, where=t.direction == "inbound"),
            first_any=t.channel.argmin(t.at),
            tp_agent=t.agent_id.argmax(t.at, where=by_org),
            tp_team=t.team.argmax(t.at, where=by_org),
        )
        per_t = per_t.select(
            "journey_id",
            "tp_agent",
            "tp_team",
            channel=ibis.coalesce(per_t.first_in, per_t.first_any),
        )
        ctx = ctx.left_join(per_t, "journey_id").drop("journey_id_right")
        agent, team = ctx.tp_agent, ctx.tp_team
    else:
        ctx = ctx.mutate(channel=ibis.null("string"))
    if data.has("promises"):
        # the person who made a promise in the journey, when that is an agent we know
        p = data.until("promises").filter(lambda p: p.journey_id.notnull() & p.made_by.notnull())
        known = _known_agents(data)
        if known is not None:
            p = p.filter(p.made_by.isin(known.agent_id))
            per_p = p.group_by("journey_id").aggregate(
                pr_agent=p.made_by.argmax(p.made_at), pr_team=p.team.argmax(p.made_at)
            )
            ctx = ctx.left_join(per_p, "journey_id").drop("journey_id_right")
            agent = (
                ibis.coalesce(ctx.tp_agent, ctx.pr_agent)
                if data.has("touchpoints")
                else (ctx.pr_agent)
            )
            team = (
                ibis.coalesce(ctx.tp_team, ctx.pr_team)
                if data.has("touchpoints")
                else (ctx.pr_team)
            )
    if data.has("actions"):
        # the agent of the journey's other actions (never concessions: they follow surveys)
        kinds = _csv(data.settings.get("concession_kinds", DEFAULT_CONCESSION_KINDS))
        a = data.until("actions")
        a = a.filter(a.journey_id.notnull() & a.agent_id.notnull() & ~a.kind.isin(kinds))
        per_a = a.group_by("journey_id").aggregate(ac_agent=a.agent_id.argmax(a["at"]))
        ctx = ctx.left_join(per_a, "journey_id").drop("journey_id_right")
        cols = [ctx[c] for c in ("tp_agent", "pr_agent", "ac_agent") if c in ctx.columns]
        agent = cols[0] if len(cols) == 1 else ibis.coalesce(*cols)
    ctx = ctx.mutate(journey_agent=agent, journey_team=team)
    helpers = ("tp_agent", "tp_team", "pr_agent", "pr_team", "ac_agent")
    return ctx.drop(*[c for c in helpers if c in ctx.columns])


def _known_agents(data: LensInput) -> ir.Table | None:
    """Agent ids seen in touchpoints or surveys."""
    parts = []
    if data.has("touchpoints"):
        t = data.until("touchpoints")
        parts.append(t.filter(t.agent_id.notnull()).select("agent_id").distinct())
    s = data.until("surveys")
    parts.append(s.filter(s.agent_id.notnull()).select("agent_id").distinct())
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def concession_actions(data: LensInput) -> ir.Table | None:
    """Actions of the concession kinds (setting ``concession_kinds``) by ``as_of``."""
    if not data.has("actions"):
        return None
    kinds = _csv(data.settings.get("concession_kinds", DEFAULT_CONCESSION_KINDS))
    a = data.until("actions")
    a = a.filter(a.kind.isin(kinds))
    return a.select(
        "action_id",
        "customer_id",
        "journey_id",
        "agent_id",
        action_at=a["at"],
        amount=a.amount.fill_null(0.0),
    )


def agent_message_flags(data: LensInput) -> ir.Table | None:
    """Every outbound message an agent wrote in a surveyed journey (or in none), without its
    text, and whether it asks for a top score (``solicits``): the regular expression runs
    once, case-insensitively, here."""
    if not data.has("touchpoints"):
        return None
    t = agent_messages(data.until("touchpoints"))
    # only messages that can precede a survey: in a surveyed journey, or in none
    s = data.until("surveys")
    t = t.filter(t.journey_id.isnull() | t.journey_id.isin(s.journey_id))
    regex = "(?i)" + solicitation_regex(str(data.settings.get("solicitation_pattern", "")))
    return t.select(
        "touchpoint_id",
        "customer_id",
        "journey_id",
        "agent_id",
        "team",
        msg_at=t["at"],
        solicits=t.text.re_search(regex),
    )


def solicitation_messages(messages: ir.Table | None) -> ir.Table | None:
    """The messages of :func:`agent_message_flags` that ask for a top score."""
    if messages is None:
        return None
    return messages.filter(messages.solicits).drop("solicits")


def agent_messages(t: ir.Table) -> ir.Table:
    """Outbound touchpoints with text attributed to an agent (a person)."""
    person = t.actor.isnull() | (t.actor == "person")
    return t.filter((t.direction == "outbound") & t.agent_id.notnull() & t.text.notnull() & person)


def _flag_surveys(
    s: ir.Table,
    events: ir.Table,
    at_col: str,
    window: dt.timedelta | None,
    value: str | None = None,
) -> ir.Table:
    """survey_id → whether an event (same journey, else same customer when the event has no
    journey) happened in ``[ref_at - window, ref_at]`` (``window`` None: any time before)."""
    keys = s.select("survey_id", "journey_id", "customer_id", "ref_at")

    def in_window(k: ir.Table, e: ir.Table) -> ir.BooleanValue:
        cond = e[at_col] <= k.ref_at
        if window is not None:
            cond = cond & (e[at_col] >= k.ref_at - window)
        return cond

    by_journey = keys.join(
        events.filter(events.journey_id.notnull()),
        [keys.journey_id == events.journey_id],
    )
    by_journey = by_journey.filter(in_window(by_journey, by_journey))
    loose = events.filter(events.journey_id.isnull())
    by_customer = keys.join(loose, [keys.customer_id == loose.customer_id])
    cust_window = window if window is not None else dt.timedelta(days=7)
    by_customer = by_customer.filter(
        (by_customer[at_col] <= by_customer.ref_at)
        & (by_customer[at_col] >= by_customer.ref_at - cust_window)
    )
    cols = ["survey_id"] + ([value, at_col] if value else [])
    both = by_journey.select(*cols).union(by_customer.select(*cols), distinct=False)
    if value:
        return both.group_by("survey_id").aggregate(
            hits=both.count(), total=both[value].sum(), last_at=both[at_col].max()
        )
    return both.group_by("survey_id").aggregate(hits=both.count())


def survey_frame(
    data: LensInput,
    ctx: ir.Table | None,
    concessions: ir.Table | None,
    solicitations: ir.Table | None,
) -> ir.Table:
    """One row per survey visible at ``as_of`` with everything the voice lens groups by."""
    as_of = data.as_of
    s = data.until("surveys")
    answered = ibis.cases(
        (s.responded_at.notnull(), s.responded_at <= as_of),
        else_=s.score.notnull(),
    )
    status = ibis.cases(
        (answered & s.score.notnull(), ibis.literal("scored")),
        (answered, ibis.literal("no_score")),
        else_=ibis.literal("no_answer"),
    )
    ref_at = ibis.coalesce(s.invited_at, s.responded_at)
    trigger = s.trigger.fill_null("unknown")
    frame = s.select(
        "survey_id",
        "customer_id",
        "journey_id",
        "instrument",
        "agent_id",
        "team",
        trigger=trigger,
        routine=trigger != "audit",
        invited_known=s.invited_at.notnull(),
        status=status,
        score=ibis.ifelse(status == "scored", s.score.round().cast("int64"), ibis.null("int64")),
        ref_at=ref_at,
        responded_at=ibis.ifelse(answered, s.responded_at, ibis.null("timestamp")),
        month=ref_at.truncate("M").strftime("%Y-%m"),
    )
    base = frame
    if ctx is not None:
        c = ctx.select(
            "journey_id",
            "kind",
            "outcome",
            "promise",
            "channel",
            "journey_agent",
            "journey_team",
        )
        frame = frame.left_join(c, "journey_id").drop("journey_id_right")
        frame = frame.mutate(
            agent_id=ibis.coalesce(frame.agent_id, frame.journey_agent),
            team=ibis.coalesce(frame.team, frame.journey_team),
        ).drop("journey_agent", "journey_team")
    else:
        frame = frame.mutate(
            kind=ibis.null("string"),
            outcome=ibis.null("string"),
            promise=ibis.null("string"),
            channel=ibis.null("string"),
        )
    hours = float(data.settings.get("concession_window_hours", 72))
    if concessions is not None:
        flags = _flag_surveys(base, concessions, "action_at", dt.timedelta(hours=hours), "amount")
        flags = flags.select(
            "survey_id",
            conceded=flags.hits > 0,
            concession_amount=flags.total,
            concession_at=flags.last_at,
        )
        frame = frame.left_join(flags, "survey_id").drop("survey_id_right")
        lead = (frame.ref_at.epoch_seconds() - frame.concession_at.epoch_seconds()) / 3600
        frame = frame.mutate(
            conceded=frame.conceded.fill_null(False),
            concession_amount=frame.concession_amount.fill_null(0.0),
            concession_lead_hours=lead.cast("float64"),
        ).drop("concession_at")
    else:
        frame = frame.mutate(
            conceded=ibis.literal(False),
            concession_amount=ibis.literal(0.0),
            concession_lead_hours=ibis.null("float64"),
        )
    if solicitations is not None:
        flags = _flag_surveys(base, solicitations, "msg_at", None)
        flags = flags.select("survey_id", solicited=flags.hits > 0)
        frame = frame.left_join(flags, "survey_id").drop("survey_id_right")
        frame = frame.mutate(solicited=frame.solicited.fill_null(False))
    else:
        frame = frame.mutate(solicited=ibis.literal(False))
    return frame


def journey_cube(
    ctx: ir.Table,
    frame: ir.Table,
    concessions: ir.Table | None,
    window_hours: float,
) -> ir.Table:
    """Closed journeys counted by ``journey_agent, journey_team, kind, outcome, promise`` and
    what happened to them: ``invited`` (a routine survey), ``agent_invited`` (one the agent
    triggered), ``scored_nps`` (a routine NPS answer with a score) and ``conceded`` (a
    concession on the journey between its start and ``window_hours`` after its end)."""
    closed = ctx.filter(ctx.closed)
    routine = frame.filter(frame.routine & frame.journey_id.notnull())
    per = routine.group_by("journey_id").aggregate(
        invited=routine.count() > 0,
        agent_invited=(routine.trigger == "agent").any(),
        scored_nps=((routine.status == "scored") & (routine.instrument == "nps")).any(),
    )
    j = closed.left_join(per, "journey_id").drop("journey_id_right")
    if concessions is not None:
        c = concessions.filter(concessions.journey_id.notnull())
        hit = j.select("journey_id", "started_at", "ended_at").join(
            c, [j.journey_id == c.journey_id]
        )
        window = dt.timedelta(hours=window_hours)
        hit = hit.filter(
            (hit.action_at >= hit.started_at)
            & (ibis.coalesce(hit.ended_at + window, hit.action_at) >= hit.action_at)
        )
        hit = hit.group_by("journey_id").aggregate(conceded=hit.count() > 0)
        j = j.left_join(hit, "journey_id").drop("journey_id_right")
    else:
        j = j.mutate(conceded=ibis.literal(False))
    j = j.mutate(
        invited=j.invited.fill_null(False),
        agent_invited=j.agent_invited.fill_null(False),
        scored_nps=j.scored_nps.fill_null(False),
        conceded=j.conceded.fill_null(False),
    )
    keys = [
        "journey_agent",
        "journey_team",
        "kind",
        "outcome",
        "promise",
        "invited",
        "agent_invited",
        "scored_nps",
        "conceded",
    ]
    return j.group_by(keys).aggregate(journeys=j.count())


class Scratch:
    """Intermediate results evaluated once, read by many summaries, dropped at the end.

    On DuckDB a temporary table of the connection (``CREATE TEMP TABLE … AS``, named
    ``_voice_<random>``, dropped by :meth:`close`); on other backends an Arrow copy
    registered as a memtable (on Spark a temporary view made from Arrow). Not
    ``Table.cache()``: with the pinned ibis 12 / sqlglot 30 pair, ibis's DROP
    statements lose their table name, so a cached table can be created but never
    released.
    """

    def __init__(self, like: ir.Table) -> None:
        self.backend: Any = like.get_backend()
        self.names: list[str] = []
        self.views: list[str] = []  # Spark temporary views

    def keep(self, expr: ir.Table) -> ir.Table:
        kind = getattr(self.backend, "name", "")
        if kind == "pyspark":
            return self._spark_view(expr)
        if kind != "duckdb":
            return ibis.memtable(expr.to_pyarrow())
        name = f"_voice_{uuid.uuid4().hex[:12]}"
        sql = self.backend.compile(expr)
        self.backend.raw_sql(f'CREATE TEMP TABLE "{name}" AS {sql}')
        self.names.append(name)
        return self.backend.table(name, database="temp")

    def _spark_view(self, expr: ir.Table) -> ir.Table:
        """On Spark, the Arrow copy becomes a temporary view (see sawubona.lenses.engine)."""
        table, view = engine.from_arrow(self.backend, expr.to_pyarrow(), "_voice")
        self.views.append(str(view))
        return table

    def close(self) -> None:
        while self.names:
            name = self.names.pop()
            self.backend.raw_sql(f'DROP TABLE IF EXISTS temp."{name}"')
        while self.views:
            engine.drop_view(self.backend, self.views.pop())

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def scored_comments(data: LensInput) -> ir.Table:
    """Scored answers that carry a comment: ``survey_id, customer_id, instrument, score,
    comment`` (same *scored* definition as :func:`survey_frame`)."""
    s = data.until("surveys")
    answered = ibis.cases(
        (s.responded_at.notnull(), s.responded_at <= data.as_of),
        else_=s.score.notnull(),
    )
    keep = answered & s.score.notnull() & s.comment.notnull()
    s = s.filter(keep)
    return s.select(
        "survey_id", "customer_id", "instrument", "comment", score=s.score.round().cast("int64")
    )
