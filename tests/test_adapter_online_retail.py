"""The online-retail adapter: both header variants, guests, cancellations, the real 2009-10 file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sawubona
from conftest import dataset
from sawubona.errors import InputError

II_HEADER = "Invoice,StockCode,Description,Quantity,InvoiceDate,Price,Customer ID,Country"
OLD_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def _balanced(report: object) -> None:
    for t in report.tables:  # type: ignore[attr-defined]
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t.table


def _quarantine(store: sawubona.Store, table: str) -> list[tuple[int, str]]:
    df = store.table("quarantine").to_pandas()
    df = df[df.table_name == table].sort_values("line")
    return list(zip(df.line.astype(int), df.reason, strict=True))


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_ii_header_csv(tmp_path: Path, store: sawubona.Store) -> None:
    folder = tmp_path / "retail"
    folder.mkdir()
    _write(
        folder / "online_retail_II.csv",
        [
            II_HEADER,
            "489434,85048,GLASS BALL,12,2009-12-01 07:45:00,6.95,13085.0,United Kingdom",  # 2
            "489434,79323P,PINK LIGHTS,12,2009-12-01 07:45:00,6.75,13085.0,United Kingdom",  # 3
            "489434,85048,GLASS BALL,6,2009-12-01 07:46:00,6.45,13085.0,United Kingdom",  # 4
            "489435,22350,CAT BOWL,4,2009-12-01 07:46:00,2.55,,United Kingdom",  # 5 guest
            "489436,21523,DOORMAT,10,2009-12-02 09:06:00,5.95,13078.0,France",  # 6
            "C489449,22087,PAPER BUNTING,-12,2009-12-03 10:33:00,2.95,13085.0,United Kingdom",  # 7
            "C489449,85206A,CREAM SPOTS,-6,2009-12-03 10:33:00,1.65,13085.0,United Kingdom",  # 8
            "C489450,22087,PAPER BUNTING,-1,2009-12-03 10:40:00,2.95,,United Kingdom",  # 9 guest
            "A506401,B,Adjust bad debt,1,2010-04-29 13:36:00,-53594.36,,United Kingdom",  # 10
            "489437,this line,is,junk",  # 11: four fields, the header has eight
            "C489451,22087,PAPER BUNTING,-1,2009-12-04 10:40:00,2.95,13999.0,Spain",  # 12
        ],
    )
    report = store.ingest(folder, adapter="online-retail")
    _balanced(report)
    counts = {t.table: (t.rows_read, t.rows_loaded, t.rows_quarantined) for t in report.tables}
    assert counts == {
        "customers": (3, 3, 0),
        "journeys": (4, 2, 2),  # 489434, 489436 loaded; guest 489435 and A506401 not
        "journey_items": (6, 3, 3),  # 2 + 1 items loaded; guest item, A item, junk line
        "actions": (3, 2, 1),
    }

    customers = store.table("customers").to_pandas().set_index("customer_id")
    assert sorted(customers.index) == ["13078", "13085", "13999"]  # no trailing .0
    assert customers.loc["13085", "segment"] == "United Kingdom"
    assert customers.loc["13085", "joined_at"] == dt.datetime(2009, 12, 1, 7, 45)
    # seen only cancelling, still a customer; joined = their first invoice of any kind
    assert customers.loc["13999", "joined_at"] == dt.datetime(2009, 12, 4, 10, 40)

    journeys = store.table("journeys").to_pandas().set_index("journey_id")
    j = journeys.loc["489434"]
    assert (j.customer_id, j.kind, j.outcome, j.currency) == ("13085", "order", "achieved", "GBP")
    assert j.started_at == dt.datetime(2009, 12, 1, 7, 45)  # the earliest of its lines
    assert j.value == pytest.approx(12 * 6.95 + 12 * 6.75 + 6 * 6.45)
    assert "C489449" not in journeys.index  # a cancellation is not a journey

    items = store.table("journey_items").to_pandas().set_index(["journey_id", "item_id"])
    glass = items.loc[("489434", "85048")]
    assert glass.quantity == 18
    assert glass.quantity * glass.unit_price == pytest.approx(12 * 6.95 + 6 * 6.45, abs=0.01)
    assert bool(glass.fulfilled)
    assert items.loc[("489434", "85048"), "_source"].endswith(":2")  # first line

    actions = store.table("actions").to_pandas().set_index("action_id")
    refund = actions.loc["C489449"]
    assert (refund.kind, refund.initiated_by, refund.currency) == ("refund", "customer", "GBP")
    assert refund.amount == pytest.approx(12 * 2.95 + 6 * 1.65)
    assert refund.customer_id == "13085"

    journeys_q = _quarantine(store, "journeys")
    assert [line for line, _ in journeys_q] == [5, 10]
    assert all("no customer" in reason for _, reason in journeys_q)
    assert "adjustment" in journeys_q[1][1]
    items_q = _quarantine(store, "journey_items")
    assert [line for line, _ in items_q] == [5, 10, 11]
    assert all("no customer" in reason for _, reason in items_q[:2])
    assert "fields" in items_q[2][1]  # the junk line, read under journey_items
    actions_q = _quarantine(store, "actions")
    assert actions_q == [(9, actions_q[0][1])] and "no customer" in actions_q[0][1]

    # re-ingesting the same folder changes nothing and keeps one copy of the quarantine
    again = store.ingest(folder, adapter="online-retail")
    _balanced(again)
    assert store.count("journeys") == 2
    assert len(_quarantine(store, "journeys")) == 2


def test_original_2010_11_header_and_us_dates(tmp_path: Path, store: sawubona.Store) -> None:
    path = _write(
        tmp_path / "Online Retail.csv",
        [
            OLD_HEADER,
            "536365,85123A,WHITE HANGING HEART,6,12/13/2010 8:26,2.55,17850,United Kingdom",
            "536365,71053,WHITE METAL LANTERN,6,12/13/2010 8:26,3.39,17850,United Kingdom",
            "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom",
            "536367,84879,ASSORTED BIRD ORNAMENT,32,1/2/2011 8:34,1.69,13047,United Kingdom",
            "536368,22960,JAM MAKING SET,6,1/2/2011 8:34,4.25,,United Kingdom",
        ],
    )
    report = store.ingest(path, adapter="online-retail")  # a file given directly
    _balanced(report)
    assert report.table("journeys").rows_loaded == 3
    assert report.table("journey_items").rows_loaded == 4
    journeys = store.table("journeys").to_pandas().set_index("journey_id")
    assert journeys.loc["536365", "started_at"] == dt.datetime(2010, 12, 13, 8, 26)
    assert journeys.loc["536367", "started_at"] == dt.datetime(2011, 1, 2, 8, 34)
    assert journeys.loc["536365", "value"] == pytest.approx(6 * 2.55 + 6 * 3.39)
    customers = store.table("customers").to_pandas().set_index("customer_id")
    # first invoice by date, although it is not the first line of the file
    assert customers.loc["17850", "joined_at"] == dt.datetime(2010, 12, 1, 8, 28)
    reasons = [r for _, r in _quarantine(store, "journeys")]
    assert len(reasons) == 1 and "no customer" in reasons[0]


def test_parquet_float_customer_ids_and_overlapping_files(
    tmp_path: Path, store: sawubona.Store
) -> None:
    table = pa.table(
        {
            "Invoice": ["489434", "489434", "C489449"],
            "StockCode": ["85048", "79323P", "22087"],
            "Description": ["GLASS BALL", "PINK LIGHTS", "BUNTING"],
            "Quantity": pa.array([12, 12, -2], pa.int64()),
            "InvoiceDate": ["2009-12-01 07:45:00", "2009-12-01 07:45:00", "2009-12-02 10:00:00"],
            "Price": [6.95, 6.75, 2.95],
            "Customer ID": pa.array([13085.0, 13085.0, None], pa.float64()),
            "Country": ["United Kingdom"] * 3,
        }
    )
    pq.write_table(table, tmp_path / "online_retail_ii_2009-2010.parquet")
    pq.write_table(table.slice(0, 2), tmp_path / "online_retail_ii_2010-2011.parquet")
    report = store.ingest(tmp_path, adapter="online-retail")
    _balanced(report)
    assert store.table("customers").to_pandas().customer_id.tolist() == ["13085"]
    # the same invoice in two files: one copy loaded, the other quarantined as a duplicate
    journeys = report.table("journeys")
    assert (journeys.rows_read, journeys.rows_loaded, journeys.rows_quarantined) == (2, 1, 1)
    assert journeys.reasons[0].rule == "duplicate"
    assert report.table("actions").rows_quarantined == 1


def test_missing_column_and_missing_file(tmp_path: Path, store: sawubona.Store) -> None:
    _write(tmp_path / "retail.csv", ["Invoice,StockCode,Quantity", "1,2,3"])
    with pytest.raises(InputError, match="InvoiceDate"):
        store.ingest(tmp_path / "retail.csv", adapter="online-retail")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "online_retail_II.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match="export each sheet"):
        store.ingest(empty, adapter="online-retail")


@pytest.mark.realdata
def test_online_retail_ii_2009_10(store: sawubona.Store) -> None:
    report = store.ingest(dataset("online_retail_ii"), adapter="online-retail")
    _balanced(report)
    counts = {t.table: (t.rows_read, t.rows_loaded, t.rows_quarantined) for t in report.tables}
    assert counts == {
        "customers": (4_383, 4_383, 0),
        # 24,224 invoices not starting with C; 5,006 guest invoices + 3 bad-debt adjustments
        "journeys": (24_224, 19_215, 5_009),
        # (invoice, StockCode) pairs of those invoices; the guests' are quarantined
        "journey_items": (502_028, 394_987, 107_041),
        # 4,592 cancellation invoices, 220 of them by guests
        "actions": (4_592, 4_372, 220),
    }
    for t in report.tables:
        if t.rows_quarantined:
            assert [r.rule for r in t.reasons] == ["adapter"]
            assert "no customer" in t.reasons[0].example_reason
    journeys = store.table("journeys").to_pandas()
    assert journeys.started_at.min() == dt.datetime(2009, 12, 1, 7, 45)
    assert journeys.started_at.max() == dt.datetime(2010, 12, 9, 20, 1)
    assert journeys.value.sum() == pytest.approx(8_832_003.27, abs=1)
    assert store.table("actions").to_pandas().amount.sum() == pytest.approx(483_794.70, abs=0.1)
