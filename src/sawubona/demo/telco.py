"""The telco world: a mobile network with tariffs, add-ons, metered usage and support.

Customers (60% joined before the two-year history, some as far back as 2014)
hold one main plan and sometimes add-ons; 12 months of usage per metric are
recorded. They contact support (kind ``support``: bills, signal, data, roaming,
handsets, SIMs, cancellations) at a gamma-distributed personal rate and change
plan now and then (kind ``plan_change``). About 18% churn during the history
(subscriptions end, usage stops), with a hazard only weakly tied to their
latent satisfaction.

Planted here (besides what every world has): customers paying for a bigger plan
than their usage needs, customers whose overage makes a bigger plan cheaper,
everyone on a legacy plan, unused paid add-ons, two price rises for customers
out of contract (the loyalty penalty).

Bill of a month on a plan (the documented formula)::

    fee + Σ over metrics in allowances of max(0, rounded(use) − allowance) × overage

``fee`` is ``monthly_fee_paid`` on the customer's own plan and ``monthly_fee``
on any other; a metric absent from ``allowances`` is unlimited (costs nothing);
``rounded(q) = ceil(q / step) × step`` for both rounding modes
(``per_event_ceil:step`` — events were already rounded, so on monthly totals this
is a no-op for whole units; ``monthly_ceil:step`` — the month's total is rounded up).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from sawubona.demo.block import Block
from sawubona.demo.campaigns import TELCO_CAMPAIGNS, marketing
from sawubona.demo.common import (
    A_SYSTEM,
    ACTION,
    AS_OF,
    CURRENCY,
    DAY,
    EMAIL,
    I64,
    LETTER,
    NOTIFICATION,
    NPS,
    USAGE_MONTHS,
    assemble,
    date_text,
    iso,
    labels,
    money_text,
    pick_count,
    to_seconds,
    ts,
    ts_opt,
    uniform_time,
)
from sawubona.demo.people import Customers, make_customers
from sawubona.demo.surveys import relationship_surveys
from sawubona.demo.tariffs import (
    ADDON_METRIC,
    ADDONS,
    BAND_HI,
    BAND_LO,
    BILL_FORMULA,
    LEGACY,
    N_OPEN,
    PLANS,
    PRICE_RISES,
    ROUNDING,
    bill,
)
from sawubona.demo.telco_journeys import TOPICS, make_journeys
from sawubona.demo.telco_usage import addons, subscriptions_table, tariff_truth, usage_table
from sawubona.demo.text import Template

NAME = "telco"
TABLES = (
    "customers",
    "journeys",
    "touchpoints",
    "promises",
    "plans",
    "subscriptions",
    "usage",
    "surveys",
    "actions",
)
TEAMS = ("billing", "technical", "care", "retention")
N_AGENT_TEAMS = 4
#: how strongly satisfaction lowers the churn hazard (x exp(-CHURN_SAT * satisfaction))
CHURN_SAT = 1.2
#: the compensation the telco declares for broken promises (giving lens's rule format)
COMPENSATION_RULES: dict[str, dict[str, float]] = {
    "fix": {"per_day_late": 5.0, "max": 50.0},
    "callback": {"amount": 5.0},
    "refund": {"per_day_late": 2.0, "max": 20.0},
}
CUSTOMERS_PER_AGENT = 400


PRICE_RISE_NOTICE = Template(
    "price_rise_notice",
    "Dear {first}, from {date} the monthly price of your {plan} plan will rise by {amount}, "
    "in line with your terms. No action is needed.",
    0.4,
)


def static_tables() -> dict[str, pa.Table]:
    """The ``plans`` table."""
    n = len(PLANS)
    return {
        "plans": assemble(
            "plans",
            n,
            {
                "plan_id": pa.array([p.plan_id for p in PLANS]),
                "name": pa.array([p.name for p in PLANS]),
                "kind": pa.array([p.kind for p in PLANS]),
                "monthly_fee": pa.array([p.fee for p in PLANS], pa.float64()),
                "currency": CURRENCY,
                "allowances": pa.array([json.dumps(p.allowances) for p in PLANS]),
                "overage": pa.array([json.dumps(p.overage) for p in PLANS]),
                "rounding": pa.array([json.dumps(ROUNDING[p.plan_id]) for p in PLANS]),
                "open_to_new": pa.array([p.open_to_new for p in PLANS]),
                "valid_from": ts(
                    np.array([np.datetime64(p.valid_from, "us").astype(I64) for p in PLANS])
                ),
                "valid_to": ts_opt(
                    np.array(
                        [
                            np.datetime64(p.valid_to, "us").astype(I64) if p.valid_to else -1
                            for p in PLANS
                        ]
                    )
                ),
            },
        )
    }


def facts() -> dict[str, object]:
    """World facts for ``truth.json``."""
    return {
        "bill_formula": BILL_FORMULA,
        "overpaying_rule": "another open plan cheaper in >= 75% of the (>= 3) full months "
        "billed on the current plan in the last 12; churned customers "
        "are not evaluated",
        "usage_months": [iso(t) for t in USAGE_MONTHS],
        "price_rises": [
            {
                "at": d,
                "rate": r,
                "applies_to": "main-plan subscriptions started at least 730 days before the date",
            }
            for d, r in PRICE_RISES
        ],
        "open_plans": [p.plan_id for p in PLANS if p.open_to_new and p.kind == "plan"],
        "legacy_plans": [p.plan_id for p in PLANS if not p.open_to_new],
        "addons": {PLANS[a].plan_id: ADDON_METRIC[a] for a in ADDONS},
        "support_topics": {t.key: t.desired for t in TOPICS},
    }


def customers(rng: np.random.Generator, offset: int, n: int, width: int) -> Customers:
    return make_customers(
        rng, offset, n, width, share_before=0.6, years_before=9.0, segment_p=(0.82, 0.14, 0.04)
    )


# --------------------------------------------------------------------------- the block


def block(b: Block, journey_base: int) -> tuple[dict[str, pa.Table], int]:
    """Generate one block; returns its own tables and the number of journeys used."""
    rng, cu = b.rng, b.cust
    n = cu.n
    start = cu.start
    # ---- churn, tied to satisfaction (the planted link say-vs-do recovers): the hazard
    # is x exp(-CHURN_SAT * s), normalised by E[exp(-CHURN_SAT * s)] = exp(CHURN_SAT^2 / 2)
    p_churn = np.clip(0.18 * np.exp(-CHURN_SAT * cu.sat) / np.exp(CHURN_SAT**2 / 2), 0, 0.9)
    lo, hi = start + 60 * DAY, np.full(n, AS_OF - DAY)
    churned = (rng.random(n) < p_churn) & (lo < hi)
    churn_at = np.where(churned, to_seconds(lo + (rng.random(n) * (hi - lo)).astype(I64)), -1)
    alive_to = np.where(churned, churn_at, AS_OF + DAY)
    end_live = np.minimum(alive_to, AS_OF)

    # ---- main plan, plan changes
    seg_p = np.array(
        [[0.3, 0.3, 0.2, 0.1, 0.1], [0.1, 0.2, 0.3, 0.2, 0.2], [0.05, 0.1, 0.25, 0.3, 0.3]]
    )
    cum = np.cumsum(seg_p[cu.segment], axis=1)
    plan = (rng.random(n)[:, None] > cum).sum(axis=1).astype(I64)
    can_legacy = cu.joined < np.datetime64("2022-12-31", "us").astype(I64)
    legacy = can_legacy & (rng.random(n) < 0.09)
    plan[legacy] = np.where(rng.random(int(legacy.sum())) < 0.6, LEGACY[0], LEGACY[1])
    lo, hi = start + 30 * DAY, end_live - 60 * DAY
    changed = ~legacy & (rng.random(n) < 0.07) & (lo < hi)
    change_at = np.where(changed, to_seconds(lo + (rng.random(n) * (hi - lo)).astype(I64)), -1)
    old_plan = np.where(can_legacy & (rng.random(n) < 0.3), LEGACY[0], rng.integers(0, N_OPEN, n))
    old_plan = np.where(old_plan == plan, (plan + 1) % N_OPEN, old_plan)
    cur_start = np.where(changed, change_at, cu.joined)

    # ---- price rises (subscriptions two years old on the date)
    fee = np.array([p.fee for p in PLANS])
    fee_paid = fee[plan].copy()
    old_paid = np.where(changed, fee[old_plan], np.nan)
    rise_rows = []
    for when, rate in PRICE_RISES:
        d = int(np.datetime64(when, "us").astype(I64))
        for subs_start, subs_end, paid, which in (
            (cur_start, alive_to, fee_paid, plan),
            (cu.joined, change_at, old_paid, old_plan),
        ):
            hit = (subs_start <= d - 730 * DAY) & (subs_end > d) & ~np.isnan(paid)
            if which is old_plan:
                hit &= changed
            amt = np.round(paid * rate, 2)
            idx = np.flatnonzero(hit)
            rise_rows.append((idx, d, amt[idx], which[idx]))
            paid[hit] = np.round(paid[hit] + amt[hit], 2)
    for idx, d, amt, which in rise_rows:
        k = len(idx)
        at = d + uniform_time(rng, 0, 3 * DAY, k)
        b.actions.add(
            k,
            cust=idx,
            at=at,
            kind=ACTION["price_rise"],
            amount=amt,
            initiated=0,
            purpose="price_rise",
        )
        notice = d - 30 * DAY + uniform_time(rng, 0, 2 * DAY, k)
        plan_names = labels([p.name for p in PLANS], which)
        b.send_templates(
            [PRICE_RISE_NOTICE],
            np.zeros(k, I64),
            {
                "first": b.first(idx),
                "date": date_text(np.full(k, d)),
                "plan": plan_names,
                "amount": money_text(amt),
            },
            cust=idx,
            at=notice,
            channel=np.where(rng.random(k) < 0.3, LETTER, EMAIL),
            actor=A_SYSTEM,
            kind=NOTIFICATION,
        )

    # ---- usage months, planted tariff fits
    months = USAGE_MONTHS
    in_month = (months[None, :] >= cu.joined[:, None]) & (
        months[None, :] + 28 * DAY <= end_live[:, None]
    )
    on_cur = in_month & (months[None, :] >= cur_start[:, None])
    n_cur = on_cur.sum(axis=1)
    active = ~churned
    role = np.zeros(n, I64)  # 0 fits, 1 low usage, 2 heavy overage, 3 legacy
    role[legacy & active] = 3
    cand = np.flatnonzero(active & ~legacy & ~changed & (n_cur >= 6) & (plan >= 1))
    k = pick_count(len(cand), 0.05 * n / max(len(cand), 1), 3)
    low = rng.choice(cand, k, replace=False) if k else np.zeros(0, I64)
    role[low] = 1
    cand = np.flatnonzero(active & ~legacy & ~changed & (n_cur >= 6) & (plan <= 1) & (role == 0))
    k = pick_count(len(cand), 0.015 * n / max(len(cand), 1), 3)
    heavy = rng.choice(cand, k, replace=False) if k else np.zeros(0, I64)
    role[heavy] = 2
    target = plan.copy()
    target[low] = (rng.random(len(low)) * plan[low]).astype(I64)
    target[heavy] = plan[heavy] + 1 + (rng.random(len(heavy)) < 0.3)
    spike_month = np.where(
        (role == 1) & (rng.random(n) < 0.5),
        11 - (rng.random(n) * np.maximum(n_cur, 1)).astype(I64),
        -1,
    )

    ci, mi = np.nonzero(in_month)
    m_plan = np.where(months[mi] >= cur_start[ci], plan[ci], old_plan[ci])
    band = np.where(months[mi] >= cur_start[ci], target[ci], m_plan)
    pos = np.clip(rng.uniform(0.1, 0.9, n)[ci] + 0.12 * rng.standard_normal(len(ci)), 0.02, 0.98)
    data = np.round(BAND_LO[band] * (BAND_HI[band] / BAND_LO[band]) ** pos, 2)
    # a low-usage customer's one busy month: just over the smaller plan's allowance
    spike = mi == spike_month[ci]
    data = np.where(spike, BAND_HI[band] + np.round(rng.uniform(100, 900, len(ci)), 2), data)
    cap_min = np.array([480.0, 1e9, 1e9, 1e9, 1e9, 950.0, 1e9])[band]
    minutes = np.minimum(
        np.rint(rng.gamma(2.0, 100.0, n)[ci] * np.exp(0.25 * rng.standard_normal(len(ci)))), cap_min
    )
    cap_msg = np.array([480.0, 1e9, 1e9, 1e9, 1e9, 1e9, 1e9])[band]
    messages = np.minimum(
        np.rint(rng.gamma(1.5, 50.0, n)[ci] * np.exp(0.3 * rng.standard_normal(len(ci)))), cap_msg
    )

    # ---- add-ons
    add_rows = addons(b, cur_start, alive_to, churned, in_month)
    usage = usage_table(cu, ci, mi, m_plan, minutes, messages, data, add_rows)

    # ---- truth: tariff fit, loyalty penalty, unused add-ons
    use = {"minutes": minutes, "messages": messages, "data_mb": data}
    cur_bill = np.zeros(len(ci))
    for p in range(len(PLANS) - len(ADDONS)):
        rows = m_plan == p
        if rows.any():
            cur_bill[rows] = bill(p, {k2: v[rows] for k2, v in use.items()}, fee_paid[ci[rows]])
    tariff_truth(b, ci, mi, m_plan, plan, use, cur_bill, on_cur, role, active, fee_paid)
    pen = np.flatnonzero(active & (fee_paid > fee[plan] + 1e-9))
    b.add_truth(
        "loyalty_penalty",
        pa.table(
            {
                "customer_id": labels(cu.ids, pen),
                "plan_id": labels([p.plan_id for p in PLANS], plan[pen]),
                "monthly_fee_paid": pa.array(fee_paid[pen]),
                "monthly_fee": pa.array(fee[plan[pen]]),
                "yearly_penalty": pa.array(np.round(12 * (fee_paid[pen] - fee[plan[pen]]), 2)),
                "tenure_years": pa.array(np.round((AS_OF - cu.joined[pen]) / (365.25 * DAY), 2)),
            }
        ),
    )

    # ---- subscriptions
    subs = subscriptions_table(
        cu,
        plan,
        cur_start,
        alive_to,
        churned,
        fee_paid,
        changed,
        old_plan,
        change_at,
        old_paid,
        add_rows,
    )

    # ---- journeys: support cases and plan changes
    journeys, used = make_journeys(
        b, journey_base, start, end_live, churned, churn_at, changed, change_at, plan, old_plan, fee
    )
    # ---- relationship NPS, marketing, fees
    waves = [
        int(np.datetime64(d, "us").astype(I64))
        for d in ("2023-10-02", "2024-04-08", "2024-10-07", "2025-04-07")
    ]
    relationship_surveys(
        b, cu.joined, alive_to, waves, 0.1, NPS, -0.6 * (fee_paid > fee[plan] + 1e-9)
    )
    marketing(b, cu.joined, alive_to, TELCO_CAMPAIGNS)
    fees = np.flatnonzero(rng.random(n) < 0.04)
    at = start[fees] + (rng.random(len(fees)) * (end_live[fees] - start[fees])).astype(I64)
    b.actions.add(
        len(fees),
        cust=fees,
        at=to_seconds(at),
        kind=ACTION["fee"],
        amount=5.0,
        initiated=0,
        purpose="late_payment_fee",
    )
    b.add_truth(
        "customers",
        pa.table(
            {
                "customer_id": cu.ids,
                "churned": pa.array(churned),
                "churned_at": ts_opt(churn_at),
                "satisfaction": pa.array(np.round(cu.sat, 4)),
            }
        ),
    )
    return {"subscriptions": subs, "usage": usage, "journeys": journeys}, used
