"""The telco's subscriptions and monthly usage tables, add-ons, and the tariff truths
(overpaying customers, unused add-ons) computed with the bill formula."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sawubona.demo.block import Block
from sawubona.demo.common import (
    AS_OF,
    DAY,
    I64,
    USAGE_MONTHS,
    assemble,
    labels,
    num,
    to_seconds,
    ts,
    ts_opt,
)
from sawubona.demo.people import Customers
from sawubona.demo.tariffs import ADDON_METRIC, ADDONS, METRICS, N_OPEN, PLANS, bill


@dataclass
class AddonRows:
    cust: np.ndarray
    addon: np.ndarray
    start: np.ndarray
    end: np.ndarray
    ci: np.ndarray
    mi: np.ndarray
    row_addon: np.ndarray
    qty: np.ndarray


def addons(
    b: Block, cur_start: np.ndarray, alive_to: np.ndarray, churned: np.ndarray, in_month: np.ndarray
) -> AddonRows:
    """Add-on subscriptions and their monthly usage; plants unused ones."""
    rng, cu = b.rng, b.cust
    n = cu.n
    latest = AS_OF - 100 * DAY
    ok = cur_start < latest
    one = ok & (rng.random(n) < 0.25)
    two = one & (rng.random(n) < 0.2)
    first_a = rng.integers(0, 3, n)
    second_a = (first_a + 1 + rng.integers(0, 2, n)) % 3
    cust = np.r_[np.flatnonzero(one), np.flatnonzero(two)]
    addon = np.r_[first_a[one], second_a[two]] + ADDONS[0]
    s0 = np.maximum(cur_start[cust], USAGE_MONTHS[0] - 200 * DAY)
    st = to_seconds(s0 + (rng.random(len(cust)) * (latest - s0)).astype(I64))
    end = np.where(churned[cust], alive_to[cust], -1)
    dropped = ~churned[cust] & (rng.random(len(cust)) < 0.1)
    end = np.where(
        dropped, st + to_seconds((rng.random(len(cust)) * (AS_OF - st) * 0.9).astype(I64)), end
    )
    keep = (end < 0) | (end > st)
    cust, addon, st, end = cust[keep], addon[keep], st[keep], end[keep]
    # months of each add-on: months on which the customer is billed and the add-on active
    am = (
        in_month[cust]
        & (USAGE_MONTHS[None, :] >= st[:, None])
        & ((end[:, None] < 0) | (USAGE_MONTHS[None, :] + 28 * DAY <= end[:, None]))
    )
    ri, mi = np.nonzero(am)
    n_months = am.sum(axis=1)
    active = end < 0
    unused = active & (n_months >= 4) & (rng.random(len(cust)) < 0.25)
    if active.any() and not unused.any():
        c = np.flatnonzero(active & (n_months >= 4))
        unused[c[:3]] = True
    trail = np.where(unused, 3 + (rng.random(len(cust)) * (n_months - 2)).astype(I64), 0)
    from_end = 11 - mi
    zero_tail = from_end < trail[ri]
    mean_q = np.array([800.0, 60.0, 20.0])[addon[ri] - ADDONS[0]]
    q = np.round(rng.gamma(1.5, mean_q / 1.5), 0) + 1
    positive = rng.random(len(ri)) < 0.75
    positive |= from_end < 3  # non-planted: used in each of the last three months
    positive |= from_end == trail[ri]  # planted: used in the month before the unused tail
    q = np.where(zero_tail | ~positive, 0.0, q)
    fee = np.array([p.fee for p in PLANS])
    u = np.flatnonzero(unused)
    b.add_truth(
        "unused_addons",
        pa.table(
            {
                "customer_id": labels(cu.ids, cust[u]),
                "plan_id": labels([p.plan_id for p in PLANS], addon[u]),
                "months_unused": pa.array(trail[u]),
                "monthly_fee_paid": pa.array(fee[addon[u]]),
                "yearly_cost": pa.array(np.round(12 * fee[addon[u]], 2)),
            }
        ),
    )
    return AddonRows(
        cust=cust,
        addon=addon,
        start=st,
        end=end,
        ci=cust[ri],
        mi=mi,
        row_addon=addon[ri],
        qty=q.astype(float),
    )


def usage_table(
    cu: Customers,
    ci: np.ndarray,
    mi: np.ndarray,
    m_plan: np.ndarray,
    minutes: np.ndarray,
    messages: np.ndarray,
    data: np.ndarray,
    ad: AddonRows,
) -> pa.Table:
    k = len(ci)
    a_metric = np.array([METRICS.index(ADDON_METRIC[a]) for a in ADDONS])
    cust = np.r_[np.repeat(ci, 3), ad.ci]
    month = np.r_[np.repeat(mi, 3), ad.mi]
    metric = np.r_[np.tile(np.arange(3), k), a_metric[ad.row_addon - ADDONS[0]]]
    qty = np.r_[np.column_stack([minutes, messages, data]).ravel(), ad.qty]
    plan = np.r_[np.repeat(m_plan, 3), ad.row_addon]
    # main metrics come grouped by customer and month, add-on metrics after them
    return assemble(
        "usage",
        len(cust),
        {
            "customer_id": labels(cu.ids, cust),
            "period_start": ts(USAGE_MONTHS[month]),
            "metric": labels(METRICS, metric),
            "quantity": num(qty),
            "plan_id": labels([p.plan_id for p in PLANS], plan),
        },
    )


def tariff_truth(
    b: Block,
    ci: np.ndarray,
    mi: np.ndarray,
    m_plan: np.ndarray,
    plan: np.ndarray,
    use: dict[str, np.ndarray],
    cur_bill: np.ndarray,
    on_cur: np.ndarray,
    role: np.ndarray,
    active: np.ndarray,
    fee_paid: np.ndarray,
) -> None:
    """Customers for whom another open plan is cheaper in most months on their plan."""
    n = b.cust.n
    rows = on_cur[ci, mi] & active[ci]
    c = ci[rows]
    months = np.bincount(c, minlength=n)
    best, best_saving, best_share = np.full(n, -1), np.zeros(n), np.zeros(n)
    for q in range(N_OPEN):
        alt = bill(q, {k: v[rows] for k, v in use.items()}, PLANS[q].fee)
        saving = cur_bill[rows] - alt
        cheaper = np.bincount(c, weights=(saving > 1e-9).astype(float), minlength=n)
        total = np.bincount(c, weights=saving, minlength=n)
        share = np.divide(cheaper, months, out=np.zeros(n), where=months > 0)
        better = (plan != q) & (share >= 0.75) & (months >= 3) & (total > best_saving)
        best = np.where(better, q, best)
        best_saving = np.where(better, total, best_saving)
        best_share = np.where(better, share, best_share)
    hit = np.flatnonzero(best >= 0)
    stray = hit[role[hit] == 0]
    if len(stray):
        raise AssertionError(f"{len(stray)} customers fit no planted tariff role")
    missing = np.flatnonzero((role > 0) & (best < 0))
    if len(missing):
        raise AssertionError(f"{len(missing)} planted tariff customers are not overpaying")
    reason = np.array(["fits", "low_usage", "heavy_overage", "legacy_plan"])[role[hit]]
    ids = [p.plan_id for p in PLANS]
    b.add_truth(
        "overpaying",
        pa.table(
            {
                "customer_id": labels(b.cust.ids, hit),
                "current_plan": labels(ids, plan[hit]),
                "fit_plan": labels(ids, best[hit]),
                "reason": pa.array(reason),
                "direction": pa.array(
                    np.where(best[hit] > plan[hit], "bigger", "smaller").astype(object)
                ),
                "months": pa.array(months[hit]),
                "share_cheaper": pa.array(best_share[hit]),
                "yearly_saving": pa.array(np.round(best_saving[hit] / months[hit] * 12, 2)),
                "monthly_fee_paid": pa.array(fee_paid[hit]),
            }
        ),
    )


def subscriptions_table(
    cu: Customers,
    plan: np.ndarray,
    cur_start: np.ndarray,
    alive_to: np.ndarray,
    churned: np.ndarray,
    fee_paid: np.ndarray,
    changed: np.ndarray,
    old_plan: np.ndarray,
    change_at: np.ndarray,
    old_paid: np.ndarray,
    ad: AddonRows,
) -> pa.Table:
    n = cu.n
    ch = np.flatnonzero(changed)
    fee = np.array([p.fee for p in PLANS])
    cust = np.r_[np.arange(n), ch, ad.cust]
    pid = np.r_[plan, old_plan[ch], ad.addon]
    st = np.r_[cur_start, cu.joined[ch], ad.start]
    end = np.r_[np.where(churned, alive_to, -1), change_at[ch], ad.end]
    paid = np.r_[fee_paid, old_paid[ch], fee[ad.addon]]
    order = np.lexsort((st, cust))
    return assemble(
        "subscriptions",
        len(cust),
        {
            "customer_id": labels(cu.ids, cust[order]),
            "plan_id": labels([p.plan_id for p in PLANS], pid[order]),
            "started_at": ts(st[order]),
            "ended_at": ts_opt(end[order]),
            "monthly_fee_paid": num(paid[order]),
        },
    )
