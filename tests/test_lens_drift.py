"""The drift lens end to end: CDNOW through the store and runner, a hand-built world with
known reasons, planted truth in demo worlds, and real data (Online Retail II)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import sawubona
from conftest import dataset
from sawubona import analyze as runner
from sawubona import lenses
from sawubona.lenses.drift import LENS, SETTINGS
from test_bgnbd import cdnow_transactions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def only_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the drift lens alone (other lenses are tested in their own files)."""
    monkeypatch.setattr(lenses, "available", lambda: {"drift": LENS})


def run(store: sawubona.Store, as_of: str | None = None, **settings: Any) -> runner.LensReport:
    report = runner.analyze(
        store, ["drift"], as_of=as_of, settings={f"drift.{k}": v for k, v in settings.items()}
    )
    (lens,) = report.lenses
    assert lens.status == "ran", lens.message
    return lens


def frame(store: sawubona.Store, name: str) -> pd.DataFrame:
    return store.table(name).to_pandas()


def model_params(store: sawubona.Store, model: str = "bg/nbd") -> dict[str, float]:
    m = frame(store, "drift_model")
    m = m[m.model == model]
    return dict(zip(m.param, m.value, strict=True))


# -- CDNOW ------------------------------------------------------------------------------------
@pytest.fixture
def cdnow_store(tmp_path: Path, store: sawubona.Store) -> sawubona.Store:
    """The canonical folder ../shared/acceptance/cdnow.sh builds, ingested."""
    d = cdnow_transactions()
    folder = tmp_path / "cdnow"
    folder.mkdir()
    pd.DataFrame({"customer_id": sorted(d.customer_id.unique())}).to_csv(
        folder / "customers.csv", index=False
    )
    pd.DataFrame(
        {
            "journey_id": [f"j{i}" for i in range(len(d))],
            "customer_id": d.customer_id,
            "kind": "order",
            "started_at": d.date.dt.strftime("%Y-%m-%dT00:00:00Z"),
            "outcome": "achieved",
            "value": d.value,
            "currency": "USD",
        }
    ).to_csv(folder / "journeys.csv", index=False)
    store.ingest(folder)
    return store


def test_cdnow_published_bgnbd_through_the_runner(cdnow_store: sawubona.Store) -> None:
    lens = run(cdnow_store, "1997-09-30", horizon="39", models="bg/nbd,mbg/nbd,pareto/nbd")
    p = model_params(cdnow_store)
    for k, v in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert round(p[k], 3) == pytest.approx(v, abs=1e-9), (k, p[k])
    assert round(p["log_likelihood"], 1) == pytest.approx(-9582.4, abs=1e-9)
    assert p["customers"] == 2357
    # the acceptance check's reading: rows of the model containing "bg" but not "mbg"
    m = frame(cdnow_store, "drift_model")
    texts = m.apply(lambda row: " ".join(map(str, row.values)), axis=1).str.lower()
    assert set(m[texts.str.contains("bg") & ~texts.str.contains("mbg")].model) == {"bg/nbd"}
    pareto = model_params(cdnow_store, "pareto/nbd")
    assert round(pareto["beta"], 3) == pytest.approx(11.669, abs=1e-9)
    # holdout: 39 weeks to 1998-06-30; lifetimes' calibration_and_holdout_data counts
    # 1,882 repeat purchase days (frequency_holdout summed) for the same split
    assert p["holdout_length"] == pytest.approx(39.0)
    assert p["actual_purchases"] == 1882
    assert 0.8 < p["predicted_purchases"] / p["actual_purchases"] < 1.0
    c = frame(cdnow_store, "drift_customers").set_index("customer_id")
    assert len(c) == 2357 and lens.tables["drift_customers"] == 2357
    first = c.loc["0001"]  # 1997-01-01, 01-18, 08-02 in calibration; T to 1997-09-30
    assert (first.frequency, round(first.recency, 2), round(first["T"], 2)) == (2, 30.43, 38.86)
    assert c.holdout_purchases.sum() == 1882
    h = frame(cdnow_store, "drift_holdout")
    assert h[h.model == "bg/nbd"].customers.sum() == 2357
    f = frame(cdnow_store, "findings")
    assert f.text.str.contains("log-likelihood -9,582.4").any()


