"""Per-journey features of the experience lens, as Ibis expressions.

Everything here is data-parallel and runs where the data lives (DuckDB by default,
any Ibis backend later): the canonical tables as they were at ``as_of``
(:meth:`LensInput.until`) are aggregated per journey — touchpoints, promises,
items, surveys — joined to the journeys, and turned into the three parts of an
experience, kept apart: the **outcome** (achieved or not), the **treatment**
(0–1, with its parts) and the **effort-time** (contacts, repeats, switches,
transfers, elapsed time against the norm of the kind). ``docs/lenses/experience.md``
explains every column.

Only comment sentiment leaves the backend: the comments are scored by a
pluggable scorer (:mod:`.sentiment`) and the scores come back as a small table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses import engine
from sawubona.lenses.base import LensInput
from sawubona.lenses.experience.sentiment import SentimentScorer

#: outbound touchpoint kinds sent by machines, never a response to the customer
AUTOMATED_KINDS = ("notification", "marketing", "survey_invite", "acknowledgement")
#: instruments that rate the treatment, with their scale (low, high)
TREATMENT_INSTRUMENTS = {"nps": (0.0, 10.0), "csat": (1.0, 5.0)}
#: instruments that rate the effort (ease: high = easy)
EFFORT_INSTRUMENTS = {"ces": (1.0, 7.0)}
#: the treatment parts, in the order they are shown
TREATMENT_PARTS = (
    "treatment_survey",
    "treatment_wait",
    "treatment_answered",
    "treatment_transfers",
    "treatment_promises",
    "treatment_personal",
    "treatment_sentiment",
)


@dataclass
class Options:
    unanswered_after_hours: float = 168.0


class Scratch:
    """Temporary tables in the backend where the data lives (``create_table(temp=True)``),
    so an intermediate result is computed once and read many times; :meth:`release` drops
    them. (Ibis's own ``.cache()`` is not used: with sqlglot 30 its clean-up renders
    ``DROP TABLE IF EXISTS`` without the name and fails.)"""

    def __init__(self) -> None:
        self._made: list[tuple[Any, str]] = []
        self._views: list[tuple[Any, str]] = []  # Spark temporary views
        self._arrow: list[tuple[Any, str]] = []  # Arrow tables registered with DuckDB

    def keep(self, expr: ir.Table) -> ir.Table:
        backend = expr._find_backend()
        name = ibis.util.gen_name("sawubona_experience")
        try:
            table = backend.create_table(name, expr, temp=True)
        except NotImplementedError:
            # an engine without temporary tables (Spark through Ibis): keep an Arrow copy
            copy, view = engine.from_arrow(backend, expr.to_pyarrow(), name)
            if view:
                self._views.append((backend, view))
            return copy
        self._made.append((backend, name))
        return table  # type: ignore[no-any-return]

    def keep_arrow(self, expr: ir.Table) -> tuple[ir.Table, pa.Table]:
        """``expr`` computed once as Arrow, and as a table of its backend to read again.

        On DuckDB the Arrow result itself is registered with the connection (a view that
        scans it without a copy), which spares writing every row into a temporary table
        and reading them back out; elsewhere the rows are kept as by :meth:`keep`."""
        backend = expr._find_backend()
        if getattr(backend, "name", "") != "duckdb":
            table = self.keep(expr)
            return table, table.to_pyarrow()
        result = expr.to_pyarrow()
        name = ibis.util.gen_name("sawubona_experience")
        backend.con.register(name, result)
        self._arrow.append((backend, name))
        return backend.table(name), result

    def drop(self, table: ir.Table) -> None:
        name = table.get_name().split(".")[-1]
        for i, (backend, made) in enumerate(self._made):
            if made == name:
                _drop(backend, made)
                del self._made[i]
                return

    def release(self) -> None:
        while self._made:
            backend, name = self._made.pop()
            _drop(backend, name)
        while self._views:
            backend, name = self._views.pop()
            engine.drop_view(backend, name)
        while self._arrow:
            backend, name = self._arrow.pop()
            backend.con.unregister(name)


def _drop(backend: Any, name: str) -> None:
    try:
        backend.drop_table(name, force=True)
    except Exception:
        backend.raw_sql(f'DROP TABLE IF EXISTS "{name}"')


def _hours(later: ir.Value, earlier: ir.Value) -> ir.FloatingValue:
    # a double before dividing: Spark reads the literal 3600.0 as a decimal and would round
    # the quotient to 6 decimal places
    seconds = (later.epoch_seconds() - earlier.epoch_seconds()).cast("float64")  # type: ignore[attr-defined]
    return seconds / 3600.0  # type: ignore[no-any-return]


def _on_duckdb(value: ir.Value) -> bool:
    try:
        return getattr(value._find_backend(), "name", "") == "duckdb"
    except Exception:  # an expression on no backend (a memtable alone)
        return False


def _arg_extreme(
    arg: ir.Column, key: ir.Column, where: ir.BooleanValue | None, *, last: bool
) -> ir.Scalar:
    """``arg`` at the row with the least (``last``: greatest) ``key``, among the rows where
    ``where`` holds and ``key`` is known — Ibis's ``argmin``/``argmax``, except on DuckDB,
    where Ibis writes them as ``first(arg ORDER BY key)``, an ordered aggregate that keeps
    and sorts every row of every group; DuckDB's own ``arg_min_null``/``arg_max_null``
    keep one row per group (and, like PostgreSQL's, skip rows without a key)."""
    if not _on_duckdb(key):
        method = arg.argmax if last else arg.argmin
        return method(key, where=where)
    udf = ibis.udf.agg.builtin(
        name="arg_max_null" if last else "arg_min_null",
        signature=((arg.type(), key.type()), arg.type()),
    )(lambda a, k: None)
    return udf(arg, key, where=where)  # type: ignore[no-any-return]


def arg_min(arg: ir.Column, key: ir.Column, where: ir.BooleanValue | None = None) -> ir.Scalar:
    """``arg`` at the least ``key`` (see :func:`_arg_extreme`)."""
    return _arg_extreme(arg, key, where, last=False)


def arg_max(arg: ir.Column, key: ir.Column, where: ir.BooleanValue | None = None) -> ir.Scalar:
    """``arg`` at the greatest ``key`` (see :func:`_arg_extreme`)."""
    return _arg_extreme(arg, key, where, last=True)


def count_if(table: ir.Table, cond: ir.BooleanValue) -> ir.IntegerScalar:
    """How many rows of ``table`` (in a group) satisfy ``cond`` — 0, not null, for none.

    Written as a filtered count, not as the sum of ``cond`` cast to an integer: DuckDB sums
    integers into 128-bit states and results (``HUGEINT``), which made every such column
    a wide payload through the joins and a ``decimal128`` in Arrow; a count is 64-bit (on
    the large shop world the per-journey promise aggregate took 7.5 s CPU as sums, 4.9 s
    as counts)."""
    return table.count(where=cond)


def _by_as_of(col: ir.TimestampValue, as_of: ir.TimestampScalar) -> ir.TimestampValue:
    """The timestamp if it happened by ``as_of``, else null (not yet happened)."""
    return ibis.ifelse(col <= as_of, col, ibis.null(col.type()))


def promise_flags(data: LensInput, only_broken: bool = False) -> ir.Table:
    """Each journey-linked promise with its status at ``as_of`` as flags: ``on_time`` (kept
    by its due date), ``cancelled`` (cancelled by its due date, before being kept),
    ``broken`` (kept late, or not kept when due) — none of them: open, not due yet —
    and ``kept_late`` (broken, but fulfilled after all by ``as_of``)."""
    as_of = ibis.literal(data.as_of, type="timestamp")
    p = data.until("promises")
    p = p.filter(p.journey_id.notnull())
    kept = _by_as_of(p.kept_at, as_of)
    canc = _by_as_of(p.cancelled_at, as_of)
    on_time = (kept.notnull() & (kept <= p.due_at)).fill_null(False)
    cancelled = (~on_time & canc.notnull() & (canc <= p.due_at)).fill_null(False)
    broken = (~on_time & ~cancelled & (p.due_at <= as_of)).fill_null(False)
    if only_broken:
        p = p.filter(broken)
    return p.select(
        "journey_id",
        "kind",
        "made_at",
        "channel",
        "team",
        kept=kept.notnull(),
        on_time=on_time,
        cancelled=cancelled,
        broken=broken,
        kept_late=broken & kept.notnull(),
    )


def _canned_replies(data: LensInput) -> ir.Table | None:
    """The messages the touch lens found templated (``touch_messages``), if it ran.

    A canned answer an agent pastes carries no ``template_id``; the touch lens finds it
    by its near-duplicates. Messages sent after the touch lens's run are judged by
    ``template_id`` alone."""
    tm = data.result("touch_messages")
    if tm is None or not {"touchpoint_id", "touch"} <= set(tm.columns):
        return None
    tm = tm.filter(tm.touch == "templated")
    return tm.select("touchpoint_id", _canned=ibis.literal(True))


def _touchpoints(data: LensInput, as_of: ir.TimestampScalar, opts: Options) -> ir.Table:
    """Per journey: contacts, replies, transfers, first response, unanswered, switches.

    One hash aggregate over all touchpoints; the comparisons with per-journey times
    (first response after the first contact, contacts after the last reply) and the
    channel switches (a window in time order) only touch the touchpoints of journeys
    with a contact, and of journeys with two or more."""
    tp = data.until("touchpoints")
    tp = tp.filter(tp.journey_id.notnull())
    inbound = tp.direction == "inbound"
    automated = tp.kind.fill_null("").isin(AUTOMATED_KINDS)
    reply = (tp.direction == "outbound") & (
        tp.actor.isin(["person", "bot"]).fill_null(False) | (tp.actor.isnull() & ~automated)
    )
    # automated messages (notifications, marketing, survey invitations, acknowledgements
    # from the system) count for nothing here: leave them out before grouping
    tp = tp.filter(inbound | reply | (tp.kind == "transfer").fill_null(False))
    canned = _canned_replies(data)
    if canned is not None:
        # a reply the touch lens found templated is not personal, template_id or not
        tp = tp.left_join(canned, "touchpoint_id").drop("touchpoint_id_right")
    inbound = tp.direction == "inbound"
    automated = tp.kind.fill_null("").isin(AUTOMATED_KINDS)
    reply = (tp.direction == "outbound") & (
        tp.actor.isin(["person", "bot"]).fill_null(False) | (tp.actor.isnull() & ~automated)
    )
    personal = reply & (tp.actor == "person").fill_null(False) & tp.template_id.isnull()
    if canned is not None:
        personal = personal & tp._canned.isnull()
    agg = tp.group_by("journey_id").aggregate(
        effort_contacts=count_if(tp, inbound),
        first_inbound_at=tp.at.min(where=inbound),
        last_inbound_at=tp.at.max(where=inbound),
        first_channel=arg_min(tp.channel, tp.at, where=inbound),
        transfers=count_if(tp, (tp.kind == "transfer").fill_null(False)),
        replies=count_if(tp, reply),
        personal_replies=count_if(tp, personal),
        _last_reply=tp.at.max(where=reply),
        tp_team=arg_max(tp.team, tp.at, where=reply & tp.team.notnull()),
    )
    # second pass, journeys with a contact only
    contact = agg.filter(agg.effort_contacts > 0).select(
        "journey_id", "first_inbound_at", "_last_reply", "effort_contacts"
    )
    tc = tp.inner_join(contact, "journey_id")
    grace = as_of - ibis.interval(seconds=int(opts.unanswered_after_hours * 3600))
    t_in = tc.direction == "inbound"
    t_reply = (tc.direction == "outbound") & (
        tc.actor.isin(["person", "bot"]).fill_null(False)
        | (tc.actor.isnull() & ~tc.kind.fill_null("").isin(AUTOMATED_KINDS))
    )
    unanswered = t_in & (tc._last_reply.isnull() | (tc.at > tc._last_reply)) & (tc.at <= grace)
    second = tc.group_by("journey_id").aggregate(
        first_response_at=tc.at.min(where=t_reply & (tc.at >= tc.first_inbound_at)),
        unanswered_contacts=count_if(tc, unanswered.fill_null(False)),
    )
    # channel switches, journeys with two or more contacts only
    multi = tc.filter(t_in & (tc.effort_contacts >= 2))
    order = ibis.window(group_by="journey_id", order_by=[multi.at, multi.touchpoint_id])
    multi = multi.select("journey_id", "channel", _prev=multi.channel.lag().over(order))
    switches = multi.group_by("journey_id").aggregate(
        channel_switches=count_if(
            multi, (multi._prev.notnull() & (multi._prev != multi.channel)).fill_null(False)
        )
    )
    out = _join(_join(agg.drop("_last_reply"), second), switches)
    return out.mutate(first_response_hours=_hours(out.first_response_at, out.first_inbound_at))


def _promises(data: LensInput) -> ir.Table:
    p = promise_flags(data)
    agg = p.group_by("journey_id").aggregate(
        promises=p.count(),
        promises_due=count_if(p, p.on_time | p.broken),
        promises_broken=count_if(p, p.broken),
        promises_kept_late=count_if(p, p.kept_late),
        promises_kept=count_if(p, p.kept),
        promises_cancelled=count_if(p, p.cancelled),
        promise_channel=arg_min(p.channel, p.made_at),
        promise_team=arg_min(p.team, p.made_at),
    )
    # the kinds of the broken and late promises: a small subset, aggregated apart (from
    # its own scan: sharing ``p`` would make the engine materialise every promise)
    bad = promise_flags(data, only_broken=True)
    kinds = bad.group_by(["journey_id", "kind"]).aggregate(_late=bad.kept_late.max())
    lists = kinds.group_by("journey_id").aggregate(
        broken_promise_kinds=kinds.kind.collect().sort().join(","),
        kept_late_promise_kinds=kinds.kind.collect(where=kinds._late).sort().join(",").nullif(""),
    )
    return _join(agg, lists)


def _items(data: LensInput) -> ir.Table:
    i = data.until("journey_items")
    return i.group_by("journey_id").aggregate(
        items=i.count(),
        items_unavailable=count_if(i, (i.fulfilled == False).fill_null(False)),  # noqa: E712
        items_fulfilled=count_if(i, (i.fulfilled == True).fill_null(False)),  # noqa: E712
    )


def _rescaled(score: ir.FloatingValue, instrument: ir.StringValue) -> ir.FloatingValue:
    """The score on 0–1 (high = good/easy) for known instruments, else null."""
    cases: list[tuple[Any, Any]] = []
    for name, (lo, hi) in {**TREATMENT_INSTRUMENTS, **EFFORT_INSTRUMENTS}.items():
        cases.append((instrument == name, (score - lo) / (hi - lo)))
    value = ibis.cases(*cases, else_=ibis.null("float64"))
    return ibis.greatest(ibis.least(value, 1.0), 0.0)  # type: ignore[no-any-return]


def _surveys(
    data: LensInput, as_of: ir.TimestampScalar, scorer: SentimentScorer | None
) -> ir.Table:
    s = data.until("surveys")
    s = s.filter(
        s.journey_id.notnull()
        & s.score.notnull()
        & s.responded_at.notnull()
        & (s.responded_at <= as_of)
    )
    s = s.mutate(_instr=s.instrument.lower())
    s = s.mutate(_scaled=_rescaled(s.score, s._instr))
    if scorer is not None:
        comments = s.filter(s.comment.notnull()).select("survey_id", "comment").to_pyarrow()
        scored = pa.table(
            {
                "survey_id": comments.column("survey_id"),
                "_sentiment": scorer.score(comments.column("comment")),
            }
        ).filter(pc.is_valid(pc.field("_sentiment")))
        s = s.left_join(ibis.memtable(scored), "survey_id").select(
            ~ibis.selectors.matches("survey_id_right")
        )
    else:
        s = s.mutate(_sentiment=ibis.null("float64"))
    treat = s._instr.isin(list(TREATMENT_INSTRUMENTS))
    eff = s._instr.isin(list(EFFORT_INSTRUMENTS))
    agg = s.group_by("journey_id").aggregate(
        surveys_answered=s.count(),
        treatment_survey=s._scaled.mean(where=treat),
        _n_nps=count_if(s, s._instr == "nps"),
        _n_csat=count_if(s, s._instr == "csat"),
        _score=s.score.mean(where=treat),
        effort_survey=s._scaled.mean(where=eff),
        comment_sentiment=s._sentiment.mean(),
        survey_team=arg_max(s.team, s.responded_at, where=s.team.notnull()),
    )
    instrument = ibis.cases(
        ((agg._n_nps > 0) & (agg._n_csat > 0), "csat+nps"),
        (agg._n_csat > 0, "csat"),
        (agg._n_nps > 0, "nps"),
        else_=ibis.null("string"),
    )
    return agg.mutate(
        survey_instrument=instrument,
        survey_score=ibis.ifelse(instrument == "csat+nps", ibis.null("float64"), agg._score),
    ).drop("_n_nps", "_n_csat", "_score")


def _join(left: ir.Table, right: ir.Table) -> ir.Table:
    return left.left_join(right, "journey_id").select(~ibis.selectors.matches("journey_id_right"))


def build(
    data: LensInput, scorer: SentimentScorer | None, opts: Options, scratch: Scratch
) -> tuple[ir.Table, pa.Table, list[str]]:
    """The per-journey table (kept in ``scratch``), the same rows as Arrow, and notes on
    what could not be measured."""
    as_of = ibis.literal(data.as_of, type="timestamp")
    notes: list[str] = []
    j = data.until("journeys")
    ended = _by_as_of(j.ended_at, as_of)
    base = j.select(
        "journey_id",
        "customer_id",
        "kind",
        "started_at",
        "desired_outcome",
        "outcome_reason",
        ended_at=ended,
        _outcome=j.outcome.lower(),
        _ended_later=j.ended_at.notnull() & ended.isnull(),
    )
    has_tp, has_p, has_i, has_s = (
        data.has(t) for t in ("touchpoints", "promises", "journey_items", "surveys")
    )
    chan_norm = None
    if has_tp:
        tpa = scratch.keep(_touchpoints(data, as_of, opts))
        chan_norm = tpa.group_by("first_channel").aggregate(
            _wait_norm=_kept(tpa.first_response_hours, tpa.first_response_hours >= 0).median()
        )
        base = _join(base, tpa)
    else:
        notes.append(
            "no touchpoints: contacts, repeats, channel switches, transfers, first-response "
            "wait, unanswered contacts and personal replies are not measured"
        )
        base = base.mutate(
            effort_contacts=ibis.null("int64"),
            first_inbound_at=ibis.null("timestamp"),
            last_inbound_at=ibis.null("timestamp"),
            first_channel=ibis.null("string"),
            first_response_at=ibis.null("timestamp"),
            unanswered_contacts=ibis.null("int64"),
            transfers=ibis.null("int64"),
            replies=ibis.null("int64"),
            personal_replies=ibis.null("int64"),
            tp_team=ibis.null("string"),
            channel_switches=ibis.null("int64"),
            first_response_hours=ibis.null("float64"),
        )
    if has_p:
        base = _join(base, _promises(data))
    else:
        notes.append("no promises: broken promises are not measured")
        base = base.mutate(
            promises=ibis.null("int64"),
            promises_due=ibis.null("int64"),
            promises_broken=ibis.null("int64"),
            promises_kept_late=ibis.null("int64"),
            promises_kept=ibis.null("int64"),
            promises_cancelled=ibis.null("int64"),
            broken_promise_kinds=ibis.null("string"),
            kept_late_promise_kinds=ibis.null("string"),
            promise_channel=ibis.null("string"),
            promise_team=ibis.null("string"),
        )
    if has_i:
        base = _join(base, _items(data))
    else:
        base = base.mutate(
            items=ibis.null("int64"),
            items_unavailable=ibis.null("int64"),
            items_fulfilled=ibis.null("int64"),
        )
    if has_s:
        base = _join(base, _surveys(data, as_of, scorer))
    else:
        notes.append("no surveys: the customers' own ratings are not part of the treatment")
        base = base.mutate(
            surveys_answered=ibis.null("int64"),
            treatment_survey=ibis.null("float64"),
            effort_survey=ibis.null("float64"),
            comment_sentiment=ibis.null("float64"),
            survey_team=ibis.null("string"),
            survey_instrument=ibis.null("string"),
            survey_score=ibis.null("float64"),
        )
    if data.has("customers"):
        c = data.until("customers").select("customer_id", "segment")
        base = base.left_join(c, "customer_id").select(~ibis.selectors.matches("customer_id_right"))
    else:
        base = base.mutate(segment=ibis.null("string"))
    base = _fill_counts(base, has_tp, has_p, has_i, has_s)
    base = base.mutate(elapsed_hours=_hours(base.ended_at, base.started_at))
    elapsed = _hours(ended, j.started_at)
    kind_norm = j.group_by("kind").aggregate(_elapsed_norm=_kept(elapsed, elapsed >= 0).median())
    final, rows = scratch.keep_arrow(_finish(base, kind_norm, chan_norm))
    if has_tp:
        scratch.drop(tpa)
    return final, rows, notes


def _kept(x: ir.NumericColumn, keep: ir.BooleanValue) -> ir.NumericColumn:
    """``x`` where ``keep`` holds, else missing: ``x.median(where=keep)`` written so that
    every engine can run it (Ibis's PySpark compiler wraps the constant 0.5 of
    ``percentile`` in the filter too, which Spark refuses as not foldable)."""
    return keep.ifelse(x, ibis.null(x.type()))  # type: ignore[return-value]


def _fill_counts(t: ir.Table, tp: bool, p: bool, i: bool, s: bool) -> ir.Table:
    """Counts are 0, not unknown, for a journey with no rows in a table that is present."""
    cols: list[str] = []
    if tp:
        cols += [
            "effort_contacts",
            "unanswered_contacts",
            "transfers",
            "replies",
            "personal_replies",
            "channel_switches",
        ]
    if p:
        cols += ["promises", "promises_due", "promises_broken", "promises_kept_late"]
        cols += ["promises_kept", "promises_cancelled"]
    if i:
        cols += ["items", "items_unavailable", "items_fulfilled"]
    if s:
        cols += ["surveys_answered"]
    return t.mutate(**{c: t[c].fill_null(0) for c in cols})


def _outcome(t: ir.Table) -> tuple[ir.BooleanValue, ir.StringValue]:
    """``outcome_achieved`` and the rule that decided it (see the docs)."""
    recorded = t._outcome.isin(["achieved", "failed", "open"]).fill_null(False)
    rec_value = ibis.ifelse(t._ended_later, ibis.null("boolean"), t._outcome == "achieved")
    rec_value = ibis.ifelse(t._outcome == "open", ibis.null("boolean"), rec_value)
    items_false = t.items_unavailable.fill_null(0) > 0
    items_true = (t.items.fill_null(0) > 0) & (t.items_fulfilled == t.items).fill_null(False)
    open_promises = t.promises.fill_null(0) - t.promises_cancelled.fill_null(0)
    promises_true = (open_promises > 0) & (t.promises_kept.fill_null(0) >= open_promises)
    reopened = (t.last_inbound_at > t.ended_at).fill_null(False)
    resolved = t.ended_at.notnull()
    value = ibis.cases(
        (recorded, rec_value),
        (items_false, False),
        (items_true, True),
        (promises_true, True),
        (resolved & reopened, False),
        (resolved, True),
        else_=ibis.null("boolean"),
    )
    source = ibis.cases(
        (recorded, "recorded"),
        (items_false | items_true, "items"),
        (promises_true, "promises"),
        (resolved, "resolution"),
        else_=ibis.null("string"),
    )
    return value, source


def _finish(base: ir.Table, kind_norm: ir.Table, chan_norm: ir.Table | None) -> ir.Table:
    t = base.left_join(kind_norm, "kind").select(~ibis.selectors.matches("kind_right"))
    if chan_norm is not None:
        t = t.left_join(chan_norm, "first_channel").select(
            ~ibis.selectors.matches("first_channel_right")
        )
    else:
        t = t.mutate(_wait_norm=ibis.null("float64"))
    # the ratios, then the parts, each computed once in a select of its own: the blend
    # and the output read them as columns (written inline, the engine would evaluate
    # every part three times)
    t = t.mutate(
        _wait_ratio=ibis.ifelse(
            t._wait_norm > 0, t.first_response_hours / t._wait_norm, ibis.null("float64")
        ),
        _elapsed_ratio=ibis.ifelse(
            t._elapsed_norm > 0, t.elapsed_hours / t._elapsed_norm, ibis.null("float64")
        ),
    )
    contacts = t.effort_contacts
    wait_ratio = t._wait_ratio
    has_contact = (contacts > 0).fill_null(False)
    parts = {
        "treatment_survey": t.treatment_survey,
        "treatment_wait": ibis.ifelse(
            wait_ratio.notnull(),
            ibis.least(1.0, 1.0 / ibis.greatest(wait_ratio, 1e-9)),
            ibis.null("float64"),
        ),
        "treatment_answered": ibis.ifelse(
            has_contact, 1.0 - t.unanswered_contacts / contacts, ibis.null("float64")
        ),
        "treatment_transfers": ibis.ifelse(
            has_contact | (t.transfers > 0).fill_null(False),
            1.0 / (1.0 + t.transfers),
            ibis.null("float64"),
        ),
        "treatment_promises": ibis.ifelse(
            (t.promises_due > 0).fill_null(False),
            1.0 - t.promises_broken / t.promises_due,
            ibis.null("float64"),
        ),
        "treatment_personal": ibis.ifelse(
            (t.replies > 0).fill_null(False),
            t.personal_replies / t.replies,
            ibis.null("float64"),
        ),
        "treatment_sentiment": (t.comment_sentiment + 1.0) / 2.0,
    }
    t = t.mutate(**parts)
    parts = {name: t[name] for name in parts}
    outcome, source = _outcome(t)
    contacts = t.effort_contacts
    total: Any = ibis.literal(0.0)
    count: Any = ibis.literal(0)
    for v in parts.values():
        total = total + v.fill_null(0.0)
        count = count + v.notnull().cast("int32")
    treatment = ibis.ifelse(count > 0, total / count, ibis.null("float64"))
    team = ibis.coalesce(t.tp_team, t.promise_team, t.survey_team)
    out = t.select(
        "journey_id",
        "customer_id",
        "kind",
        "started_at",
        "ended_at",
        month=t.started_at.strftime("%Y-%m"),
        channel=ibis.coalesce(t.first_channel, t.promise_channel),
        team=team,
        segment=t.segment,
        outcome_achieved=outcome,
        outcome_source=source,
        outcome_reason=t.outcome_reason,
        treatment=treatment,
        treatment_parts=count,
        **parts,
        survey_instrument=t.survey_instrument,
        survey_score=t.survey_score,
        surveys_answered=t.surveys_answered,
        comment_sentiment=t.comment_sentiment,
        effort_contacts=contacts,
        repeat_contacts=ibis.greatest(contacts - 1, 0),
        channel_switches=t.channel_switches,
        transfers=t.transfers,
        unanswered_contacts=t.unanswered_contacts,
        first_response_hours=t.first_response_hours,
        first_response_vs_norm=t._wait_ratio,
        elapsed_hours=t.elapsed_hours,
        elapsed_vs_norm=t._elapsed_ratio,
        effort_survey=t.effort_survey,
        items=t.items,
        items_unavailable=t.items_unavailable,
        promises=t.promises,
        promises_due=t.promises_due,
        promises_kept=t.promises_kept,
        promises_broken=t.promises_broken,
        promises_kept_late=t.promises_kept_late,
        broken_promise_kinds=t.broken_promise_kinds,
        kept_late_promise_kinds=t.kept_late_promise_kinds,
        replies=t.replies,
        personal_replies=t.personal_replies,
        desired_outcome=t.desired_outcome,
    )
    return out
