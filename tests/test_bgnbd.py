"""BG/NBD, MBG/NBD and Pareto/NBD against published CDNOW results, `lifetimes`, and
planted truth.

Oracles:

* Fader, Hardie & Lee (2005), "Counting your customers the easy way", Marketing
  Science 24(2): BG/NBD on the 2,357-customer CDNOW cohort, 39-week calibration,
  r = 0.243, α = 4.414, a = 0.793, b = 2.426, log-likelihood −9582.4.
* Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves for customer base
  analysis", JMR 42(4), and Fader & Hardie's note "Implementing the Pareto/NBD model
  given interval-censored data" (brucehardie.com note 008): Pareto/NBD on the same
  data, r = 0.553, α = 10.578, s = 0.606, β = 11.669, log-likelihood −9595.0.
* ``lifetimes`` 0.11.3, run in its own environment (``bench/reference_env.sh``) via
  ``bench/lifetimes_reference.py``; skipped, naming the missing environment, when absent.
* Parameters recovered from data simulated with known parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from sawubona.errors import SawubonaError
from sawubona.stats.bgnbd import BetaGeo, FitData, ModifiedBetaGeo, compress
from sawubona.stats.pareto_nbd import ParetoNBD

ROOT = Path(__file__).resolve().parents[1]
REF_VENV = Path(os.environ.get("SAWUBONA_REF_VENV", ROOT / "bench" / ".ref-venv"))
REF_SCRIPT = ROOT / "bench" / "lifetimes_reference.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))


# -- CDNOW ------------------------------------------------------------------------------------
def _datasets_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("SAWUBONA_CDNOW"):
        dirs.append(Path(os.environ["SAWUBONA_CDNOW"]).parent)
    dirs += sorted(REF_VENV.glob("lib/python*/site-packages/lifetimes/datasets"))
    dirs += [
        CACHE / "sawubona-acceptance" / "cdnow_whl" / "lifetimes" / "datasets",
        CACHE / "sawubona-tests" / "lifetimes" / "datasets",
    ]
    return dirs


@cache
def cdnow_dir() -> Path | None:
    """The ``lifetimes/datasets`` folder holding CDNOW_sample.txt (downloading the
    lifetimes 0.11.3 wheel from PyPI once if no copy is found)."""
    for d in _datasets_dirs():
        if (d / "CDNOW_sample.txt").is_file():
            return d
    dest = CACHE / "sawubona-tests"
    dest.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "lifetimes==0.11.3",
                "-d",
                str(dest),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    for f in dest.glob("[Ll]ifetimes-0.11.3*"):
        if f.suffix == ".whl":
            with zipfile.ZipFile(f) as z:
                z.extractall(dest, [n for n in z.namelist() if n.startswith("lifetimes/datasets")])
        elif f.name.endswith(".tar.gz"):
            with tarfile.open(f) as t:
                for m in t.getmembers():
                    if "/lifetimes/datasets/" in m.name:
                        m.name = m.name.split("/", 1)[1]
                        t.extract(m, dest, filter="data")
    d = dest / "lifetimes" / "datasets"
    return d if (d / "CDNOW_sample.txt").is_file() else None


def cdnow_sample() -> Path:
    d = cdnow_dir()
    if d is None:
        pytest.skip(
            "CDNOW_sample.txt not found: run bench/reference_env.sh or "
            "../shared/acceptance/cdnow.sh, or set SAWUBONA_CDNOW (PyPI download failed)"
        )
    return d / "CDNOW_sample.txt"


def cdnow_transactions() -> pd.DataFrame:
    """customer_id, date, value of every CDNOW sample transaction."""
    rows = [line.split() for line in cdnow_sample().read_text().splitlines() if line.strip()]
    return pd.DataFrame(
        {
            "customer_id": [r[1] for r in rows],
            "date": pd.to_datetime([r[2] for r in rows], format="%Y%m%d"),
            "value": [float(r[4]) for r in rows],
        }
    )


@cache
def cdnow_summary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks, calibration up to 1997-09-30, computed independently of
    sawubona's own summary (plain pandas)."""
    d = cdnow_transactions()
    cal = d[d.date <= "1997-09-30"].drop_duplicates(["customer_id", "date"])
    g = cal.groupby("customer_id").date
    first, last, n = g.min(), g.max(), g.nunique()
    x = (n - 1).to_numpy(dtype=float)
    t_x = (last - first).dt.days.to_numpy(dtype=float) / 7
    T = (pd.Timestamp("1997-09-30") - first).dt.days.to_numpy(dtype=float) / 7
    return x, t_x, T


