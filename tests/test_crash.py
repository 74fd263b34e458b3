"""kill -9 during a load leaves the store exactly as it was, and the next run recovers."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from subprocess import DEVNULL

import pytest

import sawubona

LOADER = "import sys, sawubona; sawubona.open(sys.argv[1]).ingest(sys.argv[2])"


def _world(folder: Path, customers: int, touchpoints: int) -> None:
    folder.mkdir(parents=True)
    with (folder / "customers.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["customer_id", "joined_at", "segment"])
        w.writerows([f"k{i}", "2023-01-01", "s"] for i in range(customers))
    with (folder / "touchpoints.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["touchpoint_id", "customer_id", "at", "channel", "direction", "text"])
        w.writerows(
            [f"t{i}", f"k{i % customers}", "2024-01-01T10:00:00", "email", "inbound", f"hello {i}"]
            for i in range(touchpoints)
        )


def _counts(path: Path) -> dict[str, int]:
    with sawubona.open(path) as s:
        return {t: s.count(t) for t in ("customers", "touchpoints", "quarantine", "ingest_log")}


def _run(store: Path, folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", LOADER, str(store), str(folder)])


def _kill_cycle(tmp_path: Path, kills: int) -> None:
    big = tmp_path / "big"
    _world(big, customers=20_000, touchpoints=250_000)
    small = tmp_path / "small"
    small.mkdir()
    (small / "customers.csv").write_text("customer_id\nbefore1\nbefore2\n")

    # A reference run measures how long a whole load takes and what it leaves.
    ref = tmp_path / "ref.duckdb"
    subprocess.run([sys.executable, "-c", LOADER, str(ref), str(small)], check=True)
    t0 = time.monotonic()
    assert _run(ref, big).wait() == 0
    duration = time.monotonic() - t0
    full = _counts(ref)

    store = tmp_path / "s.duckdb"
    subprocess.run([sys.executable, "-c", LOADER, str(store), str(small)], check=True)
    before = _counts(store)
    for k in range(kills):
        proc = _run(store, big)
        time.sleep(duration * (0.15 + 0.8 * k / max(kills - 1, 1)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = _counts(store)  # the store opens, with no manual recovery step
        assert now in (before, full), (k, now)
        if now == full:
            break
    # Whatever happened, the next run completes the load.
    assert _run(store, big).wait() == 0
    after = _counts(store)
    assert after["customers"] == full["customers"]
    assert after["touchpoints"] == full["touchpoints"]


def test_kill_9_during_load_leaves_store_as_before(tmp_path: Path) -> None:
    _kill_cycle(tmp_path, kills=3)


@pytest.mark.slow
def test_kill_9_many_times(tmp_path: Path) -> None:
    _kill_cycle(tmp_path, kills=10)


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sawubona, time; s = sawubona.open({str(path)!r}); print('open', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"open"
        with pytest.raises(sawubona.StoreBusyError, match="another load or analysis is writing"):
            sawubona.open(path)
    finally:
        holder.kill()
        holder.wait()


def test_a_writer_works_while_a_reader_holds_the_store(tmp_path: Path) -> None:
    """A reader (the web app) keeps the version it opened; a load beside it writes a copy
    and swaps it in at close, so the next reader sees the new rows and nothing is half."""
    path = tmp_path / "s.duckdb"
    with sawubona.open(path) as s:
        (tmp_path / "customers.csv").write_text("customer_id\nc1\n")
        s.ingest(tmp_path / "customers.csv")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sawubona, sys; s = sawubona.open({str(path)!r}, read_only=True); "
            "print('open', flush=True); sys.stdin.readline(); "
            "print(s.count('customers'), flush=True)",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == b"open"
        more = tmp_path / "more"
        more.mkdir()
        (more / "customers.csv").write_text("customer_id\nc2\nc3\n")
        with sawubona.open(path) as s:  # reads alongside; the first write makes the copy
            assert s.read_only and s.count("customers") == 1
            report = s.ingest(more)
            assert report.rows_loaded == 2 and not s.read_only
            assert s.count("customers") == 3
            # a second writer, while this one holds the writer lock, reads but cannot write
            with sawubona.open(path) as other:
                assert other.read_only
                with pytest.raises(sawubona.StoreBusyError, match="another process is writing"):
                    other.ingest(more)
        # the reader still has its version; a new reader sees the published one
        assert reader.stdin is not None
        reader.stdin.write(b"\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == b"1"
        with sawubona.open(path, read_only=True) as s:
            assert s.count("customers") == 3
        assert not list(tmp_path.glob("s.duckdb.next-*"))
    finally:
        reader.kill()
        reader.wait()


# -- kill -9 during analyze ------------------------------------------------------------

ANALYZER = [sys.executable, "-m", "sawubona", "analyze", "--store"]


def _result_fingerprints(path: Path) -> dict[str, tuple[int, str]]:
    """Per result table (and findings): row count and an order-free hash of its rows, with
    doubles rounded to 6 places (DuckDB's parallel sums may differ in the last bits)."""
    from sawubona.store import META_TABLES

    out = {}
    with sawubona.open(path, read_only=True) as s:
        con = s._con
        for t in s.tables():
            if t in sawubona.schema.TABLE_BY_NAME or t.startswith("ibis_"):
                continue
            if t in META_TABLES and t != "findings":
                continue
            cols = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ?",
                [t],
            ).fetchall()
            exprs = [
                f'round("{c}", 6)' if ty in ("DOUBLE", "FLOAT") else f'"{c}"'
                for c, ty in cols
                if c != "run_id"
            ]
            row = con.execute(
                f'SELECT count(*), CAST(sum(hash({", ".join(exprs)})) AS VARCHAR) FROM "{t}"'
            ).fetchall()[0]
            out[t] = (int(row[0]), str(row[1]))
    return out


