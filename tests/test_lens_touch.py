"""The touch lens: did a person ever speak to this customer, or only templates and bots?

Oracles: exact Jaccard similarity of shingle sets (for the MinHash estimates), a
plain-Python reference of the tokeniser, planted truth in generated demo worlds
(which outbound message was a filled-in template, which customers only ever got
templates), small hand-built worlds, and the public Customer Support on Twitter
sample (one brand reply sent to three customers with different @handles).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sawubona
from conftest import ROOT, dataset
from sawubona import analyze as runner
from sawubona import lenses, schema
from sawubona.demo import generate
from sawubona.errors import SawubonaError
from sawubona.lenses.base import LensInput
from sawubona.lenses.touch import LENS
from sawubona.lenses.touch.cluster import (
    agreements,
    bits_per_row_table,
    candidates,
    cluster,
    low_nibbles,
)
from sawubona.lenses.touch.columns import COLUMNS
from sawubona.lenses.touch.minhash import hash_strings, shingles, signatures, similarity
from sawubona.lenses.touch.normalise import MASKS, fold_digits, mask, tokenise
from sawubona.lenses.touch.summary import _joined, distinct_per_group
from sawubona.lenses.touch.templates import Params, near_duplicates

DOC = ROOT / "docs" / "lenses" / "touch.md"


@pytest.fixture(autouse=True)
def only_touch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the touch lens alone (other lenses are tested in their own files)."""
    monkeypatch.setattr(lenses, "available", lambda: {"touch": LENS})


def table(store: sawubona.Store, name: str) -> pd.DataFrame:
    return store.table(name).to_pandas()


def rows(store: sawubona.Store, name: str, key: str) -> dict[str, dict[str, Any]]:
    """A result table as {key value: row}."""
    return {r[key]: r for r in store.table(name).to_pyarrow().to_pylist()}


# --------------------------------------------------------------------------- normalising


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("See https://t.co/abc?x=1 or www.x.org", "See {url} or {url}"),
        ("Mail help@shop.co.uk now", "Mail {email} now"),
        ("@105836 Have you tried", "{handle} Have you tried"),
        ("Send us a DM. ^RR https://t.co/z", "Send us a DM. {sign} {url}"),
        ("Just let us know /AY", "Just let us know {sign}"),
        ("Thanks - Lee 2/2", "Thanks {sign} {num}/{num}"),
        ("by 3 July, or July 3rd, 2024, or 2024-07-03 or 03/07/24", None),
        ("on Monday at 10am or 15:30", "on {date} at {time} or {time}"),
        ("costs £7.50 or 10 USD", "costs {amount} or {amount}"),
        ("order J000012363 and BA8733", "order {ref} and {ref}"),
        ("call 03331 031 031 option 1, 4", "call {phone} option {num}, {num}"),
        ("up to 40% off 3 items", "up to {num}% off {num} items"),
    ],
)
def test_masks(text: str, masked: str | None) -> None:
    got = mask(pa.array([text]))[0].as_py()
    if masked is None:
        assert got.count("{date}") == 4 and not re.search(r"\d", got)
    else:
        assert got == masked


def test_names_are_learnt_from_where_names_stand() -> None:
    texts = [
        "Hi Thomas, thanks for waiting. Kind regards, Owen",
        "Sorry, we could not find it. Hello again Priya!",
        "Jonah, your flat white is ready. Owen",
        "We are sorry about that, Beatner.",
        "Thanks Umar. Will you send a photo? We will call you. Will",
        "Your parcel for Quist is at the door",  # Quist: a customer's name (below)
    ]
    tok = tokenise(pa.array(texts), known_names=["Ana Quist"])
    assert {"thomas", "owen", "priya", "jonah", "beatner", "umar", "quist"} <= tok.names
    # written in lower case elsewhere: ordinary words, not names
    assert "sorry" not in tok.names and "will" not in tok.names
    assert tok.words(0) == ["hi", "{name}", "thanks", "for", "waiting", "kind", "regards", "{name}"]
    assert tok.words(2)[0] == "{name}" and tok.words(2)[-1] == "{name}"  # Owen, learnt elsewhere
    assert tok.words(4)[-1] == "will"  # a sign-off that is also a word stays a word
    assert tok.words(5) == ["your", "parcel", "for", "{name}", "is", "at", "the", "door"]
    shown = tok.readable(np.arange(len(texts))).to_pylist()
    assert shown[0] == "Hi {name}, thanks for waiting. Kind regards, {name}"


