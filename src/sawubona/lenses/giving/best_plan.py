"""Best plan: each customer's real months priced on every open plan.

prep (Ibis, where the data lives): each customer's latest main-plan
subscription; their usage per month and metric over the recent window, on that
plan only (``usage.plan_id`` when it is filled in, else the periods that lie
inside the subscription). model (NumPy, :mod:`.bills`): a dense customers ×
months × metrics array priced on every plan. report: ``giving_best_plan`` (one
row per customer and plan), best-plan gifts and findings.

A plan is recommended only when it would have been cheaper in *most* of the
customer's months (more than ``most_months_share`` of them), saves at least
``min_saving_per_year``, and the customer has ``min_months`` months or more —
otherwise the verdict says why there is none. Two options are given: the
**cheapest** (largest saving; it may be a *bigger* plan when overage makes the
current one dear) and, when it differs, the **like-for-like** one (the largest
saving among plans that include at least everything the current plan does).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.base import Finding
from sawubona.lenses.giving import messages
from sawubona.lenses.giving.bills import Choice, Comparison, Tariffs, choose, compare
from sawubona.lenses.giving.common import (
    add_months,
    gifts_table,
    json_float,
    json_str,
    json_str_column,
    money,
    month_floor,
    share_confidence,
    to_json,
)
from sawubona.stats import wilson

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.lenses.giving.lens import Context

VERDICTS = ("switch", "stay", "no_verdict", "no_usage", "left")


@dataclass
class Window:
    """The months looked at: ``first`` … ``first + months − 1``."""

    first: dt.datetime
    months: int
    last_start: dt.datetime  # latest period_start counted (a period needs min_period_days seen)

    @classmethod
    def at(cls, as_of: dt.datetime, months: int, min_period_days: int) -> Window:
        last_start = as_of - dt.timedelta(days=min_period_days)
        first = add_months(month_floor(last_start), -(months - 1))
        return cls(first, months, last_start)

    def labels(self) -> list[dt.datetime]:
        return [add_months(self.first, i) for i in range(self.months)]


def current_subscriptions(ctx: Context, tariffs: Tariffs) -> ir.Table:
    """Each customer's latest main-plan subscription started by ``as_of``."""
    subs = ctx.data.until("subscriptions")
    subs = subs.filter(subs.plan_id.isin(tariffs.plan_ids))
    w = ibis.window(group_by="customer_id", order_by=[ibis.desc("started_at"), "plan_id"])
    latest = subs.mutate(_rn=ibis.row_number().over(w)).filter(lambda t: t._rn == 0)
    return latest.select(
        "customer_id",
        "plan_id",
        "started_at",
        "ended_at",
        "monthly_fee_paid",
        active=latest.ended_at.isnull() | (latest.ended_at > ctx.as_of),
    )


def monthly_usage(ctx: Context, current: ir.Table, tariffs: Tariffs, window: Window) -> ir.Table:
    """Use rows on the customer's current plan in the window, as positions.

    ``current`` carries ``_row``, each customer's position (0-based) in the customer
    array. One row per usage row (not summed: :func:`densify` adds them up), each as
    small integers — customer position ``ci``, month ``mi`` (months since
    ``window.first``), metric ``ki`` (position in ``tariffs.metrics``) — and
    ``quantity``. Integers instead of the customer id and text keys keep the transfer
    from the engine small.
    """
    u = ctx.data.until("usage")
    u = u.filter(
        (u.period_start >= window.first)
        & (u.period_start <= window.last_start)
        & u.metric.isin(list(tariffs.metrics))
    )
    cur = current.select(
        "customer_id", "_row", _plan="plan_id", _start="started_at", _end="ended_at"
    )
    j = u.join(cur, "customer_id")
    # the billing record's plan when there is one (Megaline bills some use after churn_date),
    # else the periods that lie inside the subscription
    inside = (j.period_start >= j._start) & (j._end.isnull() | (j.period_start < j._end))
    j = j.filter(ibis.ifelse(j.plan_id.isnull(), inside, j.plan_id == j._plan))
    first = window.first
    month = (j.period_start.year() - first.year) * 12 + (j.period_start.month() - first.month)
    metric = ibis.cases(*[(j.metric == m, k) for k, m in enumerate(tariffs.metrics)])
    return j.select(
        ci=j._row.cast("int32"),
        mi=month.cast("int16"),
        ki=metric.cast("int16"),
        quantity=j.quantity.cast("float64"),
    )


