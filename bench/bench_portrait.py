"""Portrait latency and throughput of the web app on loopback (DESIGN.md §7).

Targets on the ``large`` world (1M customers): the portrait page p95 ≤ 100 ms, and
``/api/customers/{id}`` ≥ 300 requests/s on 127.0.0.1.

Starts ``sawubona serve`` on a free loopback port over a demo store (generated and
loaded once by ``bench_lenses.py``'s helper and reused), then, for customers drawn
at random from the store:

* **latency** — one request at a time over one keep-alive connection: p50, p95,
  p99 of the portrait page ``/customer/{id}`` and of ``/api/customers/{id}``;
* **throughput** — ``wrk`` (Debian's; installed when missing and possible) with
  2 threads and 8 connections for ``--seconds``, each request a different customer;
* **baseline** — the same two measurements on ``/static/style.css`` from the same
  server: what the server stack alone gives, so the portrait's cost is a ratio;
* **CPU per request** — the server's CPU seconds (all its processes, from /proc)
  during each wrk run divided by the requests wrk counted: unlike requests/s, this
  hardly depends on what else runs on a shared machine.

``--workers N`` (N > 1) serves with ``sawubona serve --workers N`` (N uvicorn processes,
each with the store open read-only).
Give ``--store`` a copy of a store: the portrait looks rows up in the memory-mapped
snapshot ``sawubona.portrait.prepare`` writes beside it (``<store>.portrait``), or, when
there is none or it is stale, through the indexes it makes (``--prepare`` makes both on
that store first). The report says which.

    .venv/bin/python bench/bench_portrait.py --size large
    .venv/bin/python bench/bench_portrait.py --store /tmp/copy.duckdb --prepare --seconds 10
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_lenses import world_store  # noqa: E402
from results import append_result  # noqa: E402

LUA = """
local ids = {}
for line in io.lines("%s") do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i %% #ids + 1
  return wrk.format("GET", "%s" .. ids[i])
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latencies(port: int, paths: list[str]) -> list[float]:
    """Milliseconds per request, one at a time over one keep-alive connection."""
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out = []
    for path in paths:
        t0 = time.perf_counter()
        con.request("GET", path)
        response = con.getresponse()
        response.read()
        out.append((time.perf_counter() - t0) * 1000)
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
    con.close()
    return out


