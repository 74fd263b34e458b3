"""Type parsing as set-based SQL over staged text.

Each canonical logical type (see :mod:`sawubona.schema`) gets an expression
that turns a staged value (usually text) into the typed value, or NULL when it
cannot. The caller compares "had a value" with "parsed to a value" to find the
rows to quarantine. Formats that must be guessed (date formats, decimal comma)
are chosen per column from a sample of its values, and reported back so the
load summary can say how each column was read.

Nothing the user typed is pasted into SQL: column names are normalised to
``[a-z0-9_]`` before they get here, and date formats from a mapping file are
checked against :data:`SAFE_FORMAT` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb

from sawubona.errors import MappingError

#: Date formats tried, in order of preference when several read every value.
#: ``iso`` is DuckDB's ISO 8601 reader (with or without zone offset).
DATE_FORMATS: tuple[str, ...] = (
    "iso",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%d/%m/%y %H:%M",
    "%d/%m/%y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%Y/%m/%d %H:%M:%S.%g",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%a %b %d %H:%M:%S %z %Y",
    "%Y%m%d",
    "epoch_s",
    "epoch_ms",
)

#: What a date format from a mapping file may contain.
SAFE_FORMAT = re.compile(r"^(%[a-zA-Z]|[ /:.,T\-_])+$")

TRUE_WORDS = ("true", "t", "yes", "y", "1", "vrai", "oui", "ja", "si", "sí", "sim", "on")
FALSE_WORDS = ("false", "f", "no", "n", "0", "faux", "non", "nein", "não", "nao", "off")

_TEXT_TYPES = ("VARCHAR",)
_TIME_TYPES = (
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "DATE",
    "TIMESTAMP_NS",
    "TIMESTAMP_MS",
    "TIMESTAMP_S",
)


def q(name: str) -> str:
    """Quote an identifier (names reaching here are normalised already)."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal for text sawubona itself chose (formats, words, reasons)."""
    return "'" + text.replace("'", "''") + "'"


def check_format(fmt: str, where: str) -> str:
    if fmt in DATE_FORMATS or SAFE_FORMAT.match(fmt):
        return fmt
    raise MappingError(
        f"{where}: date_format {fmt!r} is not a strftime-style format; use one like "
        "'%d/%m/%Y %H:%M'"
    )


@dataclass
class ColumnReading:
    """How one column was read (reported in the load summary)."""

    column: str
    how: str


_NUMBER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT"}
    | {"UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "REAL", "DOUBLE"}
)


def _is_text(duck_type: str) -> bool:
    return duck_type.upper().startswith("VARCHAR")


#: Characters trimmed from both ends of every text value (spaces, tabs, line ends, NBSP).
TRIM_CHARS = " \t\r\n\x0b\x0c\u00a0"


def _clean(expr: str) -> str:
    # trim(x, chars) is several times slower than a check of the two ends; most values
    # need no trimming at all, so test the ends first. The test looks at the code point of
    # each end (ord of x and of x[-1]) with bit 7 cleared, which maps NBSP (160) to 32: at
    # most 32 lets every trimmed character through (and a few control characters, which
    # trim then leaves). It costs half what contains(chars, left/right(x, 1)) did, and an
    # IN list of the code points would be planned as a join per column. Empty text has
    # ord -1 and ends NULL either way.
    chars = lit(TRIM_CHARS)
    return (
        f"NULLIF(CASE WHEN (ord({expr}) & -129) <= 32 OR (ord(({expr})[-1]) & -129) <= 32 "
        f"THEN trim({expr}, {chars}) ELSE {expr} END, '')"
    )


