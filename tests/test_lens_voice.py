"""The voice lens: scores with honest uncertainty, gaming signals, say vs do, themes.

Oracles: an independent pandas computation on the raw NPS-verbatims and Olist CSVs,
``sawubona.stats`` and SciPy reference implementations, brute-force enumeration,
Monte Carlo, and planted truth (a generated demo world; small hand-built worlds
whose true NPS and score–retention link are known).
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import sawubona
from conftest import ROOT, dataset
from sawubona import analyze as runner
from sawubona import lenses
from sawubona.lenses.voice import LENS, forensics, honesty, prep, saydo, smallgroups, themes
from sawubona.lenses.voice.report import SCHEMAS
from sawubona.stats import nps_interval, wilson

DOC = ROOT / "docs" / "lenses" / "voice.md"


@pytest.fixture(autouse=True)
def only_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the voice lens alone (other lenses are tested in their own files)."""
    monkeypatch.setattr(lenses, "available", lambda: {"voice": LENS})


def table(store: sawubona.Store, name: str) -> pd.DataFrame:
    return store.table(name).to_pandas()


def score_row(sc: pd.DataFrame, dimension: str, group: str, metric: str) -> pd.Series:
    rows = sc[(sc.dimension == dimension) & (sc.group == group) & (sc.metric == metric)]
    assert len(rows) == 1, (dimension, group, metric)
    return rows.iloc[0]


def write_world(folder: Path, frames: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    return folder


# --------------------------------------------------------------------------- declaration


def test_declared_once_and_documented() -> None:
    assert lenses.REGISTRY["voice"] == "voice"
    assert (LENS.name, LENS.needs, LENS.after) == ("voice", ("surveys",), ())
    names = [s.name for s in LENS.settings]
    assert len(names) == len(set(names))
    doc = DOC.read_text(encoding="utf-8")
    for s in LENS.settings:
        assert f"`{s.name}`" in doc, s.name
    for name, schema in SCHEMAS.items():
        assert f"`{name}`" in doc, name
        for col in schema.names:
            assert f"`{col}`" in doc or col in doc, (name, col)
    for source in ("Reichheld", "Rocks 2016", "Spiegelhalter 2005", "Benjamini & Hochberg 1995"):
        assert source in doc
    assert "de Haan, Verhoef & Wiesel 2015" in doc and "Keiningham et al. 2007" in doc


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def verbatims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sawubona.Store]:
    folder = dataset("nps_verbatims")
    path = tmp_path_factory.mktemp("verbatims") / "v.duckdb"
    with sawubona.open(path) as store:
        store.ingest(folder, adapter="nps-verbatims")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lenses, "available", lambda: {"voice": LENS})
            runner.analyze(store, ["voice"])
        yield store


@pytest.mark.realdata
def test_verbatims_nps_matches_an_independent_computation(verbatims: sawubona.Store) -> None:
    raw = pd.read_csv(dataset("nps_verbatims") / "verbatim.csv")
    score = pd.to_numeric(raw["NPS_SCORE"], errors="coerce")
    sc = table(verbatims, "voice_scores")

    def independent(s: pd.Series) -> tuple[int, float, float, float]:
        s = s.dropna()
        n, p, d = len(s), (s >= 9).mean(), (s <= 6).mean()
        half = 1.959964 * 100 * np.sqrt((p + d - (p - d) ** 2) / n)  # the Wald interval
        return n, 100 * (p - d), 100 * (p - d) - half, 100 * (p - d) + half

    overall = score_row(sc, "overall", "all", "nps")
    n, value, low, high = independent(score)
    assert (n, int(overall.n)) == (2353, 2353)
    assert overall.value == pytest.approx(value) == pytest.approx(-24.69, abs=0.005)
    assert (overall.low, overall.high) == (pytest.approx(low), pytest.approx(high))
    assert overall.interval == "wald" and overall.high - overall.value == pytest.approx(3.55, 0.01)
    # the 32 answers without a score are non-response, not zeros
    assert (overall.n_no_score, overall.n_answered, overall.n_invited) == (32, 2385, 2385)
    assert overall.detractors == (score <= 6).sum()

    for stage, rows in raw.assign(s=score).groupby("SURVEY_SUB_TYPE"):
        kind = re.sub(r"[^a-z0-9]+", "_", stage.lower()).strip("_")
        got = score_row(sc, "journey_kind", kind, "nps")
        n, value, _, _ = independent(rows["s"])
        assert int(got.n) == n and got.value == pytest.approx(value)
        assert got.n_no_score == rows["s"].isna().sum()
        p, d = (rows["s"] >= 9).sum(), (rows["s"] <= 6).sum()
        low, high = nps_interval(p, d, n, adjusted=n < 100)
        assert (got.low, got.high) == (pytest.approx(float(low)), pytest.approx(float(high)))
    siu = score_row(sc, "journey_kind", "service_in_use", "nps")
    assert (int(siu.n), round(siu.value, 2), siu.interval) == (30, -76.67, "adjusted_wald")
    # months compare with the month before (independent samples z test)
    months = sc[(sc.dimension == "month") & sc.compared_with.notna()]
    assert len(months) >= 5 and months.difference_p.between(0, 1).all()

    f = table(verbatims, "findings")
    overall_f = f[f.key == "overall_nps"].iloc[0]
    assert "-24.7" in overall_f.text and "2,353" in overall_f.text and "32" in overall_f.text
    assert json.loads(overall_f.where_json) == {"dimension": "overall", "metric": "nps"}


