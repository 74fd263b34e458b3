"""The telco's tariffs: plans and add-ons, the bill formula, and usage that fits.

Bill of a month on a plan (the documented formula)::

    fee + Σ over metrics in allowances of max(0, rounded(use) − allowance) × overage

``fee`` is ``monthly_fee_paid`` on the customer's own plan and ``monthly_fee``
on any other; a metric absent from ``allowances`` is unlimited (costs nothing);
``rounded(q) = ceil(q / step) × step`` for both rounding modes
(``per_event_ceil:step`` — events were already rounded, so on monthly totals this
is a no-op for whole units; ``monthly_ceil:step`` — the month's total is rounded up).

Usage is drawn inside the *band* of a plan: above the next smaller open plan's
allowance plus 2,100 MB (so the smaller plan's overage always outweighs the fee
difference) and within the plan's own allowance (no overage). A customer whose
usage sits in their own plan's band has no cheaper plan in any month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plan:
    """A tariff or add-on (one row of ``plans``)."""

    plan_id: str
    name: str
    kind: str
    fee: float
    allowances: dict[str, float]
    overage: dict[str, float]
    open_to_new: bool = True
    valid_from: str = "2014-01-01T00:00:00"
    valid_to: str | None = None


_ROUND = {
    "minutes": "per_event_ceil:1",
    "messages": "per_event_ceil:1",
    "data_mb": "monthly_ceil:1024",
}


_PO = {"minutes": 0.10, "messages": 0.05, "data_mb": 0.01}


PLANS: tuple[Plan, ...] = (
    Plan(
        "sim_5gb",
        "SIM only 5GB",
        "plan",
        7.50,
        {"minutes": 500, "messages": 500, "data_mb": 5120},
        _PO,
    ),
    Plan("sim_15gb", "SIM only 15GB", "plan", 10.00, {"data_mb": 15360}, {"data_mb": 0.01}),
    Plan("sim_40gb", "SIM only 40GB", "plan", 14.00, {"data_mb": 40960}, {"data_mb": 0.01}),
    Plan("sim_100gb", "SIM only 100GB", "plan", 18.00, {"data_mb": 102400}, {"data_mb": 0.01}),
    Plan("sim_unlimited", "SIM only Unlimited", "plan", 25.00, {}, {}),
    Plan(
        "classic_4gb",
        "Classic 4GB",
        "plan",
        15.00,
        {"minutes": 1000, "data_mb": 4096},
        {"minutes": 0.15, "data_mb": 0.02},
        False,
        "2014-01-01T00:00:00",
        "2022-12-31T23:59:59",
    ),
    Plan(
        "classic_20gb",
        "Classic 20GB",
        "plan",
        22.00,
        {"data_mb": 20480},
        {"data_mb": 0.02},
        False,
        "2014-01-01T00:00:00",
        "2022-12-31T23:59:59",
    ),
    Plan(
        "addon_roaming",
        "Roam abroad pass",
        "addon",
        5.00,
        {"roaming_mb": 5120},
        {"roaming_mb": 0.01},
    ),
    Plan(
        "addon_intl",
        "International minutes",
        "addon",
        4.00,
        {"intl_minutes": 300},
        {"intl_minutes": 0.20},
    ),
    Plan("addon_music", "Music streaming pass", "addon", 3.00, {"music_hours": 200}, {}),
)


ROUNDING: dict[str, dict[str, str]] = {
    p.plan_id: (
        {m: _ROUND[m] for m in p.allowances} | {"data_mb": _ROUND["data_mb"]}
        if p.kind == "plan"
        else {m: "monthly_ceil:1" for m in p.allowances}
    )
    for p in PLANS
}


N_OPEN = 5  # PLANS[:5] are the open main plans, cheapest first


LEGACY = (5, 6)


ADDONS = (7, 8, 9)


MAIN_METRICS = ("minutes", "messages", "data_mb")


ADDON_METRIC = {7: "roaming_mb", 8: "intl_minutes", 9: "music_hours"}


METRICS = MAIN_METRICS + tuple(ADDON_METRIC.values())


#: price rises for subscriptions at least two years old on the date: (date, rate)
PRICE_RISES = (("2024-04-01T09:00:00", 0.079), ("2025-04-01T09:00:00", 0.064))


#: data usage band per plan (MB): a customer "fitting" a plan uses between these
BAND_LO = np.array([300.0, 5120 + 2100, 15360 + 2100, 40960 + 2100, 102400 + 2100, 200.0, 4300.0])


BAND_HI = np.array([5120.0, 15360, 40960, 102400, 250000, 4096, 20480])


BILL_FORMULA = (
    "bill(plan, month) = fee + sum over metrics m in plan.allowances of "
    "max(0, rounded(use_m) - allowance_m) * overage_m (0 when m has no overage price); "
    "fee = monthly_fee_paid on the customer's current plan, monthly_fee on any other; "
    "a metric absent from allowances is unlimited; rounded(q) = ceil(q / step) * step "
    "for rounding 'per_event_ceil:step' and 'monthly_ceil:step'"
)


def bill(plan: int, usage: dict[str, np.ndarray], fee: np.ndarray | float) -> np.ndarray:
    """Monthly bills on ``plan`` for usage per metric (the documented formula)."""
    p = PLANS[plan]
    total = np.asarray(fee, dtype=float) + np.zeros(len(usage["data_mb"]))
    for metric, allowance in p.allowances.items():
        price = p.overage.get(metric, 0.0)
        step = float(ROUNDING[p.plan_id][metric].split(":")[1])
        rounded = np.ceil(np.round(usage[metric], 6) / step) * step
        total = total + np.maximum(0.0, rounded - allowance) * price
    return total
