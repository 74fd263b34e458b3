"""Tests of the demo generator: schema validity, determinism and the planted truth.

Each world is generated once per session at a small size; the planted truth is
checked against the data with independent recomputations (bills, unanswered
contacts, make-goods, template matching), not against the generator's own code.
"""

from __future__ import annotations

import json
import math
import re
import string
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sawubona.demo import SIZES, WORLDS, World, generate
from sawubona.schema import SURVEY_SCALES, TABLE_BY_NAME

N = 2500
SEED = 11
AS_OF = pd.Timestamp("2025-06-30T23:59:59")
EXPECTED_TABLES = {
    "telco": {
        "customers",
        "journeys",
        "touchpoints",
        "promises",
        "plans",
        "subscriptions",
        "usage",
        "surveys",
        "actions",
    },
    "shop": {
        "customers",
        "journeys",
        "journey_items",
        "touchpoints",
        "promises",
        "surveys",
        "actions",
    },
    "cafe": {
        "customers",
        "journeys",
        "journey_items",
        "touchpoints",
        "promises",
        "surveys",
        "actions",
    },
}
ARROW = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "money": pa.float64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "json": pa.string(),
    "int": pa.int64(),
}


class Loaded:
    """A generated world read back with pandas."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.truth = world.truth()
        self._tables: dict[str, pd.DataFrame] = {}
        self._truths: dict[str, pd.DataFrame] = {}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._tables:
            self._tables[name] = pd.read_parquet(self.world.path(name))
        return self._tables[name]

    def t(self, name: str) -> pd.DataFrame:
        if name not in self._truths:
            path = self.world.out_dir / self.truth["truths"][name]["file"]
            self._truths[name] = pd.read_parquet(path)
        return self._truths[name]


@pytest.fixture(scope="session")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Loaded]:
    """Each world, generated once per session on first use."""

    class Cache(dict[str, Loaded]):
        def __missing__(self, name: str) -> Loaded:
            out = tmp_path_factory.mktemp(f"demo-{name}")
            self[name] = Loaded(generate(out, world=name, size=N, seed=SEED))
            return self[name]

    return Cache()


@pytest.fixture(params=WORLDS)
def w(request: pytest.FixtureRequest, worlds: dict[str, Loaded]) -> Loaded:
    return worlds[request.param]


@pytest.fixture
def telco(worlds: dict[str, Loaded]) -> Loaded:
    return worlds["telco"]


# --------------------------------------------------------------------------- schema validity


def test_files_have_exactly_the_schema_columns(w: Loaded) -> None:
    world = w.world
    assert set(world.counts) == EXPECTED_TABLES[world.world]
    for name in world.counts:
        schema = pq.read_schema(world.path(name))
        decl = TABLE_BY_NAME[name]
        assert schema.names == decl.column_names, name
        for col in decl.columns:
            assert schema.field(col.name).type == ARROW[col.type], (name, col.name)
        assert pq.read_metadata(world.path(name)).num_rows == world.counts[name]
        assert world.counts[name] > 0


def test_keys_unique_and_required_present(w: Loaded) -> None:
    for name in w.world.counts:
        decl = TABLE_BY_NAME[name]
        df = w[name]
        assert not df.duplicated(list(decl.key)).any(), name
        for col in decl.required:
            assert df[col].notna().all(), (name, col)


def test_references_resolve(w: Loaded) -> None:
    for name in w.world.counts:
        for col, ref_table, ref_col in TABLE_BY_NAME[name].references:
            values = w[name][col].dropna()
            known = set(w[ref_table][ref_col])
            bad = set(values) - known
            assert not bad, (name, col, list(bad)[:5])


def test_allowed_values_ranges_and_rules(w: Loaded) -> None:
    for name in w.world.counts:
        decl = TABLE_BY_NAME[name]
        df = w[name]
        for col in decl.columns:
            s = df[col.name].dropna()
            if col.allowed:
                assert set(s) <= set(col.allowed), (name, col.name, set(s) - set(col.allowed))
            if col.minimum is not None:
                assert (s >= col.minimum).all(), (name, col.name)
            if col.type == "timestamp":
                if not col.future_ok or name != "promises":
                    assert (s <= AS_OF).all(), (name, col.name, s.max())
                assert (s >= pd.Timestamp("2010-01-01")).all(), (name, col.name)
                assert ((s.astype("int64") % 1_000_000) == 0).all()  # whole seconds
            if col.type == "string":
                assert (s.str.len() > 0).all(), (name, col.name)
        for rule in decl.rules:
            both = df[rule.left].notna() & df[rule.right].notna()
            assert (df.loc[both, rule.left] >= df.loc[both, rule.right]).all(), (name, rule)
    p = w["promises"]
    assert (p.due_at >= p.made_at).all()
    # promises due after as_of are open: neither kept nor cancelled yet
    later = p.due_at > AS_OF
    assert p.kept_at[later].isna().all() and p.cancelled_at[later].isna().all()
    kept = p.kept_at.notna()
    assert (p.kept_at[kept] >= p.made_at[kept]).all()
    canc = p.cancelled_at.notna()
    assert (p.cancelled_at[canc] >= p.made_at[canc]).all()
    assert not (kept & canc).any()


def test_survey_scores_in_instrument_range(w: Loaded) -> None:
    s = w["surveys"]
    answered = s.score.notna()
    assert (answered == s.responded_at.notna()).all()
    assert s.comment[~answered].isna().all()
    for instrument, (lo, hi) in SURVEY_SCALES.items():
        sc = s.score[(s.instrument == instrument) & answered]
        assert ((sc >= lo) & (sc <= hi) & (sc == sc.round())).all(), instrument
    assert set(s.instrument) <= set(SURVEY_SCALES)
    assert 0.15 < answered.mean() < 0.6


def test_customers_are_synthetic(w: Loaded) -> None:
    c = w["customers"]
    assert c.customer_id.str.fullmatch(r"C\d{7}").all()
    assert c.email.str.endswith("@example.com").all()
    assert c.email.is_unique
    assert set(c.segment) == {"consumer", "business", "vip"}
    assert c.joined_at.min() < pd.Timestamp("2023-07-01")  # some joined before the history
    ids = pd.concat([w["touchpoints"].agent_id, w["surveys"].agent_id]).dropna()
    assert ids.str.fullmatch(r"A\d{4}").all()


def test_sizes_of_a_small_world(w: Loaded) -> None:
    c = w.world.counts
    assert c["customers"] == N
    assert 1.5 * N < c["journeys"] < 9 * N
    assert 3 * N < c["touchpoints"] < 20 * N
    assert 0.5 * N < c["surveys"] < 3 * N
    assert set(w["touchpoints"].channel) >= {"email", "app"}
    assert set(w["touchpoints"].actor) == {"person", "bot", "system", "customer"}


# --------------------------------------------------------------------------- determinism, args


def _digest(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("world", WORLDS)
def test_same_seed_same_bytes_other_seed_differs(world: str, tmp_path: Path) -> None:
    a = generate(tmp_path / "a", world=world, size=600, seed=3)
    b = generate(tmp_path / "b", world=world, size=600, seed=3)
    c = generate(tmp_path / "c", world=world, size=600, seed=4)
    da, db, dc = _digest(a.out_dir), _digest(b.out_dir), _digest(c.out_dir)
    assert da.keys() == db.keys() == dc.keys()
    assert da == db
    assert da["touchpoints.parquet"] != dc["touchpoints.parquet"]
    assert da["journeys.parquet"] != dc["journeys.parquet"]


def test_csv_has_schema_columns_and_iso_times(tmp_path: Path) -> None:
    pq_world = generate(tmp_path / "p", world="shop", size=400, seed=5)
    csv_world = generate(tmp_path / "c", world="shop", size=400, seed=5, fmt="csv")
    assert csv_world.counts == pq_world.counts
    for name in csv_world.counts:
        df = pd.read_csv(csv_world.path(name), dtype=str, keep_default_na=False)
        assert list(df.columns) == TABLE_BY_NAME[name].column_names
        assert len(df) == csv_world.counts[name]
        for col in TABLE_BY_NAME[name].columns:
            if col.type == "timestamp":
                v = df[col.name][df[col.name] != ""]
                assert v.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all(), (name, col.name)
    t = pd.read_csv(csv_world.path("touchpoints"))
    assert (
        t.touchpoint_id.tolist()
        == pd.read_parquet(pq_world.path("touchpoints")).touchpoint_id.tolist()
    )


def test_arguments_are_checked(tmp_path: Path) -> None:
    assert SIZES == {"small": 10_000, "medium": 100_000, "large": 1_000_000}
    with pytest.raises(ValueError, match="unknown world"):
        generate(tmp_path, world="bank")
    with pytest.raises(ValueError, match="unknown size"):
        generate(tmp_path, size="huge")
    with pytest.raises(ValueError, match="format"):
        generate(tmp_path, size=200, fmt="xlsx")
    with pytest.raises(ValueError, match="seed"):
        generate(tmp_path, size=200, seed=-1)


# --------------------------------------------------------------------------- truth: everywhere


def test_truth_json_structure(w: Loaded) -> None:
    t = w.truth
    assert t["as_of"] == "2025-06-30T23:59:59"
    assert t["world"] == w.world.world and t["seed"] == SEED and t["n_customers"] == N
    assert t["counts"] == w.world.counts
    for name, entry in t["truths"].items():
        path = w.world.out_dir / entry["file"]
        assert path.exists(), name
        assert pq.read_metadata(path).num_rows == entry["rows"]
    assert set(t["begging_phrases"]) == {
        "rate me 10",
        "only 9s and 10s count",
        "tell me first if it's not a 10",
    }
    assert len(t["templates"]) >= 12
    for behaviour in ("begging", "selective", "concession", "honest_small_n"):
        assert len(t["agents"][behaviour]) >= 3, behaviour


def test_truth_ids_exist_in_data(w: Loaded) -> None:
    tp_ids = set(w["touchpoints"].touchpoint_id)
    cust = set(w["customers"].customer_id)
    for name in ("unanswered", "begging", "touchpoints"):
        assert set(w.t(name).touchpoint_id) <= tp_ids, name
    for name, entry in w.truth["truths"].items():
        if "customer_id" in entry["columns"]:
            assert set(w.t(name).customer_id) <= cust, name
    assert set(w.t("promises").promise_id) == set(w["promises"].promise_id)
    assert set(w.t("surveys").survey_id) == set(w["surveys"].survey_id)
    assert set(w.t("actions").action_id) == set(w["actions"].action_id)
    assert set(w.t("agents").agent_id) >= set(w["touchpoints"].agent_id.dropna())


def _promise_status(p: pd.DataFrame) -> pd.Series:
    status = pd.Series("kept", index=p.index)
    status[p.kept_at > p.due_at] = "broken_late"
    status[p.kept_at.isna()] = "broken_unkept"
    status[p.kept_at.isna() & (p.due_at > AS_OF)] = "open"
    status[p.cancelled_at.notna()] = "cancelled"
    return status


def test_promises_kept_broken_cancelled_and_made_good(w: Loaded) -> None:
    p = w["promises"].set_index("promise_id")
    truth = w.t("promises").set_index("promise_id").loc[p.index]
    status = _promise_status(p)
    assert (status == truth.status.replace({"at_risk": "open"})).all()
    assert {"kept", "broken_late", "broken_unkept", "cancelled"} <= set(status)
    assert set(status) <= {"kept", "broken_late", "broken_unkept", "cancelled", "open"}
    # at risk: open with >= 80% of the promised time gone, or less left than the kind's
    # 90th percentile time to keep
    op = p[status == "open"]
    hours = (p.kept_at - p.made_at).dt.total_seconds() / 3600
    p90 = hours.groupby(p.kind).quantile(0.9)
    gone = (AS_OF - op.made_at) / (op.due_at - op.made_at) >= 0.8
    short = (op.due_at - AS_OF).dt.total_seconds() / 3600 < op.kind.map(p90).astype(float)
    if len(op):
        assert ((gone | short) == truth.status[op.index].eq("at_risk")).all()
    broken = truth.status.str.startswith("broken")
    assert truth.made_good[broken].any() and not truth.made_good[broken].all()
    assert not truth.made_good[~broken].any()
    # recompute make-goods: apology touchpoints or credit/compensation actions in the window
    tp = w["touchpoints"]
    ac = w["actions"]
    ev = pd.concat(
        [
            tp.loc[(tp.kind == "apology") & (tp.direction == "outbound"), ["customer_id", "at"]],
            ac.loc[ac.kind.isin(["credit", "compensation"]), ["customer_id", "at"]],
        ]
    )
    b = p[broken].reset_index()
    b["hi"] = np.maximum(b.due_at, b.kept_at.fillna(b.due_at)) + pd.Timedelta(days=7)
    m = b.merge(ev, on="customer_id", how="left")
    m["hit"] = (m["at"] > m.due_at) & (m["at"] <= m.hi)
    made_good = m.groupby("promise_id").hit.any()
    assert (made_good == truth.made_good[broken].reindex(made_good.index)).all()
    for pid in truth.index[truth.made_good][:50]:
        eid = truth.make_good_id[pid]
        assert eid in set(tp.touchpoint_id) or eid in set(ac.action_id)


def test_planted_promise_gaming(w: Loaded) -> None:
    """Padders quote 3x their kinds' usual time; renegotiated promises are replaced by a
    later one of the same journey and kind, due later; paused promises have a pending
    message and, counting the pause, mostly keep their word."""
    p = w["promises"].set_index("promise_id")
    truth = w.t("promises").set_index("promise_id").loc[p.index]
    padders = set(w.truth["agents"]["padding"])
    assert len(padders) >= 3
    assert (p.made_by[truth.padded].isin(padders)).all()
    # every promise of theirs but plan changes (made apart, when the new plan starts)
    assert (truth.padded == (p.made_by.isin(padders) & p.kind.ne("plan_change"))).all()
    hours = (p.due_at - p.made_at).dt.total_seconds() / 3600
    by_agent = p.made_by.str.startswith("A")
    norm = hours[by_agent & ~truth.padded].groupby(p.kind).median()
    ratio = hours / p.kind.map(norm)
    assert ratio[truth.padded].median() > 2.5 and ratio[by_agent & ~truth.padded].median() < 1.2
    reneg = truth[truth.renegotiated]
    assert len(reneg) >= (1 if w.world.world == "cafe" else 5)  # few café promises by agents
    assert p.kept_at[reneg.index].isna().all()
    new = p.loc[reneg.replaced_by]
    old = p.loc[reneg.index]
    assert (new.journey_id.to_numpy() == old.journey_id.to_numpy()).all()
    assert (new.kind.to_numpy() == old.kind.to_numpy()).all()
    assert (new.made_at.to_numpy() <= old.due_at.to_numpy()).all()
    assert (new.due_at.to_numpy() > old.due_at.to_numpy()).all()
    paused = truth[truth.paused_hours.notna()]
    assert (paused.kind == "fix").all()
    if w.world.world == "shop":  # no fix promises
        assert paused.empty
        return
    tp = w["touchpoints"]
    pend = tp[tp.kind == "pending"].sort_values("at")
    assert len(paused) > (10 if w.world.world == "telco" else 0)
    assert set(pend.journey_id) <= set(p.journey_id[paused.index])
    # recompute: from the pending message to the journey's next touchpoint, within
    # made .. kept (or as_of)
    nxt = tp.sort_values(["journey_id", "at", "touchpoint_id"]).copy()
    nxt["next_at"] = nxt.groupby("journey_id")["at"].shift(-1)
    pend = nxt[nxt.kind == "pending"].set_index("journey_id")
    pp = p.loc[paused.index]
    has = pp.journey_id.isin(pend.index)
    start = pp.journey_id.map(pend["at"])
    stop = pp.journey_id.map(pend["next_at"]).fillna(AS_OF)
    end = pp.kept_at.fillna(AS_OF)
    secs = (np.minimum(stop, end) - np.maximum(start, pp.made_at)).dt.total_seconds()
    secs = secs.clip(lower=0).where(has & (start < pp.due_at), 0.0)
    assert np.allclose(secs / 3600, paused.paused_hours)
    due = pp.due_at + pd.to_timedelta(secs, unit="s")
    kept_ok = pp.kept_at.notna() & (pp.kept_at <= due)
    assert (kept_ok == paused.status_with_pauses.eq("kept")).all()
    if w.world.world == "telco":
        kept_by_pause = paused.status_with_pauses.eq("kept") & paused.status.eq("broken_late")
        assert kept_by_pause.sum() > 5


def test_owed_credits_follow_the_declared_rules(w: Loaded) -> None:
    """Owed credits recomputed from the declared rules file, the promises and the actions."""
    import tomllib

    rules = tomllib.loads((w.world.out_dir / "truth" / "compensation_rules.toml").read_text())
    assert rules["promise"] and w.truth["world_facts"]["compensation_rules"]
    by_kind = {r["kind"]: r for r in rules["promise"]}
    p = w["promises"].set_index("promise_id")
    truth = w.t("promises").set_index("promise_id").loc[p.index]
    broken = p[truth.status.str.startswith("broken") & p.kind.isin(list(by_kind))].copy()
    days = np.ceil((broken.kept_at.fillna(AS_OF) - broken.due_at).dt.total_seconds() / 86400)
    owed = []
    for kind, d in zip(broken.kind, days, strict=True):
        r = by_kind[kind]
        v = r.get("amount", 0.0) + r.get("per_day_late", 0.0) * d
        owed.append(min(v, r.get("max", v)))
    broken["owed"] = np.round(owed, 2)
    per = broken.groupby("journey_id").owed.sum()
    ac = w["actions"]
    paid = ac[ac.kind.isin(rules["paid_kinds"])].groupby("journey_id").amount.sum()
    oc = w.t("owed_credits").set_index("journey_id").sort_index()
    assert set(oc.index) == set(per[per > 0].index)
    assert np.allclose(oc.owed, per.loc[oc.index], atol=0.005)
    assert np.allclose(oc.paid, paid.reindex(oc.index).fillna(0.0), atol=0.005)
    still = np.maximum(0, oc.owed - oc.paid).round(2)
    assert np.allclose(oc.still_owed, still, atol=0.005)
    # planted: some paid in full, some partly, some not at all
    assert (oc.still_owed < 0.01).sum() >= 3 and (oc.paid == 0).sum() >= 3
    if w.world.world != "cafe":  # the café's rule is a flat £3: any credit pays it
        assert ((oc.paid > 0) & (oc.still_owed >= 0.01)).sum() >= 1


def test_unanswered_inbound_really_unanswered(w: Loaded) -> None:
    tp = w["touchpoints"]
    un = set(w.t("unanswered").touchpoint_id)
    assert len(un) >= 5
    inbound = tp[tp.direction == "inbound"]
    assert inbound.journey_id.notna().all()
    last_out = tp[tp.direction == "outbound"].groupby("journey_id")["at"].max()
    later = inbound.journey_id.map(last_out)
    answered = later.notna() & (later > inbound["at"])
    assert set(inbound.touchpoint_id[~answered]) == un
    assert (w.t("unanswered").reason == "ignored").sum() >= 5


def test_begging_agents_texts_and_inflated_scores(w: Loaded) -> None:
    phrases = w.truth["begging_phrases"]
    agents = w.t("agents").set_index("agent_id")
    beggars = set(agents.index[agents.behaviour == "begging"])
    tp = w["touchpoints"]
    text = tp.text.fillna("").str.lower()
    has_phrase = text.apply(lambda s: any(p in s for p in phrases))
    flagged = tp.touchpoint_id.isin(set(w.t("begging").touchpoint_id))
    assert (has_phrase == flagged).all()
    assert set(tp.agent_id[has_phrase]) <= beggars
    assert len(set(tp.agent_id[has_phrase])) >= 2
    # routine NPS of begging agents is inflated compared with others; begged ones are 9-10
    s = w["surveys"].merge(w.t("surveys")[["survey_id", "begged_before"]], on="survey_id")
    nps = s[(s.instrument == "nps") & s.score.notna() & s.agent_id.notna()]
    is_beg = nps.agent_id.isin(beggars)
    routine = nps.trigger != "audit"
    assert nps.score[is_beg & routine].mean() > nps.score[~is_beg & routine].mean() + 0.3
    top = nps.score >= 9
    assert top[nps.begged_before].mean() > 0.65
    assert top[nps.begged_before].mean() > top[~nps.begged_before].mean() + 0.25
    assert not nps.begged_before[~is_beg | ~routine].any()


def test_selective_agents_survey_only_achieved(w: Loaded) -> None:
    agents = w.t("agents").set_index("agent_id")
    selective = set(agents.index[agents.behaviour == "selective"])
    s = w["surveys"].merge(w["journeys"][["journey_id", "outcome"]], on="journey_id")
    sel = s[(s.trigger == "agent") & s.agent_id.isin(selective)]
    assert len(sel) >= 5
    assert (sel.outcome == "achieved").all()
    others = s[(s.trigger == "agent") & ~s.agent_id.isin(selective)]
    assert (others.outcome == "failed").any()
    assert (s.trigger == "audit").sum() >= 10


def test_concessions_precede_surveys_and_raise_scores(w: Loaded) -> None:
    truth = w.t("surveys")
    s = w["surveys"].merge(truth[["survey_id", "concession_before"]], on="survey_id")
    conc = s[s.concession_before]
    assert len(conc) >= 5
    ac = w["actions"]
    gifts = ac[ac.kind.isin(["discount", "credit"])][["journey_id", "agent_id", "at"]]
    m = conc.merge(gifts.rename(columns={"at": "at_action"}), on=["journey_id", "agent_id"])
    ok = (m["at_action"] < m.invited_at) & (m["at_action"] > m.invited_at - pd.Timedelta(hours=48))
    assert set(m.survey_id[ok]) == set(conc.survey_id)
    agents = w.t("agents").set_index("agent_id")
    conc_agents = set(agents.index[agents.behaviour == "concession"])
    assert set(conc.agent_id) <= conc_agents
    nps = s[(s.instrument == "nps") & s.score.notna() & (s.trigger != "audit")]
    assert nps.score[nps.concession_before].mean() > nps.score[~nps.concession_before].mean()


def _template_regexes(truth: dict) -> dict[str, re.Pattern[str]]:
    from sawubona.demo.text import BEGGING_SENTENCES

    beg = "|".join(re.escape(s) for s in BEGGING_SENTENCES)
    out = {}
    for t in truth["templates"]:
        parts = []
        for lit, field, _, _ in string.Formatter().parse(t["pattern"]):
            parts.append(re.escape(lit))
            if field:
                parts.append(".+?")
        out[t["key"]] = re.compile("".join(parts) + f"(?:{beg})?", re.S)
    return out


def test_templated_and_personal_messages(w: Loaded) -> None:
    classes = w.t("touchpoints").merge(w["touchpoints"], on=["touchpoint_id", "customer_id"])
    assert (classes.direction == "outbound").all()
    assert set(classes["class"]) >= {"templated", "personal"}
    regex = _template_regexes(w.truth)
    templated = classes[classes["class"] == "templated"]
    for key, grp in templated.groupby("template"):
        assert grp.text.apply(lambda s, r=regex[key]: bool(r.fullmatch(s))).all(), key
    shown = templated.template_id.notna()
    assert shown.any() and not shown.all()
    assert (templated.template_id[shown] == "tpl_" + templated.template[shown]).all()
    personal = classes[classes["class"] == "personal"].text
    assert len(personal) >= 50
    matches_any = personal.apply(lambda s: any(r.fullmatch(s) for r in regex.values()))
    assert not matches_any.any()
    assert personal.is_unique

    # personal messages are not near-duplicates of each other; a template's are
    def jaccard(texts: pd.Series) -> np.ndarray:
        words = texts.str.replace(r"[A-Z]\w+|\d+", "#", regex=True).str.split()
        sh = [{" ".join(x[i : i + 3]) for i in range(len(x) - 2)} for x in words]
        return np.array([len(a & b) / len(a | b) for i, a in enumerate(sh) for b in sh[i + 1 :]])

    own = jaccard(personal.head(300))
    assert np.quantile(own, 0.999) < 0.45 and own.max() < 0.75 and np.median(own) < 0.15
    long = {t["key"] for t in w.truth["templates"] if len(t["pattern"]) > 80}
    common = templated.template[templated.template.isin(long)].mode()[0]
    same = jaccard(templated[templated.template == common].text.head(100))
    assert np.median(same) > 0.6
    assert templated.template.nunique() >= 10


def test_customers_only_sent_templates(w: Loaded) -> None:
    only = w.t("only_templates")
    assert len(only) >= 10
    assert only.contacted_us.any()
    tp = w["touchpoints"]
    out = tp[tp.direction == "outbound"]
    regex = _template_regexes(w.truth)
    theirs = out[out.customer_id.isin(set(only.customer_id))]
    assert theirs.actor.isin(["person", "bot", "system"]).all()
    assert theirs.text.notna().all()  # nobody called them or spoke to them
    assert theirs.text.apply(lambda s: any(r.fullmatch(s) for r in regex.values())).all()
    others = set(out.customer_id) - set(only.customer_id)
    assert others  # everyone else got at least one non-template message
    sample = out[out.customer_id.isin(list(others)[:100])]
    human = sample.text.isna() | ~sample.text.fillna("").apply(
        lambda s: any(r.fullmatch(s) for r in regex.values())
    )
    assert human.groupby(sample.customer_id).any().all()


def test_failed_and_bad_experiences_score_lower(w: Loaded) -> None:
    s = w["surveys"].merge(w["journeys"][["journey_id", "outcome"]], on="journey_id")
    s = s[s.score.notna() & (s.trigger == "audit") | s.score.notna() & (s.trigger == "system")]
    for instrument in ("nps", "csat"):
        x = s[s.instrument == instrument]
        if x.outcome.eq("failed").sum() >= 10 and x.outcome.eq("achieved").sum() >= 10:
            assert (
                x.score[x.outcome == "failed"].mean()
                < x.score[x.outcome == "achieved"].mean() - 0.5
            ), instrument
    j = w["journeys"]
    assert (j.outcome == "failed").sum() > 10
    assert j.outcome_reason[j.outcome == "failed"].notna().all()
    assert j.outcome_reason[j.outcome == "achieved"].isna().all()
    opened = j[j.outcome == "open"]
    assert opened.ended_at.isna().all()
    recent = opened.started_at > AS_OF - pd.Timedelta(days=14)
    assert len(opened) == 0 or recent.mean() > 0.5
    if w.world.world != "cafe":  # café visits are over in minutes
        assert len(opened) >= 5


def test_journey_frequency_is_heterogeneous(w: Loaded) -> None:
    j = w["journeys"]
    kind = {"telco": "support", "shop": "order", "cafe": "visit"}[w.world.world]
    per = (
        j[j.kind == kind]
        .groupby("customer_id")
        .size()
        .reindex(w["customers"].customer_id, fill_value=0)
    )
    assert per.var() > 2 * per.mean()  # over-dispersed (gamma-Poisson), not Poisson
    assert (per == 0).any() and per.max() >= 10


# --------------------------------------------------------------------------- truth: telco


def _bills(
    plans: pd.DataFrame, usage: pd.DataFrame, plan_id: pd.Series, fee: pd.Series
) -> pd.Series:
    """Monthly bills of (customer, month) rows on ``plan_id`` with ``fee`` (the doc formula)."""
    total = fee.astype(float).copy()
    for pid, rows in plan_id.groupby(plan_id).groups.items():
        plan = plans.loc[pid]
        allow = json.loads(plan.allowances)
        over = json.loads(plan.overage)
        rnd = json.loads(plan.rounding)
        for metric, a in allow.items():
            q = usage.loc[rows, metric]
            step = float(rnd[metric].split(":")[1])
            billed = np.ceil(q.round(6) / step) * step
            total.loc[rows] += np.maximum(0.0, billed - a) * over.get(metric, 0.0)
    return total


def _telco_frames(t: Loaded) -> tuple[pd.DataFrame, pd.DataFrame]:
    plans = t["plans"].set_index("plan_id")
    subs = t["subscriptions"]
    main = subs[subs.ended_at.isna() & subs.plan_id.map(plans.kind).eq("plan")]
    cur = main.set_index("customer_id")
    u = t["usage"]
    u = u[u.metric.isin(["minutes", "messages", "data_mb"])]
    wide = u.pivot_table(
        index=["customer_id", "period_start", "plan_id"], columns="metric", values="quantity"
    ).reset_index()
    wide = wide[wide.customer_id.isin(cur.index)]
    wide = wide[wide.plan_id == wide.customer_id.map(cur.plan_id)].reset_index(drop=True)
    wide["cur_bill"] = _bills(plans, wide, wide.plan_id, wide.customer_id.map(cur.monthly_fee_paid))
    return plans, wide


def test_overpayers_cheaper_on_named_plan(telco: Loaded) -> None:
    plans, wide = _telco_frames(telco)
    over = telco.t("overpaying").set_index("customer_id")
    assert {"low_usage", "heavy_overage", "legacy_plan"} <= set(over.reason)
    assert (over.direction == "bigger").any() and (over.direction == "smaller").any()
    rows = wide[wide.customer_id.isin(over.index)].copy()
    fit = rows.customer_id.map(over.fit_plan)
    assert plans.loc[fit.unique(), "open_to_new"].all()
    rows["alt"] = _bills(plans, rows, fit, fit.map(plans.monthly_fee))
    rows["cheaper"] = rows.alt < rows.cur_bill - 1e-9
    share = rows.groupby("customer_id").cheaper.mean()
    assert (share.reindex(over.index) >= over.share_cheaper - 1e-9).all()
    planted = over[over.reason != "legacy_plan"]
    assert (planted.months >= 6).all()  # at most one month is not cheaper
    assert (share[planted.index] >= (planted.months - 1) / planted.months - 1e-9).all()
    saving = (rows.cur_bill - rows.alt).groupby(rows.customer_id).mean() * 12
    assert np.allclose(saving[over.index], over.yearly_saving, atol=0.02)
    assert (over.yearly_saving > 0).all()


def test_everyone_else_has_no_cheaper_plan(telco: Loaded) -> None:
    plans, wide = _telco_frames(telco)
    over = set(telco.t("overpaying").customer_id)
    rest = wide[~wide.customer_id.isin(over)].copy()
    assert rest.customer_id.nunique() > N / 2
    for pid in plans.index[plans.open_to_new & (plans.kind == "plan")]:
        alt = _bills(
            plans,
            rest,
            pd.Series(pid, index=rest.index),
            pd.Series(plans.loc[pid, "monthly_fee"], index=rest.index),
        )
        cheaper = (alt < rest.cur_bill - 1e-9) & (rest.plan_id != pid)
        share = cheaper.groupby(rest.customer_id).mean()
        assert share.max() < 0.75, pid


def test_unused_addons_recomputed(telco: Loaded) -> None:
    plans = telco["plans"].set_index("plan_id")
    subs = telco["subscriptions"]
    addon_subs = subs[subs.plan_id.map(plans.kind).eq("addon") & subs.ended_at.isna()]
    metric = {
        pid: next(iter(json.loads(plans.loc[pid, "allowances"])))
        for pid in addon_subs.plan_id.unique()
    }
    u = telco["usage"]
    trailing = {}
    for row in addon_subs.itertuples():
        q = (
            u[(u.customer_id == row.customer_id) & (u.metric == metric[row.plan_id])]
            .sort_values("period_start")
            .quantity.to_numpy()
        )
        zeros = len(q) - (np.flatnonzero(q > 0)[-1] + 1) if (q > 0).any() else len(q)
        trailing[(row.customer_id, row.plan_id)] = zeros
    truth = telco.t("unused_addons")
    listed = {(r.customer_id, r.plan_id): r.months_unused for r in truth.itertuples()}
    assert listed
    assert {k for k, v in trailing.items() if v >= 3} == set(listed)
    for k, v in listed.items():
        assert trailing[k] == v


def test_price_rises_and_loyalty_penalty(telco: Loaded) -> None:
    plans = telco["plans"].set_index("plan_id")
    subs = telco["subscriptions"]
    cur = subs[subs.ended_at.isna() & subs.plan_id.map(plans.kind).eq("plan")]
    penalised = cur[cur.monthly_fee_paid > cur.plan_id.map(plans.monthly_fee) + 1e-9]
    truth = telco.t("loyalty_penalty")
    assert set(truth.customer_id) == set(penalised.customer_id)
    assert len(truth) >= 20
    rises = telco["actions"]
    rises = rises[rises.kind == "price_rise"]
    assert set(truth.customer_id) <= set(rises.customer_id)
    assert (truth.tenure_years > 2).all()
    assert not plans.open_to_new.all()


# --------------------------------------------------------------------------- truth: shop, cafe


@pytest.mark.parametrize("world", ["shop", "cafe"])
def test_regulars_drift_after_core_stockouts(world: str, worlds: dict[str, Loaded]) -> None:
    t = worlds[world]
    drift = t.t("drift").set_index("customer_id")
    assert {"loyal", "drift_stockout", "drift_unknown"} <= set(drift.role)
    j = t["journeys"]
    items = t["journey_items"]
    main = j[j.kind != "support"]
    last = main.groupby("customer_id").started_at.max()
    every = j.groupby("customer_id").started_at.max()
    n = main.groupby("customer_id").size()
    regs = drift.index
    assert (n[regs] >= 8).all()
    stopped = drift[drift.role != "loyal"]
    assert (AS_OF - every[stopped.index] > pd.Timedelta(days=80)).all()  # nothing after
    loyal = drift[drift.role == "loyal"]
    assert (AS_OF - last[loyal.index] < pd.Timedelta(days=60)).mean() > 0.9
    # core item: in most of a regular's journeys
    ji = items.merge(main[["journey_id", "customer_id", "started_at"]], on="journey_id")
    core_share = (
        ji[ji.customer_id.isin(regs)]
        .assign(core=lambda d: d.item_id == d.customer_id.map(drift.core_item))
        .groupby("customer_id")
        .core.sum()
        / n[regs]
    )
    assert (core_share > 0.5).all()
    # drift_stockout: their last journeys had the core item out of stock
    so = drift[drift.role == "drift_stockout"]
    for cid, row in so.iterrows():
        ids = list(row.stockout_journey_ids)
        assert 1 <= len(ids) <= 2
        mine = ji[ji.customer_id == cid].sort_values("started_at")
        last_ids = mine.drop_duplicates("journey_id").journey_id.tail(len(ids)).tolist()
        assert sorted(last_ids) == sorted(ids)
        core_rows = mine[mine.journey_id.isin(ids) & (mine.item_id == row.core_item)]
        assert len(core_rows) == len(ids) and not core_rows.fulfilled.any()
    # drift_unknown: nothing bad in their last four journeys
    un = drift[drift.role == "drift_unknown"]
    mine = main[main.customer_id.isin(un.index)].sort_values("started_at")
    tail = mine.groupby("customer_id").tail(4)
    assert (tail.outcome == "achieved").all()
    assert items[items.journey_id.isin(tail.journey_id)].fulfilled.all()
    assert (drift.reason[drift.role == "drift_unknown"] == "unknown").all()
    assert drift.reason[drift.role == "loyal"].isna().all()
    # some loyal regulars lived through a core stock-out
    assert (loyal.core_stockouts > 0).any()


def test_say_do_is_weak_but_not_absent(telco: Loaded) -> None:
    s = telco["surveys"]
    rel = s[(s.instrument == "nps") & s.score.notna()].drop_duplicates("customer_id")
    churned = rel.customer_id.map(telco.t("customers").set_index("customer_id").churned)
    pos, neg = rel.score[churned], rel.score[~churned]
    assert len(pos) >= 20
    # AUC of a low score for predicting churn: better than chance, far from perfect
    ranks = pd.concat([pos, neg]).rank()
    auc = 1 - (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    assert 0.4 < auc < 0.75
    assert not math.isnan(auc)


def test_docs_describe_every_truth_and_plan() -> None:
    from sawubona.demo.tariffs import PLANS
    from sawubona.demo.truth import DESCRIPTIONS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "demo.md").read_text()
    for name in DESCRIPTIONS:
        assert f"`{name}`" in doc, name
    for plan in PLANS:
        assert plan.plan_id in doc, plan.plan_id
    for world in WORLDS:
        assert f"## {world}" in doc
    assert "bill(plan, month)" in doc and "2025-06-30T23:59:59" in doc


def test_nothing_happens_before_a_customer_joined(w: Loaded) -> None:
    joined = w["customers"].set_index("customer_id").joined_at
    for name, col in (
        ("journeys", "started_at"),
        ("touchpoints", "at"),
        ("actions", "at"),
        ("surveys", "invited_at"),
        ("promises", "made_at"),
    ):
        df = w[name]
        assert (df[col] >= df.customer_id.map(joined)).all(), name
    if "subscriptions" in w.world.counts:
        s = w["subscriptions"]
        assert (s.started_at >= s.customer_id.map(joined)).all()
        u = w["usage"]
        assert (u.period_start >= u.customer_id.map(joined)).all()


def test_transfers_and_repeat_contacts_cost_effort(telco: Loaded) -> None:
    tp = telco["touchpoints"]
    inbound = tp[tp.direction == "inbound"].groupby("journey_id").size()
    transferred = set(tp.journey_id[tp.kind == "transfer"])
    hard = transferred | set(inbound.index[inbound > 1])
    s = telco["surveys"]
    ces = s[(s.instrument == "ces") & s.score.notna() & s.journey_id.notna()]
    is_hard = ces.journey_id.isin(hard)
    assert is_hard.sum() >= 20
    assert ces.score[is_hard].mean() < ces.score[~is_hard].mean() - 0.5
