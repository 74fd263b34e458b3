"""Benchmark of the giving lens's best-plan simulation: N customers × 12 months × 10 plans.

Usage::

    PYTHONPATH=src .venv/bin/python bench/bench_giving.py                    # 1M customers
    PYTHONPATH=src .venv/bin/python bench/bench_giving.py --customers 100000
    PYTHONPATH=src .venv/bin/python bench/bench_giving.py --lens 100000      # + whole lens

Builds a synthetic dense usage array (minutes, messages, data MB; 90% of
customer-months observed) and ten tariffs (fees, allowances, overage prices,
data rounded up to the GB, some metrics unlimited), then times what the lens
does per customer: every month priced on every plan against the customer's own
plan (:func:`sawubona.lenses.giving.bills.compare`) and the choice of the
cheapest and like-for-like plans (:func:`~sawubona.lenses.giving.bills.choose`).

Baseline, measured in the same run: the same bills computed by a plain Python
loop per customer (on a sample, extrapolated to N) — the ratio is what
vectorising buys. Target (DESIGN.md §7, issue 5): 1M customers in ≤ 60 s on two
cores. Prints time and peak memory and appends to ``bench/RESULTS.md``.

``--lens N`` also generates a demo telco world of N customers, loads it and runs
the whole giving lens on it (generation and loading are not counted).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from results import append_result  # noqa: E402
from sawubona.lenses.giving.bills import Tariffs, choose, compare  # noqa: E402

METRICS = ("minutes", "messages", "data_mb")


def tariffs(n_plans: int = 10) -> Tariffs:
    """Ten plans from a small SIM-only to unlimited, with overage prices and GB rounding."""
    fee = np.linspace(7.5, 40.0, n_plans)
    data_gb = np.geomspace(2, 200, n_plans)
    allowance = np.column_stack(
        [
            np.where(np.arange(n_plans) < n_plans // 2, 250.0 * (1 + np.arange(n_plans)), np.inf),
            np.where(np.arange(n_plans) < n_plans // 3, 100.0 * (1 + np.arange(n_plans)), np.inf),
            np.where(np.arange(n_plans) < n_plans - 1, np.round(data_gb) * 1024, np.inf),
        ]
    )
    price = np.column_stack(
        [np.full(n_plans, 0.10), np.full(n_plans, 0.05), np.full(n_plans, 10 / 1024)]
    )
    step = np.column_stack([np.ones(n_plans), np.ones(n_plans), np.full(n_plans, 1024.0)])
    return Tariffs(
        plan_ids=[f"plan_{i}" for i in range(n_plans)],
        names=[f"Plan {i}" for i in range(n_plans)],
        fee=fee,
        metrics=METRICS,
        allowance=allowance,
        price=price,
        step=step,
        rounding=[{} for _ in range(n_plans)],
        open_now=np.ones(n_plans, bool),
        currency="GBP",
    )


def usage(n: int, months: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = rng.gamma(1.5, 1.0, (n, 1, 3)) * np.array([300.0, 80.0, 12000.0])
    u = np.rint(scale * rng.gamma(8.0, 1 / 8.0, (n, months, 3)) * 100) / 100
    u[:, :, :2] = np.rint(u[:, :, :2])
    observed = rng.random((n, months)) < 0.9
    return np.where(observed[:, :, None], u, 0.0), observed


def python_loop(u: np.ndarray, obs: np.ndarray, cur: np.ndarray, t: Tariffs) -> np.ndarray:
    """The baseline: the same totals with a Python loop per customer, month and plan."""
    out = np.zeros((len(u), t.n))
    for c in range(len(u)):
        for m in range(u.shape[1]):
            if not obs[c, m]:
                continue
            for p in range(t.n):
                bill = t.fee[p]
                for k in range(len(t.metrics)):
                    allow = t.allowance[p, k]
                    if math.isinf(allow):
                        continue
                    q = u[c, m, k]
                    s = t.step[p, k]
                    r = math.ceil(round(q, 6) / s) * s if s > 0 else q
                    bill += max(0.0, r - allow) * t.price[p, k]
                out[c, p] += bill
    return out


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def simulate(n: int, months: int, n_plans: int, seed: int) -> dict[str, float]:
    t = tariffs(n_plans)
    u, obs = usage(n, months, seed)
    rng = np.random.default_rng(seed + 1)
    # most customers on the plan whose data allowance fits their mean use, 15% on any plan
    fits = np.searchsorted(t.allowance[:, 2], u[:, :, 2].mean(axis=1))
    cur = np.where(rng.random(n) < 0.15, rng.integers(0, n_plans, n), np.minimum(fits, n_plans - 1))
    fee_paid = t.fee[cur] * np.where(rng.random(n) < 0.3, 1.148, 1.0)
    before = peak_gb()
    t0 = time.perf_counter()
    cmp = compare(u, obs, cur, fee_paid, t)
    ch = choose(cmp, cur, t, min_months=1, most_months_share=0.5, min_saving_per_year=10.0)
    secs = time.perf_counter() - t0
    k = min(n, 2000)
    t1 = time.perf_counter()
    loop = python_loop(u[:k], obs[:k], cur[:k], t)
    loop_secs = (time.perf_counter() - t1) * n / k
    assert np.allclose(loop, cmp.total[:k]), "vectorised totals differ from the Python loop"
    return {
        "customers": n,
        "seconds": secs,
        "loop_seconds": loop_secs,
        "switch_share": float((ch.cheapest >= 0).mean()),
        "input_gb": u.nbytes / 1024**3,
        "peak_gb": peak_gb(),
        "peak_before_gb": before,
    }


def whole_lens(n: int, seed: int) -> dict[str, float]:
    import sawubona
    from sawubona.analyze import _run_one, latest_event
    from sawubona.demo import generate
    from sawubona.lenses.giving import LENS

    with tempfile.TemporaryDirectory(prefix="sawubona-bench-giving-") as tmp:
        generate(Path(tmp) / "world", world="telco", size=n, seed=seed)
        store = sawubona.open(Path(tmp) / "bench.duckdb")
        store.ingest(Path(tmp) / "world")
        as_of = latest_event(store)
        assert as_of is not None
        t0 = time.perf_counter()
        report = _run_one(store, LENS, as_of, {})
        secs = time.perf_counter() - t0
        store.close()
    return {"customers": n, "seconds": secs, "lens_seconds": report.seconds, "peak_gb": peak_gb()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--plans", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lens", type=int, default=0, help="also run the whole lens on N customers")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args(argv)
    command = "PYTHONPATH=src .venv/bin/python bench/bench_giving.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    r = simulate(args.customers, args.months, args.plans, args.seed)
    cells = r["customers"] * args.months * args.plans
    lines = [
        f"best-plan simulation, {r['customers']:,} customers × {args.months} months × "
        f"{args.plans} plans: {r['seconds']:.1f} s ({cells / r['seconds'] / 1e6:.0f} M "
        f"bills/s; target ≤ 60 s for 1M)",
        f"baseline, a Python loop per customer (2,000 timed, extrapolated): "
        f"{r['loop_seconds']:.0f} s — vectorised is {r['loop_seconds'] / r['seconds']:.0f}× faster",
        f"peak RSS {r['peak_gb']:.2f} GB (usage input {r['input_gb']:.2f} GB; "
        f"{r['peak_before_gb']:.2f} GB before simulating); {r['switch_share']:.0%} of the "
        "synthetic customers would switch",
        f"machine shared with other busy processes: load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores at the end",
    ]
    if args.lens:
        w = whole_lens(args.lens, args.seed)
        lines.append(
            f"whole giving lens on a demo telco world of {w['customers']:,} customers "
            f"(loaded in DuckDB): {w['lens_seconds']:.1f} s in the lens, "
            f"{w['seconds']:.1f} s with writing results; peak RSS of the process (generating "
            f"and loading included) {w['peak_gb']:.2f} GB"
        )
    for line in lines:
        print(line)
    if not args.no_record:
        append_result("giving: best-plan simulation", command, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
