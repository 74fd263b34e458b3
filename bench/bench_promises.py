"""The promise ledger on a demo world: wall time, CPU time and peak memory (DESIGN.md §7).

Generates a world (or reuses a store given with ``--store``), ingests it, then
measures, each in a fresh process so that peak memory belongs to one phase only:

* **baseline** — DuckDB alone reads the whole ``promises`` table into Arrow (the
  floor for any lens that returns one row per promise);
* **lens** — ``LENS.run`` of the promises lens (everything it computes, its
  tables returned as Arrow, nothing written);
* **analyze** — ``sawubona.analyze(store, ["promises"])``: the lens plus writing
  its result tables into the store.

Reports seconds, CPU seconds (user + system: on a busy machine wall time is not
the lens's alone), peak RSS, the ratio lens / baseline, the target (the lens on
``large`` ≤ 30 s on 2 cores), and appends to ``bench/RESULTS.md``.

    python bench/bench_promises.py --size small
    python bench/bench_promises.py --size large --world shop
    python bench/bench_promises.py --store /tmp/large-shop.duckdb --as-of 2025-06-30T23:59:59
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import append_result, machine

PHASE = r"""
import json, os, resource, sys, time
kind, store_path, as_of, threads = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
rows = 0
if kind == "baseline":
    import duckdb
    con = duckdb.connect(store_path, read_only=True)
    con.execute(f"SET threads = {threads}")
    t0, c0 = time.perf_counter(), cpu()
    rows = con.sql("SELECT * FROM promises").to_arrow_table().num_rows
else:
    import sawubona
    from sawubona import analyze as runner, schema
    store = sawubona.open(store_path, read_only=(kind == "lens"))
    store._con.execute(f"SET threads = {threads}")
    when = runner.parse_as_of(as_of) if as_of != "-" else runner.latest_event(store)
    t0, c0 = time.perf_counter(), cpu()
    if kind == "lens":
        from sawubona.lenses.base import LensInput
        from sawubona.lenses.promises import LENS
        present = {t.name: store.table(t.name) for t in schema.TABLES if store.count(t.name)}
        settings = {s.name: s.default for s in LENS.settings}
        out = LENS.run(LensInput(tables=present, results={}, as_of=when, settings=settings))
        rows = out.tables["promises_status"].num_rows
    else:
        report = runner.analyze(store, ["promises"], as_of=when)
        rows = report.lenses[0].tables["promises_status"]
seconds, cpu_s = time.perf_counter() - t0, cpu() - c0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "cpu": cpu_s, "peak_mb": peak}))
"""


def phase(kind: str, store: Path, as_of: str, threads: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PHASE, kind, str(store), as_of, str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def load_average() -> str:
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="small, medium, large or a number")
    ap.add_argument("--world", default="shop", help="telco, shop or cafe")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", help="an ingested store to measure (skips generation)")
    ap.add_argument("--as-of", default="-", help="as_of (default: the latest event)")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads (target: 2)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="sawubona-bench-") as tmp:
        gen_s = ingest_s = 0.0
        if args.store:
            store = Path(args.store)
            label = f"store {store.name}"
        else:
            import sawubona
            from sawubona.demo import generate

            size: str | int = int(args.size) if args.size.isdigit() else args.size
            t0 = time.perf_counter()
            w = generate(Path(tmp) / "world", world=args.world, size=size, seed=args.seed)
            gen_s = time.perf_counter() - t0
            store = Path(tmp) / "store.duckdb"
            t0 = time.perf_counter()
            with sawubona.open(store) as s:
                s.ingest(w.out_dir)
            ingest_s = time.perf_counter() - t0
            if args.as_of == "-":
                args.as_of = w.truth()["as_of"]
            label = f"world {args.world}/{args.size}"
        before = load_average()
        base = phase("baseline", store, args.as_of, args.threads)
        lens = phase("lens", store, args.as_of, args.threads)
        full = phase("analyze", store, args.as_of, args.threads)
        after = load_average()

    ratio = lens["seconds"] / base["seconds"]
    lines = [
        f"{label}: {int(lens['rows']):,} promises"
        + (f" (generated in {gen_s:.0f} s, ingested in {ingest_s:.0f} s)" if gen_s else ""),
        f"DuckDB alone reads the promises table into Arrow: {base['seconds']:.1f} s "
        f"(CPU {base['cpu']:.1f} s, peak {base['peak_mb']:,.0f} MB)",
        f"promises lens (LENS.run, all tables as Arrow): {lens['seconds']:.1f} s "
        f"(CPU {lens['cpu']:.1f} s, peak {lens['peak_mb']:,.0f} MB) = {ratio:.1f}x the "
        "baseline; target on large: <= 30 s on 2 cores",
        f"analyze --lens promises (lens + writing its tables): {full['seconds']:.1f} s "
        f"(CPU {full['cpu']:.1f} s, peak {full['peak_mb']:,.0f} MB)",
        f"DuckDB threads {args.threads}; load average before {before}, after {after} "
        "(other work on the machine inflates wall time; CPU time is the lens's own)",
    ]
    print("\n".join(lines))
    append_result(
        "promises lens", " ".join(["python bench/bench_promises.py", *sys.argv[1:]]), lines
    )
    print(json.dumps({"machine": machine()}))


if __name__ == "__main__":
    main()