@dataclass
class Dense:
    """Usage as arrays, one row per customer of ``customers``."""

    customers: pa.Table  # customer_id, plan_id, started_at, ended_at, monthly_fee_paid, active
    usage: np.ndarray  # (C, M, K)
    observed: np.ndarray  # (C, M)
    current: np.ndarray  # (C,) index into tariffs
    fee_paid: np.ndarray  # (C,)


def densify(customers: pa.Table, long: pa.Table, tariffs: Tariffs, window: Window) -> Dense:
    """Usage rows (:func:`monthly_usage`) → a dense ``customers × months × metrics`` array.

    Rows of the same customer, month and metric add up; a month with any row is observed.
    """
    c = customers.num_rows
    m, k = window.months, len(tariffs.metrics)
    observed = np.zeros((c, m), bool)
    if not long.num_rows:
        usage = np.zeros((c, m, k))
    else:
        ci = np.asarray(long.column("ci"), dtype=np.int64)
        mi = np.asarray(long.column("mi"), dtype=np.int64)
        ki = np.asarray(long.column("ki"), dtype=np.int64)
        q = np.asarray(long.column("quantity").fill_null(0.0), dtype=float)
        ok = (ci >= 0) & (ci < c) & (ki >= 0) & (ki < k) & (mi >= 0) & (mi < m)
        if not ok.all():  # the engine's rows are all in range: no copies then
            ci, mi, ki, q = ci[ok], mi[ok], ki[ok], q[ok]
        cell = ci * m + mi  # (customer, month) as one index
        usage = _summed(cell, ki, q, (c, m, k))
        observed.reshape(-1)[cell] = True
    plan_pos = pc.index_in(customers.column("plan_id"), value_set=pa.array(tariffs.plan_ids))
    current = np.asarray(plan_pos.fill_null(-1), dtype=np.int64)
    fee = customers.column("monthly_fee_paid").cast(pa.float64())
    fee_paid = np.asarray(fee.fill_null(float("nan")), dtype=float)
    return Dense(customers, usage, observed, current, fee_paid)


def _summed(
    cell: np.ndarray, ki: np.ndarray, q: np.ndarray, shape: tuple[int, int, int]
) -> np.ndarray:
    """``q`` summed into zeros of ``shape`` at ``[cell // M, cell % M, ki]``, in row order."""
    c, m, k = shape
    flat = cell * k
    flat += ki
    return np.bincount(flat, weights=q, minlength=c * m * k).reshape(shape)


@dataclass
class BestPlan:
    table: pa.Table  # giving_best_plan
    gifts: pa.Table
    per_customer: pa.Table  # customer_id, current_plan_id, months_observed, verdict, ...
    findings: list[Finding]


