"""Small groups without league tables: shrinkage and funnel limits.

* **Dirichlet-multinomial shrinkage of NPS.** Each unit's (detractor, passive,
  promoter) shares θᵢ ~ Dirichlet(α), its counts ~ Multinomial(nᵢ, θᵢ). α is fitted
  by maximum marginal likelihood over the units (Mosimann 1962, "On the compound
  multinomial distribution", Biometrika 49; fitting as in Minka 2000, *Estimating
  a Dirichlet distribution*). A unit's NPS is reported as the posterior mean
  100·(a_P − a_D)/A with aₖ = αₖ + countₖ, A = Σaₖ, and a normal interval from the
  exact posterior variance of θ_P − θ_D:
  ``[a_P(A − a_P) + a_D(A − a_D) + 2·a_P·a_D] / (A²(A + 1))``.
* **Beta-binomial shrinkage of rates**: :func:`sawubona.stats.shrink`.
* **Funnel limits** (Spiegelhalter 2005, "Funnel plots for comparing institutional
  performance", Statistics in Medicine 24:1185–1202): target θ₀ (the pooled value)
  ± z·sᵢ with sᵢ = sqrt(V₀/nᵢ) (NPS: V₀ = pP + pD − (pP − pD)²; rates: p₀(1 − p₀)),
  at 95% and 99.8%. Over-dispersion: φ = mean of the squared z-scores winsorised at
  the 10th/90th percentiles; when I·φ > I − 1 the additive random-effects variance
  τ² = (I·φ − (I − 1)) / (Σwᵢ − Σwᵢ²/Σwᵢ), wᵢ = 1/sᵢ², widens every limit to
  θ₀ ± z·sqrt(sᵢ² + τ²) (Spiegelhalter 2005, §3.2 and "Handling over-dispersion of
  performance indicators", Qual Saf Health Care 14:347–351).

Units are listed in the order of their ids, never ranked by their score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import optimize, special
from scipy import stats as sps

from sawubona.stats import fit_beta_prior, shrink

Array = npt.NDArray[np.float64]
Z95 = float(sps.norm.ppf(0.975))
Z998 = float(sps.norm.ppf(0.999))


@dataclass(frozen=True)
class DirichletPrior:
    alpha: Array  # (detractor, passive, promoter)

    @property
    def strength(self) -> float:
        return float(self.alpha.sum())


def _dm_negloglik(log_alpha: Array, counts: Array) -> float:
    a = np.exp(log_alpha)
    n = counts.sum(axis=1)
    ll = special.gammaln(a.sum()) - special.gammaln(n + a.sum())
    ll = ll + (special.gammaln(counts + a) - special.gammaln(a)).sum(axis=1)
    return float(-ll.sum())


def fit_dirichlet_prior(counts: npt.ArrayLike) -> DirichletPrior:
    """Maximum-likelihood α of the Dirichlet-multinomial over units (rows of ``counts``)."""
    c = np.asarray(counts, dtype=float)
    c = c[c.sum(axis=1) > 0]
    if len(c) == 0:
        return DirichletPrior(np.ones(3))
    pooled = np.clip(c.sum(axis=0) / c.sum(), 1e-3, None)
    pooled = pooled / pooled.sum()
    shares = c / c.sum(axis=1, keepdims=True)
    if len(c) < 2 or np.allclose(shares, pooled, atol=1e-9):
        return DirichletPrior(pooled * 1e4)  # no spread to learn from: the pooled shares
    start = np.log(pooled * 10)
    res = optimize.minimize(
        _dm_negloglik, start, args=(c,), method="L-BFGS-B", bounds=[(-10, 14)] * c.shape[1]
    )
    return DirichletPrior(np.exp(res.x))


def shrink_nps(
    detractors: npt.ArrayLike,
    passives: npt.ArrayLike,
    promoters: npt.ArrayLike,
    prior: DirichletPrior | None = None,
) -> tuple[Array, Array, Array]:
    """Posterior mean NPS and its 95% interval (−100..100) for each unit."""
    c = np.column_stack(
        [np.asarray(detractors, float), np.asarray(passives, float), np.asarray(promoters, float)]
    )
    prior = prior or fit_dirichlet_prior(c)
    a = c + prior.alpha
    total = a.sum(axis=1)
    a_d, a_p = a[:, 0], a[:, 2]
    mean = (a_p - a_d) / total
    var = (a_p * (total - a_p) + a_d * (total - a_d) + 2 * a_p * a_d) / (total**2 * (total + 1))
    sd = np.sqrt(var)
    return (
        100 * mean,
        100 * np.clip(mean - Z95 * sd, -1, 1),
        100 * np.clip(mean + Z95 * sd, -1, 1),
    )


@dataclass(frozen=True)
class Overdispersion:
    phi: float
    tau2: float
    p_value: float

    @property
    def overdispersed(self) -> bool:
        return self.tau2 > 0 and self.p_value < 0.05


def overdispersion(z: Array, s: Array) -> Overdispersion:
    """Spiegelhalter's φ (winsorised at 10%/90%), its χ²(I − 1) p-value and τ²."""
    ok = np.isfinite(z) & np.isfinite(s) & (s > 0)
    z, s = z[ok], s[ok]
    units = len(z)
    if units < 3:
        return Overdispersion(float("nan"), 0.0, float("nan"))
    lo, hi = np.percentile(z, [10, 90])
    zw = np.clip(z, lo, hi)
    phi = float(np.mean(zw**2))
    p = float(sps.chi2.sf(units * phi, units - 1))
    w = 1 / s**2
    denom = w.sum() - (w**2).sum() / w.sum()
    tau2 = max(0.0, (units * phi - (units - 1)) / denom) if denom > 0 else 0.0
    return Overdispersion(phi, tau2, p)


