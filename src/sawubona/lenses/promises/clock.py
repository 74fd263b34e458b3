"""The business clock as Ibis expressions: ``B(t)`` and its inverse by ``ASOF`` joins.

Rows carry ``_cal``, the name of their business calendar (null = 24/7, where the
clock is elapsed seconds since 1970). The calendars' open intervals are a small
table (:func:`interval_table`) joined on ``_cal`` and the last interval start at or
before ``t``: ``B(t) = cum + clamp(t - start, 0, end - start)``. The inverse (the
instant the clock shows ``b``) joins on the last interval with ``cum < b``. Same
arithmetic as :class:`sawubona.lenses.promises.calendar.Clock`, tested against it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from sawubona.lenses.promises.calendar import Calendar

if TYPE_CHECKING:
    import ibis.expr.types as ir

EPOCH = dt.datetime(1970, 1, 1)


def interval_table(
    calendars: Mapping[str, Calendar], start: dt.datetime, end: dt.datetime
) -> ir.Table | None:
    """Every business calendar's open intervals from ``start`` to ``end`` (None if none)."""
    import ibis

    parts = []
    for name, cal in calendars.items():
        if cal.continuous:
            continue
        iv = cal.intervals(start, end)
        parts.append(
            pa.table(
                {
                    "_cn": pa.array([name] * iv.num_rows, pa.string()),
                    "_cs": iv.column("start"),
                    "_ce": iv.column("end"),
                    "_cc": iv.column("cum"),
                }
            )
        )
    if not parts:
        return None
    return ibis.memtable(pa.concat_tables(parts))


def seconds(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    """``later - earlier`` in seconds (microsecond precision)."""
    return later.delta(earlier, unit="microsecond").cast("float64") / 1e6


def epoch_seconds(t: ir.TimestampValue) -> ir.FloatingValue:
    import ibis

    return seconds(t, ibis.literal(EPOCH, type="timestamp"))


def add_seconds(t: ir.TimestampValue, s: ir.NumericValue) -> ir.TimestampValue:
    return t + (s * 1e6).round().cast("int64").as_interval("us")


def with_clock(t: ir.Table, col: str, out: str, cal: ir.Table | None) -> ir.Table:
    """``t`` with ``out`` = B(``t[col]``) in its row's calendar (``_cal``)."""
    import ibis

    x = t[col]
    if cal is None:
        return t.mutate(**{out: epoch_seconds(x)})
    cal = cal.view()  # a fresh reference: the same calendar may be joined many times
    j = t.asof_join(cal, on=x >= cal._cs, predicates=[t._cal == cal._cn])
    length = seconds(cal._ce, cal._cs)
    inside = ibis.greatest(ibis.least(seconds(x, cal._cs), length), 0.0)
    b = ibis.cases(
        (x.isnull(), ibis.null("float64")),
        (t._cal.isnull(), epoch_seconds(x)),
        (cal._cs.isnull(), ibis.literal(0.0)),
        else_=cal._cc + inside,
    )
    return j.select(*t.columns, **{out: b})


def with_instant(t: ir.Table, col: str, out: str, cal: ir.Table | None) -> ir.Table:
    """``t`` with ``out`` = the first instant at which the clock shows ``t[col]``."""
    import ibis

    x = t[col]
    at_epoch = add_seconds(ibis.literal(EPOCH, type="timestamp"), x)
    if cal is None:
        return t.mutate(**{out: at_epoch})
    cal = cal.view()
    j = t.asof_join(cal, on=x > cal._cc, predicates=[t._cal == cal._cn])
    value = ibis.cases(
        (x.isnull(), ibis.null("timestamp")),
        (t._cal.isnull(), at_epoch),
        (cal._cs.isnull(), ibis.null("timestamp")),
        else_=add_seconds(cal._cs, x - cal._cc),
    )
    return j.select(*t.columns, **{out: value})
