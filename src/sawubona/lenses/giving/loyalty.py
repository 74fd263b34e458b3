"""Loyalty penalty: what long-standing customers pay against what a new customer pays today.

For every subscription held at ``as_of`` (plans and add-ons) we compare
``monthly_fee_paid`` with the plan's ``monthly_fee`` — the price a new customer
pays for the same plan today — and group customers by **tenure** (years since
``customers.joined_at``, else since their first subscription). A customer paying
more than the new-customer price is owed the difference: a gift of 12 × the
difference a year. Closed (legacy) plans are compared with their listed fee and
flagged, since no new customer can take them; the best-plan part finds the open
plan that would serve those customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.base import Finding
from sawubona.lenses.giving import messages
from sawubona.lenses.giving.common import gifts_table, json_str_column, money, to_json

if TYPE_CHECKING:
    from sawubona.lenses.giving.lens import Context

#: a fee counts as higher only above this many currency units (rounding noise)
TOLERANCE = 0.005
YEAR_S = 365.25 * 86400


def band_labels(edges: list[float]) -> list[str]:
    """``[1, 2, 5]`` → ``["<1y", "1–2y", "2–5y", "5y+"]``."""
    out, lo = [], None
    for e in edges:
        out.append(f"<{e:g}y" if lo is None else f"{lo:g}–{e:g}y")
        lo = e
    out.append(f"{lo:g}y+" if lo is not None else "all")
    return out


def parse_bands(text: str) -> list[float]:
    try:
        edges = sorted({float(x) for x in str(text).split(",") if x.strip()})
    except ValueError:
        from sawubona.errors import SawubonaError

        raise SawubonaError(
            f"setting giving.tenure_bands = {text!r} is not a list of years; give e.g. 1,2,3,5"
        ) from None
    return [e for e in edges if e > 0]


@dataclass
class Loyalty:
    table: pa.Table  # giving_loyalty_penalty
    bands: pa.Table  # giving_loyalty_bands
    gifts: pa.Table
    findings: list[Finding]


def run(ctx: Context, plans: pa.Table) -> Loyalty:
    subs = ctx.data.until("subscriptions")
    held = subs.filter(subs.ended_at.isnull() | (subs.ended_at > ctx.as_of))
    first_sub = subs.group_by("customer_id").aggregate(_first=subs.started_at.min())
    t = held.join(first_sub, "customer_id")
    if ctx.data.has("customers"):
        cu = ctx.data.until("customers").select("customer_id", "joined_at")
        t = t.left_join(cu, "customer_id").select(t, _joined=ibis.coalesce(cu.joined_at, t._first))
    else:
        t = t.mutate(_joined=t._first)
    rows = (
        t.select(
            "customer_id",
            "plan_id",
            "started_at",
            "monthly_fee_paid",
            joined_at="_joined",
        )
        .order_by(["customer_id", "plan_id", "started_at"])
        .to_pyarrow()
    )
    price = plans.select(["plan_id", "name", "kind", "monthly_fee", "open_to_new"])
    pos = pc.index_in(rows.column("plan_id"), value_set=price.column("plan_id").combine_chunks())
    fee = np.asarray(price.column("monthly_fee").take(pos).fill_null(np.nan), dtype=float)
    paid = np.asarray(
        rows.column("monthly_fee_paid").cast(pa.float64()).fill_null(np.nan), dtype=float
    )
    known = ~np.isnan(fee) & ~np.isnan(paid)
    as_of = np.datetime64(ctx.as_of, "us")
    joined = np.asarray(rows.column("joined_at").cast(pa.timestamp("us")).fill_null(as_of))
    started = np.asarray(rows.column("started_at").cast(pa.timestamp("us")))
    tenure = (as_of - joined).astype("timedelta64[s]").astype(float) / YEAR_S
    sub_age = (as_of - started).astype("timedelta64[s]").astype(float) / YEAR_S
    edges = parse_bands(ctx.settings["tenure_bands"])
    labels = band_labels(edges)
    band = np.searchsorted(np.array(edges), tenure, side="right")
    diff = np.where(known, paid - fee, np.nan)
    penalised = known & (diff > TOLERANCE)
    yearly = np.where(penalised, np.round(12 * diff, 2), 0.0)
    order = np.argsort(-yearly, kind="stable")
    rank = np.zeros(len(yearly), np.int64)
    rank[order] = np.arange(1, len(yearly) + 1)
    rank = np.where(penalised, rank, 0)
    kinds = price.column("kind").take(pos)
    open_new = price.column("open_to_new").take(pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(known & (fee > 0), paid / fee, np.nan)
    table = pa.table(
        {
            "customer_id": rows.column("customer_id"),
            "plan_id": rows.column("plan_id"),
            "plan_kind": pc.coalesce(kinds, pa.scalar("plan")),
            "plan_open_to_new": open_new,
            "monthly_fee_paid": pa.array(paid, mask=np.isnan(paid)),
            "new_customer_fee": pa.array(fee, mask=np.isnan(fee)),
            "difference": pa.array(np.round(diff, 2), mask=np.isnan(diff)),
            "ratio": pa.array(np.round(ratio, 4), mask=np.isnan(ratio)),
            "yearly_penalty": pa.array(yearly),
            "tenure_years": pa.array(np.round(tenure, 2)),
            "subscription_years": pa.array(np.round(sub_age, 2)),
            "tenure_band": pa.array(np.array(labels, dtype=object)[band], pa.string()),
            "rank": pa.array(rank),
        }
    )
    bands = _bands(labels, band, known, penalised, ratio, yearly)
    gifts = _gifts(ctx, table, price, np.flatnonzero(penalised))
    return Loyalty(table, bands, gifts, _findings(ctx, table, bands, penalised, known))


def _bands(
    labels: list[str],
    band: np.ndarray,
    known: np.ndarray,
    penalised: np.ndarray,
    ratio: np.ndarray,
    yearly: np.ndarray,
) -> pa.Table:
    out: dict[str, list[object]] = {
        k: []
        for k in (
            "tenure_band",
            "subscriptions",
            "paying_more",
            "share_paying_more",
            "median_ratio",
            "mean_ratio",
            "yearly_penalty_total",
            "yearly_penalty_mean",
        )
    }
    for i, label in enumerate(labels):
        rows = (band == i) & known
        n = int(rows.sum())
        k = int((rows & penalised).sum())
        out["tenure_band"].append(label)
        out["subscriptions"].append(n)
        out["paying_more"].append(k)
        out["share_paying_more"].append(k / n if n else None)
        r = ratio[rows & ~np.isnan(ratio)]
        out["median_ratio"].append(round(float(np.median(r)), 4) if len(r) else None)
        out["mean_ratio"].append(round(float(np.mean(r)), 4) if len(r) else None)
        out["yearly_penalty_total"].append(round(float(yearly[rows].sum()), 2))
        out["yearly_penalty_mean"].append(
            round(float(yearly[rows & penalised].mean()), 2) if k else None
        )
    return pa.table(out)


def _gifts(ctx: Context, table: pa.Table, price: pa.Table, rows: np.ndarray) -> pa.Table:
    t = table.take(pa.array(rows))
    ids = t.column("customer_id").to_pylist()
    plan = t.column("plan_id").to_pylist()
    names = dict(
        zip(price.column("plan_id").to_pylist(), price.column("name").to_pylist(), strict=True)
    )
    paid = t.column("monthly_fee_paid").to_pylist()
    fee = t.column("new_customer_fee").to_pylist()
    years = t.column("tenure_years").to_pylist()
    first = ctx.first_names(ids)
    # a handful of distinct plans, prices, names and tenures: format each once, then join
    hello = {f: messages.hello(f) for f in set(first)}
    tenure = {y: messages.loyalty_tenure(y) for y in set(years)}
    body = {
        k: messages.loyalty_penalty_body(
            plan=str(names.get(k[0]) or k[0]), paid=k[1], new_price=k[2], currency=ctx.currency
        )
        for k in set(zip(plan, paid, fee, strict=True))
    }
    texts = [
        hello[f] + " " + tenure[y] + body[(p, a, b)]
        for f, y, p, a, b in zip(first, years, plan, paid, fee, strict=True)
    ]
    rule = to_json("monthly_fee_paid above the plan's monthly_fee (what a new customer pays)")
    # the evidence column by column in Arrow: numbers as float repr, texts as JSON strings
    jp = json_str_column(t.column("plan_id"))
    cid = json_str_column(t.column("customer_id"))

    def num(values: list[float]) -> pa.Array:
        return pa.array(list(map(float.__repr__, map(float, values))), pa.string())

    evidence = pc.binary_join_element_wise(
        f'{{"rule":{rule},"plan":',
        jp,
        ',"monthly_fee_paid":',
        num(paid),
        ',"new_customer_fee":',
        num(fee),
        ',"tenure_years":',
        num(years),
        ',"rows":{"subscriptions":{"customer_id":',
        cid,
        ',"plan_id":',
        jp,
        '},"plans":{"plan_id":',
        jp,
        "}}}",
        "",
    )
    return gifts_table(
        {
            "gift_id": [f"loyalty_penalty:{c}:{p}" for c, p in zip(ids, plan, strict=True)],
            "customer_id": ids,
            "kind": ["loyalty_penalty"] * len(ids),
            "plan_id": plan,
            "current_plan_id": plan,
            "value_per_year": t.column("yearly_penalty"),
            "currency": [ctx.currency] * len(ids),
            "recurring": [True] * len(ids),
            "confidence": [1.0] * len(ids),
            "evidence": evidence,
            "message": texts,
            "source_table": ["subscriptions"] * len(ids),
            "source_ids": [f"{c}|{p}" for c, p in zip(ids, plan, strict=True)],
        }
    )


def _findings(
    ctx: Context, table: pa.Table, bands: pa.Table, penalised: np.ndarray, known: np.ndarray
) -> list[Finding]:
    n, k = int(known.sum()), int(penalised.sum())
    if not n:
        return []
    from sawubona.stats import wilson

    total = float(pc.sum(table.column("yearly_penalty")).as_py() or 0.0)
    low, high = wilson(k, n)
    by_band = [
        f"{b} {r:.2f}×"
        for b, r, c in zip(
            bands.column("tenure_band").to_pylist(),
            bands.column("median_ratio").to_pylist(),
            bands.column("subscriptions").to_pylist(),
            strict=True,
        )
        if c and r is not None
    ]
    out = [
        Finding(
            "giving",
            "loyalty_penalty",
            f"{k} of {n} subscriptions held today ({k / n:.0%}) pay more than a new customer "
            f"would for the same plan: {money(total, ctx.currency)} a year in all. Median paid "
            "÷ new-customer price by tenure: " + ", ".join(by_band) + ".",
            value=k / n,
            n=n,
            low=float(low),
            high=float(high),
            table="giving_loyalty_bands",
            severity="action" if k else "info",
        )
    ]
    if k:
        top = table.filter(
            pc.and_(pc.greater(table.column("rank"), 0), pc.less_equal(table.column("rank"), 10))
        )
        most = float(pc.max(top.column("yearly_penalty")).as_py() or 0.0)
        out.append(
            Finding(
                "giving",
                "loyalty_penalty_top",
                f"The customer paying most above the new-customer price pays "
                f"{money(most, ctx.currency)} a year more; the ten highest are listed first.",
                value=most,
                n=k,
                table="giving_loyalty_penalty",
                where={"rank": list(range(1, 11))},
            )
        )
    return out
