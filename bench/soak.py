"""Soak test of the web app: a fixed request rate for N minutes on 127.0.0.1.

Usage::

    PYTHONPATH=src .venv/bin/python bench/soak.py                 # 10 minutes at 3 req/s
    PYTHONPATH=src .venv/bin/python bench/soak.py --minutes 1 --rate 20 --no-record

Builds a demo telco world (``--customers``, default 1,500) into a temporary
store, analyses it, starts ``sawubona serve`` in its own process on a free
loopback port, and drives it from this process with an *open-loop* generator:
request *i* is due at ``start + i / rate`` whatever happened before, and its
latency is measured from that due time, so a slow server shows as latency
instead of silently lowering the rate (no coordinated omission). Requests
rotate over every kind of page and API call (overview, lens pages, tables with
filters and pages, search, portraits, static CSS, 404s).

Reports requests, errors (any unexpected status or a failed connection),
latency percentiles, achieved rate, and the server's resident memory (from
``/proc/PID/status``) after a one-minute warm-up and at the end; fails (exit
1) on any error or when memory grows by more than ``--max-growth-mb`` from the
warmed-up figure. Appends to ``bench/RESULTS.md`` unless ``--no-record``.
Only loopback addresses are ever contacted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from results import append_result  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def build_store(folder: Path, customers: int) -> Path:
    import sawubona
    from sawubona.demo import generate

    generate(folder / "world", world="telco", size=customers, seed=5)
    path = folder / "soak.duckdb"
    with sawubona.open(path) as s:
        s.ingest(folder / "world")
        s.analyze()
    return path


def paths_for(store: Path) -> list[tuple[str, int]]:
    """(path, expected status) pairs covering every page kind."""
    import sawubona

    with sawubona.open(store, read_only=True) as s:
        ids = [
            r[0] for r in s._con.execute("SELECT customer_id FROM customers LIMIT 20").fetchall()
        ]
        lenses = [r[0] for r in s._con.execute("SELECT DISTINCT lens FROM lens_runs").fetchall()]
    out: list[tuple[str, int]] = [
        ("/", 200),
        ("/api/overview", 200),
        ("/api/tables", 200),
        ("/data", 200),
        ("/static/style.css", 200),
        ("/api/findings", 200),
        ("/customers?q=a", 200),
        ("/api/customers?q=mo", 200),
        ("/table/touchpoints?page=3", 200),
        ("/api/tables/surveys?page=2&page_size=100", 200),
        ("/api/customers/no-such-customer", 404),
        ("/static/../../cli.py", 404),
    ]
    out += [(f"/lens/{name}", 200) for name in lenses]
    for cid in ids:
        out += [(f"/customer/{cid}", 200), (f"/api/customers/{cid}", 200)]
        out.append((f"/api/tables/touchpoints?customer_id={cid}", 200))
    return out


class Generator:
    """Open-loop load: ``workers`` threads with keep-alive connections take due times."""

    def __init__(self, port: int, paths: list[tuple[str, int]], rate: float, seconds: float):
        self.port, self.paths, self.rate, self.seconds = port, paths, rate, seconds
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.due: queue.Queue[tuple[int, float] | None] = queue.Queue()

    def worker(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while True:
            item = self.due.get()
            if item is None:
                return
            i, due = item
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            path, expected = self.paths[i % len(self.paths)]
            try:
                conn.request("GET", path)
                res = conn.getresponse()
                res.read()
                ok = res.status == expected
                err = "" if ok else f"{path}: status {res.status}, expected {expected}"
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                err = f"{path}: {type(exc).__name__}: {exc}"
            took = time.monotonic() - due
            with self.lock:
                self.latencies.append(took)
                if err:
                    self.errors.append(err)

    def run(self, workers: int) -> float:
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        start = time.monotonic() + 0.2
        n = int(self.seconds * self.rate)
        for i in range(n):
            due = start + i / self.rate
            while self.due.qsize() > workers * 4:  # keep the queue short, never skip
                time.sleep(0.01)
            self.due.put((i, due))
        for _ in threads:
            self.due.put(None)
        for t in threads:
            t.join()
        return time.monotonic() - start


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=3.0, help="requests per second")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--customers", type=int, default=1500)
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the first RSS")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        store = build_store(Path(tmp), args.customers)
        print(f"store built in {time.monotonic() - t0:.0f} s", flush=True)
        paths = paths_for(store)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        server = subprocess.Popen(
            [sys.executable, "-m", "sawubona", "serve", "--store", str(store), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            for _ in range(300):
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/")
                    break
                except OSError:
                    time.sleep(0.1)
            warm = Generator(port, paths, args.rate, args.warmup)
            warm.run(args.workers)
            rss_start = rss_mb(server.pid)
            samples = [rss_start]
            gen = Generator(port, paths, args.rate, args.minutes * 60)
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(10):
                    samples.append(rss_mb(server.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            elapsed = gen.run(args.workers)
            stop.set()
            rss_end = rss_mb(server.pid)
            samples.append(rss_end)
            alive = server.poll() is None
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=30)

    n = len(gen.latencies)
    ms = [x * 1000 for x in gen.latencies]
    growth = rss_end - rss_start
    lines = [
        f"{args.minutes:g} minutes at a fixed {args.rate:g} requests/s (open loop, latency from "
        f"each request's due time), {args.workers} client threads, {len(paths)} distinct URLs; "
        f"demo telco world of {args.customers:,} customers, analysed",
        f"requests: {n:,}; errors: {len(gen.errors)} (warm-up: {len(warm.latencies):,} requests, "
        f"{len(warm.errors)} errors); achieved {n / elapsed:.1f} requests/s; server alive: {alive}",
        f"latency ms: p50 {percentile(ms, 50):.1f}, p90 {percentile(ms, 90):.1f}, "
        f"p99 {percentile(ms, 99):.1f}, max {max(ms) if ms else float('nan'):.1f}",
        f"server RSS MB: {rss_start:.1f} after a {args.warmup:g} s warm-up, {rss_end:.1f} at the "
        f"end (growth {growth:+.1f}; peak {max(samples):.1f}; bound ±{args.max_growth_mb:g})",
        f"machine load average at the end: {os.getloadavg()[0]:.1f} (2 cores shared with other "
        "jobs; the app serialises requests on one store connection)",
    ]
    for line in lines:
        print(line)
    for err in gen.errors[:10]:
        print("error:", err)
    if stderr.strip():
        print("server stderr:", stderr.decode(errors="replace")[-2000:])
    if not args.no_record:
        cmd = "PYTHONPATH=src .venv/bin/python bench/soak.py " + " ".join(sys.argv[1:])
        append_result("web app soak", cmd.strip(), lines)
    ok = not gen.errors and not warm.errors and alive and growth <= args.max_growth_mb
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
