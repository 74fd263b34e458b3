"""Readers: CSV, Parquet and JSON Lines files into staged tables, line by line.

Every reader stages a file into a temporary DuckDB table whose columns are the
file's own columns (names normalised to ``snake_case``) plus ``_file`` and
``_line`` (the physical line a CSV or JSON Lines record starts on, the row
number for Parquet). Records that cannot be read as records at all (wrong
number of fields, broken quoting, bytes that are not text in the file's
encoding, a JSON line that is not an object) are returned as
:class:`Reject` with their line and raw text, never dropped.

Staging uses DuckDB as a parsing engine: formats are ingest's business, tables
are the store's. Its objects are temporary, in a private in-memory DuckDB or, for
a DuckDB store, on the store's own connection (:class:`Staging`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sawubona import limits
from sawubona.errors import InputError
from sawubona.schema import normalise_name

CHUNK_ROWS = 100_000
FIELD_LIMIT = 256 * 1024 * 1024
csv.field_size_limit(FIELD_LIMIT)

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


@dataclass
class Reject:
    """A record that could not be read as a record."""

    line: int
    rule: str
    reason: str
    raw: str

    def __post_init__(self) -> None:
        self.raw = printable(self.raw)


def printable(text: str, limit: int = 10_000) -> str:
    """Text safe to store: undecodable bytes shown as U+FFFD, cut to ``limit`` characters."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")[:limit]