def _lens_runs_agree_with_results(path: Path) -> None:
    """Each lens's latest successful run names exactly the rows its tables and findings hold."""
    with sawubona.open(path, read_only=True) as s:
        runs = s._con.execute(
            "SELECT lens, run_id, rows_written FROM lens_runs WHERE status = 'ran' "
            "QUALIFY row_number() OVER (PARTITION BY lens ORDER BY started_at DESC) = 1"
        ).fetchall()
        for lens, run_id, rows_written in runs:
            for table, n in json.loads(rows_written).items():
                assert s.count(table) == n, (lens, table)
            ids = s._con.execute(
                "SELECT DISTINCT run_id FROM findings WHERE lens = ?", [lens]
            ).fetchall()
            assert ids in ([], [(run_id,)]), (lens, ids, run_id)


def _analyze_kill_cycle(tmp_path: Path, kills: int) -> None:
    from sawubona.analyze import latest_event
    from sawubona.demo import generate

    generate(tmp_path / "world", world="telco", size=500, seed=4)
    base = tmp_path / "base.duckdb"
    with sawubona.open(base) as s:
        s.ingest(tmp_path / "world")
        latest = latest_event(s)
    assert latest is not None
    old_as_of = (latest - dt.timedelta(days=120)).strftime("%Y-%m-%d")
    # The previous version: results as of four months earlier.
    subprocess.run([*ANALYZER, str(base), "--as-of", old_as_of], check=True, capture_output=True)
    old = _result_fingerprints(base)
    # The reference run of the new version, timed.
    ref = tmp_path / "ref.duckdb"
    shutil.copy(base, ref)
    t0 = time.monotonic()
    subprocess.run([*ANALYZER, str(ref)], check=True, capture_output=True)
    duration = time.monotonic() - t0
    new = _result_fingerprints(ref)
    changed = [t for t in new if new[t] != old.get(t)]
    assert len(changed) >= 10, changed  # the two versions differ, so the check below can fail

    store = tmp_path / "s.duckdb"
    shutil.copy(base, store)
    rng = random.Random(kills)
    for k in range(kills):
        proc = subprocess.Popen([*ANALYZER, str(store)], stdout=DEVNULL, stderr=DEVNULL)
        time.sleep(duration * rng.uniform(0.1, 0.9))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        now = _result_fingerprints(store)  # the store opens, with no manual step
        for table, fp in now.items():
            if table == "findings":
                continue  # one table for all lenses: checked per lens below
            assert fp in (old.get(table), new.get(table)), (k, table)  # never half-written
        _lens_runs_agree_with_results(store)
    # The next run recovers without any manual step and gives the reference results.
    subprocess.run([*ANALYZER, str(store)], check=True, capture_output=True)
    assert _result_fingerprints(store) == new
    _lens_runs_agree_with_results(store)


def test_kill_9_during_analyze_leaves_whole_results(tmp_path: Path) -> None:
    _analyze_kill_cycle(tmp_path, kills=3)


@pytest.mark.slow
def test_kill_9_during_analyze_many_times(tmp_path: Path) -> None:
    _analyze_kill_cycle(tmp_path, kills=12)