def run(ctx: Context, tariffs: Tariffs) -> BestPlan:
    s = ctx.settings
    window = Window.at(ctx.as_of, int(s["history_months"]), int(s["min_period_days"]))
    # each customer's position in the arrays is their row here, in the engine's customer_id order
    customers = current_subscriptions(ctx, tariffs).order_by("customer_id").to_pyarrow()
    # the usage query joins these rows as they are, not the subscriptions window again
    keys = customers.select(["customer_id", "plan_id", "started_at", "ended_at"])
    keys = keys.append_column("_row", pa.array(np.arange(customers.num_rows, dtype=np.int64)))
    long = monthly_usage(ctx, ibis.memtable(keys), tariffs, window).to_pyarrow()
    dense = densify(customers, long, tariffs, window)
    cmp = compare(
        dense.usage, dense.observed, dense.current, dense.fee_paid, tariffs, keep_bills=True
    )
    choice = choose(
        cmp,
        dense.current,
        tariffs,
        min_months=int(s["min_months"]),
        most_months_share=float(s["most_months_share"]),
        min_saving_per_year=float(s["min_saving_per_year"]),
    )
    active = np.asarray(customers.column("active").fill_null(True), dtype=bool)
    verdict = _verdicts(cmp, choice, active, int(s["min_months"]))
    gifts = _gifts(ctx, tariffs, window, dense, cmp, choice, active)
    table = _plan_table(tariffs, window, dense, cmp, choice)
    per_customer = pa.table(
        {
            "customer_id": customers.column("customer_id"),
            "current_plan_id": customers.column("plan_id"),
            "monthly_fee_paid": pa.array(
                dense.fee_paid, pa.float64(), mask=np.isnan(dense.fee_paid)
            ),
            "months_observed": pa.array(cmp.months),
            "best_plan_verdict": pa.array(np.array(VERDICTS, dtype=object)[verdict]),
            "best_plan_id": _plan_labels(tariffs, np.where(verdict == 0, choice.cheapest, -1)),
            "best_plan_saving_per_year": _pick(
                choice.saving_per_year, choice.cheapest, verdict == 0
            ),
        }
    )
    findings = _findings(ctx, tariffs, dense, cmp, choice, verdict, gifts)
    return BestPlan(table, gifts, per_customer, findings)


def _verdicts(cmp: Comparison, choice: Choice, active: np.ndarray, min_months: int) -> np.ndarray:
    v = np.where(choice.cheapest >= 0, 0, 1)
    v = np.where(cmp.months < max(min_months, 1), 2, v)
    v = np.where(cmp.months == 0, 3, v)
    return np.where(~active, 4, v)


def _plan_labels(tariffs: Tariffs, idx: np.ndarray) -> pa.Array:
    ids = pa.array(tariffs.plan_ids, pa.string())
    return (
        ids.take(pa.array(np.maximum(idx, 0), mask=idx < 0))
        if len(idx)
        else pa.array([], pa.string())
    )


def _pick(values: np.ndarray, idx: np.ndarray, where: np.ndarray) -> pa.Array:
    rows = np.arange(len(idx))
    got = values[rows, np.maximum(idx, 0)] if len(idx) else np.zeros(0)
    got = np.round(got, 2)
    return pa.array(got, pa.float64(), mask=~where | (idx < 0))


