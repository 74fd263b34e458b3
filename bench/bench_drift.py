"""Drift fitting against ``lifetimes`` on the same transaction log (DESIGN.md §7).

Generates a BG/NBD transaction log once (default 1,000,000 customers, about 10 M
transactions, Parquet: ``customer_id``, ``date`` — what lifetimes' summary reads; with
no value column the lens's summary sums none), then measures, each in
a fresh process so that peak memory belongs to one side only:

* **sawubona** — the drift lens's path: the Ibis summary (DuckDB reading the
  Parquet file) → unique (x, t_x, T) rows → BG/NBD fit → P(alive) for every
  customer;
* **lifetimes** 0.11.3 (in ``bench/.ref-venv``, made by ``bench/reference_env.sh``) —
  ``summary_data_from_transaction_data`` + ``BetaGeoFitter.fit`` +
  ``conditional_probability_alive`` on a DataFrame read from the same file (the read
  is timed apart and not counted).

Both work in days. Reports wall and CPU seconds (CPU time is the steadier figure on a
shared machine), the speed ratios (target ≥ 10), the largest
relative parameter difference (target ≤ 1e-3) and peak RSS of each side (target:
sawubona's below lifetimes'), and appends them to ``bench/RESULTS.md``.

    python bench/bench_drift.py                    # 1M customers (--size large)
    python bench/bench_drift.py --size medium --no-record
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import append_result  # noqa: E402

REF_PYTHON = HERE / ".ref-venv" / "bin" / "python"
AS_OF = "2024-12-31"
SIZES = {"small": 10_000, "medium": 100_000, "large": 1_000_000}
#: planted BG/NBD parameters (rates per day)
TRUTH = {"r": 0.9, "alpha": 30.0, "a": 0.5, "b": 6.0}

OURS = r"""
import json, resource, sys, time
import numpy as np
import ibis
from sawubona.lenses.drift import summary
from sawubona.stats.bgnbd import BetaGeo, compress

