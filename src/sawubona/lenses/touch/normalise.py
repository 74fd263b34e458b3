"""Normalising outbound texts so that two fillings of one template read the same.

Vectorised over all messages: RE2 regular expressions in Arrow compute for the
masks, NumPy over the UTF-8 bytes for the words; nothing loops over messages
in Python.

1. **Masks** (:data:`MASKS`, applied in order, case kept): links → ``{url}``,
   e-mail addresses → ``{email}``, ``@handles`` → ``{handle}``, sign-offs
   (``^AB`` anywhere; ``/AY``, ``-AD``, ``- Mike`` at the end, before links and
   part counters such as ``2/2``) → ``{sign}``, dates (``3 July``, ``July 3rd,
   2024``, ``2024-07-03``, ``03/07/24``, ``on Monday``) → ``{date}``, times →
   ``{time}``, money (``£7.50``, ``10 USD``) → ``{amount}``, phone numbers →
   ``{phone}``, order ids and references (words mixing letters and digits,
   digit runs of five or more) → ``{ref}``, other numbers → ``{num}``.
2. **Words**: runs of ASCII letters and digits, ``_``, the mask braces and any
   non-ASCII character (so ``café`` and ``José`` stay whole) except
   typographic punctuation (U+00A0–U+00BF, U+2000–U+207F: no-break space,
   curly quotes, dashes, ellipsis), lower-cased (ASCII letters only).
3. **Names** → ``{name}``. A vocabulary of names is learnt from the texts: a
   capitalised word right after a greeting (``Hi Thomas``, ``Thanks Umar``),
   addressed after a comma (``…delayed, Beatner.``, ``Kind regards, Owen``),
   before the comma opening a message (``Jonah, your…``) or closing it after a
   full stop (``… sales. Amanda``), plus every capitalised word of the
   customers' names when that table is present. A candidate that also appears
   in lower case anywhere in the texts (``Sorry``, ``Will``) is an ordinary
   word, not a name. Every capitalised occurrence of a learnt name is masked,
   so the agent's name one message signs with is masked in all the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.touch.minhash import U64, hash_strings, splitmix64

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_ORD = r"(?:st|nd|rd|th)?"
_DATES = (
    rf"\b\d{{1,2}}{_ORD}(?:\s+of)?\s+{_MONTH}\b(?:,?\s+\d{{4}})?",
    rf"\b{_MONTH}\.?\s+\d{{1,2}}{_ORD}\b(?:,?\s+\d{{4}})?",
    r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2})?)?\b",
    r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b",
    # a weekday only after a word that makes it a date ("on Monday", not "Black Friday")
    r"(\b(?:on|by|this|next|last|until|till|from|before|after|every)\s+)"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day\b",
)

#: (what, RE2 pattern, replacement), applied in this order
MASKS: tuple[tuple[str, str, str], ...] = (
    ("url", r"(?i)\b(?:https?://|www\.)\S+", "{url}"),
    ("email", r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}", "{email}"),
    ("handle", r"@\w+", "{handle}"),
    ("sign", r"\^[A-Za-z]{1,20}\b", "{sign}"),
    ("sign", r"(\s)[/~–—-] ?[A-Z][A-Za-z]{0,19}((?: +(?:\{url\}|\d+/\d+))*) *$", "\\1{sign}\\2"),
    ("date", "(?i)" + "|".join(_DATES), "\\1{date}"),
    ("time", r"(?i)\b\d{1,2}(?:[:.]\d{2})?\s?[ap]\.?m\b\.?|\b\d{1,2}:\d{2}\b", "{time}"),
    (
        "amount",
        r"(?i)(?:[£$€¥₹₦]|\b(?:usd|gbp|eur|zar|aud|cad)\s?)\s?\d[\d,]*(?:\.\d+)?"
        r"|\b\d[\d,]*(?:\.\d+)?\s?(?:usd|gbp|eur|zar|dollars?|pounds?|euros?|rand|cents?)\b",
        "{amount}",
    ),
    ("phone", r"\+\d[\d ()-]{6,}\d|\b\d{2,}(?:[ ()-]{1,2}\d{2,}){2,}\b", "{phone}"),
    ("ref", r"\b(?:[A-Za-z_]+[-_]?\d[\w-]*|\d+[A-Za-z_][\w-]*|\d{5,})\b", "{ref}"),
    ("num", r"\b\d+(?:[.,]\d+)*\b", "{num}"),
)

_GREETING = (
    r"hi|hello|hey|hiya|dear|morning|afternoon|evening|thanks|thank you|sorry|welcome"
    r"|congrats|congratulations|good morning|good afternoon|good evening|howdy|cheers"
)
#: a capitalised word as the tokeniser sees it: A-Z, then lower-case or non-ASCII
_NAME = r"[A-Z][^\x00-\x40\x5b-\x60\x7b-\x7f]+"
#: patterns whose group ``n`` is a candidate name (Arrow needs named groups)
NAME_PATTERNS: tuple[str, ...] = (
    rf"(?i:\b(?:{_GREETING}))(?:\s+(?i:there|again|all))?[\s,]+(?P<n>{_NAME})",
    rf",\s*(?P<n>{_NAME})\s*(?:[!?.:;,]|\{{|$)",
    rf"^\s*(?P<n>{_NAME}),",
    rf"[.!?]\s+(?P<n>{_NAME})\s*(?:\{{sign\}}\s*)?$",
)
NAME_TOKEN = "{name}"
NAME_HASH = hash_strings(pa.array([NAME_TOKEN]))[0]

# Byte classes of the tokeniser.
_BYTES = np.arange(256)
WORD_BYTE = (
    ((ord("0") <= _BYTES) & (ord("9") >= _BYTES))
    | ((ord("A") <= _BYTES) & (ord("Z") >= _BYTES))
    | ((ord("a") <= _BYTES) & (ord("z") >= _BYTES))
    | np.isin(_BYTES, [ord("_"), ord("{"), ord("}")])
    | (_BYTES >= 0x80)
)
UPPER_BYTE = (ord("A") <= _BYTES) & (ord("Z") >= _BYTES)
LOWER_OF = np.where(UPPER_BYTE, _BYTES + 32, _BYTES).astype(np.uint64)
_POLY = np.uint64(0x100000001B3)
#: messages per block of the byte tokeniser (small blocks stay in the CPU cache)
BLOCK_MESSAGES = 1 << 12
#: texts masked at a time (bounds the temporaries of the regular expressions)
CHUNK_MESSAGES = 1 << 16
#: bits of the bitmap that pre-filters hash look-ups
_BITMAP_BITS = 20

#: the same words in Python (for display and tests): non-ASCII characters are word
#: characters except U+00A0–U+00BF (no-break space, «, », £, ...) and U+2000–U+207F
#: (typographic spaces, dashes, curly quotes, bullets, ellipsis)
_WORD_RE = re.compile("[0-9A-Za-z_{}\x80-\x9f\xc0-\u1fff\u2080-\U0010ffff]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NOT_WORD = "[^0-9A-Za-z_{}\\x{80}-\\x{9f}\\x{c0}-\\x{1fff}\\x{2080}-\\x{10ffff}]"


@dataclass
class Tokens:
    """Normalised words of ``n`` messages, flat, with per-message offsets.

    ``hashes`` is the stable 64-bit hash of each word (lower-cased, names
    masked); message ``i`` holds words ``offsets[i]:offsets[i + 1]``.
    ``masked`` holds the texts after :data:`MASKS`; ``names`` the learnt names
    (lower case).
    """

    offsets: npt.NDArray[np.int64]
    hashes: U64
    masked: pa.Array | pa.ChunkedArray
    names: frozenset[str]

    @property
    def n(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.diff(self.offsets)

    def words(self, i: int) -> list[str]:
        """The normalised words of message ``i`` (slow; for display and tests)."""
        out = []
        for w in _WORD_RE.findall(self.masked[i].as_py() or ""):
            lower = w.translate(_ASCII_LOWER)
            out.append(NAME_TOKEN if "A" <= w[0] <= "Z" and lower in self.names else lower)
        return out

    def readable(self, rows: npt.NDArray[np.int64]) -> pa.Array:
        """Messages ``rows`` masked for display: the masks, and learnt names as ``{name}``."""
        texts = self.masked.take(pa.array(rows, pa.int64())).cast(pa.string())
        if not self.names or len(rows) == 0:
            return texts
        names = "|".join(f"{n[0].upper()}(?i:{n[1:]})" for n in sorted(self.names))
        pattern = f"(^|{_NOT_WORD})(?:{names})($|{_NOT_WORD})"
        # twice, so that a name right after another ("Hi Ana Maria") is masked too
        for _ in range(2):
            texts = pc.replace_substring_regex(
                texts, pattern=pattern, replacement="\\1" + NAME_TOKEN + "\\2"
            )
        return texts


def _as_large(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    out = texts.cast(pa.large_string())
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return pc.fill_null(out, "")


#: for the masks of these positions in :data:`MASKS`, byte strings one of which a
#: text must hold for the mask to change it (``True``: compared with bit 0x20 set in
#: every byte of both, which lower-cases ASCII letters; RE2's ``(?i)`` also matches
#: ``ſ`` for ``s`` and ``K`` for ``k``, so a needle never holds those letters); the
#: masks are applied only to the texts that hold one. The regular expressions are
#: slow to say "no" (``(?i)\b`` or a class starts them), and most texts hold no link,
#: ``@`` or ``^``.
MASK_NEEDS: dict[int, tuple[tuple[bytes, bool], ...]] = {
    0: ((b"://", False), (b"www.", True)),  # url
    1: ((b"@", False),),  # email
    2: ((b"@", False),),  # handle
    3: ((b"^", False),),  # sign: ^AB
}


def _holding(texts: pa.Array, needles: tuple[tuple[bytes, bool], ...]) -> npt.NDArray[np.bool_]:
    """Which of ``texts`` (large strings) may hold one of ``needles`` (a superset)."""
    n = len(texts)
    out = np.zeros(n, np.bool_)
    _validity, offsets_buf, data_buf = texts.buffers()
    if n == 0 or data_buf is None:
        return out
    offsets = np.frombuffer(offsets_buf, np.int64)[texts.offset : texts.offset + n + 1]
    data = np.frombuffer(data_buf, np.uint8)[offsets[0] : offsets[-1]]
    for needle, fold in needles:
        want = bytes(b | 0x20 for b in needle) if fold else needle
        pos = _positions(data, want[0], fold)
        pos = pos[pos + len(want) <= len(data)]
        for j in range(1, len(want)):
            got = data[pos + j]
            pos = pos[((got | np.uint8(0x20)) if fold else got) == want[j]]
        out[np.searchsorted(offsets, pos + offsets[0], side="right") - 1] = True
    return out


def _positions(data: npt.NDArray[np.uint8], byte: int, fold: bool) -> npt.NDArray[np.int64]:
    """Where ``byte`` is in ``data`` (with bit 0x20 set first when ``fold``)."""
    found = []
    for lo in range(0, len(data), _FOLD_BLOCK):  # temporaries that stay in the cache
        part = data[lo : lo + _FOLD_BLOCK]
        hit = ((part | np.uint8(0x20)) if fold else part) == byte
        found.append(np.flatnonzero(hit) + lo)
    return np.concatenate(found) if found else np.zeros(0, np.int64)


def _mask_part(texts: pa.Array) -> pa.Array:
    for i, (_what, pattern, replacement) in enumerate(MASKS):
        needs = MASK_NEEDS.get(i)
        hit = _holding(texts, needs) if needs else None
        if hit is None or hit.all():
            texts = pc.replace_substring_regex(texts, pattern=pattern, replacement=replacement)
        elif hit.any():
            some = pc.replace_substring_regex(
                texts.filter(pa.array(hit)), pattern=pattern, replacement=replacement
            )
            texts = pc.replace_with_mask(texts, pa.array(hit), some)
    return texts


def mask(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Apply :data:`MASKS` to every text (case and punctuation kept), on two threads."""
    arr = _as_large(texts)
    if len(arr) < 2 * BLOCK_MESSAGES:
        return _mask_part(arr)
    half = len(arr) // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(_mask_part, [arr.slice(0, half), arr.slice(half)]))
    return pa.concat_arrays(parts)


