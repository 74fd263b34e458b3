"""The voice lens's findings: a handful of sentences with numbers, n and intervals.

Each finding names the result table and the filters that select the rows behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from sawubona.lenses.base import Finding

LENS = "voice"
LABEL = {"nps": "NPS", "csat_top2": "CSAT top-2-box", "ces_mean": "CES", "ces_agree": "CES agree"}


def _fmt(metric: str, v: float) -> str:
    if metric == "nps":
        return f"{v:+.1f}"
    if metric.endswith("_mean"):
        return f"{v:.2f}"
    return f"{v:.1f}%"


def _interval(metric: str, low: float, high: float) -> str:
    return f"[{_fmt(metric, low)}, {_fmt(metric, high)}]"


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in df.to_dict("records")]


def findings(tables: Mapping[str, pa.Table], fdr: float) -> list[Finding]:
    out: list[Finding] = []
    sc = tables["voice_scores"].to_pandas()
    if not sc.empty:
        out += _overall(sc)
        out += _stages(sc)
        out += _comparisons(sc)
    if "voice_coverage" in tables:
        out += _coverage(tables["voice_coverage"].to_pandas())
    if "voice_selection" in tables:
        out += _selection(tables["voice_selection"].to_pandas())
    out += _queue(tables["voice_review_queue"].to_pandas(), fdr)
    out += _concessions(tables["voice_concessions"].to_pandas())
    if "voice_validity" in tables:
        out += _validity(tables["voice_validity"].to_pandas())
    return out


def _overall(sc: pd.DataFrame) -> list[Finding]:
    out = []
    for r in _records(sc[sc["dimension"] == "overall"]):
        if r["metric"] == "ces_agree":
            continue
        left_out = []
        if r["n_no_score"] > 0:
            left_out.append(f"{r['n_no_score']:,.0f} answered without a score")
        if r["n_no_answer"] > 0:
            left_out.append(f"{r['n_no_answer']:,.0f} invitations went unanswered")
        extra = f"; {' and '.join(left_out)} — not counted in the score" if left_out else ""
        out.append(
            Finding(
                LENS,
                f"overall_{r['metric']}",
                f"{LABEL.get(r['metric'], r['metric'])} is {_fmt(r['metric'], r['value'])} "
                f"{_interval(r['metric'], r['low'], r['high'])} (95%) from {r['n']:,.0f} "
                f"scored answers{extra}.",
                value=float(r["value"]),
                n=int(r["n"]),
                low=float(r["low"]),
                high=float(r["high"]),
                table="voice_scores",
                where={"dimension": "overall", "metric": r["metric"]},
            )
        )
    return out


def _stages(sc: pd.DataFrame) -> list[Finding]:
    out = []
    kinds = sc[
        (sc["dimension"] == "journey_kind")
        & (sc["metric"] == "nps")
        & (sc["n"] > 0)
        & (sc["group"] != "(none)")
    ]
    if len(kinds) >= 2:
        worst = _records(kinds.sort_values("value").head(1))[0]
        out.append(
            Finding(
                LENS,
                "lowest_journey_kind_nps",
                f"Journeys of kind {worst['group']} have the lowest NPS: "
                f"{_fmt('nps', worst['value'])} {_interval('nps', worst['low'], worst['high'])} "
                f"(n = {worst['n']:.0f}, {worst['interval'].replace('_', ' ')} interval).",
                value=float(worst["value"]),
                n=int(worst["n"]),
                low=float(worst["low"]),
                high=float(worst["high"]),
                table="voice_scores",
                where={"dimension": "journey_kind", "group": worst["group"], "metric": "nps"},
                severity="attention",
            )
        )
    return out


def _comparisons(sc: pd.DataFrame) -> list[Finding]:
    out = []
    pairs = sc[
        sc["dimension"].isin(["outcome", "promise"])
        & sc["group"].isin(["failed", "broken"])
        & sc["difference_p"].notna()
    ]
    for r in _records(pairs):
        what = "failed journeys" if r["group"] == "failed" else "journeys with a broken promise"
        ref = "achieved ones" if r["group"] == "failed" else "kept promises"
        unit = " points" if r["metric"] == "nps" or not r["metric"].endswith("_mean") else ""
        out.append(
            Finding(
                LENS,
                f"{r['dimension']}_{r['metric']}_gap",
                f"{LABEL.get(r['metric'], r['metric'])} after {what} is "
                f"{_fmt(r['metric'], r['value'])} (n = {r['n']:.0f}), "
                f"{r['difference']:+.1f}{unit} "
                f"[{r['difference_low']:+.1f}, {r['difference_high']:+.1f}] against {ref} "
                f"(p = {r['difference_p']:.2g}).",
                value=float(r["difference"]),
                n=int(r["n"]),
                low=float(r["difference_low"]),
                high=float(r["difference_high"]),
                table="voice_scores",
                where={"dimension": r["dimension"], "group": r["group"], "metric": r["metric"]},
                severity="attention" if r["difference_p"] < 0.05 else "info",
            )
        )
    return out


def _coverage(cov: pd.DataFrame) -> list[Finding]:
    row = cov[(cov["dimension"] == "outcome") & (cov["group"] == "failed")]
    ref = cov[(cov["dimension"] == "outcome") & (cov["group"] == "achieved")]
    if row.empty or ref.empty:
        return []
    r, a = _records(row)[0], _records(ref)[0]
    return [
        Finding(
            LENS,
            "coverage_failed",
            f"{r['coverage']:.1f}% [{r['coverage_low']:.1f}, {r['coverage_high']:.1f}] of "
            f"{r['closed_journeys']:,.0f} failed journeys were invited to a routine survey, "
            f"against {a['coverage']:.1f}% of achieved ones "
            f"(p = {r['coverage_difference_p']:.2g}).",
            value=float(r["coverage"]),
            n=int(r["closed_journeys"]),
            low=float(r["coverage_low"]),
            high=float(r["coverage_high"]),
            table="voice_coverage",
            where={"dimension": "outcome", "group": "failed"},
            severity="attention" if r["coverage_difference"] < 0 else "info",
        )
    ]


def _selection(sel: pd.DataFrame) -> list[Finding]:
    out = []
    for r in _records(sel):
        out.append(
            Finding(
                LENS,
                f"selection_corrected_{r['metric']}",
                f"Re-weighted to all {r['closed_journeys']:,.0f} closed journeys, routine "
                f"{LABEL.get(r['metric'], r['metric'])} is {_fmt(r['metric'], r['corrected'])} "
                f"{_interval(r['metric'], r['corrected_low'], r['corrected_high'])} against "
                f"{_fmt(r['metric'], r['raw'])} as answered (n = {r['answers']:,.0f}).",
                value=float(r["corrected"]),
                n=int(r["answers"]),
                low=float(r["corrected_low"]),
                high=float(r["corrected_high"]),
                table="voice_selection",
                where={"metric": r["metric"]},
            )
        )
    return out


def _queue(queue: pd.DataFrame, fdr: float) -> list[Finding]:
    agents = queue[queue["unit_kind"] == "agent"] if not queue.empty else queue
    teams = queue[queue["unit_kind"] == "team"] if not queue.empty else queue
    if queue.empty:
        text = (
            f"No agent or team shows a survey-honesty signal at a false-discovery rate of "
            f"{100 * fdr:.0f}%."
        )
    else:
        signals = sorted({s for row in queue["signals"] for s in row.split(", ")})
        text = (
            f"{len(agents)} agent{'s' if len(agents) != 1 else ''} and {len(teams)} "
            f"team{'s' if len(teams) != 1 else ''} are in the review queue at a false-discovery "
            f"rate of {100 * fdr:.0f}% ({', '.join(signals)}): prompts to look at their "
            "surveys, not verdicts."
        )
    return [
        Finding(
            LENS,
            "review_queue",
            text,
            value=float(len(queue)),
            n=len(queue),
            table="voice_review_queue",
            severity="attention" if len(queue) else "info",
        )
    ]


def _concessions(con: pd.DataFrame) -> list[Finding]:
    if con.empty:
        return []
    by = {str(r["measure"]): r for r in _records(con)}
    if "nps_conceded_only" not in by or not by["nps_conceded_only"]["n"]:
        return []
    c, w = by["nps_conceded_only"], by["nps_without_conceded"]
    cost = float(by.get("cost_per_extra_promoter", {"value": np.nan})["value"])
    cost_text = f"; about {cost:.2f} conceded per extra promoter" if np.isfinite(cost) else ""
    return [
        Finding(
            LENS,
            "concessions",
            f"{c['n']:.0f} routine NPS answers followed a concession: NPS "
            f"{_fmt('nps', c['value'])} {_interval('nps', c['low'], c['high'])}, against "
            f"{_fmt('nps', w['value'])} {_interval('nps', w['low'], w['high'])} without"
            f"{cost_text}.",
            value=float(c["value"]),
            n=int(c["n"]),
            low=float(c["low"]),
            high=float(c["high"]),
            table="voice_concessions",
            severity="attention",
        )
    ]


def _validity(val: pd.DataFrame) -> list[Finding]:
    if val.empty:
        return []
    out = []
    for r in _records(val[val["scope_kind"] == "all"]):
        verdict = "predict" if r["predicts"] else "do not clearly predict"
        out.append(
            Finding(
                LENS,
                f"say_do_{r['instrument']}",
                f"{str(r['instrument']).upper()} scores {verdict} whether customers stay: AUC "
                f"{r['auc']:.2f} [{r['auc_low']:.2f}, {r['auc_high']:.2f}] over "
                f"{r['answers']:,.0f} answers, {r['lost']:,.0f} of whom left.",
                value=float(r["auc"]),
                n=int(r["answers"]),
                low=float(r["auc_low"]),
                high=float(r["auc_high"]),
                table="voice_validity",
                where={"scope_kind": "all", "instrument": r["instrument"]},
            )
        )
    q = val[val["scope_kind"] == "agents_in_review_queue"]
    for r in _records(q[q["scope"] == "yes"]):
        out.append(
            Finding(
                LENS,
                f"say_do_review_queue_{r['instrument']}",
                f"{str(r['instrument']).upper()} scores of agents in the review queue predict "
                f"staying with AUC {r['auc']:.2f} "
                f"[{r['auc_low']:.2f}, {r['auc_high']:.2f}] (n = {r['answers']:,.0f}).",
                value=float(r["auc"]),
                n=int(r["answers"]),
                low=float(r["auc_low"]),
                high=float(r["auc_high"]),
                table="voice_validity",
                where={"scope_kind": "agents_in_review_queue", "instrument": r["instrument"]},
            )
        )
    return out