def test_cdnow_in_days(cdnow_store: sawubona.Store) -> None:
    run(cdnow_store, "1997-09-30", time_unit="day", models="bg/nbd")
    p = model_params(cdnow_store)
    assert p["alpha"] == pytest.approx(7 * 4.4136, rel=1e-3)
    assert round(p["r"], 3) == 0.243


def test_unknown_settings_are_errors(cdnow_store: sawubona.Store) -> None:
    with pytest.raises(sawubona.SawubonaError, match="unknown drift model 'bgnb'"):
        runner.analyze(cdnow_store, ["drift"], settings={"drift.models": "bgnb"})
    with pytest.raises(sawubona.SawubonaError, match="use week or day"):
        runner.analyze(cdnow_store, ["drift"], settings={"drift.time_unit": "month"})


# -- a hand-built world with known reasons --------------------------------------------------------
def write_world(folder: Path) -> None:
    """Weekly regulars c1..c3 who stop in May 2024 — c1 after two stock-outs of their core
    item (orange juice), c2 after a price rise, c3 for no visible reason — and c4, a loyal
    valuable regular with an unanswered message who only receives marketing; plus 60
    occasional customers so the models have a population to fit."""
    rng = np.random.default_rng(7)
    journeys, items, actions, touch = [], [], [], []
    start = dt.datetime(2024, 1, 1, 9)

    def visit(cid: str, when: dt.datetime, wanted: list[tuple[str, bool]], value: float) -> str:
        jid = f"{cid}-{len(journeys)}"
        ok = all(f for _, f in wanted)
        journeys.append(
            {
                "journey_id": jid,
                "customer_id": cid,
                "kind": "visit",
                "started_at": when,
                "outcome": "achieved" if ok else "failed",
                "outcome_reason": None if ok else "out of stock",
                "value": value,
                "currency": "GBP",
            }
        )
        for item, fulfilled in wanted:
            items.append(
                {
                    "journey_id": jid,
                    "item_id": item,
                    "quantity": 1,
                    "unit_price": 3,
                    "fulfilled": fulfilled,
                }
            )
        return jid

    for cid in ("c1", "c2", "c3"):
        for k in range(20):
            out_of_stock = cid == "c1" and k >= 18
            wanted = [("oj", not out_of_stock)] + [("cake", True)] * (k % 3 == 0)
            visit(cid, start + dt.timedelta(days=7 * k), wanted, 6.0)
    actions.append(
        {
            "action_id": "a1",
            "customer_id": "c2",
            "at": start + dt.timedelta(days=134),
            "kind": "price_rise",
            "amount": 1.0,
            "currency": "GBP",
        }
    )
    for k in range(52):
        visit("c4", start + dt.timedelta(days=7 * k), [("coffee", True)], 40.0)
    touch.append(
        {
            "touchpoint_id": "t1",
            "customer_id": "c4",
            "journey_id": None,
            "at": dt.datetime(2024, 11, 1),
            "channel": "email",
            "direction": "inbound",
            "actor": "customer",
            "kind": "inquiry",
            "template_id": None,
        }
    )
    for k, m in enumerate((6, 8, 10, 12)):
        touch.append(
            {
                "touchpoint_id": f"m{k}",
                "customer_id": "c4",
                "journey_id": None,
                "at": dt.datetime(2024, m, 15),
                "channel": "email",
                "direction": "outbound",
                "actor": "system",
                "kind": "marketing",
                "template_id": "newsletter",
            }
        )
    for i in range(60):
        first = start + dt.timedelta(days=int(rng.integers(0, 200)))
        for k in range(int(rng.integers(1, 5))):
            when = first + dt.timedelta(days=int(rng.integers(0, 150)) * (k > 0))
            visit(f"o{i}", when, [("tea", True)], 3.0)
    customers = sorted({j["customer_id"] for j in journeys})
    folder.mkdir()
    pd.DataFrame({"customer_id": customers}).to_csv(folder / "customers.csv", index=False)
    for name, rows in (
        ("journeys", journeys),
        ("journey_items", items),
        ("actions", actions),
        ("touchpoints", touch),
    ):
        pd.DataFrame(rows).to_csv(folder / f"{name}.csv", index=False)


