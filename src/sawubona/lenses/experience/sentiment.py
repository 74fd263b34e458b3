"""Comment sentiment: a pluggable scorer, and a lexicon scorer that needs nothing.

A scorer turns an Arrow array of texts into an Arrow array of scores in
[−1, 1] (negative = unhappy), with **null meaning "not scored"** (a language it
does not read, an empty text) — never 0, which means "scored, neutral".

The default :class:`LexiconScorer` reads **English and Portuguese** with small
hand-written lexicons (about 200 words or phrases each, valence −3…+3), written
here for sawubona: no network, no model download. Per text it

1. normalises (NFKD, accents removed, lower case; ``n't`` → `` not``) and
   replaces a few multi-word phrases ("above and beyond", "waste of time", "sem
   problemas", "deixa a desejar"…) by one token;
2. detects the language: the one whose stop words and lexicon words occur more
   often in the text (at least two, or one lexicon word); otherwise the text is
   **unscored** (null) — Spanish, French, German… comments stay null, they are
   not counted as neutral;
3. sums the valences of that language's words; a word within three tokens after a
   negator ("not", "never", "não", "nunca", "sem"…) counts −0.74× its valence;
   a word right after an intensifier ("very", "muito", "super"…) counts 1.5×;
4. squashes the sum ``s`` to ``s / sqrt(s² + 15)`` (the normalisation of VADER,
   Hutto & Gilbert 2014), so one strong word gives about ±0.6.

Everything is vectorised over the whole array with pyarrow and NumPy (no Python
loop per text). Register another scorer (for example a multilingual model that
is installed and works offline) with :func:`register_scorer` and choose it with
the lens setting ``experience.sentiment=NAME``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.experience.lexicon import (
    EN_LEXICON,
    INTENSIFIERS,
    NEGATORS,
    PHRASES,
    PT_LEXICON,
    STOPWORDS,
)

NEGATION_FACTOR = -0.74
INTENSIFIER_FACTOR = 1.5
NEGATION_SCOPE = 3
ALPHA = 15.0
#: a token marking a clause break (punctuation): negation does not reach past it
BREAK = "xbreakx"


class SentimentScorer(Protocol):
    """Scores texts in [−1, 1]; null = not scored (a language it does not read)."""

    name: str

    def score(self, texts: pa.Array | pa.ChunkedArray) -> pa.Array: ...


def normalise(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lower case, accents removed, ``n't`` → `` not``, phrases joined into one token."""
    x = pc.utf8_normalize(texts, "NFKD")
    x = pc.replace_substring_regex(x, r"\p{Mn}", "")
    x = pc.utf8_lower(x)
    x = pc.replace_substring_regex(x, r"n[\x{2019}']t\b", " not")
    x = pc.replace_substring_regex(x, r"[.,;:!?()\n]+", f" {BREAK} ")
    x = pc.replace_substring_regex(x, r"[^\p{L}\p{N}]+", " ")
    x = pc.binary_join_element_wise(" ", x, " ", "")  # pad so phrases match at the edges
    for phrase, token in PHRASES.items():
        x = pc.replace_substring(x, f" {phrase} ", f" {token} ")
    return x  # type: ignore[no-any-return]


