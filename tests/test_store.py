"""The store: canonical tables, logs, Ibis tables, exports, the public API."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import sawubona
from sawubona import schema


def test_open_creates_every_canonical_and_log_table(store: sawubona.Store) -> None:
    names = set(store.tables())
    assert {t.name for t in schema.TABLES} <= names
    assert {"quarantine", "ingest_log", "lens_runs"} <= names
    cols = store.table("touchpoints").columns
    assert list(cols) == [*schema.table("touchpoints").column_names, "_source", "_ingested_at"]


def test_table_is_an_ibis_table(tmp_path: Path, store: sawubona.Store) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,segment\na,x\nb,y\nc,x\n")
    store.ingest(tmp_path / "customers.csv")
    t = store.table("customers")
    counts = t.group_by("segment").aggregate(n=t.count()).order_by("segment").to_pandas()
    assert counts["n"].tolist() == [2, 1]
    assert t.to_pyarrow().num_rows == 3


def test_unknown_table_names_the_known_ones(store: sawubona.Store) -> None:
    with pytest.raises(sawubona.UnknownTableError, match=r"no table .nope.*customers"):
        store.table("nope")


def test_unknown_address_schemes_are_refused() -> None:
    with pytest.raises(sawubona.StoreError, match="unknown store address scheme 'mysql'"):
        sawubona.open("mysql://localhost/x")


def test_not_a_store_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.duckdb"
    bad.write_text("this is not a database")
    with pytest.raises(sawubona.StoreError, match="not a sawubona store"):
        sawubona.open(bad)


def test_export_writes_canonical_columns(tmp_path: Path, store: sawubona.Store) -> None:
    (tmp_path / "customers.csv").write_text("customer_id,segment\na,x\n")
    store.ingest(tmp_path / "customers.csv")
    written = store.export(tmp_path / "out", fmt="parquet")
    assert set(written) == {"customers", "ingest_log"}
    got = pq.read_table(written["customers"])
    assert got.column_names[: len(schema.table("customers").columns)] == (
        schema.table("customers").column_names
    )
    csvs = store.export(tmp_path / "csv", fmt="csv", tables=["customers"])
    assert csvs["customers"].read_text().startswith("customer_id,joined_at,segment")


def test_public_api_is_listed() -> None:
    assert set(sawubona.__all__) == {
        "InputError",
        "MappingError",
        "SawubonaError",
        "Store",
        "StoreBusyError",
        "StoreError",
        "UnknownCustomerError",
        "UnknownTableError",
        "__version__",
        "open",
    }
    for name in sawubona.__all__:
        assert hasattr(sawubona, name)


def test_errors_share_one_root() -> None:
    for exc in (
        sawubona.InputError,
        sawubona.MappingError,
        sawubona.StoreError,
        sawubona.StoreBusyError,
        sawubona.UnknownTableError,
    ):
        assert issubclass(exc, sawubona.SawubonaError)
