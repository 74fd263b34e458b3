"""Who gets surveyed and who answers: coverage, selection-corrected scores, concessions.

* **Coverage by outcome**: the share of closed journeys with a routine survey
  invitation, by outcome and by promise status, with Wilson intervals and the
  pooled two-proportion z test against achieved journeys / kept promises.
* **Selection-corrected score (IPW)**: the routine answers of journey-linked
  surveys re-weighted to the population of closed journeys. The propensity of a
  journey to yield a scored answer is estimated within weighting classes
  (journey kind × outcome × promise status) as answers/journeys, and each answer
  is weighted by its inverse — the Hájek form of the Horvitz–Thompson estimator
  (Horvitz & Thompson 1952, JASA 47; Little 1986, "Survey nonresponse adjustments
  for estimates of means", Int Stat Rev 54), which equals post-stratification on
  the classes (Holt & Smith 1979, JRSS A 142). A class with fewer than
  ``min_cell`` answers borrows the estimate of its coarser class (kind × outcome,
  then outcome, then all). Variance: Σ (N_c/N)² · Var(cell estimate) (classes
  independent; the propensities treated as known).
* **Concessions**: conceded share of surveyed against not-surveyed journeys (the
  window after the journey's end), NPS with and without conceded answers, the
  lead time from concession to invitation and the cost per extra promoter:
  money conceded on answered surveys ÷ (conceded answers × (promoter share when
  conceded − promoter share otherwise)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from sawubona.stats import nps_interval, two_proportion_z, wilson

Z95 = float(sps.norm.ppf(0.975))


def coverage(cube: pd.DataFrame, routine_answers: pd.DataFrame) -> pd.DataFrame:
    """``voice_coverage``: invitation share of closed journeys and answer share of
    invitations, by outcome and by promise status."""
    rows: list[dict[str, Any]] = []
    for dimension, ref in (("outcome", "achieved"), ("promise", "kept")):
        col = cube[dimension].astype(object).where(cube[dimension].notna(), "(none)")
        g = cube.assign(group=col).groupby("group")
        journeys = g["journeys"].sum()
        invited = cube.assign(group=col)[cube["invited"]].groupby("group")["journeys"].sum()
        ra = routine_answers.copy()
        ra["group"] = ra[dimension].astype(object).where(ra[dimension].notna(), "(none)")
        inv = ra.groupby("group")["rows"].sum()
        ans = ra[ra["status"] != "no_answer"].groupby("group")["rows"].sum()
        ref_n = float(journeys.get(ref, 0))
        ref_k = float(invited.get(ref, 0))
        for group in journeys.index:
            n = float(journeys[group])
            k = float(invited.get(group, 0))
            low, high = wilson(k, n)
            ni, na = float(inv.get(group, 0)), float(ans.get(group, 0))
            rlow, rhigh = wilson(na, ni)
            diff_p = np.nan
            if group != ref and ref_n > 0:
                diff_p = two_proportion_z(k, n, ref_k, ref_n)[1]
            rows.append(
                {
                    "dimension": dimension,
                    "group": str(group),
                    "closed_journeys": n,
                    "invited_journeys": k,
                    "coverage": 100 * k / n if n else np.nan,
                    "coverage_low": 100 * float(low),
                    "coverage_high": 100 * float(high),
                    "compared_with": ref if group != ref else None,
                    "coverage_difference": (100 * (k / n - ref_k / ref_n))
                    if group != ref and ref_n and n
                    else np.nan,
                    "coverage_difference_p": diff_p,
                    "invitations": ni,
                    "answered": na,
                    "response_rate": 100 * na / ni if ni else np.nan,
                    "response_low": 100 * float(rlow),
                    "response_high": 100 * float(rhigh),
                }
            )
    return pd.DataFrame(rows)


def _cell_estimates(answers: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    w = answers["rows"].astype(float)
    y = answers[value].astype(float)
    parts = pd.DataFrame({"n": w, "sum_y": w * y, "sum_y2": w * y * y})
    out = parts.groupby([answers[k] for k in keys], dropna=False).sum()
    out["mean"] = out["sum_y"] / out["n"]
    out["var_mean"] = (out["sum_y2"] / out["n"] - out["mean"] ** 2) / out["n"]
    return out


def ipw(
    cube: pd.DataFrame,
    answers: pd.DataFrame,
    instrument: str,
    min_cell: int = 5,
) -> dict[str, Any] | None:
    """Raw and selection-corrected score of routine, journey-linked answers of ``instrument``
    (NPS: −100..100; CSAT: top-2-box %)."""
    a = answers[
        answers["routine"] & (answers["instrument"] == instrument) & answers["kind"].notna()
    ].copy()
    if a.empty or cube.empty:
        return None
    for col in ("outcome", "promise"):
        a[col] = a[col].astype(object).where(a[col].notna(), "(none)")
    if instrument == "nps":
        a["y"] = np.where(a["score"] >= 9, 100.0, np.where(a["score"] <= 6, -100.0, 0.0))
    else:
        a["y"] = np.where(a["score"] >= 4, 100.0, 0.0)
    pop = cube.copy()
    for col in ("outcome", "promise"):
        pop[col] = pop[col].astype(object).where(pop[col].notna(), "(none)")
    pop = pop[pop["kind"].isin(a["kind"].unique())]
    fine = ["kind", "outcome", "promise"]
    levels = [fine, ["kind", "outcome"], ["outcome"], []]
    est = {}
    for keys in levels:
        if keys:
            est[tuple(keys)] = _cell_estimates(a, keys, "y")
        else:
            n = float(a["rows"].sum())
            m = float((a["y"] * a["rows"]).sum() / n)
            v = float(((a["y"] - m) ** 2 * a["rows"]).sum() / n) / n
            est[()] = pd.DataFrame({"n": [n], "mean": [m], "var_mean": [v]})
    cells = pop.groupby(fine, dropna=False)["journeys"].sum().reset_index()
    means, variances = [], []
    for _, cell in cells.iterrows():
        for keys in levels:
            table = est[tuple(keys)]
            if keys:
                idx = tuple(cell[k] for k in keys) if len(keys) > 1 else cell[keys[0]]
                if idx not in table.index:
                    continue
                row = table.loc[idx]
            else:
                row = table.iloc[0]
            if float(row["n"]) >= min_cell or not keys:
                means.append(float(row["mean"]))
                variances.append(float(row["var_mean"]))
                break
    big_n = cells["journeys"].to_numpy(dtype=float)
    share = big_n / big_n.sum()
    value = float(np.sum(share * np.array(means)))
    se = float(np.sqrt(np.sum(share**2 * np.array(variances))))
    n = float(a["rows"].sum())
    raw = float((a["y"] * a["rows"]).sum() / n)
    if instrument == "nps":
        p = float(a.loc[a["y"] > 0, "rows"].sum())
        d = float(a.loc[a["y"] < 0, "rows"].sum())
        low, high = nps_interval(p, d, n, adjusted=n < 100)
    else:
        k = float(a.loc[a["y"] > 0, "rows"].sum())
        low, high = (100 * x for x in wilson(k, n))
    return {
        "instrument": instrument,
        "metric": "nps" if instrument == "nps" else "csat_top2",
        "answers": n,
        "closed_journeys": float(big_n.sum()),
        "weighting_classes": len(cells),
        "raw": raw,
        "raw_low": float(low),
        "raw_high": float(high),
        "corrected": value,
        "corrected_low": value - Z95 * se,
        "corrected_high": value + Z95 * se,
        "correction": value - raw,
    }


def concessions(
    cube: pd.DataFrame, answers: pd.DataFrame, leads: tuple[float, float, float, float]
) -> pd.DataFrame:
    """``voice_concessions``: one row per measure (value, low, high, n)."""
    rows: list[dict[str, Any]] = []

    def add(measure: str, value: float, low: float, high: float, n: float, note: str) -> None:
        rows.append(
            {"measure": measure, "value": value, "low": low, "high": high, "n": n, "note": note}
        )

    if not cube.empty:
        for label, mask in (("surveyed", cube["invited"]), ("not_surveyed", ~cube["invited"])):
            n = float(cube.loc[mask, "journeys"].sum())
            k = float(cube.loc[mask & cube["conceded"], "journeys"].sum())
            lo, hi = wilson(k, n)
            add(
                f"conceded_share_{label}",
                100 * k / n if n else np.nan,
                100 * float(lo),
                100 * float(hi),
                n,
                f"% of {label.replace('_', ' ')} closed journeys with a concession between "
                "their start and the window after their end",
            )
    nps = answers[(answers["instrument"] == "nps") & answers["routine"]]
    if not nps.empty:
        masks: tuple[tuple[str, npt.NDArray[np.bool_]], ...] = (
            ("nps_all", np.ones(len(nps), bool)),
            ("nps_without_conceded", ~nps["conceded"].to_numpy(bool)),
            ("nps_conceded_only", nps["conceded"].to_numpy(bool)),
        )
        for label, keep in masks:
            v = nps[keep]
            n = float(v["rows"].sum())
            p = float(v.loc[v.score >= 9, "rows"].sum())
            d = float(v.loc[v.score <= 6, "rows"].sum())
            lo, hi = nps_interval(p, d, n, adjusted=n < 100)
            add(
                label,
                100 * (p - d) / n if n else np.nan,
                float(lo),
                float(hi),
                n,
                "NPS of routine answers",
            )
        c = nps[nps["conceded"]]
        o = nps[~nps["conceded"]]
        nc, no = float(c["rows"].sum()), float(o["rows"].sum())
        if nc > 0 and no > 0:
            pc_ = float(c.loc[c.score >= 9, "rows"].sum()) / nc
            po = float(o.loc[o.score >= 9, "rows"].sum()) / no
            extra = nc * (pc_ - po)
            spent = float(c["amount"].sum())
            add(
                "cost_per_extra_promoter",
                spent / extra if extra > 0 else np.nan,
                np.nan,
                np.nan,
                nc,
                f"{spent:.2f} conceded on {nc:.0f} answered surveys for {extra:.1f} "
                "promoters more than the unconceded promoter share would give",
            )
    n_leads, q25, q50, q75 = leads
    if n_leads > 0:
        add(
            "median_hours_concession_to_invitation",
            q50,
            q25,
            q75,
            n_leads,
            "low/high are the quartiles",
        )
    return pd.DataFrame(rows)
