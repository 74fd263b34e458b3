"""Distribution forensics: does a unit's score distribution look bent toward the top?

Each unit's observed score counts Oₛ (over the instrument's scale) are compared with
a **case-mix-adjusted expectation** Eₛ = Σ_strata n_unit,stratum · q_peers,stratum(s):
q_peers is the score distribution of every *other* unit's answers in the same
stratum (journey kind × channel — the work handed to the unit, not its results),
leave-one-out so a unit is not compared with itself.

Customers answer alike within a unit (regulars, a site, a shift), so counts are
**over-dispersed** against the multinomial. With Xᵤ² the Pearson statistic of unit
u over four bins (bottom band, middle band, second-highest score, top score), the
Dirichlet-multinomial gives E[Xᵤ²] ≈ (B − 1)(1 + (nᵤ − 1)ρ) (Mosimann 1962; Williams
1982, "Extra-binomial variation in logistic linear models", Applied Statistics 31).
ρ is estimated robustly — the value that brings the *median* of Xᵤ²/(1 + (nᵤ − 1)ρ)
to the median of χ²(B − 1), so that up to half the units may be gaming without
masking themselves — and floored at 0. Every test then allows for it:

* **G test** (Sokal & Rohlf, *Biometry*, §17): G = 2 Σ O ln(O/E) over the four
  bins, scaled by φᵤ = 1 + (nᵤ − 1)ρ (quasi-likelihood; McCullagh & Nelder 1989,
  §4.5), χ²(B − 1); the two-sided p is halved when the observed mean is above the
  expected mean and reported as 1 − p/2 otherwise (the queue looks for inflation).
* **Excess top scores** (e.g. 10s): O_top against a beta-binomial with mean
  E_top/n and intra-unit correlation ρ (binomial when ρ = 0), one-sided.
* **Top : second ratio** (10 : 9) against peers: among the unit's answers at the
  two highest points, O_top against a beta-binomial with mean E_top/(E_top + E_2nd).
* **Heaping index**: (O_mode/n)/(E_mode/n) at the unit's modal score; p from the
  beta-binomial tail of O_mode, Bonferroni-corrected for choosing the mode among the
  K points of the scale (Heitjan & Rubin 1990, JASA 85, on heaping).
* **Low entropy**: Shannon entropy (bits) of the observed counts against draws from
  the Dirichlet-multinomial (mean E/n, precision 1/ρ − 1; multinomial when ρ = 0),
  seeded; p = (1 + #{H_sim ≤ H_obs})/(1 + draws) — 50 draws for every unit, then
  ``simulations`` draws for units whose screening p is below 0.1 (a unit whose true
  p is 0.02 passes the screen with probability 0.997).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize
from scipy import stats as sps

from sawubona.lenses.voice.scores import scale
from sawubona.lenses.voice.units import BOTTOM_MAX, UNIT_COLUMNS, pct, signal_frame, teams_of

Array = npt.NDArray[np.float64]


@dataclass
class Forensics:
    """Per unit (rows) results of the five tests; ``p[name]`` and ``stat[name]`` are arrays."""

    n: Array
    observed: Array  # (units, K)
    expected: Array  # (units, K)
    rho: float
    p: dict[str, Array]
    stat: dict[str, Array]
    obs: dict[str, Array]
    exp: dict[str, Array]
    mode: npt.NDArray[np.int64]


def expected_counts(m: Array) -> Array:
    """Leave-one-out expected counts (units, K) from ``m[u, s, k]`` = unit u's answers with
    score k in stratum s; a stratum no peer answered in uses the peers' overall mix."""
    everyone = m.sum(axis=0)
    peers = everyone[None, :, :] - m
    peer_n = peers.sum(axis=2, keepdims=True)
    overall = peers.sum(axis=1)
    overall_n = overall.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        fallback = np.where(overall_n > 0, overall / np.where(overall_n > 0, overall_n, 1), 0)
        q = np.where(peer_n > 0, peers / np.where(peer_n > 0, peer_n, 1), fallback[:, None, :])
    return np.asarray(np.einsum("us,usk->uk", m.sum(axis=2), q), dtype=float)


def bin_masks(scores: Array, bottom_max: int) -> list[npt.NDArray[np.bool_]]:
    top = scores.max()
    return [
        scores <= bottom_max,
        (scores > bottom_max) & (scores < top - 1),
        scores == top - 1,
        scores == top,
    ]


