"""kill -9 during a load leaves the store exactly as it was, and the next run recovers."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
        with pytest.raises(sawubona.StoreBusyError, match="in use by another process"):
            sawubona.open(path)
    finally:
        holder.kill()
        holder.wait()


def test_a_reader_can_open_the_store_while_the_web_app_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with sawubona.open(path) as s:
        (tmp_path / "customers.csv").write_text("customer_id\nc1\n")
        s.ingest(tmp_path / "customers.csv")
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import sawubona, time; s = sawubona.open({str(path)!r}, read_only=True); "
            "print('open', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == b"open"
        with sawubona.open(path) as s:  # falls back to reading alongside
            assert s.read_only and s.count("customers") == 1
            with pytest.raises(sawubona.StoreBusyError, match="open read-only"):
                s.ingest(tmp_path / "customers.csv")
    finally:
        reader.kill()
        reader.wait()
