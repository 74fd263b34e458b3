"""The experience lens's findings: a handful of sentences with numbers, each linked to rows."""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from scipy import stats

from sawubona.lenses.base import Finding
from sawubona.lenses.experience.journeys import EFFORT_INSTRUMENTS, TREATMENT_INSTRUMENTS
from sawubona.stats import wilson

LENS = "experience"


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def num(x: float) -> str:
    return f"{x:,.0f}"


def _ci(lo: float, hi: float, fmt: Any = pct) -> str:
    return f"95% CI {fmt(lo)}–{fmt(hi)}"


def _plural(kind: str) -> str:
    return f"{kind} journeys"


def outcome_findings(segments: pa.Table, level: float) -> list[Finding]:
    rows = [r for r in segments.to_pylist() if r["dimension"] == "kind" and r["outcome_known"]]
    rows.sort(key=lambda r: -r["n"])
    out = []
    for r in rows[:3]:
        unknown = r["n"] - r["outcome_known"]
        text = (
            f"Outcome: {pct(r['outcome_rate'])} of {_plural(r['kind'])} with a known outcome "
            f"got the customer what they came for ({_ci(r['outcome_low'], r['outcome_high'])}, "
            f"n = {num(r['outcome_known'])}); {num(r['outcome_known'] - r['outcome_achieved'])} "
            f"failed, {num(unknown)} are open or unknown."
        )
        out.append(
            Finding(
                LENS,
                f"outcome_rate:{r['kind']}",
                text,
                value=r["outcome_rate"],
                n=r["outcome_known"],
                low=r["outcome_low"],
                high=r["outcome_high"],
                table="experience_segments",
                where={"dimension": "kind", "value": r["kind"]},
            )
        )
    return out


def lateness_finding(t: ir.Table, level: float) -> list[Finding]:
    """The promise kind most often kept late: among the journeys of the kind where that
    happens most that had a promise kept, the share kept late, and their ratings late vs
    on time. One query over the per-journey table."""
    kept = t.filter(t.promises_kept > 0)
    agg = (
        kept.group_by(["kind", "kept_late_promise_kinds", "survey_instrument"])
        .aggregate(
            n=ibis._.count(),
            rated=ibis._.survey_score.notnull().cast("int32").sum(),
            s=ibis._.survey_score.sum(),
            ss=(ibis._.survey_score * ibis._.survey_score).sum(),
        )
        .to_pyarrow()
        .to_pylist()
    )
    late_n: dict[tuple[str, str], int] = {}
    for r in agg:
        for pk in (r["kept_late_promise_kinds"] or "").split(","):
            if pk:
                late_n[(r["kind"], pk)] = late_n.get((r["kind"], pk), 0) + r["n"]
    if not late_n:
        return []
    jkind, pkind = max(late_n, key=lambda k: (late_n[k], k))
    rows = []
    for r in agg:
        if r["kind"] == jkind:
            is_late = pkind in (r["kept_late_promise_kinds"] or "").split(",")
            rows.append({**r, "_late": is_late, "instr": r["survey_instrument"]})
    n_all = sum(r["n"] for r in rows)
    n_late = sum(r["n"] for r in rows if r["_late"])
    z = float(stats.norm.ppf(0.5 + level / 2))
    lo, hi = wilson(n_late, n_all, z)
    share = n_late / n_all if n_all else float("nan")
    text = (
        f"{jkind.capitalize()} journeys whose {pkind} promise was kept after its due date: "
        f"{pct(share)} of those with a promise kept ({_ci(float(lo), float(hi))}, "
        f"n = {num(n_all)})"
    )
    instr_n: dict[str, int] = {}
    for r in rows:
        if r["instr"] in TREATMENT_INSTRUMENTS or r["instr"] in EFFORT_INSTRUMENTS:
            instr_n[r["instr"]] = instr_n.get(r["instr"], 0) + r["rated"]
    value = share
    if instr_n:
        instr = max(instr_n, key=lambda k: instr_n[k])
        late = [r for r in rows if r["instr"] == instr and r["_late"]]
        ontime = [r for r in rows if r["instr"] == instr and not r["_late"]]
        stats_ = [_mean_sd(group) for group in (late, ontime)]
        (m1, v1, n1), (m0, v0, n0) = stats_
        if n1 > 1 and n0 > 1:
            d = m1 - m0
            se = np.sqrt(v1 / n1 + v0 / n0)
            lo_d, hi_d = d - z * se, d + z * se
            lo_s, hi_s = {**TREATMENT_INSTRUMENTS, **EFFORT_INSTRUMENTS}[instr]
            text += (
                f"; their mean {instr} rating ({lo_s:g}–{hi_s:g}) {m1:.1f} vs {m0:.1f} on time "
                f"(n = {num(n1)} vs {num(n0)}; difference {d:+.2f}, "
                f"95% CI {lo_d:+.2f} to {hi_d:+.2f})"
            )
    return [
        Finding(
            LENS,
            f"kept_late:{pkind}",
            text + ".",
            value=value,
            n=n_all,
            low=float(lo),
            high=float(hi),
            table="experience_journeys",
            where={"kind": jkind, "kept_late_promise_kinds": pkind},
            severity="attention",
        )
    ]


