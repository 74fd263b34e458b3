"""The portrait's fast path gives the same portrait as the plain one.

Point lookups on DuckDB fetch tuples on the thread's own cursor, journey items in one
``IN`` lookup, and the web app keeps one :class:`~sawubona.portrait.Context` per store
version; each is checked here against the straightforward computation (Arrow rows,
one lookup per journey, the context recomputed) on a small analysed shop world, which
has journey items, and against DuckDB's own plan for the indexes.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import sawubona
from sawubona import portrait
from sawubona.backends.duckdb import served


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sawubona.demo import generate

    root = tmp_path_factory.mktemp("shop")
    generate(root / "world", world="shop", size=400, seed=3)
    path = root / "shop.duckdb"
    with sawubona.open(path) as s:
        s.ingest(root / "world")
        s.analyze()
    return path


@pytest.fixture
def indexed(shop: Path, tmp_path: Path) -> Iterator[sawubona.Store]:
    path = tmp_path / "indexed.duckdb"
    shutil.copyfile(shop, path)
    with sawubona.open(path) as s:
        portrait.prepare(s)
    s = sawubona.open(path, read_only=True)
    yield s
    s.close()


class ArrowOnly:
    """A store seen without the DuckDB backend's ``lookup``: the portable path."""

    _backend = None

    def __init__(self, store: sawubona.Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types (NaN equal to NaN), recursively."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def some_customers(s: sawubona.Store, n: int = 60) -> list[str]:
    ids: list[str] = s.arrow("customers", ["customer_id"]).column(0).to_pylist()
    return ids[:: max(1, len(ids) // n)]


def test_lookup_gives_the_rows_and_values_arrow_gives(indexed: sawubona.Store) -> None:
    backend = indexed._backend
    present = set(indexed.tables())
    checked = 0
    for cid in some_customers(indexed, 25):
        for table, column in portrait.LOOKUPS:
            if table not in present or column != "customer_id":
                continue
            fast = backend.lookup(table, {column: cid})  # type: ignore[attr-defined]
            plain = indexed.arrow(table, where={column: cid}).to_pylist()
            assert same(sorted(fast, key=repr), sorted(plain, key=repr)), (table, cid)
            checked += len(plain)
    assert checked > 100  # the lookups found rows, not only empty lists


def test_lookup_with_a_list_is_any_of_its_values(indexed: sawubona.Store) -> None:
    backend = indexed._backend
    items = indexed.arrow("journey_items").to_pylist()
    assert items, "the shop world has journey items"
    journeys = [*sorted({r["journey_id"] for r in items})[:7], "no-such-journey"]
    got = backend.lookup("journey_items", {"journey_id": journeys})  # type: ignore[attr-defined]
    expected = [r for r in items if r["journey_id"] in set(journeys)]
    order = lambda r: (r["journey_id"], r["item_id"], repr(r))  # noqa: E731
    assert same(sorted(got, key=order), sorted(expected, key=order))
    assert backend.lookup("journey_items", {"journey_id": []}) == []  # type: ignore[attr-defined]
    assert backend.lookup("customers", {"customer_id": "no-such-id"}) == []  # type: ignore[attr-defined]


def test_prepare_indexes_every_lookup_and_duckdb_uses_them(shop: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    shutil.copyfile(shop, path)
    with sawubona.open(path) as s:
        filled = {t for t in s.tables() if s.count(t) > 0}
        s._con.execute("CREATE TABLE empty_probe AS SELECT * FROM customers LIMIT 0")
        lookups = (*portrait.LOOKUPS, ("empty_probe", "customer_id"))
        first = s._backend.index_lookups(lookups)  # type: ignore[attr-defined]
        assert set(first) == {f"{t}.{c}" for t, c in portrait.LOOKUPS if t in filled}
        assert len(first) >= 10  # an empty table is left alone, the others are indexed
        again = portrait.prepare(s)  # IF NOT EXISTS: the same indexes, no error
        assert {k for k in again if not k.startswith("snapshot.")} == set(first)
        con = s._con
        names = {r[0] for r in con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
        assert names == {f"sawubona_lookup_{k.replace('.', '_')}" for k in first}
        cid = s.arrow("customers", ["customer_id"]).column(0)[0].as_py()
        plan = con.execute(
            "EXPLAIN ANALYZE SELECT * FROM touchpoints WHERE customer_id = ?", [cid]
        ).fetchall()[0][1]
        assert re.search(r"Type:\s+Index Scan", plan), plan
    with sawubona.open(path, read_only=True) as s:
        assert portrait.prepare(s) == {}  # a reader cannot index: it says so by doing nothing


def test_portrait_is_the_same_on_every_path(indexed: sawubona.Store) -> None:
    ctx = portrait.context(indexed)
    assert "journey_items" in ctx.present
    plain_store = ArrowOnly(indexed)
    with_items = 0
    for cid in some_customers(indexed):
        plain = portrait.build(plain_store, cid).to_dict()  # type: ignore[arg-type]
        fast = portrait.build(indexed, cid, ctx).to_dict()
        assert same(fast, plain), cid
        assert same(portrait.build(indexed, cid).to_dict(), plain), cid
        with_items += any("core item" in s["text"] for s in fast["sections"]["what matters"])
    assert with_items > 0  # journey items reached some portraits
    with pytest.raises(sawubona.errors.UnknownCustomerError):
        portrait.build(indexed, "no-such-id", ctx)


def test_context_leaves_out_empty_lookup_tables(indexed: sawubona.Store) -> None:
    ctx = portrait.context(indexed)
    tables = set(indexed.tables())
    looked_up = {t for t, _ in portrait.LOOKUPS}
    for t in tables:
        expected = t not in looked_up or indexed.count(t) > 0
        assert (t in ctx.present) == expected, t
    assert ctx.as_of == portrait._as_of(indexed, frozenset(tables))


def test_each_thread_looks_up_on_its_own_cursor(indexed: sawubona.Store) -> None:
    """As in the web app: the context computed once, then portraits in several threads
    (the store's main connection refuses a second caller instead of waiting)."""
    backend = indexed._backend
    ids = some_customers(indexed, 40)
    expected = {cid: portrait.build(indexed, cid).to_dict() for cid in ids}
    ctx = portrait.context(indexed, snapshot=False)  # DuckDB's lookups, not the snapshot's
    got: dict[str, Any] = {}
    errors: list[BaseException] = []

    def work(part: list[str]) -> None:
        try:
            for cid in part:
                got[cid] = portrait.build(indexed, cid, ctx).to_dict()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(ids[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(same(got[c], expected[c]) for c in ids)
    assert len(backend._cursors) >= 4  # type: ignore[attr-defined]
    indexed.close()
    assert backend._cursors == {}  # type: ignore[attr-defined]


def test_a_swap_waits_for_portraits_still_reading(shop: Path, tmp_path: Path) -> None:
    from sawubona.web.app import LiveStore

    path = tmp_path / "live.duckdb"
    shutil.copyfile(shop, path)
    live = LiveStore(path)
    lock = threading.Lock()
    inside, leave, swapped = threading.Event(), threading.Event(), threading.Event()
    seen: list[Any] = []

    def reader() -> None:
        with live.reading(lock) as (store, ctx):
            inside.set()
            leave.wait(30)
            cid = store.arrow("customers", ["customer_id"]).column(0)[0].as_py()
            seen.append(portrait.build(store, cid, ctx).customer_id)  # old version still open

    def swapper() -> None:
        with lock:
            seen.append(live.current())
        swapped.set()

    r = threading.Thread(target=reader)
    r.start()
    assert inside.wait(30)
    os.replace(shutil.copyfile(shop, tmp_path / "next.duckdb"), path)  # a writer's swap
    s = threading.Thread(target=swapper)
    s.start()
    assert not swapped.wait(0.5)  # the reopen waits for the reader ...
    leave.set()
    r.join(30)
    s.join(30)
    assert swapped.is_set()  # ... and happens once it is done
    assert isinstance(seen[0], str) and seen[1] is live.current()
    live.close()


def test_forget_keeps_the_indexes_and_leaves_no_trace_in_them(shop: Path, tmp_path: Path) -> None:
    """An index holds the keys it indexes: forget's rewrite must not leave the id behind."""
    from sawubona import privacy

    path = tmp_path / "f.duckdb"
    shutil.copyfile(shop, path)
    with sawubona.open(path) as s:
        made = portrait.prepare(s)
        cid = some_customers(s, 5)[2]
        assert s._backend.lookup("touchpoints", {"customer_id": cid})  # type: ignore[attr-defined]
        privacy.forget(s, cid)
    assert cid.encode() not in path.read_bytes()
    with sawubona.open(path, read_only=True) as s:
        names = {r[0] for r in s._con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()}
        assert len(names) == len([k for k in made if not k.startswith("snapshot.")])
        assert s._backend.lookup("touchpoints", {"customer_id": cid}) == []  # type: ignore[attr-defined]


def test_api_sends_the_bytes_fastapi_would_encode(shop: Path) -> None:
    """The API dumps a portrait itself instead of through FastAPI's encoder: the same bytes
    as ``jsonable_encoder`` then Starlette's ``JSONResponse``, computed here independently."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse
    from fastapi.testclient import TestClient

    from sawubona.web.app import _json_bytes, _jsonable, create_app

    client = TestClient(create_app(shop))
    with sawubona.open(shop, read_only=True) as s:
        ids = some_customers(s, 30)
        expected = {cid: portrait.build(s, cid).to_dict() for cid in ids}
    accents = 0
    for cid in ids:
        d = expected[cid]
        d["lenses"] = {k: _jsonable(v) for k, v in d["lenses"].items()}
        r = client.get(f"/api/customers/{cid}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == JSONResponse(jsonable_encoder(d)).body, cid
        accents += any(b > 127 for b in r.content)
    assert accents > 0  # text beyond ASCII went through (sent as UTF-8, not \u escapes)
    # what JSON cannot hold as such goes through FastAPI's encoder, as before
    odd = {
        "when": dt.date(2024, 2, 29),
        "n": Decimal("1.5"),
    }
    assert (
        _json_bytes(odd)
        == JSONResponse(jsonable_encoder(odd)).body
        == b'{"when":"2024-02-29","n":1.5}'
    )


def test_serve_with_workers_answers_from_several_processes(shop: Path, tmp_path: Path) -> None:
    """``sawubona serve --workers 2``: two server processes under one supervisor, each with
    the store open read-only, answering portraits."""
    path = tmp_path / "served.duckdb"
    shutil.copyfile(shop, path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli = [sys.executable, "-m", "sawubona", "serve", "--store", str(path)]
    server = subprocess.Popen(
        [*cli, "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with sawubona.open(path, read_only=True) as s:
            cid = some_customers(s, 3)[1]
            expected = portrait.build(s, cid).to_dict()
        body = b""
        for _ in range(600):
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                con.request("GET", f"/api/customers/{cid}")
                body = con.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        assert json.loads(body)["story"] == expected["story"]
        children = [
            p
            for p in Path("/proc").glob("[0-9]*/stat")
            if p.read_text().rsplit(")", 1)[1].split()[1] == str(server.pid)
        ]
        assert len(children) >= 2  # the workers (uvicorn may add a helper process)
        # the supervisor marks the store served, for all its workers: a worker that
        # stops does not take the mark with it while the others still serve
        marker = Path(f"{path}.serving")
        assert marker.read_text().strip() == str(server.pid)
        workers = [int(p.parent.name) for p in children]
        os.kill(workers[0], signal.SIGTERM)
        for _ in range(100):  # until it has exited (gone, or a zombie not yet reaped)
            stat = Path(f"/proc/{workers[0]}/stat")
            if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
            time.sleep(0.1)
        assert marker.read_text().strip() == str(server.pid)
        assert served(path)
    finally:
        server.terminate()
        server.wait(30)
    assert not Path(f"{path}.serving").exists()  # gone with the supervisor


# -- the memory-mapped snapshot (sawubona.portrait_snapshot) ---------------------------


@pytest.fixture
def snapped(shop: Path, tmp_path: Path) -> Path:
    """A copy of the shop world after ``prepare``: indexes and a snapshot beside it."""
    from sawubona import portrait_snapshot

    path = tmp_path / "snapped.duckdb"
    shutil.copyfile(shop, path)
    with sawubona.open(path) as s:
        took = portrait.prepare(s)
        assert portrait_snapshot.directory(s) == Path(f"{path}.portrait")
    # readable by whoever may read the store (a server under another user), not private
    readable = Path(f"{path}.portrait").stat().st_mode & 0o444
    assert readable == path.stat().st_mode & 0o444 != 0
    assert {k for k in took if k.startswith("snapshot.")} >= {
        "snapshot.customers",
        "snapshot.touchpoints",
        "snapshot.journey_items",
    }
    return path


def _no_duckdb_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make DuckDB's point lookups fail: whatever still works came from the snapshot."""
    from sawubona.backends.duckdb import DuckDBBackend

    calls: list[str] = []

    def refuse(self: Any, name: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        calls.append(name)
        raise AssertionError(f"a DuckDB lookup of {name}")

    monkeypatch.setattr(DuckDBBackend, "lookup", refuse)
    return calls


def test_snapshot_gives_every_customer_the_same_portrait(
    snapped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sawubona.open(snapped, read_only=True) as s:
        ids: list[str] = s.arrow("customers", ["customer_id"]).column(0).to_pylist()
        plain_ctx = portrait.context(s, snapshot=False)
        expected = {cid: portrait.build(s, cid, plain_ctx).to_dict() for cid in ids}
        ctx = portrait.context(s)
        assert ctx.snapshot is not None
        for table, column in portrait.LOOKUPS:
            assert ctx.snapshot.has(table, column) == (table in ctx.present), table
        # each table's lookups give DuckDB's rows, values and order, key by key
        for table, column in portrait.LOOKUPS:
            if table not in ctx.present:
                continue
            keys = s.arrow(table, [column]).column(0).unique().to_pylist()[::7]
            for key in [*keys, "no-such-key"]:
                want = s._backend.lookup(table, {column: key})  # type: ignore[attr-defined]
                assert same(ctx.snapshot.lookup(table, {column: key}), want), (table, key)
        calls = _no_duckdb_lookups(monkeypatch)
        items = 0
        for cid in ids:
            got = portrait.build(s, cid, ctx).to_dict()
            assert same(got, expected[cid]), cid
            assert json.dumps(got, default=str) == json.dumps(expected[cid], default=str)
            items += any("core item" in x["text"] for x in got["sections"]["what matters"])
        assert calls == [] and items > 0  # journey items came from the snapshot too
        with pytest.raises(sawubona.errors.UnknownCustomerError):
            portrait.build(s, "no-such-id", ctx)


def test_api_serves_the_same_bytes_from_the_snapshot(
    shop: Path, snapped: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from sawubona.web.app import create_app

    with sawubona.open(shop, read_only=True) as s:
        ids = some_customers(s, 40)
    before = TestClient(create_app(shop))  # no snapshot beside it: DuckDB's lookups
    expected = {cid: before.get(f"/api/customers/{cid}").content for cid in ids}
    assert not Path(f"{shop}.portrait").exists()
    calls = _no_duckdb_lookups(monkeypatch)
    client = TestClient(create_app(snapped))
    for cid in ids:
        r = client.get(f"/api/customers/{cid}")
        assert r.status_code == 200 and r.content == expected[cid], cid
    assert calls == []
    assert client.get("/api/customers/no-such-id").status_code == 404


def test_a_stale_snapshot_is_never_read(snapped: Path, tmp_path: Path) -> None:
    """An ingest after the snapshot: the fingerprint differs, portraits read DuckDB (and
    see the new row) until the next prepare writes a new snapshot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sawubona import portrait_snapshot

    with sawubona.open(snapped, read_only=True) as s:
        old = portrait.context(s).snapshot
        assert old is not None
        touches = s.arrow("touchpoints")
        cid = touches.column("customer_id")[0].as_py()
    row = {k: v[0] for k, v in touches.slice(0, 1).to_pydict().items() if not k.startswith("_")}
    row["touchpoint_id"] = "planted-touch-1"
    row["at"] = max(touches.column("at").to_pylist()) + dt.timedelta(hours=1)
    (tmp_path / "more").mkdir()
    canonical = [f for f in touches.schema if not f.name.startswith("_")]
    pq.write_table(
        pa.Table.from_pylist([row], schema=pa.schema(canonical)),
        tmp_path / "more" / "touchpoints.parquet",
    )
    with sawubona.open(snapped) as s:
        s.ingest(tmp_path / "more")
        assert portrait_snapshot.open(s) is None  # stale
        ctx = portrait.context(s)
        assert ctx.snapshot is None
        fresh = portrait.build(s, cid, ctx).to_dict()
        assert "planted-touch-1" in json.dumps(fresh, default=str)
        # what the stale snapshot would have said: without the new row
        stale_ctx = portrait.Context(ctx.present, ctx.as_of, old)
        assert "planted-touch-1" not in json.dumps(
            portrait.build(s, cid, stale_ctx).to_dict(), default=str
        )
        assert "snapshot.touchpoints" in portrait.prepare(s)  # rewritten
        assert not [k for k in portrait.prepare(s) if k.startswith("snapshot.")]  # once
        again = portrait.context(s)
        assert again.snapshot is not None
        assert same(portrait.build(s, cid, again).to_dict(), fresh)


def test_forget_removes_the_snapshot(snapped: Path) -> None:
    from sawubona import privacy

    folder = Path(f"{snapped}.portrait")
    with sawubona.open(snapped) as s:
        cid = some_customers(s, 5)[3]
        assert any(cid.encode() in f.read_bytes() for f in folder.iterdir())  # it was there
        privacy.forget(s, cid)
        assert not folder.exists()
        assert portrait.context(s).snapshot is None
        portrait.prepare(s)  # the next prepare writes one without them
    assert folder.exists()
    files = list(folder.iterdir())
    assert len(files) > 10
    assert not any(cid.encode() in f.read_bytes() for f in files)
    leftovers = [p.name for p in snapped.parent.iterdir() if p.name.endswith((".tmp", ".old"))]
    assert leftovers == []


def test_snapshot_build_is_all_or_nothing(snapped: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sawubona import portrait_snapshot

    folder = Path(f"{snapped}.portrait")
    manifest = (folder / "manifest.json").read_bytes()
    real = portrait_snapshot._write_table
    written: list[str] = []

    def fail_on_third(con: Any, out: Path, table: str, column: str) -> bool:
        if len(written) == 2:
            raise OSError("disk full")
        written.append(table)
        return real(con, out, table, column)

    monkeypatch.setattr(portrait_snapshot, "_write_table", fail_on_third)
    with sawubona.open(snapped) as s, pytest.raises(OSError, match="disk full"):
        portrait_snapshot.build(s, force=True)
    assert len(written) == 2
    assert (folder / "manifest.json").read_bytes() == manifest  # the old one, untouched
    assert [p.name for p in snapped.parent.iterdir() if p.name.endswith((".tmp", ".old"))] == []
    with sawubona.open(snapped, read_only=True) as s:
        assert portrait_snapshot.open(s) is not None
        assert portrait_snapshot.build(s) == {}  # a reader writes nothing


def test_a_rebuild_writes_only_the_tables_that_changed(snapped: Path) -> None:
    """After one lens runs, only its table is written again; the others are the same files
    (hard links: same inode), and every portrait from the new snapshot is DuckDB's."""
    from sawubona import portrait_snapshot

    folder = Path(f"{snapped}.portrait")
    manifest = json.loads((folder / "manifest.json").read_text())
    inode = {t: (folder / f"{t}.arrow").stat().st_ino for t in manifest["tables"]}
    assert {"promises_status", "touchpoints", "customers"} <= inode.keys()
    with sawubona.open(snapped) as s:
        s.analyze(lenses=["promises"])
        assert portrait_snapshot.open(s) is None  # stale: the promises lens ran
        written = {k for k in portrait.prepare(s) if k.startswith("snapshot.")}
        assert written == {"snapshot.promises_status"}
    after = json.loads((folder / "manifest.json").read_text())
    assert after["tables"] == manifest["tables"]
    for t in inode:
        same_file = (folder / f"{t}.arrow").stat().st_ino == inode[t]
        assert same_file == (t != "promises_status"), t
    with sawubona.open(snapped, read_only=True) as s:
        plain, ctx = portrait.context(s, snapshot=False), portrait.context(s)
        assert ctx.snapshot is not None
        for cid in some_customers(s, 40):
            assert same(
                portrait.build(s, cid, ctx).to_dict(), portrait.build(s, cid, plain).to_dict()
            )
    with sawubona.open(snapped) as s:  # force: every table written again
        assert len(portrait_snapshot.build(s, force=True)) == len(manifest["tables"])
    assert all((folder / f"{t}.arrow").stat().st_ino != inode[t] for t in inode)
