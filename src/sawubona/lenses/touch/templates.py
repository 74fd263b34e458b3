"""Texts in, near-duplicate clusters out: normalise → deduplicate → MinHash → LSH.

:func:`near_duplicates` is the whole text side of the touch lens and knows
nothing about customers or tables: it takes the message texts (in time order)
and returns, per message, its cluster, the cluster's stable id and the
message's similarity to the cluster's first message.

Identical normalised texts (the common case for a template: only masked slots
differ) are collapsed first, so MinHash and LSH run once per distinct text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from sawubona.lenses.touch import cluster as lsh
from sawubona.lenses.touch.minhash import shingles, signatures, similarity, splitmix64
from sawubona.lenses.touch.normalise import Tokens, tokenise

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Params:
    """The tunables of near-duplicate detection (the lens settings of the same names)."""

    shingle_words: int = 3
    permutations: int = 128
    bands: int = 32
    threshold: float = 0.6
    seed: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` naming the fix when the values cannot work together."""
        if self.shingle_words < 1:
            raise ValueError(f"shingle_words = {self.shingle_words}: use 1 or more")
        if self.permutations < 1 or self.bands < 1 or self.permutations % self.bands:
            raise ValueError(
                f"permutations = {self.permutations} cannot be cut into bands = {self.bands} "
                "equal bands; use a number of bands that divides the permutations (128 and 32)"
            )
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold = {self.threshold}: use a similarity in (0, 1]")


@dataclass
class NearDuplicates:
    """Per message (in input order): its exact text, its cluster, its closeness to the first.

    ``text`` numbers the distinct normalised texts (``-1`` for a message
    without words): two messages with the same ``text`` read word for word the
    same once masked. ``cluster`` is the index of the cluster's first message
    (``-1`` without words); ``cluster_id`` the stable id of every cluster,
    ``"t"`` + 16 hex digits of the hash of its first message's normalised
    words (stable as long as that message stays the first); ``similarity`` the
    estimated Jaccard similarity of the message's shingles to the first
    message's (1 for identical normalised texts, NaN without words).
    """

    text: I64
    cluster: I64
    cluster_id: pa.Array  # dictionary-encoded (one string per cluster)
    similarity: npt.NDArray[np.float64]
    words: I64
    #: the normalised texts (their word hashes are let go of once the texts are signed)
    tokens: Tokens
    #: per message, its row in ``tokens`` (``-1``: no text)
    code: I64
    #: per message, the number of its cluster (``-1``: no words): its place in ``firsts``
    cluster_index: I64
    #: the first message of every cluster, ascending (``cluster_id``'s dictionary order)
    firsts: I64

    @property
    def distinct_texts(self) -> int:
        return int(self.text.max()) + 1 if len(self.text) else 0


