"""Benchmark of the demo generator: wall time, rows, rows/s and peak memory.

Usage::

    PYTHONPATH=src .venv/bin/python bench/bench_generate.py                # large telco
    PYTHONPATH=src .venv/bin/python bench/bench_generate.py --size medium --world shop
    PYTHONPATH=src .venv/bin/python bench/bench_generate.py --world all --size large

Generates into a temporary directory (removed afterwards unless ``--keep``),
prints one line per table and a summary, and appends a section with one table
row per world to ``bench/RESULTS.md`` (created with a heading if absent). The
target (DESIGN.md §7) is ``large`` in at most 120 s on two cores.

Besides wall time it records the CPU seconds the process used and the load
average, because on a shared machine wall time alone says little: a run that got
half a core takes twice as long.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
HEADING = (
    "# Benchmark results\n\n"
    "Appended by the bench scripts. Each section: when, commit, machine, the exact\n"
    "command and what it measured. Compare results from the same machine only.\n"
)
COLUMNS = (
    "world",
    "size",
    "customers",
    "rows",
    "seconds",
    "CPU seconds",
    "rows/s",
    "peak RSS (GB)",
)


@dataclass
class Result:
    """What one world's generation measured."""

    world: str
    size: str
    customers: int
    rows: int
    seconds: float
    cpu_seconds: float
    peak_rss_gb: float

    def row(self) -> str:
        cells = (
            self.world,
            self.size,
            f"{self.customers:,}",
            f"{self.rows:,}",
            f"{self.seconds:.1f}",
            f"{self.cpu_seconds:.1f}",
            f"{self.rows / self.seconds:,.0f}",
            f"{self.peak_rss_gb:.2f}",
        )
        return "| " + " | ".join(cells) + " |"


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
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024**2
    return (
        f"{platform.machine()}, {cores} cores, {mem_gb:.0f} GB, Python {platform.python_version()}"
    )


def _peak_rss_gb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024**2 if sys.platform != "darwin" else kb / 1024**3


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(world: str, size: str, seed: int, fmt: str, keep: bool) -> Result:
    """Generate one world into a temporary folder and report what it took."""
    from sawubona.demo import generate

    size_arg: str | int = int(size) if size.isdigit() else size
    tmp = Path(tempfile.mkdtemp(prefix=f"sawubona-bench-{world}-"))
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    w = generate(tmp, world=world, size=size_arg, seed=seed, fmt=fmt)
    secs, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    total = sum(w.counts.values())
    print(
        f"\n{world} {size} ({w.n_customers:,} customers, {fmt}) in {secs:.1f} s ({cpu:.1f} CPU s)"
    )
    for name, n in w.counts.items():
        print(f"  {name:<15} {n:>12,} rows  {n / secs:>12,.0f} rows/s")
    print(f"  {'total':<15} {total:>12,} rows  {total / secs:>12,.0f} rows/s")
    print(f"  peak RSS so far: {_peak_rss_gb():.2f} GB   output: {tmp}")
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return Result(world, size, w.n_customers, total, secs, cpu, _peak_rss_gb())


def record(results: list[Result], command: str) -> None:
    """Append a section with the results to ``bench/RESULTS.md``."""
    if not RESULTS.exists():
        RESULTS.write_text(HEADING)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "",
        f"## demo generator — {when}, commit {_commit()}",
        "",
        f"Machine: {_machine()}; load average {load:.1f} at the end. Command: `{command}`",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *(r.row() for r in results),
        "",
    ]
    with RESULTS.open("a") as f:
        f.write("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--world", default="telco", help="telco, shop, cafe or all")
    ap.add_argument("--size", default="large", help="small, medium, large or a number")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fmt", default="parquet", choices=("parquet", "csv"))
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args(argv)
    worlds = ("telco", "shop", "cafe") if args.world == "all" else (args.world,)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join(
        [
            "PYTHONPATH=src .venv/bin/python bench/bench_generate.py",
            *(shlex.quote(a) for a in given),
        ]
    )
    results = [run(world, args.size, args.seed, args.fmt, args.keep) for world in worlds]
    if not args.no_record:
        record(results, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
