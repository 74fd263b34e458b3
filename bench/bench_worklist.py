"""Benchmark of the worklist refresh (``sawubona.work.refresh``) on a copy of a store.

Usage::

    cp bench/out/stores/telco-large-0.duckdb* /tmp/me/      # the store AND its .work.sqlite
    PYTHONPATH=src .venv/bin/python bench/bench_worklist.py --store /tmp/me/telco-large-0.duckdb

What ``analyze`` does after the lenses, timed step by step in one process, each step
with wall time, CPU time and its own peak RSS (``/proc/self/clear_refs`` resets the
high-water mark between steps):

* **gather** — the rows the derivation needs, read from the store (read-only);
* **derive** — lens results → work items;
* **first refresh** — into an empty worklist (every item new);
* **second refresh** — the same items again, a day later (every item found and
  unchanged, but every row's ``last_seen_as_of`` is rewritten: the worst case of a
  re-analysis);
* **third refresh** — the same again (nothing to write);
* **refresh of the store's worklist** — into a copy of the store's own
  ``<store>.work.sqlite`` (what ``analyze`` does on that store), if there is one;
* **baseline** — SQLite alone: the same number of rows of the same values inserted with
  one ``executemany`` into a table of the same schema, in the same process.

The store copy is never written; the worklists are made in a temporary directory.
Target (issue 10): the refresh costs at most ~10–15 s on the large telco world, so
that all lenses plus the refresh fit in 120 s. Appends to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results import append_result  # noqa: E402


def _hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


class Steps:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, float]] = []

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        _reset_hwm()
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        row = (name, time.perf_counter() - wall, time.process_time() - cpu, _hwm_mb())
        self.rows.append(row)
        print(f"{name}: {row[1]:.2f} s wall, {row[2]:.2f} s CPU, peak {row[3]:,.0f} MB", flush=True)

    def get(self, name: str) -> tuple[str, float, float, float]:
        return next(r for r in self.rows if r[0] == name)


def _counts(c: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in c.items())


def baseline(rows: list[tuple[Any, ...]], folder: Path) -> None:
    """SQLite alone: insert these rows into the worklist's table, one executemany."""
    from sawubona.work.db import _SCHEMA, ITEM_COLUMNS

    con = sqlite3.connect(str(folder / "baseline.sqlite"), isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.executescript(_SCHEMA)
    marks = ",".join("?" for _ in ITEM_COLUMNS)
    con.execute("BEGIN IMMEDIATE")
    con.executemany(f"INSERT INTO work_items VALUES ({marks})", rows)
    con.execute("COMMIT")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, required=True, help="a COPY of an analysed store")
    ap.add_argument("--as-of", help="as_of of the refresh (default: the store worklist's last)")
    ap.add_argument("--tmp", type=Path, help="where to make the worklists (default: beside)")
    ap.add_argument("--label", default="", help="added to the RESULTS.md title (e.g. the code)")
    ap.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()

    import sawubona
    from sawubona import work
    from sawubona.analyze import latest_event, parse_as_of
    from sawubona.work.db import ITEM_COLUMNS

    load_before = os.getloadavg()
    own = work.worklist_path(args.store)
    as_of: dt.datetime | None = parse_as_of(args.as_of) if args.as_of else None
    if as_of is None and own.exists():
        con = sqlite3.connect(f"file:{own}?mode=ro", uri=True)
        last = con.execute("SELECT max(last_seen_as_of) FROM work_items").fetchone()[0]
        con.close()
        as_of = dt.datetime.fromisoformat(last) if last else None
    steps = Steps()
    folder = Path(tempfile.mkdtemp(prefix="bench-worklist-", dir=args.tmp or args.store.parent))
    try:
        with sawubona.open(args.store, read_only=True) as store:
            if as_of is None:
                as_of = latest_event(store)
            assert as_of is not None, "the store holds no events"
            print(f"as_of {as_of.isoformat()}", flush=True)
            with steps.step("gather"):
                tables = work.gather(store, as_of)
        n_in = sum(t.num_rows for t in tables.values())
        # derive_items (column-wise) where it exists; derive (a list of Item) before it did
        derive = getattr(work, "derive_items", None) or work.derive
        with steps.step("derive"):
            items: Any = derive(tables, as_of)
        n = len(items)
        del tables
        counts = {}
        with work.Worklist(folder / "fresh.work.sqlite") as wl:
            with steps.step("first refresh"):
                counts["first"] = wl.refresh(items, as_of)
            later = as_of + dt.timedelta(days=1)
            with steps.step("second refresh"):
                counts["second"] = wl.refresh(items, later)
            with steps.step("third refresh"):
                counts["third"] = wl.refresh(items, later)
        if own.exists():
            copy = folder / "own.work.sqlite"
            shutil.copy(own, copy)
            with work.Worklist(copy) as wl, steps.step("refresh of the store's worklist"):
                counts["own"] = wl.refresh(items, as_of)
        # the baseline: the rows the first refresh wrote, re-inserted by SQLite alone
        con = sqlite3.connect(str(folder / "fresh.work.sqlite"))
        rows = con.execute(f"SELECT {', '.join(ITEM_COLUMNS)} FROM work_items").fetchall()
        con.close()
        del items
        with steps.step("baseline"):
            baseline(rows, folder)
        del rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    load_after = os.getloadavg()

    base = steps.get("baseline")
    refresh_steps = (
        "derive",
        "first refresh",
        "second refresh",
        "third refresh",
        "refresh of the store's worklist",
    )

    def line(name: str) -> str:
        _, wall, cpu, peak = steps.get(name)
        return (
            f"{name}: {wall:.1f} s wall ({wall / base[1]:.1f}x baseline), {cpu:.1f} s CPU, "
            f"peak {peak:,.0f} MB"
        )

    lines = [
        f"**{args.store.name}** as of {as_of.isoformat()}: {n_in:,} rows gathered, {n:,} items",
        line("gather"),
        *[line(s) for s in refresh_steps if any(r[0] == s for r in steps.rows)],
        f"baseline (SQLite alone, executemany of the {n:,} rows into the same table): "
        f"{base[1]:.1f} s wall, {base[2]:.1f} s CPU",
        "gather + derive + first refresh: "
        f"{sum(steps.get(s)[1] for s in ('gather', 'derive', 'first refresh')):.1f} s wall, "
        f"{sum(steps.get(s)[2] for s in ('gather', 'derive', 'first refresh')):.1f} s CPU",
        *[f"counts {k}: {_counts(v)}" for k, v in counts.items()],
        "load average before (1, 5, 15 min): "
        + ", ".join(f"{x:.1f}" for x in load_before)
        + "; after: "
        + ", ".join(f"{x:.1f}" for x in load_after)
        + " (shared machine: other agents ran benchmarks meanwhile)",
    ]
    for x in lines:
        print(x)
    if not args.no_record:
        command = "python bench/bench_worklist.py " + shlex.join(sys.argv[1:])
        title = "worklist refresh: gather, derive, refresh" + (
            f" ({args.label})" if args.label else ""
        )
        append_result(title, command, lines)


if __name__ == "__main__":
    main()