@pytest.mark.realdata
def test_verbatims_themes_drill_down_to_their_comments(verbatims: sawubona.Store) -> None:
    th = table(verbatims, "voice_themes")
    drill = table(verbatims, "voice_theme_comments")
    assert set(th.band) == {"detractor", "passive", "promoter"}
    promoter = set(th[th.band == "promoter"].phrase)
    assert {"easy", "helpful"} <= promoter
    assert not promoter & set(th[th.band == "detractor"].phrase)
    for r in th.itertuples():
        rows = drill[(drill.band == r.band) & (drill.phrase == r.phrase)]
        assert len(rows) == r.comments and rows.survey_id.is_unique
        lo, hi = (0, 6) if r.band == "detractor" else (7, 8) if r.band == "passive" else (9, 10)
        assert rows.score.between(lo, hi).all()
        for text in rows.comment.head(20):
            plain = unicodedata.normalize("NFKD", text.lower()).replace("'", "")
            for word in r.phrase.split():
                assert word in plain
    raw = pd.read_csv(dataset("nps_verbatims") / "verbatim.csv")
    by_line = drill.assign(line=drill.survey_id.str.removeprefix("nps-").astype(int))
    sample = by_line.head(50)
    assert (
        sample.comment.to_numpy() == raw.text.iloc[sample.line - 2].str.strip().to_numpy()
    ).all()


@pytest.mark.realdata
def test_olist_csat_top2_late_against_on_time(store: sawubona.Store) -> None:
    folder = dataset("olist")
    store.ingest(folder, adapter="olist")
    report = runner.analyze(store, ["voice"])
    sc = table(store, "voice_scores")
    reviews = pd.read_csv(folder / "olist_order_reviews_dataset.csv")
    orders = pd.read_csv(folder / "olist_orders_dataset.csv")
    d = reviews.merge(orders, on="order_id")
    delivered = pd.to_datetime(d.order_delivered_customer_date)
    due = pd.to_datetime(d.order_estimated_delivery_date)
    cancelled = d.order_status.isin(["canceled", "unavailable"])
    late = (delivered > due) | (delivered.isna() & ~cancelled & (due < report.as_of))
    on_time = delivered.notna() & (delivered <= due)
    top = d.review_score >= 4
    overall = score_row(sc, "overall", "all", "csat_top2")
    assert int(overall.n) == len(d) == 14_944
    assert overall.value == pytest.approx(100 * top.mean())
    low, high = wilson(top.sum(), len(d))
    assert (overall.low, overall.high) == (pytest.approx(100 * low), pytest.approx(100 * high))
    broken, kept = (score_row(sc, "promise", g, "csat_top2") for g in ("broken", "kept"))
    assert int(broken.n) == late.sum() and broken.value == pytest.approx(100 * top[late].mean())
    assert int(kept.n) == on_time.sum() and kept.value == pytest.approx(100 * top[on_time].mean())
    assert broken.high < kept.low  # late deliveries: far fewer satisfied customers
    assert broken.compared_with == "kept" and broken.difference_p < 1e-10
    th = table(store, "voice_themes")
    low_band = set(th[th.band == "low"].phrase)
    assert {"nao recebi", "nao recomendo"} & low_band  # Portuguese, negation kept
    assert (th[th.band == "low"].language == "pt").mean() > 0.8


# --------------------------------------------------------------------------- hand-built worlds


def _day(i: int) -> pd.Timestamp:
    return pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(i))