_ALPHABET = st.sampled_from(
    [*list("abcXYZ019 _-.,!?'@^/{}£"), "’", "\xa0", "é", "Ä", "—", "😊", "ß", "\n", "Hi ", "Ana"]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_ALPHABET, max_size=30).map("".join), min_size=1, max_size=12))
def test_byte_tokeniser_matches_a_plain_python_reference(texts: list[str]) -> None:
    """The vectorised tokeniser gives, word for word, the hashes of the Python reference."""
    tok = tokenise(pa.array(texts))
    for i in range(len(texts)):
        words = tok.words(i)
        expected: list[int] = hash_strings(pa.array(words, pa.large_string())).tolist()
        assert tok.hashes[tok.offsets[i] : tok.offsets[i + 1]].tolist() == expected, texts[i]


_MASKABLE = st.sampled_from(
    [
        *list("0123456789 ,.:/-@^xX"),
        "2024-07-03",
        "3 July",
        "July 3rd, 2024",
        "03/07/24",
        "on Monday",
        "10am",
        "15:30",
        "£7.50",
        "10 USD",
        "+44 7700 900123",
        "J000012363",
        "BA8733",
        "x1",
        "1x_2",
        "https://t.co/x1",
        "WWW.Shop9.com",
        "a9@b.co",
        "@105836",
        "^AB",
        " - Lee",
        " /AY",
        " 2/2",
        "Hi Ana",
        "é",
        "٣",
    ]
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(_MASKABLE, max_size=16).map("".join), min_size=1, max_size=10))
def test_masking_skips_nothing_and_cannot_tell_digits_apart(texts: list[str]) -> None:
    """The masks applied one after another to every text (the plain definition) give
    what :func:`mask` gives, which applies some masks only to texts holding a byte
    they need; no ASCII digit survives them, so folding digits first changes nothing."""
    plain = pa.array(texts, pa.large_string())
    for _what, pattern, replacement in MASKS:
        plain = pc.replace_substring_regex(plain, pattern=pattern, replacement=replacement)
    expected = plain.to_pylist()
    assert mask(pa.array(texts)).to_pylist() == expected
    folded = fold_digits(pa.array(texts))
    assert [len(t.encode()) for t in folded.to_pylist()] == [len(t.encode()) for t in texts]
    assert not any(re.search("[1-9]", t) for t in folded.to_pylist())
    assert mask(folded).to_pylist() == expected
    assert not any(re.search("[0-9]", t) for t in expected)


def test_folded_digits_keep_nulls_and_slices() -> None:
    texts = pa.array(["a1b22", None, "", "x 907", "٣ 5"])
    assert fold_digits(texts).to_pylist() == ["a0b00", None, "", "x 000", "٣ 0"]
    assert fold_digits(texts.slice(3)).to_pylist() == ["x 000", "٣ 0"]


# --------------------------------------------------------------------------- MinHash and LSH