PUBLISHED = {
    "bg/nbd": ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
    "pareto/nbd": ({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
}


@pytest.mark.parametrize("model", [BetaGeo, ParetoNBD], ids=["bg/nbd", "pareto/nbd"])
def test_cdnow_published_parameters(model: type) -> None:
    x, t_x, T = cdnow_summary()
    assert len(x) == 2357
    m = model().fit(x, t_x, T)
    params, ll = PUBLISHED[m.name]
    for k, v in params.items():  # the published three decimals
        assert round(m.params_[k], 3) == pytest.approx(v, abs=1e-9), (k, m.params_[k])
    assert round(m.log_likelihood_, 1) == pytest.approx(ll, abs=1e-9)
    assert m.converged_ and m.n_unique_ < len(x)


def test_cdnow_summary_matches_lifetimes_shipped_summary() -> None:
    shipped = cdnow_sample().parent / "cdnow_customers_summary.csv"
    if not shipped.is_file():
        pytest.skip(f"{shipped} not found")
    ref = pd.read_csv(shipped)
    x, t_x, T = cdnow_summary()
    assert np.array_equal(x, ref["frequency"].to_numpy(dtype=float))
    np.testing.assert_allclose(t_x, ref["recency"], atol=0.005 + 1e-12)
    np.testing.assert_allclose(T, ref["T"], atol=0.005 + 1e-12)


def test_units_change_alpha_and_likelihood_only_by_the_scale() -> None:
    x, t_x, T = cdnow_summary()
    week = BetaGeo().fit(x, t_x, T)
    day = BetaGeo().fit(x, t_x * 7, T * 7)
    assert day.params_["alpha"] == pytest.approx(7 * week.params_["alpha"], rel=1e-7)
    for k in ("r", "a", "b"):
        assert day.params_[k] == pytest.approx(week.params_[k], rel=1e-7)
    # a density in time: each repeat purchase time contributes a factor 1/7
    assert day.log_likelihood_ == pytest.approx(week.log_likelihood_ - x.sum() * np.log(7))
    np.testing.assert_allclose(day.p_alive(x, t_x * 7, T * 7), week.p_alive(x, t_x, T), rtol=1e-6)


@pytest.mark.parametrize("model", [BetaGeo, ModifiedBetaGeo])
def test_analytic_gradient_matches_finite_differences(model: type) -> None:
    x, t_x, T = cdnow_summary()
    c = compress(x, t_x, T)
    m = model()

    def f(log_p: np.ndarray) -> float:
        return float(np.dot(c.weights, m.loglik(np.exp(log_p), c.x, c.t_x, c.T)))

    data = FitData(c.x, c.t_x, c.T, c.weights)

    def g(log_p: np.ndarray) -> np.ndarray:
        got = m.loglik_grad(np.exp(log_p), data)
        assert got is not None
        assert got[0] == pytest.approx(f(log_p))
        return got[1]

    for point in (np.log([0.24, 4.4, 0.79, 2.4]), np.log([1.3, 0.7, 2.0, 0.6])):
        num = optimize.approx_fprime(point, f, 1e-7)
        np.testing.assert_allclose(g(point), num, rtol=2e-5, atol=1e-3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 40), st.integers(0, 20)),
        min_size=1,
        max_size=60,
    )
)
def test_compressed_likelihood_equals_per_customer(rows: list[tuple[int, int, int]]) -> None:
    x = np.array([r[0] for r in rows], dtype=float)
    t_x = np.array([r[1] if r[0] > 0 else 0 for r in rows], dtype=float)
    t_x = np.where(x > 0, np.maximum(t_x, 1), 0)
    T = t_x + np.array([r[2] for r in rows], dtype=float)
    c = compress(x, t_x, T)
    assert c.weights.sum() == len(x)
    np.testing.assert_array_equal(c.x[c.inverse], x)
    np.testing.assert_array_equal(c.T[c.inverse], T)
    for model, p in ((BetaGeo, [0.3, 4.0, 0.8, 2.4]), (ParetoNBD, [0.5, 10.0, 0.6, 12.0])):
        ll = model.loglik(np.array(p), x, t_x, T)
        llc = model.loglik(np.array(p), c.x, c.t_x, c.T)
        assert np.dot(c.weights, llc) == pytest.approx(ll.sum(), rel=1e-10)
    bg = BetaGeo().with_params(r=0.3, alpha=4.0, a=0.8, b=2.4)
    alive = bg.p_alive(x, t_x, T)
    assert np.all((alive > 0) & (alive <= 1)) and np.all(alive[x == 0] == 1)
    mbg = ModifiedBetaGeo().with_params(r=0.3, alpha=4.0, a=0.8, b=2.4)
    assert np.all(mbg.p_alive(x, t_x, T) < 1)


