"""Unused add-ons: paid extras with no matching use in the last periods.

An add-on is a ``plans`` row of kind ``addon``; its metrics are the keys of its
``allowances`` (or, failing that, of its ``overage``). For every add-on a
customer holds at ``as_of`` we count the **trailing unused months**: going back
from the last full month of the window, the months on which

* the add-on was held for the whole month (the period starts after the
  subscription did),
* the customer's use was metered (they have *some* usage row that month — a
  month with no rows at all tells nothing), and
* the add-on's metrics show no use (absent rows count as zero, as in ``usage``).

With at least ``addon_idle_periods`` such months the add-on is a gift: taking it
off saves 12 × what the customer pays for it (``monthly_fee_paid``, else the
add-on's ``monthly_fee``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.base import Finding
from sawubona.lenses.giving import messages
from sawubona.lenses.giving.common import (
    evidence_confidence,
    gifts_table,
    json_float,
    json_str,
    json_values,
    money,
    month_index,
    to_json,
)

if TYPE_CHECKING:
    from sawubona.lenses.giving.best_plan import Window
    from sawubona.lenses.giving.lens import Context


@dataclass
class Addon:
    plan_id: str
    name: str
    fee: float
    metrics: list[str]


def addon_catalogue(plans: pa.Table) -> tuple[list[Addon], list[str]]:
    """Add-ons with the metrics that show their use; and the ones that have none."""
    out, problems = [], []
    for r in plans.to_pylist():
        if (r.get("kind") or "").lower() != "addon":
            continue
        metrics: list[str] = []
        for col in ("allowances", "overage"):
            try:
                value = json.loads(r[col]) if r.get(col) else {}
            except (TypeError, ValueError):
                value = {}
            if isinstance(value, dict) and value:
                metrics = [str(k).lower() for k in value]
                break
        if not metrics:
            problems.append(f"add-on {r['plan_id']} names no metric, so its use cannot be seen")
            continue
        out.append(
            Addon(
                str(r["plan_id"]),
                str(r.get("name") or r["plan_id"]),
                float(r["monthly_fee"] or 0),
                metrics,
            )
        )
    return out, problems


@dataclass
class Addons:
    gifts: pa.Table
    findings: list[Finding]
    held: int


def run(ctx: Context, plans: pa.Table, window: Window) -> Addons:
    catalogue, problems = addon_catalogue(plans)
    ctx.skipped.extend(f"unused add-ons: {p}" for p in problems)
    if not catalogue:
        ctx.skipped.append("unused add-ons: the plans table has no add-on (kind addon)")
        return Addons(gifts_table({"customer_id": []}), [], 0)
    subs = ctx.data.until("subscriptions")
    ids = [a.plan_id for a in catalogue]
    held = subs.filter(
        subs.plan_id.isin(ids) & (subs.ended_at.isnull() | (subs.ended_at > ctx.as_of))
    )
    w = ibis.window(group_by=["customer_id", "plan_id"], order_by=ibis.desc("started_at"))
    held = held.mutate(_rn=ibis.row_number().over(w)).filter(lambda t: t._rn == 0)
    held_t = held.select("customer_id", "plan_id", "started_at", "monthly_fee_paid").order_by(
        ["customer_id", "plan_id"]
    )
    a = held_t.to_pyarrow()
    if a.num_rows == 0:
        return Addons(gifts_table({"customer_id": []}), [], 0)
    u = ctx.data.until("usage")
    u = u.filter((u.period_start >= window.first) & (u.period_start <= window.last_start))
    who = held_t.select("customer_id").distinct()
    u = u.semi_join(who, "customer_id")
    metrics = sorted({m for x in catalogue for m in x.metrics})
    # one pass: each metered (customer, month), with the add-on metrics used in it (else null)
    hit = u.metric.isin(metrics) & (u.quantity > 0)
    seen = (
        u.select("customer_id", "period_start", metric=ibis.ifelse(hit, u.metric, None))
        .distinct()
        .to_pyarrow()
    )
    metered = seen.select(["customer_id", "period_start"])
    used = seen.filter(pc.is_valid(seen.column("metric")))
    return _judge(ctx, catalogue, a, metered, used, window)


def _judge(
    ctx: Context,
    catalogue: list[Addon],
    held: pa.Table,
    metered: pa.Table,
    used: pa.Table,
    window: Window,
) -> Addons:
    m = window.months
    n = held.num_rows
    cust = held.column("customer_id").combine_chunks()
    uniq = pc.unique(cust)
    cu = np.asarray(pc.index_in(cust, value_set=uniq))
    obs = np.zeros((len(uniq), m), bool)
    if metered.num_rows:
        ci = np.asarray(pc.index_in(metered.column("customer_id"), value_set=uniq).fill_null(-1))
        mi = month_index(metered.column("period_start"), window.first)
        ok = (ci >= 0) & (mi >= 0) & (mi < m)
        obs[ci[ok], mi[ok]] = True
    by_id = {x.plan_id: x for x in catalogue}
    plan_of = held.column("plan_id").to_pylist()
    # use per held add-on and month: any positive use of one of its metrics
    use = np.zeros((n, m), bool)
    if used.num_rows:
        uc = np.asarray(pc.index_in(used.column("customer_id"), value_set=uniq).fill_null(-1))
        um = month_index(used.column("period_start"), window.first)
        metrics = sorted({mm for x in catalogue for mm in x.metrics})
        mk = np.asarray(
            pc.index_in(used.column("metric"), value_set=pa.array(metrics)).fill_null(-1)
        )
        member = np.array([[mm in x.metrics for x in by_id.values()] for mm in metrics], bool)
        valid = (uc >= 0) & (um >= 0) & (um < m) & (mk >= 0)
        hit = np.zeros((len(uniq), m, len(by_id)), bool)
        order = list(by_id)
        for j in range(len(order)):
            rows = valid & member[np.maximum(mk, 0), j]
            hit[uc[rows], um[rows], j] = True
        pj = np.array([order.index(p) for p in plan_of])
        use = hit[cu, :, pj]
    start_month = month_index(held.column("started_at"), window.first)
    started = held.column("started_at")
    mid_month = pc.not_equal(pc.floor_temporal(started, unit="month"), started)
    # a month counts only when the add-on was held from its first day
    first_full = start_month + np.asarray(mid_month.fill_null(False), dtype=np.int64)
    held_month = np.arange(m)[None, :] >= first_full[:, None]
    idle = held_month & obs[cu] & ~use
    rev = idle[:, ::-1]
    trailing = np.where(rev.all(axis=1), m, np.argmin(rev, axis=1))
    idle_needed = int(ctx.settings["addon_idle_periods"])
    give = trailing >= max(idle_needed, 1)
    fee_paid = np.asarray(
        held.column("monthly_fee_paid").cast(pa.float64()).fill_null(float("nan")), dtype=float
    )
    fee = np.where(np.isnan(fee_paid), np.array([by_id[p].fee for p in plan_of]), fee_paid)
    rows = np.flatnonzero(give & (fee > 0))
    labels = window.labels()
    ids = cust.take(pa.array(rows)).to_pylist()
    first = ctx.first_names(ids)
    # the evidence is JSON written piece by piece (as to_json would write the dict); what
    # depends only on the add-on and the idle months is spelt out once
    month_key = [t.strftime("%Y-%m") for t in labels]
    head: dict[tuple[str, int], tuple[str, str, str, str]] = {}
    body: dict[tuple[str, int, float], str] = {}
    trail_l = trailing.tolist()
    fee_l = fee.tolist()
    ids_json = json_values(ids)
    evidence, texts = [], []
    for i, r in enumerate(rows.tolist()):
        x = by_id[plan_of[r]]
        k = trail_l[r]
        f = fee_l[r]
        h = head.get((x.plan_id, k))
        if h is None:
            months = to_json(month_key[m - k :])
            metrics_json = to_json(x.metrics)
            rule = (
                f"no use of {', '.join(x.metrics)} in the last {k} metered months "
                f"(at least {idle_needed})"
            )
            h = head[x.plan_id, k] = (
                f'{{"rule":{json_str(rule)},"addon":{json_str(x.plan_id)},'
                f'"metrics":{metrics_json},"months_unused":{months},',
                ',"rows":{"subscriptions":{"customer_id":',
                f',"plan_id":{json_str(x.plan_id)}}},"usage":{{"customer_id":',
                f',"metric":{metrics_json},"period_start":{months}}}}}}}',
            )
        before = m - k - 1
        last_used = json_str(month_key[before]) if before >= 0 and use[r, before] else "null"
        cid = ids_json[i]
        evidence.append(
            f'{h[0]}"last_used":{last_used},"fee_paid":{json_float(round(f, 2))}'
            f"{h[1]}{cid}{h[2]}{cid}{h[3]}"
        )
        t = body.get((x.name, k, f))
        if t is None:
            t = body[x.name, k, f] = messages.unused_addon_body(
                addon=x.name, months_unused=k, fee=f, currency=ctx.currency
            )
        texts.append(messages.hello(first[i]) + " " + t)
    gifts = gifts_table(
        {
            "gift_id": [f"unused_addon:{c}:{plan_of[r]}" for c, r in zip(ids, rows, strict=True)],
            "customer_id": ids,
            "kind": ["unused_addon"] * len(rows),
            "plan_id": [plan_of[r] for r in rows],
            "value_per_year": np.round(12 * fee[rows], 2),
            "currency": [ctx.currency] * len(rows),
            "recurring": [True] * len(rows),
            "confidence": np.round(evidence_confidence(trailing[rows]), 3),
            "evidence": evidence,
            "message": texts,
            "source_table": ["subscriptions"] * len(rows),
            "source_ids": [f"{c}|{plan_of[r]}" for c, r in zip(ids, rows, strict=True)],
        }
    )
    findings = []
    if n:
        total = float(np.sum(12 * fee[rows]))
        findings.append(
            Finding(
                "giving",
                "unused_addons",
                f"{len(rows)} of {n} add-ons held today were not used in the last "
                f"{idle_needed} or more metered months: {money(total, ctx.currency)} a year "
                "that customers pay for nothing.",
                value=len(rows) / n,
                n=n,
                table="giving_gifts",
                where={"kind": "unused_addon"},
                severity="action" if len(rows) else "info",
            )
        )
    return Addons(gifts, findings, n)
