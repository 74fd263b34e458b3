"""Speed and memory of the voice lens on a demo world (issue 7: large world, 1M surveys, ≤ 60 s).

Generates a demo world (default: telco, ``large`` = 1M customers) and copies its
Parquet files into a DuckDB file as the canonical tables (neither step is counted),
then measures, each in a fresh process so that its peak memory is its own:

* **baseline** — DuckDB alone, in one SQL statement, joins each survey to its
  journey and to the counts of that journey's touchpoints and actions and of its
  customer's subscriptions, and counts answers by instrument and score: the least
  a per-survey analysis that looks at journeys, messages, concessions and later
  behaviour must do (read every input row once);
* **lens** — ``VoiceLens.run`` on the same tables (every result table and the
  findings, as Arrow), then the time to write its tables back into the file.

DuckDB gets ``--memory`` (default 6 GB) and ``--threads`` (default 2), so that the
figure is for a two-core machine. Prints seconds, surveys/s, input rows/s, peak RSS
and the ratio lens/baseline, and appends them to ``bench/RESULTS.md``.

    .venv/bin/python bench/bench_voice.py                          # telco, large
    .venv/bin/python bench/bench_voice.py --size 100000 --world cafe
    .venv/bin/python bench/bench_voice.py --db /tmp/telco-large.duckdb   # keep / reuse
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from results import append_result, machine  # noqa: E402

INPUTS = (
    "customers",
    "journeys",
    "touchpoints",
    "promises",
    "surveys",
    "actions",
    "subscriptions",
)

PHASE = r"""
import datetime as dt, json, resource, sys, time
kind, path, as_of, memory, threads = sys.argv[1:6]
if kind == "baseline":
    import duckdb
    con = duckdb.connect(path, read_only=True)
    con.execute(f"SET memory_limit = '{memory}'; SET threads = {threads}")
    names = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    sub = ("(SELECT customer_id, count(*) AS n FROM subscriptions GROUP BY 1)"
           if "subscriptions" in names else "(SELECT NULL AS customer_id, 0 AS n)")
    act = ("(SELECT journey_id, count(*) AS n FROM actions GROUP BY 1)"
           if "actions" in names else "(SELECT NULL AS journey_id, 0 AS n)")
    t0 = time.perf_counter()
    con.execute(f'''
        WITH tp AS (SELECT journey_id, count(*) AS n FROM touchpoints GROUP BY 1),
             a AS {act}, sb AS {sub}
        SELECT s.instrument, s.score, count(*), sum(coalesce(tp.n, 0) + coalesce(a.n, 0)
               + coalesce(sb.n, 0)), count(j.kind)
        FROM surveys s LEFT JOIN journeys j USING (journey_id)
             LEFT JOIN tp ON tp.journey_id = s.journey_id
             LEFT JOIN a ON a.journey_id = s.journey_id
             LEFT JOIN sb ON sb.customer_id = s.customer_id
        GROUP BY 1, 2
    ''').fetchall()
    out = {"seconds": time.perf_counter() - t0}
else:
    import ibis
    from sawubona.lenses.base import LensInput
    from sawubona.lenses.voice import LENS
    con = ibis.duckdb.connect(path)
    con.raw_sql(f"SET memory_limit = '{memory}'; SET threads = {threads}")
    names = {r[0] for r in con.con.execute(
        "SELECT table_name FROM information_schema.tables").fetchall()}
    tables = {n: con.table(n) for n in
              ("customers", "journeys", "touchpoints", "promises", "surveys", "actions",
               "subscriptions") if n in names}
    data = LensInput(tables=tables, results={}, as_of=dt.datetime.fromisoformat(as_of),
                     settings={s.name: s.default for s in LENS.settings})
    t0 = time.perf_counter()
    output = LENS.run(data)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    for name, table in output.tables.items():
        con.con.register("_result", table)
        con.con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _result')
        con.con.unregister("_result")
    out = {"seconds": seconds, "write_seconds": time.perf_counter() - t1,
           "rows": {k: v.num_rows for k, v in output.tables.items()},
           "findings": [f.text for f in output.findings]}
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def phase(kind: str, db: Path, as_of: str, memory: str, threads: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PHASE, kind, str(db), as_of, memory, str(threads)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"the {kind} phase failed:\n{out.stderr[-3000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
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
        if w.path(name).exists():  # a table with no rows may have no file
            con.execute(
                f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet(?)', [str(w.path(name))]
            )
    con.execute("CREATE TABLE bench_meta AS SELECT ? AS as_of", [w.truth()["as_of"]])
    con.close()
    return {"generate_seconds": gen, "load_seconds": time.perf_counter() - t1}


def facts(db: Path) -> tuple[dict[str, int], str]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    names = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    counts: dict[str, int] = {}
    for t in INPUTS:
        if t in names:
            row = con.execute(f'SELECT count(*) FROM "{t}"').fetchone()
            counts[t] = int(row[0]) if row else 0
    meta = con.execute("SELECT as_of FROM bench_meta").fetchone()
    con.close()
    return counts, str(meta[0]) if meta else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size", default="large", help="small, medium, large or a number")
    ap.add_argument("--world", default="telco", choices=("telco", "shop", "cafe"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", type=Path, help="use (or create and keep) this DuckDB file")
    ap.add_argument("--memory", default="6GB", help="DuckDB memory_limit")
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args(argv)
    command = "python bench/bench_voice.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    with tempfile.TemporaryDirectory(prefix="sawubona-bench-voice-") as tmp:
        db = args.db or Path(tmp) / "bench.duckdb"
        prep: dict[str, float] = {}
        if not db.exists():
            prep = prepare(db, args.world, args.size, args.seed, Path(tmp))
        n, as_of = facts(db)
        base = phase("baseline", db, as_of, args.memory, args.threads)
        lens = phase("lens", db, as_of, args.memory, args.threads)
    rows_in = sum(n.values())
    secs = float(lens["seconds"])  # type: ignore[arg-type]
    bsecs = float(base["seconds"])  # type: ignore[arg-type]
    peak = float(lens["peak_mb"]) / 1024  # type: ignore[arg-type]
    load = os.getloadavg()[0]
    lines = [
        f"world {args.world}/{args.size} (seed {args.seed}): "
        + ", ".join(f"{k} {v:,}" for k, v in n.items())
        + (
            f" (generated in {prep['generate_seconds']:.0f} s, copied into DuckDB in "
            f"{prep['load_seconds']:.0f} s)"
            if prep
            else ""
        ),
        f"voice lens ({args.threads} DuckDB threads, memory_limit {args.memory}): "
        f"{secs:.1f} s = {n['surveys'] / secs:,.0f} surveys/s, {rows_in / secs:,.0f} input "
        f"rows/s (target <= 60 s for large); peak RSS {peak:.2f} GB; writing its tables "
        f"{float(lens['write_seconds']):.1f} s more",  # type: ignore[arg-type]
        f"baseline, DuckDB joining each survey to its journey, messages, actions and "
        f"subscriptions in one query: {bsecs:.1f} s (peak "
        f"{float(base['peak_mb']) / 1024:.2f} GB) — the lens takes "  # type: ignore[arg-type]
        f"{secs / bsecs:.1f}x that",
        f"load average at the end: {load:.1f} on {os.cpu_count()} cores",
    ]
    print("\n".join(lines))
    print(json.dumps({"machine": machine(), "rows": lens.get("rows")}))
    for f in lens.get("findings", []):  # type: ignore[union-attr]
        print("finding:", f)
    if not args.no_record:
        append_result("voice lens", command, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
