"""A read-only, memory-mapped copy of the rows portraits look up (DuckDB stores).

A portrait makes about eleven point lookups; on DuckDB each costs about a millisecond,
most of it the fixed cost of planning and running a query. This module writes, beside
the store (``<store>.portrait/``), for every ``(table, column)`` of
:data:`sawubona.portrait.LOOKUPS` that has rows:

* ``<table>.arrow``: the table's rows ordered by that column (then by ``rowid``, the
  order DuckDB's lookups return them in), an uncompressed Arrow IPC file that
  :func:`open` memory-maps without copying;
* ``<table>.keys.npy`` and ``<table>.ranges.npy``: the distinct key values, sorted, and
  the ``[start, stop)`` rows of each, which :meth:`Snapshot.lookup` finds by binary
  search (``np.searchsorted``, memory-mapped too: no dictionary of a million keys);
* ``manifest.json``: the store's :func:`fingerprint` when the files were written.

:func:`open` returns ``None`` when the directory is absent or its fingerprint is not
the store's (a later ingest, analysis or ``forget``): a portrait then reads DuckDB, and
never stale rows. :func:`build` writes into a temporary directory and renames it into
place; a table whose part of the fingerprint (:func:`part`) is unchanged is hard-linked
from the current snapshot instead of written again. ``privacy.forget`` deletes the
directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from sawubona.store import Store

SUFFIX = ".portrait"
MANIFEST = "manifest.json"
#: bumped when the files' layout changes: an older snapshot is then rebuilt
FORMAT = 1
BATCH_ROWS = 64 * 1024


def directory(store: Store) -> Path | None:
    """``<store file>.portrait``, or ``None`` for a store that is not a DuckDB file."""
    if getattr(store, "backend", None) != "duckdb":
        return None
    path = str(store.path)
    if not path or path == ":memory:" or path.startswith(":"):
        return None
    return Path(path + SUFFIX)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lookups() -> tuple[tuple[str, str], ...]:
    from sawubona.portrait import LOOKUPS

    return LOOKUPS


def _owners() -> dict[str, str]:
    """Lens result table → the lens that writes it (only its runs change the table)."""
    from sawubona.portrait import LENS_TABLES

    return {table: lens for lens, table in LENS_TABLES.items()}


#: the parts of the fingerprint that are about the whole store, not one table
GLOBAL = ("ingest_log.rows", "lens_runs.rows", "lens_runs.latest")


def fingerprint(store: Store) -> dict[str, str]:
    """What changes whenever a looked-up table does, in one query.

    Per looked-up table its row count and, for canonical tables, the latest
    ``_ingested_at`` (an upsert that changes a row sets it), for a lens's result table
    the latest run of that lens (a run rewrites the lens's tables); the number of
    ``ingest_log`` rows; the number of ``lens_runs`` and the latest run's start and id."""
    con = store._backend.cursor()  # type: ignore[attr-defined]
    present = set(store.tables())
    stamped = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_columns() WHERE column_name = '_ingested_at'"
        ).fetchall()
    }
    owners = _owners()
    exprs: list[tuple[str, str]] = []
    for table in sorted({t for t, _ in _lookups()} & present):
        exprs.append((f"{table}.rows", f"(SELECT count(*) FROM {_q(table)})"))
        if table in stamped:
            exprs.append((f"{table}.ingested_at", f"(SELECT max(_ingested_at) FROM {_q(table)})"))
        if table in owners and "lens_runs" in present:
            lens = owners[table].replace("'", "''")
            exprs.append(
                (
                    f"{table}.run",
                    "(SELECT max(CAST(started_at AS VARCHAR) || ' ' || run_id) FROM lens_runs "
                    f"WHERE lens = '{lens}')",
                )
            )
    if "ingest_log" in present:
        exprs.append(("ingest_log.rows", "(SELECT count(*) FROM ingest_log)"))
    if "lens_runs" in present:
        exprs.append(("lens_runs.rows", "(SELECT count(*) FROM lens_runs)"))
        exprs.append(
            (
                "lens_runs.latest",
                "(SELECT max(CAST(started_at AS VARCHAR) || ' ' || run_id) FROM lens_runs)",
            )
        )
    if not exprs:
        return {"format": str(FORMAT)}
    (row,) = con.execute("SELECT " + ", ".join(e for _, e in exprs)).fetchall()
    out = {"format": str(FORMAT)}
    out.update({k: str(v) for (k, _), v in zip(exprs, row, strict=True)})
    return out


