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


#: engines whose Ibis compiler has no ASOF join (they get :func:`asof_join`'s portable form)
NO_ASOF = frozenset({"pyspark"})


def _engine(*tables: ir.Table) -> str:
    for t in tables:
        found, _ = t._find_backends()
        if found:
            return str(getattr(found[0], "name", ""))
    return ""


def asof_join(
    left: ir.Table, right: ir.Table, key: str, op: str, right_key: str, by: tuple[str, str]
) -> ir.Table:
    """Each row of ``left`` with the one row of ``right`` whose ``right_key`` is the nearest
    to ``left[key]`` on the side ``op`` names (``">="``, ``">"``: the last at or before;
    ``"<"``, ``"<="``: the first after), among rows with ``left[by[0]] == right[by[1]]``;
    no match gives nulls. The columns are ``left``'s then ``right``'s (names must differ).

    An Ibis ``asof_join`` where the engine has one; elsewhere (Spark) the same rows by a
    left join on the key and the inequality, keeping per left row the nearest match
    (ties between equal keys go to the smallest remaining right columns).
    """
    import ibis

    x, y = left[key], right[right_key]
    cond = {">=": x >= y, ">": x > y, "<": x < y, "<=": x <= y}[op]
    same = left[by[0]] == right[by[1]]
    if _engine(left, right) not in NO_ASOF:
        return left.asof_join(right, on=cond, predicates=[same]).select(
            *left.columns, *right.columns
        )
    row = "_asof_row"
    numbered = left.mutate(**{row: ibis.row_number().over()})
    x, same = numbered[key], numbered[by[0]] == right[by[1]]
    cond = {">=": x >= y, ">": x > y, "<": x < y, "<=": x <= y}[op]
    j = numbered.left_join(right, [same, cond]).select(*numbered.columns, *right.columns)
    near = ibis.desc(right_key) if op in (">=", ">") else ibis.asc(right_key)
    rest = [c for c in right.columns if c != right_key]
    w = ibis.window(group_by=j[row], order_by=[near, *rest])
    j = j.mutate(_asof_rank=ibis.row_number().over(w))
    return j.filter(j._asof_rank == 0).select(*left.columns, *right.columns)


def with_clock(t: ir.Table, col: str, out: str, cal: ir.Table | None) -> ir.Table:
    """``t`` with ``out`` = B(``t[col]``) in its row's calendar (``_cal``)."""
    import ibis

    x = t[col]
    if cal is None:
        return t.mutate(**{out: epoch_seconds(x)})
    cal = cal.view()  # a fresh reference: the same calendar may be joined many times
    j = asof_join(t, cal, col, ">=", "_cs", ("_cal", "_cn"))
    x = j[col]
    length = seconds(j._ce, j._cs)
    inside = ibis.greatest(ibis.least(seconds(x, j._cs), length), 0.0)
    b = ibis.cases(
        (x.isnull(), ibis.null("float64")),
        (j._cal.isnull(), epoch_seconds(x)),
        (j._cs.isnull(), ibis.literal(0.0)),
        else_=j._cc + inside,
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
    j = asof_join(t, cal, col, ">", "_cc", ("_cal", "_cn"))
    x = j[col]
    value = ibis.cases(
        (x.isnull(), ibis.null("timestamp")),
        (j._cal.isnull(), add_seconds(ibis.literal(EPOCH, type="timestamp"), x)),
        (j._cs.isnull(), ibis.null("timestamp")),
        else_=add_seconds(j._cs, x - j._cc),
    )
    return j.select(*t.columns, **{out: value})