def fingerprints(tokens: Tokens) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of each message's normalised word sequence (0 for no words).

    A polynomial in the word hashes, ``Σ h_j·P^j`` over the message's words
    (mod 2⁶⁴), then SplitMix64 with the length; computed in blocks of messages
    from prefix sums (the sum over a message is a difference of prefix sums,
    brought back to ``P^0`` by the inverse power of ``P``, odd so invertible).
    """
    fp = np.zeros(tokens.n, np.uint64)
    lengths = tokens.lengths
    for lo in range(0, tokens.n, BLOCK_MESSAGES):
        hi = min(lo + BLOCK_MESSAGES, tokens.n)
        w0, w1 = int(tokens.offsets[lo]), int(tokens.offsets[hi])
        if w1 == w0:
            continue
        powers, inverse = _powers(w1 - w0, _P), _powers(w1 - w0, _P_INVERSE)
        prefix = np.zeros(w1 - w0 + 1, np.uint64)
        np.cumsum(tokens.hashes[w0:w1] * powers, out=prefix[1:])
        some = lo + np.flatnonzero(lengths[lo:hi] > 0)
        start = tokens.offsets[some] - w0
        end = tokens.offsets[some + 1] - w0
        poly = (prefix[end] - prefix[start]) * inverse[start]
        fp[some] = splitmix64(poly ^ splitmix64(lengths[some].astype(np.uint64)))
    return fp


#: messages per block when fingerprinting, texts per block when signing
BLOCK_MESSAGES = 1 << 16
_P = np.uint64(0x9E3779B97F4A7C15)
_P_INVERSE = np.uint64(pow(int(_P), -1, 2**64))


def _powers(m: int, base: np.uint64) -> npt.NDArray[np.uint64]:
    """``base^k`` (mod 2⁶⁴) for ``k = 0..m-1``."""
    out = np.empty(m, np.uint64)
    out[0] = 1
    np.cumprod(np.full(m - 1, base, np.uint64), out=out[1:])
    return out


def _gather(tokens: Tokens, rows: I64) -> tuple[npt.NDArray[np.uint64], I64]:
    """The word hashes of messages ``rows``, flat, with their offsets."""
    lengths = tokens.lengths[rows]
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    index = np.repeat(tokens.offsets[rows] - offsets[:-1], lengths) + np.arange(offsets[-1])
    return tokens.hashes[index], offsets


def near_duplicates(
    texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array],
    params: Params,
    known_names: Iterable[str] = (),
    codes: I64 | None = None,
) -> NearDuplicates:
    """Cluster the messages' texts (in time order) into near-duplicates.

    Without ``codes``, ``texts`` holds one text per message. With ``codes``,
    ``texts`` holds distinct texts (an array or batches of them) and message
    ``m`` reads ``texts[codes[m]]`` (``-1``: no text), so a text sent to many
    customers is masked and split once; the clusters are the same either way.
    """
    params.check()
    tokens = tokenise(texts, known_names)
    pa.default_memory_pool().release_unused()  # the texts masked piece by piece, freed
    if codes is None:
        codes = np.arange(tokens.n, dtype=np.int64)
    codes = np.asarray(codes, np.int64)
    n = len(codes)
    words = np.r_[tokens.lengths, 0][codes]  # code -1 (no text) reads the last: 0 words
    with_words = np.flatnonzero(words > 0)
    if len(with_words) == 0:
        text, cluster, none = (np.full(n, -1, np.int64) for _ in range(3))
        nulls, nan = pa.nulls(n, pa.string()), np.full(n, np.nan)
        return NearDuplicates(text, cluster, nulls, nan, words, tokens, codes, none, none[:0])

    # One document per distinct normalised text (numbered in the order of their
    # hashes), found among the distinct texts rather than the messages; a document's
    # first message represents it. Everything below is per text or per document,
    # and only brought to the messages at the end.
    text_fp = fingerprints(tokens)
    used = np.zeros(tokens.n, np.bool_)
    used[codes[with_words]] = True
    in_doc = np.flatnonzero(used)
    doc_fp, doc_of_in_doc = np.unique(text_fp[in_doc], return_inverse=True)
    n_docs = len(doc_fp)
    doc_of_text = np.full(tokens.n, -1, np.int64)
    doc_of_text[in_doc] = doc_of_in_doc
    del used, doc_of_in_doc
    doc_of = doc_of_text[codes[with_words]]  # per message with words
    first = np.full(n_docs, np.iinfo(np.int64).max, np.int64)  # its first message
    np.minimum.at(first, doc_of, with_words)
    sig = np.empty((n_docs, params.permutations), np.uint32)
    for lo in range(0, n_docs, BLOCK_MESSAGES):
        hashes, offsets = _gather(tokens, codes[first[lo : lo + BLOCK_MESSAGES]])
        sh, sh_offsets = shingles(hashes, offsets, params.shingle_words)
        sig[lo : lo + BLOCK_MESSAGES] = signatures(sh, sh_offsets, params.permutations, params.seed)
    del hashes, offsets, sh, sh_offsets
    tokens = replace(tokens, hashes=np.zeros(0, np.uint64))  # signed: hashes let go of
    label = lsh.cluster(sig, params.bands, params.threshold)

    # A cluster is named after its first message (input order = time order).
    first_of_label = np.full(n_docs, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first_of_label, label, first)
    doc_cluster = first_of_label[label]  # per document: its cluster's first message
    del first_of_label
    doc_sim = similarity(sig, np.arange(n_docs), doc_of_text[codes[doc_cluster]])
    del sig
    firsts, doc_which = np.unique(doc_cluster, return_inverse=True)
    text = np.full(n, -1, np.int64)
    text[with_words] = doc_of
    cluster = np.full(n, -1, np.int64)
    cluster[with_words] = doc_cluster[doc_of]
    sim = np.full(n, np.nan)
    sim[with_words] = doc_sim[doc_of]
    ids = hex_ids(text_fp[codes[firsts]], "t", mask=np.zeros(len(firsts), np.bool_))
    index = np.full(n, -1, np.int64)
    index[with_words] = doc_which[doc_of]
    # one string per cluster, a number per message
    cluster_id = pa.DictionaryArray.from_arrays(
        pa.array(index.astype(np.int32), mask=index < 0), ids
    )
    return NearDuplicates(text, cluster, cluster_id, sim, words, tokens, codes, index, firsts)


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def hex_ids(values: npt.NDArray[np.uint64], prefix: str, mask: npt.NDArray[np.bool_]) -> pa.Array:
    """``prefix`` + 16 lower-case hex digits of each value (null where ``mask``)."""
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    digits = _HEX[((values[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)]
    head = np.frombuffer(prefix.encode(), np.uint8)
    chars = np.hstack([np.broadcast_to(head, (len(values), len(head))), digits])
    fixed = np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel()
    return pa.array(fixed, pa.binary(), mask=mask).cast(pa.string())
