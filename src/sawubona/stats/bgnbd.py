"""Buy-till-you-die models: BG/NBD and MBG/NBD (Pareto/NBD in :mod:`.pareto_nbd`).

Each customer is summarised by ``x`` (repeat purchases), ``t_x`` (recency) and
``T`` (age), in one time unit (see :mod:`.btyd`).

**BG/NBD** — Fader, Hardie & Lee (2005), "Counting your customers the easy way:
an alternative to the Pareto/NBD model", *Marketing Science* 24(2):275–284.
While alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α);
after each repeat purchase they drop out with probability p ~ Beta(a, b). The
likelihood of one customer (their eq. 6), written in logs as in §7 of the paper::

    A1 = lnΓ(r+x) − lnΓ(r) + r ln α
    A2 = lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x)
    A3 = −(r+x) ln(α+T)
    A4 = ln a − ln(b+x−1) − (r+x) ln(α+t_x)          (only when x > 0)
    ln L = A1 + A2 + ln(e^A3 + δ(x>0) e^A4)

P(alive | x, t_x, T) = 1 / (1 + δ(x>0) a/(b+x−1) ((α+T)/(α+t_x))^(r+x))
(Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD model", note 021), and
the expected purchases in the next t (their eq. 10)::

    E[Y(t) | x, t_x, T] = (a+b+x−1)/(a−1)
        · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
        / [1 + δ(x>0) a/(b+x−1) ((α+T)/(α+t_x))^(r+x)]

**MBG/NBD** — Batislam, Denizel & Filiztekin (2007), "Empirical validation and
comparison of models for customer base analysis", *International Journal of
Research in Marketing* 24(3):201–209: a customer may also drop out right after
the first purchase, so customers with x = 0 are not certainly alive::

    A2' = lnΓ(a+b) + lnΓ(b+x+1) − lnΓ(b) − lnΓ(a+b+x+1)
    A4' = ln a − ln(b+x) + (r+x) (ln(α+T) − ln(α+t_x))
    ln L = A1 + A2' + A3 + ln(1 + e^A4')
    P(alive) = 1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x))
    E[Y(t) | ·] = (a+b+x)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x)
                  ₂F₁(r+x, b+x+1; a+b+x; t/(α+T+t))] · P(alive)

(Wagner & Hoppe 2008 for the conditional expectation.)

Both give analytic gradients in log-parameters; the fitting itself is shared
(:mod:`.btyd`).
"""

from __future__ import annotations

import numpy as np
from scipy import special

from sawubona.stats.btyd import (
    Array,
    ArrayLike,
    Compressed,
    CountingModel,
    FitData,
    compress,
    hyp2f1,
    weighted_sum,
)


def _log_terms_bg(p: Array, x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    r, alpha, a, b = p
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x)
        - special.gammaln(b)
        - special.gammaln(a + b + x)
    )
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x)
    return a1, a2, a3, a4