def test_one_denominator_and_as_of(store: sawubona.Store, tmp_path: Path) -> None:
    cust = pd.DataFrame({"customer_id": [f"c{i}" for i in range(8)]})
    surveys = pd.DataFrame(
        {
            "survey_id": [f"s{i}" for i in range(8)],
            "customer_id": cust.customer_id,
            "instrument": ["nps"] * 6 + ["csat", "ces"],
            "invited_at": [_day(i) for i in range(8)],
            "responded_at": [_day(1), _day(2), None, _day(4), _day(30), _day(6), _day(7), _day(8)],
            "score": [10, 3, None, None, 9, 8, 4, 6],
            "comment": [None, None, None, "words only", None, None, None, None],
        }
    )
    store.ingest(write_world(tmp_path / "w", {"customers": cust, "surveys": surveys}))
    runner.analyze(store, ["voice"], as_of="2024-01-20")
    o = score_row(table(store, "voice_scores"), "overall", "all", "nps")
    # s0 10, s1 3, s5 8 scored; s3 answered without score; s2 unanswered; s4 after as_of
    assert (o.n, o.promoters, o.detractors, o.passives) == (3, 1, 1, 1)
    assert (o.n_invited, o.n_answered, o.n_no_score, o.n_no_answer) == (6, 4, 1, 2)
    assert o.response_rate == pytest.approx(100 * 4 / 6)
    assert o.value == 0 and o.interval == "adjusted_wald"
    low, high = nps_interval(1, 1, 3, adjusted=True)
    assert (o.low, o.high) == (pytest.approx(float(low)), pytest.approx(float(high)))
    runner.analyze(store, ["voice"])  # as_of = the latest event: s4's 9 now counts
    o = score_row(table(store, "voice_scores"), "overall", "all", "nps")
    assert (o.n, o.promoters, o.n_no_answer) == (4, 2, 1)
    sc = table(store, "voice_scores")
    csat = score_row(sc, "overall", "all", "csat_top2")
    assert (csat.n, csat.value) == (1, 100.0)
    ces = sc[(sc.dimension == "overall") & (sc.instrument == "ces")].set_index("metric")
    assert ces.loc["ces_mean", "value"] == 6 and ces.loc["ces_agree", "value"] == 100.0
    assert set(table(store, "voice_review_queue").columns) >= {"unit", "prompt"}


def _ipw_world(rng: np.random.Generator, n: int = 6000) -> tuple[dict[str, pd.DataFrame], float]:
    """Journeys whose outcome drives both the score and who is surveyed and answers."""
    failed = rng.random(n) < 0.3
    p_promoter = np.where(failed, 0.10, 0.60)
    p_detractor = np.where(failed, 0.70, 0.10)
    u = rng.random(n)
    score = np.where(u < p_promoter, 10, np.where(u < p_promoter + p_detractor, 3, 8))
    true_nps = 100 * ((score >= 9).mean() - (score <= 6).mean())
    invited = rng.random(n) < np.where(failed, 0.15, 0.6)
    answers = invited & (rng.random(n) < np.where(failed, 0.3, 0.5))
    ids = [f"j{i}" for i in range(n)]
    start = [_day(i % 300) for i in range(n)]
    journeys = pd.DataFrame(
        {
            "journey_id": ids,
            "customer_id": [f"c{i}" for i in range(n)],
            "kind": "support",
            "started_at": start,
            "ended_at": [s + pd.Timedelta(hours=5) for s in start],
            "outcome": np.where(failed, "failed", "achieved"),
        }
    )
    k = np.flatnonzero(invited)
    surveys = pd.DataFrame(
        {
            "survey_id": [f"s{i}" for i in k],
            "customer_id": [f"c{i}" for i in k],
            "journey_id": [ids[i] for i in k],
            "instrument": "nps",
            "invited_at": [start[i] + pd.Timedelta(hours=6) for i in k],
            "responded_at": [start[i] + pd.Timedelta(hours=9) if answers[i] else None for i in k],
            "score": [score[i] if answers[i] else None for i in k],
            "trigger": "system",
        }
    )
    cust = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)]})
    return {"customers": cust, "journeys": journeys, "surveys": surveys}, true_nps


def test_ipw_corrects_towards_the_true_nps(store: sawubona.Store, tmp_path: Path) -> None:
    frames, truth = _ipw_world(np.random.default_rng(7))
    store.ingest(write_world(tmp_path / "w", frames))
    runner.analyze(store, ["voice"])
    sel = table(store, "voice_selection").set_index("metric").loc["nps"]
    assert sel.closed_journeys == 6000
    assert abs(sel.corrected - truth) < abs(sel.raw - truth) / 4
    assert sel.corrected_low <= truth <= sel.corrected_high
    assert not sel.raw_low <= truth <= sel.raw_high  # the raw score misses it
    cov = table(store, "voice_coverage").set_index(["dimension", "group"])
    assert cov.loc[("outcome", "failed"), "coverage"] < cov.loc[("outcome", "achieved"), "coverage"]
    assert cov.loc[("outcome", "failed"), "coverage_difference_p"] < 1e-6
    keys = set(table(store, "findings").key)
    assert {"coverage_failed", "selection_corrected_nps"} <= keys