#: bytes folded at a time (temporaries that stay in the CPU cache)
_FOLD_BLOCK = 1 << 20


def fold_digits(texts: pa.Array) -> pa.Array:
    """``texts`` with every ASCII digit ``1``–``9`` replaced by ``0`` (same lengths).

    :func:`mask` gives the same result for a text and its folded copy: no pattern
    of :data:`MASKS` names a particular digit (only ``\\d``, ``\\w``, ``\\S`` and
    counts of them, which a digit ``0`` meets as any other digit does), and no
    ASCII digit survives the masks (every word holding one is a ``{ref}`` or a
    ``{num}``, or went earlier into another mask). So texts that differ only in
    their digits — the same notice with another order number, amount or date —
    are masked and split once. A test checks it against :func:`mask`.
    """
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.string())
    validity, offsets, data = texts.buffers()
    if data is None or data.size == 0:
        return texts
    raw = np.frombuffer(data, np.uint8)
    folded = np.empty_like(raw)
    step = min(len(raw), _FOLD_BLOCK)
    low, digit = np.empty(step, np.uint8), np.empty(step, np.bool_)
    for lo in range(0, len(raw), step):  # blocks small enough for the CPU cache
        part, m = raw[lo : lo + step], len(raw[lo : lo + step])
        np.subtract(part, np.uint8(ord("1")), out=low[:m])
        np.less(low[:m], np.uint8(9), out=digit[:m])  # '1'..'9' (uint8 wraps below)
        np.bitwise_and(part, np.uint8(15), out=low[:m])  # a digit's value
        np.multiply(low[:m], digit[:m].view(np.uint8), out=low[:m])
        np.subtract(part, low[:m], out=folded[lo : lo + m])  # '5' - 5 = '0'
    buffers = [validity, offsets, pa.py_buffer(folded)]
    return pa.Array.from_buffers(texts.type, len(texts), buffers, texts.null_count, texts.offset)


