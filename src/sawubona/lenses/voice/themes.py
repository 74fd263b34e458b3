"""Comment themes per score band, with the comments behind each theme.

Tokenisation (Arrow compute kernels, vectorised over all comments): lower case,
accents removed (Unicode NFKD without combining marks, so ``não`` and ``nao``
meet), apostrophes dropped, split on anything that is not a letter or digit. Each
comment's **language** is English or Portuguese by the function words only one of
them uses (plus one vote for Portuguese when the text carries its diacritics;
``und`` when undecided), and only *that* language's stop words are removed — so
English "no" and "not" stay (they carry meaning: "no signal") while Portuguese "no"
("in the") goes. One-letter words count for the language ("o", "a", "e") but are
never themes. Negations stay in both languages and may start a two-word phrase
("not fixed", "nao recebi").

Themes are one- and two-word phrases. Each phrase is counted once per comment; its
**distinctiveness** for a band is the log-odds ratio with an informative Dirichlet
prior of Monroe, Colaresi & Quinn (2008, "Fightin' words", Political Analysis 16(4),
§3.5), z = δ/σ, with the instrument's comments as the prior. Per band, the
phrases used in at least ``min_theme_comments`` comments and more typical of the
band than of the others (z > 0) are listed by z, at most ``themes_per_band``.
The share of the band's comments using a phrase has a Wilson interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.stats import wilson

#: (instrument, band, lowest score, highest score)
BANDS: tuple[tuple[str, str, int, int], ...] = (
    ("nps", "detractor", 0, 6),
    ("nps", "passive", 7, 8),
    ("nps", "promoter", 9, 10),
    ("csat", "low", 1, 2),
    ("csat", "neutral", 3, 3),
    ("csat", "high", 4, 5),
    ("ces", "hard", 1, 3),
    ("ces", "neutral", 4, 4),
    ("ces", "easy", 5, 7),
)

NEGATIONS = frozenset({"not", "no", "never", "nothing", "nobody", "nao", "nunca", "nem", "nada"})

_EN_WORDS = """a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing dont down during each few
for from further had has have having he her here hers herself him himself his how i id if im
in into is it its itself ive just me more most my myself of off on once only or other our ours
ourselves out over own same she should so some such than that thats the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
also get got one us even really still much well back ill youre theyre weve wasnt isnt didnt
cant wont"""

_PT_WORDS = """a ao aos aquela aquelas aquele aqueles aquilo as ate com como da das de dela delas
dele deles depois do dos e ela elas ele eles em entre era eram essa essas esse esses esta estas
este estes eu foi fomos for foram ha isso isto ja la lhe lhes mais mas me mesmo meu meus minha
minhas muito na nas no nos nossa nossas nosso nossos num numa o os ou para pela pelas pelo pelos
por qual quando que quem se sem ser seu seus so sua suas tambem te tem tinha tu tua tuas um uma
voce voces vos estou estava sao pra pro ter tenho teve fui vai vou"""


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split()) - NEGATIONS


EN_STOP = _words(_EN_WORDS)
PT_STOP = _words(_PT_WORDS)


def tokenize(comments: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(comment index, token) of every token, in order."""
    text = pc.utf8_lower(comments)
    text = pc.utf8_normalize(text, form="NFKD")
    text = pc.replace_substring_regex(text, pattern=r"\p{Mn}+|['’`]", replacement="")
    parts = pc.split_pattern_regex(text, pattern=r"[^\p{L}\p{N}]+")
    parent = np.asarray(pc.list_parent_indices(parts))
    tokens = pc.list_flatten(parts)
    keep = pc.greater(pc.utf8_length(tokens), 0)
    return parent[np.asarray(keep)], tokens.filter(keep)


EN_MARKS = (EN_STOP - PT_STOP) | {"not", "never", "nothing", "nobody"}
PT_MARKS = (PT_STOP - EN_STOP) | {"nao", "nunca", "nem", "nada"}


