"""Scores with their uncertainty: NPS, CSAT top-2-box, CES, by group, with changes.

Definitions (one denominator everywhere: *scored answers*, see :mod:`.prep`):

* **NPS** (Reichheld 2003, "The One Number You Need to Grow", HBR 81(12)) on the
  −100..100 scale: 100·(promoters − detractors)/n, promoters 9–10, detractors 0–6.
  Variance of the score as a difference of two multinomial shares:
  ``[pP + pD − (pP − pD)²]/n``. Interval: Wald for n ≥ ``adjusted_wald_below``,
  else Rocks's (2016) adjusted Wald (n + 3, ¾ added to promoters and detractors):
  :func:`sawubona.stats.nps_interval`.
* **CSAT top-2-box**: share of 4–5 on the 1–5 scale, Wilson (1927) interval.
* **CES** (Dixon, Freeman & Toman 2010, "Stop Trying to Delight Your Customers",
  HBR 88(7); CES 2.0 on a 1–7 agreement scale): the mean with a Student-t
  interval, and the share agreeing (5–7) with a Wilson interval.
* Custom instruments: the mean with a Student-t interval.

Changes: each month against the previous month, failed against achieved outcomes,
broken against kept promises, routine triggers against the audit stream — a
two-sample z test for NPS (independent samples: the variances add), the pooled
two-proportion z test for rates (:func:`sawubona.stats.two_proportion_z`) and
Welch's t test for means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from sawubona.schema import SURVEY_SCALES
from sawubona.stats import nps_interval, nps_se, two_proportion_z, wilson

Z95 = float(sps.norm.ppf(0.975))

#: (dimension name, column of the survey frame); ``overall`` is one group.
DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("overall", ""),
    ("journey_kind", "kind"),
    ("outcome", "outcome"),
    ("promise", "promise"),
    ("team", "team"),
    ("channel", "channel"),
    ("trigger", "trigger"),
    ("month", "month"),
)

#: dimension → (group compared, reference group); months compare with the month before.
COMPARISONS: dict[str, list[tuple[str, str]]] = {
    "outcome": [("failed", "achieved"), ("open", "achieved")],
    "promise": [("broken", "kept"), ("open", "kept")],
    "trigger": [("system", "audit"), ("agent", "audit"), ("unknown", "audit")],
}

NONE_LABEL = "(none)"


def scale(instrument: str, observed: npt.NDArray[np.int64]) -> tuple[int, int]:
    """Inclusive score range of an instrument (custom ones: the range observed)."""
    if instrument in SURVEY_SCALES:
        return SURVEY_SCALES[instrument]
    if len(observed) == 0:
        return (0, 0)
    return int(observed.min()), int(observed.max())


@dataclass
class Histograms:
    """Scored answers per group as a matrix: ``counts[g, s]`` = answers with score lo + s."""

    instrument: str
    groups: list[str]
    lo: int
    counts: npt.NDArray[np.float64]

    @property
    def n(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.counts.sum(axis=1), dtype=float)

    @property
    def scores(self) -> npt.NDArray[np.float64]:
        return np.arange(self.lo, self.lo + self.counts.shape[1], dtype=float)

    def at_least(self, value: int) -> npt.NDArray[np.float64]:
        return np.asarray(self.counts[:, self.scores >= value].sum(axis=1), dtype=float)

    def at_most(self, value: int) -> npt.NDArray[np.float64]:
        return np.asarray(self.counts[:, self.scores <= value].sum(axis=1), dtype=float)

    def mean_var(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Mean and sample variance (ddof 1) of the scores of each group."""
        n = self.n
        x = self.scores
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (self.counts * x).sum(axis=1) / n
            ss = (self.counts * (x[None, :] - mean[:, None]) ** 2).sum(axis=1)
            var = np.where(n > 1, ss / (n - 1), np.nan)
        return mean, var