def name_candidates(masked: pa.Array) -> set[str]:
    """Capitalised words in the places names stand (see the module docstring)."""
    found: set[str] = set()
    for pattern in NAME_PATTERNS:
        got = pc.struct_field(pc.extract_regex(masked, pattern=pattern), [0])
        found.update(v for v in pc.unique(got.drop_null()).to_pylist() if v)
    return found


Block = tuple[npt.NDArray[np.int64], U64, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]


def _words_of_block(block: pa.Array, powers: list[tuple[U64, U64]]) -> Block:
    """Word counts per message; per word: hash (lower-cased), capitalised, has upper case.

    The hash of a word is ``Σ (b_k + 1)·P^(k+1)`` over its lower-cased bytes
    ``b_0…`` (then SplitMix64 with its length), as in
    :func:`~sawubona.lenses.touch.minhash.hash_strings`. It comes from one pass:
    the word bytes of the block times consecutive powers of ``P``, summed per
    word, and shifted back by the inverse power of the word's first position.
    """
    n = len(block)
    none = np.zeros(0, np.bool_)
    empty: Block = (np.zeros(n, np.int64), np.zeros(0, np.uint64), none, none)
    if n == 0:
        return empty
    buffers = block.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[block.offset : block.offset + n + 1]
    lo, hi = int(offsets[0]), int(offsets[-1])
    if hi == lo:
        return empty
    data = np.frombuffer(buffers[2], dtype=np.uint8)[lo:hi]
    rel = offsets - lo
    word = WORD_BYTE[data]
    _unicode_separators(data, word)
    cut = np.zeros(len(data) + 1, np.bool_)
    cut[rel] = True  # a word never runs from one message into the next
    prev = np.r_[False, word[:-1]]
    nxt = np.r_[word[1:], False]
    starts = np.flatnonzero(word & (~prev | cut[:-1]))
    if len(starts) == 0:
        return empty
    ends = np.flatnonzero(word & (~nxt | cut[1:])) + 1
    lengths = ends - starts
    inside = data[word]
    first_in = np.r_[0, np.cumsum(lengths[:-1])]
    if len(inside) >= len(powers[0][0]):
        powers[0] = _powers(2 * len(inside))  # kept for the blocks that follow
    forward, inverse = powers[0]
    values = (LOWER_OF[inside] + np.uint64(1)) * forward[1 : len(inside) + 1]
    poly = np.add.reduceat(values, first_in) * inverse[first_in]
    h = splitmix64(poly ^ splitmix64(lengths.astype(np.uint64)))
    upper = UPPER_BYTE[inside]
    has_upper = np.logical_or.reduceat(upper, first_in)
    counts = np.diff(np.searchsorted(starts, rel)).astype(np.int64)
    return counts, h, upper[first_in], has_upper


