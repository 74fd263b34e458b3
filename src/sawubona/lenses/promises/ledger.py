"""The ledger: one row per promise with its frozen status, as one Ibis expression.

Steps (all relative to ``as_of``; fields later than it have not happened yet):

1. **Frame** — promises from the ``promises`` table and from policies, in one layout.
2. **Clock** — business clock readings at made, stated due and "end" (kept, else
   ``as_of``) in each kind's calendar (:mod:`.clock`); policy deadlines are
   computed from ``within`` business seconds.
3. **Pauses** — for kinds that may pause, touchpoints of the pause kinds open an
   interval that lasts until the journey's next touchpoint. The clock stops in
   them, so the effective deadline moves on by the paused business time.
4. **Status**, frozen at the first terminal event: ``kept`` (kept by the due
   time, before any cancellation), ``cancelled`` (cancelled before it was kept
   and before it fell due), ``broken`` (due passed without either: kept late or
   not kept), else ``at_risk`` or ``open``.
5. **Enrichment** — in :mod:`.enrich`: kind norms, at-risk, padding, renegotiated
   due dates, the first make-good after a broken promise, the stake.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from sawubona.lenses.promises import clock as C
from sawubona.lenses.promises.calendar import ALWAYS
from sawubona.lenses.promises.policies import Book, generate

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.lenses.base import LensInput

FRAME = {
    "promise_id": "string",
    "customer_id": "string",
    "journey_id": "string",
    "kind": "string",
    "made_at": "timestamp(6)",
    "due_at": "timestamp(6)",
    "made_by": "string",
    "team": "string",
    "channel": "string",
    "kept_at": "timestamp(6)",
    "cancelled_at": "timestamp(6)",
    "cancel_reason": "string",
    "source": "string",
    "source_row": "string",
    "within_s": "float64",
}
HOUR = 3600.0


@dataclass(frozen=True)
class Options:
    """The settings the ledger uses (see the lens's declaration for their meaning)."""

    as_of: dt.datetime
    at_risk_quantile: float = 0.9
    padding_ratio: float = 2.0
    make_good_days: float = 7.0
    make_good_touchpoint_kinds: tuple[str, ...] = ("apology",)
    make_good_action_kinds: tuple[str, ...] = ("credit", "compensation")
    pause_after_message_minutes: float = 15.0


def frame(data: LensInput, book: Book) -> ir.Table | None:
    """Promises from the table and from every policy, one layout (None if there are none)."""
    import ibis

    parts = []
    if data.has("promises"):
        p = data.until("promises")
        parts.append(
            p.mutate(
                source=ibis.literal("promises"),
                source_row=p._source,
                within_s=ibis.null("float64"),
            )
        )
    for policy in book.policies:
        g = generate(data, book, policy)
        if g is not None:
            parts.append(g)
    if not parts:
        return None
    cast = [t.select(**{c: t[c].cast(ty) for c, ty in FRAME.items()}) for t in parts]
    return cast[0].union(*cast[1:]) if len(cast) > 1 else cast[0]


def _kind_case(t: ir.Table, values: Mapping[str, Any], default: Any, type_: str) -> ir.Value:
    import ibis

    def lit(v: Any) -> ir.Value:
        if type_ == "float64" and v is not None:
            # a bare float literal is NUMERIC on PostgreSQL; a cast from text is a double
            return ibis.literal(repr(float(v))).cast("float64")
        return ibis.literal(v, type=type_)

    if not values:
        return lit(default)
    return ibis.cases(*[(t.kind == k, lit(v)) for k, v in values.items()], else_=lit(default))


def pauses(data: LensInput, kinds: set[str], opts: Options) -> ir.Table | None:
    """Pause intervals: a touchpoint of a pause kind until the journey's next touchpoint
    (or ``as_of``), with who paused and whether a customer message came just before."""
    import ibis

    if not kinds or not data.has("touchpoints"):
        return None
    tp = data.until("touchpoints")
    tp = tp.filter(tp.journey_id.notnull())
    w = ibis.window(group_by=tp.journey_id, order_by=[tp.at, tp.touchpoint_id])
    tp = tp.mutate(
        _next=tp.at.lead().over(w),
        _prev_at=tp.at.lag().over(w),
        _prev_dir=tp.direction.lag().over(w),
    )
    p = tp.filter(tp.kind.isin(sorted(kinds)))
    quick = C.seconds(p.at, p._prev_at) <= opts.pause_after_message_minutes * 60
    return p.select(
        p_journey=p.journey_id,
        p_kind=p.kind,
        p_start=p.at,
        p_end=ibis.coalesce(p._next, ibis.literal(opts.as_of, type="timestamp")),
        p_team=p.team,
        p_agent=p.agent_id,
        p_after_customer=((p._prev_dir == "inbound") & quick).fill_null(False),
        p_id=p.touchpoint_id,
    )


def _paused_deadlines(
    t: ir.Table, pz: ir.Table, book: Book, cal: ir.Table | None, as_of: ir.Value
) -> ir.Table:
    """Per pausable promise with pauses: ``_due_target`` (the business clock reading at
    the effective deadline) and its instant ``_due_p``."""
    import ibis

    pausable = book.pausable
    listed = [k for k in pausable if k != "*"]
    cond = ibis.literal(False)
    for k in listed:
        cond |= (t.kind == k) & pz.p_kind.isin(list(pausable[k]))
    if "*" in pausable:
        cond |= ~t.kind.isin(listed or ["\x00"]) & pz.p_kind.isin(list(pausable["*"]))
    end = ibis.coalesce(t._kept, as_of)
    pp = t.join(
        pz,
        [t.journey_id == pz.p_journey, pz.p_end > t.made_at, pz.p_start < end, cond],
    ).select(
        t.promise_id,
        t._cal,
        t._bm,
        t._h,
        t.made_at,
        s=ibis.greatest(pz.p_start, t.made_at),
        e=ibis.least(pz.p_end, end),
    )
    w = ibis.window(group_by=pp.promise_id, order_by=[pp.s, pp.e])
    ts = "timestamp(6)"
    seg = pp.select(
        "promise_id",
        "_cal",
        "_bm",
        "_h",
        seg_start=ibis.coalesce(pp.e.lag().over(w), pp.made_at).cast(ts),
        seg_end=pp.s.cast(ts),
    )
    last = pp.group_by("promise_id", "_cal", "_bm", "_h").aggregate(
        seg_start=pp.e.max().cast(ts), seg_end=ibis.null(ts)
    )
    segs = seg.union(last.select(*seg.columns))
    segs = C.with_clock(segs, "seg_start", "_bs", cal)
    segs = C.with_clock(segs, "seg_end", "_be", cal)
    active = segs._be - segs._bs
    segs = segs.mutate(_active=active)
    cw = ibis.cumulative_window(group_by=segs.promise_id, order_by=[segs.seg_start, segs._be])
    segs = segs.mutate(_before=segs._active.sum().over(cw) - segs._active.fill_null(0.0))
    segs = segs.mutate(_before=segs._before.fill_null(0.0))
    reach = segs.filter(segs._active.isnull() | (segs._before + segs._active >= segs._h))
    first = reach.group_by("promise_id", "_cal").aggregate(
        _due_target=(reach._bs + reach._h - reach._before).argmin(reach.seg_start)
    )
    first = C.with_instant(first, "_due_target", "_due_p", cal)
    return first.select(p_pid="promise_id", _due_target="_due_target", _due_p="_due_p")


def status(data: LensInput, promises: ir.Table, book: Book, opts: Options) -> ir.Table:
    """The ledger expression: one row per promise (see module docstring)."""
    import ibis

    as_of = ibis.literal(opts.as_of, type="timestamp")
    cal_names = {k: r.calendar.name for k, r in book.kinds.items() if not r.calendar.continuous}
    default_cal = None if book.default.calendar.continuous else book.default.calendar.name
    shares = {k: r.at_risk_share for k, r in book.kinds.items()}
    t = promises.mutate(
        _kept=ibis.ifelse(promises.kept_at <= as_of, promises.kept_at, None),
        _cancelled=ibis.ifelse(promises.cancelled_at <= as_of, promises.cancelled_at, None),
        _cal=_kind_case(promises, cal_names, default_cal, "string"),
        _share=_kind_case(promises, shares, book.default.at_risk_share, "float64"),
    )
    cal: ir.Table | None = None
    if book.business_calendars:
        span = promises.aggregate(lo=promises.made_at.min(), hi=promises.due_at.max()).execute()
        lo, last_due = span["lo"].iloc[0], span["hi"].iloc[0]
        lo = opts.as_of if lo is None or lo != lo else lo.to_pydatetime()
        last_due = opts.as_of if last_due is None or last_due != last_due else last_due
        longest = max([book.within_seconds(p) for p in book.policies] + [0.0])
        # far enough for every stated due time, and for policy deadlines moved by pauses
        hi = max(opts.as_of, pd.Timestamp(last_due).to_pydatetime()) + dt.timedelta(
            days=400 + 3 * longest / 3600
        )
        cal = C.interval_table(book.business_calendars, lo - dt.timedelta(days=7), hi)
    t = C.with_clock(t, "made_at", "_bm", cal)
    if book.policies:  # deadlines of policy promises: within_s business seconds after made
        t = t.mutate(_target=t._bm + t.within_s)
        t = C.with_instant(t, "_target", "_gen_due", cal)
        t = t.mutate(due_at=ibis.coalesce(t.due_at, t._gen_due)).drop("_target", "_gen_due")
    t = C.with_clock(t, "due_at", "_bd", cal)
    t = t.mutate(_h=t._bd - t._bm)

    pause_kinds = {k for v in book.pausable.values() for k in v}
    pz = pauses(data, pause_kinds, opts)
    if pz is not None:
        moved = _paused_deadlines(t, pz, book, cal, as_of)
        t = t.left_join(moved, t.promise_id == moved.p_pid).select(
            *t.columns, "_due_target", "_due_p"
        )
        t = t.mutate(
            _due=ibis.coalesce(t._due_p, t.due_at),
            _bde=ibis.coalesce(t._due_target, t._bd),
        ).drop("_due_target", "_due_p")
    else:
        t = t.mutate(_due=t.due_at, _bde=t._bd)
    t = t.mutate(_paused=ibis.greatest(t._bde - t._bm - t._h, 0.0))
    t = t.mutate(_end=ibis.coalesce(t._kept, as_of))
    t = C.with_clock(t, "_end", "_bend", cal)

    kept_ok = (
        t._kept.notnull()
        & (t._kept <= t._due)
        & (t._cancelled.isnull() | (t._kept <= t._cancelled))
    )
    cancelled_first = ~kept_ok & t._cancelled.notnull() & (t._cancelled < t._due)
    broken = ~kept_ok & ~cancelled_first & (t._due <= as_of)
    terminal = kept_ok | cancelled_first | broken
    t = t.mutate(
        _state=ibis.cases(
            (kept_ok, "kept"), (cancelled_first, "cancelled"), (broken, "broken"), else_="open"
        )
    )
    elapsed = t._bend - t._bm - t._paused
    t = t.mutate(
        broken_how=ibis.cases(
            (broken & t._kept.notnull(), "late"), (broken, "not_kept"), else_=ibis.null("string")
        ),
        status_at=ibis.cases(
            (kept_ok, t._kept),
            (cancelled_first, t._cancelled),
            (broken, t._due),
            else_=ibis.null("timestamp"),
        ),
        promised_hours=C.seconds(t.due_at, t.made_at) / HOUR,
        promised_business_hours=t._h / HOUR,
        paused_business_hours=t._paused / HOUR,
        lateness_hours=ibis.ifelse(
            t._state.isin(["kept", "broken"]), C.seconds(t._end, t._due) / HOUR, None
        ),
        business_lateness_hours=ibis.ifelse(
            t._state.isin(["kept", "broken"]), (t._bend - t._bde) / HOUR, None
        ),
        time_left_hours=ibis.ifelse(~terminal, C.seconds(t._due, as_of) / HOUR, None),
        business_time_left_hours=ibis.ifelse(~terminal, (t._h - elapsed) / HOUR, None),
        elapsed_share=ibis.ifelse(~terminal & (t._h > 0), elapsed / t._h, None),
        _ttk=ibis.ifelse(t._kept.notnull(), (t._bend - t._bm - t._paused) / HOUR, None),
    )
    return t.select(
        "promise_id",
        "customer_id",
        "journey_id",
        "kind",
        "source",
        "made_by",
        "team",
        "channel",
        "made_at",
        due_at=t._due,
        stated_due_at=t.due_at,
        kept_at=t._kept,
        cancelled_at=t._cancelled,
        cancel_reason=t.cancel_reason,
        state=t._state,
        broken_how=t.broken_how,
        status_at=t.status_at,
        calendar=t._cal.fill_null(ALWAYS),
        promised_hours=t.promised_hours,
        promised_business_hours=t.promised_business_hours,
        paused_business_hours=t.paused_business_hours,
        lateness_hours=t.lateness_hours,
        business_lateness_hours=t.business_lateness_hours,
        time_left_hours=t.time_left_hours,
        business_time_left_hours=t.business_time_left_hours,
        elapsed_share=t.elapsed_share,
        at_risk_share=t._share,
        time_to_keep_hours=t._ttk,
        source_row=t.source_row,
    )
