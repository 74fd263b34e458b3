"""Ingest throughput against DuckDB reading the same files (DESIGN.md §7).

Generates a demo world (Parquet and CSV) once, kept under ``bench/out/worlds``, then
measures, each in a fresh process so that peak memory belongs to one phase only:

* **baseline** — DuckDB alone reads every Parquet file of the world into a new
  DuckDB file (``CREATE TABLE … AS SELECT * FROM read_parquet(…)``);
* **parquet** — ``sawubona ingest`` of the same folder into a new store;
* **csv** — ``sawubona ingest`` of the same world written as CSV.

Reports rows/s, the ratio parquet/baseline (target ≤ 2) and CSV rows/s (target
≥ 300k), and appends a row to ``bench/RESULTS.md``.

    python bench/bench_ingest.py --size small
    python bench/bench_ingest.py --size large --world telco
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import append_result, machine

PHASE = r"""
import json, resource, sys, time
from pathlib import Path
kind, folder, target = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
rows = 0
if kind == "baseline":
    import duckdb
    con = duckdb.connect(target)
    for f in sorted(folder.glob("*.parquet")):
        con.execute(f'CREATE TABLE "{f.stem}" AS SELECT * FROM read_parquet(?)', [str(f)])
        rows += con.execute(f'SELECT count(*) FROM "{f.stem}"').fetchall()[0][0]
    con.close()
else:
    import sawubona
    with sawubona.open(target) as s:
        report = s.ingest(folder)
    rows = report.rows_read
    assert report.rows_quarantined == 0, report.rows_quarantined
seconds = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
peak = usage.ru_maxrss / 1024
print(json.dumps({"rows": rows, "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": peak}))
"""


def phase(kind: str, folder: Path, target: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PHASE, kind, str(folder), str(target)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small")
    ap.add_argument("--world", default="telco")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-csv", action="store_true", help="skip the CSV measurement")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()

    from sawubona.demo import generate

    worlds = Path(__file__).resolve().parent / "out" / "worlds"
    with tempfile.TemporaryDirectory(prefix="sawubona-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        folder = worlds / f"{args.world}-{args.size}-{args.seed}-parquet"
        if not (folder / "truth.json").exists():  # generated once, reused by later runs
            generate(folder, world=args.world, size=args.size, seed=args.seed, fmt="parquet")
        gen_s = time.perf_counter() - t0
        base = phase("baseline", folder, root / "baseline.duckdb")
        pq = phase("sawubona", folder, root / "pq.duckdb")
        csv = None
        if not args.no_csv:
            csv_folder = worlds / f"{args.world}-{args.size}-{args.seed}-csv"
            if not (csv_folder / "truth.json").exists():
                generate(csv_folder, world=args.world, size=args.size, seed=args.seed, fmt="csv")
            csv = phase("sawubona", csv_folder, root / "csv.duckdb")

    ratio = pq["seconds"] / base["seconds"]
    lines = [
        f"world {args.world}/{args.size}: {int(pq['rows']):,} rows (ready in {gen_s:.1f} s)",
        f"DuckDB alone reads the Parquet files into a DuckDB file: {base['seconds']:.1f} s, "
        f"{base['cpu']:.1f} s CPU ({base['rows'] / base['seconds']:,.0f} rows/s, "
        f"peak {base['peak_mb']:,.0f} MB)",
        f"sawubona ingest from Parquet: {pq['seconds']:.1f} s, {pq['cpu']:.1f} s CPU "
        f"({pq['rows'] / pq['seconds']:,.0f} rows/s, peak {pq['peak_mb']:,.0f} MB) "
        f"= {ratio:.2f}x DuckDB in wall time, {pq['cpu'] / base['cpu']:.2f}x in CPU "
        "(target <= 2)",
    ]
    if csv:
        lines.append(
            f"sawubona ingest from CSV: {csv['seconds']:.1f} s, {csv['cpu']:.1f} s CPU "
            f"({csv['rows'] / csv['seconds']:,.0f} rows/s, target >= 300,000; "
            f"{csv['rows'] / csv['cpu']:,.0f} rows per CPU second; "
            f"peak {csv['peak_mb']:,.0f} MB)"
        )
    print("\n".join(lines))
    if args.no_record:
        return
    append_result(
        "ingest",
        " ".join(["python bench/bench_ingest.py", *sys.argv[1:]]),
        lines,
    )
    print(json.dumps({"machine": machine()}))


if __name__ == "__main__":
    main()