_POLY_INVERSE = np.uint64(pow(int(_POLY), -1, 2**64))


def _powers(m: int) -> tuple[U64, U64]:
    """``P^k`` and ``P^-k`` (mod 2⁶⁴) for ``k = 0..m``."""
    tables = []
    for base in (_POLY, _POLY_INVERSE):
        table = np.empty(m + 1, np.uint64)
        table[0] = 1
        np.cumprod(np.full(m, base, np.uint64), out=table[1:])
        tables.append(table)
    return tables[0], tables[1]


def _unicode_separators(data: npt.NDArray[np.uint8], word: npt.NDArray[np.bool_]) -> None:
    """Mark U+2000–U+207F (E2 80–81 xx) and U+00A0–U+00BF (C2 A0–BF) as separators."""
    if len(data) < 2:
        return
    lead = np.flatnonzero(data[:-1] >= 0xC2)
    if len(lead) == 0:
        return
    second = data[lead + 1]
    two = lead[(data[lead] == 0xC2) & (second >= 0xA0) & (second <= 0xBF)]
    three = lead[(data[lead] == 0xE2) & ((second == 0x80) | (second == 0x81))]
    three = three[three + 2 < len(data)]
    for k in range(2):
        word[two + k] = False
    for k in range(3):
        word[three + k] = False


