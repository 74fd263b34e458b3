"""The worklist: items for planted truth, no duplicates on re-analysis, state that survives,
lifecycle errors, holdout, outer loop, and "did it help?" against a planted effect."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import sawubona
from sawubona import work
from sawubona.demo import loop
from sawubona.work import Item, WorkError, Worklist, worklist_path
from sawubona.work.measure import did_it_help, diff_means, outcomes_from_store, outer_loop

AS_OF = dt.datetime(2025, 6, 30, 23, 59, 59)
LOOKBACK = dt.timedelta(days=180)


def _truth(store: Path, name: str) -> list[dict]:
    return pq.read_table(store.parent / "world" / "truth" / f"{name}.parquet").to_pylist()


def _keys(wl: Worklist, kind: str) -> list[dict]:
    return wl.items(state=None, kind=kind, include_holdout=True)


@pytest.fixture(scope="module")
def telco(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private copy of the session's analysed telco world (its worklist made by analyze)."""
    root = tmp_path_factory.mktemp("work-telco")
    shutil.copytree(demo_store.parent / "world", root / "world")
    path = root / "demo.duckdb"
    shutil.copy(demo_store, path)
    shutil.copy(worklist_path(demo_store), worklist_path(path))
    yield path


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An analysed shop world (regulars who drifted) of 1,500 customers."""
    from sawubona.demo import generate

    root = tmp_path_factory.mktemp("work-shop")
    generate(root / "world", world="shop", size=1500, seed=5)
    path = root / "shop.duckdb"
    with sawubona.open(path) as s:
        s.ingest(root / "world")
        s.analyze(as_of=AS_OF)
    return path


def test_analyze_makes_items_for_planted_overpayers(telco: Path) -> None:
    with Worklist(worklist_path(telco)) as wl:
        best = {i["customer_id"] for i in _keys(wl, "gift") if i["subkind"] == "best_plan"}
        addons = {
            (i["customer_id"], i["evidence"]["giving_gifts"][0].split(":")[-1])
            for i in _keys(wl, "gift")
            if i["subkind"] == "unused_addon"
        }
    planted = {r["customer_id"] for r in _truth(telco, "overpaying")}
    assert len(planted) >= 50
    recall = len(planted & best) / len(planted)
    assert recall >= 0.95, recall
    unused = {(r["customer_id"], r["plan_id"]) for r in _truth(telco, "unused_addons")}
    assert len(unused & addons) / len(unused) >= 0.9


def test_items_for_broken_promises_without_make_good(telco: Path) -> None:
    due = {
        r["promise_id"]: r["due_at"]
        for r in pq.read_table(telco.parent / "world" / "promises.parquet").to_pylist()
    }
    planted = {
        r["promise_id"]
        for r in _truth(telco, "promises")
        if r["status"].startswith("broken")
        and not r["made_good"]
        and due[r["promise_id"]] >= AS_OF - LOOKBACK
    }
    assert len(planted) >= 10
    with Worklist(worklist_path(telco)) as wl:
        found = {p for i in _keys(wl, "make_right") for p in i["evidence"]["promises"]}
    recall = len(planted & found) / len(planted)
    assert recall >= 0.9, (recall, sorted(planted - found)[:5])


def test_items_for_unanswered_contacts(telco: Path) -> None:
    planted = {
        r["journey_id"]
        for r in _truth(telco, "unanswered")
        if r["reason"] == "ignored" and r["at"] >= AS_OF - LOOKBACK
    }
    assert len(planted) >= 5
    with Worklist(worklist_path(telco)) as wl:
        found = {j for i in _keys(wl, "unanswered") for j in i["evidence"]["journeys"]}
    assert len(planted & found) / len(planted) >= 0.9


def test_items_for_drifting_regulars(shop: Path) -> None:
    planted = {
        r["customer_id"]
        for r in _truth(shop, "drift")
        if r["role"] in ("drift_stockout", "drift_unknown")
    }
    loyal = {r["customer_id"] for r in _truth(shop, "drift") if r["role"] == "loyal"}
    assert len(planted) >= 8
    with Worklist(worklist_path(shop)) as wl:
        items = _keys(wl, "drifting_regular")
    found = {i["customer_id"] for i in items}
    assert len(planted & found) / len(planted) >= 0.8, (len(planted & found), len(planted))
    assert len(loyal & found) <= 0.1 * len(loyal)
    stockout = {
        r["customer_id"]: r["core_item"]
        for r in _truth(shop, "drift")
        if r["role"] == "drift_stockout"
    }
    named = [i for i in items if i["customer_id"] in stockout]
    # the likely reason names their core item, and the wording says sorry for it
    right = [i for i in named if stockout[i["customer_id"]] in i["cause"]]
    assert len(right) >= 0.7 * len(named) > 0
    assert all("out of stock" in i["wording"] for i in right)
    assert not any("upgrade" in i["wording"].lower() for i in items)


def test_reanalysis_updates_not_duplicates_and_keeps_state(telco: Path) -> None:
    with Worklist(worklist_path(telco)) as wl:
        before = wl.count(state=None, include_holdout=True)
        todo = wl.items(limit=3)
        a, b, c = (i["item_id"] for i in todo)
        wl.assign(a, "ana", team="care", who="tester")
        wl.done(b, "rang and credited", who="tester", done_kind="credited", link="action:X1")
        wl.dismiss(c, "customer asked us not to call", who="tester")
    with sawubona.open(telco) as s:
        report = s.analyze(["promises"], as_of=AS_OF)  # a real analyze: lens, then the worklist
    assert report.work["new"] == 0 and report.work["expired"] == 0, report.work
    with Worklist(worklist_path(telco)) as wl:
        assert wl.count(state=None, include_holdout=True) == before
        keys = [i["dedup_key"] for i in wl.items(state=None, include_holdout=True)]
        assert len(keys) == len(set(keys))
        assert wl.get(a)["state"] == "assigned" and wl.get(a)["owner"] == "ana"
        assert wl.get(b)["state"] == "done" and wl.get(b)["link"] == "action:X1"
        assert wl.get(c)["state"] == "dismissed"
        assert [e["who"] for e in wl.events(b)] == ["analyze", "tester"]


def _item(key: str, why: str = "because") -> Item:
    return Item(
        key=key,
        kind="gift",
        subkind="best_plan",
        customer_id=key.split(":")[2],
        title="t",
        why=why,
        wording="w",
        urgency="low",
        cause="c",
    )


def test_refresh_lifecycle_expire_reopen_update(tmp_path: Path) -> None:
    with Worklist(tmp_path / "w.sqlite") as wl:
        k1, k2 = "gift:best_plan:C1:p", "gift:best_plan:C2:p"
        assert wl.refresh([_item(k1), _item(k2)], AS_OF)["new"] == 2
        wl.done(k2, "moved them to the cheaper plan", who="ana", done_kind="gift_given")
        counts = wl.refresh([_item(k1, "new evidence")], AS_OF)
        assert counts["updated"] == 1 and counts["expired"] == 0
        assert wl.get(k1)["why"] == "new evidence"
        assert wl.get(k2)["state"] == "done"  # gone from the findings, but done stays done
        assert wl.refresh([], AS_OF)["expired"] == 1
        assert wl.get(k1)["state"] == "expired"
        assert wl.refresh([_item(k1)], AS_OF)["reopened"] == 1
        assert wl.get(k1)["state"] == "open"
        events = [e["event"] for e in wl.events(k1)]
        assert events == ["created", "updated", "expired", "reopened"]


def test_illegal_transitions_are_one_sentence(tmp_path: Path) -> None:
    with Worklist(tmp_path / "w.sqlite") as wl:
        wl.refresh([_item("gift:best_plan:C1:p")], AS_OF)
        iid = wl.items()[0]["item_id"]
        wl.done(iid, "done it", who="ana")
        with pytest.raises(WorkError, match=r"is done and cannot be assigned"):
            wl.assign(iid, "bob", who="ana")
        with pytest.raises(WorkError, match=r"is done and cannot be dismissed"):
            wl.dismiss(iid, "no", who="ana")
        with pytest.raises(WorkError, match="no work item 'nope'"):
            wl.done("nope", "x", who="ana")
        wl.refresh([_item("gift:best_plan:C1:p"), _item("gift:best_plan:C2:p")], AS_OF)
        other = item_id = work.item_id_of("gift:best_plan:C2:p")
        with pytest.raises(WorkError, match="needs a reason"):
            wl.dismiss(other, "  ", who="ana")
        with pytest.raises(WorkError, match="needs an author"):
            wl.assign(item_id, "bob", who="")
        with pytest.raises(WorkError, match="not TABLE:ID"):
            wl.done(item_id, "x", who="a", link="M123")
        with pytest.raises(WorkError, match="changed since you opened it"):
            wl.assign(item_id, "bob", who="a", expect_version=99)
        for exc_text in [str(e) for e in (WorkError("x"),)]:
            assert "\n" not in exc_text


def test_holdout_is_deterministic_hidden_and_refuses_handling(tmp_path: Path) -> None:
    keys = [f"gift:best_plan:C{i}:p" for i in range(2000)]
    with Worklist(tmp_path / "w.sqlite") as wl:
        wl.set_holdout(0.2, seed=7)
        counts = wl.refresh([_item(k) for k in keys], AS_OF)
        held = [i for i in wl.items(state=None, include_holdout=True) if i["holdout"]]
        assert counts["held_out"] == len(held)
        assert abs(len(held) / 2000 - 0.2) < 0.03  # binomial sd 0.009
        assert {i["dedup_key"] for i in held} == {k for k in keys if work.in_holdout(k, 0.2, 7)}
        assert wl.count() == 2000 - len(held)  # never shown as to-do
        with pytest.raises(WorkError, match="held out"):
            wl.done(held[0]["item_id"], "x", who="a")
        wl.set_holdout(0.0)
        wl.refresh([_item(k) for k in keys], AS_OF)
        assert len([i for i in wl.items(state=None, include_holdout=True) if i["holdout"]]) == len(
            held
        )


def test_outer_loop_counts_and_speed(tmp_path: Path) -> None:
    with Worklist(tmp_path / "w.sqlite") as wl:
        items = [_item(f"gift:best_plan:C{i}:p") for i in range(4)]
        items[3].cause = "other cause"
        wl.refresh(items, AS_OF)
        wl.refresh([*items, _item("gift:best_plan:C9:p")], AS_OF + dt.timedelta(days=30))
        wl.done("gift:best_plan:C0:p", "x", who="a")
        wl.dismiss("gift:best_plan:C1:p", "y", who="a")
        rows = {r["cause"]: r for r in outer_loop(wl)}
    c = rows["c"]
    assert (c["items"], c["open"], c["done"], c["dismissed"]) == (4, 2, 1, 1)
    assert c["analyses_with_new_items"] == 2 and c["recurring"]
    assert c["median_hours_to_handle"] is not None and 0 <= c["median_hours_to_handle"] < 1
    assert rows["other cause"]["items"] == 1 and not rows["other cause"]["recurring"]


def test_diff_means_against_hand_worked_values() -> None:
    d = diff_means([1, 1, 0, 1], [0, 0, 1, 0], "x")
    # means 0.75 and 0.25; variances 0.25 each; se = sqrt(0.25/4 + 0.25/4) = 0.35355
    assert d.estimate == pytest.approx(0.5)
    assert d.high - d.estimate == pytest.approx(1.959964 * 0.353553, rel=1e-5)


def test_did_it_help_recovers_planted_effect_on_demo_world(telco: Path, tmp_path: Path) -> None:
    path = tmp_path / "loop.duckdb"
    shutil.copy(telco, path)
    with sawubona.open(path) as s:
        s.analyze(["promises"], as_of=AS_OF, settings={"work.holdout_share": "0.3"})
    with Worklist(worklist_path(path)) as wl:
        # the copy had no worklist: every item is new, and 30% of gifts are held out
        items, outcomes, truth = loop.run(wl, seed=1, effect=0.15)
    assert truth["held_out"] > 0.2 * truth["items"]
    result = did_it_help(items, outcomes)
    naive, per = result["naive"], result["per_handled"]
    assert per["low"] <= 0.15 <= per["high"], per
    assert naive["low"] > 0.15, naive  # selection: the naive difference overstates the effect
    assert "not a random sample" in result["caveat"]


def test_holdout_estimate_is_unbiased_across_seeds() -> None:
    estimates, naive, covered = [], [], 0
    for seed in range(12):
        rng = np.random.default_rng(1000 + seed)
        holdout = rng.random(8000) < 0.3
        p = loop.plant(holdout, rng=rng, effect=0.1)
        items = [
            {"item_id": str(i), "holdout": bool(h), "state": "done" if d else "open"}
            for i, (h, d) in enumerate(zip(holdout, p.handled, strict=True))
        ]
        r = did_it_help(items, {str(i): float(y) for i, y in enumerate(p.retained)})
        estimates.append(r["per_handled"]["estimate"])
        naive.append(r["naive"]["estimate"])
        covered += r["per_handled"]["low"] <= 0.1 <= r["per_handled"]["high"]
    # sd of one estimate about 0.03: the mean of 12 is within 0.03 of the truth (3.5 sd)
    assert abs(np.mean(estimates) - 0.1) < 0.03, estimates
    assert np.mean(naive) > 0.25  # naive bias is large and systematic
    assert covered >= 9


def test_outcomes_from_store_hand_worked(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "customers.csv").write_text("customer_id\nA\nB\n")
    (tmp_path / "in" / "journeys.csv").write_text(
        "journey_id,customer_id,kind,started_at\n"
        "j1,A,order,2025-01-01\nj2,A,order,2025-02-01\nj3,B,order,2025-01-01\nj4,B,order,2025-06-01\n"
    )
    (tmp_path / "in" / "touchpoints.csv").write_text(
        "touchpoint_id,customer_id,at,channel,direction\n"
        "t1,B,2025-01-20,email,inbound\nt2,B,2025-01-25,email,inbound\n"
    )
    with sawubona.open(tmp_path / "s.duckdb") as s:
        s.ingest(tmp_path / "in")
        items = [
            {"item_id": "a", "customer_id": "A", "first_seen_as_of": "2025-01-10T00:00:00"},
            {"item_id": "b", "customer_id": "B", "first_seen_as_of": "2025-01-10T00:00:00"},
            {"item_id": "late", "customer_id": "B", "first_seen_as_of": "2025-05-15T00:00:00"},
        ]
        out = outcomes_from_store(s, items, horizon_days=30)
    assert out["retained"] == {"a": 1.0, "b": 0.0}  # 'late' ends after the data: not measured
    assert out["repurchased"] == {"a": 1.0, "b": 0.0}
    assert out["complaints"] == {"a": 0.0, "b": 2.0}


def test_cli_work_commands(telco: Path) -> None:
    from sawubona.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["work", "list", "-s", str(telco), "--kind", "unanswered", "--json"])
    assert res.exit_code == 0, res.output
    import json

    rows = json.loads(res.output)
    assert rows and all(r["kind"] == "unanswered" for r in rows)
    iid = rows[0]["item_id"]
    res = runner.invoke(
        app,
        [
            "work",
            "assign",
            iid,
            "--owner",
            "lee",
            "--team",
            "care",
            "-s",
            str(telco),
            "--author",
            "kim",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        ["work", "done", iid, "--note", "replied by phone", "--kind", "answered", "-s", str(telco)],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["work", "show", iid, "-s", str(telco), "--json"])
    data = json.loads(res.output)
    assert data["item"]["state"] == "done" and data["item"]["done_kind"] == "answered"
    assert [e["who"] for e in data["events"]][1] == "kim"
    assert data["events"][2]["who"] == work.default_author()
    res = runner.invoke(app, ["work", "dismiss", iid, "--reason", "x", "-s", str(telco)])
    assert res.exit_code != 0 and "is done and cannot be dismissed" in str(res.exception)


def test_the_worklist_file_is_never_a_path_made_from_a_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sawubona.work import worklist_path

    monkeypatch.setenv("SAWUBONA_WORK_DIR", str(tmp_path / "work"))
    assert worklist_path(tmp_path / "s.duckdb") == tmp_path / "s.duckdb.work.sqlite"
    assert worklist_path(f"spark:local[2]?warehouse={tmp_path}/wh") == (
        tmp_path / "wh" / "sawubona.work.sqlite"
    )
    pg = worklist_path("postgres://me:secret@localhost:5432/cx")
    assert pg.parent == tmp_path / "work" and pg.name.startswith("postgres-")
    # the same server under another password (masked alike) is the same worklist
    assert worklist_path("postgresql://me:other@localhost:5432/cx") == pg
    assert worklist_path("postgres://me@localhost:5432/other") != pg
