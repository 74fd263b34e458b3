"""Privacy: erase one customer (``forget``) and export with keyed pseudonyms.

``forget(store, customer_id)`` removes everything the store holds about one
customer, in one transaction, and returns a :class:`Receipt` (table → rows
removed, column → cells redacted):

1. **Canonical tables**, walked through the references declared in
   :mod:`sawubona.schema` (nothing here names a table): the customer's row,
   every row that refers to it (journeys, touchpoints, surveys…), and every row
   that refers to one of those (the items of their journeys…).
2. **Result tables** (``<lens>_<what>``): rows whose id columns (columns named
   like a canonical key, e.g. ``customer_id``, ``journey_id``) hold one of the
   removed ids.
3. **Quarantine**: rows whose raw source text names the customer's id, one of
   the removed ids, or one of their personal values (name, e-mail). This also
   erases a customer who exists only in the quarantine.
4. **Findings** whose ``where`` names a removed id or whose text names the
   customer.
5. **Every other text cell** in the store (free text of other customers, log
   columns) that still names the customer's id or personal values is redacted
   in place to ``[forgotten]`` — rows of other customers are never deleted, and
   another customer's own name or e-mail is never touched (namesakes exist).

Matching is by whole token: ``C1`` matches ``id C1,`` but not ``C10``.
Personal values shorter than three characters are not searched for (they
would match too much).

After the commit the DuckDB file still holds the freed blocks, and a
``CHECKPOINT`` does not overwrite them (measured with duckdb 2.0: an id deleted
and checkpointed is still in the file's bytes). So ``forget`` then rewrites
the database into a fresh file (``COPY FROM DATABASE``) and swaps it in with an
atomic rename; the fresh file holds only live rows. A crash during the rewrite
leaves the committed (erased) database and a stray ``*.forget-tmp`` file that
the next ``forget`` overwrites.

``pseudonymise_table`` replaces every id that leads to a person with
``HMAC-SHA256(key, id)`` (RFC 2104; first 128 bits, hex): the same id gives
the same pseudonym in every table and every export made with the same key, so
joins still work, and without the key nobody can recompute or test a guess.
Ids embedded in other text (derived keys such as ``loyalty_penalty:C1:plan``,
id lists, JSON evidence) are replaced token by token. Personal columns (names,
e-mails, free text) are emptied, and the quarantine (raw source lines) is
never part of a pseudonymised export.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sawubona import schema
from sawubona.errors import SawubonaError, StoreBusyError

if TYPE_CHECKING:
    from sawubona.store import Store

REDACTED = "[forgotten]"
KEY_ENV = "SAWUBONA_PSEUDONYM_KEY"
MIN_KEY_BYTES = 16
MIN_PERSONAL_LEN = 3

#: Tables written by ingest and the lenses that are not results (handled by name below).
_QUARANTINE = "quarantine"
_FINDINGS = "findings"


def _meta_tables() -> set[str]:
    from sawubona.store import META_TABLES

    return set(META_TABLES)


def person_id_columns() -> set[str]:
    """Id columns that lead to a person: the customers' key and the keys of every table
    that refers to customers (directly or through another table), as declared in the schema."""
    linked = {"customers"}
    changed = True
    while changed:
        changed = False
        for t in schema.TABLES:
            if t.name not in linked and any(ref in linked for _, ref, _ in t.references):
                linked.add(t.name)
                changed = True
    cols = set()
    for t in schema.TABLES:
        if t.name in linked and len(t.key) == 1:
            cols.add(t.key[0])
    return cols


def personal_columns() -> set[str]:
    """Names of columns declared personal anywhere in the schema."""
    return {c.name for t in schema.TABLES for c in t.columns if c.personal}


@dataclass
class Receipt:
    """What ``forget`` removed: rows per table, redacted cells per table.column."""

    customer_id: str
    removed: dict[str, int] = field(default_factory=dict)
    redacted: dict[str, int] = field(default_factory=dict)
    rewritten: bool = False

    @property
    def total(self) -> int:
        return sum(self.removed.values()) + sum(self.redacted.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "removed": dict(sorted(self.removed.items())),
            "redacted": dict(sorted(self.redacted.items())),
            "file_rewritten": self.rewritten,
        }


def _token_pattern(needles: Iterable[str], *, ignore_case: bool) -> re.Pattern[str] | None:
    parts = sorted({n for n in needles if n}, key=len, reverse=True)
    if not parts:
        return None
    body = "|".join(re.escape(p) for p in parts)
    flags = re.IGNORECASE if ignore_case else 0
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{body})(?![A-Za-z0-9_])", flags)


class _Matcher:
    """Whole-token search for ids (exact case) and personal values (any case)."""

    def __init__(self, ids: Iterable[str], personal: Iterable[str]) -> None:
        self.ids = {i for i in ids if i}
        self.personal = {p.strip() for p in personal if p and len(p.strip()) >= MIN_PERSONAL_LEN}
        self._ids = _token_pattern(self.ids, ignore_case=False)
        self._personal = _token_pattern(self.personal, ignore_case=True)

    def needles(self) -> list[str]:
        return sorted(self.ids | self.personal)

    def hit(self, text: str | None) -> bool:
        if not text:
            return False
        return bool(
            (self._ids and self._ids.search(text))
            or (self._personal and self._personal.search(text))
        )

    def redact(self, text: str) -> str:
        for pattern in (self._ids, self._personal):
            if pattern is not None:
                text = pattern.sub(REDACTED, text)
        return text


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string_columns(con: Any, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? AND data_type = 'VARCHAR' ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def _columns(con: Any, table: str) -> list[str]:
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [r[0] for r in rows]


def _delete_rowids(con: Any, table: str, rowids: Sequence[int]) -> int:
    if not rowids:
        return 0
    con.register("_sawubona_forget_rows", pa.table({"r": pa.array(list(rowids), pa.int64())}))
    try:
        con.execute(f"DELETE FROM {_q(table)} WHERE rowid IN (SELECT r FROM _sawubona_forget_rows)")
    finally:
        con.unregister("_sawubona_forget_rows")
    return len(rowids)


def forget(store: Store, customer_id: str, *, rewrite: bool = True) -> Receipt:
    """Erase ``customer_id`` from every table of ``store`` in one transaction.

    With ``rewrite`` (the default) the database file is then rewritten so its
    bytes no longer hold the erased values. Returns what was removed.
    """
    if store.read_only:
        raise StoreBusyError(
            f"the store {store.path} is open read-only (another process, such as "
            "`sawubona serve`, is using it); stop that process to forget a customer"
        )
    if store.backend != "duckdb":
        raise SawubonaError(
            f"forget works on DuckDB stores for now, not {store.backend}; export the store "
            "to DuckDB or erase the customer there with your database's tools"
        )
    customer_id = customer_id.strip()
    if not customer_id:
        raise SawubonaError("give the id of the customer to forget")
    con = store._con
    receipt = Receipt(customer_id)
    with store.transaction():
        personal = _personal_values(con, customer_id)
        removed_ids = _forget_canonical(con, customer_id, receipt)
        all_ids = {customer_id} | {v for vals in removed_ids.values() for v in vals}
        matcher = _Matcher(all_ids, personal)
        own = _Matcher([customer_id], personal)
        _forget_results(con, removed_ids, own, receipt)
        _forget_quarantine(con, matcher, receipt)
        _forget_findings(con, all_ids, own, receipt)
        _redact_everywhere(con, own, receipt)
    # the portraits' snapshot beside the store holds copies of the rows: deleted (portraits
    # read the store until the next `portrait.prepare` writes a new one)
    from sawubona import portrait_snapshot

    portrait_snapshot.remove(store)
    # the worklist lives in its own file beside the store (sawubona.work): erased right after
    from sawubona.work import Worklist, worklist_path

    work_file = worklist_path(store)
    if work_file.exists():
        with Worklist(work_file) as worklist:
            receipt.removed["work_items"] = worklist.forget(customer_id)
    receipt.removed = {k: v for k, v in receipt.removed.items() if v}
    if rewrite and receipt.total:
        rewrite_file(store)
        receipt.rewritten = True
    return receipt


def _personal_values(con: Any, customer_id: str) -> list[str]:
    cols = [c.name for c in schema.table("customers").columns if c.personal]
    if not cols:
        return []
    sql = ", ".join(_q(c) for c in cols)
    rows = con.execute(
        f"SELECT {sql} FROM customers WHERE customer_id = ?", [customer_id]
    ).fetchall()
    return [str(v) for row in rows for v in row if v is not None]


def _forget_canonical(con: Any, customer_id: str, receipt: Receipt) -> dict[str, set[str]]:
    """Delete the customer's rows and every row that refers to them, through the schema's
    references. Returns the removed key values per key column name."""
    removed: dict[tuple[str, str], set[str]] = {("customers", "customer_id"): {customer_id}}
    by_column: dict[str, set[str]] = {"customer_id": {customer_id}}
    targets = {(ref, col) for t in schema.TABLES for _, ref, col in t.references}
    for t in schema.TABLES:
        conds: list[str] = []
        params: list[Any] = []
        if t.name == "customers":
            conds.append("customer_id = ?")
            params.append(customer_id)
        for col, ref, ref_col in t.references:
            values = removed.get((ref, ref_col))
            if values:
                conds.append(f"{_q(col)} IN (SELECT unnest(?::VARCHAR[]))")
                params.append(sorted(values))
        if not conds:
            continue
        where = " OR ".join(conds)
        keep = [c for c in t.column_names if (t.name, c) in targets or c in t.key]
        if keep:
            rows = con.execute(
                f"SELECT {', '.join(_q(c) for c in keep)} FROM {_q(t.name)} WHERE {where}", params
            ).fetchall()
            for i, c in enumerate(keep):
                vals = {r[i] for r in rows if r[i] is not None}
                if (t.name, c) in targets:
                    removed.setdefault((t.name, c), set()).update(vals)
                if c in t.key and len(t.key) == 1:
                    by_column.setdefault(c, set()).update(vals)
        n = con.execute(f"SELECT count(*) FROM {_q(t.name)} WHERE {where}", params).fetchall()
        con.execute(f"DELETE FROM {_q(t.name)} WHERE {where}", params)
        receipt.removed[t.name] = int(n[0][0]) if n else 0
    id_cols = person_id_columns()
    return {k: v for k, v in by_column.items() if k in id_cols}


def _result_tables(con: Any) -> list[str]:
    canonical = set(schema.TABLE_BY_NAME)
    meta = _meta_tables()
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    return [r[0] for r in rows if r[0] not in canonical and r[0] not in meta]


def _id_column_kind(column: str, kinds: Iterable[str]) -> str | None:
    """The canonical id a result column holds: ``customer_id``, ``referrer_customer_id``…"""
    for kind in kinds:
        if column == kind or column.endswith("_" + kind):
            return kind
    return None


def _forget_results(
    con: Any, removed: dict[str, set[str]], matcher: _Matcher, receipt: Receipt
) -> None:
    """Delete result rows that hold one of the removed ids in any text cell (whole cell, or
    a token of a list column such as ``source_ids``), or name the customer's id or personal
    values anywhere (results are derived, so the row goes rather than being redacted)."""
    ids = sorted({v for vals in removed.values() for v in vals})
    list_matcher = _Matcher(ids, [])
    for table in _result_tables(con):
        cols = _string_columns(con, table)
        if not cols:
            continue
        conds = [f"{_q(c)} IN (SELECT unnest(?::VARCHAR[]))" for c in cols]
        params: list[Any] = [ids for _ in cols]
        exact = con.execute(
            f"SELECT rowid FROM {_q(table)} WHERE {' OR '.join(conds)}", params
        ).fetchall()
        hits = {r[0] for r in exact}
        for row in _candidates(con, table, cols, matcher.needles()):
            if any(matcher.hit(v) for v in row[1:]):
                hits.add(row[0])
        lists = [c for c in cols if c.endswith("_ids")]
        for row in _candidates(con, table, lists, ids):
            if any(list_matcher.hit(v) for v in row[1:]):
                hits.add(row[0])
        receipt.removed[table] = _delete_rowids(con, table, sorted(hits))


def _candidates(con: Any, table: str, columns: Sequence[str], needles: Sequence[str]) -> list[Any]:
    """Rows (rowid first) where any of ``columns`` contains any needle (a coarse SQL filter,
    case-insensitive; the caller decides with whole-token matching)."""
    if not columns or not needles:
        return []
    conds = " OR ".join(
        f"strpos(lower(coalesce({_q(c)}, '')), lower(?)) > 0" for c in columns for _ in needles
    )
    params = [n for _ in columns for n in needles]
    cols = ", ".join(_q(c) for c in columns)
    return list(
        con.execute(f"SELECT rowid, {cols} FROM {_q(table)} WHERE {conds}", params).fetchall()
    )


def _forget_quarantine(con: Any, matcher: _Matcher, receipt: Receipt) -> None:
    cols = _string_columns(con, _QUARANTINE)
    rows = _candidates(con, _QUARANTINE, cols, matcher.needles())
    hits = [r[0] for r in rows if any(matcher.hit(v) for v in r[1:])]
    receipt.removed[_QUARANTINE] = _delete_rowids(con, _QUARANTINE, hits)


def _json_values(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _json_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_values(v)
    elif value is not None:
        yield str(value)


def _forget_findings(con: Any, ids: set[str], matcher: _Matcher, receipt: Receipt) -> None:
    rows = con.execute(f"SELECT rowid, where_json, text FROM {_FINDINGS}").fetchall()
    hits = []
    for rowid, where_json, text in rows:
        try:
            where = json.loads(where_json) if where_json else {}
        except ValueError:
            where = where_json
        if any(v in ids for v in _json_values(where)) or matcher.hit(text):
            hits.append(rowid)
    receipt.removed[_FINDINGS] = _delete_rowids(con, _FINDINGS, hits)


def _redact_everywhere(con: Any, matcher: _Matcher, receipt: Receipt) -> None:
    """Redact the customer's id and personal values from every remaining text cell that is
    not itself an id (ids of other rows are never rewritten)."""
    id_like = {c for t in schema.TABLES for c in t.key} | {
        c for t in schema.TABLES for c, _, _ in t.references
    }
    identity = {("customers", c.name) for c in schema.table("customers").columns if c.personal}
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    ).fetchall()
    for (table,) in rows:
        cols = [
            c
            for c in _string_columns(con, table)
            if c not in id_like
            and not _id_column_kind(c, id_like)
            and (table, c) not in identity  # another customer's own name is theirs
        ]
        for col in cols:
            found = _candidates(con, table, [col], matcher.needles())
            changes = [(matcher.redact(v), rid) for rid, v in found if matcher.hit(v)]
            if not changes:
                continue
            con.register(
                "_sawubona_redact",
                pa.table(
                    {
                        "r": pa.array([c[1] for c in changes], pa.int64()),
                        "v": pa.array([c[0] for c in changes], pa.string()),
                    }
                ),
            )
            try:
                con.execute(
                    f"UPDATE {_q(table)} SET {_q(col)} = x.v FROM _sawubona_redact x "
                    f"WHERE {_q(table)}.rowid = x.r"
                )
            finally:
                con.unregister("_sawubona_redact")
            receipt.redacted[f"{table}.{col}"] = len(changes)


def rewrite_file(store: Store) -> None:
    """Rewrite the store's DuckDB file so freed blocks (erased data) leave the disk.

    CHECKPOINT, copy every table into a fresh file, close, and rename the fresh
    file over the old one (atomic on POSIX); the store is then reopened.
    """
    from sawubona.store import Store as StoreClass

    path = Path(store.path)
    tmp = path.with_name(path.name + ".forget-tmp")
    con = store._con
    con.execute("CHECKPOINT")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    db = con.execute("SELECT current_database()").fetchall()[0][0]
    literal = str(tmp).replace("'", "''")
    con.execute(f"ATTACH '{literal}' AS sawubona_fresh")
    try:
        con.execute(f"COPY FROM DATABASE {_q(db)} TO sawubona_fresh")
    finally:
        con.execute("DETACH sawubona_fresh")
    store.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + ".wal").unlink()
    StoreClass.__init__(store, path)


# -- pseudonyms -----------------------------------------------------------------------


def load_key(key_file: str | Path | None = None) -> bytes:
    """The secret key for pseudonyms: from ``key_file`` or $SAWUBONA_PSEUDONYM_KEY."""
    if key_file is not None:
        try:
            key = Path(key_file).read_bytes().strip()
        except OSError as exc:
            raise SawubonaError(
                f"cannot read the key file {key_file} ({exc.strerror}); give a readable file"
            ) from None
    else:
        key = os.environ.get(KEY_ENV, "").strip().encode()
    if not key:
        raise SawubonaError(
            "--pseudonymise needs a secret key: pass --key-file FILE or set "
            f"{KEY_ENV} (at least {MIN_KEY_BYTES} bytes, kept apart from the export)"
        )
    if len(key) < MIN_KEY_BYTES:
        raise SawubonaError(
            f"the pseudonym key is {len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes "
            "(e.g. `head -c 32 /dev/urandom | base64 > key`)"
        )
    return key


def pseudonym(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, first 128 bits in hex."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


_SEPARATORS = re.compile(r"""([\s:,;|"'\[\]{}()=/]+)""")


def known_ids(store: Store) -> set[str]:
    """Every value of an id column that leads to a person, in the canonical tables."""
    cols = person_id_columns()
    out: set[str] = set()
    for t in schema.TABLES:
        for c in t.column_names:
            if c in cols and store.count(t.name):
                out.update(v for v in store.distinct_values(t.name, c).column(0).to_pylist())
    return out


def _pseudonymise_text(text: str | None, key: bytes, ids: set[str]) -> str | None:
    """Replace every token of ``text`` that is a known id (ids embedded in derived keys
    such as ``loyalty_penalty:C1:plan``, in lists and in JSON evidence)."""
    if not text:
        return text
    parts = _SEPARATORS.split(text)
    changed = False
    for i in range(0, len(parts), 2):
        if parts[i] in ids:
            parts[i] = pseudonym(key, parts[i])
            changed = True
    return "".join(parts) if changed else text


def pseudonymise_table(
    name: str, data: pa.Table, key: bytes, ids: set[str] | None = None
) -> pa.Table | None:
    """``data`` with ids replaced by pseudonyms and personal columns emptied; ``None`` for
    tables that are not exported pseudonymised (the quarantine keeps raw source lines).

    Id columns are hashed whole; in every other text column each token that is one of
    ``ids`` (see :func:`known_ids`) is replaced by its pseudonym."""
    if name == _QUARANTINE:
        return None
    id_cols = person_id_columns()
    personal = personal_columns()
    ids = ids or set()
    cols = []
    for field_, column in zip(data.schema, data.columns, strict=True):
        if not pa.types.is_string(field_.type):
            cols.append(column)
        elif _id_column_kind(field_.name, id_cols):
            values = [None if v is None else pseudonym(key, v) for v in column.to_pylist()]
            cols.append(pa.array(values, pa.string()))
        elif field_.name in personal:
            cols.append(pa.nulls(len(data), field_.type))
        elif ids:
            values = [_pseudonymise_text(v, key, ids) for v in column.to_pylist()]
            cols.append(pa.array(values, pa.string()))
        else:
            cols.append(column)
    return pa.table(cols, schema=data.schema)


def export_pseudonymised(
    store: Store,
    out_dir: str | Path,
    key: bytes,
    *,
    fmt: str = "parquet",
    tables: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Export tables with pseudonymised ids (see :func:`pseudonymise_table`)."""
    import duckdb

    if fmt not in ("parquet", "csv"):
        raise SawubonaError(f"unknown export format {fmt!r}; use parquet or csv")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(tables) if tables else [n for n, c in store.counts().items() if c > 0]
    written: dict[str, Path] = {}
    ids = known_ids(store)
    writer = duckdb.connect()  # the same writer as Store.export, on pseudonymised rows
    try:
        for name in names:
            data = pseudonymise_table(name, store.arrow(name), key, ids)
            if data is None:
                continue
            target = out / f"{name}.{fmt}"
            opts = "(FORMAT parquet)" if fmt == "parquet" else "(FORMAT csv, HEADER true)"
            writer.register("_sawubona_export", data)
            try:
                literal = str(target).replace("'", "''")
                writer.execute(f"COPY (SELECT * FROM _sawubona_export) TO '{literal}' {opts}")
            finally:
                writer.unregister("_sawubona_export")
            written[name] = target
    finally:
        writer.close()
    return written
