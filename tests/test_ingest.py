"""Ingest: every row loaded or quarantined with its reason; hostile input; idempotence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sawubona
from sawubona.errors import InputError, MappingError

CUSTOMERS = "customer_id,joined_at,segment\nc1,2024-01-05,a\nc2,2024-02-01,b\nc3,2024-03-01,c\n"


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


def quarantine(store: sawubona.Store, table: str | None = None) -> list[dict]:
    rows = store.table("quarantine").to_pyarrow().to_pylist()
    return [r for r in rows if table is None or r["table_name"] == table]


def balanced(report: sawubona.ingest.IngestReport) -> None:
    for t in report.tables:
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t


# -- the hostile cases of the foundation issue -------------------------------------


def test_hostile_folder_keeps_every_row(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    write(
        d,
        "customers.csv",
        "customer_id,joined_at,segment\nc1,2024-01-05,a\n"
        "c2,31/02/2024,b\nc1,2024-02-01,a\nc3,2024-03-01,c\n",
    )
    write(
        d,
        "surveys.csv",
        "survey_id,customer_id,instrument,responded_at,score\n"
        "s1,c1,nps,2024-04-01T10:00:00Z,9\ns2,c3,nps,2024-04-02T10:00:00Z,11\n"
        "s3,zz,nps,2024-04-03T10:00:00Z,7\ns4,c3,nps,2024-04-0",
    )
    report = store.ingest(d)
    balanced(report)
    assert report.table("customers").rows_read == 4
    assert report.table("surveys").rows_read == 4
    loaded = {r["survey_id"] for r in store.table("surveys").to_pyarrow().to_pylist()}
    assert loaded == {"s1"}
    reasons = {r["line"]: r for r in quarantine(store, "surveys")}
    assert "outside the nps scale 0-10" in reasons[3]["reason"]
    assert "'zz' is not in customers" in reasons[4]["reason"]
    assert reasons[5]["rule"] == "structure"  # the truncated last line
    cust = {r["line"]: r for r in quarantine(store, "customers")}
    assert "'31/02/2024' is not a date/time" in cust[3]["reason"]
    assert cust[3]["column_name"] == "joined_at"
    # The duplicated key keeps the last occurrence and says so on the first.
    assert "line 4 has the same key" in cust[2]["reason"]
    joined = store.table("customers").to_pandas().set_index("customer_id")["joined_at"]
    assert joined["c1"] == dt.datetime(2024, 2, 1)


def test_identical_duplicates_load_once(tmp_path: Path, store: sawubona.Store) -> None:
    d = write(tmp_path, "customers.csv", "customer_id,segment\nc1,a\nc1,a\nc2,b\n")
    report = store.ingest(d)
    balanced(report)
    assert store.count("customers") == 2
    (q,) = quarantine(store)
    assert q["rule"] == "duplicate" and "exact duplicate of line 3" in q["reason"]


def test_empty_file_is_a_clear_error(tmp_path: Path, store: sawubona.Store) -> None:
    p = write(tmp_path, "customers.csv", "")
    with pytest.raises(InputError, match=r"customers\.csv: the file is empty"):
        store.ingest(p)
    assert store.count("customers") == 0


def test_header_only_file_loads_nothing(tmp_path: Path, store: sawubona.Store) -> None:
    report = store.ingest(write(tmp_path, "customers.csv", "customer_id,segment\n"))
    assert report.table("customers").rows_read == 0


def test_missing_required_column_names_it_and_the_fix(
    tmp_path: Path, store: sawubona.Store
) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    write(d, "surveys.csv", "survey_id,customer_id,score\ns1,c1,9\n")
    with pytest.raises(InputError) as err:
        store.ingest(d)
    msg = str(err.value)
    assert "surveys.csv" in msg and "required column instrument missing" in msg
    assert "mapping" in msg
    # Nothing of the load was committed, not even the good customers file.
    assert store.count("customers") == 0


def test_wrong_encoding_is_read_as_cp1252_with_a_note(
    tmp_path: Path, store: sawubona.Store
) -> None:
    text = "customer_id,name\nc1,Zoë Ménard\nc2,José\n"
    report = store.ingest(write(tmp_path, "customers.csv", text.encode("cp1252")))
    balanced(report)
    names = sorted(store.table("customers").to_pandas()["name"])
    assert names == ["José", "Zoë Ménard"]
    assert any("cp1252" in n for n in report.notes)


def test_mixed_encoding_quarantines_the_bad_line(tmp_path: Path, store: sawubona.Store) -> None:
    data = "customer_id,name\nc1,Zoë\n".encode() + "c2,José\n".encode("latin-1") + b"c3,Ann\n"
    report = store.ingest(write(tmp_path, "customers.csv", data))
    balanced(report)
    assert store.count("customers") == 2
    (q,) = quarantine(store)
    assert q["line"] == 3 and q["rule"] == "encoding"
    assert "declare its encoding" in q["reason"]


def test_reference_to_unknown_customer_unless_orphans_allowed(
    tmp_path: Path, store: sawubona.Store
) -> None:
    p = write(
        tmp_path,
        "journeys.csv",
        "journey_id,customer_id,kind,started_at\nj1,nobody,order,2024-01-01\n",
    )
    report = store.ingest(p)
    assert report.table("journeys").rows_quarantined == 1
    report = store.ingest(p, allow_orphans=True)
    assert store.count("journeys") == 1


def test_references_to_rows_of_this_load_written_earlier_in_it(
    tmp_path: Path, store: sawubona.Store
) -> None:
    # tables are written (and their staged copies dropped) one by one as they are checked:
    # later tables still check references against this load's earlier tables, clean or not,
    # and against the store as it was
    store.ingest(write(tmp_path / "a", "customers.csv", "customer_id\nold\n"))
    d = tmp_path / "b"
    write(d, "customers.csv", CUSTOMERS)  # clean: no copy of its rows is made
    write(
        d,
        "journeys.csv",
        "journey_id,customer_id,kind,started_at\nj1,c1,order,2024-01-01\n"
        "j2,old,order,2024-01-02\nj3,nobody,order,2024-01-03\nj1,c1,order,2024-01-01\n",
    )
    write(
        d,
        "promises.csv",
        "promise_id,customer_id,journey_id,kind,made_at,due_at\n"
        "p1,c2,j1,callback,2024-01-01,2024-01-02\np2,c2,j3,callback,2024-01-01,2024-01-02\n",
    )
    report = store.ingest(d)
    balanced(report)
    assert store.count("customers") == 4
    assert sorted(r["journey_id"] for r in store.table("journeys").to_pyarrow().to_pylist()) == [
        "j1",
        "j2",
    ]
    # j3 was quarantined, so a promise in it refers to a journey neither stored nor loaded
    assert [r["promise_id"] for r in store.table("promises").to_pyarrow().to_pylist()] == ["p1"]
    rules = sorted((r["table_name"], r["rule"], r["line"]) for r in quarantine(store))
    assert rules == [
        ("journeys", "duplicate", 2),
        ("journeys", "reference", 4),
        ("promises", "reference", 3),
    ]


def test_due_before_made_and_far_future_are_quarantined(
    tmp_path: Path, store: sawubona.Store
) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    write(
        d,
        "promises.csv",
        "promise_id,customer_id,kind,made_at,due_at\n"
        "p1,c1,callback,2024-01-02,2024-01-01\n"
        "p2,c1,callback,2999-01-01,2999-01-02\n"
        "p3,c1,callback,2024-01-01,2024-01-03\n"
        "p4,c1,callback,1850-01-01,2024-01-03\n",
    )
    store.ingest(d)
    q = {r["line"]: r["reason"] for r in quarantine(store, "promises")}
    assert q[2] == "due_at is before made_at"
    assert "in the future" in q[3]
    assert "before 1900" in q[5]
    assert store.count("promises") == 1


def test_negative_quantity_and_unknown_direction(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    write(d, "journeys.csv", "journey_id,customer_id,kind,started_at\nj1,c1,order,2024-01-01\n")
    write(d, "journey_items.csv", "journey_id,item_id,quantity\nj1,a,-2\nj1,b,1\n")
    write(
        d,
        "touchpoints.csv",
        "touchpoint_id,customer_id,at,channel,direction\n"
        "t1,c1,2024-01-01,email,sideways\nt2,c1,2024-01-01,Email,Inbound\n",
    )
    report = store.ingest(d)
    balanced(report)
    q = {(r["table_name"], r["line"]): r["reason"] for r in quarantine(store)}
    assert q[("journey_items", 2)] == "quantity -2.0 is below 0"
    assert q[("touchpoints", 2)] == "direction 'sideways' is not one of inbound/outbound"
    tp = store.table("touchpoints").to_pandas()
    assert list(tp["channel"]) == ["email"] and list(tp["direction"]) == ["inbound"]


# -- formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", dt.datetime(2024, 3, 5)),
        ("2024-03-05T10:30:00+02:00", dt.datetime(2024, 3, 5, 8, 30)),
        ("05/03/2024 14:05", dt.datetime(2024, 3, 5, 14, 5)),
        ("1709632800", dt.datetime(2024, 3, 5, 10, 0)),
        ("2024/03/05 10:00:00.000", dt.datetime(2024, 3, 5, 10, 0)),
        ("Tue Mar 05 10:00:00 +0000 2024", dt.datetime(2024, 3, 5, 10, 0)),
    ],
)
def test_date_formats(tmp_path: Path, store: sawubona.Store, text: str, expected) -> None:
    store.ingest(write(tmp_path, "customers.csv", f"customer_id,joined_at\nc1,{text}\nc2,\n"))
    got = store.table("customers").to_pandas().set_index("customer_id")["joined_at"]
    assert got["c1"] == expected


def test_month_first_dates_are_recognised_from_the_column(
    tmp_path: Path, store: sawubona.Store
) -> None:
    store.ingest(
        write(tmp_path, "customers.csv", "customer_id,joined_at\nc1,12/27/18\nc2,1/5/18\n")
    )
    got = store.table("customers").to_pandas().set_index("customer_id")["joined_at"]
    assert got["c1"] == dt.datetime(2018, 12, 27) and got["c2"] == dt.datetime(2018, 1, 5)


def test_month_first_seen_though_only_the_last_rows_show_it(
    tmp_path: Path, store: sawubona.Store
) -> None:
    # 3,000 dates that read either way, then three that only read month first: the format
    # is chosen from the column's distinct values, not from its first rows
    ambiguous = [
        f"{m:02d}/{d:02d}/2024 {h:02d}:{mi:02d}"
        for m in range(1, 13)
        for d in range(1, 13)
        for h in range(21)
        for mi in (0,)
    ][:3000]
    late = ["01/13/2024 10:00", "02/25/2024 11:00", "03/31/2024 12:00"]
    rows = "".join(f"c{i},{t}\n" for i, t in enumerate(ambiguous + late))
    store.ingest(write(tmp_path, "customers.csv", "customer_id,joined_at\n" + rows))
    got = store.table("customers").to_pandas().set_index("customer_id")["joined_at"]
    assert store.count("customers") == len(ambiguous) + len(late)
    assert got["c0"] == dt.datetime(2024, 1, 1, 0, 0)
    assert got["c13"] == dt.datetime(2024, 1, 1, 13, 0)
    assert got[f"c{len(ambiguous)}"] == dt.datetime(2024, 1, 13, 10, 0)
    assert got["c21"] == dt.datetime(2024, 1, 2, 0, 0)  # month first: 01/02 is 2 January


def test_decimal_comma_semicolon_and_booleans(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", "customer_id\nc1\n")
    write(d, "journeys.csv", "journey_id;customer_id;kind;started_at\nj1;c1;order;2024-01-01\n")
    write(
        d,
        "journey_items.csv",
        "journey_id;item_id;quantity;unit_price;fulfilled\n"
        "j1;a;1;1.234,50;VRAI\nj1;b;2;7,5;non\nj1;c;3;€ 2,00;yes\n",
    )
    report = store.ingest(d)
    balanced(report)
    items = store.table("journey_items").to_pandas().set_index("item_id")
    assert items.loc["a", "unit_price"] == 1234.5 and items.loc["b", "unit_price"] == 7.5
    assert items.loc["c", "unit_price"] == 2.0
    assert list(items["fulfilled"]) == [True, False, True]
    assert report.table("journey_items").readings["unit_price"] == "decimal comma"


def test_quoted_newlines_bom_and_line_numbers(tmp_path: Path, store: sawubona.Store) -> None:
    text = '\ufeffcustomer_id,name\r\nc1,"Ann\r\nSmith"\r\n\r\nc2,"Bo ""B"" Li"\r\nc3,x,extra\r\n'
    report = store.ingest(write(tmp_path, "customers.csv", text))
    balanced(report)
    rows = store.table("customers").to_pandas().set_index("customer_id")
    assert rows.loc["c1", "name"] == "Ann\r\nSmith"
    assert rows.loc["c2", "name"] == 'Bo "B" Li'
    assert rows.loc["c1", "_source"].endswith("customers.csv:2")
    assert rows.loc["c2", "_source"].endswith("customers.csv:5")
    (q,) = quarantine(store)
    assert q["line"] == 6 and "3 fields but the header has 2" in q["reason"]


def test_nan_inf_and_non_numbers(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    write(
        d,
        "journeys.csv",
        "journey_id,customer_id,kind,started_at,value\n"
        "j1,c1,order,2024-01-01,NaN\nj2,c1,order,2024-01-01,inf\n"
        "j3,c1,order,2024-01-01,12x\nj4,c1,order,2024-01-01,12.5\n",
    )
    store.ingest(d)
    assert store.count("journeys") == 1
    assert all(r["rule"] == "type" for r in quarantine(store, "journeys"))


def test_parquet_and_jsonl(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(
        pa.table(
            {
                "customer_id": ["c1", "c2"],
                "joined_at": pa.array([dt.datetime(2024, 1, 1), None], pa.timestamp("us")),
            }
        ),
        d / "customers.parquet",
    )
    write(
        d,
        "surveys.jsonl",
        '{"survey_id": "s1", "customer_id": "c1", "instrument": "csat", "score": 5}\n'
        "not json\n"
        '{"survey_id": "s2", "customer_id": "c2", "instrument": "csat", "score": 9}\n'
        "[1, 2]\n",
    )
    report = store.ingest(d)
    balanced(report)
    assert store.count("customers") == 2 and store.count("surveys") == 1
    q = {r["line"]: r["reason"] for r in quarantine(store, "surveys")}
    assert "not JSON" in q[2] and "outside the csat scale" in q[3] and "not an object" in q[4]


# -- transactions, idempotence, upserts ---------------------------------------------------


def test_reingest_is_idempotent_and_logged(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS + "c4,notadate,x\n")
    first = store.ingest(d)
    before = store.counts()
    second = store.ingest(d)
    after = store.counts()
    assert {k: v for k, v in before.items() if k != "ingest_log"} == {
        k: v for k, v in after.items() if k != "ingest_log"
    }
    assert first.table("customers").inserted == 3
    assert second.table("customers").unchanged == 3 and second.table("customers").inserted == 0
    assert store.count("quarantine") == 1
    log = store.table("ingest_log").to_pandas()
    assert list(log["rows_unchanged"]) == [0, 3]


def test_newer_file_upserts_and_says_so(tmp_path: Path, store: sawubona.Store) -> None:
    store.ingest(write(tmp_path / "a", "customers.csv", CUSTOMERS))
    newer = "customer_id,joined_at,segment\nc1,2024-01-05,gold\nc4,2024-04-01,d\n"
    report = store.ingest(write(tmp_path / "b", "customers.csv", newer))
    t = report.table("customers")
    assert (t.inserted, t.updated, t.unchanged) == (1, 1, 0)
    seg = store.table("customers").to_pandas().set_index("customer_id")["segment"]
    assert seg["c1"] == "gold" and len(seg) == 4


def test_failed_load_leaves_store_as_it_was(
    tmp_path: Path, store: sawubona.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.ingest(write(tmp_path / "a", "customers.csv", CUSTOMERS))
    before = store.counts()
    d = tmp_path / "b"
    write(d, "customers.csv", "customer_id\nc9\n")
    write(d, "journeys.csv", "journey_id,customer_id,kind,started_at\nj1,c9,order,2024-01-01\n")
    real_upsert = sawubona.Store.upsert

    def failing(self, name, data):  # type: ignore[no-untyped-def]
        if name == "journeys":
            raise OSError("disk full")
        return real_upsert(self, name, data)

    monkeypatch.setattr(sawubona.Store, "upsert", failing)
    with pytest.raises(OSError, match="disk full"):
        store.ingest(d)
    assert store.counts() == before  # c9 was written first, and rolled back


# -- mapping ----------------------------------------------------------------------------------


def test_mapping_file_columns_constants_values_and_formats(
    tmp_path: Path, store: sawubona.Store
) -> None:
    d = tmp_path / "exports"
    write(d, "clients.csv", "Client No;Since;Tier\n7;03/04/2024;Gold\n8;15/04/2024;Silver\n")
    write(
        d,
        "orders.csv",
        "Order,Client No,Date,Status\nA1,7,2024-04-05 10:00,Delivered\n"
        "A2,8,2024-04-06 11:00,Cancelled\n",
    )
    m = write(
        tmp_path,
        "mapping.toml",
        """