@pytest.fixture
def world(tmp_path: Path, store: sawubona.Store) -> sawubona.Store:
    write_world(tmp_path / "w")
    store.ingest(tmp_path / "w")
    run(store, "2024-12-31")
    return store


def test_reasons_are_ranked_with_their_rows(world: sawubona.Store) -> None:
    c = frame(world, "drift_customers").set_index("customer_id")
    assert set(c.loc[["c1", "c2", "c3"]].status) <= {"drifting", "lapsed"}
    assert c.loc[["c1", "c2", "c3"]].cadence_broken.all()
    assert c.loc["c4"].status == "active" and not c.loc["c4"].cadence_broken
    assert c.loc["c1"].core_item == "oj" and c.loc["c4"].core_item == "coffee"
    r = frame(world, "drift_reasons")
    top = r[r["rank"] == 1].set_index("customer_id")
    assert top.loc["c1"].reason == "core_item_unavailable"
    assert sorted(top.loc["c1"].evidence_ids) == ["c1-18", "c1-19"]
    assert top.loc["c1"].detail == "oj" and top.loc["c1"].events == 2
    # the failed outcomes are explained by the stock-out, not counted twice
    assert set(r[r.customer_id == "c1"].reason) == {"core_item_unavailable"}
    assert top.loc["c2"].reason == "price_rise" and list(top.loc["c2"].evidence_ids) == ["a1"]
    assert top.loc["c3"].reason == "no_visible_cause"
    assert c.loc["c3"].likely_reasons == "no visible cause"
    assert c.loc["c1"].likely_reasons.startswith("their core item was not available (oj, 2x)")
    assert "c4" not in set(r.customer_id)


def test_neglect_of_a_valuable_customer(world: sawubona.Store) -> None:
    n = frame(world, "drift_neglect").set_index("customer_id")
    row = n.loc["c4"]
    assert row.unanswered_contacts == 1 and list(row.unanswered_ids) == ["t1"]
    assert row.marketing_recent == 3 and pd.isna(row.last_personal_at)  # 180 days
    assert row.neglect == "unanswered; marketing without a person"
    f = frame(world, "findings")
    assert f[f.key == "neglect"].text.str.contains("1 with contacts unanswered").all()


def test_without_purchase_journeys_it_says_what_it_skipped(
    tmp_path: Path, store: sawubona.Store
) -> None:
    d = tmp_path / "s"
    d.mkdir()
    (d / "customers.csv").write_text("customer_id\nc1\n")
    (d / "journeys.csv").write_text(
        "journey_id,customer_id,kind,started_at\nj1,c1,support,2024-01-01\n"
    )
    store.ingest(d)
    report = runner.analyze(store, ["drift"])
    assert report.lenses[0].status == "ran"
    assert "no purchase journeys (kinds order, visit, purchase)" in report.lenses[0].message