def _binned(x: Array, masks: list[npt.NDArray[np.bool_]]) -> Array:
    return np.stack([x[:, mk].sum(axis=1) for mk in masks], axis=1)


def dispersion(observed: Array, expected: Array, masks: list[npt.NDArray[np.bool_]]) -> float:
    """Robust intra-unit correlation ρ ≥ 0 (see the module docstring)."""
    o, e = _binned(observed, masks), _binned(expected, masks)
    keep = e > 0
    b = keep.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x2 = np.where(keep, (o - e) ** 2 / np.where(keep, e, 1), 0).sum(axis=1)
    n = observed.sum(axis=1)
    ok = (b >= 2) & (n > 1)
    if ok.sum() < 3:
        return 0.0
    x2, n, df = x2[ok], n[ok], (b[ok] - 1).astype(float)
    target = float(np.median(sps.chi2.median(df)))

    def gap(rho: float) -> float:
        return float(np.median(x2 / (1 + (n - 1) * rho))) - target

    if gap(0.0) <= 0:
        return 0.0
    hi = 1.0
    if gap(hi) > 0:
        return hi
    return float(optimize.brentq(gap, 0.0, hi, xtol=1e-6))


def _betabinom_sf(k: Array, n: Array, p: Array, rho: float) -> Array:
    """P(X ≥ k) for X ~ beta-binomial(n, mean p, correlation ρ) (binomial when ρ = 0)."""
    p = np.clip(p, 1e-9, 1 - 1e-9)
    if rho <= 0:
        return np.asarray(sps.binom.sf(k - 1, n, p), dtype=float)
    prec = 1 / rho - 1
    return np.asarray(sps.betabinom.sf(k - 1, n, p * prec, (1 - p) * prec), dtype=float)


def _entropy(counts: Array) -> Array:
    n = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, counts / np.where(n > 0, n, 1), 0.0)
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return np.asarray(terms.sum(axis=-1), dtype=float)


def _entropy_of_counts(counts: npt.NDArray[np.int64], n: npt.NDArray[np.int64]) -> Array:
    """Shannon entropy (bits) of integer count vectors (last axis) with totals ``n``:
    log2 n − Σ c·log2 c / n, the c·log2 c from a lookup table."""
    top = int(max(int(n.max(initial=0)), 1))
    table = np.zeros(top + 1)
    k = np.arange(1, top + 1, dtype=float)
    table[1:] = k * np.log2(k)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.log2(np.maximum(n, 1)) - table[counts].sum(axis=-1) / np.maximum(n, 1)
    return np.asarray(np.where(n > 0, h, 0.0), dtype=float)