def test_input_checks_speak_the_users_words() -> None:
    with pytest.raises(SawubonaError, match="need 0 <= recency <= T"):
        BetaGeo().fit([1, 2], [5.0, 3.0], [4.0, 10.0])
    with pytest.raises(SawubonaError, match="has not been fitted"):
        BetaGeo().p_alive([1], [1], [2])
    with pytest.raises(SawubonaError, match="no customers"):
        BetaGeo().fit([], [], [])


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, T: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers observed for T after a first purchase at 0: Poisson(λ) purchases while
    alive, death after each repeat purchase with probability p (the BG/NBD story)."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    now = np.zeros(n)
    alive = np.ones(n, bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        now[idx] += rng.exponential(1 / lam[idx])
        bought = now[idx] <= T
        done = idx[~bought]
        alive[done] = False
        b_idx = idx[bought]
        x[b_idx] += 1
        t_x[b_idx] = now[b_idx]
        alive[b_idx[rng.random(len(b_idx)) < p[b_idx]]] = False
    return x, t_x, np.full(n, T)


def test_planted_parameters_are_recovered() -> None:
    truth = {"r": 0.8, "alpha": 5.0, "a": 0.6, "b": 3.0}
    x, t_x, T = simulate_bgnbd(30_000, *truth.values(), T=52.0, seed=1)
    m = BetaGeo().fit(x, t_x, T)
    for k, v in truth.items():
        # within four standard errors of the planted value, and the errors are honest
        assert abs(m.params_[k] - v) < 4 * m.standard_errors_[k], (k, m.params_, v)
        assert m.standard_errors_[k] < 0.25 * v
    # expected purchases of a new customer: E[X(t)] against the simulation
    assert m.expected_purchases_new(52.0) == pytest.approx(x.mean(), rel=0.05)


# -- lifetimes reference ----------------------------------------------------------------------
def ref_python() -> Path:
    py = REF_VENV / "bin" / "python"
    if not py.exists():
        pytest.skip(
            f"reference environment {REF_VENV} not found: run bench/reference_env.sh "
            "(lifetimes 0.11.3 in its own virtualenv)"
        )
    return py


@cache
def _reference_run(tmp: str) -> dict:
    x, t_x, T = cdnow_summary()
    models = {m.name: m().fit(x, t_x, T) for m in (BetaGeo, ModifiedBetaGeo, ParetoNBD)}
    d = Path(tmp)
    pd.DataFrame({"frequency": x, "recency": t_x, "T": T}).to_csv(d / "in.csv", index=False)
    (d / "params.json").write_text(json.dumps({k: m.params_ for k, m in models.items()}))
    subprocess.run(
        [
            str(ref_python()),
            str(REF_SCRIPT),
            "models",
            str(d / "in.csv"),
            str(d / "out.json"),
            "--horizon",
            "39",
            "--params",
            str(d / "params.json"),
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return {"ref": json.loads((d / "out.json").read_text()), "models": models}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    ref_python()
    return _reference_run(str(tmp_path_factory.mktemp("lifetimes")))


def rel(a: object, b: object) -> float:
    a_, b_ = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a_ - b_) / np.maximum(np.abs(b_), 1e-300)))


MODEL_NAMES = ["bg/nbd", "mbg/nbd", "pareto/nbd"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_formulas_equal_lifetimes_at_the_same_parameters(reference: dict, name: str) -> None:
    x, t_x, T = cdnow_summary()
    m, ref = reference["models"][name], reference["ref"][name]["at_given"]
    assert rel(m.p_alive(x, t_x, T), ref["p_alive"]) < 1e-9
    assert rel(m.expected_purchases(39.0, x, t_x, T), ref["expected"]) < 1e-9
    assert rel(m.expected_purchases_new([1.0, 10.0, 39.0, 78.0]), ref["new"]) < 1e-9
    assert m.log_likelihood_ == pytest.approx(ref["log_likelihood"], rel=1e-12)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fits_equal_lifetimes_run_to_convergence(reference: dict, name: str) -> None:
    """lifetimes' optimiser with a tight tolerance reaches the same maximum: parameters,
    and every customer's P(alive) and expected holdout purchases, within 1e-6 relative."""
    x, t_x, T = cdnow_summary()
    m, ref = reference["models"][name], reference["ref"][name]["tight"]
    assert rel([m.params_[k] for k in ref["params"]], list(ref["params"].values())) < 1e-6
    assert rel(m.p_alive(x, t_x, T), ref["p_alive"]) < 1e-6
    assert rel(m.expected_purchases(39.0, x, t_x, T), ref["expected"]) < 1e-6


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fits_at_least_as_good_as_lifetimes_defaults(reference: dict, name: str) -> None:
    """With its default tolerances lifetimes stops a little short (BG/NBD ~1e-7, Pareto/NBD's
    Nelder-Mead ~1e-4 relative); our maximum is never below its."""
    m, ref = reference["models"][name], reference["ref"][name]["default"]
    assert m.log_likelihood_ >= ref["log_likelihood"] - 1e-7
    assert rel([m.params_[k] for k in ref["params"]], list(ref["params"].values())) < 1e-3
