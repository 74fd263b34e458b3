"""What the parts of the giving lens share: the gift table, money and month helpers."""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.stats import wilson

#: the kinds of gift this lens gives; nothing else may appear in ``giving_gifts``
GIFT_KINDS = (
    "best_plan_cheaper",
    "best_plan_like_for_like",
    "unused_addon",
    "owed_credit",
    "loyalty_penalty",
)

GIFT_SCHEMA = pa.schema(
    [
        ("gift_id", pa.string()),
        ("customer_id", pa.string()),
        ("kind", pa.string()),
        ("plan_id", pa.string()),
        ("current_plan_id", pa.string()),
        ("value_per_year", pa.float64()),
        ("currency", pa.string()),
        ("recurring", pa.bool_()),
        ("confidence", pa.float64()),
        ("evidence", pa.string()),
        ("message", pa.string()),
        ("source_table", pa.string()),
        ("source_ids", pa.string()),
    ]
)

_SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥", "INR": "₹", "BRL": "R$"}


@functools.lru_cache(maxsize=1 << 16)
def money(amount: float, currency: str | None) -> str:
    """``£7.50``, ``$1,204.00``, ``12.00 CHF``.

    Cached: gifts repeat a few fees and amounts many thousand times (``-0.0`` and ``0.0``
    share an entry, and both read ``0.00``).
    """
    text = f"{abs(amount):,.2f}"
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get((currency or "").upper())
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {currency}" if currency else f"{sign}{text}"


def month_floor(t: dt.datetime) -> dt.datetime:
    return dt.datetime(t.year, t.month, 1)


def add_months(t: dt.datetime, n: int) -> dt.datetime:
    k = t.year * 12 + (t.month - 1) + n
    return dt.datetime(k // 12, k % 12 + 1, 1)


def month_index(stamps: pa.Array | pa.ChunkedArray, first: dt.datetime) -> npt.NDArray[np.int64]:
    """Months since ``first`` of each timestamp (calendar months)."""
    y = np.asarray(pc.year(stamps), dtype=np.int64)
    m = np.asarray(pc.month(stamps), dtype=np.int64)
    return (y - first.year) * 12 + (m - first.month)


def month_label(t: dt.datetime | dt.date) -> str:
    return t.strftime("%b %Y")


def evidence_confidence(n: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Confidence from ``n`` months that all point the same way: the Wilson lower bound of n/n.

    One month gives 0.21, three 0.44, six 0.61, twelve 0.76 — more history, more
    confidence, never certainty from a handful of months.
    """
    k = np.asarray(n, dtype=float)
    low, _ = wilson(k, k)
    return np.nan_to_num(low)


def share_confidence(k: npt.ArrayLike, n: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Wilson lower bound of ``k`` of ``n`` months pointing the same way."""
    low, _ = wilson(k, n)
    return np.nan_to_num(low)


def gifts_table(rows: Mapping[str, Sequence[Any] | pa.Array | npt.NDArray[Any]]) -> pa.Table:
    """A ``giving_gifts`` table from columns (missing columns are null)."""
    n = len(next(iter(rows.values()))) if rows else 0
    cols = []
    for f in GIFT_SCHEMA:
        value = rows.get(f.name)
        if value is None:
            cols.append(pa.nulls(n, f.type))
        elif isinstance(value, pa.Array | pa.ChunkedArray):
            cols.append(pc.cast(value, f.type))
        else:
            cols.append(pa.array(value, f.type))
    return pa.Table.from_arrays(cols, schema=GIFT_SCHEMA)


def empty_gifts() -> pa.Table:
    return GIFT_SCHEMA.empty_table()


def to_json(value: Any) -> str:
    return _ENCODER.encode(value)


def json_str(text: str) -> str:
    """``text`` as a JSON string, as :func:`to_json` writes it (plain ASCII needs no encoder)."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return _ENCODER.encode(text)


_PLAIN = r"^[ !#-\[\]-~]*$"  # printable ASCII without " and \\: a JSON string as it is


def json_str_column(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Each (non-null) text as :func:`json_str` writes it, in Arrow when all are plain."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    values = values.cast(pa.string())
    if values.null_count == 0 and pc.all(pc.match_substring_regex(values, _PLAIN)).as_py() in (
        True,
        None,
    ):
        return pc.binary_join_element_wise('"', values, '"', "")
    return pa.array([json_str(v) for v in values.to_pylist()], pa.string())


def json_times(values: npt.NDArray[Any]) -> list[str] | None:
    """Naive timestamps as :func:`to_json` writes pandas Timestamps (``isoformat``; NaT null).

    ``None`` when they are not whole microseconds in years 1–9999: the caller encodes
    those one by one.
    """
    if not np.issubdtype(values.dtype, np.datetime64):
        return None
    nat = np.isnat(values)
    us = values.astype("datetime64[us]")
    ok = us[~nat]
    if len(ok) and (
        (ok.astype(values.dtype) != values[~nat]).any()
        or ok.min() < np.datetime64("0001-01-01", "us")
        or ok.max() > np.datetime64("9999-12-31T23:59:59.999999", "us")
    ):
        return None
    secs = np.datetime_as_string(us.astype("datetime64[s]")).tolist()
    micro = (us.astype(np.int64) % 1_000_000).tolist()
    return [
        "null" if n else (f'"{a}.{u:06d}"' if u else f'"{a}"')
        for n, a, u in zip(nat.tolist(), secs, micro, strict=True)
    ]


def json_float(value: float) -> str:
    """A float as :func:`to_json` writes it (``NaN``/``Infinity`` as the encoder spells them)."""
    return float.__repr__(value) if math.isfinite(value) else _ENCODER.encode(value)


def _json_default(value: Any) -> Any:
    if value is None or value != value:  # NaT, NaN
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return round(float(value), 4)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def json_values(values: Iterable[Any]) -> list[str]:
    """Each value as :func:`to_json` writes it inside a list or dict (repeats encoded once)."""
    values = list(values)
    if len(values) >= 256 and all(type(v) is str for v in values):  # a column: Arrow at once
        return list(json_str_column(pa.array(values, pa.string())).to_pylist())
    seen: dict[tuple[type, Any], str] = {}
    out = []
    for v in values:
        t = type(v)
        if t is str:
            out.append(json_str(v))
            continue
        if v is None:
            out.append("null")
            continue
        try:
            key = (t, v)
            got = seen.get(key)
        except TypeError:  # unhashable: a list or an array
            out.append(_ENCODER.encode(v))
            continue
        if got is None:
            got = seen[key] = _ENCODER.encode(v)
        out.append(got)
    return out


# one encoder for every call: json.dumps with options builds a new one each time
_ENCODER = json.JSONEncoder(default=_json_default, sort_keys=False, separators=(",", ":"))


def names_list(text: str | Iterable[str]) -> list[str]:
    """``"a, b,c"`` → ``["a", "b", "c"]`` (lower case, empties dropped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return [s.strip().lower() for s in items if s and s.strip()]


def first_names(
    customers: pa.Table | None, ids: pa.Array | pa.ChunkedArray | Sequence[str]
) -> list[str | None]:
    """The first word of each customer's name (``None`` when unknown)."""
    ids_arr = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(ids, pa.string())
    if customers is None or customers.num_rows == 0 or "name" not in customers.column_names:
        return [None] * len(ids_arr)
    pos = pc.index_in(ids_arr, value_set=customers.column("customer_id").combine_chunks())
    names = customers.column("name").combine_chunks().take(pos)
    first = pc.utf8_trim_whitespace(names)
    return [v.split(None, 1)[0] if v else None for v in first.to_pylist()]
