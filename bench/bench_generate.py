"""Benchmark of the demo generator: wall time, rows, rows/s and peak memory.

Usage::

    PYTHONPATH=src .venv/bin/python bench/bench_generate.py                # large telco
    PYTHONPATH=src .venv/bin/python bench/bench_generate.py --size medium --world shop
    PYTHONPATH=src .venv/bin/python bench/bench_generate.py --world all --size large

Generates into a temporary directory (removed afterwards unless ``--keep``),
prints one line per table and a summary, and appends a row per world to
``bench/RESULTS.md``. The target (DESIGN.md §7) is ``large`` in at most 120 s on
two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
COLUMNS = (
    "date",
    "commit",
    "machine",
    "command",
    "world",
    "size",
    "customers",
    "rows",
    "seconds",
    "rows/s",
    "peak RSS (GB)",
)
HEADER = (
    "# Benchmark results\n\n"
    "Appended by the bench scripts. Each row: when, commit, machine, the exact command\n"
    "and what it measured. Compare rows from the same machine only.\n\n"
    "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|\n"
)


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            text=True,
            capture_output=True,
            timeout=10,
        )
        return out.stdout.strip() or "uncommitted"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _machine() -> str:
    cores = os.cpu_count() or 0
    with contextlib.suppress(AttributeError):  # sched_getaffinity is Linux only
        cores = len(os.sched_getaffinity(0))
    mem_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024**2
    except OSError:  # pragma: no cover
        pass
    return f"{platform.machine()} {cores} cores {mem_gb:.0f} GB, Python {platform.python_version()}"


def _peak_rss_gb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024**2 if sys.platform != "darwin" else kb / 1024**3


def run(world: str, size: str, seed: int, fmt: str, keep: bool) -> dict[str, object]:
    from sawubona.demo import SIZES, generate

    size_arg: str | int = int(size) if size.isdigit() else size
    tmp = Path(tempfile.mkdtemp(prefix=f"sawubona-bench-{world}-"))
    t0 = time.perf_counter()
    w = generate(tmp, world=world, size=size_arg, seed=seed, fmt=fmt)
    secs = time.perf_counter() - t0
    total = sum(w.counts.values())
    print(f"\n{world} {size} ({w.n_customers:,} customers, {fmt}) in {secs:.1f} s")
    for name, n in w.counts.items():
        print(f"  {name:<15} {n:>12,} rows  {n / secs:>12,.0f} rows/s")
    print(f"  {'total':<15} {total:>12,} rows  {total / secs:>12,.0f} rows/s")
    print(f"  peak RSS so far: {_peak_rss_gb():.2f} GB   output: {tmp}")
    if not keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "world": world,
        "size": size,
        "customers": w.n_customers,
        "n_customers_named": SIZES.get(size),
        "rows": total,
        "seconds": secs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="telco", help="telco, shop, cafe or all")
    ap.add_argument("--size", default="large", help="small, medium, large or a number")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fmt", default="parquet", choices=("parquet", "csv"))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args(argv)
    worlds = ("telco", "shop", "cafe") if args.world == "all" else (args.world,)
    command = "PYTHONPATH=src .venv/bin/python bench/bench_generate.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    rows = []
    for world in worlds:
        r = run(world, args.size, args.seed, args.fmt, args.keep)
        r["rss"] = _peak_rss_gb()  # peak of the whole process so far
        rows.append(r)
    if not args.no_record:
        if not RESULTS.exists():
            RESULTS.write_text(HEADER)
        today = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        with RESULTS.open("a") as f:
            for r in rows:
                secs = float(r["seconds"])  # type: ignore[arg-type]
                n_rows = int(r["rows"])  # type: ignore[call-overload]
                f.write(
                    f"| {today} | {_commit()} | {_machine()} | `{command.strip()}` | "
                    f"{r['world']} | {r['size']} | {r['customers']:,} | {n_rows:,} | "
                    f"{secs:.1f} | {n_rows / secs:,.0f} | {float(r['rss']):.2f} |\n"
                )  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