def part(fp: dict[str, str], table: str) -> dict[str, str]:
    """The part of fingerprint ``fp`` that says whether ``table`` changed: its own keys,
    and the whole store's when nothing of its own marks a change (no ``_ingested_at``,
    no lens that writes it)."""
    own = {k: v for k, v in fp.items() if k.startswith(f"{table}.")}
    if not own.keys() - {f"{table}.rows"}:
        own.update({k: fp[k] for k in GLOBAL if k in fp})
    own["format"] = fp.get("format", str(FORMAT))
    return own


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data


def build(store: Store, *, force: bool = False) -> dict[str, float]:
    """Write the snapshot unless one with the store's fingerprint is there; seconds per
    table written.

    DuckDB stores only, and not read-only ones: ``{}`` elsewhere (and when nothing
    changed). A table whose part of the fingerprint (:func:`part`) is what the current
    snapshot recorded for it is not written again: its files are hard-linked from the
    current snapshot (never changed in place, so a server still reading the old one is
    not disturbed). After an analysis only the lens tables are written; after an ingest,
    the tables it loaded. ``force`` writes every table. Written into a temporary directory
    beside the store and renamed into place, so a reader sees the old snapshot, none, or
    the new one, never half of one."""
    target = directory(store)
    if target is None or store.read_only:
        return {}
    fp = fingerprint(store)
    old = _read_manifest(target)
    if not force and old is not None and old.get("fingerprint") == fp:
        return {}
    reuse = old if (old is not None and not force and old.get("format") == FORMAT) else None
    con = store._backend.cursor()  # type: ignore[attr-defined]
    present = set(store.tables())
    took: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent))
    try:
        tables: dict[str, str] = {}
        parts: dict[str, dict[str, str]] = {}
        for table, column in _lookups():
            if table not in present or store.count(table) == 0:
                continue
            mine = part(fp, table)
            if reuse is not None and _link_unchanged(reuse, target, tmp, table, column, mine):
                tables[table], parts[table] = column, mine
                continue
            t0 = time.perf_counter()
            if _write_table(con, tmp, table, column):
                tables[table], parts[table] = column, mine
                took[table] = time.perf_counter() - t0
        built = f"{time.time_ns()}-{os.getpid()}"
        manifest = {
            "format": FORMAT,
            "fingerprint": fp,
            "built": built,
            "tables": tables,
            "parts": parts,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        # mkdtemp's directory is private (0700): readable by whoever may read the store
        mode = Path(str(store.path)).stat().st_mode & 0o777
        os.chmod(tmp, mode | (mode & 0o444) >> 2)
        _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return took


def _files(table: str) -> tuple[str, ...]:
    return (f"{table}.arrow", f"{table}.keys.npy", f"{table}.ranges.npy")


def _link_unchanged(
    old: dict[str, Any], source: Path, out: Path, table: str, column: str, mine: dict[str, str]
) -> bool:
    """Hard-link ``table``'s files from the snapshot at ``source`` into ``out`` when that
    snapshot has them for the same column and the same part of the fingerprint."""
    if old.get("tables", {}).get(table) != column or old.get("parts", {}).get(table) != mine:
        return False
    try:
        for name in _files(table):
            os.link(source / name, out / name)
    except OSError:  # a file gone, or a file system without hard links: write it anew
        for name in _files(table):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out / name)
        return False
    return True