def have_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=False)
    return shutil.which("wrk")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its child processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def wrk_rate(
    wrk: str, port: int, prefix: str, ids: list[str], seconds: int, server: int
) -> dict[str, float]:
    """Requests/s, non-2xx count and server CPU ms per request from wrk, each request
    for the next id in ``ids``."""
    with tempfile.TemporaryDirectory() as tmp:
        id_file = Path(tmp) / "ids.txt"
        id_file.write_text("\n".join(ids) + "\n")
        script = Path(tmp) / "ids.lua"
        script.write_text(LUA % (id_file, prefix))
        cpu0 = cpu_seconds(server)
        out = subprocess.run(
            [
                wrk,
                "-t2",
                "-c8",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cpu = cpu_seconds(server) - cpu0
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)", out)
    return {
        "rate": rate,
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": float(sum(int(x) for x in errors.groups())) if errors else 0.0,
        "cpu_ms": 1000 * cpu / int(done.group(1)) if done and int(done.group(1)) else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help="an existing store (default: the demo world's)")
    ap.add_argument("--world", default="telco")
    ap.add_argument("--size", default="large")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--requests", type=int, default=300, help="sequential requests per path")
    ap.add_argument("--seconds", type=int, default=20, help="wrk duration per path")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument(
        "--prepare", action="store_true", help="index the store first (portrait.prepare)"
    )
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args()

    import sawubona

    store = args.store or world_store(args.world, args.size, args.seed)[0]
    prepared = ""
    if args.prepare:
        from sawubona import portrait

        t0, c0 = time.perf_counter(), time.process_time()
        with sawubona.open(store) as s:
            made = portrait.prepare(s)
        snap = {k: v for k, v in made.items() if k.startswith("snapshot.")}
        prepared = (
            f"; portrait.prepare: {len(made) - len(snap)} indexes and {len(snap)} snapshot "
            f"tables ({sum(snap.values()):.1f} s of it) in {time.perf_counter() - t0:.1f} s "
            f"(CPU {time.process_time() - c0:.1f} s)"
        )
    from sawubona import portrait_snapshot

    load_before = os.getloadavg()
    with sawubona.open(store, read_only=True) as s:
        every = s.arrow("customers", ["customer_id"]).column(0).to_pylist()
        fresh = portrait_snapshot.open(s) is not None
        folder = portrait_snapshot.directory(s)
    if fresh and folder is not None:
        size = sum(f.stat().st_size for f in folder.iterdir())
        prepared += f"; snapshot {folder.name} up to date, {size / 1e9:.2f} GB"
    else:
        prepared += "; no up-to-date snapshot: portraits read DuckDB"
    rng = random.Random(0)
    ids = rng.sample(every, min(5000, len(every)))
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "sawubona",
        "serve",
        "--store",
        str(store),
        "--port",
        str(port),
    ]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            if server.poll() is not None:
                said = server.stderr.read().decode()[-2000:] if server.stderr else ""
                raise SystemExit(f"the server stopped ({server.returncode}): {said}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        latencies(port, ["/static/style.css"] + [f"/customer/{i}" for i in ids[:20]])  # warm
        n = args.requests
        lat = {
            "static": latencies(port, ["/static/style.css"] * n),
            "page": latencies(port, [f"/customer/{i}" for i in ids[:n]]),
            "api": latencies(port, [f"/api/customers/{i}" for i in ids[n : 2 * n]]),
        }
        wrk = have_wrk()
        rate = None
        if wrk:
            rate = {
                "static": wrk_rate(wrk, port, "/static/", ["style.css"], args.seconds, server.pid),
                "api": wrk_rate(wrk, port, "/api/customers/", ids, args.seconds, server.pid),
            }
    finally:
        server.terminate()
        server.wait(timeout=30)

    def show(name: str) -> str:
        v = lat[name]
        return (
            f"p50 {statistics.median(v):.1f} ms, p95 {percentile(v, 0.95):.1f} ms, "
            f"p99 {percentile(v, 0.99):.1f} ms"
        )

    lines = [
        f"store {Path(store).name}: {len(every):,} customers; {args.requests} sequential "
        f"requests per path, each a different customer; server workers {args.workers}"
        f"{prepared}",
        f"baseline /static/style.css: {show('static')}",
        f"portrait page /customer/{{id}}: {show('page')} (target p95 <= 100 ms); "
        f"p50 = {statistics.median(lat['page']) / statistics.median(lat['static']):.0f}x the "
        "baseline's",
        f"/api/customers/{{id}}: {show('api')}",
    ]
    if rate:
        s, a = rate["static"], rate["api"]
        lines.append(
            f"wrk, 2 threads, 8 connections, {args.seconds} s each: baseline "
            f"{s['rate']:,.0f} requests/s; /api/customers/{{id}} {a['rate']:,.0f} requests/s "
            f"(target >= 300) = {a['rate'] / s['rate']:.2f} of the baseline; errors: "
            f"{a['non_2xx']:.0f} non-2xx, {a['socket_errors']:.0f} socket"
        )
        lines.append(
            f"server CPU per request during wrk: baseline {s['cpu_ms']:.2f} ms; "
            f"/api/customers/{{id}} {a['cpu_ms']:.2f} ms"
        )
    else:
        lines.append("throughput not measured: wrk is not installed (apt-get install wrk)")
    lines.append(
        f"load average before: {', '.join(f'{x:.1f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    print("\n".join(lines))
    if not args.no_record:
        append_result(
            "portrait: latency and throughput on loopback",
            " ".join(["python bench/bench_portrait.py", *sys.argv[1:]]),
            lines,
        )


if __name__ == "__main__":
    main()