def _one_format(v: str, fmt: str) -> str:
    """Expression parsing text ``v`` with one format into a UTC-naive TIMESTAMP (or NULL)."""
    if fmt == "iso":
        # A zone offset at the end needs the (slower) zone-aware cast; 'Z' and no zone are UTC.
        offset = " OR ".join(f"substr({v}, {k}, 1) IN ('+', '-')" for k in (-6, -5, -3))
        return (
            f"CASE WHEN substr({v}, 5, 1) = '-' AND left({v}, 1) BETWEEN '0' AND '9' THEN "
            f"CASE WHEN length({v}) > 10 AND ({offset}) "
            f"THEN timezone('UTC', TRY_CAST({v} AS TIMESTAMPTZ)) "
            f"ELSE TRY_CAST({v} AS TIMESTAMP) END END"
        )
    if fmt == "epoch_s":
        return (
            f"CASE WHEN regexp_matches({v}, '^\\d{{9,10}}(\\.\\d+)?$') "
            f"THEN timezone('UTC', to_timestamp(TRY_CAST({v} AS DOUBLE))) END"
        )
    if fmt == "epoch_ms":
        return (
            f"CASE WHEN regexp_matches({v}, '^\\d{{12,13}}$') "
            f"THEN timezone('UTC', to_timestamp(TRY_CAST({v} AS DOUBLE) / 1000.0)) END"
        )
    if "%z" in fmt or "%Z" in fmt:
        return f"timezone('UTC', try_strptime({v}, {lit(fmt)}))"
    return f"CAST(try_strptime({v}, {lit(fmt)}) AS TIMESTAMP)"


def choose_date_format(con: duckdb.DuckDBPyConnection, view: str, column: str) -> str | None:
    """Pick the format that reads the most sampled values of a text column."""
    # up to 5000 distinct trimmed texts, any of them: distinct raw texts are taken first
    # (twice as many, so that copies differing only by spaces still leave enough) and
    # trimmed after, a trim per distinct text instead of one per row
    col = q(column)
    sample = (
        f"(SELECT DISTINCT trim(v) AS v FROM (SELECT DISTINCT {col} AS v FROM {q(view)} "
        f"WHERE {col} IS NOT NULL LIMIT 10000) WHERE NULLIF(trim(v), '') IS NOT NULL LIMIT 5000)"
    )
    # Only plausible readings count: '12/27/18' read as the year 18 is no reading.
    counts = ", ".join(
        f"count(*) FILTER (WHERE {_one_format('v', f)} BETWEEN TIMESTAMP '1900-01-01' "
        f"AND TIMESTAMP '2200-01-01') AS f{i}"
        for i, f in enumerate(DATE_FORMATS)
    )
    row = con.execute(f"SELECT count(*), {counts} FROM {sample}").fetchall()[0]
    if not row or not row[0]:
        return None
    best = max(range(len(DATE_FORMATS)), key=lambda i: (row[i + 1], -i))
    return DATE_FORMATS[best] if row[best + 1] else None


def timestamp_expr(v: str, fmt: str | None, timezone: str = "UTC") -> str:
    """Text → TIMESTAMP (UTC): the chosen format, falling back to ISO 8601."""
    parts = []
    if fmt and fmt != "iso":
        one = _one_format(v, fmt)
        if timezone != "UTC" and "%z" not in fmt and not fmt.startswith("epoch"):
            one = f"timezone('UTC', timezone({lit(timezone)}, {one}))"
        parts.append(one)
    iso = _one_format(v, "iso")
    if timezone != "UTC":
        # ISO text without an offset is local time in the declared zone.
        iso = (
            f"CASE WHEN regexp_matches({v}, '(Z|[+-]\\d\\d:?\\d\\d)$') THEN {iso} "
            f"ELSE timezone('UTC', timezone({lit(timezone)}, TRY_CAST({v} AS TIMESTAMP))) END"
        )
    parts.append(iso)
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


