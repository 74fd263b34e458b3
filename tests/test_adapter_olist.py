"""The olist adapter on the public Olist sample (counts from ../shared/data/README.md)."""

from __future__ import annotations

import pandas as pd
import pytest

import sawubona
from conftest import dataset

pytestmark = pytest.mark.realdata


def test_olist_loads_every_order_review_and_promise(store: sawubona.Store) -> None:
    report = store.ingest(dataset("olist"), adapter="olist")
    for t in report.tables:
        assert t.rows_read == t.rows_loaded + t.rows_quarantined, t.table
    assert store.count("journeys") == 15_000
    assert report.table("surveys").rows_read == 14_944
    assert store.count("surveys") + report.table("surveys").rows_quarantined == 14_944
    assert store.count("promises") == 15_000
    assert store.count("customers") == 14_904  # distinct customer_unique_id

    j = store.table("journeys").to_pandas()
    assert (j["outcome"] == "achieved").sum() == 14_552  # delivered
    assert (j["outcome"] == "failed").sum() == 202  # canceled + unavailable
    assert (j["currency"] == "BRL").all() and (j["value"] > 0).mean() > 0.99

    p = store.table("promises").to_pandas()
    delivered = p[p["kept_at"].notna()]
    late = (delivered["kept_at"] > delivered["due_at"]).sum()
    assert (len(delivered) - late, late) == (13_396, 1_156)
    assert p["cancelled_at"].notna().sum() == 202

    s = store.table("surveys").to_pandas()
    assert set(s["instrument"]) == {"csat"} and s["score"].between(1, 5).all()
    assert s["score"].mean() == pytest.approx(4.1, abs=0.1)  # README: about 4.1 of 5
    # README: 6,176 reviews carry a comment message; a title alone is kept as a comment too.
    reviews = pd.read_csv(dataset("olist") / "olist_order_reviews_dataset.csv")
    assert reviews["review_comment_message"].notna().sum() == 6_176

    def written(col: str) -> pd.Series:
        return reviews[col].fillna("").str.strip() != ""

    wrote = written("review_comment_message") | written("review_comment_title")
    assert s["comment"].notna().sum() == wrote.sum()


def test_olist_reingest_changes_nothing(store: sawubona.Store) -> None:
    store.ingest(dataset("olist"), adapter="olist")
    before = {k: v for k, v in store.counts().items() if k != "ingest_log"}
    report = store.ingest(dataset("olist"), adapter="olist")
    after = {k: v for k, v in store.counts().items() if k != "ingest_log"}
    assert before == after
    assert all(t.inserted == 0 and t.updated == 0 for t in report.tables)