def _mean_sd(rows: list[dict[str, Any]]) -> tuple[float, float, int]:
    n = sum(r["rated"] for r in rows)
    if n == 0:
        return float("nan"), float("nan"), 0
    s = sum(r["s"] or 0.0 for r in rows)
    ss = sum(r["ss"] or 0.0 for r in rows)
    m = s / n
    var = (ss - n * m**2) / (n - 1) if n > 1 else float("nan")
    return m, max(var, 0.0), n


#: the sign of an effect that makes each target worse
WORSE = {
    "outcome_achieved": -1,
    "treatment_survey": -1,
    "effort_survey": -1,
    "effort_contacts": 1,
    "elapsed_vs_norm": 1,
}


def driver_findings(drivers: pa.Table) -> list[Finding]:
    """Per part, the highest-ranked significant driver that makes it worse, in the largest
    model of that part."""
    rows = [
        r
        for r in drivers.to_pylist()
        if r["rank"] is not None
        and r["q_value"] is not None
        and r["q_value"] <= 0.05
        and r["effect"] * WORSE[r["target"]] > 0
    ]
    out = []
    seen: set[str] = set()
    for target in ("treatment_survey", "outcome_achieved", "effort_survey", "effort_contacts"):
        cands = [r for r in rows if r["target"] == target]
        if not cands:
            continue
        biggest = max(r["model_n"] for r in cands)
        r = min((r for r in cands if r["model_n"] == biggest), key=lambda r: r["rank"])
        part = r["part"]
        if part in seen:
            continue
        seen.add(part)
        what = {
            "treatment_survey": "the customers' rating of the treatment (0–1)",
            "outcome_achieved": "the outcome (share achieved)",
            "effort_survey": "the customers' rating of the ease (0–1)",
            "effort_contacts": "the contacts customers had to make",
        }[target]
        if target == "outcome_achieved":
            fmt = pct
            effect = (
                f"{100 * r['effect']:+.1f} percentage points (95% CI {100 * r['low']:+.1f} to "
                f"{100 * r['high']:+.1f})"
            )
        else:
            fmt = "{:.2f}".format
            effect = f"{r['effect']:+.2f} (95% CI {r['low']:+.2f} to {r['high']:+.2f})"
        text = (
            f"Strongest driver of {what} on {_plural(r['kind'])}: {r['label']} — "
            f"{effect} with the other features held constant; raw {fmt(r['mean_with'])} with "
            f"it vs {fmt(r['mean_without'])} without "
            f"(n = {num(r['n_with'])} vs {num(r['n_without'])})."
        )
        out.append(
            Finding(
                LENS,
                f"driver:{target}:{r['kind']}",
                text,
                value=r["effect"],
                n=r["n_with"] + r["n_without"],
                low=r["low"],
                high=r["high"],
                table="experience_drivers",
                where={"target": target, "kind": r["kind"], "feature": r["feature"]},
                severity="attention",
            )
        )
    return out


def customer_finding(customers: pa.Table, level: float) -> list[Finding]:
    last = customers.column("last_outcome_achieved").to_pylist()
    known = np.array([v is not None for v in last], bool)
    failed = np.array([v is False for v in last], bool)
    n, k = int(known.sum()), int(failed.sum())
    if n == 0:
        return []
    z = float(stats.norm.ppf(0.5 + level / 2))
    lo, hi = wilson(k, n, z)
    text = (
        f"{num(k)} customers did not get what they came for in their latest journey: "
        f"{pct(k / n)} of those with a known outcome ({_ci(float(lo), float(hi))}, "
        f"n = {num(n)}) — great treatment does not make up for a missing outcome."
    )
    return [
        Finding(
            LENS,
            "customers_last_failed",
            text,
            value=k / n,
            n=n,
            low=float(lo),
            high=float(hi),
            table="experience_customers",
            where={"last_outcome_achieved": False},
            severity="action" if k else "info",
        )
    ]