BEGS = ("Thanks! Please rate me 10 on the survey.", "Only 9s and 10s count, so be kind!")


def _say_do_world(rng: np.random.Generator, n: int = 3000) -> dict[str, pd.DataFrame]:
    """Satisfaction drives both the score and staying; agent A9 begs and gets 10s from all."""
    sat = rng.standard_normal(n)
    agents = np.array([f"A{i}" for i in rng.integers(0, 10, n)])
    answered = _day(0) + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    stays = rng.random(n) < 1 / (1 + np.exp(-(1.2 + 1.5 * sat)))
    score = np.clip(np.rint(7 + 2 * sat + rng.standard_normal(n)), 0, 10)
    begged = agents == "A9"
    score = np.where(begged, 10, score)
    cust = [f"c{i}" for i in range(n)]
    ended = [
        a + pd.Timedelta(days=90) if not s else None for a, s in zip(answered, stays, strict=True)
    ]
    subs = pd.DataFrame(
        {
            "customer_id": cust,
            "plan_id": "p1",
            "started_at": _day(-400),
            "ended_at": ended,
        }
    )
    plans = pd.DataFrame({"plan_id": ["p1"], "monthly_fee": [10.0]})
    jid = [f"j{i}" for i in range(n)]
    journeys = pd.DataFrame(
        {
            "journey_id": jid,
            "customer_id": cust,
            "kind": "support",
            "started_at": answered - pd.Timedelta(days=1),
            "ended_at": answered - pd.Timedelta(hours=20),
            "outcome": "achieved",
        }
    )
    text = np.where(begged, [BEGS[i % 2] for i in range(n)], "Your case is sorted.")
    touch = pd.DataFrame(
        {
            "touchpoint_id": [f"t{i}" for i in range(n)],
            "customer_id": cust,
            "journey_id": jid,
            "at": answered - pd.Timedelta(hours=22),
            "channel": "email",
            "direction": "outbound",
            "actor": "person",
            "agent_id": agents,
            "team": "care",
            "text": text,
        }
    )
    surveys = pd.DataFrame(
        {
            "survey_id": [f"s{i}" for i in range(n)],
            "customer_id": cust,
            "journey_id": jid,
            "instrument": "nps",
            "invited_at": answered - pd.Timedelta(hours=2),
            "responded_at": answered,
            "score": score,
            "agent_id": agents,
            "team": "care",
            "trigger": "agent",
        }
    )
    return {
        "customers": pd.DataFrame({"customer_id": cust}),
        "plans": plans,
        "subscriptions": subs,
        "journeys": journeys,
        "touchpoints": touch,
        "surveys": surveys,
    }


def test_say_do_finds_the_link_and_its_absence_for_a_beggar(
    store: sawubona.Store, tmp_path: Path
) -> None:
    store.ingest(write_world(tmp_path / "w", _say_do_world(np.random.default_rng(3))))
    runner.analyze(store, ["voice"], as_of="2025-06-30")
    queue = table(store, "voice_review_queue")
    assert list(queue[queue.unit_kind == "agent"].unit) == ["A9"]
    assert "solicitation" in queue.iloc[0].signals
    val = table(store, "voice_validity").set_index(["scope_kind", "scope"])
    overall = val.loc[("all", "all")]
    assert overall.predicts and overall.auc > 0.7
    gamer = val.loc[("agents_in_review_queue", "yes")]
    assert not gamer.predicts and gamer.auc_low < 0.5 < gamer.auc_high
    assert val.loc[("agents_in_review_queue", "no")].predicts
    retention = table(store, "voice_say_do").sort_values("score")
    assert retention.retention.iloc[-1] > retention.retention.iloc[0]
    assert retention.behaviour.iloc[0].startswith("stayed subscribed 180 days")
    hon = table(store, "voice_honesty")
    ev = table(store, "voice_evidence")
    begs = set(ev[(ev.unit == "A9") & (ev.signal == "solicitation")].row_id)
    tp = table(store, "touchpoints")
    assert begs and begs <= set(tp[tp.agent_id == "A9"].touchpoint_id)
    validity = hon[(hon.unit == "A9") & (hon.signal == "say_do_validity")].iloc[0]
    assert validity.observed < validity.expected  # the beggar's scores predict less


# --------------------------------------------------------------------------- planted truth


