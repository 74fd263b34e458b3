"""Near-duplicate clusters from MinHash signatures: LSH banding, verification, union.

1. **Banding.** The ``permutations`` signature values are cut into ``bands``
   bands of ``rows = permutations / bands`` values. Two documents whose values
   agree on a whole band fall in the same bucket of that band; a pair with
   Jaccard similarity ``s`` shares at least one bucket with probability
   ``1 − (1 − s^rows)^bands`` (128 permutations in 32 bands: 0.87 at s = 0.5,
   0.99 at s = 0.6, 0.02 at s = 0.15).
2. **Candidates.** Inside a bucket every document is paired with the bucket's
   first document only (a star, not all pairs), so the work stays linear
   even when a template fills a bucket with a hundred thousand messages.
   Pairs already in one cluster are skipped.
3. **Verification.** A candidate pair is kept when its estimated similarity
   (share of equal signature values over all permutations) reaches
   ``threshold``; this removes the chance collisions of step 1 (most
   candidates: common phrases fill buckets). The lowest 4 bits of the values
   are compared first: they agree wherever the values do, so a pair they
   turn away could not have reached the threshold (the same pairs are kept,
   reading an eighth of the memory).
4. **Union.** Kept pairs join clusters (connected components, SciPy), band
   after band; a cluster's label is its smallest document index, so labels do
   not depend on the order pairs were found in.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from sawubona.lenses.touch.minhash import similarity, splitmix64

I64 = npt.NDArray[np.int64]


def band_keys(sig: npt.NDArray[np.uint32], band: int, rows: int) -> npt.NDArray[np.uint64]:
    """One 64-bit key per document for band ``band``.

    The band's ``rows`` values are read two at a time as 64-bit words (a last odd
    one alone) and hashed with SplitMix64: equal bands give equal keys, different
    bands equal keys with probability about 2⁻⁶⁴.
    """
    values = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
    if rows % 2:
        values = np.hstack([values, np.zeros((len(values), 1), np.uint32)])
    words = values.view(np.uint64)
    key = splitmix64(words[:, 0] + np.uint64(band))
    for r in range(1, words.shape[1]):
        key = splitmix64(key ^ words[:, r])
    return key


def candidates(key: npt.NDArray[np.uint64]) -> tuple[I64, I64]:
    """Pairs (document, first document of its bucket) for every bucket of 2 or more.

    A bucket's first document is its smallest index; a bucket of one gives no pair.
    Most documents are alone in their bucket, so only those whose key's lowest bits
    are shared (counted in a table of about 2–4 slots per document) are sorted by
    key. Pairs come in document order (the rows compared next are read nearly in
    sequence).
    """
    n = len(key)
    none = np.zeros(0, np.int64)
    if n < 2:
        return none, none
    bits = min(max(n.bit_length() + 1, 10), 24)
    slot = np.bitwise_and(key, np.uint64((1 << bits) - 1)).view(np.intp)
    maybe = np.flatnonzero(np.bincount(slot, minlength=1 << bits)[slot] > 1)
    del slot
    if len(maybe) == 0:
        return none, none
    order = np.argsort(key[maybe])  # any order inside a bucket: its first is its minimum
    docs = maybe[order]
    sorted_keys = key[docs]
    first = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    smallest = np.minimum.reduceat(docs, np.flatnonzero(first))
    rep = smallest[np.cumsum(first) - 1]
    member = docs != rep
    rep_of = np.full(n, -1, np.int64)  # a document is a member of one bucket at most
    rep_of[docs[member]] = rep[member]
    i = np.flatnonzero(rep_of >= 0)
    return i, rep_of[i]


#: lowest bits of every signature value kept for the quick test (a nibble)
_NIBBLE = np.uint64(0x1111111111111111)


def low_nibbles(sig: npt.NDArray[np.uint32], block: int = 1 << 16) -> npt.NDArray[np.uint64]:
    """The lowest 4 bits of every signature value, 16 to a 64-bit word (an eighth of
    the memory); a row is padded with zeros to a whole number of words."""
    n, n_perm = sig.shape
    width = -(-n_perm // 16) * 16
    out = np.empty((n, width // 16), np.uint64)
    for lo in range(0, n, block):
        part = np.zeros((min(block, n - lo), width), np.uint8)
        part[:, :n_perm] = sig[lo : lo + block] & np.uint32(15)
        packed = part[:, 0::2] | (part[:, 1::2] << np.uint8(4))
        out[lo : lo + block] = np.ascontiguousarray(packed).view(np.uint64)
    return out


#: set bits of every byte value (for NumPy before 2.0, which has no ``bitwise_count``)
_BITS = np.array([bin(b).count("1") for b in range(256)], np.int64)


def bits_per_row_table(x: npt.NDArray[np.uint64]) -> I64:
    """Set bits in each row of ``x``, counted byte by byte from a table."""
    return _BITS[x.view(np.uint8)].sum(axis=1)


def _bits_per_row(x: npt.NDArray[np.uint64]) -> I64:
    """Set bits in each row of ``x`` (a population count where NumPy has one)."""
    count = getattr(np, "bitwise_count", None)
    if count is None:  # NumPy < 2.0
        return bits_per_row_table(x)
    out: I64 = count(x).sum(axis=1, dtype=np.int64)
    return out


def agreements(
    small: npt.NDArray[np.uint64], n_perm: int, i: I64, j: I64, block: int = 1 << 14
) -> I64:
    """Values whose lowest nibbles (:func:`low_nibbles`) rows ``i[m]`` and ``j[m]`` of
    ``small`` share, for every ``m`` (out of ``n_perm``; padding not counted)."""
    out = np.empty(len(i), np.int64)
    pad = small.shape[1] * 16 - n_perm  # zero nibbles, equal in every pair
    for lo in range(0, len(i), block):
        hi = lo + block
        x = small[i[lo:hi]] ^ small[j[lo:hi]]
        x |= x >> np.uint64(2)
        x |= x >> np.uint64(1)
        x &= _NIBBLE  # bit 0 of a nibble: set where the nibbles differ
        differ = _bits_per_row(x)
        out[lo:hi] = small.shape[1] * 16 - pad - differ
    return out


def _merge(labels: I64, i: I64, j: I64) -> None:
    """Union the clusters of ``i[m]`` and ``j[m]`` in place (label = smallest member)."""
    li, lj = labels[i], labels[j]
    nodes, inverse = np.unique(np.r_[li, lj], return_inverse=True)
    m = len(li)
    graph = sparse.coo_matrix(
        (np.ones(m, np.int8), (inverse[:m], inverse[m:])), shape=(len(nodes), len(nodes))
    )
    _, comp = connected_components(graph, directed=False)
    smallest = np.full(comp.max() + 1, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(smallest, comp, nodes)
    new_of_node = smallest[comp]
    pos = np.searchsorted(nodes, labels)
    pos_clipped = np.minimum(pos, len(nodes) - 1)
    hit = nodes[pos_clipped] == labels
    labels[hit] = new_of_node[pos_clipped[hit]]


def cluster(sig: npt.NDArray[np.uint32], bands: int, threshold: float) -> I64:
    """A cluster label per document (the smallest document index of its cluster)."""
    n, n_perm = sig.shape
    if bands < 1 or n_perm % bands:
        raise ValueError(f"{n_perm} permutations cannot be cut into {bands} equal bands")
    rows = n_perm // bands
    labels = np.arange(n, dtype=np.int64)
    if n < 2:
        return labels
    # Two signatures agree on at least as many lowest nibbles as whole values, so a
    # pair whose lowest nibbles alone do not reach the threshold cannot reach it: most
    # candidates (chance collisions) are turned away reading 64 bytes, not 512.
    small = low_nibbles(sig)
    for band in range(bands):
        i, j = candidates(band_keys(sig, band, rows))
        open_ = labels[i] != labels[j]
        i, j = i[open_], j[open_]
        if len(i) == 0:
            continue
        maybe = np.flatnonzero(agreements(small, n_perm, i, j) / n_perm >= threshold)
        i, j = i[maybe], j[maybe]
        keep = similarity(sig, i, j) >= threshold
        if keep.any():
            _merge(labels, i[keep], j[keep])
    return labels
