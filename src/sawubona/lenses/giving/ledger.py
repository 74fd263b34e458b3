"""The give/take ledger: every action and outbound marketing contact, giving or taking.

Each ``actions`` row and each **outbound** ``touchpoints`` row whose kind is in
the mapping is classified by its kind (settings ``ledger_give`` and
``ledger_take``, comma-separated kinds; a kind in neither list — ``discount``,
``retention_offer`` by default — is counted apart as *unclear*: a discount that
serves the seller's quarter is taking dressed as giving, and only the
organisation can say which it is). By default:

* **giving**: refund, credit, compensation, downgrade_advice, proactive_help, gift
* **taking**: upsell, cross_sell, price_rise, fee, penalty, and marketing
  (outbound touchpoints of kind ``marketing``: a push for more)

Per customer and month (``giving_ledger``) and per month overall
(``giving_ledger_months``): gifts and asks (counts), money given and taken
(``actions.amount``), and the ratios. The customer × month aggregation is one
Ibis expression, so it runs where the data lives; the month and customer totals
are summed from its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.base import Finding
from sawubona.lenses.giving.common import money, names_list
from sawubona.stats import wilson

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.lenses.giving.lens import Context

SIDES = ("give", "take", "unclear")


@dataclass
class Ledger:
    table: pa.Table  # giving_ledger: customer × month
    months: pa.Table  # giving_ledger_months
    kinds: pa.Table  # giving_ledger_kinds: how each kind was classified, and how often
    per_customer: pa.Table  # customer_id, gifts, asks, money_given, money_taken, only_asked
    findings: list[Finding]


def mapping(give: str, take: str) -> dict[str, str]:
    out = {k: "take" for k in names_list(take)}
    out.update({k: "give" for k in names_list(give)})
    return out


def events(ctx: Context, classes: dict[str, str]) -> ir.Table | None:
    """One row per classified event: customer_id, at, source, kind, amount."""
    parts = []
    if ctx.data.has("actions"):
        a = ctx.data.until("actions")
        parts.append(
            a.select(
                customer_id=a.customer_id,
                at=a.at,
                source=ibis.literal("actions"),
                kind=a.kind.lower(),
                amount=a.amount.cast("float64").fill_null(0.0),
            )
        )
    if ctx.data.has("touchpoints"):
        t = ctx.data.until("touchpoints")
        t = t.filter((t.direction == "outbound") & t.kind.lower().isin(list(classes)))
        parts.append(
            t.select(
                customer_id=t.customer_id,
                at=t.at,
                source=ibis.literal("touchpoints"),
                kind=t.kind.lower(),
                amount=ibis.literal(0.0),
            )
        )
    if not parts:
        return None
    ev = parts[0] if len(parts) == 1 else parts[0].union(parts[1], distinct=False)
    # the side as one CASE over the kind (no join with a mapping table)
    give = [k for k, v in classes.items() if v == "give"]
    take = [k for k, v in classes.items() if v == "take"]
    cases = [(ev.kind.isin(ks), side) for side, ks in (("give", give), ("take", take)) if ks]
    side = ibis.cases(*cases, else_="unclear") if cases else ibis.literal("unclear")
    return ev.select("customer_id", "at", "source", "kind", "amount", side=side)


def run(ctx: Context) -> Ledger:
    classes = mapping(ctx.settings["ledger_give"], ctx.settings["ledger_take"])
    ev = events(ctx, classes)
    if ev is None:
        ctx.skipped.append("give/take ledger: no actions or touchpoints table")
        empty = pa.table({"customer_id": pa.array([], pa.string())})
        return Ledger(empty, empty, empty, empty, [])
    give, take = ev.side == "give", ev.side == "take"
    ev = ev.mutate(month=ev.at.truncate("M"))
    # two passes over the events; the month and customer totals are sums of the first
    table = (
        ev.group_by(["customer_id", "month"])
        .aggregate(
            gifts=give.sum().cast("int64"),
            asks=take.sum().cast("int64"),
            unclear=(ev.side == "unclear").sum().cast("int64"),
            money_given=ibis.ifelse(give, ev.amount, 0.0).sum(),
            money_taken=ibis.ifelse(take, ev.amount, 0.0).sum(),
        )
        .order_by(["customer_id", "month"])
        .to_pyarrow()
    )
    kinds = (
        ev.group_by(["source", "kind", "side"])
        .aggregate(events=ev.count(), amount=ev.amount.sum(), customers=ev.customer_id.nunique())
        .order_by(["side", "source", "kind"])
        .to_pyarrow()
    )
    sums = ["gifts", "asks", "unclear", "money_given", "money_taken"]
    # a customer-month row per customer seen that month: its rows with an id are the customers
    known = table.filter(pc.is_valid(table.column("customer_id")))
    counted = known.group_by("month").aggregate([("customer_id", "count")])
    overall = _sums(table, "month", sums).join(counted, "month").sort_by("month")
    customers = pc.fill_null(overall.column("customer_id_count"), 0)
    overall = overall.select(["month", *sums]).add_column(1, "customers", customers)
    cust = _runs(table, "customer_id", sums[:2] + sums[3:])
    table = _with_ratios(table)
    overall = _with_ratios(overall)
    gifts = np.asarray(cust.column("gifts"), dtype=np.int64)
    asks = np.asarray(cust.column("asks"), dtype=np.int64)
    cust = cust.append_column("only_asked", pa.array((asks > 0) & (gifts == 0)))
    return Ledger(table, overall, kinds, cust, _findings(ctx, cust, kinds))


def _sums(t: pa.Table, key: str, columns: list[str]) -> pa.Table:
    """``columns`` summed per ``key`` (Arrow), named as before, the key first."""
    got = t.group_by(key).aggregate([(c, "sum") for c in columns])
    return pa.table({key: got.column(key), **{c: got.column(f"{c}_sum") for c in columns}})


def _runs(t: pa.Table, key: str, columns: list[str]) -> pa.Table:
    """``columns`` summed over each run of equal ``key`` values (``t`` is sorted by ``key``)."""
    if t.num_rows == 0:
        return pa.table({key: t.column(key), **{c: t.column(c) for c in columns}})
    keys = t.column(key).combine_chunks()
    same = pc.fill_null(pc.equal(keys[1:], keys[:-1]), False)
    both_null = pc.and_(pc.is_null(keys[1:]), pc.is_null(keys[:-1]))
    new = ~np.asarray(pc.or_(same, both_null), dtype=bool)
    starts = np.r_[0, np.flatnonzero(new) + 1]
    out: dict[str, Any] = {key: keys.take(pa.array(starts))}
    for c in columns:
        values = np.asarray(t.column(c).combine_chunks().fill_null(0))
        out[c] = pa.array(np.add.reduceat(values, starts))
    return pa.table(out)


def _with_ratios(t: pa.Table) -> pa.Table:
    g = np.asarray(t.column("gifts"), dtype=float)
    a = np.asarray(t.column("asks"), dtype=float)
    mg = np.asarray(t.column("money_given"), dtype=float)
    mt = np.asarray(t.column("money_taken"), dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        gift_share = g / (g + a)
        money_ratio = mg / mt
    t = t.append_column("gift_share", pa.array(np.round(gift_share, 4), mask=(g + a) == 0))
    return t.append_column(
        "given_per_taken", pa.array(np.round(money_ratio, 4), mask=~np.isfinite(money_ratio))
    )


def _findings(ctx: Context, cust: pa.Table, kinds: pa.Table) -> list[Finding]:
    out: list[Finding] = []
    if cust.num_rows == 0:
        return out
    cur = ctx.currency
    given = float(pc.sum(cust.column("money_given")).as_py() or 0.0)
    taken = float(pc.sum(cust.column("money_taken")).as_py() or 0.0)
    gifts = int(pc.sum(cust.column("gifts")).as_py() or 0)
    asks = int(pc.sum(cust.column("asks")).as_py() or 0)
    per = f"{taken / given:.1f}" if given > 0 else "∞"
    out.append(
        Finding(
            "giving",
            "ledger_balance",
            f"The organisation took {money(taken, cur)} and gave {money(given, cur)} back "
            f"({per} taken for every 1 given); it asked {asks} times and gave {gifts} times.",
            value=given / taken if taken else None,
            n=gifts + asks,
            table="giving_ledger_months",
            severity="attention" if taken > given else "info",
        )
    )
    only = np.asarray(cust.column("only_asked"), dtype=bool)
    n, k = cust.num_rows, int(only.sum())
    low, high = wilson(k, n)
    out.append(
        Finding(
            "giving",
            "ledger_only_asked",
            f"{k} of {n} customers the organisation reached out to ({k / n:.0%}) have only ever "
            "been asked — sold to, charged or marketed at — and never given anything.",
            value=k / n,
            n=n,
            low=float(low),
            high=float(high),
            table="giving_customers",
            where={"only_asked": True},
            severity="attention" if k else "info",
        )
    )
    unclear = kinds.filter(pc.equal(kinds.column("side"), "unclear"))
    if unclear.num_rows:
        names = sorted(set(unclear.column("kind").to_pylist()))
        out.append(
            Finding(
                "giving",
                "ledger_unclear",
                f"{int(pc.sum(unclear.column('events')).as_py() or 0)} actions of kind "
                f"{', '.join(names)} are counted as neither giving nor taking: say which they "
                "are with the ledger_give / ledger_take settings.",
                n=int(pc.sum(unclear.column("events")).as_py() or 0),
                table="giving_ledger_kinds",
                where={"side": "unclear"},
            )
        )
    return out
