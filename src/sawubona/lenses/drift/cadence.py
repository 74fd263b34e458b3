"""Cadence break: a regular's current silence against their own rhythm.

A population model (BG/NBD) can still call a café regular "alive" weeks after he
stopped coming, because most customers buy rarely. The cadence check asks a
different question: *for this customer*, is the time since their last purchase
longer than their own gaps between purchases make plausible?

Each regular's gaps between consecutive purchase days g₁..gₙ (days) are taken
as log-normal: ln g ~ N(mᵢ, sᵢ²), with mᵢ, sᵢ² the mean and variance of their
ln gaps. With few gaps sᵢ² is noisy, so it is shrunk toward the pooled
within-customer variance s²ₚ of all regulars, as a conjugate prior worth
``prior_gaps`` gaps:  s̃ᵢ² = (nᵢ sᵢ² + k s²ₚ) / (nᵢ + k), and kept at least
``min_log_sd`` (0.3): on a day grain even a clockwork weekly visitor is not
"late" one day after their usual gap (with 0.3, a weekly regular's 95th
percentile gap is 11.5 days).

The open gap G = as_of day − last purchase day (the silence so far) gives

    cadence_z   = (ln max(G, 1) − mᵢ) / s̃ᵢ
    cadence_limit_days = exp(mᵢ + z_q s̃ᵢ)      (their q-th percentile gap, q = cadence_percentile)
    cadence_broken = G > cadence_limit_days

and ``silence_probability`` = P(a gap of theirs lasts at least G) = 1 − Φ(cadence_z),
a survival-style reading of the same number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Cadence:
    """Per-regular cadence figures (arrays aligned with the input)."""

    usual_gap_days: Array
    cadence_limit_days: Array
    cadence_z: Array
    silence_probability: Array
    broken: npt.NDArray[np.bool_]
    pooled_log_sd: float


def cadence(
    gaps: Array,
    log_gap_mean: Array,
    log_gap_var: Array,
    silence_days: Array,
    percentile: float = 0.95,
    prior_gaps: float = 5.0,
    min_log_sd: float = 0.3,
) -> Cadence:
    """Cadence figures from each regular's gap statistics and current silence (days)."""
    n = np.asarray(gaps, dtype=float)
    m = np.asarray(log_gap_mean, dtype=float)
    v = np.clip(np.asarray(log_gap_var, dtype=float), 0.0, None)
    silence = np.asarray(silence_days, dtype=float)
    if len(n) == 0:
        e = np.zeros(0)
        return Cadence(e, e, e, e, np.zeros(0, bool), float("nan"))
    pooled = float(np.sum(n * v) / max(np.sum(n - 1), 1.0))
    if not np.isfinite(pooled):
        pooled = 1.0
    pooled = max(pooled, min_log_sd**2)
    shrunk = np.maximum(np.sqrt((n * v + prior_gaps * pooled) / (n + prior_gaps)), min_log_sd)
    z_q = float(stats.norm.ppf(percentile))
    limit = np.exp(m + z_q * shrunk)
    z = (np.log(np.maximum(silence, 1.0)) - m) / shrunk
    return Cadence(
        usual_gap_days=np.exp(m),
        cadence_limit_days=limit,
        cadence_z=z,
        silence_probability=stats.norm.sf(z),
        broken=silence > limit,
        pooled_log_sd=float(np.sqrt(pooled)),
    )
