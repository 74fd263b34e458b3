"""Spark: tables as Parquet directories in a warehouse, read through Ibis's PySpark backend.

Layout: table ``t`` is the Parquet directory ``<warehouse>/t``; each store gets its
own Spark session (``SparkSession.newSession()``: same cluster, own temporary
views), in which ``t`` is a temporary view over that directory, so separate runs
(``sawubona ingest`` then ``sawubona analyze``) see the same data.

What a transaction guarantees here (Spark has no multi-table transactions):
every write of a transaction computes the table's whole new content into
``<warehouse>/_staging/<transaction>/<t>/…`` first; nothing the store reads changes
until commit. Commit marks the transaction committed (``_COMMITTED``), then swaps
each staged directory in (delete old, rename new). A failure before the mark
leaves the store as it was (the staging directory is removed on the next open);
a crash during the swaps is finished on the next open (roll forward). Loads are
idempotent: re-loading the same rows classifies them as unchanged. One writer at a
time: two processes writing one warehouse at once are not guarded against.
Directories are handled through Hadoop's FileSystem API, so the warehouse may be
``hdfs://`` or any path the cluster shares; with ``spark:local[…]`` it is local.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from functools import reduce
from typing import Any

import pyarrow as pa

from sawubona import limits
from sawubona.backends.base import Backend, as_table, ident
from sawubona.errors import StoreError


def local_session(master: str = "local[2]") -> Any:
    """A Spark session for sawubona: UTC, quiet; in local mode few shuffle partitions and a
    driver heap of a share of RAM (:mod:`sawubona.limits`)."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(master)
        .appName("sawubona")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
    )
    if master.startswith("local"):
        # the driver is the whole cluster here, and Spark's 1 GB heap cannot take a medium
        # world's usage table handed over from Arrow (createDataFrame reads it whole): it
        # gets the share of RAM a DuckDB store gets (or SAWUBONA_MEMORY_LIMIT). Only heeded
        # when this call starts the JVM.
        heap = limits.memory_limit(limits.DEFAULT_SHARE) >> 20
        builder = (
            builder.config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "2")
            .config("spark.driver.memory", f"{heap}m")
        )
    try:
        session = builder.getOrCreate()
    except Exception as exc:
        raise StoreError(
            f"cannot start Spark ({master}): {str(exc).strip().splitlines()[0]}; "
            "check that Java 17 is installed (apt-get install openjdk-17-jre-headless)"
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkBackend(Backend):
    name = "spark"

    def __init__(self, master: str | None, warehouse: str, *, session: Any = None) -> None:
        self.master = master
        self.warehouse = warehouse.rstrip("/")
        self._given = session
        where = master or "session"
        self.location = f"spark:{where}?warehouse={self.warehouse}"

    # -- opening ----------------------------------------------------------------

    def open(self, read_only: bool) -> SparkBackend:
        import ibis

        self.read_only = read_only
        root = self._given if self._given is not None else local_session(self.master or "")
        self.spark = root.newSession()
        self.spark.conf.set("spark.sql.session.timeZone", "UTC")
        jvm = self.spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._fs = self._Path(self.warehouse).getFileSystem(
            self.spark.sparkContext._jsc.hadoopConfiguration()
        )
        if read_only and not self._exists(self.warehouse):
            raise StoreError(
                f"no Spark store at {self.warehouse}; create it with `sawubona ingest` first"
            )
        if not read_only:
            self._fs.mkdirs(self._Path(self.warehouse))
            self._recover()
        self.ibis = ibis.pyspark.connect(self.spark)
        self._pending: dict[str, str] = {}
        self._tx: str | None = None
        self._views: set[str] = set()
        self._counts: dict[str, int] = {}  # row counts by Parquet directory, known from writes
        return self

    def table(self, name: str) -> Any:
        """The Ibis table (its temporary view is made on first use, and after each swap)."""
        if name not in self._views:
            self._view(name)
        return self.ibis.table(name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            for name in list(self._views):
                self.spark.catalog.dropTempView(name)

    # -- files --------------------------------------------------------------------

    def _p(self, *parts: str) -> str:
        return "/".join([self.warehouse, *parts])

    def _exists(self, path: str) -> bool:
        return bool(self._fs.exists(self._Path(path)))

    def _delete(self, path: str) -> None:
        self._fs.delete(self._Path(path), True)

    def _rename(self, src: str, dst: str) -> None:
        if not self._fs.rename(self._Path(src), self._Path(dst)):
            raise StoreError(f"Spark store: could not move {src} to {dst}")

    def _children(self, path: str) -> list[str]:
        if not self._exists(path):
            return []
        return sorted(
            str(s.getPath().getName())
            for s in self._fs.listStatus(self._Path(path))
            if s.isDirectory()
        )

    def _recover(self) -> None:
        """Finish committed transactions a crash interrupted; drop uncommitted ones."""
        staging = self._p("_staging")
        for tx in self._children(staging):
            base = f"{staging}/{tx}"
            if self._exists(f"{base}/_COMMITTED"):
                for name in self._children(base):
                    final = f"{base}/{name}/final"
                    if name != "_COMMITTED" and self._exists(final):
                        if self._exists(self._p(name)):
                            self._delete(self._p(name))
                        self._rename(final, self._p(name))
            self._delete(base)

    # -- reading ------------------------------------------------------------------

    def _view(self, name: str) -> None:
        self.spark.read.parquet(self._p(name)).createOrReplaceTempView(name)
        self._views.add(name)

    def _frame(self, name: str) -> Any:
        """The table as this transaction sees it (its staged version, if any)."""
        return self.spark.read.parquet(self._pending.get(name) or self._p(name))

    def tables(self) -> list[str]:
        names = {n for n in self._children(self.warehouse) if not n.startswith("_")}
        names |= set(self._pending)
        return sorted(n for n in names if _valid(n))

    def ensure(self, name: str, schema: pa.Schema) -> None:
        if name in self.tables():
            return
        self._stage(name, self.spark.createDataFrame(schema.empty_table()), 0)

    def count(self, name: str) -> int:
        path = self._pending.get(name) or self._p(name)
        if path not in self._counts:
            self._counts[path] = int(self.spark.read.parquet(path).count())
        return self._counts[path]

    def select(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        where: dict[str, Any] | None = None,
    ) -> pa.Table:
        from pyspark.sql import functions as F

        df = self._frame(name)
        for col, value in (where or {}).items():
            df = df.filter(F.col(ident(col).strip('"')) == F.lit(value))
        if columns:
            df = df.select(*[ident(c).strip('"') for c in columns])
        return _utc_naive(df.toArrow())

    def distinct(self, name: str, column: str) -> pa.Table:
        from pyspark.sql import functions as F

        df = self._frame(name).select(column).where(F.col(column).isNotNull()).distinct()
        return _utc_naive(df.toArrow())

    # -- writing ------------------------------------------------------------------

    def begin(self) -> None:
        self._tx = f"{uuid.uuid4().hex[:12]}"
        self._pending = {}

    def _stage(self, name: str, df: Any, rows: int | None = None) -> None:
        """Write the whole new content of ``name`` into this transaction's staging area."""
        if self._tx is None:
            raise StoreError("Spark store: a write outside a transaction")
        path = self._p("_staging", self._tx, name, uuid.uuid4().hex[:8])
        df.write.mode("error").parquet(path)
        self._pending[name] = path
        if rows is not None:
            self._counts[path] = rows

    def commit(self) -> None:
        if self._tx is None:
            return
        base = self._p("_staging", self._tx)
        pending, self._pending = self._pending, {}
        try:
            for name, path in pending.items():
                self._rename(path, f"{base}/{name}/final")
            if pending:
                self._fs.mkdirs(self._Path(f"{base}/_COMMITTED"))
            for name in pending:
                if self._exists(self._p(name)):
                    self._delete(self._p(name))
                self._rename(f"{base}/{name}/final", self._p(name))
                staged = self._counts.pop(pending[name], None)
                self._counts.pop(self._p(name), None)
                if staged is not None:
                    self._counts[self._p(name)] = staged
                if name in self._views:
                    self._view(name)
        finally:
            self._tx = None
            if self._exists(base):
                self._delete(base)

    def rollback(self) -> None:
        if self._tx is not None and self._exists(self._p("_staging", self._tx)):
            self._delete(self._p("_staging", self._tx))
        self._pending = {}
        self._tx = None

    def _incoming(self, data: pa.Table | pa.RecordBatchReader, like: Any) -> Any:
        table = as_table(data)
        df = self.spark.createDataFrame(table) if table.num_rows else None
        if df is None:
            return like.limit(0)
        return df.select(*[df[c].cast(like.schema[c].dataType) for c in like.columns])

    def upsert(
        self,
        name: str,
        data: pa.Table | pa.RecordBatchReader,
        key: Sequence[str],
        compare: Sequence[str],
        columns: Sequence[str],
    ) -> tuple[int, int, int]:
        from pyspark.sql import functions as F

        table = _columns(data, columns)  # a reader can be read once
        old = self._frame(name)
        inc = self._incoming(table, old.select(*columns))
        if self.count(name) == 0:
            n = table.num_rows
            self._stage(name, inc, n)
            return n, 0, 0
        e = old.select(*[F.col(k).alias(f"_e_{k}") for k in compare])
        on = reduce(lambda a, b: a & b, [inc[k] == e[f"_e_{k}"] for k in key])
        same = reduce(lambda a, b: a & b, [inc[c].eqNullSafe(e[f"_e_{c}"]) for c in compare])
        status = (
            F.when(e[f"_e_{key[0]}"].isNull(), F.lit("new"))
            .when(same, F.lit("same"))
            .otherwise(F.lit("changed"))
        )
        cls = inc.join(e, on, "left").select(*[inc[c] for c in columns], status.alias("_status"))
        cls = cls.localCheckpoint()
        counts = {r["_status"]: int(r["count"]) for r in cls.groupBy("_status").count().collect()}
        if counts.get("changed") or counts.get("new"):
            changed = cls.filter(F.col("_status") == "changed").select(*key)
            kept = old.join(changed, list(key), "left_anti") if counts.get("changed") else old
            new = kept.select(*columns).unionByName(
                cls.filter(F.col("_status") != "same").select(*columns)
            )
            self._stage(name, new, self.count(name) + counts.get("new", 0))
        return counts.get("new", 0), counts.get("changed", 0), counts.get("same", 0)

    def insert(self, name: str, data: pa.Table) -> None:
        old = self._frame(name)
        inc = self._incoming(data.select(old.columns), old)
        self._stage(name, old.unionByName(inc), self.count(name) + data.num_rows)

    def delete_in(self, name: str, where: dict[str, Sequence[Any]]) -> int:
        from pyspark.sql import functions as F

        old = self._frame(name)
        cond = reduce(lambda a, b: a & b, [F.col(c).isin(list(v)) for c, v in where.items()])
        n = int(old.filter(cond).count()) if self.count(name) else 0
        if n:
            rows = self.count(name) - n
            self._stage(
                name,
                old.filter(~cond | reduce(lambda a, b: a | b, [F.col(c).isNull() for c in where])),
                rows,
            )
        return n

    def replace(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        table = as_table(data)
        self._stage(name, self.spark.createDataFrame(table), table.num_rows)


def _valid(name: str) -> bool:
    try:
        ident(name)
    except Exception:
        return False
    return True


def _columns(data: pa.Table | pa.RecordBatchReader, columns: Sequence[str]) -> pa.Table:
    return as_table(data).select(list(columns))


def _utc_naive(table: pa.Table) -> pa.Table:
    """Spark hands timestamps out as UTC instants; the store's are naive UTC."""
    fields = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None:
            fields.append(pa.field(f.name, pa.timestamp("us")))
        else:
            fields.append(f)
    return table.cast(pa.schema(fields)) if fields != list(table.schema) else table