def choose_decimal(con: duckdb.DuckDBPyConnection, view: str, column: str) -> str:
    """'.' or ',' as the decimal mark of a text column, from its values."""
    row = con.execute(
        f"""SELECT
              count(*) FILTER (WHERE regexp_matches(v, '^[+-]?[0-9.]*,[0-9]+$')
                               AND NOT regexp_matches(v, '^[+-]?[0-9]{{1,3}}(,[0-9]{{3}})+$')),
              count(*) FILTER (WHERE regexp_matches(v, '^[+-]?[0-9,]*\\.[0-9]+$')
                               AND NOT regexp_matches(v, '^[+-]?[0-9]{{1,3}}(\\.[0-9]{{3}})+$'))
            FROM (SELECT trim({q(column)}) AS v FROM {q(view)}
                  WHERE NULLIF(trim({q(column)}), '') IS NOT NULL LIMIT 200000)"""
    ).fetchall()[0]
    comma, dot = row or (0, 0)
    return "," if comma and not dot else "."


def number_expr(v: str, decimal: str) -> str:
    """Text → DOUBLE, with currency signs and thousands separators removed; NaN/inf → NULL."""
    cleaned = f"regexp_replace({v}, '^[£$€¥R]\\$?\\s*|\\s*[£$€¥]$|\\s', '', 'g')"
    if decimal == ",":
        body = f"replace(replace({cleaned}, '.', ''), ',', '.')"
    else:
        body = (
            f"CASE WHEN regexp_matches({cleaned}, '^[+-]?[0-9]{{1,3}}(,[0-9]{{3}})+(\\.[0-9]+)?$') "
            f"THEN replace({cleaned}, ',', '') ELSE {cleaned} END"
        )
    num = f"TRY_CAST({body} AS DOUBLE)"
    careful = f"CASE WHEN isfinite({num}) THEN {num} END"
    if decimal == ",":
        return careful
    # Most values are plain numbers: a text DuckDB casts to a finite number is one that
    # the cleaning above leaves as it is (no currency sign, space or comma can be in it),
    # so the regular expressions run only for the others.
    plain = f"TRY_CAST({v} AS DOUBLE)"
    return f"CASE WHEN isfinite({plain}) THEN {plain} ELSE {careful} END"


def bool_expr(v: str) -> str:
    words_t = ", ".join(lit(w) for w in TRUE_WORDS)
    words_f = ", ".join(lit(w) for w in FALSE_WORDS)
    return (
        f"CASE WHEN lower({v}) IN ({words_t}) THEN true "
        f"WHEN lower({v}) IN ({words_f}) THEN false END"
    )


@dataclass
class Parsed:
    """SQL for one canonical column: the raw value, the typed value, how it was read."""

    raw: str
    value: str
    how: str
    #: False when the value cannot fail to parse (text kept as text, typed timestamps…):
    #: validation then keeps no separate raw copy of the column.
    can_fail: bool = True
    #: What validation keeps as the raw copy when the value can fail: ``raw`` itself for
    #: text; for a typed column (Parquet numbers) the value as it is, made text by
    #: :meth:`as_text` only for the rows quarantined (a cast of every row costs more).
    kept: str | None = None
    text_of_kept: str = "{}"

    def keep(self) -> str:
        """The expression kept as the raw copy of the column."""
        return self.kept if self.kept is not None else self.raw

    def as_text(self, kept: str) -> str:
        """The raw text, from the kept copy named ``kept`` (equals ``raw`` row for row)."""
        return self.text_of_kept.replace("{}", kept)


def column_expr(
    con: duckdb.DuckDBPyConnection,
    view: str,
    column: str,
    duck_type: str,
    logical: str,
    **options: Any,
) -> Parsed:
    """Build the raw and parsed expressions for staged ``column`` of type ``duck_type``.

    ``options``: ``date_format``, ``decimal``, ``timezone``, ``lower`` (see
    :func:`_column_expr`). A typed (non-text) column keeps its value as the raw copy."""
    p = _column_expr(con, view, column, duck_type, logical, **options)
    if not _is_text(duck_type):
        p.kept = q(column)
        p.text_of_kept = _text_of(duck_type)
    return p


def _text_of(duck_type: str) -> str:
    """The raw text of a typed value ``{}`` (see :func:`column_expr`)."""
    if duck_type.upper() in ("DOUBLE", "FLOAT", "REAL"):
        return "CASE WHEN isfinite({}) THEN CAST({} AS VARCHAR) ELSE CAST({} AS VARCHAR) END"
    return "CAST({} AS VARCHAR)"


