"""Every lens, and all lenses together, on demo worlds: time, CPU, peak memory, scaling.

DESIGN.md §7: all lenses on ``large`` ≤ 120 s with peak memory ≤ 6 GB, and cost
growing close to linearly from ``medium`` to ``large`` (exponent ≤ 1.15).

For each world and size, the demo world is generated and loaded with ``sawubona
ingest`` once (kept under ``bench/out/`` and reused by later runs), then each
measurement runs in a fresh process, so that its peak memory is its own:

* **baseline** — DuckDB alone scans every canonical table of the store into Arrow
  (``SELECT *``, all columns): what any analysis must at least do to see the data;
* **lens X** — ``store.analyze(lenses=[X])``: the lens and writing its results;
* **all** — ``store.analyze()``: every lens, as ``sawubona analyze`` runs them.

Figures are wall seconds, CPU seconds (user + system, all threads) and peak RSS,
with each lens's time as a ratio to the baseline of the same world. The scaling
exponent of a lens is ``log(t_large / t_medium) / log(n_large / n_medium)`` with
``n`` the input rows of the world (1 = linear); it is given for wall and for CPU
time, since wall time on a shared machine also measures the other jobs.

    .venv/bin/python bench/bench_lenses.py --world telco --world shop --size medium --size large
    .venv/bin/python bench/bench_lenses.py --size small --lens drift
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from results import append_result  # noqa: E402

PHASE = r"""
import json, resource, sys, time
kind, store, lens = sys.argv[1], sys.argv[2], sys.argv[3]
import sawubona
t0, c0 = time.perf_counter(), time.process_time()
out = {}
with sawubona.open(store) as s:
    if kind == "baseline":
        rows = 0
        for name in s.counts():
            rows += s.arrow(name).num_rows
        out["rows"] = rows
    else:
        report = s.analyze(lenses=None if lens == "all" else [lens])
        out["status"] = {r.lens: r.status for r in report.lenses}
out["seconds"] = time.perf_counter() - t0
out["cpu"] = time.process_time() - c0
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would start at the
# parent's peak (the parent may have loaded a world); VmHWM belongs to this process only
with open("/proc/self/status") as fh:
    hwm = [line.split()[1] for line in fh if line.startswith("VmHWM:")]
out["peak_mb"] = (int(hwm[0]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
print(json.dumps(out))
"""


def world_store(world: str, size: str, seed: int) -> tuple[Path, dict[str, int]]:
    """The demo world's store, generated and ingested once and then reused."""
    import sawubona
    from sawubona.demo import generate

    folder = OUT / "worlds" / f"{world}-{size}-{seed}-parquet"
    if not (folder / "truth.json").exists():
        t0 = time.perf_counter()
        n: str | int = int(size) if size.isdigit() else size
        generate(folder, world=world, size=n, seed=seed, fmt="parquet")
        print(f"  generated {folder.name} in {time.perf_counter() - t0:.0f} s", flush=True)
    store = OUT / "stores" / f"{world}-{size}-{seed}.duckdb"
    store.parent.mkdir(parents=True, exist_ok=True)
    done = store.with_suffix(".ingested")
    if not done.exists():
        store.unlink(missing_ok=True)
        t0 = time.perf_counter()
        with sawubona.open(store) as s:
            s.ingest(folder)
        done.write_text(f"{time.perf_counter() - t0:.1f}\n")
        print(f"  ingested {store.name} in {done.read_text().strip()} s", flush=True)
    with sawubona.open(store, read_only=True) as s:
        counts = {t: n for t, n in s.counts().items() if n}
    return store, counts


def phase(kind: str, store: Path, lens: str = "", workers: int | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    if workers is not None:
        env["SAWUBONA_LENS_WORKERS"] = str(workers)
    out = subprocess.run(
        [sys.executable, "-c", PHASE, kind, str(store), lens],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def exponent(small: float, large: float, n_small: int, n_large: int) -> float:
    return math.log(large / small) / math.log(n_large / n_small)


def main() -> None:
    from sawubona.lenses import available

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--world", action="append", help="telco, shop, cafe (repeat; default telco, shop)"
    )
    ap.add_argument("--size", action="append", help="small, medium, large (repeat)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lens", action="append", help="only these lenses (default: every lens)")
    ap.add_argument("--no-all", action="store_true", help="skip the all-lenses run")
    ap.add_argument("--only-all", action="store_true", help="only the all-lenses run")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    ap.add_argument(
        "--workers",
        type=int,
        help="lenses the all-lenses run runs at once (SAWUBONA_LENS_WORKERS; default: "
        "sawubona's, 2 on 2 cores)",
    )
    args = ap.parse_args()
    worlds = args.world or ["telco", "shop"]
    sizes = args.size or ["medium", "large"]
    lenses = [] if args.only_all else args.lens or list(available())
    load = os.getloadavg()

    figures: dict[tuple[str, str], dict[str, Any]] = {}
    lines: list[str] = []
    for world in worlds:
        for size in sizes:
            print(f"== {world}/{size}", flush=True)
            store, counts = world_store(world, size, args.seed)
            rows = sum(counts.values())
            base = phase("baseline", store)
            runs = {lens: phase("lens", store, lens) for lens in lenses}
            if not args.no_all:
                runs["all"] = phase("lens", store, "all", args.workers)
            figures[world, size] = {"rows": rows, "base": base, "runs": runs}
            lines.append(
                f"**{world}/{size}**: {rows:,} input rows; baseline (DuckDB scans every table "
                f"into Arrow) {base['seconds']:.1f} s wall, {base['cpu']:.1f} s CPU, "
                f"peak {base['peak_mb']:,.0f} MB"
            )
            for name, r in runs.items():
                ran = [k for k, v in r["status"].items() if v == "ran"]
                lines.append(
                    f"{world}/{size} {name}: {r['seconds']:.1f} s wall "
                    f"({r['seconds'] / base['seconds']:.1f}x baseline), {r['cpu']:.1f} s CPU, "
                    f"peak {r['peak_mb']:,.0f} MB"
                    + ("" if ran else " — skipped (nothing it needs in this world)")
                )
                print(f"  {lines[-1]}", flush=True)
    for world in worlds:
        if len(sizes) < 2:
            break
        a, b = figures[world, sizes[0]], figures[world, sizes[-1]]
        for name in b["runs"]:
            ra, rb = a["runs"][name], b["runs"][name]
            if not any(v == "ran" for v in rb["status"].values()):
                continue
            wall = exponent(ra["seconds"], rb["seconds"], a["rows"], b["rows"])
            cpu = exponent(ra["cpu"], rb["cpu"], a["rows"], b["rows"])
            lines.append(
                f"{world} {name} growth {sizes[0]} → {sizes[-1]} ({a['rows']:,} → {b['rows']:,} "
                f"rows): exponent {wall:.2f} wall, {cpu:.2f} CPU (target <= 1.15)"
            )
            print(f"  {lines[-1]}", flush=True)
    if not args.no_all:
        from sawubona import limits

        at_once = args.workers or limits.lens_workers()
        lines.append(f"the all-lenses run ran up to {at_once} lens(es) at once")
    lines.append(
        f"load average before (1, 5, 15 min): {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f}; "
        f"after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    if not args.no_record:
        append_result(
            "lenses: time, CPU, peak memory and growth",
            " ".join(["python bench/bench_lenses.py", *sys.argv[1:]]),
            lines,
        )


if __name__ == "__main__":
    main()
