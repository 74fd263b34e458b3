"""`make bench`: every benchmark in turn (pass --size to choose the world size)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_generate.py",
    "bench_ingest.py",
    "bench_experience.py",
    "bench_promises.py",
    "bench_giving.py",
    "bench_drift.py",
    "bench_voice.py",
    "bench_touch.py",
]

if __name__ == "__main__":
    args = sys.argv[1:] or ["--size", "small"]
    for script in SCRIPTS:
        if (HERE / script).exists():
            print(f"== {script} {' '.join(args)}", flush=True)
            subprocess.run([sys.executable, str(HERE / script), *args], check=True)