class LexiconScorer:
    """English and Portuguese lexicon scorer (see the module docstring)."""

    name = "lexicon"

    def __init__(self, languages: tuple[str, ...] = ("en", "pt")) -> None:
        lexicons = {"en": EN_LEXICON, "pt": PT_LEXICON}
        self.languages = languages
        words: list[str] = []
        for lang in languages:
            words += list(lexicons[lang]) + list(STOPWORDS[lang])
            words += list(NEGATORS[lang]) + list(INTENSIFIERS[lang])
        self.vocab = pa.array(sorted(set(words)), pa.string())
        vocab = self.vocab.to_pylist()
        n_lang = len(languages)
        self.valence = np.zeros((n_lang, len(vocab)))
        self.hit = np.zeros((n_lang, len(vocab)), bool)
        self.negator = np.zeros((n_lang, len(vocab)), bool)
        self.booster = np.zeros((n_lang, len(vocab)), bool)
        for li, lang in enumerate(languages):
            lex = lexicons[lang]
            for wi, w in enumerate(vocab):
                self.valence[li, wi] = lex.get(w, 0.0)
                self.hit[li, wi] = w in lex or w in STOPWORDS[lang]
                self.negator[li, wi] = w in NEGATORS[lang]
                self.booster[li, wi] = w in INTENSIFIERS[lang]

    def score(self, texts: pa.Array | pa.ChunkedArray) -> pa.Array:
        arr = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
        n = len(arr)
        if n == 0:
            return pa.array([], pa.float64())
        tokens = pc.utf8_split_whitespace(normalise(arr))
        parent = np.asarray(pc.list_parent_indices(tokens))
        flat = pc.list_flatten(tokens)
        idx = pc.fill_null(pc.index_in(flat, value_set=self.vocab), -1)
        word = np.asarray(idx, dtype=np.int64)
        found = word >= 0
        safe = np.maximum(word, 0)
        clause = np.cumsum(np.asarray(pc.equal(flat, BREAK)))
        same = (parent[:-1] == parent[1:]) & (clause[:-1] == clause[1:])
        # language: the one with more stop-word and lexicon hits (ties: unscored)
        hits = np.stack(
            [
                np.bincount(parent, (self.hit[li, safe] & found) * 1.0, n)
                for li in range(len(self.languages))
            ]
        )
        best = hits.argmax(axis=0)
        top = hits.max(axis=0)
        tied = (hits == top).sum(axis=0) > 1
        lang = best[parent]
        emotive = np.bincount(parent, (found & (self.valence[lang, safe] != 0)) * 1.0, n)
        # one stop word alone is no evidence ("das" is Portuguese and German)
        scored = ((top >= 2) | ((top >= 1) & (emotive >= 1))) & ~tied
        val = np.where(found, self.valence[lang, safe], 0.0)
        neg = found & self.negator[lang, safe]
        boost = found & self.booster[lang, safe]
        factor = np.ones(len(val))
        m = len(val)
        for k in range(1, NEGATION_SCOPE + 1):
            prev_neg = np.zeros(m, bool)
            prev_neg[k:] = neg[:-k] & (parent[:-k] == parent[k:]) & (clause[:-k] == clause[k:])
            factor = np.where(prev_neg, NEGATION_FACTOR, factor)
        prev_boost = np.zeros(m, bool)
        prev_boost[1:] = boost[:-1] & same
        factor = np.where(prev_boost, factor * INTENSIFIER_FACTOR, factor)
        total = np.bincount(parent, val * factor, n)
        out = total / np.sqrt(total**2 + ALPHA)
        return pa.array(out, pa.float64(), mask=~scored)


class NoScorer:
    """Leaves every comment unscored (``experience.sentiment=none``)."""

    name = "none"

    def score(self, texts: pa.Array | pa.ChunkedArray) -> pa.Array:
        return pa.nulls(len(texts), pa.float64())


_SCORERS: dict[str, Callable[[], SentimentScorer]] = {
    "lexicon": LexiconScorer,
    "none": NoScorer,
}


def register_scorer(name: str, factory: Callable[[], SentimentScorer]) -> None:
    """Make a scorer available as ``experience.sentiment=<name>``."""
    _SCORERS[name] = factory


def scorer_names() -> list[str]:
    return sorted(_SCORERS)


def get_scorer(name: str) -> SentimentScorer:
    from sawubona.errors import SawubonaError

    if name not in _SCORERS:
        raise SawubonaError(f"no sentiment scorer {name!r}; use one of {', '.join(scorer_names())}")
    return _SCORERS[name]()