def _gifts(
    ctx: Context,
    tariffs: Tariffs,
    window: Window,
    dense: Dense,
    cmp: Comparison,
    choice: Choice,
    active: np.ndarray,
) -> pa.Table:
    give = active & (choice.cheapest >= 0)
    rows_c = np.flatnonzero(give)
    extra = rows_c[
        (choice.like_for_like[rows_c] >= 0)
        & (choice.like_for_like[rows_c] != choice.cheapest[rows_c])
    ]
    cust = np.r_[rows_c, extra]
    plan = np.r_[choice.cheapest[rows_c], choice.like_for_like[extra]]
    kind = ["best_plan_cheaper"] * len(rows_c) + ["best_plan_like_for_like"] * len(extra)
    if not len(cust):
        return gifts_table({"customer_id": []})
    ids = dense.customers.column("customer_id").combine_chunks()
    cust_ids = ids.take(pa.array(cust)).to_pylist()
    cur = dense.current[cust]
    saving = choice.saving_per_year[cust, plan]
    months = cmp.months[cust]
    cheaper = cmp.cheaper_months[cust, plan]
    conf = share_confidence(cheaper, months)
    first = ctx.first_names(cust_ids)
    labels = window.labels()
    month_key = [t.strftime("%Y-%m") for t in labels]
    month_day = [t.date().isoformat() for t in labels]
    assert cmp.bills is not None and cmp.current_bills is not None
    # the numbers of every gift at once (NumPy); the loop below only formats them
    obs = dense.observed[cust]
    cur_b = np.round(cmp.current_bills[cust].astype(float), 2)
    alt_b = np.round(cmp.bills[cust, plan].astype(float), 2)
    n_obs = obs.sum(axis=1)
    paid_month = np.where(obs, cur_b, 0.0).sum(axis=1) / np.maximum(n_obs, 1)
    gap = np.where(obs, cur_b - alt_b, np.inf)
    worst = gap.argmin(axis=1)
    dearer = np.take_along_axis(gap, worst[:, None], axis=1)[:, 0] < 0
    fee_paid = np.where(np.isnan(dense.fee_paid[cust]), tariffs.fee[cur], dense.fee_paid[cust])
    covers = [[tariffs.covers(a, b) for b in range(tariffs.n)] for a in range(tariffs.n)]
    rule = (
        f"cheaper in more than {float(ctx.settings['most_months_share']):.0%} of the months "
        f"and saving at least {float(ctx.settings['min_saving_per_year']):g} a year"
    )
    # the evidence is JSON written piece by piece (as to_json would write the dict): what
    # depends on the plan pair or on the months seen is encoded once, not once per gift
    head = {
        (p, q): f'{{"rule":{json_str(rule)},"current_plan":{json_str(tariffs.plan_ids[q])},'
        f'"plan":{json_str(tariffs.plan_ids[p])},'
        f'"like_for_like":{"true" if covers[p][q] else "false"},'
        f'"direction":{json_str("bigger" if tariffs.fee[p] > tariffs.fee[q] else "smaller")},'
        for p in range(tariffs.n)
        for q in range(tariffs.n)
    }
    plan_fee = [json_float(float(f)) for f in tariffs.fee]
    tail = {
        (p, q): f',"plan_id":{json_str(tariffs.plan_ids[q])}}},'
        f'"plans":{{"plan_id":[{json_str(tariffs.plan_ids[q])},{json_str(tariffs.plan_ids[p])}]}}}}}}'
        for p in range(tariffs.n)
        for q in range(tariffs.n)
    }
    formula = json_str("fee + sum of max(0, rounded use - allowance) x overage")
    metrics = to_json(list(tariffs.metrics))
    # the months seen: a handful of distinct patterns, each spelt out once
    shapes, pattern = np.unique(obs, axis=0, return_inverse=True)
    seen_of: list[tuple[list[int], str, str]] = []
    for row in shapes:
        seen = np.flatnonzero(row).tolist()
        seen_of.append(
            (
                seen,
                to_json([month_key[j] for j in seen]),
                to_json([month_day[j] for j in seen]),
            )
        )
    # the bills shown (months seen) are finite: float.__repr__ is how the encoder writes them
    finite = bool(np.isfinite(cur_b[obs]).all() and np.isfinite(alt_b[obs]).all())
    num = float.__repr__ if finite else json_float
    # every gift's bills of the months seen, written at once (row by row, months in order)
    cur_txt = list(map(num, cur_b[obs].tolist()))
    alt_txt = list(map(num, alt_b[obs].tolist()))
    ends = np.cumsum(n_obs).tolist()
    fee_l = [round(x, 2) for x in fee_paid.astype(float).tolist()]
    save_l = [round(x, 2) for x in saving.astype(float).tolist()]
    cheaper_l = cheaper.astype(np.int64).tolist()
    plan_l, cur_pl, pattern_l = plan.tolist(), cur.tolist(), pattern.reshape(-1).tolist()
    cid_l = json_str_column(pa.array(cust_ids, pa.string())).to_pylist()
    paid_l, saving_f = paid_month.tolist(), saving.astype(float).tolist()
    worst_l, dearer_l = worst.tolist(), dearer.tolist()
    bigger = (tariffs.fee[:, None] > tariffs.fee[None, :]).tolist()  # bigger[p][q]
    evidence, texts = [], []
    start = 0
    for i in range(len(cust)):
        p, q = plan_l[i], cur_pl[i]
        seen, months_json, days_json = seen_of[pattern_l[i]]
        end = ends[i]
        cid = cid_l[i]
        evidence.append(
            f"{head[p, q]}"
            f'"fee_paid":{json_float(fee_l[i])},"plan_fee":{plan_fee[p]},'
            f'"months":{months_json},'
            f'"current_bills":[{",".join(cur_txt[start:end])}],'
            f'"plan_bills":[{",".join(alt_txt[start:end])}],'
            f'"months_cheaper":{cheaper_l[i]},"saving_per_year":{json_float(save_l[i])},'
            f'"formula":{formula},"rows":{{"usage":{{"customer_id":{cid},'
            f'"period_start":{days_json},"metric":{metrics}}},'
            f'"subscriptions":{{"customer_id":{cid}{tail[p, q]}'
        )
        start = end
        w = worst_l[i]
        texts.append(
            messages.best_plan(
                first=first[i],
                current=tariffs.names[q],
                plan=tariffs.names[p],
                months=len(seen),
                cheaper=cheaper_l[i],
                paid_per_month=paid_l[i],
                saving_per_year=saving_f[i],
                bigger=bigger[p][q],
                like_for_like=covers[p][q],
                dearer_month=labels[w] if dearer_l[i] else None,
                dearer_by=float(alt_b[i, w] - cur_b[i, w]) if dearer_l[i] else 0.0,
                currency=ctx.currency,
            )
        )
    plan_ids = pa.array(tariffs.plan_ids, pa.string())
    return gifts_table(
        {
            "gift_id": [
                f"{k}:{c}:{tariffs.plan_ids[p]}"
                for k, c, p in zip(kind, cust_ids, plan, strict=True)
            ],
            "customer_id": cust_ids,
            "kind": kind,
            "plan_id": plan_ids.take(pa.array(plan)),
            "current_plan_id": plan_ids.take(pa.array(cur)),
            "value_per_year": np.round(saving, 2),
            "currency": [ctx.currency] * len(cust),
            "recurring": [True] * len(cust),
            "confidence": np.round(conf, 3),
            "evidence": evidence,
            "message": texts,
            "source_table": ["usage"] * len(cust),
            "source_ids": cust_ids,
        }
    )