def _simulated_entropy(
    n: npt.NDArray[np.int64], probs: Array, rho: float, rng: np.random.Generator, sims: int
) -> Array:
    """Entropies (sims, units) of Dirichlet-multinomial draws, in memory-bounded chunks."""
    units, k = probs.shape
    out = np.empty((sims, units))
    chunk = max(1, int(4_000_000 // max(sims * k, 1)))
    for start in range(0, units, chunk):
        sl = slice(start, min(start + chunk, units))
        pv = np.clip(probs[sl], 1e-12, None)
        pv = pv / pv.sum(axis=1, keepdims=True)
        if rho > 0:
            g = rng.gamma(pv[None, :, :] * (1 / rho - 1), size=(sims, *pv.shape))
            pv = g / np.maximum(g.sum(axis=2, keepdims=True), 1e-300)
        draws = rng.multinomial(n[sl], pv, size=(sims, sl.stop - sl.start))
        out[:, sl] = _entropy_of_counts(draws, n[sl][None, :])
    return out


def _entropy_p(
    observed: Array, expected: Array, rho: float, rng: np.random.Generator, sims: int
) -> tuple[Array, Array]:
    """(p, mean simulated entropy) of the low-entropy test for every unit: a screen of 50
    draws for all units, then ``sims`` draws for those whose screening p is below 0.1."""
    n = observed.sum(axis=1).astype(np.int64)
    probs = expected / expected.sum(axis=1, keepdims=True)
    h_obs = _entropy(observed)
    first = min(50, sims)
    h = _simulated_entropy(n, probs, rho, rng, first)
    p = (1 + (h <= h_obs[None, :] + 1e-12).sum(axis=0)) / (1 + first)
    mean = h.mean(axis=0)
    again = np.flatnonzero(p < 0.1)
    if sims > first and len(again):
        h2 = _simulated_entropy(n[again], probs[again], rho, rng, sims)
        p[again] = (1 + (h2 <= h_obs[again][None, :] + 1e-12).sum(axis=0)) / (1 + sims)
        mean[again] = h2.mean(axis=0)
    return np.asarray(p, dtype=float), np.asarray(mean, dtype=float)


def run(
    m: Array,
    scores: Array,
    bottom_max: int,
    rng: np.random.Generator,
    simulations: int,
) -> Forensics:
    """All five tests for every unit of ``m[u, s, k]`` (units × strata × scale points)."""
    observed = m.sum(axis=1)
    expected = expected_counts(m)
    n = observed.sum(axis=1)
    masks = bin_masks(scores, bottom_max)
    rho = dispersion(observed, expected, masks)
    phi = 1 + (n - 1) * rho
    p: dict[str, Array] = {}
    stat: dict[str, Array] = {}
    obs: dict[str, Array] = {}
    exp: dict[str, Array] = {}

    ob, eb = _binned(observed, masks), _binned(expected, masks)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = 2 * np.where((ob > 0) & (eb > 0), ob * np.log(ob / np.where(eb > 0, eb, 1)), 0)
        g = g.sum(axis=1)
        mean_o = (observed * scores).sum(axis=1) / n
        mean_e = (expected * scores).sum(axis=1) / n
    df = np.maximum((eb > 0).sum(axis=1) - 1, 1)
    p_two = sps.chi2.sf(g / phi, df)
    p["distribution_g"] = np.where(mean_o > mean_e, p_two / 2, 1 - p_two / 2)
    stat["distribution_g"], obs["distribution_g"], exp["distribution_g"] = g, mean_o, mean_e

    top_o, top_e = observed[:, -1], expected[:, -1]
    p["excess_top"] = _betabinom_sf(top_o, n, top_e / n, rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        stat["excess_top"] = (top_o / n) / (top_e / n)
    obs["excess_top"], exp["excess_top"] = top_o, top_e

    k2 = observed[:, -1] + observed[:, -2]
    e2 = expected[:, -1] + expected[:, -2]
    with np.errstate(invalid="ignore", divide="ignore"):
        q2 = np.where(e2 > 0, top_e / np.where(e2 > 0, e2, 1), np.nan)
        # no answer at the top two scores: nothing in excess (P(X >= 0) = 1)
        p["top_to_second"] = np.where(
            k2 == 0,
            1.0,
            np.where(np.isfinite(q2), _betabinom_sf(top_o, k2, np.nan_to_num(q2), rho), np.nan),
        )
        r_obs = np.where(
            observed[:, -2] > 0,
            top_o / np.where(observed[:, -2] > 0, observed[:, -2], 1),
            np.where(top_o > 0, np.inf, np.nan),
        )
        r_exp = np.where(expected[:, -2] > 0, top_e / expected[:, -2], np.inf)
    stat["top_to_second"], obs["top_to_second"], exp["top_to_second"] = r_obs, r_obs, r_exp

    mode = np.argmax(observed, axis=1)
    rows = np.arange(len(n))
    om, em = observed[rows, mode], expected[rows, mode]
    with np.errstate(invalid="ignore", divide="ignore"):
        p["heaping"] = np.minimum(1.0, len(scores) * _betabinom_sf(om, n, em / n, rho))
        stat["heaping"] = (om / n) / (em / n)
    obs["heaping"], exp["heaping"] = om, em

    p_ent, h_mean = _entropy_p(observed, expected, rho, rng, simulations)
    h_obs = _entropy(observed)
    p["low_entropy"], stat["low_entropy"] = p_ent, h_obs - h_mean
    obs["low_entropy"], exp["low_entropy"] = h_obs, h_mean
    return Forensics(n, observed, expected, rho, p, stat, obs, exp, mode)


def distribution(
    answers: pd.DataFrame, min_answers: int, simulations: int, seed: int
) -> list[pd.DataFrame]:
    """The forensic tests per unit and instrument against the leave-one-out case mix."""
    out: list[pd.DataFrame] = []
    routine = answers[answers["routine"]].copy()
    if routine.empty:
        return out
    for col in ("kind", "channel"):
        routine[col] = routine[col].astype(object).where(routine[col].notna(), "(none)")
    routine["stratum"] = routine["kind"].astype(str) + "|" + routine["channel"].astype(str)
    teams = teams_of(routine, "agent_id", "team")
    rng = np.random.default_rng(seed)
    for instrument, block in routine.groupby("instrument", sort=True):
        instrument = str(instrument)
        lo, hi = scale(instrument, block["score"].to_numpy(dtype=np.int64))
        if hi - lo < 3:
            continue
        block = block[(block["score"] >= lo) & (block["score"] <= hi)]
        scores = np.arange(lo, hi + 1, dtype=float)
        bottom = BOTTOM_MAX.get(instrument, lo + (hi - lo) // 3)
        s_codes, strata = pd.factorize(block["stratum"])
        for kind, (col, _) in UNIT_COLUMNS.items():
            b = block[block[col].notna()]
            if b.empty:
                continue
            u_codes, units = pd.factorize(b[col].astype(str), sort=True)
            m = np.zeros((len(units), len(strata), len(scores)))
            np.add.at(
                m,
                (
                    u_codes,
                    s_codes[block[col].notna().to_numpy()],
                    b["score"].to_numpy(dtype=np.int64) - lo,
                ),
                b["rows"].to_numpy(dtype=float),
            )
            n_all = m.sum(axis=(1, 2))
            if (n_all >= min_answers).sum() < 2:
                continue
            f = run(m, scores, bottom, rng, simulations)
            keep = n_all >= min_answers
            for signal in (
                "distribution_g",
                "excess_top",
                "top_to_second",
                "heaping",
                "low_entropy",
            ):
                names = (
                    [f"heaping index at {int(scores[k])}" for k in f.mode[keep]]
                    if signal == "heaping"
                    else _STAT_NAMES[signal]
                )
                prompts = [
                    _forensic_prompt(str(unit), instrument, signal, s, o, e, n, int(hi), int(mo))
                    for unit, s, o, e, n, mo in zip(
                        units[keep],
                        f.stat[signal][keep],
                        f.obs[signal][keep],
                        f.exp[signal][keep],
                        f.n[keep],
                        scores[f.mode[keep]],
                        strict=True,
                    )
                ]
                wheres = [{col: str(unit), "instrument": instrument} for unit in units[keep]]
                out.append(
                    signal_frame(
                        kind,
                        units[keep],
                        teams,
                        signal,
                        names,
                        f.stat[signal][keep],
                        f.p[signal][keep],
                        f.n[keep],
                        prompts,
                        "surveys",
                        wheres,
                        f.obs[signal][keep],
                        f.exp[signal][keep],
                        instrument=instrument,
                    )
                )
    return out


_STAT_NAMES = {
    "distribution_g": "G (4 bins)",
    "excess_top": "observed/expected top share",
    "top_to_second": "top:second ratio",
    "low_entropy": "entropy (bits) minus expected",
}


def _forensic_prompt(
    unit: str,
    instrument: str,
    signal: str,
    stat: float,
    observed: float,
    expected: float,
    n: float,
    top: int,
    mode: int,
) -> str:
    label = instrument.upper()
    if signal == "excess_top":
        return (
            f"{unit}'s customers gave {top} in {pct(observed, n)} of {label} answers; the case "
            f"mix of the same kind of work leads one to expect {100 * expected / n:.0f}%."
        )
    if signal == "top_to_second":
        return (
            f"Among {unit}'s two highest {label} answers the ratio {top}:{top - 1} is "
            f"{observed:.1f}; peers with the same case mix show {expected:.1f}."
        )
    if signal == "heaping":
        return f"{unit}'s {label} answers heap on {mode}: {stat:.1f}× the expected share."
    if signal == "low_entropy":
        return (
            f"{unit}'s {label} answers are less varied than the case mix predicts "
            f"({observed:.2f} bits against {expected:.2f})."
        )
    return (
        f"{unit}'s {label} answers differ from peers with the same case mix "
        f"(mean {observed:.2f} against {expected:.2f})."
    )
