"""Where a store's tables live: DuckDB (default), PostgreSQL or Spark.

Only :mod:`sawubona.store` imports this package. Each backend implements the few
operations of :class:`~sawubona.backends.base.Backend` (create, count, read,
upsert, insert, delete, replace, begin/commit/rollback) and hands out an Ibis
connection for the lenses, so the same Ibis expressions run wherever the data is.

Store addresses (``sawubona.open(url)`` and ``--store``):

* a file path (``shop.duckdb``) or ``duckdb://path`` — DuckDB, the default;
* ``postgres://user:password@host:port/database`` (or ``postgresql://``) — PostgreSQL;
* ``spark:local[2]``, ``spark:spark://host:7077`` or ``spark://host:7077`` — Spark,
  optionally ``?warehouse=DIR`` (default ``./sawubona-spark``, or the
  ``SAWUBONA_SPARK_WAREHOUSE`` environment variable): the directory the tables are
  kept in, so separate runs see the same data. ``sawubona.open(spark=session)``
  uses a running ``SparkSession``.

PostgreSQL and Spark are optional extras, imported only when such a store is opened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sawubona.errors import StoreError

if TYPE_CHECKING:
    from sawubona.backends.base import Backend

DEFAULT_WAREHOUSE = "sawubona-spark"

_EXTRA_MODULES = {
    "postgres": ("psycopg", "ibis.backends.postgres"),
    "spark": ("pyspark", "ibis.backends.pyspark"),
}


class MissingExtraError(StoreError):
    """An optional backend's packages are not installed."""


def install_hint(extra: str) -> str:
    """The one sentence that says how to install a backend's packages."""
    return (
        f"the {extra} backend needs packages that are not installed; "
        f"install them with: pip install 'sawubona[{extra}]'"
    )


def require(extra: str) -> None:
    """Import the packages of an optional backend, or raise with the install hint."""
    import importlib

    for module in _EXTRA_MODULES[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(install_hint(extra)) from None


@dataclass(frozen=True)
class Address:
    """A parsed store address."""

    kind: str  # duckdb | postgres | spark
    target: str  # the file path, the PostgreSQL URL, or the Spark master
    warehouse: str | None = None

    def display(self) -> str:
        if self.kind == "postgres":
            return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", self.target)
        if self.kind == "spark":
            return f"spark:{self.target}?warehouse={self.warehouse}"
        return self.target


def parse(url: str | Path | None) -> Address:
    """Tell the backend from a store address (see the module docstring for the forms)."""
    if url is None:
        return Address("duckdb", "sawubona.duckdb")
    text = str(url)
    # a URL that went through pathlib.Path lost one slash: postgres:/u@h/db
    m = re.match(r"^(postgres|postgresql)://?(.*)$", text)
    if m:
        return Address("postgres", f"postgresql://{m.group(2)}")
    m = re.match(r"^spark:(.*)$", text)
    if m:
        rest = m.group(1)
        rest, _, query = rest.partition("?")
        warehouse = None
        for part in filter(None, query.split("&")):
            key, _, value = part.partition("=")
            if key != "warehouse":
                raise StoreError(
                    f"unknown Spark store option {key!r} in {text!r}; the only option is "
                    "?warehouse=DIR"
                )
            warehouse = value
        if rest.startswith("//") or rest.startswith("/"):  # spark://host:port
            master = "spark://" + rest.lstrip("/")
        else:
            master = rest or "local[2]"
        if master.startswith("spark:") and not master.startswith("spark://"):
            master = "spark://" + master[len("spark:") :].lstrip("/")
        return Address("spark", master, _warehouse(warehouse))
    if text.startswith("duckdb://"):
        return Address("duckdb", text[len("duckdb://") :])
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"unknown store address scheme {scheme!r}; use a DuckDB file path, "
            "postgres://user@host:port/database or spark:local[2]"
        )
    return Address("duckdb", text)


def _warehouse(value: str | None) -> str:
    chosen = value or os.environ.get("SAWUBONA_SPARK_WAREHOUSE") or DEFAULT_WAREHOUSE
    if "://" in chosen:  # hdfs://, s3a://, file:// — Hadoop paths are passed on as they are
        return chosen
    return str(Path(chosen).resolve())


def is_url(url: str | Path | None) -> bool:
    """Whether ``url`` names a server or Spark store rather than a DuckDB file."""
    return url is not None and parse(url).kind != "duckdb"


def connect(
    url: str | Path | None,
    *,
    read_only: bool = False,
    spark: Any = None,
    warehouse: str | Path | None = None,
) -> Backend:
    """Open the backend ``url`` names (or the given Spark session)."""
    if spark is not None:
        require("spark")
        from sawubona.backends.spark import SparkBackend

        return SparkBackend(
            None, _warehouse(str(warehouse) if warehouse else None), session=spark
        ).open(read_only)
    address = parse(url)
    if address.kind == "postgres":
        require("postgres")
        from sawubona.backends.postgres import PostgresBackend

        return PostgresBackend(address).open(read_only)
    if address.kind == "spark":
        require("spark")
        from sawubona.backends.spark import SparkBackend

        where = _warehouse(str(warehouse)) if warehouse else address.warehouse
        return SparkBackend(address.target, where or _warehouse(None)).open(read_only)
    from sawubona.backends.duckdb import DuckDBBackend

    return DuckDBBackend(Path(address.target)).open(read_only)