@pytest.fixture(scope="module")
def telco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[sawubona.Store, Any]]:
    from sawubona.demo import generate

    root = tmp_path_factory.mktemp("telco")
    world = generate(root / "w", world="telco", size=3000, seed=0)
    with sawubona.open(root / "s.duckdb") as store:
        store.ingest(world.out_dir)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lenses, "available", lambda: {"voice": LENS})
            runner.analyze(store, ["voice"])
        yield store, world


def _recovery(store: sawubona.Store, truth: dict[str, Any]) -> tuple[float, set[str], set[str]]:
    queue = table(store, "voice_review_queue")
    flagged = set(queue[queue.unit_kind == "agent"].unit)
    gamers = {a for b in ("begging", "selective", "concession") for a in truth["agents"][b]}
    honest_flagged = flagged - gamers
    small = set(truth["agents"]["honest_small_n"]) & flagged
    return len(flagged & gamers) / len(gamers), honest_flagged, small


def test_planted_gaming_is_flagged_and_honest_agents_are_not(telco: Any) -> None:
    store, world = telco
    truth = world.truth()
    recall, honest_flagged, small = _recovery(store, truth)
    assert recall >= 0.8
    assert len(honest_flagged) <= 1 and not small
    hon = table(store, "voice_honesty")
    flagged = hon[hon.flagged & (hon.unit_kind == "agent")]
    for behaviour, signals in (
        ("begging", {"solicitation"}),
        ("selective", {"selectivity", "selectivity_by_trigger"}),
        ("concession", {"concession", "concession_before_survey"}),
    ):
        for agent in truth["agents"][behaviour]:
            assert signals & set(flagged[flagged.unit == agent].signal), (behaviour, agent)
    assert (hon.q_value >= hon.p_value - 1e-12).all()
    # the evidence behind a beggar's flag is the planted begging messages
    begging = pd.read_parquet(world.out_dir / "truth" / "begging.parquet")
    ev = table(store, "voice_evidence")
    for agent in truth["agents"]["begging"]:
        mine = set(ev[(ev.unit == agent) & (ev.signal == "solicitation")].row_id)
        planted = set(begging[begging.agent_id == agent].touchpoint_id)
        assert mine and mine <= planted
    queue = table(store, "voice_review_queue")
    assert queue.prompt.str.startswith("Worth a look:").all()


def test_ipw_moves_towards_the_audit_stream(telco: Any) -> None:
    store, _ = telco
    sel = table(store, "voice_selection").set_index("metric").loc["nps"]
    audit = score_row(table(store, "voice_scores"), "trigger", "audit", "nps").value
    assert abs(sel.corrected - audit) < abs(sel.raw - audit)
    cov = table(store, "voice_coverage").set_index(["dimension", "group"])
    assert cov.loc[("outcome", "failed"), "coverage"] < cov.loc[("outcome", "achieved"), "coverage"]


def test_concessions_and_no_league_tables(telco: Any) -> None:
    store, _ = telco
    con = table(store, "voice_concessions").set_index("measure")
    assert (
        con.loc["conceded_share_surveyed", "low"] > con.loc["conceded_share_not_surveyed", "high"]
    )
    assert con.loc["nps_conceded_only", "value"] > con.loc["nps_without_conceded", "value"]
    assert con.loc["cost_per_extra_promoter", "value"] > 0
    funnel = table(store, "voice_funnel")
    for (_, kind), rows in funnel.groupby(["metric", "unit_kind"]):
        assert list(rows.unit) == sorted(rows.unit), kind  # in id order, never by score
        assert rows.shrunk_high.ge(rows.shrunk_low).all()
    queue = table(store, "voice_review_queue")
    for _, rows in queue.groupby("unit_kind"):
        assert list(rows.unit) == sorted(rows.unit)
    for name in SCHEMAS:
        cols = set(table(store, name).columns)
        assert "rank" not in cols or name == "voice_themes"


def _planted_say_do(world: Any, horizon_days: int = 180) -> tuple[float, int, int]:
    """The planted score–retention link, from the truth: AUC of the NPS score for staying
    (not churned by ``horizon_days`` after answering) over scored NPS answers whose window
    ends by ``as_of``, by SciPy's Mann–Whitney U; and the numbers who stayed and left."""
    truth = world.truth()
    as_of = pd.Timestamp(truth["as_of"])
    sv = pd.read_parquet(world.path("surveys"))
    sv = sv[(sv.instrument == "nps") & sv.score.notna()]
    sv = sv[sv.responded_at + pd.Timedelta(days=horizon_days) <= as_of]
    cu = pd.read_parquet(world.out_dir / "truth" / "customers.parquet").set_index("customer_id")
    left_at = sv.customer_id.map(cu.churned_at)
    sv = sv[left_at.isna() | (left_at > sv.responded_at)]  # a customer when answering
    left_at = left_at.loc[sv.index]
    gone = left_at.notna() & (left_at <= sv.responded_at + pd.Timedelta(days=horizon_days))
    u = sps.mannwhitneyu(sv.score[~gone], sv.score[gone]).statistic
    return float(u / ((~gone).sum() * gone.sum())), int((~gone).sum()), int(gone.sum())


