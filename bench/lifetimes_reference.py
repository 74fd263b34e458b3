"""The reference: ``lifetimes`` 0.11.3, run in its own environment (bench/reference_env.sh).

Never imported by sawubona; run as a subprocess with the reference interpreter::

    bench/.ref-venv/bin/python bench/lifetimes_reference.py models IN.csv OUT.json \
        --horizon 39 [--params PARAMS.json]
    bench/.ref-venv/bin/python bench/lifetimes_reference.py bench LOG.parquet OUT.json \
        --as-of 2024-12-31

``models``: IN.csv has columns frequency, recency, T (one row per customer). Fits
BG/NBD, MBG/NBD and Pareto/NBD twice — with lifetimes' defaults (``default``) and
with its optimiser run to convergence (``tight``) — and writes for each fit its
parameters, total log-likelihood, and per customer P(alive) and expected purchases
in ``--horizon``; with ``--params`` (a JSON {model: {param: value}}) the same at
the given parameters (``at_given``), so formulas and fits are compared separately.

``bench``: LOG (.parquet or .csv) has columns customer_id, date; times
``summary_data_from_transaction_data`` + ``BetaGeoFitter.fit`` +
``conditional_probability_alive`` (days), and reports seconds and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _fitters() -> dict[str, type]:
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    return {
        "bg/nbd": BetaGeoFitter,
        "mbg/nbd": ModifiedBetaGeoFitter,
        "pareto/nbd": ParetoNBDFitter,
    }


def _total_ll(name: str, fitter: object, f: np.ndarray, r: np.ndarray, T: np.ndarray) -> float:
    from lifetimes import ParetoNBDFitter

    p = fitter.params_  # type: ignore[attr-defined]
    if name == "pareto/nbd":
        params = [p["r"], p["alpha"], p["s"], p["beta"]]
        return float(ParetoNBDFitter._conditional_log_likelihood(params, f, r, T).sum())
    log_p = np.log([p["r"], p["alpha"], p["a"], p["b"]])
    nll = type(fitter)._negative_log_likelihood(log_p, f, r, T, np.ones_like(f), 0.0)
    return float(-nll * len(f))


#: times at which the unconditional E[X(t)] is compared
NEW_TIMES = (1.0, 10.0, 39.0, 78.0)


def _predict(fitter: object, horizon: float, f: np.ndarray, r: np.ndarray, T: np.ndarray) -> dict:
    new = [float(fitter.expected_number_of_purchases_up_to_time(t)) for t in NEW_TIMES]  # type: ignore[attr-defined]
    alive = fitter.conditional_probability_alive(f, r, T)  # type: ignore[attr-defined]
    expected = fitter.conditional_expected_number_of_purchases_up_to_time(  # type: ignore[attr-defined]
        horizon, f, r, T
    )
    return {
        "p_alive": np.asarray(alive, dtype=float).tolist(),
        "expected": np.asarray(expected, dtype=float).tolist(),
        "new": new,
    }


#: lifetimes' optimiser run to convergence (its defaults stop at tol=1e-7 for BG/NBD and
#: MBG/NBD and at a Nelder-Mead tol=1e-4 for Pareto/NBD)
TIGHT: dict[str, dict] = {
    "bg/nbd": {"tol": 1e-12},
    "mbg/nbd": {"tol": 1e-12},
    "pareto/nbd": {"tol": 1e-10, "maxiter": 20000},
}


def models(inp: str, out: str, horizon: float, params_path: str | None) -> None:
    d = pd.read_csv(inp)
    f, r, T = (d[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    given: dict = {}
    if params_path:
        with open(params_path) as fh:
            given = json.load(fh)
    result: dict[str, dict] = {}
    for name, cls in _fitters().items():
        entry: dict = {}
        for label, options in (("default", {}), ("tight", TIGHT[name])):
            t0 = time.perf_counter()
            fitter = cls().fit(f.astype(int), r, T, **options)
            entry[label] = {
                "params": {k: float(v) for k, v in fitter.params_.items()},
                "log_likelihood": _total_ll(name, fitter, f, r, T),
                "seconds": time.perf_counter() - t0,
                **_predict(fitter, horizon, f, r, T),
            }
        if name in given:
            fixed = cls()
            fixed.params_ = pd.Series(given[name])
            entry["at_given"] = {
                "log_likelihood": _total_ll(name, fixed, f, r, T),
                **_predict(fixed, horizon, f, r, T),
            }
        result[name] = entry
    with open(out, "w") as fh:
        json.dump(result, fh)


def bench(inp: str, out: str, as_of: str) -> None:
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    def cpu() -> float:
        return sum(resource.getrusage(resource.RUSAGE_SELF)[:2])

    t0 = time.perf_counter()
    if inp.endswith(".parquet"):
        log = pd.read_parquet(inp)
    else:
        log = pd.read_csv(inp, dtype={"customer_id": str}, parse_dates=["date"])
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    c1 = cpu()
    summary = summary_data_from_transaction_data(
        log, "customer_id", "date", observation_period_end=as_of, freq="D"
    )
    t_summary = time.perf_counter() - t1
    t2 = time.perf_counter()
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    t_fit = time.perf_counter() - t2
    t3 = time.perf_counter()
    alive = bgf.conditional_probability_alive(
        summary["frequency"], summary["recency"], summary["T"]
    )
    t_alive = time.perf_counter() - t3
    cpu_s = cpu() - c1
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(out, "w") as fh:
        json.dump(
            {
                "read_s": t_read,
                "summary_s": t_summary,
                "fit_s": t_fit,
                "p_alive_s": t_alive,
                "total_s": t_summary + t_fit + t_alive,
                "cpu_s": cpu_s,
                "peak_mb": peak_kb / 1024,
                "customers": len(summary),
                "params": {k: float(v) for k, v in bgf.params_.items()},
                "mean_p_alive": float(np.mean(alive)),
            },
            fh,
        )


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["models", "bench"])
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--horizon", type=float, default=39.0)
    ap.add_argument("--params")
    ap.add_argument("--as-of")
    a = ap.parse_args(argv)
    if a.mode == "models":
        models(a.inp, a.out, a.horizon, a.params)
    else:
        bench(a.inp, a.out, a.as_of)


if __name__ == "__main__":
    main(sys.argv[1:])
