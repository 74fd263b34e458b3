"""Benchmark of the touch lens: N outbound messages clustered into templates.

Usage::

    PYTHONPATH=src .venv/bin/python bench/bench_touch.py                     # ~1M messages
    PYTHONPATH=src .venv/bin/python bench/bench_touch.py --customers 20000   # ~170k
    PYTHONPATH=src .venv/bin/python bench/bench_touch.py --personal 1000000  # worst case

Default: generates a demo telco world (120,000 customers give about a million
outbound messages: templates, canned and personal replies, bots, notices,
marketing), then runs, each in a fresh process so that peak memory belongs to
one phase only:

* **baseline** — what the lens must read anyway: the outbound touchpoints
  selected with Ibis over DuckDB (reading the world's Parquet files) into Arrow;
* **lens** — the whole touch lens on the same tables (the same selection, then
  normalising, MinHash, LSH, classification and every result table and finding).

``--personal N`` instead times the text side alone
(:func:`sawubona.lenses.touch.templates.near_duplicates`) on N personal messages
that are all different — the worst case, where deduplication saves nothing.

Target (issue 8, DESIGN.md §7): 1M outbound messages clustered in ≤ 60 s and
≤ 4 GB on two cores. Prints wall time, CPU time and peak RSS, the ratio to the
baseline, and appends to ``bench/RESULTS.md``.
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

from results import append_result  # noqa: E402

PHASE = r"""
import json, resource, sys, time
from pathlib import Path
kind, folder = sys.argv[1], Path(sys.argv[2])
import ibis
import pyarrow.parquet as pq
from sawubona import schema
from sawubona.lenses.base import LensInput
from sawubona.lenses.touch import LENS, OUTBOUND_COLUMNS
con = ibis.duckdb.connect()
tables = {p.stem: con.read_parquet(str(p), table_name=p.stem)
          for p in sorted(folder.glob("*.parquet")) if p.stem in schema.TABLE_BY_NAME}
as_of = tables["touchpoints"].at.max().execute().to_pydatetime()
data = LensInput(tables=tables, results={}, as_of=as_of, settings={})
wall, cpu = time.perf_counter(), time.process_time()
if kind == "baseline":
    tp = data.until("touchpoints")
    out = tp.filter(tp.direction == "outbound").select(*OUTBOUND_COLUMNS)
    out = out.order_by(["at", "touchpoint_id"]).to_pyarrow()
    messages, templates = out.num_rows, 0
else:
    result = LENS.run(data)
    messages = result.tables["touch_messages"].num_rows
    tpl = result.tables["touch_templates"]
    templates = int(sum(tpl["is_template"].to_pylist()))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"messages": messages, "templates": templates, "seconds": wall,
                  "cpu": cpu, "peak_mb": peak}))
"""

PERSONAL = r"""
import json, resource, sys, time
import numpy as np
import pyarrow as pa
n = int(sys.argv[1])
from sawubona.demo.text import personal_text
from sawubona.lenses.touch.templates import Params, near_duplicates
rng = np.random.default_rng(0)
firsts = pa.array(["Ana", "Ben", "Chloe", "Dev", "Ella", "Finn", "Grace", "Hamza"])
def pick(k):
    return firsts.take(pa.array(rng.integers(0, len(firsts), k)))
detail = pa.array([f"your order J{i:09d}" for i in range(n)])
when = pa.array([f"{1 + i % 28} July" for i in range(n)])
texts = personal_text(rng, pick(n), pick(n), detail, when)
wall, cpu = time.perf_counter(), time.process_time()
near = near_duplicates(texts, Params())
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
c = near.cluster[near.cluster >= 0]
sizes = np.bincount(c)
close = np.bincount(c, weights=near.similarity[near.cluster >= 0] >= Params().threshold)
# every message went to its own customer: the word-for-word rule cannot fire, the
# near-duplicate rule fires where 100+ messages are close to the cluster's example
called = int(sizes[close >= 100].sum())
print(json.dumps({"messages": n, "distinct": near.distinct_texts,
                  "in_clusters_of_3_plus": int(sizes[sizes >= 3].sum()), "called": called,
                  "seconds": wall, "cpu": cpu, "peak_mb": peak}))
"""


def run(code: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=120_000, help="telco world size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--personal", type=int, default=0, help="time N unique personal texts")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()
    command = " ".join(["python bench/bench_touch.py", *map(shlex.quote, sys.argv[1:])])
    load_before = os.getloadavg()[0]

    if args.personal:
        r = run(PERSONAL, str(args.personal))
        lines = [
            f"worst case, {int(r['messages']):,} personal messages all different "
            f"({int(r['distinct']):,} distinct normalised texts): near-duplicate clustering "
            f"{r['seconds']:.1f} s wall, {r['cpu']:.1f} s CPU, peak {r['peak_mb']:,.0f} MB; "
            f"{int(r['in_clusters_of_3_plus']):,} landed in clusters of 3 or more (the "
            f"generator's phrase pools repeat), {int(r['called']):,} would be called templated",
        ]
    else:
        from sawubona.demo import generate

        with tempfile.TemporaryDirectory(prefix="sawubona-bench-touch-") as tmp:
            folder = Path(tmp) / "world"
            t0 = time.perf_counter()
            generate(folder, world="telco", size=args.customers, seed=args.seed)
            gen_s = time.perf_counter() - t0
            base = run(PHASE, "baseline", str(folder))
            lens = run(PHASE, "lens", str(folder))
        n = int(lens["messages"])
        per_m = lens["seconds"] / n * 1e6
        lines = [
            f"telco world of {args.customers:,} customers (generated in {gen_s:.0f} s): "
            f"{n:,} outbound messages, {int(lens['templates']):,} templates found",
            f"baseline, selecting the outbound touchpoints into Arrow: {base['seconds']:.1f} s "
            f"wall, {base['cpu']:.1f} s CPU, peak {base['peak_mb']:,.0f} MB",
            f"touch lens: {lens['seconds']:.1f} s wall ({per_m:.0f} s per million messages; "
            f"target ≤ 60 s for 1M), {lens['cpu']:.1f} s CPU, peak {lens['peak_mb']:,.0f} MB "
            f"(target ≤ 4,096 MB) = {lens['seconds'] / base['seconds']:.1f}x the baseline's time",
        ]
    lines.append(
        f"machine load (1-minute load average) {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after: wall time above CPU time is time spent waiting "
        "for a core shared with other work"
    )
    print("\n".join(lines))
    if not args.no_record:
        append_result("touch: templates in outbound messages", command, lines)


if __name__ == "__main__":
    main()
