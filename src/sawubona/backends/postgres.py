"""PostgreSQL: one shared server. Real transactions; Arrow goes in by ``COPY``.

Two connections: the store's own (explicit ``BEGIN``/``COMMIT``, so a load or a lens
run commits whole or not at all, and the store's reads inside a transaction see its
own writes) and Ibis's (autocommit, for the lenses' expressions and their temporary
tables). Tables live in the connection's current schema (``public`` unless the URL
sets ``options=-csearch_path=…``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sawubona.backends.base import (
    Backend,
    as_table,
    ident,
    merge_incoming,
    unsupported_type,
)
from sawubona.errors import StoreError

if TYPE_CHECKING:
    from sawubona.backends import Address

# PostgreSQL type oids → Arrow types (pg_type.dat), for reading query results.
_OID_ARROW: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int64(),
    23: pa.int64(),
    25: pa.string(),
    700: pa.float64(),
    701: pa.float64(),
    1043: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1000: pa.list_(pa.bool_()),
    1009: pa.list_(pa.string()),
    1016: pa.list_(pa.int64()),
    1022: pa.list_(pa.float64()),
}


def pg_type(name: str, column: str, dtype: pa.DataType) -> str:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "TEXT"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMP"
    if pa.types.is_floating(dtype):
        return "DOUBLE PRECISION"
    if pa.types.is_integer(dtype):
        return "BIGINT"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_date(dtype):
        return "DATE"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        inner = dtype.value_type
        if pa.types.is_list(inner) or pa.types.is_large_list(inner):
            raise unsupported_type("PostgreSQL", name, column, dtype)
        return pg_type(name, column, inner) + "[]"
    if pa.types.is_null(dtype):
        return "TEXT"
    raise unsupported_type("PostgreSQL", name, column, dtype)


class PostgresBackend(Backend):
    name = "postgres"

    def __init__(self, address: Address) -> None:
        self.url = address.target
        self.location = address.display()

    def open(self, read_only: bool) -> PostgresBackend:
        import ibis
        import psycopg

        self.read_only = read_only
        try:
            self.con = psycopg.connect(self.url, autocommit=True)
            self.ibis = ibis.connect(self.url)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to the PostgreSQL store {self.location} ({reason}); "
                "check that the server runs and the address, user and database are right"
            ) from None
        self.con.execute("SET TIME ZONE 'UTC'")
        self.ibis.raw_sql("SET TIME ZONE 'UTC'").close()
        if read_only:
            self.con.execute("SET default_transaction_read_only = on")
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ibis.disconnect()
        with contextlib.suppress(Exception):
            self.con.close()

    # -- reading ----------------------------------------------------------------

    def _arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with self.con.cursor() as cur:
            cur.execute(sql, list(params))
            desc = cur.description or []
            rows = cur.fetchall()
        names = [d.name for d in desc]
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        arrays = [
            pa.array(list(values), _OID_ARROW.get(d.type_code))
            for d, values in zip(desc, cols, strict=True)
        ]
        return pa.table(arrays, names=names) if names else pa.table({})

    def tables(self) -> list[str]:
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def ensure(self, name: str, schema: pa.Schema) -> None:
        cols = ", ".join(f"{ident(f.name)} {pg_type(name, f.name, f.type)}" for f in schema)
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {ident(name)} ({cols})")

    def count(self, name: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {ident(name)}").fetchone()
        return int(row[0]) if row else 0

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
            sql += " WHERE " + " AND ".join(f"{ident(k)} = %s" for k in where)
            params = list(where.values())
        return self._arrow(sql, params)

    def distinct(self, name: str, column: str) -> pa.Table:
        col = ident(column)
        return self._arrow(f"SELECT DISTINCT {col} FROM {ident(name)} WHERE {col} IS NOT NULL")

    # -- writing ----------------------------------------------------------------

    def begin(self) -> None:
        self.con.execute("BEGIN")

    def commit(self) -> None:
        self.con.execute("COMMIT")

    def rollback(self) -> None:
        self.con.execute("ROLLBACK")

    def _copy(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        """COPY Arrow rows into ``name``: as CSV (fast) unless a column is a list."""
        import pyarrow.csv as pcsv

        batches = data if isinstance(data, pa.RecordBatchReader) else data.to_batches(100_000)
        schema = data.schema
        cols = ", ".join(ident(c) for c in schema.names)
        nested = any(pa.types.is_list(f.type) or pa.types.is_large_list(f.type) for f in schema)
        with self.con.cursor() as cur:
            if nested:
                with cur.copy(f"COPY {ident(name)} ({cols}) FROM STDIN") as copy:
                    for batch in batches:
                        for row in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                            copy.write_row(row)
                return
            # quoting every non-null value keeps '' apart from NULL, as COPY … CSV reads it
            options = pcsv.WriteOptions(include_header=False, quoting_style="all_valid")
            with cur.copy(f"COPY {ident(name)} ({cols}) FROM STDIN (FORMAT csv)") as copy:
                for batch in batches:
                    if batch.num_rows == 0:
                        continue
                    buf = io.BytesIO()
                    pcsv.write_csv(pa.Table.from_batches([batch], schema), buf, options)
                    copy.write(buf.getvalue())

    def upsert(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        key: Sequence[str],
        compare: Sequence[str],
        columns: Sequence[str],
    ) -> tuple[int, int, int]:
        tbl = ident(name)
        cols = ", ".join(ident(c) for c in columns)
        if self.count(name) == 0:
            self._copy(name, _columns(data, columns))
            return self.count(name), 0, 0
        self.con.execute("DROP TABLE IF EXISTS _sawubona_inc")
        self.con.execute(
            f"CREATE TEMP TABLE _sawubona_inc AS SELECT {cols} FROM {tbl} WITH NO DATA"
        )
        self._copy("_sawubona_inc", _columns(data, columns))
        return merge_incoming(self.con, name, key, compare, columns)

    def insert(self, name: str, data: pa.Table) -> None:
        self._copy(name, data)

    def delete_in(self, name: str, where: dict[str, Sequence[Any]]) -> int:
        conds, params = [], []
        for col, values in where.items():
            conds.append(f"{ident(col)} = ANY(%s)")
            params.append(list(values))
        with self.con.cursor() as cur:
            cur.execute(f"DELETE FROM {ident(name)} WHERE {' AND '.join(conds)}", params)
            return int(cur.rowcount)

    def replace(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        data = as_table(data)
        cols = ", ".join(f"{ident(f.name)} {pg_type(name, f.name, f.type)}" for f in data.schema)
        self.con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
        self.con.execute(f"CREATE TABLE {ident(name)} ({cols})")
        self._copy(name, data)


def _columns(data: pa.Table | pa.RecordBatchReader, columns: Sequence[str]) -> pa.Table:
    return as_table(data).select(list(columns))
