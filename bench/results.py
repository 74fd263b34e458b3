"""Appending measured figures to bench/RESULTS.md, with machine, date, commit and command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

HEADER = """# Benchmark results

Measured by the scripts in `bench/` (run `make bench`, or one script directly). Each
figure is a ratio against a baseline measured in the same run, on the machine named.
Newest entries last.
"""


def machine() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            kb = int(fh.readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}"


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS.parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def append_result(title: str, command: str, lines: list[str]) -> None:
    if not RESULTS.exists():
        RESULTS.write_text(HEADER, encoding="utf-8")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = [
        "",
        f"## {title} — {stamp}, commit {commit()}",
        "",
        f"Machine: {machine()}. Command: `{command}`",
        "",
        *[f"- {line}" for line in lines],
        "",
    ]
    with RESULTS.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(block))
