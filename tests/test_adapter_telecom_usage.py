"""The telecom-usage adapter: per-call rounding, m/d/yy dates, a junk line, Megaline itself."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import sawubona
from conftest import dataset
from sawubona.errors import InputError


def _balanced(report: object) -> None:
    for t in report.tables:  # type: ignore[attr-defined]
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t.table


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    folder = tmp_path / "telecom"
    folder.mkdir()
    _write(
        folder / "megaline_users.csv",
        [
            "user_id,first_name,last_name,age,city,reg_date,plan,churn_date",
            '1000,Anamaria,Bauer,45,"Atlanta-Sandy Springs-Roswell, GA MSA",1/24/18,ultimate,',
            '1001,Mickey,Wilkerson,28,"Seattle-Tacoma-Bellevue, WA MSA",8/13/18,surf,12/18/18',
            "1002,Carlee,Hoffman,36,Las Vegas,10/21/18,surf,",
        ],
    )
    _write(
        folder / "megaline_plans.csv",
        [
            "messages_included,mb_per_month_included,minutes_included,usd_monthly_pay,usd_per_gb,"
            "usd_per_message,usd_per_minute,plan_name",
            "50,15360,500,20,10,0.03,0.03,surf",
            "1000,30720,3000,70,7,0.01,0.01,ultimate",
        ],
    )
    _write(
        folder / "megaline_calls.csv",
        [
            "id,user_id,call_date,duration",
            "1001_1,1001,8/14/18,0.2",  # 2
            "1001_2,1001,8/31/18,1.1",  # 3
            "1001_3,1001,9/1/18,0",  # 4: a missed call, 0 minutes
            "1000_1,1000,12/27/18,8.52",  # 5
            "1003_1,1003,12/27/18,1.5",  # 6: no such user
            ",,,116.83",  # 7: the junk last line
        ],
    )
    _write(
        folder / "megaline_messages.csv",
        [
            "id,user_id,message_date",
            "1001_1,1001,8/20/18",
            "1001_2,1001,9/20/18",
            "1001_3,1001,9/21/18",
        ],
    )
    _write(
        folder / "megaline_internet.csv",
        [
            "id,user_id,session_date,mb_used",
            "1001_1,1001,8/20/18,1000.5",
            "1001_2,1001,8/21/18,24.5",
            "1000_1,1000,11/2/18,0",
        ],
    )
    return folder


def test_tiny_megaline(tiny: Path, store: sawubona.Store) -> None:
    report = store.ingest(tiny, adapter="telecom-usage")
    _balanced(report)
    counts = {t.table: (t.rows_read, t.rows_loaded, t.rows_quarantined) for t in report.tables}
    assert counts == {
        "customers": (3, 3, 0),
        "plans": (2, 2, 0),
        "subscriptions": (3, 3, 0),
        # user-months with any event: 1001 Aug, 1001 Sep, 1000 Nov, 1000 Dec, 1003 Dec;
        # × 3 metrics = 15, of which 1003's 3 refer to no customer; + the junk line
        "usage": (16, 12, 4),
    }

    customers = store.table("customers").to_pandas().set_index("customer_id")
    assert customers.loc["1000", "name"] == "Anamaria Bauer"
    assert customers.loc["1000", "segment"] == "Atlanta-Sandy Springs-Roswell, GA MSA"
    assert customers.loc["1000", "joined_at"] == dt.datetime(2018, 1, 24)  # m/d/yy is 2018

    subs = store.table("subscriptions").to_pandas().set_index("customer_id")
    assert subs.loc["1001", "plan_id"] == "surf"
    assert subs.loc["1001", "started_at"] == dt.datetime(2018, 8, 13)
    assert subs.loc["1001", "ended_at"] == dt.datetime(2018, 12, 18)
    assert subs.loc["1000", "monthly_fee_paid"] == 70

    plans = store.table("plans").to_pandas().set_index("plan_id")
    surf = plans.loc["surf"]
    assert (surf.kind, surf.monthly_fee, surf.currency, bool(surf.open_to_new)) == (
        "plan",
        20,
        "USD",
        True,
    )
    assert json.loads(surf.allowances) == {"minutes": 500, "messages": 50, "data_mb": 15360}
    assert json.loads(surf.overage) == {
        "minutes": 0.03,
        "messages": 0.03,
        "data_mb": pytest.approx(10 / 1024),
    }
    assert json.loads(surf.rounding) == {
        "minutes": "per_event_ceil:1",
        "data_mb": "monthly_ceil:1024",
    }

    usage = store.table("usage").to_pandas()
    got = {
        (r.customer_id, r.period_start.strftime("%Y-%m"), r.metric): r.quantity
        for r in usage.itertuples()
    }
    # each call rounded up to the whole minute: 0.2 + 1.1 minutes bill as 1 + 2 = 3
    assert got[("1001", "2018-08", "minutes")] == 3
    assert got[("1001", "2018-08", "messages")] == 1
    assert got[("1001", "2018-08", "data_mb")] == pytest.approx(1025.0)  # not rounded here
    assert got[("1001", "2018-09", "minutes")] == 0  # a missed call
    assert got[("1001", "2018-09", "messages")] == 2
    assert got[("1001", "2018-09", "data_mb")] == 0  # an active month without sessions
    assert got[("1000", "2018-12", "minutes")] == 9
    assert got[("1000", "2018-11", "data_mb")] == 0
    assert len(got) == 12
    assert set(usage.plan_id[usage.customer_id == "1001"]) == {"surf"}
    assert usage.period_start.min() == dt.datetime(2018, 8, 1)

    q = store.table("quarantine").to_pandas()
    q = q[q.table_name == "usage"].sort_values("line")
    junk = q[q.rule == "adapter"]
    assert junk.line.tolist() == [7]
    assert "megaline_calls.csv" in junk.reason.iloc[0]
    assert "no user_id" in junk.reason.iloc[0] and "junk" in junk.reason.iloc[0]
    assert (q[q.rule == "reference"].column_name == "customer_id").sum() == 3


def test_bad_event_values_are_quarantined(tiny: Path, store: sawubona.Store) -> None:
    with (tiny / "megaline_calls.csv").open("a") as fh:
        fh.write("1000_9,1000,12/28/18,abc\r\n1000_10,1000,13/45/18,2\r\n1000_11,1000,,3\r\n")
    report = store.ingest(tiny, adapter="telecom-usage")
    _balanced(report)
    q = store.table("quarantine").to_pandas()
    reasons = q[(q.table_name == "usage") & (q.rule == "adapter")].sort_values("line").reason
    assert len(reasons) == 4
    assert "duration 'abc' is not a number" in reasons.iloc[1]
    assert "call_date '13/45/18' is not a date" in reasons.iloc[2]
    assert "no call_date" in reasons.iloc[3]
    minutes = store.table("usage").to_pandas().set_index(["customer_id", "metric"])
    assert minutes.loc[("1000", "minutes"), "quantity"].max() == 9  # bad lines add nothing


def test_missing_file_or_column(tiny: Path, store: sawubona.Store) -> None:
    (tiny / "megaline_internet.csv").unlink()
    with pytest.raises(InputError, match="internet"):
        store.ingest(tiny, adapter="telecom-usage")
    _write(tiny / "megaline_internet.csv", ["id,user_id,session_date", "1,1000,1/1/18"])
    with pytest.raises(InputError, match="mb_used"):
        store.ingest(tiny, adapter="telecom-usage")


@pytest.mark.realdata
def test_megaline(store: sawubona.Store) -> None:
    report = store.ingest(dataset("megaline"), adapter="telecom-usage")
    _balanced(report)
    counts = {t.table: (t.rows_read, t.rows_loaded, t.rows_quarantined) for t in report.tables}
    assert counts == {
        "customers": (500, 500, 0),
        "plans": (2, 2, 0),
        "subscriptions": (500, 500, 0),
        # 2,293 user-months with any event × 3 metrics, + the calls file's junk last line
        "usage": (6_880, 6_879, 1),
    }
    junk = report.table("usage").reasons[0]
    assert (junk.rule, junk.example_line) == ("adapter", 137_737)
    assert "junk" in junk.example_reason

    subs = store.table("subscriptions").to_pandas()
    assert subs.plan_id.value_counts().to_dict() == {"surf": 339, "ultimate": 161}
    assert subs.ended_at.notna().sum() == 34
    assert subs.started_at.min() == dt.datetime(2018, 1, 1)
    assert subs.started_at.max() == dt.datetime(2018, 12, 31)
    usage = store.table("usage").to_pandas()
    active = subs[subs.customer_id.isin(usage.customer_id)]
    # the users with at least one call, text or session
    assert active.plan_id.value_counts().to_dict() == {"surf": 333, "ultimate": 157}
    totals = usage.groupby("metric").quantity.sum()
    assert totals["minutes"] == 984_347  # Σ ceil(duration) over 137,735 calls
    assert totals["messages"] == 76_051
    assert totals["data_mb"] == pytest.approx(38_440_763.71, abs=0.5)
    assert usage.period_start.min() == dt.datetime(2018, 1, 1)
    assert usage.period_start.max() == dt.datetime(2018, 12, 1)
