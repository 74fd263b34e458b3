"""The nps-verbatims adapter: one customer, journey and survey per answer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sawubona
from conftest import dataset
from sawubona.ingest.report import IngestReport

HEADER = "CUSTOMER_RESPONSE_DATE,SURVEY_SUB_TYPE,NPS_RATING,NPS_SCORE,text,Qtr\n"


def _nps(scores: pd.Series) -> float:
    s = scores.dropna()
    return 100 * ((s >= 9).mean() - (s <= 6).mean())


def _balanced(report: IngestReport) -> None:
    for t in report.tables:
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t


def test_tiny_file(store: sawubona.Store, tmp_path: Path) -> None:
    folder = tmp_path / "nps"
    folder.mkdir()
    (folder / "verbatim.csv").write_text(
        HEADER
        + "28/12/2017 19:34,Order,Promoter,10,Lovely,Q1\n"  # line 2
        + "01/05/2018 20:23,First Payment,Detractor,0,Nobody called back,other\n"  # 3
        + '11/04/2018 20:09,Service in Use,,,"No score, only words",other\n'  # 4: kept
        + "02/02/2018 10:00,Order,Promoter,3,Confused,other\n"  # 5: contradicts
        + "03/02/2018 10:00,,Passive,7,No stage,other\n"  # 6: no stage
        + "04/02/2018 10:00,Order,Promoter,11,Too high,other\n"  # 7: out of range
        + "31/02/2018 10:00,Order,Passive,8,No such day,other\n",  # 8: bad date
        encoding="utf-8",
    )
    report = store.ingest(folder, adapter="nps-verbatims")
    _balanced(report)
    customers, journeys, surveys = (report.table(n) for n in ("customers", "journeys", "surveys"))
    assert (customers.rows_read, customers.rows_loaded) == (7, 7)
    # journeys: no stage (6) and the impossible date (8) are quarantined
    assert (journeys.rows_read, journeys.rows_loaded, journeys.rows_quarantined) == (7, 5, 2)
    # surveys: contradiction (5), out of range (7), bad date (8), journey missing (6)
    assert (surveys.rows_read, surveys.rows_loaded, surveys.rows_quarantined) == (7, 3, 4)

    s = store.table("surveys").to_pandas().set_index("survey_id")
    assert set(s.index) == {"nps-2", "nps-3", "nps-4"}
    assert s.loc["nps-2", "responded_at"] == pd.Timestamp("2017-12-28 19:34")  # day first
    assert s.loc["nps-3", "responded_at"] == pd.Timestamp("2018-05-01 20:23")
    assert pd.isna(s.loc["nps-4", "score"])  # answered, no score: kept
    assert s.loc["nps-4", "comment"] == "No score, only words"
    assert set(s["instrument"]) == {"nps"}
    assert (s["customer_id"] == s.index).all() and (s["journey_id"] == s.index).all()

    j = store.table("journeys").to_pandas().set_index("journey_id")
    assert j.loc["nps-3", "kind"] == "first_payment"
    assert j.loc["nps-4", "kind"] == "service_in_use"

    q = store.table("quarantine").to_pandas()
    qs = q[q.table_name == "surveys"].set_index("line")
    assert "contradicts the score" in qs.loc[5, "reason"]
    assert qs.loc[6, "rule"] == "reference"
    assert qs.loc[7, "rule"] == "range"
    assert qs.loc[8, "rule"] == "type"
    qj = q[q.table_name == "journeys"].set_index("line")
    assert "SURVEY_SUB_TYPE" in qj.loc[6, "reason"]


def test_reingest_is_idempotent(store: sawubona.Store, tmp_path: Path) -> None:
    (tmp_path / "verbatim.csv").write_text(
        HEADER + "28/12/2017 19:34,Order,Promoter,10,Lovely,Q1\n", encoding="utf-8"
    )
    store.ingest(tmp_path, adapter="nps-verbatims")
    again = store.ingest(tmp_path, adapter="nps-verbatims")
    assert again.table("surveys").unchanged == 1
    assert store.count("surveys") == 1


@pytest.mark.realdata
def test_real_verbatims(store: sawubona.Store) -> None:
    report = store.ingest(dataset("nps_verbatims"), adapter="nps-verbatims")
    _balanced(report)
    for name in ("customers", "journeys", "surveys"):
        t = report.table(name)
        assert (t.rows_read, t.rows_loaded, t.rows_quarantined) == (2385, 2385, 0), name

    s = store.table("surveys").to_pandas()
    j = store.table("journeys").to_pandas()
    # Day first: every date reads, and they span Dec 2017 - Jun 2018 (month first would
    # put them anywhere in 2018 and fail on days above 12).
    assert s["responded_at"].notna().all()
    assert s["responded_at"].min() == pd.Timestamp("2017-12-11 19:36")
    assert s["responded_at"].max() == pd.Timestamp("2018-06-20 19:51")
    assert (
        s["responded_at"]
        .dt.to_period("M")
        .astype(str)
        .isin(["2017-12", "2018-01", "2018-02", "2018-03", "2018-04", "2018-05", "2018-06"])
    ).all()
    # 32 answers have no score and are kept
    assert s["score"].isna().sum() == 32
    assert s["comment"].notna().sum() == 2385
    # facts the voice lens will be checked against
    scored = s.dropna(subset=["score"])
    assert len(scored) == 2353
    assert round(_nps(scored["score"]), 2) == -24.69
    by_stage = scored.merge(j[["journey_id", "kind"]], on="journey_id")
    sin = by_stage[by_stage["kind"] == "service_in_use"]
    assert len(sin) == 30
    assert round(_nps(sin["score"]), 2) == -76.67
    assert j["kind"].value_counts().to_dict() == {
        "first_payment": 1150,
        "order": 971,
        "equipment_received": 234,
        "service_in_use": 30,
    }