def test_say_do_recovers_the_planted_link(telco: Any) -> None:
    """Satisfaction drives both the score and staying (telco churn x e^-1.2 s): the lens's
    AUC is the planted one and says scores predict; the review-queue agents' do not."""
    store, world = telco
    auc, stayed, left = _planted_say_do(world)
    assert auc > 0.58 and left >= 20
    val = table(store, "voice_validity")
    val = val[val.instrument == "nps"].set_index(["scope_kind", "scope"])
    overall = val.loc[("all", "all")]
    assert overall.auc == pytest.approx(auc, abs=0.005)
    assert overall.lost == left and abs(overall.answers - (stayed + left)) <= 2
    assert overall.predicts and overall.auc_low > 0.5
    gamed = val.loc[("agents_in_review_queue", "yes")]
    assert not gamed.predicts and gamed.auc_low < 0.5


@pytest.mark.slow
def test_say_do_and_gaming_at_ten_thousand(tmp_path: Path) -> None:
    """At 10,000 telco customers the honest agents' scores predict staying on their own,
    the review queue's do not, and every planted gaming agent is flagged."""
    from sawubona.demo import generate

    world = generate(tmp_path / "w", world="telco", size=10_000, seed=0)
    with sawubona.open(tmp_path / "s.duckdb") as store:
        store.ingest(world.out_dir)
        runner.analyze(store, ["voice"])
        recall, honest_flagged, small = _recovery(store, world.truth())
        val = table(store, "voice_validity")
        val = val[val.instrument == "nps"].set_index(["scope_kind", "scope"])
    assert recall == 1.0 and not honest_flagged and not small
    auc, _, left = _planted_say_do(world)
    assert val.loc[("all", "all"), "auc"] == pytest.approx(auc, abs=0.005) and left > 100
    assert val.loc[("all", "all"), "predicts"]
    assert val.loc[("agents_in_review_queue", "no"), "predicts"]
    gamed = val.loc[("agents_in_review_queue", "yes")]
    assert not gamed.predicts and gamed.auc_low < 0.5 < gamed.auc_high


def _true_nps(store: sawubona.Store, world: Any) -> float:
    """NPS of the honest answers every closed journey's customer would have given (truth),
    over the journey kinds the lens re-weights to (kinds with routine NPS answers)."""
    true = pd.read_parquet(world.out_dir / "truth" / "true_scores.parquet")
    j = pd.read_parquet(world.path("journeys")).set_index("journey_id")
    sv = pd.read_parquet(world.path("surveys"))
    routine = sv[sv.trigger.isin(["system", "agent"]) & (sv.instrument == "nps")]
    kinds = set(j.kind.reindex(routine[routine.score.notna()].journey_id.dropna()))
    true = true[true.journey_id.map(j.kind).isin(kinds)]
    return float(100 * ((true.nps >= 9).mean() - (true.nps <= 6).mean()))


def test_ipw_moves_towards_the_planted_true_nps(telco: Any) -> None:
    """Re-weighting answers to the closed journeys' outcome mix moves the NPS towards the
    planted true one (every closed journey's honest would-be answer). It cannot remove
    what the classes do not see — happier customers answering more, pleas and
    concessions — so the truth may stay outside its interval."""
    store, world = telco
    truth = _true_nps(store, world)
    sel = table(store, "voice_selection").set_index("metric").loc["nps"]
    assert sel.raw > truth  # the planted selection inflates the raw score
    assert abs(sel.corrected - truth) < abs(sel.raw - truth)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("world_name", "size"), [("shop", 3000), ("shop", 10_000), ("cafe", 10_000)]
)
def test_planted_gaming_in_other_worlds(world_name: str, size: int, tmp_path: Path) -> None:
    """Recall >= 0.8 at 10,000 customers. Selective agents are a matter of power: every one
    of them surveys no failed journey (observed 0), and the test flags exactly those whose
    expected count under the others' rate is large enough — at 3,000 shop customers an
    agent handles too few failed cases for zero to be significant at FDR 5%, in the café
    failed visits are rare at any size (it is caught by its trigger pattern instead)."""
    from sawubona.demo import generate

    world = generate(tmp_path / "w", world=world_name, size=size, seed=0)
    with sawubona.open(tmp_path / "s.duckdb") as store:
        store.ingest(world.out_dir)
        runner.analyze(store, ["voice"])
        recall, honest_flagged, small = _recovery(store, world.truth())
        hon = table(store, "voice_honesty")
    assert len(honest_flagged) <= 1 and not small
    if size >= 10_000:
        assert recall >= 0.8
    sel = hon[hon.unit.isin(world.truth()["agents"]["selective"]) & (hon.signal == "selectivity")]
    assert len(sel) == 3 and (sel.observed == 0).all()
    assert sel[sel.expected >= 5].flagged.all() and not sel[sel.expected < 2.5].flagged.any()


