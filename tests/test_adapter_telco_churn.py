"""The telco-churn adapter: dates from tenure, plans per contract, the IBM file itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

import sawubona
from conftest import dataset
from sawubona.errors import InputError

HEADER = (
    "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,"
    "InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,"
    "StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,Churn"
)
SERVICES = "Yes,No,DSL,No,Yes,No,No,No,No"


def _balanced(report: object) -> None:
    for t in report.tables:  # type: ignore[attr-defined]
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t.table


def _row(cid: str, tenure: str, contract: str, charges: str, total: str, churn: str) -> str:
    return (
        f"{cid},Female,0,Yes,No,{tenure},{SERVICES},{contract},Yes,Electronic check,"
        f"{charges},{total},{churn}"
    )


def test_tiny_telco(tmp_path: Path, store: sawubona.Store) -> None:
    (tmp_path / "Telco-Customer-Churn.csv").write_text(
        "\n".join(
            [
                HEADER,
                _row("7590-VHVEG", "1", "Month-to-month", "29.85", "29.85", "No"),  # 2
                _row("5575-GNVDE", "34", "One year", "56.95", "1889.5", "No"),  # 3
                _row("3668-QPYBK", "2", "Month-to-month", "53.85", "108.15", "Yes"),  # 4
                _row("4472-LVYGI", "0", "Two year", "52.55", " ", "No"),  # 5: blank TotalCharges
                _row("9999-BADTN", "x", "Two year", "20.00", "20.00", "No"),  # 6: bad tenure
                _row("8888-MAYBE", "5", "Two year", "30.00", "150.00", "Perhaps"),  # 7
                _row("7777-HALFM", "1.5", "Two year", "30.00", "45.00", "No"),  # 8: half a month
                _row("6666-FLOAT", "3.0", "Two year", "40.00", "120.00", "No"),  # 9: a float tenure
            ]
        )
        + "\n"
    )
    report = store.ingest(tmp_path, adapter="telco-churn")
    _balanced(report)
    counts = {t.table: (t.rows_read, t.rows_loaded, t.rows_quarantined) for t in report.tables}
    assert counts == {
        "customers": (8, 6, 2),
        "plans": (3, 3, 0),
        "subscriptions": (8, 5, 3),
    }
    customers = store.table("customers").to_pandas().set_index("customer_id")
    assert customers.loc["7590-VHVEG", "joined_at"] == dt.datetime(2017, 12, 31)
    assert customers.loc["5575-GNVDE", "joined_at"] == dt.datetime(2015, 3, 31)
    assert customers.loc["4472-LVYGI", "joined_at"] == dt.datetime(2018, 1, 31)  # tenure 0
    assert customers.loc["5575-GNVDE", "segment"] == "one_year"

    plans = store.table("plans").to_pandas().set_index("plan_id")
    assert sorted(plans.index) == ["month-to-month", "one_year", "two_year"]
    assert plans.loc["month-to-month", "monthly_fee"] == pytest.approx((29.85 + 53.85) / 2)
    # median of the five two-year rows (52.55, 20, 30, 30, 40)
    assert plans.loc["two_year", "monthly_fee"] == pytest.approx(30.00)
    assert plans.loc["one_year", "name"] == "One year"
    assert set(plans.kind) == {"plan"} and plans.open_to_new.all()

    subs = store.table("subscriptions").to_pandas().set_index("customer_id")
    churned = subs.loc["3668-QPYBK"]
    assert churned.plan_id == "month-to-month"
    assert churned.started_at == dt.datetime(2017, 11, 30)
    assert churned.ended_at == dt.datetime(2018, 1, 31)
    assert churned.monthly_fee_paid == pytest.approx(53.85)
    assert pd.isna(subs.loc["4472-LVYGI", "ended_at"])

    q = store.table("quarantine").to_pandas().sort_values(["table_name", "line"])
    cq = q[q.table_name == "customers"]
    assert cq.line.tolist() == [6, 8] and "tenure 'x'" in cq.reason.iloc[0]
    assert customers.loc["6666-FLOAT", "joined_at"] == dt.datetime(2017, 10, 31)
    sq = q[q.table_name == "subscriptions"]
    assert sq.line.tolist() == [6, 7, 8]
    assert "Churn 'Perhaps' is not Yes or No" in sq.reason.iloc[1]


def test_missing_column(tmp_path: Path, store: sawubona.Store) -> None:
    (tmp_path / "telco_churn.csv").write_text("customerID,tenure,Churn\n1,2,No\n")
    with pytest.raises(InputError, match="MonthlyCharges"):
        store.ingest(tmp_path, adapter="telco-churn")


@pytest.mark.realdata
def test_ibm_telco(store: sawubona.Store) -> None:
    report = store.ingest(dataset("telco_churn"), adapter="telco-churn")
    _balanced(report)
    counts = {t.table: (t.rows_read, t.rows_loaded, t.rows_quarantined) for t in report.tables}
    assert counts == {
        "customers": (7_043, 7_043, 0),
        "plans": (3, 3, 0),
        "subscriptions": (7_043, 7_043, 0),
    }
    plans = store.table("plans").to_pandas().set_index("plan_id").monthly_fee.to_dict()
    assert plans == {"month-to-month": 73.25, "one_year": 68.75, "two_year": 64.35}
    subs = store.table("subscriptions").to_pandas()
    assert subs.ended_at.notna().sum() == 1_869  # Churn = Yes
    assert subs.plan_id.value_counts().to_dict() == {
        "month-to-month": 3_875,
        "two_year": 1_695,
        "one_year": 1_473,
    }
    # the 11 customers with tenure 0 and a blank TotalCharges load, joined at observation
    assert (subs.started_at == dt.datetime(2018, 1, 31)).sum() == 11
    assert subs.started_at.min() == dt.datetime(2012, 1, 31)  # tenure 72
    customers = store.table("customers").to_pandas()
    assert customers.segment.value_counts().to_dict() == {
        "month-to-month": 3_875,
        "two_year": 1_695,
        "one_year": 1_473,
    }
