"""DuckDB: a store in one file, the default. Real transactions, one writer at a time.

DuckDB lets one process write a file, or any number of processes read it — not both.
So that the web app (a reader that stays open) never stops a load or an analysis, a
writer that finds the file held by readers writes a **private copy** instead
(``<store>.next-<pid>``) and, when it closes, swaps it in with one atomic rename;
readers keep the version they opened and see the new one when they reopen (the web
app does on its next request). Writers take ``<store>.writer.lock`` first, so two
writers never interleave: the second is refused in one sentence. A writer killed
mid-way leaves the store as it was (its copy is deleted by the next writer).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from sawubona import limits
from sawubona.backends.base import (
    Backend,
    as_table,
    ident,
    merge_incoming,
    unsupported_type,
)
from sawubona.errors import StoreBusyError, StoreError


def serving_marker(path: Path) -> Path:
    """``<store>.serving``: written by the web app while it serves ``path`` (its pid)."""
    return path.with_name(path.name + ".serving")


def served(path: Path) -> bool:
    """Whether a live process has said it serves ``path`` (a stale marker does not count)."""
    try:
        pid = int(serving_marker(path).read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def duck_type(name: str, column: str, dtype: pa.DataType) -> str:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "VARCHAR"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP"
    if pa.types.is_floating(dtype):
        return "DOUBLE"
    if pa.types.is_integer(dtype):
        return "BIGINT"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_date(dtype):
        return "DATE"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return duck_type(name, column, dtype.value_type) + "[]"
    raise unsupported_type("DuckDB", name, column, dtype)


class DuckDBBackend(Backend):
    name = "duckdb"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.location = path
        self._lock_fd: int | None = None
        #: the private copy being written when readers hold the file (see the module doc)
        self._copy: Path | None = None
        #: opened for writing, but only alongside readers: a write first makes the copy
        self.can_copy_on_write = False
        #: one cursor (a connection to the same database) per thread, for point lookups
        self._cursors: dict[int, Any] = {}
        self._cursors_lock = threading.Lock()

    def open(self, read_only: bool) -> DuckDBBackend:
        import duckdb
        import ibis

        self.read_only = read_only
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path}; create it with `sawubona ingest` first")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if not read_only and not self._take_writer_lock():
            # another sawubona process is writing: read alongside, refuse writes in one sentence
            if not self.path.exists() or not self._read_alongside(ibis, duckdb):
                raise StoreBusyError(self._busy()) from None
            self._connected()
            return self
        # the web app serves this file and reopens it after each write: never hold it
        # exclusively, or its next request could not open it
        served_here = not read_only and self.path.exists() and served(self.path)
        if served_here and self._read_alongside(ibis, duckdb):
            self.can_copy_on_write = True
            self._release_writer_lock()
            self._connected()
            return self
        try:
            self.ibis = ibis.duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "not a valid duckdb database" in str(exc).lower():
                raise StoreError(
                    f"{self.path} is not a sawubona store (it is not a DuckDB file); "
                    "choose another path with --store"
                ) from None
            if "lock" not in str(exc).lower():
                raise StoreError(f"cannot open the store {self.path}: {exc}") from None
            self._release_writer_lock()
            if read_only or not self._read_alongside(ibis, duckdb):
                raise StoreBusyError(
                    f"the store {self.path} is in use by another process (a load or an analysis "
                    "is running); wait for it to finish and try again"
                ) from None
            # readers (the web app) hold the file: writes will go to a private copy
            self.can_copy_on_write = True
        except duckdb.Error as exc:
            raise StoreError(
                f"{self.path} is not a sawubona store (DuckDB could not open it: {exc}); "
                "choose another path with --store"
            ) from None
        self._connected()
        return self

    def _connected(self) -> None:
        self.con = self.ibis.con
        self.con.execute("SET TimeZone = 'UTC'")
        # a share of RAM, not DuckDB's 80%; spills to <store>.tmp
        limits.configure(self.con, share=getattr(self, "_share", limits.DEFAULT_SHARE))

    def memory_share(self, share: float) -> None:
        self._share = share  # kept for a copy-on-write reconnect
        limits.set_share(self.con, share)

    @contextlib.contextmanager
    def _thread_tables(self) -> Iterator[Callable[[str], Any]]:
        import ibis

        cursor = self.con.cursor()  # a connection of its own to the same database
        try:
            cursor.execute("SET TimeZone = 'UTC'")  # a per-connection setting
            yield ibis.duckdb.from_connection(cursor).table
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def thread_tables(self) -> contextlib.AbstractContextManager[Callable[[str], Any]]:
        """Tables read through a cursor of the calling thread's own, closed with the
        context (a DuckDB connection must not be used by two threads at once)."""
        return self._thread_tables()

    def release_cache(self) -> None:
        """Evict the table pages DuckDB keeps cached up to its memory limit: lowering the
        limit evicts what no query pins, then the limit is set back. When DuckDB cannot
        free enough (an in-memory database has nothing on disk to reload from), the
        lowering fails and nothing changes."""
        with contextlib.suppress(Exception):
            self.con.execute("SET memory_limit = '64MB'")
        limits.set_share(self.con, getattr(self, "_share", limits.DEFAULT_SHARE))

    def _busy(self) -> str:
        return (
            f"another load or analysis is writing to the store {self.path}; wait for it to "
            "finish and try again"
        )

    def _take_writer_lock(self) -> bool:
        """The store's writer lock (an advisory lock on ``<store>.writer.lock``), or False."""
        try:
            import fcntl
        except ImportError:  # no advisory locks here: DuckDB's own lock still guards the file
            return True
        if self._lock_fd is not None or str(self.path) == ":memory:":
            return True  # an in-memory store has no file for another process to write
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".writer.lock"), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _release_writer_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def copy_on_write(self) -> None:
        """Switch from reading alongside readers to writing a private copy of the store."""
        import ibis

        if not self._take_writer_lock():
            raise StoreBusyError(self._busy())
        for stale in self.path.parent.glob(self.path.name + ".next-*"):
            stale.unlink(missing_ok=True)  # left by a writer that was killed
        copy = self.path.with_name(f"{self.path.name}.next-{os.getpid()}")
        self._close_cursors()
        with contextlib.suppress(Exception):
            self.ibis.disconnect()
        shutil.copyfile(self.path, copy)  # no writer is active: we hold the writer lock
        wal = self.path.with_name(self.path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        self.ibis = ibis.duckdb.connect(str(copy))
        self._connected()
        self._copy = copy
        self.read_only = False
        self.can_copy_on_write = False

    def _read_alongside(self, ibis: Any, duckdb: Any) -> bool:
        """Another process writes the store; a reader (the web app) opens it read-only."""
        try:
            self.ibis = ibis.duckdb.connect(str(self.path), read_only=True)
        except duckdb.Error:
            return False
        self.read_only = True
        return True

    def close(self) -> None:
        self._close_cursors()  # before the database: an open cursor keeps it open
        copy, self._copy = self._copy, None
        if copy is not None:
            with contextlib.suppress(Exception):
                self.con.execute("CHECKPOINT")
        with contextlib.suppress(Exception):
            self.ibis.disconnect()
        if copy is not None:
            leftover = copy.with_name(copy.name + ".wal")
            if leftover.exists():  # not checkpointed: publishing without it would lose writes
                raise StoreError(f"could not finish writing {copy}; the store was left as it was")
            os.replace(copy, self.path)  # atomic: readers see the old store or the new one
            self.path.with_name(self.path.name + ".wal").unlink(missing_ok=True)
        self._release_writer_lock()

    def tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def ensure(self, name: str, schema: pa.Schema) -> None:
        cols = ", ".join(f"{ident(f.name)} {duck_type(name, f.name, f.type)}" for f in schema)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {ident(name)} ({cols})")

    def count(self, name: str) -> int:
        rows = self.con.execute(f"SELECT count(*) FROM {ident(name)}").fetchall()
        return int(rows[0][0]) if rows else 0

    def select(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
    ) -> pa.Table:
        cols = ", ".join(ident(c) for c in columns) if columns else "*"
        sql = f"SELECT {cols} FROM {ident(name)}"
        params: list[Any] = []
        if where:
            sql += " WHERE " + " AND ".join(f"{ident(k)} = ?" for k in where)
            params = list(where.values())
        return self.con.sql(sql, params=params).to_arrow_table()

    def lookup(self, name: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of ``name`` where each column equals its value, as dicts.

        A list or tuple value means any of its values (``IN``). The portrait's point
        lookups: bound parameters, an index scan where :meth:`index_lookups` made an
        index, rows fetched as Python tuples (for a handful of rows, half the cost of
        Arrow and ``to_pylist``, with the same values). Runs on this thread's own
        cursor, so web requests in several threads look rows up in parallel."""
        conds: list[str] = []
        params: list[Any] = []
        for col, value in where.items():
            if isinstance(value, list | tuple):
                if not value:
                    return []
                conds.append(f"{ident(col)} IN ({', '.join('?' for _ in value)})")
                params += list(value)
            else:
                conds.append(f"{ident(col)} = ?")
                params.append(value)
        sql = f"SELECT * FROM {ident(name)}" + (" WHERE " + " AND ".join(conds) if conds else "")
        result = self.cursor().execute(sql, params)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def cursor(self) -> Any:
        """This thread's cursor on the store (made on first use, closed with the store)."""
        key = threading.get_ident()
        cur = self._cursors.get(key)
        if cur is None:
            cur = self.con.cursor()
            cur.execute("SET TimeZone = 'UTC'")  # a per-connection setting
            with self._cursors_lock:
                self._cursors[key] = cur
        return cur

    def _close_cursors(self) -> None:
        with self._cursors_lock:
            cursors, self._cursors = list(self._cursors.values()), {}
        for cur in cursors:
            with contextlib.suppress(Exception):
                cur.close()

    def index_lookups(self, lookups: Iterable[tuple[str, str]]) -> dict[str, float]:
        """An index on each ``(table, column)`` that exists, for point lookups; seconds each.

        DuckDB answers ``column = ?`` on an indexed column with an index scan instead of
        reading every row group its zone maps cannot rule out (the tables are not sorted
        by customer). ``IF NOT EXISTS``: cheap to call after every write session. Upserts
        and deletes keep an index up to date; a table rewritten with ``replace`` (lens
        results) loses it, so call this after an analysis too. An empty table is left
        alone: its first load is faster without an index to keep up, and a later call
        indexes it."""
        present = set(self.tables())
        took: dict[str, float] = {}
        for table, column in lookups:
            if table not in present or self.count(table) == 0:
                continue
            index = f"sawubona_lookup_{table}_{column}"
            t0 = time.perf_counter()
            self.con.execute(
                f"CREATE INDEX IF NOT EXISTS {ident(index)} ON {ident(table)} ({ident(column)})"
            )
            took[f"{table}.{column}"] = time.perf_counter() - t0
        return took

    def distinct(self, name: str, column: str) -> pa.Table:
        col = ident(column)
        return self.con.sql(
            f"SELECT DISTINCT {col} FROM {ident(name)} WHERE {col} IS NOT NULL"
        ).to_arrow_table()

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self.con.execute("COMMIT")

    def rollback(self) -> None:
        self.con.execute("ROLLBACK")

    def upsert(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader | str,
        key: Sequence[str],
        compare: Sequence[str],
        columns: Sequence[str],
    ) -> tuple[int, int, int]:
        """``data`` is Arrow, or the name of a temporary view on this connection (the
        staged rows of an ingest): then the rows go in by ``INSERT … SELECT``, no copy."""
        tbl = ident(name)
        cols = ", ".join(ident(c) for c in columns)
        if isinstance(data, str):
            source = f"temp.main.{ident(data)}"
        else:
            source = "_sawubona_incoming"
            self.con.register(source, data)
        try:
            if self.count(name) == 0:  # a first load: nothing to compare with
                self.con.execute(f"INSERT INTO {tbl} ({cols}) SELECT {cols} FROM {source}")
                return self.count(name), 0, 0
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE _sawubona_inc AS SELECT {cols} FROM {source}"
            )
        finally:
            if not isinstance(data, str):
                self.con.unregister(source)
        return merge_incoming(self.con, name, key, compare, columns)

    def insert(self, name: str, data: pa.Table) -> None:
        cols = ", ".join(ident(c) for c in data.column_names)
        self.con.register("_sawubona_append", data)
        try:
            self.con.execute(
                f"INSERT INTO {ident(name)} ({cols}) SELECT {cols} FROM _sawubona_append"
            )
        finally:
            self.con.unregister("_sawubona_append")

    def delete_in(self, name: str, where: dict[str, Sequence[Any]]) -> int:
        conds, params = [], []
        for col, values in where.items():
            conds.append(f"{ident(col)} IN ({', '.join('?' for _ in values)})")
            params += list(values)
        sql = " AND ".join(conds)
        n = self.con.execute(f"SELECT count(*) FROM {ident(name)} WHERE {sql}", params).fetchall()
        self.con.execute(f"DELETE FROM {ident(name)} WHERE {sql}", params)
        return int(n[0][0]) if n else 0

    def replace(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        self.con.register("_sawubona_result", as_table(data))
        try:
            self.con.execute(
                f"CREATE OR REPLACE TABLE {ident(name)} AS SELECT * FROM _sawubona_result"
            )
        finally:
            self.con.unregister("_sawubona_result")

    def export(self, name: str, target: Path, fmt: str) -> None:
        opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
        path = str(target).replace("'", "''")
        self.con.execute(f"COPY (SELECT * FROM {ident(name)}) TO '{path}' {opts}")
