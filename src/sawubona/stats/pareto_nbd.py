"""The Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

Schmittlein, Morrison & Colombo (1987), "Counting your customers: who are they
and what will they do next?", *Management Science* 33(1):1–24. While alive a
customer buys as a Poisson process with rate λ ~ Gamma(r, α); their lifetime is
exponential with rate μ ~ Gamma(s, β). The likelihood and its derived quantities
are taken in the form of Fader & Hardie, "A note on deriving the Pareto/NBD model
and related expressions" (2005, brucehardie.com note 009), eqs. (18)–(22)::

    ln L = lnΓ(r+x) − lnΓ(r) + r ln α + s ln β
           + ln[ (α+T)^−(r+x) (β+T)^−s + s/(r+s+x) · A0 ]

with, for α ≥ β,
    A0 = ₂F₁(r+s+x, s+1; r+s+x+1; (α−β)/(α+t_x)) / (α+t_x)^(r+s+x)
       − ₂F₁(r+s+x, s+1; r+s+x+1; (α−β)/(α+T))   / (α+T)^(r+s+x)
and, for α < β, the same with (β−α)/(β+·), (β+·)^(r+s+x) and r+x in place of s+1.

P(alive | x, t_x, T) = 1 / (1 + s/(r+s+x) (α+T)^(r+x) (β+T)^s A0)     (eq. 37)

E[Y(t) | x, t_x, T] = P(alive) · (r+x)(β+T) / ((α+T)(s−1))
                      · [1 − ((β+T)/(β+T+t))^(s−1)]                  (eq. 41)

The gradient is taken by central differences (the ₂F₁ terms depend on the
parameters through its arguments), on the compressed (x, t_x, T) rows.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

from sawubona.stats.btyd import Array, CountingModel, log_hyp2f1


def _log_a0(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    r, alpha, s, beta = params
    if alpha >= beta:
        big, third = alpha, s + 1.0
    else:
        big, third = beta, r + x
    gap = abs(alpha - beta)
    rsx = r + s + x
    with np.errstate(all="ignore"):
        log_1 = log_hyp2f1(rsx, third, rsx + 1.0, gap / (big + t_x)) - rsx * np.log(big + t_x)
        log_2 = log_hyp2f1(rsx, third, rsx + 1.0, gap / (big + T)) - rsx * np.log(big + T)
        # A0 = e^log_1 − e^log_2 ≥ 0 (t_x ≤ T); equal when t_x = T
        diff = np.minimum(log_2 - log_1, 0.0)
        return np.asarray(log_1 + np.log(-np.expm1(diff)), dtype=float)


class ParetoNBD(CountingModel):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987); parameters r, α, s, β."""

    name = "pareto/nbd"
    title = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")
    time_params = ("alpha", "beta")
    analytic_gradient = False

    @staticmethod
    def loglik(params: Array, x: Array, t_x: Array, T: Array) -> Array:
        r, alpha, s, beta = params
        a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        log_a0 = _log_a0(params, x, t_x, T)
        alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        died = np.log(s) - np.log(r + s + x) + log_a0
        with np.errstate(invalid="ignore"):
            return np.asarray(a1 + np.logaddexp(alive, died), dtype=float)

    def _start(self) -> Array:
        return np.log([0.5, 1.0, 0.5, 1.0])

    def p_alive(self, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike) -> Array:
        params = self._params()
        r, alpha, s, beta = params
        x = np.asarray(frequency, dtype=float)
        t_x, TT = np.asarray(recency, dtype=float), np.asarray(T, dtype=float)
        log_a0 = _log_a0(params, x, t_x, TT)
        z = (
            np.log(s)
            - np.log(r + s + x)
            + (r + x) * np.log(alpha + TT)
            + s * np.log(beta + TT)
            + log_a0
        )
        return np.asarray(special.expit(-z), dtype=float)

    def expected_purchases(
        self,
        t: npt.ArrayLike,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
    ) -> Array:
        r, alpha, s, beta = self._params()
        x = np.asarray(frequency, dtype=float)
        TT = np.asarray(T, dtype=float)
        tt = np.asarray(t, dtype=float)
        alive = self.p_alive(x, recency, TT)
        log_u = np.log((beta + TT) / (beta + TT + tt))
        if abs(s - 1) < 1e-10:
            bracket = -log_u
        else:
            bracket = -np.expm1((s - 1) * log_u) / (s - 1)
        return np.asarray(alive * (r + x) * (beta + TT) / (alpha + TT) * bracket, dtype=float)

    def expected_purchases_new(self, t: npt.ArrayLike) -> Array:
        r, alpha, s, beta = self._params()
        tt = np.asarray(t, dtype=float)
        log_u = np.log(beta / (beta + tt))
        if abs(s - 1) < 1e-10:
            return np.asarray(r * beta / alpha * -log_u)
        return np.asarray(r * beta / (alpha * (s - 1)) * -np.expm1((s - 1) * log_u))


__all__ = ["ParetoNBD"]
