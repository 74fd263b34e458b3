"""Bill simulation: price real monthly usage on every plan, vectorised.

The bill of one month on one plan is::

    fee + Σ over metrics m with an allowance of max(0, rounded(use_m) − allowance_m) × overage_m

* ``fee`` is what the customer pays today on their own plan (``monthly_fee_paid``)
  and the plan's ``monthly_fee`` (the price a new customer pays) on any other.
* A metric absent from a plan's ``allowances`` is unlimited: it costs nothing.
  A metric with an allowance but no overage price costs nothing beyond it.
* ``rounded(q) = ceil(q / step) × step`` for a rounding rule ``<rule>:<step>``
  (``per_event_ceil`` or ``monthly_ceil``). ``per_event_ceil`` means each call or
  text was rounded up before it was summed — done at ingest (the adapters store
  sums of rounded events), so on a monthly total of whole units it changes
  nothing. ``monthly_ceil`` rounds the month's total up (data billed per started
  GB: ``monthly_ceil:1024`` on megabytes). A metric without a rule is not rounded.

Everything here is NumPy over a dense ``customers × months × metrics`` usage
array; customers are processed in chunks so memory stays bounded
(``chunk × months × plans`` doubles at a time), never in a Python loop per
customer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

#: a month is cheaper on another plan when it saves more than half a cent
CHEAPER_BY = 0.005
ROUNDING_RULES = ("per_event_ceil", "monthly_ceil")
#: customers simulated at once: each chunk's (n, M, P) temporaries stay a few MB, which the
#: allocator reuses; at 65,536 they were tens of MB, mapped fresh (page faults) every chunk
CHUNK = 1 << 13


@dataclass(frozen=True)
class Tariffs:
    """The main plans as arrays: ``P`` plans × ``K`` metrics."""

    plan_ids: list[str]
    names: list[str]
    fee: F64  # (P,)
    metrics: tuple[str, ...]  # (K,)
    allowance: F64  # (P, K), inf = unlimited
    price: F64  # (P, K), 0 = nothing beyond the allowance
    step: F64  # (P, K), 0 = not rounded
    rounding: list[dict[str, str]]
    open_now: B  # (P,) a new customer can take it at as_of
    currency: str | None
    #: plans left out, with the reason (bad JSON, unknown rounding rule)
    problems: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.plan_ids)

    def index(self, plan_id: str) -> int:
        return self.plan_ids.index(plan_id)

    def covers(self, p: int, q: int) -> bool:
        """Plan ``p`` includes at least what plan ``q`` includes, metric by metric."""
        return bool(np.all(self.allowance[p] >= self.allowance[q]))


def _json_object(text: Any, what: str, plan_id: str) -> dict[str, Any]:
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        raise ValueError(f"plan {plan_id}: {what} is not JSON ({text!r})") from None
    if not isinstance(value, dict):
        raise ValueError(f"plan {plan_id}: {what} is not a JSON object ({text!r})")
    return value


def parse_step(rule: str, plan_id: str, metric: str) -> float:
    """The step of a rounding rule such as ``monthly_ceil:1024`` (0 for ``none``)."""
    name, _, step = str(rule).partition(":")
    name = name.strip().lower()
    if name in ("", "none"):
        return 0.0
    if name not in ROUNDING_RULES:
        raise ValueError(
            f"plan {plan_id}: rounding {rule!r} for {metric} is not one of "
            f"{', '.join(r + ':<step>' for r in ROUNDING_RULES)}"
        )
    try:
        value = float(step) if step.strip() else 1.0
    except ValueError:
        raise ValueError(f"plan {plan_id}: rounding {rule!r} for {metric} has no number") from None
    if not value > 0 or math.isinf(value):
        raise ValueError(f"plan {plan_id}: rounding {rule!r} for {metric} needs a step > 0")
    return value


def tariffs_from_plans(plans: pa.Table, as_of: Any) -> Tariffs:
    """Main plans (kind ``plan`` or empty) from a ``plans`` Arrow table.

    ``open_now``: ``open_to_new`` is not false, ``valid_from`` ≤ ``as_of`` and
    ``valid_to`` empty or after ``as_of``. A plan whose JSON cannot be read is
    left out and named in ``problems``.
    """
    rows = plans.to_pylist()
    kept: list[dict[str, Any]] = []
    problems: list[str] = []
    metrics: list[str] = []
    for r in rows:
        kind = (r.get("kind") or "plan").lower()
        if kind != "plan" or r.get("monthly_fee") is None:
            continue
        pid = str(r["plan_id"])
        try:
            allow = {
                str(k): float(v)
                for k, v in _json_object(r.get("allowances"), "allowances", pid).items()
                if v is not None
            }
            over = {
                str(k): float(v)
                for k, v in _json_object(r.get("overage"), "overage", pid).items()
                if v is not None
            }
            rnd = {
                str(k): str(v) for k, v in _json_object(r.get("rounding"), "rounding", pid).items()
            }
            steps = {m: parse_step(v, pid, m) for m, v in rnd.items()}
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
            continue
        kept.append({"row": r, "allow": allow, "over": over, "rnd": rnd, "steps": steps})
        metrics += [m for m in allow if m not in metrics]
    p, k = len(kept), len(metrics)
    allowance = np.full((p, k), np.inf)
    price = np.zeros((p, k))
    step = np.zeros((p, k))
    open_now = np.zeros(p, bool)
    for i, plan in enumerate(kept):
        for j, m in enumerate(metrics):
            if m in plan["allow"]:
                allowance[i, j] = plan["allow"][m]
                price[i, j] = plan["over"].get(m, 0.0)
            step[i, j] = plan["steps"].get(m, 0.0)
        r = plan["row"]
        ok = r.get("open_to_new") is not False
        if r.get("valid_from") is not None and as_of is not None:
            ok &= r["valid_from"] <= as_of
        if r.get("valid_to") is not None and as_of is not None:
            ok &= r["valid_to"] > as_of
        open_now[i] = ok
    currencies = {plan["row"].get("currency") for plan in kept} - {None}
    return Tariffs(
        plan_ids=[str(plan["row"]["plan_id"]) for plan in kept],
        names=[str(plan["row"].get("name") or plan["row"]["plan_id"]) for plan in kept],
        fee=np.array([float(plan["row"]["monthly_fee"]) for plan in kept]),
        metrics=tuple(metrics),
        allowance=allowance,
        price=price,
        step=step,
        rounding=[plan["rnd"] for plan in kept],
        open_now=open_now,
        currency=sorted(currencies)[0] if len(currencies) == 1 else None,
        problems=problems,
    )


def rounded(use: F64, step: float) -> F64:
    """``ceil(use / step) × step`` (``use`` first rounded to 6 places against float noise)."""
    if step <= 0:
        return use
    return np.ceil(np.round(use, 6) / step) * step


def bills(usage: F64, tariffs: Tariffs, fee: F64 | None = None) -> F64:
    """Monthly bills ``(C, M, P)`` of usage ``(C, M, K)`` on every plan, at new-customer fees.

    ``fee`` overrides the plans' fees (shape ``(P,)``).
    """
    c, m, _ = usage.shape
    fees = tariffs.fee if fee is None else fee
    out = np.empty((c, m, tariffs.n))
    out[:] = fees
    cache: dict[tuple[int, float], F64] = {}
    for p in range(tariffs.n):
        for k in range(len(tariffs.metrics)):
            allow, price = tariffs.allowance[p, k], tariffs.price[p, k]
            if math.isinf(allow) or price == 0:
                continue
            key = (k, float(tariffs.step[p, k]))
            if key not in cache:
                cache[key] = rounded(usage[:, :, k], key[1])
            out[:, :, p] += np.maximum(0.0, cache[key] - allow) * price
    return out


@dataclass
class Comparison:
    """Per customer × plan summaries of the simulated bills over the observed months."""

    months: I64  # (C,) observed months
    current_total: F64  # (C,) what they paid (at today's fee) over those months
    total: F64  # (C, P) what each plan would have cost over those months
    cheaper_months: I64  # (C, P) months the plan was cheaper than the current one
    bills: npt.NDArray[np.float32] | None  # (C, P, M) monthly bills (NaN: not observed)
    current_bills: npt.NDArray[np.float32] | None  # (C, M)


def compare(
    usage: F64,
    observed: B,
    current: I64,
    fee_paid: F64,
    tariffs: Tariffs,
    *,
    keep_bills: bool = False,
    chunk: int = CHUNK,
) -> Comparison:
    """Simulate every customer's observed months on every plan against their current plan.

    ``usage`` is ``(C, M, K)`` (zeros where not observed), ``observed`` ``(C, M)``,
    ``current`` the index of each customer's plan in ``tariffs`` (``-1``: none),
    ``fee_paid`` what each pays for it per month.
    """
    c, m, _ = usage.shape
    p = tariffs.n
    months = observed.sum(axis=1).astype(np.int64)
    current_total = np.zeros(c)
    total = np.zeros((c, p))
    cheaper = np.zeros((c, p), np.int64)
    # the monthly bills kept for reporting are float32 (cents are exact enough; half the memory)
    kept = np.full((c, p, m), np.nan, np.float32) if keep_bills else None
    kept_cur = np.full((c, m), np.nan, np.float32) if keep_bills else None
    for lo in range(0, c, chunk):
        hi = min(c, lo + chunk)
        b = bills(usage[lo:hi], tariffs)  # (n, M, P)
        obs = observed[lo:hi]
        cur = current[lo:hi]
        has = cur >= 0
        rows = np.arange(hi - lo)
        ci = np.maximum(cur, 0)
        paid = fee_paid[lo:hi]
        own_fee = np.where(np.isnan(paid), tariffs.fee[ci], paid)
        cur_bill = b[rows, :, ci] - tariffs.fee[ci][:, None] + own_fee[:, None]  # (n, M)
        cur_bill = np.where(has[:, None], cur_bill, np.nan)
        w = obs[:, :, None]
        total[lo:hi] = np.where(w, b, 0.0).sum(axis=1)
        current_total[lo:hi] = np.where(obs, np.nan_to_num(cur_bill), 0.0).sum(axis=1)
        saving = cur_bill[:, :, None] - b
        cheaper[lo:hi] = ((saving > CHEAPER_BY) & w).sum(axis=1)
        if kept is not None and kept_cur is not None:
            kept[lo:hi] = np.where(w, b, np.nan).transpose(0, 2, 1)
            kept_cur[lo:hi] = np.where(obs, cur_bill, np.nan)
    return Comparison(months, current_total, total, cheaper, kept, kept_cur)


@dataclass
class Choice:
    """The recommended plans per customer (``-1``: none) and why."""

    cheapest: I64  # (C,) plan with the largest saving among those that qualify
    like_for_like: I64  # (C,) same, among plans that include at least the current allowances
    qualifies: B  # (C, P)
    saving_per_year: F64  # (C, P) 12 × mean monthly saving over the observed months
    share_cheaper: F64  # (C, P)


def choose(
    cmp: Comparison,
    current: I64,
    tariffs: Tariffs,
    *,
    min_months: int,
    most_months_share: float,
    min_saving_per_year: float,
) -> Choice:
    """Plans that would have been cheaper in most months *and* save more than a threshold.

    A plan qualifies for a customer when it is open to new customers today, is not
    their plan, they have at least ``min_months`` observed months, it was cheaper
    in more than ``most_months_share`` of them, and 12 × its mean monthly saving is
    at least ``min_saving_per_year`` (and positive).
    """
    months = cmp.months.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_saving = (cmp.current_total[:, None] - cmp.total) / months[:, None]
        share = cmp.cheaper_months / months[:, None]
    saving_year = np.where(months[:, None] > 0, 12 * mean_saving, np.nan)
    share = np.where(months[:, None] > 0, share, np.nan)
    p = tariffs.n
    not_current = current[:, None] != np.arange(p)[None, :]
    qualifies = (
        tariffs.open_now[None, :]
        & not_current
        & (current[:, None] >= 0)
        & (cmp.months[:, None] >= max(min_months, 1))
        & (np.nan_to_num(share) > most_months_share)
        & (np.nan_to_num(saving_year) >= min_saving_per_year)
        & (np.nan_to_num(saving_year) > 0)
    )
    score = np.where(qualifies, saving_year, -np.inf)
    cheapest = np.where(qualifies.any(axis=1), score.argmax(axis=1), -1)
    covers = np.array(
        [[tariffs.covers(a, b) for b in range(p)] for a in range(p)], bool
    )  # covers[a, b]: a includes what b does
    lfl_ok = qualifies & covers.T[np.maximum(current, 0)]
    lfl_score = np.where(lfl_ok, saving_year, -np.inf)
    like = np.where(lfl_ok.any(axis=1), lfl_score.argmax(axis=1), -1)
    return Choice(cheapest, like, qualifies, saving_year, share)
