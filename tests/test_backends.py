"""One suite over every backend: the same world loaded into DuckDB, PostgreSQL and Spark
through the normal ingest, every lens run on each, and every result table compared
with DuckDB's.

Equality: same columns, same rows once sorted; numbers equal to a relative 1e-9
(absolute 1e-9 near zero: the engines sum in different orders); a NaN equals a
missing value, because Ibis reads Spark results through pandas, which cannot tell
them apart. Known gaps are strict expected failures that name what is missing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import sawubona
from backends_fixtures import PostgresServer, pg_server, spark_session  # noqa: F401
from sawubona import backends, schema
from sawubona.analyze import run_order
from sawubona.lenses import available

LENSES = list(available())
REL = 1e-9
SIZE = 300  # customers: big enough that every lens has rows, small enough for Spark on 2 cores

#: (backend, lens) → what is missing there (a strict expected failure); none at present
GAPS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sawubona.demo import generate

    root = tmp_path_factory.mktemp("xworld")
    generate(root / "world", world="telco", size=SIZE, seed=5)
    return root / "world"


class Loaded:
    """A store with the world loaded and each lens run on its own (errors kept)."""

    def __init__(self, store: sawubona.Store, world: Path) -> None:
        self.store = store
        self.first = store.ingest(world)
        self.second = store.ingest(world)
        self.errors: dict[str, BaseException] = {}
        # each lens on its own, in the order analyze runs them (touch before experience,
        # which then reads the touch lens's verdicts through a join on every engine)
        for lens in run_order(available(), LENSES):
            try:
                store.analyze([lens])
            except Exception as exc:
                self.errors[lens] = exc


@pytest.fixture(scope="session")
def duck(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    store = sawubona.open(tmp_path_factory.mktemp("xduck") / "x.duckdb")
    yield Loaded(store, world)
    store.close()


@pytest.fixture(scope="session")
def pg(world: Path, pg_server: PostgresServer) -> Iterator[Loaded]:  # noqa: F811
    store = sawubona.open(pg_server.database("cross"))
    yield Loaded(store, world)
    store.close()


@pytest.fixture(scope="session")
def spark(
    world: Path,
    spark_session: Any,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Loaded]:
    store = sawubona.open(spark=spark_session, warehouse=tmp_path_factory.mktemp("xspark"))
    yield Loaded(store, world)
    store.close()


BACKENDS = [
    pytest.param("pg", marks=pytest.mark.postgres, id="postgres"),
    pytest.param("spark", marks=pytest.mark.spark, id="spark"),
]


def _cases() -> list[Any]:
    out = []
    for b in BACKENDS:
        name = b.values[0]
        kind = "postgres" if name == "pg" else "spark"
        for lens in LENSES:
            marks = list(b.marks)
            if (kind, lens) in GAPS:
                marks.append(pytest.mark.xfail(strict=True, reason=GAPS[(kind, lens)]))
            out.append(pytest.param(name, lens, marks=marks, id=f"{b.id}-{lens}"))
    return out


# -- comparison ---------------------------------------------------------------


def _norm(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list):
        return tuple(_norm(v) for v in value)
    return value


def _one_key(v: Any) -> tuple[Any, ...]:
    # None first, then by type name so mixed columns still sort; floats rounded so that
    # last-digit differences between engines do not reorder rows
    if isinstance(v, tuple):
        return (True, "tuple", tuple(_one_key(x) for x in v))
    if isinstance(v, float):
        v = round(v, 6)
    return (v is not None, type(v).__name__, v if v is not None else 0)


def _sort_key(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_one_key(v) for v in row)


def _rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    cols = [[_norm(v) for v in table.column(c).to_pylist()] for c in columns]
    rows = list(zip(*cols, strict=True)) if cols else []
    return sorted(rows, key=_sort_key)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=REL, abs_tol=1e-9)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def assert_same_table(name: str, want: pa.Table, got: pa.Table) -> None:
    assert sorted(got.column_names) == sorted(want.column_names), name
    assert got.num_rows == want.num_rows, f"{name}: {got.num_rows} rows, want {want.num_rows}"
    cols = sorted(want.column_names)
    w, g = _rows(want, cols), _rows(got, cols)
    for i, (rw, rg) in enumerate(zip(w, g, strict=True)):
        bad = [c for c, x, y in zip(cols, rw, rg, strict=True) if not _close(x, y)]
        assert not bad, f"{name} row {i}: columns {bad} differ: {rg} != {rw}"


def _results(store: sawubona.Store, lens: str) -> list[str]:
    return [n for n in store.tables() if n.startswith(f"{lens}_")]


# -- the cross-backend tests --------------------------------------------------


@pytest.mark.parametrize(("backend", "lens"), _cases())
def test_lens_results_equal_duckdb(
    backend: str, lens: str, duck: Loaded, request: pytest.FixtureRequest
) -> None:
    other: Loaded = request.getfixturevalue(backend)
    assert lens not in duck.errors, f"{lens} failed on DuckDB: {duck.errors.get(lens)}"
    if lens in other.errors:
        raise other.errors[lens]
    want_names = _results(duck.store, lens)
    assert want_names, f"{lens} wrote no result table on DuckDB"
    assert _results(other.store, lens) == want_names
    for name in want_names:
        assert_same_table(name, duck.store.arrow(name), other.store.arrow(name))
    findings = ["key", "text", "value", "n", "low", "high", "table_name", "where_json"]
    assert_same_table(
        f"{lens} findings",
        duck.store.query_log("findings", {"lens": lens}).select(findings),
        other.store.query_log("findings", {"lens": lens}).select(findings),
    )
    runs = other.store.query_log("lens_runs", {"lens": lens})
    assert runs.column("status").to_pylist() == ["ran"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ingest_loads_the_same_rows_and_reloads_idempotently(
    backend: str, duck: Loaded, request: pytest.FixtureRequest
) -> None:
    other: Loaded = request.getfixturevalue(backend)
    assert other.first.committed and other.second.committed
    for t in schema.TABLES:
        assert other.store.count(t.name) == duck.store.count(t.name), t.name
        want = duck.store.arrow(t.name).drop_columns(["_ingested_at"])
        got = other.store.arrow(t.name).drop_columns(["_ingested_at"])
        assert_same_table(t.name, want, got)
    first = {r.table: r.inserted for r in other.first.tables}
    assert sum(first.values()) == sum(duck.store.count(t.name) for t in schema.TABLES)
    second = other.second.tables
    assert all(r.inserted == 0 and r.updated == 0 for r in second)
    assert sum(r.unchanged for r in second) == sum(first.values())


@pytest.mark.parametrize("backend", BACKENDS)
def test_quarantine_update_and_rollback(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, world: Path
) -> None:
    other: Loaded = request.getfixturevalue(backend)
    store = other.store
    folder = tmp_path / "late"
    folder.mkdir()
    (folder / "customers.csv").write_text(
        "customer_id,segment,joined_at\nzz-new-1,vip,2024-01-02\nzz-new-2,vip,not a date\n"
    )
    before = store.count("customers")
    report = store.ingest(folder)
    assert report.rows_quarantined == 1
    assert store.count("customers") == before + 1
    q = store.query_log("quarantine", {"table_name": "customers"})
    assert q.column("line").to_pylist() == [3]
    # the same file again: the quarantine is replaced, not doubled
    store.ingest(folder)
    assert store.query_log("quarantine", {"table_name": "customers"}).num_rows == 1
    # a changed row is an update
    (folder / "customers.csv").write_text(
        "customer_id,segment,joined_at\nzz-new-1,basic,2024-01-02\n"
    )
    again = store.ingest(folder)
    assert [(r.inserted, r.updated) for r in again.tables] == [(0, 1)]
    seg = store.table("customers").filter(lambda t: t.customer_id == "zz-new-1").to_pyarrow()
    assert seg.column("segment").to_pylist() == ["basic"]
    # a failed transaction leaves no trace
    with pytest.raises(RuntimeError), store.transaction():
        store.delete_where("customers", "customer_id", ["zz-new-1"])
        assert store.count("customers") == before
        raise RuntimeError("boom")
    assert store.count("customers") == before + 1
    store.delete_where("customers", "customer_id", ["zz-new-1"])
    assert store.count("customers") == before


# -- addresses and extras (no server needed) ----------------------------------


def test_addresses_name_their_backend() -> None:
    assert backends.parse("shop.duckdb") == backends.Address("duckdb", "shop.duckdb")
    pg_url = backends.parse("postgres://me:secret@db:5432/cx")
    assert pg_url.kind == "postgres" and pg_url.target == "postgresql://me:secret@db:5432/cx"
    assert "secret" not in pg_url.display()
    # through pathlib.Path (the CLI's --store) one slash is lost; the address survives
    assert backends.parse(Path("postgresql://me@db/cx")).target == "postgresql://me@db/cx"
    sp = backends.parse("spark:local[2]?warehouse=/tmp/wh")
    assert (sp.kind, sp.target, sp.warehouse) == ("spark", "local[2]", "/tmp/wh")
    assert backends.parse(Path("spark://host:7077")).target == "spark://host:7077"
    with pytest.raises(sawubona.StoreError, match="unknown store address scheme 'mysql'"):
        backends.parse("mysql://x/y")


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    assert backends.install_hint("spark") == (
        "the spark backend needs packages that are not installed; "
        "install them with: pip install 'sawubona[spark]'"
    )
    monkeypatch.setitem(backends._EXTRA_MODULES, "postgres", ("sawubona_no_such_module",))
    with pytest.raises(backends.MissingExtraError, match=r"pip install 'sawubona\[postgres\]'"):
        sawubona.open("postgres://nobody@127.0.0.1:1/x")


@pytest.mark.postgres
def test_postgres_refused_connection_is_one_sentence() -> None:
    pytest.importorskip("psycopg", reason="psycopg not installed: pip install 'sawubona[postgres]'")
    with pytest.raises(sawubona.StoreError, match="cannot connect to the PostgreSQL store"):
        sawubona.open("postgres://nobody@127.0.0.1:1/x")


# -- the portable ASOF join (Spark has none) ----------------------------------


def _asof_reference(
    left: list[dict[str, Any]], right: list[dict[str, Any]], op: str
) -> list[tuple[Any, ...]]:
    """Brute force: per left row, the matching right row nearest on the side ``op`` names."""
    test = {
        ">=": lambda x, y: x >= y,
        ">": lambda x, y: x > y,
        "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y,
    }[op]
    out = []
    for row in left:
        hits = [
            r
            for r in right
            if row["g"] is not None
            and row["x"] is not None
            and r["rg"] == row["g"]
            and test(row["x"], r["y"])
        ]
        best = (max if op in (">=", ">") else min)(hits, key=lambda r: r["y"], default=None)
        out.append(
            (
                row["id"],
                row["g"],
                row["x"],
                *((best["rg"], best["y"], best["v"]) if best else (None, None, None)),
            )
        )
    return sorted(out, key=_sort_key)


@pytest.mark.spark
def test_asof_join_portable_form_matches_duckdb_and_brute_force(
    spark_session: Any,  # noqa: F811
) -> None:
    import ibis

    from sawubona.lenses.promises.clock import asof_join

    left: list[dict[str, Any]] = [
        {"id": 1, "g": "a", "x": 5},
        {"id": 2, "g": "a", "x": 10},  # equal to a right key: >= and <= take it, > and < not
        {"id": 3, "g": "a", "x": 0},  # before every right key of its group
        {"id": 4, "g": "b", "x": 7},
        {"id": 5, "g": "c", "x": 7},  # no right row in its group
        {"id": 6, "g": None, "x": 7},
        {"id": 7, "g": "b", "x": None},
        {"id": 8, "g": "a", "x": 5},  # a duplicate of row 1 but for the id
    ]
    right: list[dict[str, Any]] = [
        {"rg": "a", "y": 3, "v": "a3"},
        {"rg": "a", "y": 10, "v": "a10"},
        {"rg": "a", "y": 12, "v": "a12"},
        {"rg": "b", "y": 1, "v": "b1"},
        {"rg": "b", "y": 9, "v": "b9"},
    ]
    lt, rt = pa.Table.from_pylist(left), pa.Table.from_pylist(right)
    duck = ibis.duckdb.connect()
    duck.con.register("l", lt)
    duck.con.register("r", rt)
    spark = ibis.pyspark.connect(spark_session)
    spark_session.createDataFrame(lt).createOrReplaceTempView("asof_l")
    spark_session.createDataFrame(rt).createOrReplaceTempView("asof_r")
    cols = ["id", "g", "x", "rg", "y", "v"]
    for op in (">=", ">", "<", "<="):
        want = _asof_reference(left, right, op)
        for name, con, ln, rn in (
            ("duckdb", duck, "l", "r"),
            ("pyspark", spark, "asof_l", "asof_r"),
        ):
            got = asof_join(con.table(ln), con.table(rn), "x", op, "y", ("g", "rg")).to_pyarrow()
            assert _rows(got, cols) == want, (name, op)
