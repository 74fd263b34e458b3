"""What every backend does, and the pieces the SQL backends share."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyarrow as pa

from sawubona.errors import StoreError, UnknownTableError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ident(name: str) -> str:
    """Quote a table or column name we created ourselves; refuse anything else."""
    if not _IDENT.match(name):
        raise UnknownTableError(f"{name!r} is not a valid table or column name")
    return f'"{name}"'


def as_table(data: pa.Table | pa.RecordBatchReader) -> pa.Table:
    return data.read_all() if isinstance(data, pa.RecordBatchReader) else data


class Backend(ABC):
    """One place tables live. All names reaching here are checked with :func:`ident`."""

    name: str
    read_only: bool = False
    #: the Ibis connection the lenses' expressions run on
    ibis: Any
    #: what ``Store.path`` shows: the DuckDB file, or the address with secrets masked
    location: Any

    @abstractmethod
    def open(self, read_only: bool) -> Backend: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def tables(self) -> list[str]:
        """Names of the stored tables (not views, not temporary tables)."""

    @abstractmethod
    def ensure(self, name: str, schema: pa.Schema) -> None:
        """Create ``name`` with ``schema`` unless it exists."""

    def table(self, name: str) -> Any:
        """The stored table as an Ibis table."""
        return self.ibis.table(name)

    @abstractmethod
    def count(self, name: str) -> int: ...

    @abstractmethod
    def select(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
    ) -> pa.Table:
        """Rows of ``name`` (``where``: column = value, all bound, never pasted)."""

    @abstractmethod
    def distinct(self, name: str, column: str) -> pa.Table: ...

    def memory_share(self, share: float) -> None:
        """Let the engine use ``share`` of this machine's RAM from now on, where it can be
        told (an embedded engine); a server or cluster keeps its own settings."""
        return None

    def thread_tables(self) -> AbstractContextManager[Callable[[str], Any]] | None:
        """For work on a thread of its own: a context giving ``table(name)`` → an Ibis
        table read through a connection of that thread's own; ``None`` when the backend
        runs one piece of work at a time (the default)."""
        return None

    def release_cache(self) -> None:
        """Let go of table data the engine keeps cached in this process, where it can be
        told (an embedded engine); call only while no query runs."""
        return None

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def upsert(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        key: Sequence[str],
        compare: Sequence[str],
        columns: Sequence[str],
    ) -> tuple[int, int, int]:
        """Insert new keys, replace rows whose ``compare`` columns changed; (new, changed, same)."""

    @abstractmethod
    def insert(self, name: str, data: pa.Table) -> None: ...

    @abstractmethod
    def delete_in(self, name: str, where: dict[str, Sequence[Any]]) -> int:
        """Delete rows where every column is one of its values; returns how many."""

    @abstractmethod
    def replace(self, name: str, data: pa.Table) -> None:
        """Create or replace a table holding exactly ``data``."""

    def export(self, name: str, target: Path, fmt: str) -> None:
        """Write one table to a Parquet or CSV file."""
        data = self.select(name)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(data, target)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(data, target)


# -- shared SQL (DuckDB and PostgreSQL speak the same dialect for these) -------


def classify_sql(name: str, incoming: str, key: Sequence[str], compare: Sequence[str]) -> str:
    """SELECT the incoming rows with ``_status`` new / same / changed against ``name``."""
    on = " AND ".join(f"i.{ident(k)} = e.{ident(k)}" for k in key)
    same = " AND ".join(f"i.{ident(c)} IS NOT DISTINCT FROM e.{ident(c)}" for c in compare)
    first = ident(key[0])
    return (
        f"SELECT i.*, CASE WHEN e.{first} IS NULL THEN 'new' WHEN {same} THEN 'same' "
        f"ELSE 'changed' END AS _status FROM {incoming} i LEFT JOIN {ident(name)} e ON {on}"
    )


def delete_changed_sql(name: str, classified: str, key: Sequence[str]) -> str:
    """DELETE the stored rows that ``classified`` marks as changed (by key)."""
    match = " AND ".join(f"c.{ident(k)} = {ident(name)}.{ident(k)}" for k in key)
    return (
        f"DELETE FROM {ident(name)} WHERE EXISTS "
        f"(SELECT 1 FROM {classified} c WHERE c._status = 'changed' AND {match})"
    )


def merge_incoming(
    con: Any, name: str, key: Sequence[str], compare: Sequence[str], columns: Sequence[str]
) -> tuple[int, int, int]:
    """Merge the staged temporary table ``_sawubona_inc`` into ``name`` on a DB-API-like
    connection (``con.execute(sql).fetchall()``): rows new by key are inserted, changed rows
    replaced, identical rows left alone; the scratch tables are dropped. Returns (new,
    changed, same)."""
    tbl = ident(name)
    cols = ", ".join(ident(c) for c in columns)
    con.execute("DROP TABLE IF EXISTS _sawubona_cls")
    con.execute(
        "CREATE TEMP TABLE _sawubona_cls AS " + classify_sql(name, "_sawubona_inc", key, compare)
    )
    counts = dict(con.execute("SELECT _status, count(*) FROM _sawubona_cls GROUP BY 1").fetchall())
    if counts.get("changed"):
        con.execute(delete_changed_sql(name, "_sawubona_cls", key))
    if counts.get("changed") or counts.get("new"):
        con.execute(
            f"INSERT INTO {tbl} ({cols}) SELECT {cols} FROM _sawubona_cls WHERE _status <> 'same'"
        )
    con.execute("DROP TABLE IF EXISTS _sawubona_inc")
    con.execute("DROP TABLE IF EXISTS _sawubona_cls")
    return int(counts.get("new", 0)), int(counts.get("changed", 0)), int(counts.get("same", 0))


def unsupported_type(backend: str, name: str, column: str, dtype: pa.DataType) -> StoreError:
    return StoreError(
        f"the {backend} store cannot hold column {column} of {name} (Arrow type {dtype}); "
        "give it a number, text, boolean, timestamp or list type"
    )