def _swap(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target``: a rename; an old snapshot is renamed away first."""
    aside: Path | None = None
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".old", dir=target.parent))
        os.rename(target, aside / "snapshot")
    os.rename(tmp, target)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def remove(store: Store) -> None:
    """Delete the store's snapshot (``privacy.forget``); portraits read DuckDB until the
    next :func:`build`."""
    target = directory(store)
    if target is not None and target.exists():
        aside = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".old", dir=target.parent))
        os.rename(target, aside / "snapshot")
        shutil.rmtree(aside)


def _write_table(con: Any, out: Path, table: str, column: str) -> bool:
    """The rows of ``table`` ordered by ``column`` and their index; False if the key is
    not a string (those tables are read from DuckDB)."""
    reader = con.sql(
        f"SELECT * FROM {_q(table)} WHERE {_q(column)} IS NOT NULL ORDER BY {_q(column)}, rowid"
    ).to_arrow_reader(BATCH_ROWS)
    schema = reader.schema
    ci = schema.get_field_index(column)
    if not (
        pa.types.is_string(schema.field(ci).type) or pa.types.is_large_string(schema.field(ci).type)
    ):
        reader.close()
        return False
    keys: list[pa.Array] = []
    starts: list[np.ndarray] = []
    offset = 0
    last: Any = None
    with (
        pa.OSFile(str(out / f"{table}.arrow"), "wb") as sink,
        pa.ipc.new_file(sink, schema) as writer,
    ):
        for batch in reader:
            n = batch.num_rows
            if n == 0:
                continue
            k = batch.column(ci)
            if n > 1:
                change = pc.not_equal(k.slice(1), k.slice(0, n - 1))
                idx = np.flatnonzero(change.to_numpy(zero_copy_only=False)) + 1
            else:
                idx = np.empty(0, dtype=np.int64)
            if last is None or k[0].as_py() != last:
                idx = np.concatenate([np.zeros(1, dtype=np.int64), idx])
            keys.append(k.take(pa.array(idx, type=pa.int64())))
            starts.append(idx.astype(np.int64) + offset)
            last = k[n - 1].as_py()
            offset += n
            writer.write_batch(batch)
    names = [v for a in keys for v in a.to_pylist()]
    if any(v.endswith("\0") for v in names):  # NumPy's fixed-width strings drop those
        os.unlink(out / f"{table}.arrow")
        return False
    key_arr = np.array(names, dtype=str) if names else np.empty(0, dtype="<U1")
    start = np.concatenate(starts) if starts else np.empty(0, dtype=np.int64)
    stop = np.append(start[1:], offset).astype(np.int64)
    order = np.argsort(key_arr, kind="stable")  # NumPy's order, whatever DuckDB's collation
    np.save(out / f"{table}.keys.npy", key_arr[order])
    np.save(out / f"{table}.ranges.npy", np.stack([start[order], stop[order]], axis=1))
    return True


class Snapshot:
    """The memory-mapped tables of one snapshot; :meth:`lookup` is thread-safe."""

    def __init__(self, path: Path, tables: dict[str, str]) -> None:
        self.path = path
        self._column = dict(tables)
        self._tables: dict[str, pa.Table] = {}
        self._keys: dict[str, np.ndarray] = {}
        self._ranges: dict[str, np.ndarray] = {}
        for table in tables:
            source = pa.memory_map(str(path / f"{table}.arrow"), "r")
            self._tables[table] = pa.ipc.open_file(source).read_all()
            self._keys[table] = np.load(path / f"{table}.keys.npy", mmap_mode="r")
            self._ranges[table] = np.load(path / f"{table}.ranges.npy", mmap_mode="r")

    def has(self, table: str, column: str) -> bool:
        """Whether ``table`` is in the snapshot, looked up by ``column``."""
        return self._column.get(table) == column

    def _range(self, table: str, value: Any) -> tuple[int, int] | None:
        if not isinstance(value, str) or value.endswith("\0"):
            return None
        keys = self._keys[table]
        i = int(np.searchsorted(keys, value))
        if i < len(keys) and keys[i] == value:
            start, stop = self._ranges[table][i]
            return int(start), int(stop)
        return None

    def lookup(self, table: str, where: dict[str, Any]) -> list[dict[str, Any]]:
        """The rows of ``table`` whose key equals the value (or any of a list's values),
        as ``DuckDBBackend.lookup`` returns them: same columns and Python values, each
        key's rows in the table's order; a list's keys in ascending order."""
        ((column, value),) = where.items()
        if not self.has(table, column):
            raise KeyError(f"{table}.{column} is not in the snapshot")
        values = sorted(set(value)) if isinstance(value, list | tuple) else [value]
        data = self._tables[table]
        rows: list[dict[str, Any]] = []
        for v in values:
            found = self._range(table, v)
            if found is not None:
                start, stop = found
                rows += data.slice(start, stop - start).to_pylist()
        return rows


def open(store: Store) -> Snapshot | None:
    """The store's snapshot, or ``None`` when there is none or it is stale."""
    target = directory(store)
    if target is None:
        return None
    manifest = _read_manifest(target)
    if manifest is None or manifest.get("format") != FORMAT:
        return None
    if manifest.get("fingerprint") != fingerprint(store):
        return None
    try:
        snapshot = Snapshot(target, manifest.get("tables", {}))
    except (OSError, pa.ArrowInvalid, ValueError):
        return None  # removed or replaced while we read it: DuckDB will do
    # replaced while we opened its files (a writer's build): some may be the new ones
    return snapshot if _read_manifest(target) == manifest else None
