"""Shared machinery of the demo worlds: the clock, ids, Arrow assembly and row sinks.

Everything here is vectorised: a world never loops over customers or rows, only
over a handful of templates, kinds or months. Times are integer microseconds
since the Unix epoch (UTC, whole seconds) until the very end, when they become
Arrow ``timestamp("us")`` columns.

Output columns are always derived from :data:`sawubona.schema.TABLES`:
:func:`assemble` takes whatever columns a world produced, checks each name
against the schema and fills every canonical column the world does not use
with nulls, in schema order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.schema import TABLE_BY_NAME

# --------------------------------------------------------------------------- clock

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

AS_OF_TEXT = "2025-06-30T23:59:59"
HISTORY_START_TEXT = "2023-07-01T00:00:00"
#: The world's end: no timestamp in any demo world is later than this.
AS_OF = int(np.datetime64(AS_OF_TEXT, "us").astype(np.int64))
#: Start of the two years of activity history.
HISTORY_START = int(np.datetime64(HISTORY_START_TEXT, "us").astype(np.int64))
CURRENCY = "GBP"

#: Period starts of the 12 monthly usage periods before ``AS_OF`` (telco).
USAGE_MONTHS = np.array(
    [
        np.datetime64(f"{y}-{m:02d}-01T00:00:00", "us")
        for y, m in [(2024, m) for m in range(7, 13)] + [(2025, m) for m in range(1, 7)]
    ]
).astype(np.int64)

I64 = np.int64


def to_seconds(t: np.ndarray) -> np.ndarray:
    """Round microsecond times down to whole seconds."""
    return (t // SECOND) * SECOND


def day_of(t: np.ndarray) -> np.ndarray:
    """Midnight of the day each time falls on."""
    return (t // DAY) * DAY


def month_index(t: np.ndarray) -> np.ndarray:
    """Index into :data:`USAGE_MONTHS` of the month each time falls in (-1 before)."""
    return np.searchsorted(USAGE_MONTHS, t, side="right") - 1


def iso(t: int) -> str:
    """An integer time as ``YYYY-MM-DDTHH:MM:SS``."""
    return str(np.datetime64(int(t), "us").astype("datetime64[s]"))


# --------------------------------------------------------------------------- random helpers


def choice_p(rng: np.random.Generator, n: int, p: Sequence[float] | np.ndarray) -> np.ndarray:
    """``n`` draws of an index with probabilities ``p`` (normalised), as int64."""
    cp = np.cumsum(np.asarray(p, dtype=float))
    cp /= cp[-1]
    return np.searchsorted(cp, rng.random(n), side="right").astype(I64)


def pick_count(n_pool: int, share: float, minimum: int) -> int:
    """How many of a pool to plant: ``share`` of it, at least ``minimum`` (if it fits)."""
    return int(min(n_pool, max(minimum, round(share * n_pool))))


def rank_in_group(group: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal, *sorted* ``group`` values."""
    n = len(group)
    if n == 0:
        return np.zeros(0, I64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n, dtype=I64) - np.repeat(starts, lengths)


def rank_from_end(group: np.ndarray) -> np.ndarray:
    """0-based position counted from the last row of each run of sorted ``group``."""
    n = len(group)
    if n == 0:
        return np.zeros(0, I64)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.repeat(starts + lengths, lengths) - 1 - np.arange(n, dtype=I64)