def _plan_table(
    tariffs: Tariffs, window: Window, dense: Dense, cmp: Comparison, choice: Choice
) -> pa.Table:
    """``giving_best_plan``: per customer with usage × (open plans and their own plan)."""
    _c, p = cmp.total.shape
    is_cur = dense.current[:, None] == np.arange(p)[None, :]
    keep = (tariffs.open_now[None, :] | is_cur) & (cmp.months[:, None] > 0)
    ci, pi = np.nonzero(keep)
    assert cmp.bills is not None and cmp.current_bills is not None
    cur_rows = is_cur[ci, pi]
    # each row's bills (a customer's own plan: what they paid), in place: no full temporaries
    bills = cmp.bills[ci, pi]
    own = np.flatnonzero(cur_rows)
    bills[own] = cmp.current_bills[ci[own]]
    flat = bills.reshape(-1).astype(float)
    np.round(flat, 2, out=flat)
    del bills
    total = np.where(cur_rows, cmp.current_total[ci], cmp.total[ci, pi])
    m = window.months
    values = pa.array(flat, pa.float64(), mask=np.isnan(flat))
    offsets = pa.array(np.arange(len(ci) + 1, dtype=np.int32) * m)
    # 0 none, 1 cheapest, 2 like_for_like, 3 both: a code per row, one string per code
    rec = (choice.cheapest[ci] == pi).astype(np.int8) + 2 * (choice.like_for_like[ci] == pi)
    recommended = pa.DictionaryArray.from_arrays(
        pa.array(rec.astype(np.int8), mask=rec == 0),
        pa.array(["", "cheapest", "like_for_like", "cheapest, like_for_like"], pa.string()),
    ).cast(pa.string())
    months = cmp.months[ci]
    plan_ids = pa.array(tariffs.plan_ids, pa.string())
    share = choice.share_cheaper[ci, pi]
    saving = choice.saving_per_year[ci, pi]
    return pa.table(
        {
            "customer_id": dense.customers.column("customer_id")
            .combine_chunks()
            .take(pa.array(ci)),
            "plan_id": plan_ids.take(pa.array(pi)),
            "is_current": pa.array(cur_rows),
            "open_to_new": pa.array(tariffs.open_now[pi]),
            "months": pa.array(months),
            "total": pa.array(np.round(total, 2)),
            "mean_bill": pa.array(np.round(total / np.maximum(months, 1), 2)),
            "months_cheaper": pa.array(np.where(cur_rows, 0, cmp.cheaper_months[ci, pi])),
            "share_cheaper": pa.array(np.where(cur_rows, np.nan, share), mask=cur_rows),
            "saving_per_year": pa.array(np.round(np.where(cur_rows, 0.0, saving), 2)),
            "qualifies": pa.array(choice.qualifies[ci, pi]),
            "recommended": recommended,
            "window_start": pa.array(
                np.full(len(ci), np.datetime64(window.first, "us")), pa.timestamp("us")
            ),
            "bills": pa.ListArray.from_arrays(offsets, values),
        }
    )