def histograms(scored: pd.DataFrame, instrument: str, key: str = "group") -> Histograms:
    """Build :class:`Histograms` from rows ``(key, score, rows)`` of one instrument."""
    obs = scored["score"].to_numpy(dtype=np.int64)
    lo, hi = scale(instrument, obs)
    ok = (obs >= lo) & (obs <= hi)
    sc = scored[ok]
    groups = sorted(sc[key].astype(str).unique().tolist())
    index = {g: i for i, g in enumerate(groups)}
    m = np.zeros((len(groups), hi - lo + 1))
    gi = np.array([index[str(g)] for g in sc[key]], dtype=np.int64)
    si = sc["score"].to_numpy(dtype=np.int64) - lo
    np.add.at(m, (gi, si), sc["rows"].to_numpy(dtype=float))
    return Histograms(instrument, groups, lo, m)


def metrics(h: Histograms, adjusted_below: int) -> pd.DataFrame:
    """One row per (group, metric): value, interval, se and the counts behind them."""
    n = h.n
    out: list[pd.DataFrame] = []
    if h.instrument == "nps":
        p, d = h.at_least(9), h.at_most(6)
        adj_low, adj_high = nps_interval(p, d, n, adjusted=True)
        w_low, w_high = nps_interval(p, d, n, adjusted=False)
        small = n < adjusted_below
        out.append(
            pd.DataFrame(
                {
                    "group": h.groups,
                    "metric": "nps",
                    "n": n,
                    "value": 100 * (p - d) / np.where(n > 0, n, np.nan),
                    "low": np.where(small, adj_low, w_low),
                    "high": np.where(small, adj_high, w_high),
                    "se": nps_se(p, d, n),
                    "interval": np.where(small, "adjusted_wald", "wald"),
                    "promoters": p,
                    "passives": n - p - d,
                    "detractors": d,
                    "successes": p,
                }
            )
        )
    elif h.instrument in ("csat", "ces"):
        top = h.at_least(4 if h.instrument == "csat" else 5)
        out.append(_rate_rows(h, "csat_top2" if h.instrument == "csat" else "ces_agree", top))
    if h.instrument != "nps" and h.instrument != "csat":
        out.append(_mean_rows(h, f"{h.instrument}_mean"))
    return pd.concat(out, ignore_index=True)