def test_a_subscription_world_gets_neglect_by_what_customers_pay(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A telco world has no purchase journeys: no purchase model, but valuable customers (by
    the fees they pay) with planted ignored contacts are found, and nobody else is."""
    s, folder = demo_store(tmp_path_factory, "telco", 2000)
    report = run(s)
    assert report.status == "ran", report.message
    assert "neglect judged on what customers pay" in report.message
    assert s.tables() and "drift_customers" not in s.tables()
    ng = frame(s, "drift_neglect")
    subs = pq.read_table(folder / "subscriptions.parquet").to_pandas()
    as_of = pd.Timestamp(json.loads((folder / "truth.json").read_text())["as_of"])
    live = subs[subs.ended_at.isna() | (subs.ended_at > as_of)]
    fees = live.groupby("customer_id").monthly_fee_paid.sum() * 12
    # the valuable customers are the top share by yearly fees (ties at the edge aside)
    edge = fees.sort_values(ascending=False).iloc[round(0.2 * len(fees)) - 1]
    assert (ng.value_total >= edge - 1e-9).all()
    assert ng.value_total.to_numpy() == pytest.approx(fees.reindex(ng.customer_id).to_numpy())
    valuable = set(fees[fees > edge].index)
    truth = pq.read_table(folder / "truth" / "unanswered.parquet").to_pandas()
    ignored = truth[(truth.reason == "ignored") & (truth.age_days > 7)]
    planted = set(ignored.customer_id) & valuable
    found = set(ng[ng.unanswered_contacts > 0].customer_id)
    assert planted, "the world plants ignored contacts among valuable customers"
    assert planted <= found
    assert found - set(truth.customer_id) == set()  # no customer without a planted one


# -- planted truth in demo worlds -----------------------------------------------------------------
def demo_store(tmp_path_factory: pytest.TempPathFactory, world: str, size: int) -> tuple:
    from sawubona import demo

    out = tmp_path_factory.mktemp(world)
    demo.generate(out / "world", world=world, size=size, seed=0)
    s = sawubona.open(out / "s.duckdb")
    s.ingest(out / "world")
    return s, out / "world"


def check_planted(store: sawubona.Store, folder: Path) -> dict[str, float]:
    c = frame(store, "drift_customers")
    r = frame(store, "drift_reasons")
    truth = pq.read_table(folder / "truth" / "drift.parquet").to_pandas()
    churned = pq.read_table(folder / "truth" / "customers.parquet").to_pandas()
    churned = set(churned[churned.churned].customer_id)
    planted = set(truth[truth.stopped].customer_id)
    flagged = set(c[c.regular & (c.status != "active")].customer_id)
    among_planted_regulars = flagged & set(truth.customer_id)
    top = r[r["rank"] == 1].set_index("customer_id")
    so = truth[truth.role == "drift_stockout"]
    unknown = truth[truth.role == "drift_unknown"]
    cc = c.set_index("customer_id")
    got = {
        "recall": len(flagged & planted) / len(planted),
        "precision_regulars": len(among_planted_regulars & planted) / len(among_planted_regulars),
        "precision_truth": len(flagged & (planted | churned)) / len(flagged),
        "cause_named": float(
            (top.reindex(so.customer_id).reason == "core_item_unavailable").mean()
        ),
        "evidence_right": float(
            np.mean(
                [
                    set(top.loc[cid].evidence_ids) == set(ids)
                    for cid, ids in zip(so.customer_id, so.stockout_journey_ids, strict=True)
                    if cid in top.index
                ]
            )
        ),
        "no_visible_cause": float(
            (top.reindex(unknown.customer_id).reason == "no_visible_cause").mean()
        ),
        "core_item_right": float(
            (cc.reindex(truth.customer_id).core_item.to_numpy() == truth.core_item).mean()
        ),
    }
    return got


def assert_planted(got: dict[str, float]) -> None:
    assert got["recall"] >= 0.8, got
    assert got["precision_regulars"] >= 0.7, got
    assert got["precision_truth"] >= 0.7, got
    assert got["cause_named"] >= 0.8, got
    assert got["evidence_right"] >= 0.8, got
    assert got["no_visible_cause"] >= 0.8, got
    assert got["core_item_right"] >= 0.9, got


def test_cafe_planted_drifting_regulars(tmp_path_factory: pytest.TempPathFactory) -> None:
    store, folder = demo_store(tmp_path_factory, "cafe", 2500)
    with store:
        run(store)
        got = check_planted(store, folder)
        assert_planted(got)
        # neglect: unanswered contacts of valuable customers are exactly the planted ones
        n = frame(store, "drift_neglect")
        truth = pq.read_table(folder / "truth" / "unanswered.parquet").to_pandas()
        truth = truth[(truth.reason == "ignored") & truth.customer_id.isin(n.customer_id)]
        ours = {t for ids in n.unanswered_ids for t in ids}
        tp = frame(store, "touchpoints").set_index("touchpoint_id")
        ours_on_journeys = {t for t in ours if pd.notna(tp.loc[t].journey_id)}
        assert ours_on_journeys == set(truth.touchpoint_id)


@pytest.mark.slow
def test_shop_planted_drifting_regulars(tmp_path_factory: pytest.TempPathFactory) -> None:
    store, folder = demo_store(tmp_path_factory, "shop", 3000)
    with store:
        run(store)
        assert_planted(check_planted(store, folder))


# -- real data ---------------------------------------------------------------------------------
@pytest.mark.realdata
def test_online_retail_holdout_and_core_items(store: sawubona.Store) -> None:
    """Fit up to 2010-09-09, compare with what customers did until 2010-12-09 (13 weeks);
    the holdout counts are checked against a direct count on the published file."""
    folder = dataset("online_retail_ii")
    store.ingest(folder, adapter="online-retail")
    run(store, "2010-09-09", horizon="13")
    p = model_params(store)
    assert p["holdout_length"] == pytest.approx(13.0)
    raw = pd.concat(pd.read_parquet(f) for f in sorted(folder.glob("*retail*.parquet")))
    raw = raw[raw["Customer ID"].notna() & ~raw["Invoice"].astype(str).str.startswith("C")]
    raw["customer_id"] = raw["Customer ID"].astype("int64").astype(str)
    raw["day"] = pd.to_datetime(raw["InvoiceDate"]).dt.normalize()
    first = raw.groupby("customer_id").day.min()
    cal = set(first[first <= "2010-09-09"].index)
    hold = raw[(raw.day > "2010-09-09") & (raw.day <= "2010-12-09") & raw.customer_id.isin(cal)]
    expected = hold.drop_duplicates(["customer_id", "day"]).shape[0]
    assert p["actual_purchases"] == expected
    assert p["customers"] == len(cal)
    c = frame(store, "drift_customers")
    drifting = c[c.regular & (c.status != "active")]
    assert len(drifting) > 0
    assert drifting.core_item.notna().all()
    assert not drifting.core_item.isin(["POST", "M", "DOT"]).any()
    f = frame(store, "findings")
    assert f.key.isin(["holdout", "holdout_status", "regulars_drifting"]).sum() == 3


# -- docs that cannot drift ------------------------------------------------------------------------
def test_every_setting_and_table_is_documented() -> None:
    doc = (ROOT / "docs" / "lenses" / "drift.md").read_text()
    for s in SETTINGS:
        assert f"`{s.name}`" in doc, s.name
        assert re.search(rf"`{s.name}`\s*\|\s*`?{re.escape(str(s.default))}`?", doc), s.name
    for table in (
        "drift_customers",
        "drift_reasons",
        "drift_neglect",
        "drift_model",
        "drift_holdout",
        "drift_cohorts",
    ):
        assert f"`{table}`" in doc, table
    assert LENS.name == "drift" and LENS.needs == ("journeys",)
    assert LENS.after == ("experience", "promises")


def test_reads_the_experience_lens_outcomes_when_present(world: sawubona.Store) -> None:
    """A journey the experience lens judged failed (here c3's last visit) becomes a reason."""
    import pyarrow as pa

    c3 = frame(world, "journeys").query("customer_id == 'c3'")
    last = c3.sort_values("started_at").journey_id.iloc[-1]
    world.replace(
        "experience_journeys",
        pa.table({"journey_id": [last], "outcome_achieved": [False]}),
    )
    run(world, "2024-12-31")
    r = frame(world, "drift_reasons")
    top = r[r["rank"] == 1].set_index("customer_id")
    assert top.loc["c3"].reason == "failed_outcome"
    assert list(top.loc["c3"].evidence_ids) == [last]
