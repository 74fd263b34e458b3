"""Fitting the probability-alive models on the compressed summary, and their holdout check.

The models (:mod:`sawubona.stats.bgnbd`, :mod:`sawubona.stats.pareto_nbd`) are
fitted on the unique (x, t_x, T) rows with counts computed in the store; the
per-customer figures (P(alive), expected purchases) are then evaluated on the
per-customer arrays. Times are converted from days to the lens's time unit
(``week`` = 7 days, ``day``).

Holdout check: when the data goes on after ``as_of``, the purchase days of each
calibration customer in (as_of day, as_of day + horizon] (cut at the last day in
the data) are compared with each model's expectation for that period — totals,
per-customer error, and the conditional expectations by calibration frequency
(Fader, Hardie & Lee 2005, fig. 4).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sawubona.errors import SawubonaError
from sawubona.stats.bgnbd import BetaGeo, ModifiedBetaGeo
from sawubona.stats.btyd import CountingModel, compress
from sawubona.stats.pareto_nbd import ParetoNBD

Array = npt.NDArray[np.float64]

MODELS: dict[str, type[CountingModel]] = {
    "bg/nbd": BetaGeo,
    "mbg/nbd": ModifiedBetaGeo,
    "pareto/nbd": ParetoNBD,
}
_ALIASES = {
    "bg": "bg/nbd",
    "bgnbd": "bg/nbd",
    "bg/nbd": "bg/nbd",
    "mbg": "mbg/nbd",
    "mbgnbd": "mbg/nbd",
    "mbg/nbd": "mbg/nbd",
    "pareto": "pareto/nbd",
    "paretonbd": "pareto/nbd",
    "pareto/nbd": "pareto/nbd",
}
UNIT_DAYS = {"week": 7.0, "day": 1.0}
#: Pareto/NBD's gradient is numeric (₂F₁ in the likelihood): above this many unique
#: (x, t_x, T) rows it is skipped, with a note, to keep the lens fast on large data.
PARETO_MAX_ROWS = 100_000
FREQUENCY_BUCKETS = 7  # 0..6 and "7+"


def model_names(text: str) -> list[str]:
    """Model names from a setting such as ``"bg/nbd, pareto"``."""
    names = []
    for part in text.replace(";", ",").split(","):
        key = part.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
        if not key:
            continue
        if key not in _ALIASES:
            raise SawubonaError(
                f"unknown drift model {part.strip()!r}; use bg/nbd, mbg/nbd or pareto/nbd"
            )
        if _ALIASES[key] not in names:
            names.append(_ALIASES[key])
    return names


def unit_days(unit: str) -> float:
    if unit not in UNIT_DAYS:
        raise SawubonaError(f"drift.time_unit {unit!r} is not known; use week or day")
    return UNIT_DAYS[unit]


def compress_days(
    freq: Array, rec_days: Array, age_days: Array
) -> tuple[Array, Array, Array, Array]:
    """Unique (x, t_x, T) rows in days, with their customer counts."""
    c = compress(freq, rec_days, age_days)
    return c.x, c.t_x, c.T, c.weights


@dataclass
class Fitted:
    name: str
    model: CountingModel | None
    seconds: float = 0.0
    note: str = ""


def fit_models(
    names: list[str], freq: Array, rec_days: Array, age_days: Array, weights: Array, unit: float
) -> list[Fitted]:
    """Fit each named model on compressed rows (days converted to the unit)."""
    out = []
    for name in names:
        if name == "pareto/nbd" and len(freq) > PARETO_MAX_ROWS:
            out.append(
                Fitted(
                    name,
                    None,
                    note=f"pareto/nbd skipped: {len(freq):,} distinct (x, t_x, T) rows "
                    f"(limit {PARETO_MAX_ROWS:,}); use week as the time unit or fit bg/nbd",
                )
            )
            continue
        t0 = time.perf_counter()
        try:
            model = MODELS[name]().fit(freq, rec_days / unit, age_days / unit, weights)
        except (SawubonaError, FloatingPointError, ValueError, np.linalg.LinAlgError) as exc:
            out.append(Fitted(name, None, time.perf_counter() - t0, f"{name} not fitted: {exc}"))
            continue
        note = "" if model.converged_ else f"{name}: the optimiser did not fully converge"
        out.append(Fitted(name, model, time.perf_counter() - t0, note))
    return out


@dataclass
class Holdout:
    """Actual purchase days per calibration customer in the holdout period."""

    actual: Array
    length_days: int
    start_day: int
    end_day: int
    predicted: dict[str, Array] = field(default_factory=dict)


def model_table(
    fitted: list[Fitted], unit: str, holdout: Holdout | None, as_of_text: str
) -> pa.Table:
    """``drift_model`` in long form: one row per (model, figure)."""
    rows: list[dict[str, object]] = []

    def add(f: Fitted, kind: str, param: str, value: float, se: float | None = None) -> None:
        assert f.model is not None
        rows.append(
            {
                "model": f.name,
                "title": f.model.title,
                "kind": kind,
                "param": param,
                "value": float(value),
                "std_error": None if se is None else float(se),
                "time_unit": unit,
                "as_of": as_of_text,
            }
        )

    for f in fitted:
        m = f.model
        if m is None:
            continue
        for p, v in m.params_.items():
            add(f, "parameter", p, v, m.standard_errors_.get(p))
        add(f, "fit", "log_likelihood", m.log_likelihood_)
        add(f, "fit", "customers", m.n_customers_)
        add(f, "fit", "unique_rows", m.n_unique_)
        add(f, "fit", "converged", float(m.converged_))
        add(f, "fit", "seconds", f.seconds)
        if holdout is not None and f.name in holdout.predicted:
            pred = holdout.predicted[f.name]
            act = holdout.actual
            add(f, "holdout", "holdout_length", holdout.length_days / UNIT_DAYS[unit])
            add(f, "holdout", "actual_purchases", float(act.sum()))
            add(f, "holdout", "predicted_purchases", float(pred.sum()))
            add(f, "holdout", "mean_absolute_error", float(np.mean(np.abs(pred - act))))
            add(f, "holdout", "rmse", float(np.sqrt(np.mean((pred - act) ** 2))))
            if np.std(act) > 0 and np.std(pred) > 0:
                add(f, "holdout", "correlation", float(np.corrcoef(pred, act)[0, 1]))
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("title", pa.string()),
            ("kind", pa.string()),
            ("param", pa.string()),
            ("value", pa.float64()),
            ("std_error", pa.float64()),
            ("time_unit", pa.string()),
            ("as_of", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def holdout_table(holdout: Holdout, frequency: Array) -> pa.Table:
    """``drift_holdout``: mean actual and predicted holdout purchases by calibration
    frequency (0..6, 7+), per model."""
    bucket = np.minimum(frequency.astype(int), FREQUENCY_BUCKETS)
    labels = [str(i) for i in range(FREQUENCY_BUCKETS)] + [f"{FREQUENCY_BUCKETS}+"]
    rows = []
    for name, pred in holdout.predicted.items():
        for b, label in enumerate(labels):
            sel = bucket == b
            n = int(sel.sum())
            if n == 0:
                continue
            rows.append(
                {
                    "model": name,
                    "frequency": label,
                    "customers": n,
                    "actual_mean": float(holdout.actual[sel].mean()),
                    "predicted_mean": float(pred[sel].mean()),
                    "actual_total": float(holdout.actual[sel].sum()),
                    "predicted_total": float(pred[sel].sum()),
                }
            )
    schema = pa.schema(
        [
            ("model", pa.string()),
            ("frequency", pa.string()),
            ("customers", pa.int64()),
            ("actual_mean", pa.float64()),
            ("predicted_mean", pa.float64()),
            ("actual_total", pa.float64()),
            ("predicted_total", pa.float64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