# --------------------------------------------------------------------------- statistics


def test_dirichlet_shrinkage_against_monte_carlo() -> None:
    rng = np.random.default_rng(1)
    alpha = np.array([4.0, 2.0, 6.0])
    shares = rng.dirichlet(alpha, size=400)
    counts = np.array(
        [rng.multinomial(n, s) for n, s in zip(rng.integers(5, 60, 400), shares, strict=True)]
    )
    prior = smallgroups.fit_dirichlet_prior(counts)
    assert prior.alpha / prior.strength == pytest.approx(alpha / alpha.sum(), abs=0.03)
    assert prior.strength == pytest.approx(alpha.sum(), rel=0.35)
    d, p_, pr = np.array([3.0]), np.array([1.0]), np.array([1.0])
    mean, low, high = smallgroups.shrink_nps(d, p_, pr, prior)
    draws = rng.dirichlet(prior.alpha + np.array([3.0, 1.0, 1.0]), size=200_000)
    mc = 100 * (draws[:, 2] - draws[:, 0])
    assert mean[0] == pytest.approx(mc.mean(), abs=0.3)
    assert high[0] - low[0] == pytest.approx(2 * 1.96 * mc.std(), rel=0.02)
    assert mean[0] > 100 * (1 - 3) / 5  # pulled from the raw −40 toward the prior


def test_funnel_limits_and_overdispersion() -> None:
    rng = np.random.default_rng(2)
    n = rng.integers(20, 400, 60).astype(float)
    k = rng.binomial(n.astype(int), 0.7)
    plain = smallgroups.rate_funnel(
        "team", "csat_top2", pd.DataFrame({"unit": range(60), "successes": k, "n": n})
    )
    assert plain.overdispersion_p.iloc[0] > 0.01 and (plain.tau == 0).all()
    p0 = k.sum() / n.sum()
    s = 100 * np.sqrt(p0 * (1 - p0) / n)
    assert np.allclose(plain.high_95, 100 * p0 + 1.959964 * s)
    k_od = rng.binomial(n.astype(int), rng.beta(14, 6, 60))
    od = smallgroups.rate_funnel(
        "team", "csat_top2", pd.DataFrame({"unit": range(60), "successes": k_od, "n": n})
    )
    assert od.overdispersion_p.iloc[0] < 0.01 and (od.tau > 0).all()
    assert (od.high_95 - od.low_95 > 2 * 1.959964 * s).all()  # widened


def test_auc_from_counts_against_mann_whitney() -> None:
    rng = np.random.default_rng(4)
    stay = rng.integers(0, 11, 300)
    lost = np.clip(rng.integers(0, 11, 80) - 2, 0, 10)
    r, lo = np.bincount(stay, minlength=11), np.bincount(lost, minlength=11)
    a = saydo.auc_from_counts(r, lo)
    ref = sps.mannwhitneyu(stay, lost, alternative="greater", use_continuity=False)
    assert a.auc[0] == pytest.approx(ref.statistic / (300 * 80))
    assert a.p_value[0] == pytest.approx(ref.pvalue, rel=1e-6)
    q1, q2, auc = a.auc[0] / (2 - a.auc[0]), 2 * a.auc[0] ** 2 / (1 + a.auc[0]), a.auc[0]
    se = np.sqrt((auc * (1 - auc) + 299 * (q1 - auc**2) + 79 * (q2 - auc**2)) / (300 * 80))
    assert a.se[0] == pytest.approx(se)


def test_audit_permutation_test_against_enumeration() -> None:
    pooled = np.array([3, 2, 4])  # detractors, passives, promoters of one unit
    labels = [-100] * 3 + [0] * 2 + [100] * 4
    for n_audit in (1, 2, 3, 5):
        audit = labels[:n_audit]  # the audit answers were the worst ones
        observed = np.mean(labels[n_audit:]) - np.mean(audit)
        diffs = [
            np.mean([labels[i] for i in range(9) if i not in idx])
            - np.mean([labels[i] for i in idx])
            for idx in itertools.combinations(range(9), n_audit)
        ]
        exact = np.mean(np.array(diffs) >= observed - 1e-9)
        assert honesty.permutation_p(pooled, n_audit, observed) == pytest.approx(exact)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=4, max_size=4))
