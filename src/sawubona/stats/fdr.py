"""Benjamini–Hochberg control of the false-discovery rate across many tests.

Benjamini & Hochberg (1995), "Controlling the false discovery rate", JRSS B 57(1).
Adjusted p-values: sort p ascending, pᵢ·m/i, then the running minimum from the
largest rank down, capped at 1. A flag at level q is ``adjusted <= q``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def bh_adjust(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values, in the input order (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q)
    ranked = q[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(ranked, 1.0)
    out[ok] = adjusted
    return out


def bh_reject(p_values: npt.ArrayLike, q: float = 0.05) -> npt.NDArray[np.bool_]:
    """Which hypotheses are flagged at false-discovery rate ``q``."""
    return bh_adjust(p_values) <= q
