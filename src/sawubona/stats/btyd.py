"""What the buy-till-you-die models share: the compressed summary and the fitting.

Each customer is summarised by ``x`` (repeat purchases: purchase periods after the
first), ``t_x`` (time of the last purchase, from the first) and ``T`` (age: time
from the first purchase to the end of calibration), all in one time unit. The
models (:mod:`.bgnbd`: BG/NBD and MBG/NBD; :mod:`.pareto_nbd`) give a per-row
log-likelihood and, where they can, its gradient; :class:`CountingModel` does the
rest.

Fitting is maximum likelihood in log-parameter space on the summary compressed to
its unique (x, t_x, T) rows with counts (as Fader and Hardie do). Times are scaled
so the largest T is 10 while fitting (as ``lifetimes`` does) and α (β) scaled back
after. With an analytic gradient: L-BFGS-B, then Newton steps on a finite-difference
Hessian of the gradient until the gradient is at machine precision; on large data
the search runs on a weighted sample of the rows (Horvitz–Thompson) and only the
Newton steps pass over all of them, and the terms of x alone (lnΓ, ψ) are computed
once per distinct x. Without one (Pareto/NBD): L-BFGS-B on central differences,
within an evaluation budget. Standard errors come from the inverse Hessian (delta
method from log-parameters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from sawubona.errors import SawubonaError

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: log-parameters are searched in [−LOG_BOUND, LOG_BOUND] (time scaled so max T = 10)
LOG_BOUND = 12.0
#: above this many unique rows, a fit on a random subset of them gives the starting point
WARM_START_ROWS = 20_000


@dataclass(frozen=True)
class Compressed:
    """Unique (x, t_x, T) rows with their counts, and each input row's unique row."""

    x: Array
    t_x: Array
    T: Array
    weights: Array
    inverse: npt.NDArray[np.intp]