@dataclass
class StagedFile:
    """A file staged for mapping: where it is, what it held, what could not be read."""

    path: Path
    name: str
    sha256: str
    format: str
    rows_read: int
    columns: dict[str, str]  # staged (normalised) name → name in the file
    rejects: list[Reject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Staging:
    """A DuckDB connection used to parse, map and validate before anything is stored.

    Given ``con`` (the connection of a DuckDB store), staging happens in that connection's
    temporary objects instead, so that valid rows go into the store by one
    ``INSERT … SELECT`` rather than through Arrow; :meth:`close` then drops what staging
    made and leaves the connection open. Everything staging creates is ``TEMP``.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.shared = con is not None
        self._spill: str | None = None
        self._before: set[tuple[str, str]] = set()
        if con is not None:
            self.con = con
            self._before = self._temp_objects()
        else:
            self.con = duckdb.connect(":memory:")
            # capped, and spilling to a private directory: a file larger than memory loads
            # slower instead of killing the process (see sawubona.limits)
            self._spill = tempfile.mkdtemp(prefix="sawubona-staging-")
            limits.configure(self.con, self._spill)
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET preserve_insertion_order = true")
        self._n = 0

    def _temp_objects(self) -> set[tuple[str, str]]:
        rows = self.con.execute(
            "SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary "
            "UNION ALL SELECT 'VIEW', view_name FROM duckdb_views() "
            "WHERE temporary AND database_name = 'temp'"
        ).fetchall()
        return {(str(kind), str(name)) for kind, name in rows}

    def fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{re.sub(r'[^a-z0-9_]', '_', prefix.lower())}_{self._n}"

    def columns(self, view: str) -> dict[str, str]:
        rows = self.con.execute(f'DESCRIBE "{view}"').fetchall()
        return {r[0]: r[1] for r in rows}

    def count(self, view: str) -> int:
        row = self.con.execute(f'SELECT count(*) FROM "{view}"').fetchall()[0]
        return int(row[0]) if row else 0

    def drop(self, names: Sequence[str]) -> None:
        """Drop temporary tables and views made here (views first: a view may read a
        table); names that are not (or no longer) there are passed over."""
        kinds = {name: kind for kind, name in self._temp_objects()}
        for name in sorted(names, key=lambda n: kinds.get(n) != "VIEW"):
            if name in kinds:
                self.con.execute(
                    f'DROP {kinds[name]} IF EXISTS temp.main."{name.replace(chr(34), chr(34) * 2)}"'
                )

    def close(self) -> None:
        if not self.shared:
            self.con.close()
            if self._spill:
                shutil.rmtree(self._spill, ignore_errors=True)
            return
        # views first: a view may read a table made here
        made = sorted(self._temp_objects() - self._before, key=lambda o: o[0] != "VIEW")
        for kind, name in made:
            try:
                self.con.execute(
                    f'DROP {kind} IF EXISTS temp.main."{name.replace(chr(34), chr(34) * 2)}"'
                )
            except duckdb.Error:  # an Arrow table left registered by a reader that failed
                with contextlib.suppress(duckdb.Error):
                    self.con.unregister(name)


def file_format(path: Path, declared: str | None = None) -> str:
    if declared:
        return declared
    suffixes = [s.lower() for s in path.suffixes]
    for s in reversed(suffixes):
        if s in SUFFIXES:
            return SUFFIXES[s]
    raise InputError(
        "unknown file type; name it .csv, .parquet or .jsonl, or declare format in the mapping",
        file=str(path),
    )


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unique_names(header: list[str]) -> dict[str, str]:
    """Normalised, unique staged names for a header: staged → original."""
    out: dict[str, str] = {}
    for i, original in enumerate(header):
        base = normalise_name(original) or f"column_{i + 1}"
        if base[0].isdigit():
            base = f"c_{base}"
        name, k = base, 2
        while name in out or name in ("_file", "_line"):
            name, k = f"{base}_{k}", k + 1
        out[name] = original
    return out


# -- encodings -----------------------------------------------------------------


def sniff_encoding(path: Path, declared: str | None = None) -> tuple[str, bool, str | None]:
    """(encoding, whether rows must be checked for undecodable bytes, a note for the summary)."""
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise InputError(
                f"unknown encoding {declared!r}; use a name such as utf-8, cp1252 or latin-1",
                file=str(path),
            ) from None
        return declared, not _decodes(path, declared), None
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", not _decodes(path, "utf-8-sig"), None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        if not _decodes(path, "utf-16"):  # bad bytes cannot be kept row by row in UTF-16
            raise InputError(
                "the file starts as UTF-16 but is not valid UTF-16 (cut short or mixed "
                "encodings); export it again, preferably as UTF-8",
                file=str(path),
            )
        return "utf-16", False, None
    if _decodes(path, "utf-8"):
        return "utf-8", False, None
    data = path.read_bytes()
    if _UTF8_MULTIBYTE.search(data):
        return "utf-8", True, "not all of it is valid UTF-8; rows with other bytes are quarantined"
    for enc in ("cp1252", "latin-1"):
        if _decodes(path, enc):
            return (
                enc,
                False,
                (f"read as {enc} because it is not UTF-8; declare encoding in a mapping if wrong"),
            )
    return "latin-1", False, None  # pragma: no cover (latin-1 decodes every byte)


def _decodes(path: Path, encoding: str) -> bool:
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                dec.decode(block)
            dec.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _has_surrogates(values: list[str]) -> bool:
    return any(re.search("[\udc80-\udcff]", v) for v in values)


# -- CSV -------------------------------------------------------------------------

DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(sample: str) -> str:
    """The delimiter giving the most consistent number (> 1) of fields per record."""
    best, best_score = ",", (-1.0, 0)
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line of a sample may be cut
    text = "\n".join(lines[:200])
    for d in DELIMITERS:
        try:
            rows = [r for r in csv.reader(io.StringIO(text), delimiter=d) if r]
        except csv.Error:
            continue
        if not rows:
            continue
        widths = [len(r) for r in rows]
        # the most frequent width; a tie goes to the header's width (a bare CR inside
        # fields can cut a few records into pieces of several widths, each as frequent)
        mode = max(set(widths), key=lambda w: (widths.count(w), w == widths[0]))
        if mode < 2 or widths[0] < 2:
            continue
        consistency = widths.count(mode) / len(widths)
        score = (float(widths[0] == mode) + consistency, mode)
        if score > best_score:
            best, best_score = d, score
    return best


def read_csv(
    path: Path,
    staging: Staging,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> StagedFile:
    enc, check_rows, note = sniff_encoding(path, encoding)
    with path.open("r", encoding=enc, errors="surrogateescape", newline="") as fh:
        sample = fh.read(1 << 16)
    if not sample.strip():
        raise InputError("the file is empty; it needs a header line and rows", file=str(path))
    delim = delimiter or sniff_delimiter(sample)
    bare_cr = _has_bare_cr(path)
    notes = [note] if note else []
    if delim != ",":
        notes.append(f"delimiter {delim!r}")
    if enc in ("utf-8", "utf-8-sig") and not check_rows and not bare_cr:
        fast = _read_csv_fast(path, staging, enc, delim)
        if fast is not None:
            name, names, rows = fast
            if progress:
                progress(rows)
            return StagedFile(path, name, sha256_of(path), "csv", rows, names, [], notes)
    name = staging.fresh(path.stem)
    rejects: list[Reject] = []
    read = 0
    # Lines end at LF (or CRLF). A CR alone inside a line is data (exports of chat and
    # social texts carry them); only a file with no LF at all uses CR as its line end.
    newline = "" if not bare_cr or bare_cr == "only" else "\n"
    with path.open("r", encoding=enc, errors="surrogateescape", newline=newline) as fh:
        lines: Iterator[str] = fh
        if newline == "\n":
            lines = (_protect_cr(text) for text in fh)
        reader = csv.reader(lines, delimiter=delim, quotechar='"', doublequote=True, strict=False)
        header: list[str] | None = None
        while header is None:
            try:
                row = next(reader)
            except StopIteration:
                raise InputError(
                    "the file has no header line; add one naming the columns", file=str(path)
                ) from None
            except csv.Error as exc:
                raise InputError(
                    f"cannot read the header ({exc})", file=str(path), line=1
                ) from None
            if any(cell.strip() for cell in row):
                header = row
        names = unique_names(header)
        staged = list(names)
        width = len(staged)
        staging.con.execute(
            f'CREATE TEMP TABLE "{name}" ('
            + ", ".join(f'"{c}" VARCHAR' for c in staged)
            + ', "_file" VARCHAR, "_line" BIGINT)'
        )
        buffer: list[list[str]] = []
        starts: list[int] = []
        prev = reader.line_num

        def flush() -> None:
            if not starts:
                return
            # An empty field is a missing value (a field of spaces stays text until parsing).
            arrays = [_empty_is_null(pa.array(c, pa.string())) for c in zip(*buffer, strict=True)]
            arrays.append(pa.array([str(path)] * len(starts), pa.string()))
            arrays.append(pa.array(starts, pa.int64()))
            chunk = pa.Table.from_arrays(arrays, names=[*staged, "_file", "_line"])
            staging.con.register("_chunk", chunk)
            staging.con.execute(f'INSERT INTO "{name}" SELECT * FROM _chunk')
            staging.con.unregister("_chunk")
            buffer.clear()
            starts.clear()
            if progress:
                progress(read)

        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                read += 1
                rejects.append(
                    Reject(
                        prev + 1,
                        "structure",
                        f"the record cannot be read as CSV ({exc}); check its quoting",
                        "",
                    )
                )
                prev = reader.line_num
                continue
            start, prev = prev + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip() and width > 1):
                continue  # a blank line is not a record
            read += 1
            if len(row) != width:
                rejects.append(
                    Reject(
                        start,
                        "structure",
                        f"the line has {len(row)} fields but the header has {width}; "
                        "check the delimiter and quoting",
                        delim.join(row),
                    )
                )
                continue
            if check_rows and _has_surrogates(row):
                rejects.append(
                    Reject(
                        start,
                        "encoding",
                        f"the line has bytes that are not {enc}; re-save the file as UTF-8 or "
                        "declare its encoding",
                        delim.join(row),
                    )
                )
                continue
            if newline == "\n":
                row = [cell.replace(_CR_MARK, "\r") for cell in row]
            buffer.append(row)
            starts.append(start)
            if len(starts) >= CHUNK_ROWS:
                flush()
        flush()
    _fill_raw(path, enc, rejects)
    return StagedFile(path, name, sha256_of(path), "csv", read, names, rejects, notes)


#: bytes per block when finding where records start
SCAN_BLOCK = 1 << 26


def record_lines(path: Path) -> tuple[npt.NDArray[np.int64], bool]:
    """The physical line each non-blank record starts on, and whether quotes balance.

    RFC 4180 quoting: a line feed ends a record exactly when an even number of quote
    characters comes before it in the file (a quoted field opens and closes with one
    each, and a quote inside it is written twice, so quotes inside a record keep the
    count's parity). A record with no bytes, or only a carriage return, is a blank
    line. One pass over the bytes in blocks, with NumPy.
    """
    starts: list[npt.NDArray[np.int64]] = []
    quotes = 0  # quote characters before the block
    lines = 0  # line feeds before the block
    record_start = 0  # byte where the current record starts
    start_line = 1
    offset = 0
    last = 0  # the previous block's last byte
    with path.open("rb") as fh:
        while True:
            block = fh.read(SCAN_BLOCK)
            if not block:
                break
            b = np.frombuffer(block, np.uint8)
            lf = np.flatnonzero(b == 10)
            q = np.flatnonzero(b == 34)
            before = quotes + np.searchsorted(q, lf)
            ends = lf[before % 2 == 0]  # line feeds that end a record
            if len(ends):
                line_no = lines + np.searchsorted(lf, ends) + 1  # the line each one ends
                rec_start = np.r_[record_start, offset + ends[:-1] + 1]
                rec_line = np.r_[start_line, line_no[:-1] + 1]
                size = offset + ends - rec_start
                before_end = np.where(ends > 0, b[np.maximum(ends - 1, 0)], last)
                blank = (size == 0) | ((size == 1) & (before_end == 13))
                starts.append(rec_line[~blank].astype(np.int64))
                record_start = int(offset + ends[-1] + 1)
                start_line = int(line_no[-1] + 1)
            quotes += len(q)
            lines += len(lf)
            offset += len(block)
            last = int(b[-1])
    if offset > record_start:  # a last record without a line feed
        with path.open("rb") as fh:
            fh.seek(record_start)
            tail = fh.read()
        if tail.strip(b"\r"):
            starts.append(np.array([start_line], np.int64))
    out = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    return out, quotes % 2 == 0


def _read_csv_fast(
    path: Path, staging: Staging, enc: str, delim: str
) -> tuple[str, dict[str, str], int] | None:
    """Stage a well-formed UTF-8 CSV with DuckDB's parallel reader; None to read it slowly.

    The slow reader (Python's ``csv``) finds and explains every malformed record; most
    exports have none, and DuckDB reads them many times faster. This path is taken only
    when nothing can differ: the header is on line 1, quotes balance, DuckDB reads the
    file in strict mode without an error, and it finds exactly as many records as
    :func:`record_lines` — which gives each one its physical line. Anything else (a
    record DuckDB cannot read, a stray quote, a blank line of spaces) falls back to the
    slow reader, which quarantines what it must, line by line.
    """
    with path.open("r", encoding=enc, newline="") as fh:
        first = fh.readline()
    try:
        header = next(csv.reader([first], delimiter=delim, quotechar='"', doublequote=True))
    except (csv.Error, StopIteration):
        return None
    if len(header) < 2 or not any(c.strip() for c in header) or first.count('"') % 2:
        return None
    lines, balanced = record_lines(path)
    if not balanced or not len(lines) or lines[0] != 1:
        return None
    lines = lines[1:]  # the header
    names = unique_names(header)
    name = staging.fresh(path.stem)
    raw = f"{name}__csv"
    con = staging.con
    columns = "{" + ", ".join(f"{lit_sql(n)}: 'VARCHAR'" for n in names) + "}"
    literal = lit_sql(str(path))
    try:
        con.register("_sawubona_lines", pa.table({"_line": pa.array(lines, pa.int64())}))
        try:
            con.execute(
                f'CREATE TEMP TABLE "{raw}" AS SELECT c.*, true AS "_read", l."_line" FROM '
                f"read_csv({literal}, header = true, columns = {columns}, auto_detect = false, "
                f"delim = {lit_sql(delim)}, quote = '\"', escape = '\"', strict_mode = true, "
                f"null_padding = false, ignore_errors = false, max_line_size = {FIELD_LIMIT}, "
                f"encoding = 'utf-8') AS c POSITIONAL JOIN _sawubona_lines AS l"
            )
        finally:
            con.unregister("_sawubona_lines")
        got = con.execute(
            f'SELECT count(*), count("_read"), count("_line") FROM "{raw}"'
        ).fetchall()
    except duckdb.Error:
        con.execute(f'DROP TABLE IF EXISTS "{raw}"')
        return None
    n, read, with_line = got[0]
    if not n == read == with_line == len(lines):
        con.execute(f'DROP TABLE IF EXISTS "{raw}"')
        return None
    select = ", ".join(f'NULLIF("{c}", \'\') AS "{c}"' for c in names)
    con.execute(
        f'CREATE TEMP VIEW "{name}" AS SELECT {select}, CAST({literal} AS VARCHAR) AS "_file", '
        f'"_line" FROM "{raw}"'
    )
    return name, names, int(n)


def lit_sql(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_CR_MARK = "\ue000"


def _empty_is_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


def _has_bare_cr(path: Path) -> str | None:
    """None when no CR stands alone; "only" when CR is the only line end; else "some"."""
    found, lf = False, False
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            lf = lf or b"\n" in block
            if not found and re.search(rb"\r(?!\n)", block.rstrip(b"\r")):
                found = True
            if found and lf:
                return "some"
    return "only" if found else None


def _protect_cr(text: str) -> str:
    body = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if "\r" not in body:
        return text
    return body.replace("\r", _CR_MARK) + text[len(body) :]


def _fill_raw(path: Path, encoding: str, rejects: list[Reject]) -> None:
    """Second pass, only when needed: the physical text of rejected records."""
    want = {r.line: r for r in rejects if not r.raw}
    if not want:
        return
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        for n, text in enumerate(fh, start=1):
            if n in want:
                want[n].raw = printable(text.rstrip("\r\n"))


# -- Parquet ----------------------------------------------------------------------


def read_parquet(path: Path, staging: Staging) -> StagedFile:
    con = staging.con
    try:
        desc = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise InputError(
            f"cannot be read as Parquet ({str(exc).splitlines()[0]}); check the file is complete",
            file=str(path),
        ) from None
    names = unique_names([r[0] for r in desc])
    name = staging.fresh(path.stem)
    select = ", ".join(
        f'"{orig.replace(chr(34), chr(34) * 2)}" AS "{new}"' for new, orig in names.items()
    )
    # a view, not a copy: Parquet is already columnar and typed, and DuckDB reads it in
    # parallel each time (twice: to check, then to write), which costs less than a copy
    literal = "'" + str(path).replace("'", "''") + "'"
    con.execute(
        f'CREATE TEMP VIEW "{name}" AS SELECT {select}, CAST({literal} AS VARCHAR) AS "_file", '
        f'file_row_number + 1 AS "_line" FROM read_parquet({literal}, file_row_number = true)'
    )
    try:  # a value DuckDB cannot hold (a timestamp past the year 294247) fails here
        rows = staging.count(name)
    except duckdb.Error as exc:
        raise InputError(
            f"cannot be read as Parquet ({str(exc).splitlines()[0]}); write the out-of-range "
            "values as text or fix them",
            file=str(path),
        ) from None
    return StagedFile(path, name, sha256_of(path), "parquet", rows, names)


# -- JSON Lines ---------------------------------------------------------------------


def _jsonl_records(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("r", encoding="utf-8", errors="surrogateescape", newline="") as fh:
        for n, text in enumerate(fh, start=1):
            if text.strip():
                yield n, text


def read_jsonl(path: Path, staging: Staging) -> StagedFile:
    records: list[tuple[int, dict[str, object]]] = []
    rejects: list[Reject] = []
    keys: dict[str, None] = {}
    read = 0
    for n, text in _jsonl_records(path):
        read += 1
        if re.search("[\udc80-\udcff]", text):
            rejects.append(
                Reject(
                    n, "encoding", "the line is not valid UTF-8; re-save as UTF-8", text.rstrip()
                )
            )
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            rejects.append(
                Reject(n, "structure", f"the line is not JSON ({exc.msg})", text.rstrip()[:10_000])
            )
            continue
        if not isinstance(obj, dict):
            rejects.append(
                Reject(n, "structure", "the line is JSON but not an object", text.rstrip()[:10_000])
            )
            continue
        for k in obj:
            keys.setdefault(str(k))
        records.append((n, obj))
    if not read:
        raise InputError("the file is empty; it needs one JSON object per line", file=str(path))
    names = unique_names(list(keys))
    name = staging.fresh(path.stem)

    def cell(v: object) -> str | None:
        if v is None:
            return None
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict | list):
            return json.dumps(v, ensure_ascii=False)
        return str(v)

    data = {new: [cell(obj.get(orig)) for _, obj in records] for new, orig in names.items()}
    data["_file"] = [str(path)] * len(records)
    table = pa.table(
        {
            **{k: pa.array(v, pa.string()) for k, v in data.items() if k != "_line"},
            "_line": pa.array([n for n, _ in records], pa.int64()),
        }
    )
    staging.con.register("_chunk", table)
    staging.con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM _chunk')
    staging.con.unregister("_chunk")
    return StagedFile(path, name, sha256_of(path), "jsonl", read, names, rejects)


def read_file(
    path: Path,
    staging: Staging,
    *,
    fmt: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> StagedFile:
    """Stage one file of any supported format."""
    if not path.exists():
        raise InputError("no such file; check the path", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("the file is empty; it needs a header line and rows", file=str(path))
    kind = file_format(path, fmt)
    if kind == "csv":
        return read_csv(path, staging, encoding=encoding, delimiter=delimiter, progress=progress)
    if kind == "parquet":
        return read_parquet(path, staging)
    return read_jsonl(path, staging)
