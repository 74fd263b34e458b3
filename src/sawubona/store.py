"""The store: canonical tables, result tables, logs, behind one narrow boundary.

``sawubona.open(path)`` returns a :class:`Store` over a DuckDB file (the
default, ``./sawubona.duckdb``). Everything backend-specific lives in this
module: the rest of sawubona sees Ibis tables (``store.table(name)``), Arrow
data and the few operations below (``upsert``, ``append``, ``replace``,
``transaction``). Other backends (PostgreSQL, PySpark) plug in here later.

Tables the store creates:

* the canonical tables of :mod:`sawubona.schema`, each with ``_source`` and
  ``_ingested_at`` lineage columns;
* ``quarantine`` — every row that was read but not loaded, with its reason;
* ``ingest_log`` — one row per (load, source file, table): sha256, rows read,
  loaded, quarantined, inserted, updated, unchanged, start and end;
* ``lens_runs`` — one row per lens run: lens, as_of, parameters, duration,
  rows written.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sawubona import schema
from sawubona.errors import StoreBusyError, StoreError, UnknownTableError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.analyze import AnalyzeReport
    from sawubona.ingest.report import IngestReport
    from sawubona.portrait import Portrait

DEFAULT_STORE = "sawubona.duckdb"

_DUCK_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "money": "DOUBLE",
    "float": "DOUBLE",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "json": "VARCHAR",
}

#: Meta tables: name → (column, DuckDB type) pairs.
META_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "quarantine": (
        ("load_id", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("file", "VARCHAR"),
        ("file_sha256", "VARCHAR"),
        ("line", "BIGINT"),
        ("column_name", "VARCHAR"),
        ("rule", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("raw", "VARCHAR"),
        ("quarantined_at", "TIMESTAMP"),
    ),
    "ingest_log": (
        ("load_id", "VARCHAR"),
        ("file", "VARCHAR"),
        ("file_sha256", "VARCHAR"),
        ("source", "VARCHAR"),
        ("table_name", "VARCHAR"),
        ("rows_read", "BIGINT"),
        ("rows_loaded", "BIGINT"),
        ("rows_quarantined", "BIGINT"),
        ("rows_inserted", "BIGINT"),
        ("rows_updated", "BIGINT"),
        ("rows_unchanged", "BIGINT"),
        ("started_at", "TIMESTAMP"),
        ("finished_at", "TIMESTAMP"),
    ),
    "findings": (
        ("run_id", "VARCHAR"),
        ("lens", "VARCHAR"),
        ("key", "VARCHAR"),
        ("text", "VARCHAR"),
        ("value", "DOUBLE"),
        ("n", "BIGINT"),
        ("low", "DOUBLE"),
        ("high", "DOUBLE"),
        ("table_name", "VARCHAR"),
        ("where_json", "VARCHAR"),
        ("severity", "VARCHAR"),
        ("as_of", "TIMESTAMP"),
    ),
    "lens_runs": (
        ("run_id", "VARCHAR"),
        ("lens", "VARCHAR"),
        ("as_of", "TIMESTAMP"),
        ("parameters", "VARCHAR"),
        ("started_at", "TIMESTAMP"),
        ("duration_s", "DOUBLE"),
        ("rows_written", "VARCHAR"),
        ("status", "VARCHAR"),
        ("message", "VARCHAR"),
    ),
}

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _ident(name: str) -> str:
    """Quote a table or column name we created ourselves; refuse anything else."""
    if not _IDENT.match(name):
        raise UnknownTableError(f"{name!r} is not a valid table or column name")
    return f'"{name}"'


def canonical_ddl(table: schema.Table) -> str:
    cols = [f"{_ident(c.name)} {_DUCK_TYPES[c.type]}" for c in table.columns]
    cols += ['"_source" VARCHAR', '"_ingested_at" TIMESTAMP']
    return f"CREATE TABLE IF NOT EXISTS {_ident(table.name)} ({', '.join(cols)})"


def arrow_schema(table: schema.Table) -> pa.Schema:
    """The Arrow schema of a canonical table as the store holds it."""
    types = {
        "string": pa.string(),
        "timestamp": pa.timestamp("us"),
        "money": pa.float64(),
        "float": pa.float64(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "json": pa.string(),
    }
    fields = [pa.field(c.name, types[c.type]) for c in table.columns]
    fields += [pa.field("_source", pa.string()), pa.field("_ingested_at", pa.timestamp("us"))]
    return pa.schema(fields)


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int
    updated: int
    unchanged: int


def _parse_url(url: str | Path | None) -> Path:
    if url is None:
        return Path(DEFAULT_STORE)
    text = str(url)
    if text.startswith("duckdb://"):
        text = text[len("duckdb://") :]
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"the {scheme} backend is not available yet; use a DuckDB file path such as "
            "./sawubona.duckdb"
        )
    return Path(text)


class Store:
    """A sawubona store over a DuckDB file. Open it with :func:`sawubona.open`."""

    backend = "duckdb"

    def __init__(self, url: str | Path | None = None, *, read_only: bool = False) -> None:
        import duckdb
        import ibis

        self.path = _parse_url(url)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}; create it with `sawubona ingest` first")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._ibis = ibis.duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "not a valid duckdb database" in str(exc).lower():
                raise StoreError(
                    f"{self.path} is not a sawubona store (it is not a DuckDB file); "
                    "choose another path with --store"
                ) from None
            if "lock" not in str(exc).lower():
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            if read_only or not self._read_alongside(ibis, duckdb):
                raise StoreBusyError(
                    f"the store {self.path} is in use by another process (a load or an analysis "
                    "is running); wait for it to finish and try again"
                ) from None
        except duckdb.Error as exc:
            raise StoreError(
                f"{self.path} is not a sawubona store (DuckDB could not open it: {exc}); "
                "choose another path with --store"
            ) from None
        self._con = self._ibis.con
        self._lock = threading.RLock()
        self._con.execute("SET TimeZone = 'UTC'")
        if not self.read_only:
            self._create()

    def _read_alongside(self, ibis: Any, duckdb: Any) -> bool:
        """Another process reads the store (the web app): open it read-only alongside."""
        try:
            self._ibis = ibis.duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error:
            return False
        self.read_only = True
        return True

    # -- set-up ---------------------------------------------------------------

    def _create(self) -> None:
        with self.transaction():
            for t in schema.TABLES:
                self._con.execute(canonical_ddl(t))
            for name, cols in META_TABLES.items():
                body = ", ".join(f"{_ident(c)} {ty}" for c, ty in cols)
                self._con.execute(f"CREATE TABLE IF NOT EXISTS {_ident(name)} ({body})")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ibis.disconnect()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sawubona.Store {self.backend}:{self.path}>"

    # -- reading --------------------------------------------------------------

    def tables(self) -> list[str]:
        """Names of every table in the store (canonical, results, logs)."""
        rows = self._con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def has_table(self, name: str) -> bool:
        return name in self.tables()

    def table(self, name: str) -> ir.Table:
        """An Ibis table: ``.to_pandas()``, ``.to_polars()``, ``.to_pyarrow()``, or build on it."""
        if not self.has_table(name):
            known = ", ".join(self.tables())
            raise UnknownTableError(f"the store has no table {name!r} (it has: {known})")
        return self._ibis.table(name)

    def count(self, name: str) -> int:
        if not self.has_table(name):
            raise UnknownTableError(f"the store has no table {name!r}")
        row = self._con.execute(f"SELECT count(*) FROM {_ident(name)}").fetchall()[0]
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: self.count(name) for name in self.tables()}

    def arrow(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        cols = ", ".join(_ident(c) for c in columns) if columns else "*"
        return self._con.sql(f"SELECT {cols} FROM {_ident(name)}").to_arrow_table()

    def distinct_values(self, name: str, column: str) -> pa.Table:
        """The distinct non-null values of one column (used to check references)."""
        if not self.has_table(name):
            return pa.table({column: pa.array([], pa.string())})
        return self._con.sql(
            f"SELECT DISTINCT {_ident(column)} FROM {_ident(name)} "
            f"WHERE {_ident(column)} IS NOT NULL"
        ).to_arrow_table()

    def query_log(self, name: str, where: dict[str, Any] | None = None) -> pa.Table:
        """Rows of a meta table filtered by equality (parameters are bound, never pasted)."""
        if name not in META_TABLES:
            raise UnknownTableError(f"{name!r} is not a log table")
        sql = f"SELECT * FROM {_ident(name)}"
        params: list[Any] = []
        if where:
            sql += " WHERE " + " AND ".join(f"{_ident(k)} = ?" for k in where)
            params = list(where.values())
        return self._con.sql(sql, params=params).to_arrow_table()

    # -- writing --------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """All writes inside commit together or not at all."""
        if self.read_only:
            raise StoreBusyError(
                f"the store {self.path} is open read-only (another process, such as "
                "`sawubona serve`, is using it); stop that process to write"
            )
        with self._lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            else:
                self._con.execute("COMMIT")

    def upsert(self, name: str, data: pa.Table | pa.RecordBatchReader) -> UpsertCounts:
        """Insert new rows, replace changed rows (by key), leave identical rows alone.

        ``data`` has the canonical columns plus ``_source`` and ``_ingested_at``.
        Runs inside the caller's transaction.
        """
        t = schema.table(name)
        tbl = _ident(name)
        cols = ", ".join(_ident(c) for c in [*t.column_names, "_source", "_ingested_at"])
        if self.count(name) == 0:  # a first load: nothing to compare with
            self._con.register("_sawubona_incoming", data)
            try:
                before = self.count(name)
                self._con.execute(
                    f"INSERT INTO {tbl} ({cols}) SELECT {cols} FROM _sawubona_incoming"
                )
            finally:
                self._con.unregister("_sawubona_incoming")
            return UpsertCounts(inserted=self.count(name) - before, updated=0, unchanged=0)
        self._con.register("_sawubona_incoming", data)
        try:
            self._con.execute(
                "CREATE OR REPLACE TEMP TABLE _sawubona_inc AS SELECT * FROM _sawubona_incoming"
            )
        finally:
            self._con.unregister("_sawubona_incoming")
        on = " AND ".join(f"i.{_ident(k)} = e.{_ident(k)}" for k in t.key)
        same = " AND ".join(
            f"i.{_ident(c)} IS NOT DISTINCT FROM e.{_ident(c)}" for c in t.column_names
        )
        first_key = _ident(t.key[0])
        self._con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _sawubona_cls AS
                SELECT i.*, CASE WHEN e.{first_key} IS NULL THEN 'new'
                                 WHEN {same} THEN 'same' ELSE 'changed' END AS _status
                FROM _sawubona_inc i LEFT JOIN {tbl} e ON {on}"""
        )
        counts = dict(
            self._con.execute("SELECT _status, count(*) FROM _sawubona_cls GROUP BY 1").fetchall()
        )
        if counts.get("changed"):
            keys = ", ".join(_ident(k) for k in t.key)
            self._con.execute(
                f"DELETE FROM {tbl} WHERE ({keys}) IN "
                f"(SELECT ({keys}) FROM _sawubona_cls WHERE _status = 'changed')"
                if len(t.key) > 1
                else f"DELETE FROM {tbl} WHERE {keys} IN "
                f"(SELECT {keys} FROM _sawubona_cls WHERE _status = 'changed')"
            )
        if counts.get("changed") or counts.get("new"):
            self._con.execute(
                f"INSERT INTO {tbl} ({cols}) SELECT {cols} FROM _sawubona_cls "
                "WHERE _status <> 'same'"
            )
        self._con.execute("DROP TABLE IF EXISTS _sawubona_inc")
        self._con.execute("DROP TABLE IF EXISTS _sawubona_cls")
        return UpsertCounts(
            inserted=int(counts.get("new", 0)),
            updated=int(counts.get("changed", 0)),
            unchanged=int(counts.get("same", 0)),
        )

    def append(self, name: str, data: pa.Table) -> None:
        """Append rows to a meta table (quarantine, logs)."""
        if name not in META_TABLES:
            raise UnknownTableError(f"{name!r} is not a log table")
        if data.num_rows == 0:
            return
        cols = ", ".join(_ident(c) for c in data.column_names)
        self._con.register("_sawubona_append", data)
        try:
            self._con.execute(
                f"INSERT INTO {_ident(name)} ({cols}) SELECT {cols} FROM _sawubona_append"
            )
        finally:
            self._con.unregister("_sawubona_append")

    def delete_where(self, name: str, column: str, values: Sequence[Any]) -> int:
        """Delete rows of ``name`` whose ``column`` is one of ``values``; returns the count."""
        if not values:
            return 0
        marks = ", ".join("?" for _ in values)
        before = self.count(name)
        self._con.execute(
            f"DELETE FROM {_ident(name)} WHERE {_ident(column)} IN ({marks})", list(values)
        )
        return before - self.count(name)

    def delete_quarantine(self, table: str, file_sha256s: Sequence[str]) -> int:
        """Drop the quarantine rows an earlier load of the same files left for ``table``."""
        if not file_sha256s:
            return 0
        marks = ", ".join("?" for _ in file_sha256s)
        row = self._con.execute(
            f"SELECT count(*) FROM quarantine WHERE table_name = ? AND file_sha256 IN ({marks})",
            [table, *file_sha256s],
        ).fetchall()[0]
        self._con.execute(
            f"DELETE FROM quarantine WHERE table_name = ? AND file_sha256 IN ({marks})",
            [table, *file_sha256s],
        )
        return int(row[0]) if row else 0

    def replace_findings(self, lens: str, data: pa.Table) -> None:
        """Replace one lens's findings (inside the caller's transaction)."""
        self._con.execute("DELETE FROM findings WHERE lens = ?", [lens])
        self.append("findings", data)

    def replace(self, name: str, data: pa.Table) -> None:
        """Create or replace a result table with ``data`` (inside the caller's transaction)."""
        if name in schema.TABLE_BY_NAME or name in META_TABLES:
            raise StoreError(f"{name} is a canonical or log table and cannot be replaced")
        self._con.register("_sawubona_result", data)
        try:
            self._con.execute(
                f"CREATE OR REPLACE TABLE {_ident(name)} AS SELECT * FROM _sawubona_result"
            )
        finally:
            self._con.unregister("_sawubona_result")

    def log_lens_run(self, **fields: Any) -> None:
        row = {k: [v] for k, v in fields.items()}
        if "parameters" in row:
            row["parameters"] = [json.dumps(fields["parameters"], default=str, sort_keys=True)]
        if "rows_written" in row:
            row["rows_written"] = [json.dumps(fields["rows_written"], sort_keys=True)]
        self.append("lens_runs", pa.table(row))

    # -- library entry points (thin: the work is in the subpackages) ----------

    def ingest(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        adapter: str | None = None,
        mapping: str | Path | None = None,
        allow_orphans: bool = False,
        progress: Any = None,
    ) -> IngestReport:
        """Load files into the store; see :func:`sawubona.ingest.ingest`."""
        from sawubona.ingest import ingest

        return ingest(
            self,
            paths,
            adapter=adapter,
            mapping=mapping,
            allow_orphans=allow_orphans,
            progress=progress,
        )

    def portrait(self, customer_id: str) -> Portrait:
        """One customer on one page; see :mod:`sawubona.portrait`."""
        from sawubona.portrait import build

        return build(self, customer_id)

    def analyze(
        self,
        lenses: Sequence[str] | None = None,
        *,
        as_of: Any = None,
        settings: dict[str, Any] | None = None,
        progress: Any = None,
    ) -> AnalyzeReport:
        """Run lenses and write their results; see :func:`sawubona.analyze.analyze`."""
        from sawubona.analyze import analyze

        return analyze(self, lenses, as_of=as_of, settings=settings, progress=progress)

    def export(
        self, out_dir: str | Path, *, fmt: str = "parquet", tables: Sequence[str] | None = None
    ) -> dict[str, Path]:
        """Write tables (default: every non-empty canonical and result table) to ``out_dir``."""
        if fmt not in ("parquet", "csv"):
            raise StoreError(f"unknown export format {fmt!r}; use parquet or csv")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        names = list(tables) if tables else [n for n, c in self.counts().items() if c > 0]
        written: dict[str, Path] = {}
        for name in names:
            target = out / f"{name}.{fmt}"
            opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
            self._con.execute(
                f"COPY (SELECT * FROM {_ident(name)}) TO '{_sql_path(target)}' {opts}"
            )
            written[name] = target
        return written


def _sql_path(path: Path) -> str:
    """A path as a SQL string literal body (single quotes doubled)."""
    return str(path).replace("'", "''")


def open(url: str | Path | None = None, *, read_only: bool = False) -> Store:
    """Open (or create) a store. ``url`` is a DuckDB file path (default ./sawubona.duckdb)."""
    return Store(url, read_only=read_only)
