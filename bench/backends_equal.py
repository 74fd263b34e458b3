"""The acceptance check of the Spark backend: one world into DuckDB and into a Spark
warehouse through the CLI (``sawubona ingest`` then ``sawubona analyze``, separate
processes), then every result table compared (tests/test_backends.py's equality).

    .venv/bin/python bench/backends_equal.py --size medium --out /tmp/backends-bench

Prints the seconds each step took and, per result table, whether it is equal.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/sawubona"), *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="medium")
    ap.add_argument("--world", default="telco")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path("/tmp/sawubona-backends-bench"))
    args = ap.parse_args()

    import sawubona
    from sawubona.demo import generate
    from test_backends import assert_same_table

    out: Path = args.out
    world = out / f"{args.world}-{args.size}"
    if not world.exists():
        generate(world, world=args.world, size=args.size, seed=args.seed)
    duck = out / "duck.duckdb"
    spark = f"spark:local[2]?warehouse={out / 'spark-warehouse'}"
    times = {
        "duckdb ingest": run("ingest", str(world), "--store", str(duck)),
        "duckdb analyze": run("analyze", "--store", str(duck)),
        "spark ingest": run("ingest", str(world), "--store", spark),
        "spark analyze": run("analyze", "--store", spark),
    }
    for step, seconds in times.items():
        print(f"{step}: {seconds:.1f} s")
    ok = bad = 0
    with sawubona.open(duck, read_only=True) as d, sawubona.open(spark, read_only=True) as s:
        names = [n for n in d.tables() if "_" in n and n.split("_")[0] in _lenses()]
        for name in names:
            try:
                assert_same_table(name, d.arrow(name), s.arrow(name))
            except (AssertionError, Exception) as exc:
                bad += 1
                print(f"DIFFERENT {name}: {str(exc)[:300]}")
            else:
                ok += 1
    print(f"{ok} result tables equal, {bad} different")


def _lenses() -> set[str]:
    from sawubona.lenses import available

    return set(available())


if __name__ == "__main__":
    main()
