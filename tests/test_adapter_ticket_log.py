"""The ticket-log adapter: cases → journeys, events → touchpoints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sawubona
from conftest import dataset
from sawubona.ingest.adapters import ticket_log
from sawubona.ingest.report import IngestReport

# Helpdesk-style header, with its duplicated Variant column
HELPDESK = (
    "Case ID,Activity,Resource,Complete Timestamp,Variant,Variant index,Variant,customer,"
    "service_level,support_section,workgroup\n"
)


def _row(case: str, activity: str, resource: str, ts: str, customer: str, wg: str) -> str:
    return f"{case},{activity},{resource},{ts},Variant 1,1,Variant 1,{customer},Value 1,S1,{wg}\n"


def _balanced(report: IngestReport) -> None:
    for t in report.tables:
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t


def _counts(report: IngestReport, table: str) -> tuple[int, int, int]:
    t = report.table(table)
    return t.rows_read, t.rows_loaded, t.rows_quarantined


def _write_helpdesk(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helpdesk.csv").write_text(
        HELPDESK
        # Case 1: out of time order in the file, closed
        + _row("Case 1", "Take in charge ticket", "Value 2", "2012/10/09 15:00:00.000", "V7", "W1")
        + _row("Case 1", "Assign seriousness", "Value 1", "2012/10/09 14:50:17.000", "V7", "")
        + _row("Case 1", "Customer reply", "", "2012/10/10 09:00:00.000", "V7", "W1")
        + _row("Case 1", "Closed", "Value 3", "2012/10/12 08:00:00.000", "V7", "W2")
        # Case 2: still waiting
        + _row("Case 2", "Assign seriousness", "Value 1", "2012/11/01 10:00:00.000", "V7", "W1")
        + _row("Case 2", "Wait", "Value 1", "2012/11/02 10:00:00.000", "V7", "W1")
        # no case: quarantined
        + _row("", "Wait", "Value 1", "2012/11/02 10:00:00.000", "V8", "W1")
        # Case 3: a timestamp that is not one
        + _row("Case 3", "Resolve ticket", "Value 4", "someday", "V9", "W1"),
        encoding="utf-8",
    )


def test_tiny_log(store: sawubona.Store, tmp_path: Path) -> None:
    _write_helpdesk(tmp_path / "helpdesk")
    report = store.ingest(tmp_path / "helpdesk", adapter="ticket-log")
    _balanced(report)
    assert _counts(report, "touchpoints") == (8, 6, 2)
    assert _counts(report, "customers") == (3, 3, 0)
    # Case 3's only event has no time, so the case has no start
    assert _counts(report, "journeys") == (3, 2, 1)

    tp = store.table("touchpoints").to_pandas().set_index("touchpoint_id")
    assert list(tp.loc[[f"Case 1#{i}" for i in (1, 2, 3, 4)], "kind"]) == [
        "assign_seriousness",
        "take_in_charge_ticket",
        "customer_reply",
        "closed",
    ]
    first = tp.loc["Case 1#1"]
    assert first["at"] == pd.Timestamp("2012-10-09 14:50:17")
    assert first["_source"].endswith("helpdesk.csv:3")
    assert first[["direction", "actor", "agent_id", "channel"]].tolist() == [
        "outbound",
        "person",
        "Value 1",
        "helpdesk",
    ]
    assert first["team"] == "S1"  # no workgroup on that line: the support section
    assert tp.loc["Case 1#2", "team"] == "W1"
    reply = tp.loc["Case 1#3"]
    assert reply[["direction", "actor"]].tolist() == ["inbound", "customer"]
    assert pd.isna(reply["agent_id"]) and pd.isna(reply["team"])
    assert set(tp["customer_id"]) == {"case:Case 1", "case:Case 2"}

    j = store.table("journeys").to_pandas().set_index("journey_id")
    c1, c2 = j.loc["Case 1"], j.loc["Case 2"]
    assert c1[["customer_id", "kind", "outcome", "desired_outcome"]].tolist() == [
        "case:Case 1",
        "support",
        "achieved",
        "ticket resolved",
    ]
    assert c1["started_at"] == pd.Timestamp("2012-10-09 14:50:17")
    assert c1["ended_at"] == pd.Timestamp("2012-10-12 08:00:00")
    assert c2["outcome"] == "open" and pd.isna(c2["ended_at"])
    assert c2["outcome_reason"] == "last activity: Wait"

    q = store.table("quarantine").to_pandas()
    qt = q[q.table_name == "touchpoints"].set_index("line")
    assert "no case id" in qt.loc[8, "reason"]
    assert qt.loc[9, "rule"] == "type"
    qj = q[q.table_name == "journeys"]
    assert qj["rule"].tolist() == ["required"] and qj["line"].tolist() == [9]


def test_customer_per_column_value(
    store: sawubona.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_helpdesk(tmp_path / "helpdesk")
    monkeypatch.setattr(ticket_log, "ADAPTER", ticket_log.TicketLog(customers="column"))
    report = store.ingest(tmp_path / "helpdesk", adapter="ticket-log")
    _balanced(report)
    assert _counts(report, "customers") == (2, 2, 0)  # V7 (cases 1, 2) and V9 (case 3)
    j = store.table("journeys").to_pandas().set_index("journey_id")
    assert set(j["customer_id"]) == {"customer:V7"}
    with pytest.raises(ValueError):
        ticket_log.TicketLog(customers="person")  # type: ignore[arg-type]


def test_generic_column_names(store: sawubona.Store, tmp_path: Path) -> None:
    # XES-style names as exported by process-mining tools, ISO timestamps, no resource
    (tmp_path / "events.csv").write_text(
        "case:concept:name,concept:name,time:timestamp\n"
        "T-1,Ticket opened,2024-03-01T09:00:00Z\n"
        "T-1,Ticket resolved,2024-03-01T10:30:00+01:00\n",
        encoding="utf-8",
    )
    report = store.ingest(tmp_path, adapter="ticket-log")
    _balanced(report)
    assert _counts(report, "touchpoints") == (2, 2, 0)
    j = store.table("journeys").to_pandas().iloc[0]
    assert j["journey_id"] == "T-1" and j["outcome"] == "achieved"
    assert j["ended_at"] == pd.Timestamp("2024-03-01 09:30:00")
    tp = store.table("touchpoints").to_pandas()
    assert tp["agent_id"].isna().all()
    assert sorted(tp["kind"]) == ["ticket_opened", "ticket_resolved"]


def test_columns_not_found(store: sawubona.Store, tmp_path: Path) -> None:
    (tmp_path / "log.csv").write_text("case,what\n1,x\n", encoding="utf-8")
    with pytest.raises(sawubona.InputError, match="activity, timestamp"):
        store.ingest(tmp_path, adapter="ticket-log")


@pytest.mark.realdata
def test_real_helpdesk(store: sawubona.Store) -> None:
    report = store.ingest(dataset("helpdesk"), adapter="ticket-log")
    _balanced(report)
    assert _counts(report, "touchpoints") == (21348, 21348, 0)
    assert _counts(report, "journeys") == (4580, 4580, 0)
    assert _counts(report, "customers") == (4580, 4580, 0)

    j = store.table("journeys").to_pandas()
    assert j["outcome"].value_counts().to_dict() == {"achieved": 4568, "open": 12}
    assert j.loc[j["outcome"] == "open", "ended_at"].isna().all()
    done = j[j["outcome"] == "achieved"]
    assert (done["ended_at"] >= done["started_at"]).all()
    assert j["started_at"].min() == pd.Timestamp("2010-01-13 08:40:25")

    tp = store.table("touchpoints").to_pandas()
    assert set(tp["direction"]) == {"outbound"}
    assert tp["agent_id"].notna().all()
    assert tp["kind"].value_counts().head(4).to_dict() == {
        "take_in_charge_ticket": 5060,
        "resolve_ticket": 4983,
        "assign_seriousness": 4938,
        "closed": 4574,
    }
    first = tp[tp["touchpoint_id"] == "Case 1#1"].iloc[0]
    assert first["kind"] == "assign_seriousness"
    assert first["at"] == pd.Timestamp("2012-10-09 14:50:17")
    assert first["team"] == "Value 1"