def _isin(tokens: pa.Array, words: frozenset[str] | set[str]) -> np.ndarray:
    found = pc.is_in(tokens, value_set=pa.array(sorted(words), pa.string()))
    return np.asarray(found.fill_null(False), dtype=bool)


def languages(
    parent: np.ndarray, tokens: pa.Array, n_comments: int, comments: pa.Array | None = None
) -> np.ndarray:
    """Per comment: ``en``, ``pt`` or ``und`` — by the function words only one of the two
    languages uses, and (given the raw ``comments``) one more vote for Portuguese when the
    text carries its diacritics (ã, õ, ç, á, é, ...)."""
    e = np.bincount(parent, weights=_isin(tokens, EN_MARKS), minlength=n_comments)
    p = np.bincount(parent, weights=_isin(tokens, PT_MARKS), minlength=n_comments)
    if comments is not None:
        marks = pc.match_substring_regex(pc.utf8_lower(comments), "[ãõçáéíóúâêô]")
        p = p + np.asarray(marks.fill_null(False), dtype=float)
    return np.where(e > p, "en", np.where(p > e, "pt", "und"))


def phrase_table(parent: np.ndarray, tokens: pa.Array, lang: np.ndarray) -> pa.Table:
    """(comment, phrase, words), once per comment: content words and two-word phrases."""
    tl = lang[parent] if len(parent) else np.array([], dtype=object)
    in_en, in_pt = _isin(tokens, EN_STOP), _isin(tokens, PT_STOP)
    stop = np.where(tl == "en", in_en, np.where(tl == "pt", in_pt, in_en | in_pt))
    neg = _isin(tokens, NEGATIONS)
    short = np.asarray(pc.less(pc.utf8_length(tokens), 2), dtype=bool)
    content = ~stop & ~neg & ~short
    parts = [
        pa.table(
            {
                "comment": parent[content],
                "phrase": tokens.filter(pa.array(content)),
                "words": np.ones(int(content.sum()), np.int64),
            }
        )
    ]
    if len(tokens) > 1:
        ok = (parent[1:] == parent[:-1]) & (content[:-1] | neg[:-1]) & content[1:]
        idx = np.flatnonzero(ok)
        joined = pc.binary_join_element_wise(tokens.take(idx), tokens.take(idx + 1), " ")
        parts.append(
            pa.table(
                {"comment": parent[idx], "phrase": joined, "words": np.full(len(idx), 2, np.int64)}
            )
        )
    both = pa.concat_tables(parts)
    return both.group_by(["comment", "phrase", "words"], use_threads=False).aggregate([])


def phrases(parent: np.ndarray, tokens: pa.Array, lang: np.ndarray) -> pd.DataFrame:
    """:func:`phrase_table` as a DataFrame."""
    return phrase_table(parent, tokens, lang).to_pandas()


