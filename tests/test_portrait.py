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
        assert set(again) == set(first)
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
    ctx = portrait.context(indexed)
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
        assert len(names) == len(made)
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
    finally:
        server.terminate()
        server.wait(30)
