"""Empirical-Bayes shrinkage of rates for small groups (teams, agents, sellers).

Beta-binomial: each group's true rate θᵢ ~ Beta(α, β), its count kᵢ ~ Bin(nᵢ, θᵢ).
(α, β) are fitted by maximum likelihood on the groups' counts (the marginal
beta-binomial likelihood), and each group's rate is reported as its posterior
mean (kᵢ + α) / (nᵢ + α + β) with an equal-tailed posterior interval — a small
team with 3 of 3 is not ranked above a large one with 950 of 1000. See Efron &
Morris (1975) for the idea and Gelman et al., *Bayesian Data Analysis*, §5.3 for
the beta-binomial hierarchy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special, stats


@dataclass(frozen=True)
class BetaPrior:
    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


def _neg_loglik(
    log_ab: npt.NDArray[np.float64], k: npt.NDArray[np.float64], n: npt.NDArray[np.float64]
) -> float:
    a, b = np.exp(log_ab)
    ll = special.betaln(k + a, n - k + b) - special.betaln(a, b)
    return float(-ll.sum())


def fit_beta_prior(successes: npt.ArrayLike, n: npt.ArrayLike) -> BetaPrior:
    """Maximum-likelihood (α, β) of the beta-binomial over groups (the binomial
    coefficients do not depend on α, β and are left out)."""
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    keep = m > 0
    k, m = k[keep], m[keep]
    if len(k) == 0:
        return BetaPrior(1.0, 1.0)
    p = np.clip(k.sum() / m.sum(), 1e-3, 1 - 1e-3)
    if len(k) < 2 or np.allclose(k / m, p):
        # No spread between groups to learn from: a strong prior at the pooled rate.
        strength = 1e4
        return BetaPrior(p * strength, (1 - p) * strength)
    start = np.log([p * 10, (1 - p) * 10])
    res = optimize.minimize(
        _neg_loglik, start, args=(k, m), method="L-BFGS-B", bounds=[(-10, 14), (-10, 14)]
    )
    a, b = np.exp(res.x)
    return BetaPrior(float(a), float(b))


def shrink(
    successes: npt.ArrayLike,
    n: npt.ArrayLike,
    prior: BetaPrior | None = None,
    level: float = 0.95,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Posterior mean and equal-tailed interval (mean, low, high) of each group's rate."""
    k = np.asarray(successes, dtype=float)
    m = np.asarray(n, dtype=float)
    prior = prior or fit_beta_prior(k, m)
    a, b = k + prior.alpha, m - k + prior.beta
    tail = (1 - level) / 2
    return a / (a + b), stats.beta.ppf(tail, a, b), stats.beta.ppf(1 - tail, a, b)