def _doc_hashes(docs: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    flat = np.concatenate([np.asarray(d, np.uint64) for d in docs])
    offsets = np.r_[0, np.cumsum([len(d) for d in docs])].astype(np.int64)
    return flat, offsets


def test_minhash_estimates_the_exact_jaccard_similarity() -> None:
    rng = np.random.default_rng(7)
    pairs, exact = [], []
    for _ in range(300):
        shared = rng.integers(1, 40)
        own_a, own_b = rng.integers(0, 40, 2)
        base = rng.integers(0, 2**62, shared + own_a + own_b).tolist()
        a = base[: shared + own_a]
        b = base[:shared] + base[shared + own_a :]
        pairs += [a, b]
        exact.append(len(set(a) & set(b)) / len(set(a) | set(b)))
    flat, offsets = _doc_hashes(pairs)
    sh, sh_off = shingles(flat, offsets, 1)
    sig = signatures(sh, sh_off, 128, seed=3)
    est = similarity(sig, np.arange(0, 600, 2), np.arange(1, 600, 2))
    exact_j = np.array(exact)
    se = np.sqrt(exact_j * (1 - exact_j) / 128)
    z = (est - exact_j) / np.maximum(se, 1e-9)
    assert abs(np.mean(est - exact_j)) < 0.01  # unbiased
    assert np.mean(np.abs(z) < 2) > 0.9  # errors of the size theory says
    assert np.max(np.abs(est - exact_j)) < 0.2


def test_shingles_of_short_and_empty_documents() -> None:
    flat, offsets = _doc_hashes([[1, 2, 3, 4], [5], [6, 7]])
    offsets = np.r_[offsets[:2], offsets[1], offsets[2:]]  # an empty document second
    _sh, sh_off = shingles(flat, offsets, 3)
    assert list(np.diff(sh_off)) == [2, 0, 1, 1]  # 4 words → 2; none → 0; shorter → 1 each


def test_lsh_joins_near_duplicates_only() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**62, 60).tolist()
    docs = [base, [*base[:57], 1, 2, 3], [*base[3:], 4, 5, 6]]  # J ≈ 0.9 with the first
    docs += [rng.integers(0, 2**62, 60).tolist() for _ in range(50)]  # unrelated
    flat, offsets = _doc_hashes(docs)
    sh, sh_off = shingles(flat, offsets, 1)
    labels = cluster(signatures(sh, sh_off, 128, 0), 32, 0.6)
    assert labels[0] == labels[1] == labels[2] == 0
    assert len(set(labels[3:].tolist())) == 50 and (labels[3:] >= 3).all()
    with pytest.raises(ValueError, match="cannot be cut"):
        cluster(signatures(sh, sh_off, 128, 0), 30, 0.6)


def _cluster_reference(sig: np.ndarray, bands: int, threshold: float) -> list[int]:
    """LSH clustering in plain Python: buckets of equal band values, each member paired
    with its bucket's smallest document, pairs kept on the share of equal whole values."""
    n, n_perm = sig.shape
    rows = n_perm // bands
    labels = list(range(n))
    for band in range(bands):
        first: dict[tuple[int, ...], int] = {}
        pairs = []
        for d, values in enumerate(sig[:, band * rows : (band + 1) * rows].tolist()):
            f = first.setdefault(tuple(values), d)
            if f != d and labels[d] != labels[f]:
                pairs.append((d, f))
        parent = {x: x for x in set(labels)}

        def find(x: int, parent: dict[int, int] = parent) -> int:
            while parent[x] != x:
                x = parent[x]
            return x

        for d, f in pairs:
            if float(np.mean(sig[d] == sig[f])) >= threshold:
                a, b = find(labels[d]), find(labels[f])
                parent[max(a, b)] = min(a, b)
        labels = [find(x) for x in labels]
    return labels


def test_lsh_clusters_match_a_plain_reference_with_misleading_low_bytes() -> None:
    """Pairs whose values agree in their lowest byte far more than in whole (the
    quick test sees them as close) are still judged on whole values."""
    rng = np.random.default_rng(11)
    n, n_perm = 400, 128
    sig = rng.integers(0, 2**32, (n, n_perm), dtype=np.uint64).astype(np.uint32)
    for d in range(1, n):
        src = int(rng.integers(0, d))
        same = rng.random(n_perm) < rng.uniform(0.3, 0.9)  # whole values shared
        low = ~same & (rng.random(n_perm) < rng.uniform(0, 1))  # only the lowest byte
        sig[d, same] = sig[src, same]
        high = rng.integers(1, 2**24, n_perm, dtype=np.uint64).astype(np.uint32) << 8
        sig[d, low] = (sig[src, low] & 0xFF) | high[low]
    got = cluster(sig, 32, 0.6).tolist()
    assert got == _cluster_reference(sig, 32, 0.6)
    assert 1 < len(set(got)) < n  # some pairs joined, some turned away


