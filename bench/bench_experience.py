"""Speed and memory of the experience lens on a demo world (issue 3: large world ≤ 30 s, 2 cores).

Generates a demo world (default: shop, ``large`` = 1M customers) and copies its
Parquet files into a DuckDB file as the canonical tables (``CREATE TABLE … AS
SELECT * FROM read_parquet``; neither step is counted), then measures, each in a
fresh process so that its peak memory is its own:

* **baseline** — DuckDB alone, in one SQL statement, joins each journey to the
  counts of its touchpoints, promises, items and answered surveys: the least any
  per-journey analysis must do (read every input row once);
* **lens** — ``ExperienceLens.run`` on the same tables (all four result tables and
  the findings, as Arrow), then the time to write its tables back into the file.

DuckDB gets ``--memory`` (default 6 GB) and ``--threads`` (default 2), so that the
figure is for a two-core machine and the run leaves room for others on a shared one.
Prints seconds, input rows/s, journeys/s, peak RSS and the ratio lens/baseline,
and appends them to ``bench/RESULTS.md``.

    .venv/bin/python bench/bench_experience.py                        # shop, large
    .venv/bin/python bench/bench_experience.py --size 100000 --world telco
    .venv/bin/python bench/bench_experience.py --db /tmp/shop-large.duckdb  # keep / reuse
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import append_result, machine  # noqa: E402

INPUTS = ("journeys", "touchpoints", "promises", "journey_items", "surveys", "customers")

PHASE = r"""
import datetime as dt, json, resource, sys, time
kind, path, as_of, memory, threads = sys.argv[1:6]
if kind == "baseline":
    import duckdb
    con = duckdb.connect(path, read_only=True)
    con.execute(f"SET memory_limit = '{memory}'; SET threads = {threads}")
    con.execute("SET enable_progress_bar = false")
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute('''
        WITH tp AS (SELECT journey_id, count(*) AS n FROM touchpoints GROUP BY 1),
             p AS (SELECT journey_id, count(*) AS n FROM promises GROUP BY 1),
             i AS (SELECT journey_id, count(*) AS n FROM journey_items GROUP BY 1),
             s AS (SELECT journey_id, count(score) AS n FROM surveys GROUP BY 1)
        SELECT count(*), sum(coalesce(tp.n, 0) + coalesce(p.n, 0) + coalesce(i.n, 0)
                             + coalesce(s.n, 0))
        FROM journeys j LEFT JOIN tp USING (journey_id) LEFT JOIN p USING (journey_id)
             LEFT JOIN i USING (journey_id) LEFT JOIN s USING (journey_id)
    ''').fetchall()
    out = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
else:
    import ibis
    from sawubona.lenses.base import LensInput
    from sawubona.lenses.experience import LENS
    con = ibis.duckdb.connect(path)
    con.raw_sql(f"SET memory_limit = '{memory}'; SET threads = {threads}")
    con.raw_sql("SET enable_progress_bar = false")
    names = {r[0] for r in con.con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    tables = {n: con.table(n) for n in
              ("customers", "journeys", "journey_items", "touchpoints", "promises", "surveys")
              if n in names}
    data = LensInput(tables=tables, results={}, as_of=dt.datetime.fromisoformat(as_of),
                     settings={s.name: s.default for s in LENS.settings})
    t0, c0 = time.perf_counter(), time.process_time()
    output = LENS.run(data)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    t1 = time.perf_counter()
    for name, table in output.tables.items():
        con.con.register("_result", table)
        con.con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _result')
        con.con.unregister("_result")
    out = {"seconds": seconds, "cpu_seconds": cpu, "write_seconds": time.perf_counter() - t1,
           "rows": {k: v.num_rows for k, v in output.tables.items()},
           "findings": [f.text for f in output.findings]}
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def phase(kind: str, db: Path, as_of: str, memory: str, threads: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", PHASE, kind, str(db), as_of, memory, str(threads)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"the {kind} phase failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def prepare(db: Path, world: str, size: str, seed: int, work: Path) -> dict[str, float]:
    """Generate the world and copy its Parquet files into ``db`` as the canonical tables."""
    import duckdb

    from sawubona.demo import generate

    t0 = time.perf_counter()
    w = generate(work / "world", world=world, size=int(size) if size.isdigit() else size, seed=seed)
    gen = time.perf_counter() - t0
    t1 = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("SET memory_limit = '4GB'; SET threads = 2")
    for name in w.tables:
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet(?)', [str(w.path(name))])
    con.execute("CREATE TABLE bench_meta AS SELECT ? AS as_of", [w.truth()["as_of"]])
    con.close()
    return {"generate_seconds": gen, "load_seconds": time.perf_counter() - t1}


def facts(db: Path) -> tuple[dict[str, int], str]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    names = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    counts = {
        t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0])
        for t in INPUTS
        if t in names
    }
    as_of = str(con.execute("SELECT as_of FROM bench_meta").fetchall()[0][0])
    con.close()
    return counts, as_of


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="large", help="small, medium, large or a number")
    ap.add_argument("--world", default="shop", choices=("shop", "telco", "cafe"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", type=Path, help="use (or create and keep) this DuckDB file")
    ap.add_argument("--memory", default="6GB", help="DuckDB memory_limit")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args(argv)
    command = "python bench/bench_experience.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    with tempfile.TemporaryDirectory(prefix="sawubona-bench-experience-") as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"
        prep: dict[str, float] = {}
        if not db.exists():
            prep = prepare(db, args.world, args.size, args.seed, Path(tmp))
        n, as_of = facts(db)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        base = phase("baseline", db, as_of, args.memory, args.threads)
        lens = phase("lens", db, as_of, args.memory, args.threads)
    rows_in = sum(n.values())
    secs, cpu = float(lens["seconds"]), float(lens["cpu_seconds"])
    bsecs, bcpu = float(base["seconds"]), float(base["cpu_seconds"])
    peak = float(lens["peak_mb"]) / 1024
    lines = [
        f"world {args.world}/{args.size} (seed {args.seed}): "
        + ", ".join(f"{k} {v:,}" for k, v in n.items())
        + (
            f" (generated in {prep['generate_seconds']:.0f} s, copied into DuckDB in "
            f"{prep['load_seconds']:.0f} s)"
            if prep
            else ""
        ),
        f"experience lens ({args.threads} DuckDB threads, memory_limit {args.memory}): "
        f"{secs:.1f} s wall ({cpu:.1f} s CPU) = {rows_in / secs:,.0f} input rows/s, "
        f"{n['journeys'] / secs:,.0f} journeys/s (target <= 30 s for large); peak RSS "
        f"{peak:.2f} GB; writing its tables {float(lens['write_seconds']):.1f} s more",
        f"baseline, DuckDB joining each journey to its row counts in one query: {bsecs:.1f} s "
        f"wall ({bcpu:.1f} s CPU; peak {float(base['peak_mb']) / 1024:.2f} GB) — the lens "
        f"takes {secs / bsecs:.1f}x its wall time, {cpu / bcpu:.1f}x its CPU time",
        f"load average while measuring: {load}",
    ]
    print("\n".join(lines))
    print(json.dumps({"machine": machine(), "rows": lens.get("rows")}))
    for f in lens.get("findings", []):
        print("finding:", f)
    if not args.no_record:
        append_result("experience lens", command, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