[defaults]
delimiter = ";"

[tables.customers]
files = ["exports/clients.csv"]
columns = { customer_id = "Client No", joined_at = "Since", segment = "Tier" }
formats = { joined_at = "%d/%m/%Y" }

[tables.journeys]
files = ["exports/orders*.csv"]
delimiter = ","
constants = { kind = "order" }
values.outcome = { Delivered = "achieved", Cancelled = "failed" }

[tables.journeys.columns]
journey_id = "Order"
customer_id = "Client No"
started_at = "Date"
outcome = "Status"
""",
    )
    report = store.ingest([], mapping=m)
    balanced(report)
    j = store.table("journeys").to_pandas().set_index("journey_id")
    assert j.loc["A1", "outcome"] == "achieved" and j.loc["A2", "outcome"] == "failed"
    assert set(j["kind"]) == {"order"}
    c = store.table("customers").to_pandas().set_index("customer_id")
    assert c.loc["7", "joined_at"] == dt.datetime(2024, 4, 3)


def test_mapping_errors_name_the_fix(tmp_path: Path, store: sawubona.Store) -> None:
    m = write(tmp_path, "m.toml", '[tables.clients]\nfiles = ["x.csv"]\n')
    with pytest.raises(MappingError, match="clients is not a canonical table; use one of"):
        store.ingest([], mapping=m)
    m = write(tmp_path, "m.toml", '[tables.customers]\nfiles = ["nothere*.csv"]\n')
    with pytest.raises(MappingError, match=r"no file matches 'nothere\*\.csv'"):
        store.ingest([], mapping=m)
    m = write(tmp_path, "m.toml", "[tables.customers\n")
    with pytest.raises(MappingError, match="not valid TOML"):
        store.ingest([], mapping=m)


def test_template_names_every_canonical_column() -> None:
    from sawubona import schema
    from sawubona.ingest import template

    text = template()
    for t, c in schema.iter_columns():
        assert f"[tables.{t.name}]" in text
        assert f"# {c.name} = " in text


def test_unnamed_folder_is_a_clear_error(tmp_path: Path, store: sawubona.Store) -> None:
    write(tmp_path / "in", "export1.csv", "a,b\n1,2\n")
    with pytest.raises(InputError, match="named after a canonical table"):
        store.ingest(tmp_path / "in")


def test_column_spellings_are_recognised(tmp_path: Path, store: sawubona.Store) -> None:
    d = tmp_path / "in"
    write(d, "customers.csv", "Customer ID,Joined At,SEGMENT\nc1,2024-01-01,a\n")
    write(d, "journeys.csv", "journeyId,CustomerID,Kind,started-at\nj1,c1,Order,2024-01-02\n")
    report = store.ingest(d)
    balanced(report)
    assert store.count("journeys") == 1
    assert store.table("journeys").to_pandas()["kind"].tolist() == ["order"]


def test_parquet_numbers_that_fail_keep_their_text(tmp_path: Path, store: sawubona.Store) -> None:
    # A typed Parquet column is kept as it is and made text only for the rows quarantined:
    # the reasons and raw copies must read as the number's text, as for CSV.
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    pq.write_table(
        pa.table(
            {
                "journey_id": ["j1", "j2", "j3", "j4", "j5"],
                "customer_id": ["c1", "c1", None, "c1", "c1"],
                "kind": ["order"] * 5,
                "started_at": ["2024-01-01"] * 5,
                "value": pa.array([float("nan"), float("inf"), 12.5, 7.25, -3.0], pa.float64()),
            }
        ),
        d / "journeys.parquet",
    )
    report = store.ingest(d)
    balanced(report)
    assert store.count("journeys") == 1
    q = {r["line"]: r for r in quarantine(store, "journeys")}
    assert sorted(q) == [1, 2, 3, 5]
    assert q[1]["rule"] == "type" and q[1]["reason"].startswith("value 'nan' is not an amount")
    assert q[2]["rule"] == "type" and q[2]["reason"].startswith("value 'inf' is not an amount")
    assert q[3]["rule"] == "required" and q[3]["column_name"] == "customer_id"
    assert '"value":"12.5"' in q[3]["raw"] and '"value":"nan"' in q[1]["raw"]
    assert q[5]["rule"] == "range" and q[5]["reason"] == "value -3.0 is below 0"


def test_duplicates_found_whatever_the_key_columns(tmp_path: Path, store: sawubona.Store) -> None:
    # duplicate keys are found by a hash of the key first; every repeat must still be caught
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    write(
        d,
        "subscriptions.csv",
        "customer_id,plan_id,started_at\nc1,p1,2024-01-01\nc1,p1,2024-01-02\n"
        "c1,p1,2024-01-01\nc2,p1,2024-01-01\nc2,p1,2024-01-01\n",
    )
    write(d, "plans.csv", "plan_id,name,monthly_fee\np1,basic,10\n")
    report = store.ingest(d)
    balanced(report)
    assert store.count("subscriptions") == 3
    q = sorted((r["line"], r["rule"]) for r in quarantine(store, "subscriptions"))
    assert q == [(2, "duplicate"), (5, "duplicate")]


def test_staging_in_the_store_leaves_nothing_behind(
    tmp_path: Path, store: sawubona.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a DuckDB store lends its connection for staging: every temporary table and view made
    # for a load is dropped after it, whether the load committed or failed
    def temp_objects() -> int:
        con = store.staging_connection()
        assert con is not None
        n = con.execute(
            "SELECT (SELECT count(*) FROM duckdb_tables() WHERE temporary) + "
            "(SELECT count(*) FROM duckdb_views() WHERE temporary AND database_name = 'temp')"
        ).fetchall()[0][0]
        return int(n)

    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS + "c1,2024-01-09,z\nc5,notadate,x\n")
    pq.write_table(
        pa.table({"plan_id": ["p1"], "name": ["basic"], "monthly_fee": [10.0]}), d / "plans.parquet"
    )
    assert temp_objects() == 0
    report = store.ingest(d)
    balanced(report)
    assert store.count("customers") == 3 and store.count("plans") == 1
    assert temp_objects() == 0
    store.ingest(d)  # again: the merge path
    assert temp_objects() == 0

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sawubona.Store, "upsert", boom)
    with pytest.raises(RuntimeError):
        store.ingest(write(tmp_path / "b", "customers.csv", "customer_id\nc9\n"))
    assert temp_objects() == 0 and store.count("customers") == 3


def test_amounts_plain_and_decorated_read_alike(tmp_path: Path, store: sawubona.Store) -> None:
    # plain numbers take a short path, decorated ones (currency, thousands, spaces) the
    # careful one; both must give the planted amounts
    planted = {
        "j1": 12.0,
        "j2": 1200.5,
        "j3": 1000.0,
        "j4": 2.25,
        "j5": 1500.0,
        "j6": 0.5,
        "j7": 3.0,
    }
    text = ["12", '"$1,200.50"', "1 000", "£2.25", "1.5e3", ".5", "+3"]
    d = tmp_path / "in"
    write(d, "customers.csv", CUSTOMERS)
    write(
        d,
        "journeys.csv",
        "journey_id,customer_id,kind,started_at,value\n"
        + "".join(f"j{i + 1},c1,order,2024-01-01,{t}\n" for i, t in enumerate(text))
        + "j8,c1,order,2024-01-01,1,5\n",
    )
    report = store.ingest(d)
    balanced(report)
    got = {r["journey_id"]: r["value"] for r in store.table("journeys").to_pyarrow().to_pylist()}
    assert got == planted


def test_delimiter_sniffing_tie_goes_to_the_header_width() -> None:
    """Bare CRs inside unquoted fields cut records into pieces of widths 3, 2 and 1, each
    seen twice: the header's width (3, with ';') wins the tie, not set order (found by
    tests/test_ingest_properties.py)."""
    from sawubona.ingest.readers import sniff_delimiter

    assert sniff_delimiter("customer_id;joined_at;segment\nc1;;\r0\nc1;\r;\r0\n") == ";"
    assert sniff_delimiter("a,b,c\n1,2,3\n") == ","


def test_quarantine_and_log_keep_odd_file_names_as_they_are(
    tmp_path: Path, store: sawubona.Store
) -> None:
    """File names go into the quarantine and the ingest log as values bound to the query,
    quotes and all: the rejected row names its file and that file's SHA-256."""
    import hashlib

    d = tmp_path / 'o\'brien "exports"; DROP TABLE customers; --'
    path = write(d, "customers.csv", CUSTOMERS + "c4,notadate,x\n")
    store.ingest(d)
    (row,) = quarantine(store, "customers")
    assert row["file"] == str(path) and row["line"] == 5
    assert row["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    log = store.table("ingest_log").to_pyarrow().to_pylist()
    assert [(r["file"], r["file_sha256"], r["rows_loaded"]) for r in log] == [
        (str(path), row["file_sha256"], 3)
    ]
    assert store.count("customers") == 3
