"""Intervals for rates and for NPS, vectorised over groups.

* Wilson score interval for a binomial proportion (Wilson 1927; recommended over
  the Wald interval by Brown, Cai & DasGupta 2001, *Interval Estimation for a
  Binomial Proportion*, Statistical Science 16(2)).
* NPS as a difference of two multinomial proportions, NPS = pP − pD, with
  variance ``[pP + pD − (pP − pD)²] / n``. For small samples the *adjusted Wald*
  interval of Rocks (2016, "Interval Estimation for the 'Net Promoter Score'",
  The American Statistician 70(4):365–372) adds 3 to n and ¾ to each of the
  promoter and detractor counts before the Wald step (as applied by Lewis &
  Sauro, MeasuringU 2021), which keeps coverage near nominal for small n.

All functions take NumPy arrays (or scalars) and return arrays; an n of 0 gives NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

Array = npt.NDArray[np.float64]

Z95 = float(stats.norm.ppf(0.975))


def wilson(successes: npt.ArrayLike, n: npt.ArrayLike, z: float = Z95) -> tuple[Array, Array]:
    """Wilson score interval (low, high) for successes out of n."""
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / m
        denom = 1 + z**2 / m
        centre = (p + z**2 / (2 * m)) / denom
        half = z * np.sqrt(p * (1 - p) / m + z**2 / (4 * m**2)) / denom
    low = np.where(m > 0, np.clip(centre - half, 0, 1), np.nan)
    high = np.where(m > 0, np.clip(centre + half, 0, 1), np.nan)
    return low, high


def nps(promoters: npt.ArrayLike, detractors: npt.ArrayLike, n: npt.ArrayLike) -> Array:
    """Net promoter score on the −100..100 scale."""
    p = np.asarray(promoters, dtype=float)
    d = np.asarray(detractors, dtype=float)
    m = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m > 0, 100 * (p - d) / m, np.nan)


def nps_interval(
    promoters: npt.ArrayLike,
    detractors: npt.ArrayLike,
    n: npt.ArrayLike,
    z: float = Z95,
    adjusted: bool = True,
) -> tuple[Array, Array]:
    """(low, high) of NPS (−100..100); ``adjusted`` is Rocks's adjusted Wald (n + 3,
    promoters + ¾, detractors + ¾), otherwise the plain Wald interval."""
    p = np.asarray(promoters, dtype=float)
    d = np.asarray(detractors, dtype=float)
    m = np.asarray(n, dtype=float)
    if adjusted:
        p, d, m = p + 0.75, d + 0.75, m + 3.0
    with np.errstate(invalid="ignore", divide="ignore"):
        pp, pd = p / m, d / m
        score = pp - pd
        se = np.sqrt((pp + pd - score**2) / m)
    n0 = np.asarray(n, dtype=float)
    low = np.where(n0 > 0, 100 * np.clip(score - z * se, -1, 1), np.nan)
    high = np.where(n0 > 0, 100 * np.clip(score + z * se, -1, 1), np.nan)
    return low, high


def nps_se(promoters: npt.ArrayLike, detractors: npt.ArrayLike, n: npt.ArrayLike) -> Array:
    """Standard error of NPS (−100..100 scale): 100·sqrt([pP + pD − (pP − pD)²] / n)."""
    p = np.asarray(promoters, dtype=float)
    d = np.asarray(detractors, dtype=float)
    m = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pp, pd = p / m, d / m
        return np.where(m > 0, 100 * np.sqrt((pp + pd - (pp - pd) ** 2) / m), np.nan)


def two_proportion_z(k1: float, n1: float, k2: float, n2: float) -> tuple[float, float]:
    """(z, two-sided p) for the difference of two proportions (pooled variance)."""
    if min(n1, n2) <= 0:
        return float("nan"), float("nan")
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (k1 / n1 - k2 / n2) / se
    return float(z), float(2 * stats.norm.sf(abs(z)))
