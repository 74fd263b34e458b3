"""The twitter-support adapter: tweets → touchpoints, threads → journeys."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import sawubona
from conftest import dataset
from sawubona.ingest.report import IngestReport

HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id"
AT = "Wed Oct 11 {} +0000 2017"

ROWS = [
    # line 2 (the quoted text runs over a bare line break onto line 3)
    f'1,500,True,{AT.format("06:00:00")},"@AcmeHelp my order\nis late",2,',
    # line 4: parent written as a decimal, sign-off before a link, escapes
    f"2,AcmeHelp,False,{AT.format('07:00:00')},@500 Sorry &amp; thanks ^AB https://t.co/x,,1.0",
    # line 5: another customer joins thread 1
    f"3,501,True,{AT.format('07:30:00')},@500 @AcmeHelp me too,4,1",
    # line 6: the brand answers them; sign-off before a part counter
    f"4,AcmeHelp,False,{AT.format('08:00:00')},@501 Sorry &amp; thanks - Kim 1/2,,3",
    # line 7: parent not in the file: its own thread, customer from the @handle
    f"5,AcmeHelp,False,{AT.format('09:00:00')},@502 We can help. DM us.,,999",
    # line 8: parent not in the file and no @handle: customer unknown
    f"6,AcmeHelp,False,{AT.format('09:05:00')},We can help. DM us.,,998",
    # lines 9-10: a reply chain that loops
    f"7,503,True,{AT.format('10:00:00')},loop a,,8",
    f"8,AcmeHelp,False,{AT.format('10:01:00')},@503 loop b,,7",
    # line 11: inbound is neither True nor False
    f"9,504,maybe,{AT.format('10:00:00')},hm,,",
    # line 12: a date that is not a date
    "10,505,True,not a date,hello,,",
]


def _balanced(report: IngestReport) -> None:
    for t in report.tables:
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t


def _counts(report: IngestReport, table: str) -> tuple[int, int, int]:
    t = report.table(table)
    return t.rows_read, t.rows_loaded, t.rows_quarantined


def test_tiny_file(store: sawubona.Store, tmp_path: Path) -> None:
    folder = tmp_path / "twcs"
    folder.mkdir()
    (folder / "sample.csv").write_bytes(("\r\n".join([HEADER, *ROWS]) + "\r\n").encode())
    report = store.ingest(folder, adapter="twitter-support")
    _balanced(report)
    assert _counts(report, "touchpoints") == (10, 5, 5)
    assert _counts(report, "customers") == (4, 4, 0)
    assert _counts(report, "journeys") == (4, 3, 1)  # tweet 10's has no time

    tp = store.table("touchpoints").to_pandas().set_index("touchpoint_id")
    assert tp.loc["1", "text"] == "@AcmeHelp my order\nis late"
    assert tp.loc["1", "_source"].endswith("sample.csv:2")
    assert tp.loc["2", "_source"].endswith("sample.csv:4")
    assert tp.loc["1", ["direction", "actor", "channel", "kind"]].tolist() == [
        "inbound",
        "customer",
        "social",
        "inquiry",
    ]
    assert tp.loc["2", ["direction", "actor", "team", "agent_id", "kind"]].tolist() == [
        "outbound",
        "person",
        "AcmeHelp",
        "AcmeHelp:AB",
        "reply",
    ]
    assert tp.loc["2", "text"] == "@500 Sorry & thanks ^AB https://t.co/x"
    assert tp.loc["2", "at"] == pd.Timestamp("2017-10-11 07:00:00")
    assert tp.loc["4", "agent_id"] == "AcmeHelp:Kim"
    assert pd.isna(tp.loc["5", "agent_id"])
    assert tp["customer_id"].to_dict() == {
        "1": "500",
        "2": "500",
        "3": "501",
        "4": "501",
        "5": "502",
    }
    assert tp["journey_id"].to_dict() == {"1": "1", "2": "1", "3": "1/501", "4": "1/501", "5": "5"}

    j = store.table("journeys").to_pandas().set_index("journey_id")
    assert j.loc["1", ["customer_id", "kind"]].tolist() == ["500", "support"]
    assert j.loc["1", "started_at"] == pd.Timestamp("2017-10-11 06:00:00")
    assert j.loc["1", "ended_at"] == pd.Timestamp("2017-10-11 07:00:00")
    assert j.loc["1/501", "started_at"] == pd.Timestamp("2017-10-11 07:30:00")
    assert j["outcome"].isna().all()
    assert sorted(store.table("customers").to_pandas()["customer_id"]) == [
        "500",
        "501",
        "502",
        "505",
    ]

    q = store.table("quarantine").to_pandas()
    qt = q[q.table_name == "touchpoints"].set_index("line")
    assert sorted(qt.index) == [8, 9, 10, 11, 12]
    assert "its customer is unknown" in qt.loc[8, "reason"]
    assert "loops back" in qt.loc[9, "reason"] and "loops back" in qt.loc[10, "reason"]
    assert "neither True nor False" in qt.loc[11, "reason"]
    assert qt.loc[12, "rule"] == "type"


def test_bare_cr_in_text_stays_in_its_record(store: sawubona.Store, tmp_path: Path) -> None:
    # Exported tweet texts can hold a bare CR, quoted or not; records end at (CR)LF.
    (tmp_path / "sample.csv").write_bytes(
        (
            HEADER + "\r\n"
            f"1,500,True,{AT.format('06:00:00')},hello\rworld,,\r\n"
            f'2,AcmeHelp,False,{AT.format("07:00:00")},"@500 quoted\rcr",,1\r\n'
        ).encode()
    )
    report = store.ingest(tmp_path, adapter="twitter-support")
    assert _counts(report, "touchpoints") == (2, 2, 0)
    tp = store.table("touchpoints").to_pandas().set_index("touchpoint_id")
    assert tp.loc["1", "text"] == "hello\rworld"
    assert tp.loc["2", "text"] == "@500 quoted\rcr"
    assert tp.loc["2", "_source"].endswith("sample.csv:3")


def test_missing_column(store: sawubona.Store, tmp_path: Path) -> None:
    (tmp_path / "twcs.csv").write_text("tweet_id,author_id,text\n1,2,hi\n", encoding="utf-8")
    with pytest.raises(sawubona.InputError, match="in_response_to_tweet_id"):
        store.ingest(tmp_path, adapter="twitter-support")


@pytest.mark.realdata
def test_real_sample(store: sawubona.Store) -> None:
    report = store.ingest(dataset("twcs"), adapter="twitter-support")
    _balanced(report)
    assert _counts(report, "touchpoints") == (93, 93, 0)
    assert _counts(report, "customers") == (29, 29, 0)
    assert _counts(report, "journeys") == (29, 29, 0)

    tp = store.table("touchpoints").to_pandas()
    # texts with line breaks inside quotes stay one record
    assert tp["text"].str.contains("\n").sum() == 2
    assert tp["direction"].value_counts().to_dict() == {"inbound": 49, "outbound": 44}
    out = tp[tp["direction"] == "outbound"]
    assert out["team"].notna().all()
    # sign-offs are per brand: the same initials at two brands are two agents
    assert {"SouthwestAir:AC", "sprintcare:AC", "SpotifyCares:AY", "Tesco:Mike"} <= set(
        out["agent_id"].dropna()
    )
    # every touchpoint is in a journey of its own customer
    j = store.table("journeys").to_pandas()
    both = tp.merge(j, on="journey_id", suffixes=("", "_j"))
    assert len(both) == 93 and (both["customer_id"] == both["customer_id_j"]).all()
    assert (j["started_at"] <= j["ended_at"]).all()

    # Brand replies worded the same to different customers: the touch lens will
    # cluster them as a template.
    masked = out.assign(body=out["text"].map(lambda s: re.sub(r"@\w+", "@_", s)))
    same = masked.groupby("body")["customer_id"].nunique()
    assert same.max() >= 3
    top = same.idxmax()
    assert top.startswith("@_ Thanks for reaching out to us. We are always happy to help.")
    assert set(masked.loc[masked["body"] == top, "team"]) == {"AppleSupport"}