def _column_expr(
    con: duckdb.DuckDBPyConnection,
    view: str,
    column: str,
    duck_type: str,
    logical: str,
    *,
    date_format: str | None = None,
    decimal: str | None = None,
    timezone: str = "UTC",
    lower: bool = False,
) -> Parsed:
    """Build the raw and parsed expressions for staged ``column`` of type ``duck_type``."""
    src = q(column)
    text = _is_text(duck_type)
    dt = duck_type.upper()
    if text:
        raw = _clean(src)
    else:  # a typed value: its text (NULL exactly where the value is NULL)
        raw = _text_of(dt).replace("{}", src)

    if logical == "string":
        if text:
            value = f"lower({raw})" if lower else raw
        elif dt in ("DOUBLE", "FLOAT", "REAL"):
            value = (
                f"CASE WHEN {src} = floor({src}) AND abs({src}) < 1e15 "
                f"THEN CAST(CAST({src} AS BIGINT) AS VARCHAR) ELSE CAST({src} AS VARCHAR) END"
            )
        else:
            value = raw
        return Parsed(raw, value, "text", can_fail=False)
    if logical == "timestamp":
        if text:
            fmt = date_format or choose_date_format(con, view, column)
            how = f"dates as {fmt}" if fmt else "dates (no values)"
            return Parsed(raw, timestamp_expr(raw, fmt, timezone), how)
        if dt == "TIMESTAMP WITH TIME ZONE":
            return Parsed(raw, f"timezone('UTC', {src})", "timestamps with zone", can_fail=False)
        if dt in _TIME_TYPES:
            if timezone != "UTC":
                return Parsed(
                    raw,
                    f"timezone('UTC', timezone({lit(timezone)}, CAST({src} AS TIMESTAMP)))",
                    f"timestamps in {timezone}",
                )
            return Parsed(raw, f"CAST({src} AS TIMESTAMP)", "timestamps", can_fail=False)
        if dt in ("BIGINT", "INTEGER", "DOUBLE", "HUGEINT", "UBIGINT"):
            return Parsed(raw, timestamp_expr(raw, None), "epoch numbers")
        return Parsed(raw, timestamp_expr(raw, None), "text dates")
    if logical in ("money", "float", "int"):
        if text:
            dec = decimal or choose_decimal(con, view, column)
            num = number_expr(raw, dec)
            how = "decimal comma" if dec == "," else "numbers"
        elif dt == "BOOLEAN":
            num, how = f"CAST({src} AS DOUBLE)", "booleans as 0/1"
        elif dt in _NUMBER_TYPES or dt.startswith("DECIMAL"):
            num = f"CASE WHEN isfinite(CAST({src} AS DOUBLE)) THEN CAST({src} AS DOUBLE) END"
            how = "numbers"
        else:  # a timestamp, a list, a struct…: its text is not a number, so it fails
            num, how = number_expr(raw, "."), "numbers"
        if logical == "int":
            num = f"CASE WHEN {num} = floor({num}) THEN CAST({num} AS BIGINT) END"
        elif logical == "money":
            num = f"round({num}, 4)"
        return Parsed(raw, num, how)
    if logical == "bool":
        if dt == "BOOLEAN":
            return Parsed(raw, src, "booleans", can_fail=False)
        return Parsed(raw, bool_expr(raw), "yes/no words")
    if logical == "json":
        if text:
            return Parsed(
                raw,
                f"CASE WHEN json_valid({raw}) AND json_type(TRY_CAST({raw} AS JSON)) = 'OBJECT' "
                f"THEN CAST(TRY_CAST({raw} AS JSON) AS VARCHAR) END",
                "JSON objects",
            )
        return Parsed(raw, f"CAST(to_json({src}) AS VARCHAR)", "JSON objects")
    raise ValueError(f"unknown logical type {logical}")