def themes(
    comments: pa.Table, per_band: int, min_comments: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``voice_themes`` and ``voice_theme_comments`` from scored comments
    (``survey_id, customer_id, instrument, score, comment``)."""
    df = comments.to_pandas()
    inst = df["instrument"].astype(str).to_numpy()
    score = df["score"].to_numpy(dtype=float)
    labels = np.full(len(df), None, dtype=object)
    for inst_name, band_name, lo, hi in BANDS:
        labels[(inst == inst_name) & (score >= lo) & (score <= hi)] = band_name
    df["band"] = labels
    df = df[df["band"].notna()].reset_index(drop=True)
    if df.empty:
        return pd.DataFrame(), pd.DataFrame()
    raw = pa.array(df["comment"].tolist(), pa.string())
    parent, tokens = tokenize(raw)
    lang = languages(parent, tokens, len(df), raw)
    ph = phrase_table(parent, tokens, lang)
    at = pa.array(ph.column("comment"))
    ph = ph.append_column(
        "instrument", pa.array(df["instrument"].astype(str).to_numpy(), pa.string()).take(at)
    )
    ph = ph.append_column("band", pa.array(df["band"].to_numpy(), pa.string()).take(at))
    band_sizes = df.groupby(["instrument", "band"]).size()
    inst_sizes = df.groupby("instrument").size()
    counts = (
        ph.group_by(["instrument", "band", "phrase", "words"], use_threads=False)
        .aggregate([("comment", "count")])
        .rename_columns(["instrument", "band", "phrase", "words", "k"])
        .to_pandas()
    )
    counts["k_all"] = counts.groupby(["instrument", "phrase"])["k"].transform("sum")
    rows: list[dict[str, Any]] = []
    for (instrument, band), block in counts.groupby(["instrument", "band"], sort=True):
        n_band = float(band_sizes[(instrument, band)])
        n_inst = float(inst_sizes[instrument])
        n_other = n_inst - n_band
        y_i = block["k"].to_numpy(float)
        y_j = block["k_all"].to_numpy(float) - y_i
        # Monroe et al. (2008) eq. 16–22, documents as the unit, prior = instrument counts
        alpha = block["k_all"].to_numpy(float)
        a0 = n_inst
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.log((y_i + alpha) / (n_band + a0 - y_i - alpha)) - np.log(
                (y_j + alpha) / (n_other + a0 - y_j - alpha)
            )
            z = d / np.sqrt(1 / (y_i + alpha) + 1 / (y_j + alpha))
        block = block.assign(z=z, share=100 * y_i / n_band, n_band=n_band, n_other=n_other)
        block = block.assign(other_share=np.where(n_other > 0, 100 * y_j / n_other, np.nan))
        block = block[(block["k"] >= min_comments) & (block["z"] > 0)]
        block = block.sort_values(["z", "k", "phrase"], ascending=[False, False, True])
        for rank, r in enumerate(block.head(per_band).to_dict("records"), start=1):
            low, high = wilson(r["k"], r["n_band"])
            rows.append(
                {
                    "instrument": instrument,
                    "band": band,
                    "rank": rank,
                    "phrase": r["phrase"],
                    "words": int(r["words"]),
                    "comments": int(r["k"]),
                    "band_comments": int(r["n_band"]),
                    "share": float(r["share"]),
                    "share_low": 100 * float(low),
                    "share_high": 100 * float(high),
                    "other_share": float(r["other_share"]),
                    "distinctiveness_z": float(r["z"]),
                }
            )
    table = pd.DataFrame(rows)
    if table.empty:
        return table, pd.DataFrame()

    def key(a: Any, b: Any, c: Any) -> Any:
        return pc.binary_join_element_wise(a, b, c, "\x1f")

    wanted = key(
        pa.array(table["instrument"].astype(str).tolist()),
        pa.array(table["band"].astype(str).tolist()),
        pa.array(table["phrase"].astype(str).tolist()),
    )
    mask = pc.is_in(key(ph["instrument"], ph["band"], ph["phrase"]), value_set=wanted)
    links = ph.filter(mask).to_pandas()
    links = links.sort_values(["instrument", "band", "phrase", "comment"])
    src = df.iloc[links["comment"].to_numpy()]
    drill = pd.DataFrame(
        {
            "instrument": links["instrument"].to_numpy(),
            "band": links["band"].to_numpy(),
            "phrase": links["phrase"].to_numpy(),
            "survey_id": src["survey_id"].to_numpy(),
            "customer_id": src["customer_id"].to_numpy(),
            "score": src["score"].to_numpy(),
            "language": lang[links["comment"].to_numpy()],
            "comment": src["comment"].to_numpy(),
        }
    )
    dominant = drill.groupby(["instrument", "band", "phrase"])["language"].agg(
        lambda s: s.mode().iloc[0]
    )
    table["language"] = [
        dominant.get((i, b, p), "und")
        for i, b, p in zip(table["instrument"], table["band"], table["phrase"], strict=True)
    ]
    return table, drill