def group_any(group: np.ndarray, flag: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group 0..n_groups-1: is ``flag`` true for any of its rows."""
    return np.bincount(group[flag], minlength=n_groups) > 0


# --------------------------------------------------------------------------- ids and text


def format_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers`` (e.g. ``C0000001``), as an Arrow string array."""
    nums = np.asarray(numbers, dtype=I64) + 10**width
    s = pc.cast(pa.array(nums), pa.string())
    return pc.utf8_replace_slice(s, start=0, stop=1, replacement=prefix)


def labels(values: Sequence[str] | pa.Array, codes: np.ndarray) -> pa.Array:
    """Strings ``values[codes]``; a negative code gives null.

    Built as a dictionary array and decoded, which Arrow does several times faster
    than a ``take`` from a small pool.
    """
    pool = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    codes = np.asarray(codes, dtype=I64)
    neg = codes < 0
    if neg.any():
        idx = pa.array(np.where(neg, 0, codes), mask=neg)
    else:
        idx = pa.array(codes)
    if len(pool) == 0:
        return pa.nulls(len(codes), pa.string())
    return pa.DictionaryArray.from_arrays(idx, pool).cast(pa.string())


def join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and Python strings."""
    return pc.binary_join_element_wise(*parts, "")


def money_text(amount: np.ndarray) -> pa.Array:
    """Amounts as ``£12.50`` strings."""
    pence = np.round(np.asarray(amount, dtype=float) * 100).astype(I64)
    pounds = pc.cast(pa.array(pence // 100), pa.string())
    cents = pc.utf8_slice_codeunits(pc.cast(pa.array(pence % 100 + 100), pa.string()), 1)
    return join("£", pounds, ".", cents)


_DATE_POOL_START = HISTORY_START - 40 * DAY
_DATE_POOL_DAYS = 860


def _date_pool() -> pa.Array:
    days = np.arange(_DATE_POOL_DAYS, dtype=I64) * DAY + _DATE_POOL_START
    d = days.astype("datetime64[us]").astype("datetime64[D]")
    out = [f"{x.astype(object).day} {x.astype(object).strftime('%B')}" for x in d]
    return pa.array(out, pa.string())


_DATES: pa.Array | None = None


def date_text(t: np.ndarray) -> pa.Array:
    """Times as ``14 March`` strings (clipped to the history)."""
    global _DATES
    if _DATES is None:
        _DATES = _date_pool()
    k = np.clip((np.asarray(t) - _DATE_POOL_START) // DAY, 0, _DATE_POOL_DAYS - 1)
    return _DATES.take(pa.array(k))


def int_text(x: np.ndarray) -> pa.Array:
    """Integers as decimal strings."""
    return pc.cast(pa.array(np.asarray(x, dtype=I64)), pa.string())


# --------------------------------------------------------------------------- Arrow assembly

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("us"),
    "money": pa.float64(),
    "float": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "json": pa.string(),
}


def arrow_schema(name: str) -> pa.Schema:
    """The Arrow schema of canonical table ``name`` (columns in schema order)."""
    t = TABLE_BY_NAME[name]
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in t.columns])


def ts(t: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Integer microsecond times as an Arrow timestamp array; ``valid`` false gives null."""
    arr = np.asarray(t, dtype=I64).view("datetime64[us]")
    if valid is None:
        return pa.array(arr, pa.timestamp("us"))
    return pa.array(arr, pa.timestamp("us"), mask=~np.asarray(valid, dtype=bool))


def ts_opt(t: np.ndarray) -> pa.Array:
    """Times where a negative value means "none" (null)."""
    t = np.asarray(t, dtype=I64)
    return ts(np.where(t < 0, 0, t), t >= 0)


def num(x: np.ndarray, decimals: int | None = 2) -> pa.Array:
    """Floats as float64 (rounded); NaN gives null."""
    x = np.asarray(x, dtype=np.float64)
    if decimals is not None:
        x = np.round(x, decimals)
    nan = np.isnan(x)
    return pa.array(x, pa.float64(), mask=nan if nan.any() else None)


def assemble(name: str, n: int, columns: Mapping[str, pa.Array | np.ndarray | str]) -> pa.Table:
    """A canonical table from the columns a world produced; others are null.

    A plain string value is broadcast to every row. Unknown column names raise.
    """
    schema = arrow_schema(name)
    unknown = set(columns) - set(schema.names)
    if unknown:
        raise KeyError(f"{name} has no column(s) {sorted(unknown)}")
    arrays = []
    for f in schema:
        v = columns.get(f.name)
        if v is None:
            arrays.append(pa.nulls(n, f.type))
        elif isinstance(v, str):
            arrays.append(pa.array(np.full(n, v, dtype=object), f.type))
        elif isinstance(v, pa.ChunkedArray | pa.Array):
            arrays.append(v.cast(f.type) if v.type != f.type else v)
        else:
            arrays.append(pa.array(v, f.type))
        if len(arrays[-1]) != n:
            raise ValueError(f"{name}.{f.name} has {len(arrays[-1])} rows, expected {n}")
    return pa.Table.from_arrays(arrays, schema=schema)


# --------------------------------------------------------------------------- row sinks


class Sink:
    """Collects the columns of one table in pieces; concatenated once per block.

    ``spec`` maps a column to its NumPy dtype and fill value, or to ``"text"`` for
    an Arrow string column (null when not given).
    """

    def __init__(self, spec: Mapping[str, tuple[Any, Any] | str]) -> None:
        self.spec = dict(spec)
        self.parts: dict[str, list[Any]] = {k: [] for k in spec}
        self.n = 0

    def add(self, n: int, **cols: Any) -> None:
        unknown = set(cols) - set(self.spec)
        if unknown:
            raise KeyError(f"unknown sink column(s) {sorted(unknown)}")
        if n == 0:
            return
        for k, sp in self.spec.items():
            v = cols.get(k)
            if sp == "text":
                if v is None:
                    v = pa.nulls(n, pa.string())
                elif isinstance(v, str):
                    v = pa.array(np.full(n, v, dtype=object), pa.string())
                elif isinstance(v, pa.ChunkedArray):
                    v = v.combine_chunks()
                if len(v) != n:
                    raise ValueError(f"sink column {k}: {len(v)} rows, expected {n}")
                self.parts[k].append(v)
            else:
                assert not isinstance(sp, str)
                dtype, fill = sp
                if v is None:
                    v = np.full(n, fill, dtype=dtype)
                else:
                    v = np.broadcast_to(np.asarray(v, dtype=dtype), (n,))
                self.parts[k].append(v)
        self.n += n

    def columns(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, sp in self.spec.items():
            if sp == "text":
                out[k] = (
                    pa.concat_arrays(self.parts[k]) if self.parts[k] else pa.array([], pa.string())
                )
            else:
                assert not isinstance(sp, str)
                dtype, _ = sp
                out[k] = (
                    np.concatenate(self.parts[k]) if self.parts[k] else np.zeros(0, dtype=dtype)
                )
        return out


def take_cols(cols: Mapping[str, Any], index: np.ndarray) -> dict[str, Any]:
    """Rows ``index`` of every column (NumPy or Arrow)."""
    out: dict[str, Any] = {}
    idx_pa = pa.array(index)
    for k, v in cols.items():
        out[k] = v.take(idx_pa) if isinstance(v, pa.Array) else v[index]
    return out


# --------------------------------------------------------------------------- vocabularies

CHANNELS = ("email", "phone", "chat", "social", "store", "app", "web", "letter")
EMAIL, PHONE, CHAT, SOCIAL, STORE, APP, WEB, LETTER = range(8)
TP_KINDS = (
    "inquiry",
    "reply",
    "transfer",
    "callback",
    "apology",
    "notification",
    "marketing",
    "survey_invite",
    "acknowledgement",
    "follow_up",
    "complaint",
    "thanks",
    "pending",
)
(
    INQUIRY,
    REPLY,
    TRANSFER_K,
    CALLBACK_K,
    APOLOGY,
    NOTIFICATION,
    MARKETING,
    SURVEY_INVITE,
    ACKNOWLEDGEMENT,
    FOLLOW_UP,
    COMPLAINT,
    THANKS,
    PENDING,
) = range(13)
INBOUND, OUTBOUND = 0, 1
A_CUSTOMER, A_PERSON, A_BOT, A_SYSTEM = range(4)
PROMISE_KINDS = ("delivery", "callback", "reply", "refund", "fix", "order_ready", "plan_change")
ACTION_KINDS = (
    "upsell",
    "cross_sell",
    "price_rise",
    "fee",
    "penalty",
    "discount",
    "refund",
    "credit",
    "compensation",
    "downgrade_advice",
    "proactive_help",
    "gift",
    "retention_offer",
)
INSTRUMENTS = ("nps", "csat", "ces")
NPS, CSAT, CES = range(3)
TRIG_SYSTEM, TRIG_AGENT, TRIG_AUDIT = range(3)
ACHIEVED, FAILED, OPEN = range(3)
#: agent index meaning "the system" in promises.made_by
SYSTEM_AGENT = -2

TP_SPEC: dict[str, tuple[Any, Any] | str] = {
    "cust": (I64, -1),
    "journey": (I64, -1),
    "at": (I64, 0),
    "channel": (np.int16, 0),
    "direction": (np.int8, 1),
    "actor": (np.int8, A_SYSTEM),
    "agent": (np.int32, -1),
    "kind": (np.int16, 0),
    "text": "text",
    "tpl": (np.int16, -1),
    "show_tpl": (bool, False),
    "begging": (bool, False),
}
PROMISE_SPEC: dict[str, tuple[Any, Any] | str] = {
    "cust": (I64, -1),
    "journey": (I64, -1),
    "kind": (np.int16, 0),
    "made": (I64, 0),
    "due": (I64, 0),
    "made_by": (np.int32, SYSTEM_AGENT),
    "team": (np.int16, -1),
    "channel": (np.int16, -1),
    "kept": (I64, -1),
    "cancelled": (I64, -1),
    "cancel_reason": "text",
    #: planted: 0 none, 1 padded, 2 renegotiated (replaced), 3 the replacement, 4 paused
    "plant": (np.int8, 0),
    #: paused promises: when the clock was paused (a ``pending`` touchpoint)
    "pause_at": (I64, -1),
}
SURVEY_SPEC: dict[str, tuple[Any, Any] | str] = {
    "cust": (I64, -1),
    "journey": (I64, -1),
    "instrument": (np.int16, NPS),
    "invited": (I64, 0),
    "responded": (I64, -1),
    "score": (np.float64, np.nan),
    "comment": "text",
    "agent": (np.int32, -1),
    "team": (np.int16, -1),
    "trigger": (np.int8, TRIG_SYSTEM),
    "concession": (bool, False),
    "begged": (bool, False),
}
ACTION_SPEC: dict[str, tuple[Any, Any] | str] = {
    "cust": (I64, -1),
    "at": (I64, 0),
    "kind": (np.int16, 0),
    "amount": (np.float64, np.nan),
    "initiated": (np.int8, 0),
    "agent": (np.int32, -1),
    "journey": (I64, -1),
    "purpose": "text",
}

#: id prefixes and digit widths of the event tables
ID_FORMATS = {
    "journeys": ("J", 9),
    "touchpoints": ("M", 10),
    "promises": ("P", 9),
    "surveys": ("S", 9),
    "actions": ("X", 9),
}


def event_ids(table: str, numbers: np.ndarray) -> pa.Array:
    """Ids of rows ``numbers`` (0-based, global) of an event table: ``J000000001``..."""
    prefix, width = ID_FORMATS[table]
    return format_ids(prefix, np.asarray(numbers, dtype=I64) + 1, width)


def journey_table(
    number: np.ndarray,
    cust_ids: pa.Array,
    cust: np.ndarray,
    kind: Sequence[str] | pa.Array,
    kind_code: np.ndarray,
    started: np.ndarray,
    ended: np.ndarray,
    desired: pa.Array,
    outcome: np.ndarray,
    reason: pa.Array,
    value: np.ndarray,
) -> pa.Table:
    """The canonical ``journeys`` rows of a block (``ended`` < 0 and NaN value give null)."""
    n = len(number)
    has_value = ~np.isnan(value)
    return assemble(
        "journeys",
        n,
        {
            "journey_id": event_ids("journeys", number),
            "customer_id": labels(cust_ids, cust),
            "kind": labels(kind, kind_code),
            "started_at": ts(started),
            "ended_at": ts_opt(ended),
            "desired_outcome": desired,
            "outcome": labels(("achieved", "failed", "open"), outcome),
            "outcome_reason": reason,
            "value": num(value),
            "currency": labels((CURRENCY,), np.where(has_value, 0, -1)),
        },
    )


#: code of each action kind and promise kind
ACTION = {k: i for i, k in enumerate(ACTION_KINDS)}
PROMISE = {k: i for i, k in enumerate(PROMISE_KINDS)}


def uniform_time(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """``n`` durations uniform in [lo, hi] microseconds, whole seconds."""
    return to_seconds((lo + rng.random(n) * (hi - lo)).astype(I64))


def subset(slots: Mapping[str, pa.Array], rows: np.ndarray) -> dict[str, pa.Array]:
    """Rows ``rows`` of each array in ``slots``."""
    idx = pa.array(rows)
    return {k: v.take(idx) for k, v in slots.items()}