class BetaGeo(CountingModel):
    """BG/NBD (Fader, Hardie & Lee 2005); parameters r, α, a, b."""

    name = "bg/nbd"
    title = "BG/NBD"
    param_names = ("r", "alpha", "a", "b")

    @staticmethod
    def loglik(params: Array, x: Array, t_x: Array, T: Array) -> Array:
        a1, a2, a3, a4 = _log_terms_bg(params, x, t_x, T)
        a4 = np.where(x > 0, a4, -np.inf)
        return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=float)

    @classmethod
    def loglik_total(cls, params: Array, data: FitData) -> float:
        r, alpha, a, b = params
        u, gl = data.ux, special.gammaln
        ll = weighted_sum(data.wu, gl(r + u) - gl(r) + r * np.log(alpha))
        ll += weighted_sum(data.wu, gl(a + b) + gl(b + u) - gl(b) - gl(a + b + u))
        rx = r + data.x
        a3 = -rx * np.log(alpha + data.T)
        with np.errstate(all="ignore"):
            lb = np.log(a / (b + np.maximum(u, 1) - 1))
            a4 = np.where(data.x > 0, lb[data.inv] - rx * np.log(alpha + data.t_x), -np.inf)
            return ll + weighted_sum(data.w, np.logaddexp(a3, a4))

    @classmethod
    def loglik_grad(cls, params: Array, data: FitData) -> tuple[float, Array]:
        r, alpha, a, b = params
        u, wu, inv, w = data.ux, data.wu, data.inv, data.w
        gl, dg = special.gammaln, special.digamma
        # terms of x alone, once per distinct x
        ll = weighted_sum(wu, gl(r + u) - gl(r) + r * np.log(alpha))
        ll += weighted_sum(wu, gl(a + b) + gl(b + u) - gl(b) - gl(a + b + u))
        d_r = weighted_sum(wu, dg(r + u) - dg(r) + np.log(alpha))
        d_alpha = data.total * r / alpha
        d_a = weighted_sum(wu, dg(a + b) - dg(a + b + u))
        d_b = weighted_sum(wu, dg(a + b) + dg(b + u) - dg(b) - dg(a + b + u))
        # the rest, per row
        rx = r + data.x
        lat, lar = np.log(alpha + data.T), np.log(alpha + data.t_x)
        a3 = -rx * lat
        inv_b = 1.0 / (b + np.maximum(u, 1) - 1)
        with np.errstate(all="ignore"):
            a4 = np.where(data.x > 0, np.log(a * inv_b)[inv] - rx * lar, -np.inf)
            hi = np.maximum(a3, a4)
            e = np.exp(-np.abs(a3 - a4))
            m = hi + np.log1p(e)
            w4 = np.where(a4 >= a3, 1.0 / (1.0 + e), e / (1.0 + e))
        w4 = np.where(data.x > 0, w4, 0.0)
        w3 = 1.0 - w4
        ll += weighted_sum(w, m)
        d_r -= weighted_sum(w, w3 * lat + w4 * lar)
        d_alpha -= weighted_sum(w, rx * (w3 / (alpha + data.T) + w4 / (alpha + data.t_x)))
        ww4 = w * w4
        d_a += float(np.sum(ww4)) / a
        d_b -= weighted_sum(np.bincount(inv, weights=ww4, minlength=len(u)), inv_b)
        return ll, np.array([d_r, d_alpha, d_a, d_b]) * params

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        r, alpha, a, b = self._params()
        x = np.asarray(frequency, dtype=float)
        t_x, TT = np.asarray(recency, dtype=float), np.asarray(T, dtype=float)
        log_div = (r + x) * np.log((alpha + TT) / (alpha + t_x)) + np.log(
            a / (b + np.maximum(x, 1) - 1)
        )
        return np.where(x == 0, 1.0, special.expit(-log_div))

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        r, alpha, a, b = self._params()
        x = np.asarray(frequency, dtype=float)
        t_x, TT = np.asarray(recency, dtype=float), np.asarray(T, dtype=float)
        tt = np.asarray(t, dtype=float)
        z = tt / (alpha + TT + tt)
        hyp = hyp2f1(r + x, b + x, a + b + x - 1, z)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - hyp * ((alpha + TT) / (alpha + tt + TT)) ** (r + x)
        denom = 1 + (x > 0) * (a / (b + np.maximum(x, 1) - 1)) * ((alpha + TT) / (alpha + t_x)) ** (
            r + x
        )
        return np.asarray(first * second / denom, dtype=float)

    def expected_purchases_new(self, t: ArrayLike) -> Array:
        r, alpha, a, b = self._params()
        tt = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b, a + b - 1, tt / (alpha + tt))
        return np.asarray((a + b - 1) / (a - 1) * (1 - hyp * (alpha / (alpha + tt)) ** r))


def _log_terms_mbg(p: Array, x: Array, t_x: Array, T: Array) -> tuple[Array, Array, Array, Array]:
    r, alpha, a, b = p
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = (
        special.gammaln(a + b)
        + special.gammaln(b + x + 1)
        - special.gammaln(b)
        - special.gammaln(a + b + x + 1)
    )
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return a1, a2, a3, a4


