"""Per-customer purchase summaries as Ibis expressions (they run where the data lives).

The time grain is the **day** (UTC calendar day of ``started_at``): several
purchase journeys of one customer on one day are one purchase, as in Fader,
Hardie & Lee's CDNOW data and ``lifetimes``' ``freq="D"``. Days are integers
(days since 1970-01-01), so every difference below is a whole number of days.

Output columns
--------------
:func:`purchase_days` — one row per customer and purchase day:
    ``customer_id``, ``day``, ``journeys`` (purchase journeys that day),
    ``value`` (their summed value; null when no journey has one).

:func:`customer_summary` — one row per customer with a purchase up to ``as_of``:
    ``first_day``, ``last_day``, ``purchase_days``, ``frequency`` (repeat purchase
    days: ``purchase_days − 1``), ``recency_days`` (``last_day − first_day``),
    ``age_days`` (T: ``as_of_day − first_day``), ``journeys``, ``value_total``,
    ``value_mean`` (value per purchase day).

:func:`compressed_summary` — ``frequency``, ``recency_days``, ``age_days``, ``customers``:
    the unique (x, t_x, T) rows the models are fitted on.

:func:`holdout_purchases` — ``customer_id``, ``holdout_purchases``: purchase days in
    ``(as_of_day, end_day]``.

:func:`gap_stats` — per customer with at least ``min_gaps`` gaps between purchase days:
    ``gaps``, ``log_gap_mean``, ``log_gap_var`` (population variance of ln gap),
    ``gap_median``, ``gap_max`` (days).

:func:`item_shares` — per customer and item: the share of their journeys that wanted it
    (the core item is the item with the largest share).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ibis

if TYPE_CHECKING:
    import ibis.expr.types as ir

EPOCH = dt.date(1970, 1, 1)


def day_number(moment: dt.datetime | dt.date) -> int:
    """Days since 1970-01-01 of the calendar day of ``moment``."""
    day = moment.date() if isinstance(moment, dt.datetime) else moment
    return (day - EPOCH).days


def day_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def purchase_journeys(journeys: ir.Table, kinds: Sequence[str]) -> ir.Table:
    """The journeys that are purchases or visits (``kind`` in ``kinds``; all when empty)."""
    if kinds:
        journeys = journeys.filter(journeys.kind.isin(list(kinds)))
    return journeys


def purchase_days(journeys: ir.Table) -> ir.Table:
    """One row per customer and purchase day (see the module docstring)."""
    j = journeys.mutate(day=journeys.started_at.date().epoch_days().cast("int32"))
    value = j.value.sum() if "value" in j.columns else ibis.null("float64")
    return j.group_by(["customer_id", "day"]).aggregate(journeys=j.count(), value=value)


def customer_summary(days: ir.Table, as_of_day: int) -> ir.Table:
    """Frequency, recency, age and value per customer (days up to ``as_of_day``)."""
    d = days.filter(days.day <= as_of_day)
    s = d.group_by("customer_id").aggregate(
        first_day=d.day.min(),
        last_day=d.day.max(),
        purchase_days=d.count(),
        journeys=d.journeys.sum(),
        value_total=d.value.sum(),
    )
    return s.mutate(
        frequency=s.purchase_days - 1,
        recency_days=s.last_day - s.first_day,
        age_days=ibis.literal(as_of_day) - s.first_day,
        value_mean=s.value_total / s.purchase_days,
    )


def compressed_summary(summary: ir.Table) -> ir.Table:
    """Unique (frequency, recency_days, age_days) rows with their customer counts."""
    return summary.group_by(["frequency", "recency_days", "age_days"]).aggregate(
        customers=summary.count()
    )


def holdout_purchases(days: ir.Table, as_of_day: int, end_day: int) -> ir.Table:
    """Purchase days per customer after ``as_of_day`` up to and including ``end_day``."""
    d = days.filter((days.day > as_of_day) & (days.day <= end_day))
    return d.group_by("customer_id").aggregate(holdout_purchases=d.count())


def gap_stats(days: ir.Table, as_of_day: int, min_gaps: int) -> ir.Table:
    """Each regular's own cadence: the gaps (days) between consecutive purchase days."""
    d = days.filter(days.day <= as_of_day)
    counts = d.group_by("customer_id").aggregate(n_days=d.count())
    regulars = counts.filter(counts.n_days > min_gaps).select("customer_id")
    d = d.semi_join(regulars, "customer_id")
    w = ibis.window(group_by="customer_id", order_by="day")
    g = d.mutate(gap=(d.day - d.day.lag().over(w)).cast("float64"))
    g = g.filter(g.gap.notnull())
    g = g.mutate(log_gap=g.gap.log())
    s = g.group_by("customer_id").aggregate(
        gaps=g.count(),
        log_gap_mean=g.log_gap.mean(),
        log_gap_sq=(g.log_gap * g.log_gap).mean(),
        gap_median=g.gap.median(),
        gap_max=g.gap.max(),
    )
    return s.mutate(log_gap_var=s.log_gap_sq - s.log_gap_mean * s.log_gap_mean).drop("log_gap_sq")


def last_journeys(journeys: ir.Table, customers: ir.Table, k: int) -> ir.Table:
    """Each listed customer's last ``k`` purchase journeys: ``customer_id``,
    ``journey_id``, ``started_at``, ``rank_from_last`` (0 = the last)."""
    j = journeys.semi_join(customers, "customer_id")
    w = ibis.window(group_by="customer_id", order_by=[ibis.desc("started_at"), "journey_id"])
    j = j.mutate(rank_from_last=ibis.row_number().over(w))
    return j.filter(j.rank_from_last < k).select(
        "customer_id", "journey_id", "started_at", "rank_from_last"
    )


def item_shares(
    journeys: ir.Table, items: ir.Table, customers: ir.Table, exclude: Sequence[str] = ()
) -> ir.Table:
    """For each listed customer and each item they wanted: ``customer_id``, ``item_id``,
    ``journeys`` (their journeys that wanted it), ``share`` (of their journeys with items).
    Items in ``exclude`` (postage, fees) are left out."""
    j = journeys.semi_join(customers, "customer_id").select("customer_id", "journey_id")
    ji = items.select("journey_id", "item_id").distinct()
    if exclude:
        ji = ji.filter(~ji.item_id.isin(list(exclude)))
    joined = ji.join(j, "journey_id")
    per_item = joined.group_by(["customer_id", "item_id"]).aggregate(journeys=joined.count())
    with_items = joined.group_by("customer_id").aggregate(item_journeys=joined.journey_id.nunique())
    t = per_item.join(with_items, "customer_id")
    return t.select(
        "customer_id",
        "item_id",
        "journeys",
        share=t.journeys.cast("float64") / t.item_journeys.cast("float64"),
    )