def compress(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> Compressed:
    """Compress per-customer summaries to unique (x, t_x, T) rows with counts."""
    xs, ts, Ts = (np.asarray(v, dtype=float).ravel() for v in (x, t_x, T))
    n = len(xs)
    if n == 0:
        e = np.zeros(0)
        return Compressed(e, e, e, e, np.zeros(0, np.intp))
    whole = all(
        v.min() >= 0 and v.max() < 2**20 and np.array_equal(v, np.floor(v)) for v in (xs, ts, Ts)
    )
    if whole:  # whole days: one int64 key per row, one sort
        key = (xs.astype(np.int64) << 40) | (ts.astype(np.int64) << 20) | Ts.astype(np.int64)
        uk, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        return Compressed(
            (uk >> 40).astype(float),
            ((uk >> 20) & (2**20 - 1)).astype(float),
            (uk & (2**20 - 1)).astype(float),
            counts.astype(float),
            inverse.astype(np.intp),
        )
    order = np.lexsort((Ts, ts, xs))
    xo, to, To = xs[order], ts[order], Ts[order]
    new = np.empty(n, bool)
    new[0] = True
    new[1:] = (xo[1:] != xo[:-1]) | (to[1:] != to[:-1]) | (To[1:] != To[:-1])
    group = np.cumsum(new) - 1
    inverse = np.empty(n, np.intp)
    inverse[order] = group
    starts = np.flatnonzero(new)
    weights = np.diff(np.r_[starts, n]).astype(float)
    return Compressed(xo[starts], to[starts], To[starts], weights, inverse)


class FitData:
    """Compressed rows prepared for repeated likelihood evaluations: the distinct
    frequencies (``ux``), each row's index into them (``inv``) and the weight of each
    distinct frequency (``wu``), so that terms depending on x alone (lnΓ, ψ) are computed
    once per distinct x rather than once per row."""

    def __init__(self, x: Array, t_x: Array, T: Array, w: Array) -> None:
        self.x, self.t_x, self.T, self.w = x, t_x, T, w
        self.ux, inv = np.unique(x, return_inverse=True)
        self.inv = inv.astype(np.intp)
        self.wu: Array = np.bincount(self.inv, weights=w, minlength=len(self.ux)).astype(float)
        self.total = float(w.sum())

    def __len__(self) -> int:
        return len(self.x)

    def sample(self, size: int, seed: int = 0) -> FitData:
        """About ``size`` rows standing for all: each row is kept with probability
        proportional to its weight (at most 1) and reweighted by its inverse
        (Horvitz–Thompson), so rows of many customers are always kept."""
        lo, hi = size / self.total, size / max(float(self.w.min()), 1e-12)
        for _ in range(60):  # inclusion scale c with Σ min(1, c·w) ≈ size
            c = (lo + hi) / 2
            if np.minimum(1.0, c * self.w).sum() > size:
                hi = c
            else:
                lo = c
        p = np.minimum(1.0, lo * self.w)
        rows = np.flatnonzero(np.random.default_rng(seed).random(len(self.w)) < p)
        return FitData(self.x[rows], self.t_x[rows], self.T[rows], self.w[rows] / p[rows])


def weighted_sum(w: npt.NDArray[Any], v: npt.NDArray[Any]) -> float:
    """Σ w·v without BLAS (its threads only add contention for one short vector)."""
    return float(np.sum(w * v))


def check_summary(x: Array, t_x: Array, T: Array) -> None:
    """Input checks in the user's words."""
    if not (len(x) == len(t_x) == len(T)):
        raise SawubonaError("frequency, recency and T must have the same length")
    if len(x) == 0:
        raise SawubonaError("no customers to fit: the summary is empty")
    bad = int(np.sum((x < 0) | (t_x < 0) | (t_x > T + 1e-9) | ~np.isfinite(x + t_x + T)))
    if bad:
        raise SawubonaError(
            f"{bad} customers have an impossible summary (need 0 <= recency <= T, frequency >= 0)"
        )
    zero_rec = int(np.sum((x > 0) & (t_x <= 0)))
    if zero_rec:
        raise SawubonaError(f"{zero_rec} customers have repeat purchases but recency 0")


def hyp2f1(a: Array, b: Array, c: Array, z: Array) -> Array:
    """Gauss's ₂F₁ for real arguments; where SciPy overflows, Euler's transformation
    ₂F₁(a,b;c;z) = (1−z)^(c−a−b) ₂F₁(c−a, c−b; c; z) (as ``lifetimes`` does)."""
    with np.errstate(all="ignore"):
        out = special.hyp2f1(a, b, c, z)
        bad = ~np.isfinite(out)
        if np.any(bad):
            a_, b_, c_, z_ = np.broadcast_arrays(a, b, c, z)
            alt = special.hyp2f1(c_ - a_, c_ - b_, c_, z_) * (1 - z_) ** (c_ - a_ - b_)
            out = np.where(bad, alt, out)
    return np.asarray(out, dtype=float)


def log_hyp2f1(a: Array, b: Array, c: Array, z: Array) -> Array:
    """ln ₂F₁(a,b;c;z) for 0 ≤ z < 1 and a series of positive terms; where SciPy's value is
    not finite, Euler's transformation taken in logs:
    (c−a−b) ln(1−z) + ln ₂F₁(c−a, c−b; c; z)."""
    with np.errstate(all="ignore"):
        direct = special.hyp2f1(a, b, c, z)
        out = np.log(direct)
        bad = ~np.isfinite(out)
        if np.any(bad):
            a_, b_, c_, z_ = (np.broadcast_to(v, out.shape)[bad] for v in (a, b, c, z))
            alt = (c_ - a_ - b_) * np.log1p(-z_) + np.log(special.hyp2f1(c_ - a_, c_ - b_, c_, z_))
            out = np.array(out, dtype=float)
            out[bad] = alt
    return np.asarray(out, dtype=float)


class CountingModel:
    """Shared fitting machinery; subclasses give the log-likelihood and predictions."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    param_names: ClassVar[tuple[str, ...]] = ()
    #: parameters measured in time units (scaled while fitting)
    time_params: ClassVar[tuple[str, ...]] = ("alpha",)
    #: the model gives its gradient (else central differences, and a bounded search)
    analytic_gradient: ClassVar[bool] = True
    #: objective evaluations allowed to a numeric-gradient search (each costs 2k + 1
    #: likelihoods)
    max_evaluations: ClassVar[int] = 150

    def __init__(self) -> None:
        self.params_: dict[str, float] = {}
        self.log_likelihood_: float = float("nan")
        self.standard_errors_: dict[str, float] = {}
        self.n_customers_: int = 0
        self.n_unique_: int = 0
        self.converged_: bool = False
        self.iterations_: int = 0
        #: parameters that ran to the search bound (e.g. Pareto/NBD's s, β → ∞ when
        #: lifetimes are nearly homogeneous)
        self.at_bound_: list[str] = []

    # -- to be provided by subclasses -------------------------------------------------
    @staticmethod
    def loglik(params: Array, x: Array, t_x: Array, T: Array) -> Array:
        """Per-row log-likelihood at ``params`` (natural scale)."""
        raise NotImplementedError

    @classmethod
    def loglik_grad(cls, params: Array, data: FitData) -> tuple[float, Array] | None:
        """Σ w·ln L and its gradient with respect to the log-parameters, or None."""
        return None

    @classmethod
    def loglik_total(cls, params: Array, data: FitData) -> float:
        """Σ w·ln L (subclasses may compute the terms of x alone once per distinct x)."""
        return weighted_sum(data.w, cls.loglik(params, data.x, data.t_x, data.T))

    # -- fitting ------------------------------------------------------------------------
    def _params(self) -> Array:
        if not self.params_:
            raise SawubonaError(f"the {self.title} model has not been fitted yet; call fit()")
        return np.array([self.params_[p] for p in self.param_names])

    def with_params(self, **params: float) -> CountingModel:
        """Set the parameters directly (e.g. published values) instead of fitting."""
        missing = [p for p in self.param_names if p not in params]
        if missing:
            raise SawubonaError(f"{self.title} needs {', '.join(missing)}")
        self.params_ = {p: float(params[p]) for p in self.param_names}
        return self

    def _objective(self, log_p: Array, data: FitData) -> tuple[float, Array]:
        got = self.loglik_grad(np.exp(log_p), data) if self.analytic_gradient else None
        if got is None:
            value = self._sum_ll(log_p, data)
            grad = self._numeric_grad(log_p, data)
        else:
            value, grad = got
        if not np.isfinite(value) or value <= -1e299:
            return 1e10, np.zeros_like(log_p)
        return -value / data.total, -grad / data.total

    def _sum_ll(self, log_p: Array, data: FitData) -> float:
        with np.errstate(all="ignore"):
            v = self.loglik_total(np.exp(log_p), data)
        return v if np.isfinite(v) else -1e300

    def _value_and_gradient(self, log_p: Array, data: FitData) -> tuple[float, Array]:
        got = self.loglik_grad(np.exp(log_p), data) if self.analytic_gradient else None
        if got is None:
            return self._sum_ll(log_p, data), self._numeric_grad(log_p, data)
        value = got[0] if np.isfinite(got[0]) else -1e300
        return value, got[1]

    def _numeric_grad(self, log_p: Array, data: FitData) -> Array:
        h = 1e-5
        g = np.empty_like(log_p)
        for i in range(len(log_p)):
            e = np.zeros_like(log_p)
            e[i] = h
            g[i] = (self._sum_ll(log_p + e, data) - self._sum_ll(log_p - e, data)) / (2 * h)
        return g

    def _gradient(self, log_p: Array, data: FitData) -> Array:
        got = self.loglik_grad(np.exp(log_p), data) if self.analytic_gradient else None
        return got[1] if got is not None else self._numeric_grad(log_p, data)

    def _hessian(self, log_p: Array, data: FitData, grad: Array | None = None) -> Array:
        """Hessian of Σ w·ln L in log-parameters: differences of the analytic gradient
        (forward from ``grad`` when given, else central), or second differences of the
        function (numeric-gradient models)."""
        k = len(log_p)
        H = np.empty((k, k))
        if self.analytic_gradient:
            for i in range(k):
                e = np.zeros(k)
                if grad is not None:
                    e[i] = 1e-6
                    H[:, i] = (self._gradient(log_p + e, data) - grad) / 1e-6
                else:
                    e[i] = 1e-4
                    H[:, i] = (
                        self._gradient(log_p + e, data) - self._gradient(log_p - e, data)
                    ) / 2e-4
            return (H + H.T) / 2
        h = 1e-3
        f0 = self._sum_ll(log_p, data)
        eye = np.eye(k) * h
        f_plus = [self._sum_ll(log_p + eye[i], data) for i in range(k)]
        f_minus = [self._sum_ll(log_p - eye[i], data) for i in range(k)]
        for i in range(k):
            H[i, i] = (f_plus[i] - 2 * f0 + f_minus[i]) / h**2
            for j in range(i + 1, k):
                pp = self._sum_ll(log_p + eye[i] + eye[j], data)
                pm = self._sum_ll(log_p + eye[i] - eye[j], data)
                mp = self._sum_ll(log_p - eye[i] + eye[j], data)
                mm = self._sum_ll(log_p - eye[i] - eye[j], data)
                H[i, j] = H[j, i] = (pp - pm - mp + mm) / (4 * h**2)
        return H

    def _start(self) -> Array:
        return np.zeros(len(self.param_names))

    def _maximise(self, start: Array, data: FitData) -> tuple[Array, int, Array]:
        """The maximum-likelihood log-parameters, the iterations taken, and the Hessian.

        Large data (analytic gradient): the search runs on a random subset of the rows
        (reweighted) and Newton steps with the full data's Hessian finish the job —
        a handful of full passes. Otherwise, or if that fails: L-BFGS-B on all rows,
        then Newton steps with one Hessian to converge to machine precision."""
        iterations = 0
        if self.analytic_gradient and len(data) > WARM_START_ROWS:
            warm = self._search(start, data.sample(WARM_START_ROWS))
            log_p = np.asarray(warm.x, dtype=float)
            H = self._hessian(log_p, data, self._gradient(log_p, data))
            log_p, steps, done = self._newton(log_p, H, data, 10)
            iterations += int(warm.nit) + steps
            if done:
                self.at_bound_ = []
                return log_p, iterations, H
            start = log_p
        best = self._search(start, data)
        log_p = np.asarray(best.x, dtype=float)
        iterations += int(best.nit)
        self.at_bound_ = [
            p for p, v in zip(self.param_names, log_p, strict=True) if abs(v) > LOG_BOUND - 1e-3
        ]
        H = self._hessian(log_p, data)
        if self.analytic_gradient and not self.at_bound_:
            log_p, steps, _ = self._newton(log_p, H, data, 5)
            iterations += steps
        return log_p, iterations, H

    def _newton(
        self, log_p: Array, H: Array, data: FitData, max_steps: int
    ) -> tuple[Array, int, bool]:
        """Newton steps while they improve the likelihood (one value-and-gradient pass per
        step; the Hessian is refreshed when a step gains less than tenfold); whether the
        gradient ended at machine precision."""
        steps = 0
        value, g = self._value_and_gradient(log_p, data)
        for _ in range(max_steps):
            size = np.max(np.abs(g))
            if size / data.total < 1e-10:
                return log_p, steps, True
            try:
                step = np.linalg.solve(H, g)
            except np.linalg.LinAlgError:
                break
            trial = log_p - step
            if np.max(np.abs(trial)) > LOG_BOUND:
                break
            v2, g2 = self._value_and_gradient(trial, data)
            if v2 + 1e-9 * data.total < value:
                break
            log_p, value, g = trial, v2, g2
            steps += 1
            if np.max(np.abs(g)) > 0.1 * size and self.analytic_gradient:
                H = self._hessian(log_p, data, g)
        return log_p, steps, bool(np.max(np.abs(g)) / data.total < 1e-9)

    def _search(self, start: Array, data: FitData) -> optimize.OptimizeResult:
        """L-BFGS-B on the mean negative log-likelihood in log-parameters, restarted from
        other points when it stops short (analytic-gradient models)."""
        best: optimize.OptimizeResult | None = None
        bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
        options: dict[str, float] = {"gtol": 1e-10, "ftol": 1e-15, "maxiter": 1000, "maxcor": 20}
        if not self.analytic_gradient:
            options["maxfun"] = self.max_evaluations
        for x0 in (start, np.full(len(start), 0.1), np.full(len(start), -0.5)):
            res = optimize.minimize(
                self._objective,
                x0,
                args=(data,),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options=options,
            )
            if best is None or res.fun < best.fun:
                best = res
            if np.isfinite(res.fun) and (
                np.max(np.abs(res.jac)) < 1e-4 or not self.analytic_gradient
            ):
                break
        assert best is not None
        return best

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        initial: dict[str, float] | None = None,
    ) -> CountingModel:
        """Maximum-likelihood fit on per-customer (or already compressed, with
        ``weights``) frequency, recency and T; returns ``self``."""
        x = np.asarray(frequency, dtype=float).ravel()
        t_x = np.asarray(recency, dtype=float).ravel()
        TT = np.asarray(T, dtype=float).ravel()
        check_summary(x, t_x, TT)
        if weights is None:
            c = compress(x, t_x, TT)
            x, t_x, TT, w = c.x, c.t_x, c.T, c.weights
        else:
            w = np.asarray(weights, dtype=float).ravel()
        scale = 10.0 / float(np.max(TT)) if np.max(TT) > 0 else 1.0
        data = FitData(x, t_x * scale, TT * scale, w)
        total = data.total
        is_time = np.array([p in self.time_params for p in self.param_names])
        if initial:
            start = np.log([initial[p] for p in self.param_names]) + is_time * np.log(scale)
        else:
            start = self._start()
        log_p, iterations, H = self._maximise(start, data)
        grad = self._gradient(log_p, data)
        self.converged_ = bool(np.max(np.abs(grad)) / total < 1e-6) and not self.at_bound_
        self.iterations_ = iterations
        params = np.exp(log_p - is_time * np.log(scale))
        self.params_ = {p: float(v) for p, v in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = self._sum_ll(log_p, data) + self._scale_correction(x, w, scale)
        try:
            cov = np.linalg.inv(-H)
            se_log = np.sqrt(np.clip(np.diag(cov), 0, None))
        except np.linalg.LinAlgError:
            se_log = np.full(len(params), np.nan)
        self.standard_errors_ = {
            p: float(v * s) for p, v, s in zip(self.param_names, params, se_log, strict=True)
        }
        self.n_customers_ = int(total)
        self.n_unique_ = len(x)
        return self

    def _scale_correction(self, x: Array, w: Array, scale: float) -> float:
        """The log-likelihood in the caller's time unit: a density in time changes by
        ``scale`` per observed purchase time (x per customer; each is a density)."""
        return weighted_sum(w, x) * float(np.log(scale))

    # -- results --------------------------------------------------------------------------
    def log_likelihood(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """Per-customer log-likelihood at the fitted parameters."""
        return self.loglik(
            self._params(),
            np.asarray(frequency, dtype=float),
            np.asarray(recency, dtype=float),
            np.asarray(T, dtype=float),
        )

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        raise NotImplementedError

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        """Expected purchases in the next ``t`` given the history (x, t_x, T)."""
        raise NotImplementedError

    def expected_purchases_new(self, t: ArrayLike) -> Array:
        """E[X(t)]: expected repeat purchases in ``t`` of a new customer."""
        raise NotImplementedError

    def summary(self) -> dict[str, float]:
        out = dict(self.params_)
        out["log_likelihood"] = self.log_likelihood_
        return out


__all__ = [
    "LOG_BOUND",
    "WARM_START_ROWS",
    "Array",
    "ArrayLike",
    "Compressed",
    "CountingModel",
    "FitData",
    "check_summary",
    "compress",
    "hyp2f1",
    "log_hyp2f1",
    "weighted_sum",
]