def funnel(
    units: list[str],
    n: Array,
    value: Array,
    target: float,
    unit_variance: float,
) -> tuple[pd.DataFrame, Overdispersion]:
    """Funnel rows (unit, n, value, z, limits, position) for values on a 0..100 or −100..100
    scale with per-answer variance ``unit_variance`` (on that scale) at the target."""
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.sqrt(unit_variance / n)
        z = (value - target) / s
    od = overdispersion(z, s)
    tau2 = od.tau2 if od.overdispersed else 0.0
    s_adj = np.sqrt(s**2 + tau2)
    with np.errstate(invalid="ignore", divide="ignore"):
        z_adj = (value - target) / s_adj
    position = np.select(
        [z_adj > Z998, z_adj > Z95, z_adj < -Z998, z_adj < -Z95],
        ["above_99.8", "above_95", "below_99.8", "below_95"],
        "inside",
    )
    rows = pd.DataFrame(
        {
            "unit": units,
            "n": n,
            "value": value,
            "target": target,
            "z": z_adj,
            "low_95": target - Z95 * s_adj,
            "high_95": target + Z95 * s_adj,
            "low_998": target - Z998 * s_adj,
            "high_998": target + Z998 * s_adj,
            "position": position,
        }
    )
    return rows, od


def nps_funnel(unit_kind: str, counts: pd.DataFrame) -> pd.DataFrame:
    """``voice_funnel`` rows for NPS from ``counts`` (unit, detractors, passives, promoters)."""
    c = counts.sort_values("unit").reset_index(drop=True)
    d, pa_, p = (c[k].to_numpy(dtype=float) for k in ("detractors", "passives", "promoters"))
    n = d + pa_ + p
    total = n.sum()
    if total == 0:
        return pd.DataFrame()
    p0, d0 = p.sum() / total, d.sum() / total
    target = 100 * (p0 - d0)
    v0 = 100**2 * (p0 + d0 - (p0 - d0) ** 2)
    rows, od = funnel(c["unit"].tolist(), n, 100 * (p - d) / n, target, v0)
    shrunk, s_low, s_high = shrink_nps(d, pa_, p)
    return _finish(rows, unit_kind, "nps", od, shrunk, s_low, s_high)


def rate_funnel(unit_kind: str, metric: str, counts: pd.DataFrame) -> pd.DataFrame:
    """``voice_funnel`` rows for a rate (percent) from ``counts`` (unit, successes, n)."""
    c = counts.sort_values("unit").reset_index(drop=True)
    k, n = c["successes"].to_numpy(dtype=float), c["n"].to_numpy(dtype=float)
    if n.sum() == 0:
        return pd.DataFrame()
    p0 = k.sum() / n.sum()
    rows, od = funnel(c["unit"].tolist(), n, 100 * k / n, 100 * p0, 100**2 * p0 * (1 - p0))
    mean, low, high = shrink(k, n, fit_beta_prior(k, n))
    return _finish(rows, unit_kind, metric, od, 100 * mean, 100 * low, 100 * high)


def _finish(
    rows: pd.DataFrame,
    unit_kind: str,
    metric: str,
    od: Overdispersion,
    shrunk: Array,
    low: Array,
    high: Array,
) -> pd.DataFrame:
    rows.insert(0, "metric", metric)
    rows.insert(1, "unit_kind", unit_kind)
    rows["shrunk"] = shrunk
    rows["shrunk_low"] = low
    rows["shrunk_high"] = high
    rows["overdispersion_phi"] = od.phi
    rows["overdispersion_p"] = od.p_value
    rows["tau"] = np.sqrt(od.tau2) if od.overdispersed else 0.0
    return rows