class _HashSet:
    """Membership of 64-bit hashes in a small set: a bitmap filter, then a sorted look-up."""

    def __init__(self, values: U64) -> None:
        self.values = np.unique(values)
        self.bitmap = np.zeros(1 << _BITMAP_BITS, np.bool_)
        self.bitmap[(self.values & np.uint64((1 << _BITMAP_BITS) - 1)).astype(np.intp)] = True

    def contains(self, h: U64) -> npt.NDArray[np.bool_]:
        out = np.zeros(len(h), np.bool_)
        if len(self.values) == 0:
            return out
        # the lowest bits are below 2**63: read in place as indices (no conversion pass)
        slot = np.bitwise_and(h, np.uint64((1 << _BITMAP_BITS) - 1)).view(np.intp)
        maybe = np.flatnonzero(self.bitmap[slot])
        del slot
        found = h[maybe]
        pos = np.minimum(np.searchsorted(self.values, found), len(self.values) - 1)
        out[maybe] = self.values[pos] == found
        return out


def tokenise(
    texts: pa.Array | pa.ChunkedArray | Iterable[pa.Array], known_names: Iterable[str] = ()
) -> Tokens:
    """Mask, split into words and name-mask ``texts`` (nulls count as empty texts).

    ``texts`` is an array or any iterable of arrays (batches read one at a time):
    the texts are masked and split in pieces of :data:`CHUNK_MESSAGES`, so the
    temporaries of the regular expressions stay bounded whatever the number of
    texts; only the masked texts and the word hashes are kept.
    """
    pieces: Iterable[pa.Array]
    if isinstance(texts, pa.ChunkedArray):
        pieces = texts.chunks
    elif isinstance(texts, pa.Array):
        pieces = [texts]
    else:
        pieces = texts
    candidates: set[str] = set()
    masked_parts: list[pa.Array] = []
    blocks: list[Block] = []
    powers = [_powers(1 << 20)]
    for piece in pieces:
        for lo in range(0, len(piece), CHUNK_MESSAGES):
            part = mask(piece.slice(lo, CHUNK_MESSAGES))
            candidates.update(name_candidates(part))
            masked_parts.append(part)
            for b in range(0, len(part), BLOCK_MESSAGES):
                block = part.slice(b, BLOCK_MESSAGES)
                blocks.append(_words_of_block(block, powers))
    masked = pa.chunked_array(masked_parts, pa.large_string())
    del masked_parts
    for name in known_names:
        candidates.update(re.findall(_NAME, name or ""))
    lower_candidates = sorted({c.translate(_ASCII_LOWER) for c in candidates})

    offsets = np.zeros(len(masked) + 1, np.int64)
    if not blocks:
        return Tokens(offsets, np.zeros(0, np.uint64), masked, frozenset())
    np.cumsum(np.concatenate([b[0] for b in blocks]), out=offsets[1:])
    h = np.concatenate([b[1] for b in blocks])
    capitalised = np.concatenate([b[2] for b in blocks])
    has_upper = np.concatenate([b[3] for b in blocks])
    del blocks

    # A candidate written in lower case anywhere is an ordinary word, not a name.
    cand_hash = hash_strings(pa.array(lower_candidates, pa.large_string()))
    maybe = np.flatnonzero(_HashSet(cand_hash).contains(h) & ~has_upper)
    seen_lower = _HashSet(h[maybe])
    is_name_cand = ~seen_lower.contains(cand_hash)
    names = frozenset(c for c, keep in zip(lower_candidates, is_name_cand, strict=True) if keep)
    cap = np.flatnonzero(capitalised)
    is_name = _HashSet(cand_hash[is_name_cand]).contains(h[cap])
    h[cap[is_name]] = NAME_HASH
    return Tokens(offsets, h, masked, names)