def test_fisher_tails_are_fishers_exact_test(cells: list[int]) -> None:
    a, b, c, d = cells
    if a + b == 0 or c + d == 0 or a + c == 0 or b + d == 0:
        return
    df = pd.DataFrame(
        {
            "u": ["x"] * 4,
            "s": [True, True, False, False],
            "t": [True, False, True, False],
            "journeys": [a, b, c, d],
        }
    )
    cells_ = honesty.cells(df, "u", "s", "t", "journeys").iloc[0]
    tt, tf, ft, ff = cells_.tt, cells_.tf, cells_.ft, cells_.ff
    greater = sps.hypergeom.sf(tt - 1, tt + tf + ft + ff, tt + tf, tt + ft)
    less = sps.hypergeom.cdf(tt, tt + tf + ft + ff, tt + tf, tt + ft)
    table_ = [[a, b], [c, d]]
    assert greater == pytest.approx(sps.fisher_exact(table_, alternative="greater").pvalue)
    assert less == pytest.approx(sps.fisher_exact(table_, alternative="less").pvalue)


def test_forensics_case_mix_and_dispersion() -> None:
    # leave-one-out expectation: unit 0's expected mix comes from unit 1 only, per stratum
    m = np.zeros((2, 2, 3))
    m[0, 0] = [1, 1, 0]
    m[1, 0] = [2, 0, 2]
    m[0, 1] = [0, 0, 3]
    m[1, 1] = [0, 3, 0]
    e = forensics.expected_counts(m)
    assert np.allclose(e[0], 2 * np.array([0.5, 0, 0.5]) + 3 * np.array([0, 1, 0]))
    rng = np.random.default_rng(5)
    scores = np.arange(0, 11, dtype=float)
    q = rng.dirichlet(np.ones(11) * 3)
    n = rng.integers(20, 200, 80)
    honest = np.array([rng.multinomial(k, q) for k in n], dtype=float)
    masks = forensics.bin_masks(scores, 6)
    exp = np.outer(n, q)
    assert forensics.dispersion(honest, exp, masks) < 0.01
    clustered = np.array([rng.multinomial(k, rng.dirichlet(q * 15)) for k in n], dtype=float)
    assert forensics.dispersion(clustered, exp, masks) == pytest.approx(1 / 16, abs=0.04)
    p_bin = forensics._betabinom_sf(np.array([7.0]), np.array([20.0]), np.array([0.2]), 0.0)
    assert p_bin[0] == pytest.approx(sps.binom.sf(6, 20, 0.2))
    p_bb = forensics._betabinom_sf(np.array([7.0]), np.array([20.0]), np.array([0.2]), 0.1)
    assert p_bb[0] > p_bin[0]  # over-dispersion makes a heap less surprising


def test_solicitation_patterns() -> None:
    rx = re.compile(prep.solicitation_regex())
    asks = [
        "you'll get a short survey - please rate me 10!",
        "just so you know, on the survey only 9s and 10s count.",
        "tell me first if it's not a 10 and i'll fix it.",
        "my bonus depends on it, so please give me a 10",
        "could you score us 10 on the survey?",
        "por favor, me dê nota 10 na pesquisa",
        "só 9 e 10 contam para mim",
    ]
    plain = [
        "your bill for 10 march is attached.",
        "we rated the line at 10 mbps.",
        "please give us a call on 0800 10 10 10.",
        "o pedido chegou no dia 10",
    ]
    assert all(rx.search(t) for t in asks)
    assert not any(rx.search(t) for t in plain)


def test_tokenisation_is_language_aware() -> None:
    comments = pa.array(
        [
            "Não recebi o produto, não recomendo",
            "No signal at all, not fixed",
            "Ótimo! Chegou antes do prazo",
        ]
    )
    parent, tokens = themes.tokenize(comments)
    lang = themes.languages(parent, tokens, 3, comments)
    assert list(lang) == ["pt", "en", "pt"]
    ph = themes.phrases(parent, tokens, lang)
    got = {c: set(ph[ph.comment == c].phrase) for c in range(3)}
    assert {"nao recebi", "nao recomendo", "produto"} <= got[0] and "o" not in got[0]
    assert {"no signal", "not fixed", "signal"} <= got[1]
    assert {"otimo", "chegou antes"} <= got[2] and "do" not in got[2]