path, as_of = sys.argv[1], sys.argv[2]
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
c0 = cpu()
t0 = time.perf_counter()
con = ibis.duckdb.connect()
log = con.read_parquet(path).rename(started_at="date")
days = summary.purchase_days(log)
as_of_day = summary.day_number(__import__("datetime").date.fromisoformat(as_of))
cust = summary.customer_summary(days, as_of_day).to_pyarrow()
col = lambda c: np.asarray(cust.column(c).to_numpy(), dtype=float)
x, t_x, T = col("frequency"), col("recency_days"), col("age_days")
t1 = time.perf_counter()
c = compress(x, t_x, T)
m = BetaGeo().fit(c.x, c.t_x, c.T, c.weights)
t2 = time.perf_counter()
alive = m.p_alive(x, t_x, T)
t3 = time.perf_counter()
print(json.dumps({
    "summary_s": t1 - t0, "fit_s": t2 - t1, "p_alive_s": t3 - t2, "total_s": t3 - t0,
    "cpu_s": cpu() - c0,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "customers": len(x), "unique_rows": int(len(c.x)), "params": m.params_,
    "mean_p_alive": float(alive.mean()),
}))
"""


def generate(path: Path, n: int, seed: int) -> int:
    """A BG/NBD log: first purchases through 2023, observed to AS_OF (days)."""
    rng = np.random.default_rng(seed)
    end = np.datetime64(AS_OF, "D")
    start = np.datetime64("2023-01-01", "D")
    first = rng.integers(0, 365, n)
    horizon = (end - start).astype(int) - first  # days observed after the first purchase
    lam = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    p = rng.beta(TRUTH["a"], TRUTH["b"], n)
    owners = [np.arange(n)]
    times = [np.zeros(n)]
    now = np.zeros(n)
    alive = np.arange(n)
    while len(alive):
        now[alive] += rng.exponential(1 / lam[alive])
        alive = alive[now[alive] <= horizon[alive]]
        owners.append(alive)
        times.append(now[alive].copy())
        alive = alive[rng.random(len(alive)) >= p[alive]]
    owner = np.concatenate(owners)
    day = first[owner] + np.floor(np.concatenate(times)).astype(int)
    order = rng.permutation(len(owner))  # a log in no particular order
    owner, day = owner[order], day[order]
    ids = np.char.add("C", np.char.zfill(owner.astype(str), 7))
    table = pa.table(
        {
            "customer_id": pa.array(ids),
            "date": pa.array((start + day).astype("datetime64[us]")),
        }
    )
    pq.write_table(table, path, row_group_size=1 << 20)
    return len(owner)


def run_ours(path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", OURS, str(path), AS_OF], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_lifetimes(path: Path, work: Path) -> dict | None:
    if not REF_PYTHON.exists():
        print(f"reference env {REF_PYTHON.parent.parent} missing: run bench/reference_env.sh")
        return None
    out = work / "lifetimes.json"
    subprocess.run(
        [
            str(REF_PYTHON),
            str(HERE / "lifetimes_reference.py"),
            "bench",
            str(path),
            str(out),
            "--as-of",
            AS_OF,
        ],
        check=True,
    )
    return dict(json.loads(out.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=None, help="default: 1,000,000")
    ap.add_argument("--size", choices=sorted(SIZES), help="small, medium or large (make bench)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    a = ap.parse_args()
    a.customers = a.customers or SIZES[a.size or "large"]
    cache = HERE / "out" / "drift"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"bgnbd_{a.customers}_{a.seed}_v2.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        rows = generate(path, a.customers, a.seed)
        print(f"generated {rows:,} transactions in {time.perf_counter() - t0:.1f} s: {path}")
    rows = pq.ParquetFile(path).metadata.num_rows
    load_before = os.getloadavg()
    ours = run_ours(path)
    print("sawubona ", json.dumps(ours))
    with tempfile.TemporaryDirectory() as tmp:
        ref = run_lifetimes(path, Path(tmp))
    print("lifetimes", json.dumps(ref))
    lines = [
        f"log: {a.customers:,} customers, {rows:,} transactions (BG/NBD, planted "
        + ", ".join(f"{k} = {v}" for k, v in TRUTH.items())
        + " per day), Parquet",
        f"sawubona: {ours['total_s']:.1f} s (summary {ours['summary_s']:.1f} s, fit "
        f"{ours['fit_s']:.2f} s on {ours['unique_rows']:,} unique rows, P(alive) "
        f"{ours['p_alive_s']:.2f} s), peak RSS {ours['peak_mb'] / 1024:.2f} GB; "
        + ", ".join(f"{k} = {v:.4g}" for k, v in ours["params"].items()),
    ]
    if ref is not None:
        worst = max(abs(ours["params"][k] - v) / abs(v) for k, v in ref["params"].items())
        lines += [
            f"lifetimes 0.11.3: {ref['total_s']:.1f} s (summary {ref['summary_s']:.1f} s, fit "
            f"{ref['fit_s']:.1f} s, P(alive) {ref['p_alive_s']:.2f} s; reading the file "
            f"{ref['read_s']:.1f} s not counted), peak RSS {ref['peak_mb'] / 1024:.2f} GB",
            f"speed: sawubona is {ref['total_s'] / ours['total_s']:.1f}x faster in wall time "
            f"(target >= 10), {ref['cpu_s'] / ours['cpu_s']:.1f}x in CPU time (sawubona "
            f"{ours['cpu_s']:.1f} s on up to {os.cpu_count()} threads, lifetimes "
            f"{ref['cpu_s']:.1f} s); "
            f"parameters differ by at most {worst:.1e} relative (target <= 1e-3); peak memory "
            f"{ours['peak_mb'] / ref['peak_mb']:.2f} of lifetimes'",
        ]
    load = ", ".join(f"{v:.1f}" for v in (*load_before, *os.getloadavg()))
    lines.append(
        f"load average before (1, 5, 15 min) and after: {load} — other work on this shared "
        "machine inflates wall times; the two sides run one after the other"
    )
    for line in lines:
        print(line)
    if not a.no_record:
        append_result(
            "drift: BG/NBD summary + fit + P(alive) against lifetimes",
            " ".join(["python bench/bench_drift.py", *sys.argv[1:]]),
            lines,
        )


if __name__ == "__main__":
    main()