class ModifiedBetaGeo(CountingModel):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007); parameters r, α, a, b."""

    name = "mbg/nbd"
    title = "MBG/NBD"
    param_names = ("r", "alpha", "a", "b")

    @staticmethod
    def loglik(params: Array, x: Array, t_x: Array, T: Array) -> Array:
        a1, a2, a3, a4 = _log_terms_mbg(params, x, t_x, T)
        return np.asarray(a1 + a2 + a3 + np.logaddexp(a4, 0.0), dtype=float)

    @classmethod
    def loglik_total(cls, params: Array, data: FitData) -> float:
        r, alpha, a, b = params
        u, gl = data.ux, special.gammaln
        ll = weighted_sum(data.wu, gl(r + u) - gl(r) + r * np.log(alpha))
        ll += weighted_sum(data.wu, gl(a + b) + gl(b + u + 1) - gl(b) - gl(a + b + u + 1))
        rx = r + data.x
        lat = np.log(alpha + data.T)
        a4 = np.log(a / (b + u))[data.inv] + rx * (lat - np.log(alpha + data.t_x))
        return ll + weighted_sum(data.w, -rx * lat + np.logaddexp(a4, 0.0))

    @classmethod
    def loglik_grad(cls, params: Array, data: FitData) -> tuple[float, Array]:
        r, alpha, a, b = params
        u, wu, inv, w = data.ux, data.wu, data.inv, data.w
        gl, dg = special.gammaln, special.digamma
        ll = weighted_sum(wu, gl(r + u) - gl(r) + r * np.log(alpha))
        ll += weighted_sum(wu, gl(a + b) + gl(b + u + 1) - gl(b) - gl(a + b + u + 1))
        d_r = weighted_sum(wu, dg(r + u) - dg(r) + np.log(alpha))
        d_alpha = data.total * r / alpha
        d_a = weighted_sum(wu, dg(a + b) - dg(a + b + u + 1))
        d_b = weighted_sum(wu, dg(a + b) + dg(b + u + 1) - dg(b) - dg(a + b + u + 1))
        rx = r + data.x
        lat, lar = np.log(alpha + data.T), np.log(alpha + data.t_x)
        inv_b = 1.0 / (b + u)
        a4 = np.log(a * inv_b)[inv] + rx * (lat - lar)
        ll += weighted_sum(w, -rx * lat + np.logaddexp(a4, 0.0))
        s4 = special.expit(a4)
        d_r += weighted_sum(w, -lat + s4 * (lat - lar))
        d_alpha += weighted_sum(
            w, -rx / (alpha + data.T) + s4 * rx * (1 / (alpha + data.T) - 1 / (alpha + data.t_x))
        )
        ws4 = w * s4
        d_a += float(np.sum(ws4)) / a
        d_b -= weighted_sum(np.bincount(inv, weights=ws4, minlength=len(u)), inv_b)
        return ll, np.array([d_r, d_alpha, d_a, d_b]) * params

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        r, alpha, a, b = self._params()
        x = np.asarray(frequency, dtype=float)
        t_x, TT = np.asarray(recency, dtype=float), np.asarray(T, dtype=float)
        log_div = np.log(a / (b + x)) + (r + x) * np.log((alpha + TT) / (alpha + t_x))
        return np.asarray(special.expit(-log_div), dtype=float)

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        r, alpha, a, b = self._params()
        x = np.asarray(frequency, dtype=float)
        t_x, TT = np.asarray(recency, dtype=float), np.asarray(T, dtype=float)
        tt = np.asarray(t, dtype=float)
        hyp = hyp2f1(r + x, b + x + 1, a + b + x, tt / (alpha + TT + tt))
        first = (a + b + x) / (a - 1)
        second = 1 - hyp * ((alpha + TT) / (alpha + tt + TT)) ** (r + x)
        denom = 1 + (a / (b + x)) * ((alpha + TT) / (alpha + t_x)) ** (r + x)
        return np.asarray(first * second / denom, dtype=float)

    def expected_purchases_new(self, t: ArrayLike) -> Array:
        r, alpha, a, b = self._params()
        tt = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b + 1, a + b, tt / (alpha + tt))
        return np.asarray(b / (a - 1) * (1 - hyp * (alpha / (alpha + tt)) ** r))


__all__ = [
    "BetaGeo",
    "Compressed",
    "CountingModel",
    "FitData",
    "ModifiedBetaGeo",
    "compress",
]