def _findings(
    ctx: Context,
    tariffs: Tariffs,
    dense: Dense,
    cmp: Comparison,
    choice: Choice,
    verdict: np.ndarray,
    gifts: pa.Table,
) -> list[Finding]:
    out: list[Finding] = []
    cur_money = ctx.currency
    judged = verdict <= 1
    n = int(judged.sum())
    k = int((verdict == 0).sum())
    if n:
        low, high = wilson(k, n)
        savings = choice.saving_per_year[np.arange(len(verdict)), np.maximum(choice.cheapest, 0)]
        sv = savings[verdict == 0]
        total = float(sv.sum()) if k else 0.0
        text = (
            f"{k} of {n} current customers with enough usage history ({k / n:.0%}) would have paid "
            f"less on another open plan in most of their months"
        )
        if k:
            text += (
                f": together {money(total, cur_money)} a year, "
                f"{money(float(np.median(sv)), cur_money)} each at the median"
            )
        out.append(
            Finding(
                "giving",
                "best_plan_overpaying",
                text + ".",
                value=k / n,
                n=n,
                low=float(low),
                high=float(high),
                table="giving_gifts",
                where={"kind": "best_plan_cheaper"},
                severity="action" if k else "info",
            )
        )
    for q in range(tariffs.n):
        on = judged & (dense.current == q)
        nq = int(on.sum())
        if not nq:
            continue
        kq = int((on & (verdict == 0)).sum())
        low, high = wilson(kq, nq)
        targets = choice.cheapest[on & (verdict == 0)]
        top = ""
        if kq:
            best = np.bincount(targets, minlength=tariffs.n).argmax()
            top = f", most often to {tariffs.names[best]}"
        out.append(
            Finding(
                "giving",
                f"best_plan_on_{tariffs.plan_ids[q]}",
                f"On {tariffs.names[q]}: {kq} of {nq} customers ({kq / nq:.0%}) would have paid "
                f"less on another plan in most months{top}.",
                value=kq / nq,
                n=nq,
                low=float(low),
                high=float(high),
                table="giving_customers",
                where={"current_plan_id": tariffs.plan_ids[q], "best_plan_verdict": "switch"},
            )
        )
    bigger = (verdict == 0) & (
        tariffs.fee[np.maximum(choice.cheapest, 0)] > tariffs.fee[np.maximum(dense.current, 0)]
    )
    if bigger.any():
        out.append(
            Finding(
                "giving",
                "best_plan_bigger",
                f"{int(bigger.sum())} customers pay so much overage that a bigger plan would have "
                "cost them less: telling them is a gift, not an upsell.",
                value=float(bigger.sum()),
                n=n,
                table="giving_gifts",
                where={"kind": "best_plan_cheaper"},
            )
        )
    short = int((verdict == 2).sum())
    if short:
        out.append(
            Finding(
                "giving",
                "best_plan_no_verdict",
                f"{short} current customers have fewer than {int(ctx.settings['min_months'])} "
                "months of usage on their plan: no verdict yet.",
                value=float(short),
                table="giving_customers",
                where={"best_plan_verdict": "no_verdict"},
            )
        )
    return out
