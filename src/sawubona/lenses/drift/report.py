"""The drift lens's result tables and findings, assembled from the computed parts.

``drift_customers`` — one row per customer with a purchase up to ``as_of``:

=====================  ===================================================================
customer_id            the customer
first_purchase         day of their first purchase
last_purchase          day of their last purchase up to as_of
purchase_days          days with a purchase (several journeys in one day count once)
frequency              repeat purchase days (x = purchase_days − 1)
recency, T             t_x and age, in ``time_unit``
p_alive                P(alive) under ``model``
expected_purchases     expected purchase days in the next ``horizon`` under ``model``
value_total            value of their purchases up to as_of (null when not recorded)
value_mean             value per purchase day
expected_value         expected_purchases × value_mean
regular                at least ``regular_repeats`` repeat purchases
usual_gap_days         their typical (geometric-mean) gap between purchases, regulars only
cadence_limit_days     their ``cadence_percentile`` gap (log-normal, shrunk), regulars only
silence_days           days since their last purchase
cadence_z              (ln silence − mean ln gap) / sd ln gap, regulars only
silence_probability    P(one of their gaps lasts this long), regulars only
cadence_broken         silence_days > cadence_limit_days
status                 active, drifting or lapsed (see the lens docstring)
value_at_stake         for drifting and lapsed customers: value_mean × their own pace
                       (frequency / T) × horizon — what they spent in such a period
core_item, core_share  the item in most of their journeys and that share (regulars)
likely_reasons         top reasons from drift_reasons, or "no visible cause"
holdout_purchases      purchase days in the holdout period (when the data has one)
model, time_unit       the model and unit behind p_alive, recency, T
=====================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.base import Finding
from sawubona.lenses.drift import fitting
from sawubona.lenses.drift.cadence import Cadence
from sawubona.stats.btyd import CountingModel
from sawubona.stats.intervals import wilson


def _col(t: pa.Table, name: str) -> np.ndarray:
    return np.asarray(t.column(name).to_numpy(zero_copy_only=False), dtype=float)


def _spread(n: int, idx: np.ndarray, values: np.ndarray, fill: float = np.nan) -> np.ndarray:
    out = np.full(n, fill, dtype=float)
    out[idx] = values
    return out


def customers_table(
    cust: pa.Table,
    gaps: pa.Table,
    cad: Cadence,
    status: np.ndarray,
    p_alive: np.ndarray,
    expected: np.ndarray,
    holdout: fitting.Holdout | None,
    core: pa.Table,
    reason_text: Mapping[str, str],
    model: str,
    unit_name: str,
    horizon: float,
) -> pa.Table:
    n = cust.num_rows
    unit = fitting.UNIT_DAYS[unit_name]
    ids = cust.column("customer_id")
    reg_idx = np.asarray(
        pc.index_in(gaps.column("customer_id"), value_set=ids).to_numpy(zero_copy_only=False),
        dtype=int,
    )
    regular = np.zeros(n, bool)
    regular[reg_idx] = True
    freq = _col(cust, "frequency")
    rec = _col(cust, "recency_days") / unit
    age = _col(cust, "age_days") / unit
    value_mean = _col(cust, "value_mean")
    pace = np.where(age > 0, freq / np.where(age > 0, age, 1.0), 0.0)
    at_stake = np.where(status != "active", value_mean * pace * horizon, 0.0)
    silence = summary_silence(cust)
    cidx = pc.index_in(ids, value_set=core.column("customer_id"))
    reasons = [reason_text.get(c) for c in ids.to_pylist()]

    def day(col: str) -> pa.Array:
        days = cust.column(col).to_numpy(zero_copy_only=False).astype("int64")
        return pa.array(days.astype("datetime64[D]"), pa.date32())

    def opt(values: np.ndarray) -> pa.Array:
        return pa.array(values, pa.float64(), mask=np.isnan(values))

    cols: dict[str, Any] = {
        "customer_id": ids,
        "first_purchase": day("first_day"),
        "last_purchase": day("last_day"),
        "purchase_days": cust.column("purchase_days"),
        "frequency": cust.column("frequency"),
        "recency": pa.array(rec),
        "T": pa.array(age),
        "p_alive": pa.array(p_alive),
        "expected_purchases": pa.array(expected),
        "value_total": cust.column("value_total"),
        "value_mean": cust.column("value_mean"),
        "expected_value": opt(expected * value_mean),
        "regular": pa.array(regular),
        "usual_gap_days": opt(_spread(n, reg_idx, cad.usual_gap_days)),
        "cadence_limit_days": opt(_spread(n, reg_idx, cad.cadence_limit_days)),
        "silence_days": pa.array(silence),
        "cadence_z": opt(_spread(n, reg_idx, cad.cadence_z)),
        "silence_probability": opt(_spread(n, reg_idx, cad.silence_probability)),
        "cadence_broken": pa.array(_spread(n, reg_idx, cad.broken.astype(float), 0.0) > 0),
        "status": pa.array(status.astype(str)),
        "value_at_stake": opt(at_stake),
        "core_item": pc.take(core.column("core_item"), cidx),
        "core_share": pc.take(core.column("core_share"), cidx),
        "likely_reasons": pa.array(reasons, pa.string()),
    }
    if holdout is not None:
        cols["holdout_purchases"] = pa.array(holdout.actual)
    cols["model"] = pa.array([model] * n, pa.string())
    cols["time_unit"] = pa.array([unit_name] * n, pa.string())
    return pa.table(cols)


def summary_silence(cust: pa.Table) -> np.ndarray:
    """Days from the last purchase to as_of (age − recency, both in days)."""
    return _col(cust, "age_days") - _col(cust, "recency_days")


def cohorts(customers: pa.Table) -> pa.Table:
    """``drift_cohorts``: by month of first purchase — customers, regulars, status counts,
    mean P(alive), expected purchases and value at stake."""
    month = pc.strftime(pc.cast(customers.column("first_purchase"), pa.timestamp("s")), "%Y-%m")
    st = customers.column("status")
    t = pa.table(
        {
            "cohort": month,
            "customers": pa.array(np.ones(customers.num_rows, dtype=np.int64)),
            "regulars": pc.cast(customers.column("regular"), pa.int64()),
            "active": pc.cast(pc.equal(st, "active"), pa.int64()),
            "drifting": pc.cast(pc.equal(st, "drifting"), pa.int64()),
            "lapsed": pc.cast(pc.equal(st, "lapsed"), pa.int64()),
            "p_alive": customers.column("p_alive"),
            "expected_purchases": customers.column("expected_purchases"),
            "value_at_stake": pc.fill_null(customers.column("value_at_stake"), 0.0),
        }
    )
    g = t.group_by("cohort").aggregate(
        [
            ("customers", "sum"),
            ("regulars", "sum"),
            ("active", "sum"),
            ("drifting", "sum"),
            ("lapsed", "sum"),
            ("p_alive", "mean"),
            ("expected_purchases", "sum"),
            ("value_at_stake", "sum"),
        ]
    )
    g = g.rename_columns([c.rsplit("_", 1)[0] if c != "cohort" else c for c in g.column_names])
    g = g.rename_columns([{"p_alive": "mean_p_alive"}.get(c, c) for c in g.column_names])
    return g.sort_by("cohort")


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}"


def findings(
    lens: str,
    tables: Mapping[str, pa.Table],
    models: Mapping[str, CountingModel],
    primary: str,
    unit_name: str,
    horizon: float,
    holdout: fitting.Holdout | None,
    s: Mapping[str, Any],
) -> list[Finding]:
    out: list[Finding] = []
    for name, m in models.items():
        params = ", ".join(f"{k} = {v:.4g}" for k, v in m.params_.items())
        out.append(
            Finding(
                lens,
                f"model_{name}",
                f"{m.title} fitted on {m.n_customers_:,} customers ({m.n_unique_:,} distinct "
                f"histories), time in {unit_name}s: {params}; log-likelihood "
                f"{m.log_likelihood_:,.1f}.",
                value=m.log_likelihood_,
                n=m.n_customers_,
                table="drift_model",
                where={"model": name},
            )
        )
    if holdout is not None and primary in holdout.predicted:
        act, pred = float(holdout.actual.sum()), float(holdout.predicted[primary].sum())
        length = holdout.length_days / fitting.UNIT_DAYS[unit_name]
        err = (pred - act) / act if act else float("nan")
        out.append(
            Finding(
                lens,
                "holdout",
                f"Holdout check over the {length:.3g} {unit_name}s after as_of: "
                f"{models[primary].title} expected {_fmt(pred)} repeat purchases, customers made "
                f"{_fmt(act)} ({err:+.1%}).",
                value=err,
                n=len(holdout.actual),
                table="drift_holdout",
                where={"model": primary},
            )
        )
    cust = tables["drift_customers"]
    status = np.asarray(cust.column("status").to_pylist(), dtype=object)
    regular = np.asarray(cust.column("regular").to_pylist(), dtype=bool)
    stake = np.nan_to_num(
        np.asarray(cust.column("value_at_stake").to_numpy(zero_copy_only=False), dtype=float)
    )
    n_reg = int(regular.sum())
    for st, severity in (("drifting", "action"), ("lapsed", "attention")):
        k = int(((status == st) & regular).sum())
        if n_reg == 0:
            break
        low, high = wilson(k, n_reg)
        what = (
            "silent beyond their own usual gap or unlikely to be alive"
            if st == "drifting"
            else f"P(alive) below {float(s['lapsed_below']):g}"
        )
        out.append(
            Finding(
                lens,
                f"regulars_{st}",
                f"{k:,} of {n_reg:,} regulars are {st} ({what}); value at stake "
                f"{_fmt(float(stake[(status == st) & regular].sum()))} over the next "
                f"{horizon:g} {unit_name}s.",
                value=k / n_reg,
                n=n_reg,
                low=float(low),
                high=float(high),
                table="drift_customers",
                where={"status": st, "regular": True},
                severity=severity if k else "info",
            )
        )
    if holdout is not None and n_reg:
        bought = np.asarray(cust.column("holdout_purchases").to_numpy(), dtype=float) > 0
        parts, n_parts = [], 0
        for st in ("active", "drifting", "lapsed"):
            sel = (status == st) & regular
            if sel.any():
                parts.append(f"{bought[sel].mean():.0%} of {int(sel.sum()):,} {st}")
                n_parts += int(sel.sum())
        out.append(
            Finding(
                lens,
                "holdout_status",
                "Regulars who bought again in the holdout period: " + ", ".join(parts) + ".",
                n=n_parts,
                table="drift_customers",
                where={"regular": True},
            )
        )
    rs = tables["drift_reasons"]
    if rs.num_rows:
        n_t = len(set(rs.column("customer_id").to_pylist()))
        counts: dict[str, set[str]] = {}
        labels: dict[str, str] = {}
        for r in rs.select(["customer_id", "reason", "label"]).to_pylist():
            counts.setdefault(r["reason"], set()).add(r["customer_id"])
            labels[r["reason"]] = r["label"]
        for reason, who in sorted(counts.items(), key=lambda kv: -len(kv[1])):
            k = len(who)
            low, high = wilson(k, n_t)
            out.append(
                Finding(
                    lens,
                    f"reason_{reason}",
                    f"{k:,} of {n_t:,} drifting or lapsed regulars: {labels[reason]}"
                    + (" just before they stopped." if reason != "no_visible_cause" else "."),
                    value=k / n_t,
                    n=n_t,
                    low=float(low),
                    high=float(high),
                    table="drift_reasons",
                    where={"reason": reason},
                    severity="action" if reason != "no_visible_cause" else "info",
                )
            )
    out.extend(neglect_findings(lens, tables, s))
    return out


def neglect_findings(
    lens: str, tables: Mapping[str, pa.Table], s: Mapping[str, Any], basis: str = ""
) -> list[Finding]:
    """The neglect finding, when ``drift_neglect`` has rows (``basis``: how value was read)."""
    ng = tables.get("drift_neglect")
    if ng is None or not ng.num_rows:
        return []
    un = int(pc.sum(pc.greater(ng.column("unanswered_contacts"), 0)).as_py() or 0)
    mk = int(pc.sum(pc.is_valid(ng.column("marketing_recent"))).as_py() or 0)
    return [
        Finding(
            lens,
            "neglect",
            f"{ng.num_rows:,} valuable customers{basis} look neglected: {un:,} with contacts "
            f"unanswered after {int(s['reply_days'])} days, {mk:,} sent marketing with no "
            f"personal contact in {int(s['neglect_days'])} days.",
            value=float(ng.num_rows),
            n=ng.num_rows,
            table="drift_neglect",
            severity="action",
        )
    ]
