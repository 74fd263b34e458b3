"""Arrow results handed back to the engine the lens runs on, alike for every lens.

A lens that computed something in Arrow and wants to join it with more Ibis work gives it
back to the engine. ``ibis.memtable`` does that everywhere but on Spark, where Ibis loads
a memtable through pandas, whose string columns hold a missing value as NaN — which Spark
then stores as the text ``'NaN'``. There the table becomes a temporary view made straight
from Arrow; the caller drops it with :func:`drop_view` when done.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import ibis

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa


def from_arrow(backend: Any, table: pa.Table, prefix: str) -> tuple[ir.Table, str | None]:
    """``table`` as an Ibis table on ``backend``, and the Spark view to drop later (or None)."""
    if getattr(backend, "name", "") != "pyspark":
        return ibis.memtable(table), None
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    backend._session.createDataFrame(table).createOrReplaceTempView(name)
    return backend.table(name), name


def drop_view(backend: Any, name: str) -> None:
    """Drop a temporary view made by :func:`from_arrow`."""
    backend._session.catalog.dropTempView(name)
