"""The store: canonical tables, result tables, logs, behind one narrow boundary.

``sawubona.open(url)`` returns a :class:`Store` over a DuckDB file (the default,
``./sawubona.duckdb``), a PostgreSQL database (``postgres://user@host:port/db``) or
a Spark warehouse (``spark:local[2]``, or ``sawubona.open(spark=session)``); see
:mod:`sawubona.backends` and docs/backends.md. Everything backend-specific lives
behind this module: the rest of sawubona sees Ibis tables (``store.table(name)``),
Arrow data and the few operations below (``upsert``, ``append``, ``replace``,
``transaction``).

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
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sawubona import backends, schema
from sawubona.backends.base import ident as _ident
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


def _meta_schema(cols: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.schema([pa.field(c, _META_ARROW[ty]) for c, ty in cols])


_META_ARROW = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
}


class Store:
    """A sawubona store. Open it with :func:`sawubona.open`."""

    def __init__(
        self,
        url: str | Path | None = None,
        *,
        read_only: bool = False,
        spark: Any = None,
        warehouse: str | Path | None = None,
    ) -> None:
        self._backend = backends.connect(url, read_only=read_only, spark=spark, warehouse=warehouse)
        self.backend: str = self._backend.name
        #: the DuckDB file, or the server / Spark address (password masked)
        self.path: Any = self._backend.location
        self.read_only = self._backend.read_only
        self._ibis = self._backend.ibis
        if self.backend == "duckdb":
            self._con = self._backend.con  # type: ignore[attr-defined]
        self._lock = threading.RLock()
        self._depth = 0
        if not self.read_only:
            self._create()

    # -- set-up ---------------------------------------------------------------

    def _create(self) -> None:
        with self.transaction():
            for t in schema.TABLES:
                self._backend.ensure(t.name, arrow_schema(t))
            for name, cols in META_TABLES.items():
                self._backend.ensure(name, _meta_schema(cols))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sawubona.Store {self.backend}:{self.path}>"

    # -- reading --------------------------------------------------------------

    def tables(self) -> list[str]:
        """Names of every table in the store (canonical, results, logs)."""
        return self._backend.tables()

    def has_table(self, name: str) -> bool:
        return name in self.tables()

    def table(self, name: str) -> ir.Table:
        """An Ibis table: ``.to_pandas()``, ``.to_polars()``, ``.to_pyarrow()``, or build on it."""
        if not self.has_table(name):
            known = ", ".join(self.tables())
            raise UnknownTableError(f"the store has no table {name!r} (it has: {known})")
        return self._backend.table(name)

    def count(self, name: str) -> int:
        if not self.has_table(name):
            raise UnknownTableError(f"the store has no table {name!r}")
        return self._backend.count(name)

    def counts(self) -> dict[str, int]:
        """Row count of every table."""
        return {name: self.count(name) for name in self.tables()}

    def arrow(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
    ) -> pa.Table:
        """Rows of ``name`` as Arrow; ``where``: column = value, bound as parameters (never
        pasted into SQL), so a point lookup costs one indexed-or-pruned scan and no Ibis."""
        _ident(name)
        return self._backend.select(name, columns, where=where)

    def distinct_values(self, name: str, column: str) -> pa.Table:
        """The distinct non-null values of one column (used to check references)."""
        if not self.has_table(name):
            return pa.table({column: pa.array([], pa.string())})
        return self._backend.distinct(name, column)

    def query_log(self, name: str, where: dict[str, Any] | None = None) -> pa.Table:
        """Rows of a meta table filtered by equality (parameters are bound, never pasted)."""
        if name not in META_TABLES:
            raise UnknownTableError(f"{name!r} is not a log table")
        return self._backend.select(name, where=where)

    # -- writing --------------------------------------------------------------

    @contextlib.contextmanager
    def memory_share(self, share: float) -> Iterator[Store]:
        """Within the block, the engine may use ``share`` of RAM (embedded engines only;
        ``SAWUBONA_MEMORY_LIMIT`` still wins); the default share again after it."""
        from sawubona import limits

        self._backend.memory_share(share)
        try:
            yield self
        finally:
            self._backend.memory_share(limits.DEFAULT_SHARE)

    def thread_tables(self) -> contextlib.AbstractContextManager[Callable[[str], Any]] | None:
        """For a lens on a thread of its own: a context giving ``table(name)`` read through
        that thread's own connection, or ``None`` when the backend runs one lens at a time
        (PostgreSQL, Spark)."""
        return self._backend.thread_tables()

    def release_cache(self) -> None:
        """Let the engine drop the table pages it keeps cached in this process (DuckDB);
        only while no query runs."""
        self._backend.release_cache()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """All writes inside commit together or not at all (see docs/backends.md for Spark).

        A transaction opened inside another joins it.
        """
        if self.read_only and getattr(self._backend, "can_copy_on_write", False):
            # readers (the web app) hold the file: write a private copy, swapped in at close
            self._backend.copy_on_write()  # type: ignore[attr-defined]
            self._ibis = self._backend.ibis
            self._con = self._backend.con  # type: ignore[attr-defined]
            self.read_only = False
            self._create()
        if self.read_only:
            raise StoreBusyError(
                f"the store {self.path} is open read-only (another process is writing to it, "
                "or it was opened read-only); wait for the writer to finish and try again"
            )
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._backend.begin()
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._backend.rollback()
                raise
            else:
                self._depth = 0
                self._backend.commit()

    def staging_connection(self) -> Any | None:
        """The connection ingest may stage its files in, or None to stage apart.

        A writable DuckDB store lends its own connection: staged rows then reach the store
        by ``INSERT … SELECT`` (see :meth:`upsert`) instead of through Arrow. A store that
        writes a private copy on its first write (the web app holds the file) lends none,
        since that write swaps the connection.
        """
        if self.backend != "duckdb" or self.read_only:
            return None
        return self._con

    def upsert(self, name: str, data: pa.Table | pa.RecordBatchReader | str) -> UpsertCounts:
        """Insert new rows, replace changed rows (by key), leave identical rows alone.

        ``data`` has the canonical columns plus ``_source`` and ``_ingested_at``; it may
        also be the name of a temporary view on :meth:`staging_connection`.
        Runs inside the caller's transaction (or its own).
        """
        t = schema.table(name)
        cols = [*t.column_names, "_source", "_ingested_at"]
        for c in cols:
            _ident(c)
        if isinstance(data, str) and self.staging_connection() is None:
            raise ValueError("only a writable DuckDB store reads rows from a staged view")
        with self.transaction():
            new, changed, same = self._backend.upsert(
                name, data, key=t.key, compare=t.column_names, columns=cols
            )
        return UpsertCounts(inserted=new, updated=changed, unchanged=same)

    def append(self, name: str, data: pa.Table) -> None:
        """Append rows to a meta table (quarantine, logs)."""
        if name not in META_TABLES:
            raise UnknownTableError(f"{name!r} is not a log table")
        if data.num_rows == 0:
            return
        for c in data.column_names:
            _ident(c)
        with self.transaction():
            self._backend.insert(name, data)

    def delete_where(self, name: str, column: str, values: Sequence[Any]) -> int:
        """Delete rows of ``name`` whose ``column`` is one of ``values``; returns the count."""
        if not values:
            return 0
        with self.transaction():
            return self._backend.delete_in(_name(name), {_name(column): list(values)})

    def delete_quarantine(self, table: str, file_sha256s: Sequence[str]) -> int:
        """Drop the quarantine rows an earlier load of the same files left for ``table``."""
        if not file_sha256s:
            return 0
        with self.transaction():
            return self._backend.delete_in(
                "quarantine", {"table_name": [table], "file_sha256": list(file_sha256s)}
            )

    def replace_findings(self, lens: str, data: pa.Table) -> None:
        """Replace one lens's findings (inside the caller's transaction)."""
        with self.transaction():
            self._backend.delete_in("findings", {"lens": [lens]})
            self.append("findings", data)

    def replace(self, name: str, data: pa.Table) -> None:
        """Create or replace a result table with ``data`` (inside the caller's transaction)."""
        if name in schema.TABLE_BY_NAME or name in META_TABLES:
            raise StoreError(f"{name} is a canonical or log table and cannot be replaced")
        with self.transaction():
            self._backend.replace(_name(name), data)

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
            target = out / f"{_name(name)}.{fmt}"
            self._backend.export(name, target, fmt)
            written[name] = target
        return written


def _name(name: str) -> str:
    _ident(name)
    return name


def open(
    url: str | Path | None = None,
    *,
    read_only: bool = False,
    spark: Any = None,
    warehouse: str | Path | None = None,
) -> Store:
    """Open (or create) a store.

    ``url`` is a DuckDB file path (default ./sawubona.duckdb), ``postgres://…`` or
    ``spark:local[2]``; ``spark=`` takes a running ``SparkSession`` and ``warehouse=``
    the directory a Spark store keeps its tables in. See :mod:`sawubona.backends`.
    """
    return Store(url, read_only=read_only, spark=spark, warehouse=warehouse)