@pytest.mark.parametrize("n_perm", [128, 40, 7])
def test_nibble_agreements_count_equal_lowest_nibbles(n_perm: int) -> None:
    """The quick test counts, per pair, the values whose lowest 4 bits are equal
    (padding to whole 64-bit words not counted), never fewer than equal values."""
    rng = np.random.default_rng(n_perm)
    sig = rng.integers(0, 2**32, (300, n_perm), dtype=np.uint64).astype(np.uint32)
    sig[1::2, : n_perm // 2] = sig[0::2, : n_perm // 2]  # pairs sharing half their values
    i, j = rng.integers(0, 300, 2000), rng.integers(0, 300, 2000)
    i[:150], j[:150] = np.arange(0, 300, 2), np.arange(1, 300, 2)
    got = agreements(low_nibbles(sig, block=64), n_perm, i, j, block=512)
    assert got.tolist() == ((sig[i] & 15) == (sig[j] & 15)).sum(axis=1).tolist()
    assert (got >= (sig[i] == sig[j]).sum(axis=1)).all() and (got[:150] >= n_perm // 2).all()
    words = low_nibbles(sig)
    x = words[i] ^ words[j]  # the table count (NumPy < 2.0) against Python's
    assert bits_per_row_table(x).tolist() == [sum(bin(v).count("1") for v in r) for r in x.tolist()]


def test_bucket_pairs_match_a_plain_reference() -> None:
    rng = np.random.default_rng(3)
    key = rng.integers(0, 40, 1000).astype(np.uint64)  # many buckets of many documents
    key[rng.random(1000) < 0.2] = rng.integers(2**40, 2**63, 1000, dtype=np.uint64)[:1]
    first: dict[int, int] = {}
    want = [(d, first.setdefault(k, d)) for d, k in enumerate(key.tolist())]
    i, j = candidates(key)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [p for p in want if p[0] != p[1]]
    assert [len(a) for a in candidates(key[:0])] == [0, 0]
    # keys sharing their lowest 32 bits but not the rest are different buckets
    key = (rng.integers(0, 8, 5000).astype(np.uint64) << np.uint64(32)) | np.uint64(77)
    key[::7] = rng.integers(0, 2**63, len(key[::7]), dtype=np.uint64)  # most alone
    first.clear()
    want = [(d, first.setdefault(k, d)) for d, k in enumerate(key.tolist())]
    i, j = candidates(key)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [p for p in want if p[0] != p[1]]


def test_lsh_clusters_match_the_reference_with_a_band_of_one_value() -> None:
    rng = np.random.default_rng(5)
    n, n_perm = 300, 20  # 20 bands of one value each: a chance match fills a bucket
    sig = rng.integers(0, 6, (n, n_perm), dtype=np.uint64).astype(np.uint32)
    for d in range(1, n):
        same = rng.random(n_perm) < rng.uniform(0.2, 0.9)
        sig[d, same] = sig[int(rng.integers(0, d)), same]
    got = cluster(sig, 20, 0.6).tolist()
    assert got == _cluster_reference(sig, 20, 0.6)
    assert 1 < len(set(got)) < n


def test_same_seed_same_clusters_and_ids() -> None:
    body = (
        "Hi {}, your {} order J00{} ships on {} May. We will text you when the van is near, "
        "and you can change the day in the app at any time. Thanks, Sam"
    )
    names, items = ["Ana", "Ben", "Cy", "Dee"], ["lamp", "chair", "table", "rug"]
    texts = [
        body.format(n, it, i, i + 1) for i, (n, it) in enumerate(zip(names, items, strict=True))
    ] * 3
    texts.append("A different note written by hand for one person only, about their garden.")
    a, b = (
        near_duplicates(pa.array(texts), Params(seed=5)),
        near_duplicates(pa.array(texts), Params(seed=5)),
    )
    assert a.cluster.tolist() == b.cluster.tolist()
    assert a.cluster_id.to_pylist() == b.cluster_id.to_pylist()
    assert a.similarity[:-1].tolist() == b.similarity[:-1].tolist()
    assert len(set(a.text[:-1].tolist())) == 4  # four wordings (the item differs)...
    assert set(a.cluster[:-1].tolist()) == {0}  # ...one template
    assert 0.6 < a.similarity[1] < 1 and a.similarity[4] == 1
    c = near_duplicates(pa.array(texts), Params(seed=6))
    assert c.cluster.tolist() == a.cluster.tolist()  # a clear case does not depend on the seed
    assert a.cluster[-1] == len(texts) - 1


def test_bad_settings_name_the_fix(tmp_path: Path) -> None:
    with sawubona.open(tmp_path / "s.duckdb") as store:
        store.ingest(_write(tmp_path / "w", _hand_world()))
        with pytest.raises(SawubonaError, match=r"bands = 30 equal bands; use a number"):
            runner.analyze(store, ["touch"], settings={"touch.bands": "30"})


# --------------------------------------------------------------------------- a hand-built world

T0 = dt.datetime(2024, 5, 1, 9, 0)
TEMPLATE = "Hi {}, thanks for your order {}. It will arrive by {} May. The Shop team"
PERSONAL = [
    "Dear Ana, I rang the depot myself and your parcel is on the van - Sam",
    "Ben, so sorry about the broken lid. I've put a new one in the post today, Sam",
    "Hello Cy, I checked with the kitchen and the cake is gluten free. Enjoy it! Sam",
]


def _hand_world() -> dict[str, pd.DataFrame]:
    rows: list[dict[str, Any]] = []

    def add(cust: str, minutes: int, **kw: Any) -> None:
        rows.append(
            {
                "touchpoint_id": f"t{len(rows) + 1}",
                "customer_id": cust,
                "at": T0 + dt.timedelta(minutes=minutes),
                "channel": kw.pop("channel", "email"),
                "direction": kw.pop("direction", "outbound"),
                **kw,
            }
        )

    names = {"c1": "Ana", "c2": "Ben", "c3": "Cy", "c4": "Dee", "c5": "Eli"}
    for k, (cust, name) in enumerate(names.items()):  # one template, no template_id
        add(cust, k, actor="system", kind="notification", text=TEMPLATE.format(name, f"J{k}", k))
    add(
        "c4",
        10,
        actor="person",
        agent_id="a1",
        team="care",
        kind="reply",
        text=TEMPLATE.format("Dee", "J9", 9),
    )  # a person sends the same template
    add("c5", 11, actor="bot", kind="reply", text="Hi Eli! I'm the assistant. How can I help?")
    add("c5", 12, actor="system", kind="marketing", text="Eli, 20% off today only!")
    for k, text in enumerate(PERSONAL):  # c1..c3 hear from a person
        add(
            f"c{k + 1}", 20 + k, actor="person", agent_id="a2", team="care", kind="reply", text=text
        )
    add("c3", 30, actor="person", agent_id="a2", team="care", kind="callback", channel="phone")
    # a template id set on a message a person wrote herself
    add(
        "c4",
        31,
        actor="person",
        agent_id="a3",
        team="sales",
        kind="reply",
        template_id="tpl_hello",
        text="Dee, lovely to meet you at the fair, I'll send the plans.",
    )
    add("c5", 40, direction="inbound", actor="customer", kind="inquiry", text="Where is it?")
    add(
        "c1",
        60 * 24 * 30,
        actor="person",
        agent_id="a2",
        team="care",
        kind="reply",
        text="Ana, one month on: how is the new lid holding up? Sam",
    )  # after as_of below
    customers = pd.DataFrame(
        {"customer_id": list(names), "name": [f"{n} Smith" for n in names.values()]}
    )
    return {"customers": customers, "touchpoints": pd.DataFrame(rows)}


def _write(folder: Path, frames: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%S")
    return folder


@pytest.fixture
def hand(tmp_path: Path, store: sawubona.Store) -> sawubona.Store:
    store.ingest(_write(tmp_path / "w", _hand_world()))
    runner.analyze(store, ["touch"], as_of="2024-05-02")
    return store


def test_hand_world_touches(hand: sawubona.Store) -> None:
    m = table(hand, "touch_messages").set_index("touchpoint_id")
    assert len(m) == 13  # outbound up to as_of; the inbound and the later reply are not here
    assert set(m.loc[["t1", "t2", "t3", "t4", "t5"], "touch"]) == {"system"}
    assert m.loc["t6", "touch"] == "templated"  # a person sending the system's text
    r = rows(hand, "touch_messages", "touchpoint_id")
    assert r["t1"]["cluster_id"] == r["t6"]["cluster_id"]
    assert r["t6"]["cluster_recipients"] == 5 and r["t6"]["similarity"] > 0.6
    assert (m.loc["t7", "touch"], m.loc["t8", "touch"]) == ("bot", "marketing")
    assert set(m.loc[["t9", "t10", "t11"], "touch"]) == {"personal"}
    assert m.loc[["t9", "t10", "t11"], "cluster_id"].isna().all()
    assert m.loc["t12", "touch"] == "spoken"
    assert m.loc["t13", "touch"] == "templated"  # a template id is used as given

    c = table(hand, "touch_customers").set_index("customer_id")
    assert c.loc["c3", "person_touches"] == 2 and c.loc["c3", "personal"] == 1
    assert c.loc["c1", "last_personal_at"] == T0 + dt.timedelta(minutes=20)
    assert c.loc["c1", "days_since_personal"] == pytest.approx(
        (dt.datetime(2024, 5, 2, 23, 59, 59, 999999) - T0 - dt.timedelta(minutes=20))
        / dt.timedelta(days=1)
    )
    only = table(hand, "touch_only_machines")
    assert only.customer_id.tolist() == ["c5", "c4"]  # c5 wrote to us: first
    assert only.wrote_to_us.tolist() == [True, False]
    c5 = only.set_index("customer_id").loc["c5"]
    assert (c5.bot, c5.marketing, c5.system, c5.templated) == (1, 1, 1, 0)

    tpl = table(hand, "touch_templates")
    row = tpl[tpl.is_template].iloc[0]
    assert (row.messages, row.recipients, row.core_recipients) == (6, 5, 5)
    assert (
        row.example
        == "Hi {name}, thanks for your order {ref}. It will arrive by {date}. The Shop team"
    )
    ids = table(hand, "touch_template_ids").set_index("template_id")
    assert ids.loc["tpl_hello", "share_template_like"] == 0
    f = table(hand, "findings")
    assert "touch_only_machines" in set(f.table_name)
    assert f.key.str.contains("template_id_unlike_text").any()


def test_hand_world_teams(hand: sawubona.Store) -> None:
    teams = rows(hand, "touch_teams", "team")
    care = teams["care"]
    assert (care["written"], care["templated"], care["personal"]) == (4, 1, 3)
    assert care["template_share"] == 0.25
    assert care["low"] < 0.25 < care["high"]
    assert not any(t["above_rest"] for t in teams.values())  # four messages prove nothing


def test_as_of_hides_later_messages(tmp_path: Path, store: sawubona.Store) -> None:
    store.ingest(_write(tmp_path / "w", _hand_world()))
    runner.analyze(store, ["touch"])  # as_of = the latest event: the month-later reply
    c = table(store, "touch_customers").set_index("customer_id")
    assert c.loc["c1", "personal"] == 2


def test_no_outbound_messages_is_said(tmp_path: Path, store: sawubona.Store) -> None:
    world = _hand_world()
    tp = world["touchpoints"]
    world["touchpoints"] = tp[tp.direction == "inbound"]
    store.ingest(_write(tmp_path / "w", world))
    report = runner.analyze(store, ["touch"])
    assert report.lenses[0].status == "ran"
    assert report.lenses[0].message.startswith("no outbound touchpoints up to")
    assert store.count("touch_messages") == 0 and store.count("touch_customers") == 1


def test_columns_are_as_declared_and_documented(hand: sawubona.Store) -> None:
    doc = DOC.read_text(encoding="utf-8")
    for name, columns in COLUMNS.items():
        assert tuple(hand.table(name).columns) == tuple(columns), name
        assert f"`{name}`" in doc, name
        for col in columns:
            assert f"`{col}`" in doc, (name, col)


def test_every_setting_is_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert (LENS.name, LENS.needs, LENS.uses, LENS.after) == (
        "touch",
        ("touchpoints",),
        ("customers",),
        (),
    )
    assert lenses.REGISTRY["touch"] == "touch"
    for s in LENS.settings:
        assert re.search(rf"`{s.name}`\s*\|\s*`?{re.escape(str(s.default))}`?", doc), s.name


# --------------------------------------------------------------------------- planted truth


def _run_on_parquet(folder: Path) -> dict[str, pd.DataFrame]:
    """The lens over DuckDB reading a demo world's Parquet files (no store needed)."""
    con = ibis.duckdb.connect()
    tables = {
        p.stem: con.read_parquet(str(p), table_name=p.stem)
        for p in sorted(folder.glob("*.parquet"))
        if p.stem in schema.TABLE_BY_NAME
    }
    as_of = tables["touchpoints"].at.max().execute().to_pydatetime()
    out = LENS.run(LensInput(tables=tables, results={}, as_of=as_of, settings={}))
    return {k: v.to_pandas() for k, v in out.tables.items()}


def _scores(folder: Path, out: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Purity, recall and false-template rate against the planted classes.

    * recall: of planted templated messages with text, the share the lens puts in a
      template cluster — found from the text alone (template ids and actors ignored);
    * purity: in template clusters, the share of messages of the cluster's majority
      planted template (a personal message counts as a template of its own);
    * false_template: of planted personal messages, the share called templated;
    * only_machines precision and recall against the planted list.
    """
    truth = pd.read_parquet(folder / "truth" / "touchpoints.parquet")
    m = truth.merge(out["touch_messages"], on="touchpoint_id", how="left")
    assert m.touch.notna().all()
    tpl = out["touch_templates"]
    in_tpl = m.cluster_id.isin(set(tpl.cluster_id[tpl.is_template]))
    planted = m["class"] == "templated"
    written = planted & (m.words > 0)
    label = m.template.fillna("personal:" + m.touchpoint_id)
    groups = label[in_tpl].groupby(m.cluster_id[in_tpl])
    majority = groups.agg(lambda s: s.value_counts().iloc[0]).sum()
    personal = m["class"] == "personal"
    only_truth = set(pd.read_parquet(folder / "truth" / "only_templates.parquet").customer_id)
    only_found = set(out["touch_only_machines"].customer_id)
    both = len(only_truth & only_found)
    return {
        "recall": float(in_tpl[written].mean()),
        "purity": float(majority / in_tpl.sum()),
        "false_template": float((m.touch[personal] == "templated").mean()),
        "personal": float(personal.sum()),
        "only_precision": both / len(only_found),
        "only_recall": both / len(only_truth),
    }


@pytest.fixture(scope="module", params=["telco", "shop", "cafe"])
def planted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    folder = tmp_path_factory.mktemp(request.param)
    generate(folder, world=request.param, size=2500, seed=0)
    yield folder, _scores(folder, _run_on_parquet(folder))


def test_planted_templates_are_recovered(planted: tuple[Path, dict[str, float]]) -> None:
    _, s = planted
    assert s["recall"] >= 0.95, s
    assert s["purity"] >= 0.95, s
    assert s["personal"] > 500 and s["false_template"] <= 0.02, s


def test_customers_who_only_heard_from_machines(planted: tuple[Path, dict[str, float]]) -> None:
    _, s = planted
    assert s["only_precision"] >= 0.95 and s["only_recall"] >= 0.95, s


@pytest.mark.slow
def test_planted_truth_holds_in_a_bigger_world(tmp_path: Path) -> None:
    """With 8x more personal messages, chance near-duplicates must still not make templates."""
    generate(tmp_path, world="telco", size=20_000, seed=1)
    s = _scores(tmp_path, _run_on_parquet(tmp_path))
    assert s["recall"] >= 0.95 and s["purity"] >= 0.95 and s["false_template"] <= 0.02, s


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def twcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sawubona.Store]:
    folder = dataset("twcs")
    with sawubona.open(tmp_path_factory.mktemp("twcs") / "t.duckdb") as store:
        store.ingest(folder, adapter="twitter-support")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(lenses, "available", lambda: {"touch": LENS})
            report = runner.analyze(store, ["touch"])
        assert report.lenses[0].status == "ran"
        yield store


@pytest.mark.realdata
def test_twcs_brand_replies_with_different_handles_are_one_template(
    twcs: sawubona.Store,
) -> None:
    raw = pd.read_csv(dataset("twcs") / "sample.csv", dtype=str)
    wording = "Thanks for reaching out to us. We are always happy to help."
    same = raw[raw.text.str.contains(wording, regex=False)]
    assert len(same) == 3 and same.text.str.extract(r"^@(\d+)")[0].nunique() == 3
    m = table(twcs, "touch_messages").set_index("touchpoint_id")
    got = m.loc[same.tweet_id]
    assert got.cluster_id.nunique() == 1 and got.cluster_id.notna().all()
    assert (got.touch == "templated").all() and (got.similarity == 1).all()
    assert got.customer_id.nunique() == 3
    others = m[(m.team == "AppleSupport") & ~m.index.isin(same.tweet_id)]
    assert len(others) >= 8 and (others.touch == "personal").all()
    tpl = table(twcs, "touch_templates").set_index("cluster_id").loc[got.cluster_id.iloc[0]]
    assert tpl.example.startswith("{handle} " + wording) and tpl.example.endswith("{url}")
    assert (tpl.recipients, tpl.teams, tpl.is_template) == (3, "AppleSupport", True)


@pytest.mark.realdata
def test_twcs_sign_offs_and_names_are_masked(twcs: sawubona.Store) -> None:
    """Sign-offs (^MM, /AY, - Paige) and addressed names (Miriam, Thomas) do not split replies."""
    tp = table(twcs, "touchpoints").set_index("touchpoint_id")
    out = tp[tp.direction == "outbound"]
    tok = tokenise(pa.array(out.text.tolist()))
    assert {"miriam", "thomas"} <= tok.names
    words = [tok.words(i) for i in range(tok.n)]
    assert not any(w[-1] in ("mm", "ay", "paige", "hp") for w in words if w)
    c = table(twcs, "touch_customers")
    assert len(c) == tp.customer_id.nunique()
    assert c.outbound.sum() == len(out)


def test_distinct_per_group_and_joined_values_match_python() -> None:
    rng = np.random.default_rng(3)
    group = rng.integers(0, 50, 5000)
    value = rng.integers(-1, 40, 5000)  # -1: no value
    expected = [
        len({v for g, v in zip(group, value, strict=True) if g == k and v >= 0}) for k in range(60)
    ]
    assert distinct_per_group(group, value, 60).tolist() == expected
    lists = pa.array([["b", "a", None, "b"], [], None, ["é", "z", "A"], [None]])
    want = [", ".join(sorted({v for v in (x or []) if v is not None})) for x in lists.to_pylist()]
    assert _joined(lists).to_pylist() == want