def _rate_rows(h: Histograms, metric: str, k: npt.NDArray[np.float64]) -> pd.DataFrame:
    n = h.n
    low, high = wilson(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        se = np.sqrt(p * (1 - p) / n)
    return pd.DataFrame(
        {
            "group": h.groups,
            "metric": metric,
            "n": n,
            "value": 100 * p,
            "low": 100 * low,
            "high": 100 * high,
            "se": 100 * se,
            "interval": "wilson",
            "successes": k,
        }
    )


def _mean_rows(h: Histograms, metric: str) -> pd.DataFrame:
    n = h.n
    mean, var = h.mean_var()
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(var / n)
        t = np.where(n > 1, sps.t.ppf(0.975, np.maximum(n - 1, 1)), np.nan)
    return pd.DataFrame(
        {
            "group": h.groups,
            "metric": metric,
            "n": n,
            "value": mean,
            "low": mean - t * se,
            "high": mean + t * se,
            "se": se,
            "interval": "student_t",
            "variance": var,
        }
    )


def compare(a: pd.Series, b: pd.Series) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of metric rows ``a`` − ``b`` (independent samples)."""
    metric = a["metric"]
    diff = float(a["value"] - b["value"])
    se = float(np.hypot(a["se"], b["se"]))
    if not np.isfinite(se) or min(a["n"], b["n"]) < 2:
        return diff, float("nan"), float("nan"), float("nan")
    if metric in ("csat_top2", "ces_agree"):
        _, p = two_proportion_z(a["successes"], a["n"], b["successes"], b["n"])
        return diff, diff - Z95 * se, diff + Z95 * se, p
    if metric.endswith("_mean"):
        va, vb, na, nb = a["variance"], b["variance"], a["n"], b["n"]
        num = (va / na + vb / nb) ** 2
        den = (va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)
        df = num / den if den > 0 else max(na + nb - 2, 1)
        if se == 0:
            return diff, diff, diff, 1.0 if diff == 0 else 0.0
        tcrit = float(sps.t.ppf(0.975, df))
        p = float(2 * sps.t.sf(abs(diff) / se, df))
        return diff, diff - tcrit * se, diff + tcrit * se, p
    if se == 0:
        return diff, diff, diff, 1.0 if diff == 0 else 0.0
    p = float(2 * sps.norm.sf(abs(diff) / se))
    return diff, diff - Z95 * se, diff + Z95 * se, p


def add_comparisons(rows: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """Fill ``compared_with, difference, difference_low, difference_high, difference_p``."""
    n = len(rows)
    diff, low, high, pval = (np.full(n, np.nan) for _ in range(4))
    ref_of: list[str | None] = [None] * n
    records = rows.to_dict("records")
    position: dict[tuple[str, str, str], int] = {
        (r["instrument"], r["metric"], r["group"]): i for i, r in enumerate(records)
    }
    for instrument, metric in dict.fromkeys(zip(rows["instrument"], rows["metric"], strict=True)):
        groups = [g for (i, m, g) in position if i == instrument and m == metric]
        if dimension == "month":
            months = sorted(g for g in groups if g != NONE_LABEL)
            pairs = list(zip(months[1:], months[:-1], strict=True))
        else:
            pairs = COMPARISONS.get(dimension, [])
        for g, ref in pairs:
            a_i = position.get((instrument, metric, g))
            b_i = position.get((instrument, metric, ref))
            if a_i is None or b_i is None:
                continue
            d, lo_, hi_, p = compare(pd.Series(records[a_i]), pd.Series(records[b_i]))
            diff[a_i], low[a_i], high[a_i], pval[a_i] = d, lo_, hi_, p
            ref_of[a_i] = ref
    return rows.assign(
        compared_with=pd.Series(ref_of, index=rows.index, dtype=object),
        difference=diff,
        difference_low=low,
        difference_high=high,
        difference_p=pval,
    )


def score_table(counted: pd.DataFrame, dimension: str, adjusted_below: int) -> pd.DataFrame:
    """Rows of ``voice_scores`` for one dimension from counts ``(instrument, group, status,
    score, invited_known, rows)``."""
    out: list[pd.DataFrame] = []
    group_all = counted["group"].astype(object).where(counted["group"].notna(), NONE_LABEL)
    for instrument in sorted(counted["instrument"].astype(str).unique()):
        mask = (counted["instrument"].astype(str) == instrument).to_numpy()
        codes, groups = pd.factorize(group_all[mask].astype(str), sort=True)
        g_n = len(groups)
        rows = counted["rows"].to_numpy(float)[mask]
        status = counted["status"].astype(str).to_numpy()[mask]
        known = counted["invited_known"].to_numpy(bool)[mask]
        scored, no_score = status == "scored", status == "no_score"
        answered = scored | no_score

        def total(weight: np.ndarray, codes: np.ndarray = codes, g_n: int = g_n) -> np.ndarray:
            return np.bincount(codes, weights=weight, minlength=g_n)

        score = counted["score"].to_numpy(dtype=float, na_value=np.nan)[mask]
        obs = score[scored & np.isfinite(score)].astype(np.int64)
        lo, hi = scale(instrument, obs)
        use = scored & np.isfinite(score) & (score >= lo) & (score <= hi)
        m = np.zeros((g_n, hi - lo + 1))
        np.add.at(m, (codes[use], score[use].astype(np.int64) - lo), rows[use])
        met = metrics(Histograms(instrument, [str(g) for g in groups], lo, m), adjusted_below)
        pos = {str(g): i for i, g in enumerate(groups)}
        idx = np.array([pos[g] for g in met["group"]], dtype=np.int64)
        invited_known = total(rows * known)[idx]
        answered_known = total(rows * (known & answered))[idx]
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(invited_known > 0, 100 * answered_known / invited_known, np.nan)
        out.append(
            met.assign(
                instrument=instrument,
                n_invited=total(rows)[idx],
                n_answered=total(rows * answered)[idx],
                n_no_score=total(rows * no_score)[idx],
                n_no_answer=total(rows * (status == "no_answer"))[idx],
                response_rate=rate,
            )
        )
    if not out:
        return pd.DataFrame()
    table = pd.concat(out, ignore_index=True)
    table.insert(0, "dimension", dimension)
    return add_comparisons(table, dimension)
