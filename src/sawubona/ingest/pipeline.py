"""The load: plan → stage → map → validate → one transaction into the store.

1. **Plan** which files feed which canonical table (no mapping, a mapping file,
   or an adapter).
2. **Stage** each file into DuckDB temporary tables with its line numbers; records
   that are not records (broken quoting, wrong field count, bad bytes) are
   rejected here. A DuckDB store lends its own connection for this
   (:meth:`Store.staging_connection`), so valid rows reach it by one
   ``INSERT … SELECT`` per table; any other store gets them as Arrow batches from
   a private in-memory DuckDB.
3. **Map** file columns to canonical columns (a view per file).
4. **Validate** each table, in reference order, with set-based queries
   (:mod:`sawubona.ingest.validate`); references are checked against the store
   plus the rows of this load.
5. **Write**, all tables in one store transaction: upsert valid rows (new rows
   inserted, changed rows replaced, identical rows left alone), replace the
   quarantine rows of the same files (so re-ingesting is idempotent), append the
   ingest log. A crash before the commit leaves the store as it was. Each table
   is written as soon as it is checked (steps 4 and 5 alternate inside the
   transaction) and its staged copies are dropped then, so a load holds one
   table's copies at a time.

Invariant, per table: rows read = rows loaded + rows quarantined.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sawubona import schema
from sawubona.errors import InputError
from sawubona.ingest.mapping import TableMapping, auto_plan, load_mapping, map_file
from sawubona.ingest.parse import q
from sawubona.ingest.readers import Reject, StagedFile, Staging, read_file
from sawubona.ingest.report import IngestReport, ReasonCount, TableReport
from sawubona.ingest.validate import ColumnOptions, Validated, validate

if TYPE_CHECKING:
    from sawubona.store import Store

Progress = Callable[[str, int | None], None]


@dataclass
class Source:
    """Rows for one canonical table: a staged view with canonical column names."""

    table: str
    view: str
    files: list[StagedFile]
    options: dict[str, ColumnOptions] = field(default_factory=dict)
    #: records rejected before mapping (counted as read for this table)
    rejects: list[tuple[StagedFile, Reject]] = field(default_factory=list)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def plan_sources(
    staging: Staging,
    paths: Sequence[Path],
    *,
    adapter: str | None,
    mapping: Path | None,
    progress: Progress | None,
) -> tuple[list[Source], list[str]]:
    """Stage and map every input; returns the sources and notes for the summary."""
    if adapter:
        from sawubona.ingest.adapters import get_adapter

        if len(paths) != 1:
            raise InputError(f"the {adapter} adapter reads one folder; give exactly one path")
        return get_adapter(adapter).read(Path(paths[0]), staging), []
    notes: list[str] = []
    if mapping:
        plans: list[TableMapping] = load_mapping(mapping)
    else:
        plans, notes = auto_plan(list(paths))
    sources = []
    for tm in plans:
        for f in tm.files:
            if progress:
                progress(f"reading {f.name}", None)
            staged = read_file(
                f,
                staging,
                progress=_rows_progress(progress, f.name),
                fmt=tm.options.get("format"),
                encoding=tm.options.get("encoding"),
                delimiter=tm.options.get("delimiter"),
            )
            notes += [f"{f.name}: {n}" for n in staged.notes]
            view = map_file(staging, staged, tm)
            sources.append(
                Source(
                    tm.table,
                    view,
                    [staged],
                    tm.column_options(),
                    [(staged, r) for r in staged.rejects],
                )
            )
    return sources, notes


def _rows_progress(progress: Progress | None, name: str) -> Callable[[int], None] | None:
    if progress is None:
        return None
    report = progress

    def update(n: int) -> None:
        report(f"reading {name}", n)

    return update


def ingest(
    store: Store,
    paths: str | Path | Sequence[str | Path],
    *,
    adapter: str | None = None,
    mapping: str | Path | None = None,
    allow_orphans: bool = False,
    progress: Progress | None = None,
    check_only: bool = False,
) -> IngestReport:
    """Load ``paths`` into ``store`` (or, with ``check_only``, only validate them)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    path_list = [Path(p) for p in paths]
    staging = Staging(store.staging_connection())
    load_id = uuid.uuid4().hex[:12]
    started = _utcnow()
    try:
        sources, notes = plan_sources(
            staging,
            path_list,
            adapter=adapter,
            mapping=Path(mapping) if mapping else None,
            progress=progress,
        )
        report = IngestReport(
            load_id,
            str(store.path),
            adapter or (str(mapping) if mapping else "files"),
            committed=False,
            notes=notes,
        )
        by_table: dict[str, list[Source]] = {}
        for s in sources:
            by_table.setdefault(s.table, []).append(s)
        validated: dict[str, Validated] = {}
        known: dict[str, str] = {}
        referenced = {ref for t in schema.TABLES for _, ref, _ in t.references}
        # Validate and write table by table, in reference order, inside one transaction:
        # a table's staged copies are dropped once it is written, so that a large load
        # holds one table's worth of them, not all (which made DuckDB spill to disk).
        with contextlib.nullcontext() if check_only else store.transaction():
            for name in schema.load_order():
                t = schema.table(name)
                for ref in {ref for _, ref, _ in t.references}:
                    if ref not in known:
                        known[ref] = _known_keys(staging, store, ref, validated.get(ref))
                if name not in by_table:
                    continue
                if progress:
                    progress(f"checking {name}", None)
                group = by_table[name]
                union = staging.fresh(f"{name}_union")
                staging.con.execute(
                    f"CREATE TEMP VIEW {q(union)} AS "
                    + " UNION ALL BY NAME ".join(f"SELECT * FROM {q(s.view)}" for s in group)
                )
                options = {k: v for s in group for k, v in s.options.items()}
                v = validate(
                    staging,
                    union,
                    t,
                    options=options,
                    known=known,
                    allow_orphans=allow_orphans,
                    now=started,
                )
                validated[name] = v
                if check_only:
                    continue
                # the keys later tables check their references against: the store's (as
                # before this load) and this load's, taken before this table is written
                if name in referenced and name not in known:
                    known[name] = _known_keys(staging, store, name, v)
                if progress:
                    progress(f"loading {name}", None)
                report.tables.append(_write(store, staging, v, group, load_id, started))
                staging.drop([*v.made, union, *_done_with(by_table, validated, adapter)])
        if check_only:
            for name, v in validated.items():
                report.tables.append(_table_report(staging, v, by_table[name], None))
            return report
        report.committed = True
        return report
    finally:
        staging.close()


def _done_with(
    by_table: dict[str, list[Source]], validated: dict[str, Validated], adapter: str | None
) -> list[str]:
    """The staged files and mapping views no table still to be loaded reads. An adapter's
    views may read staged files they do not list: its files stay until the end."""
    if adapter:
        return []
    later = {
        name
        for table, sources in by_table.items()
        if table not in validated
        for s in sources
        for name in (s.view, *(f.name for f in s.files))
    }
    done = {
        name
        for table, sources in by_table.items()
        if table in validated
        for s in sources
        for name in (s.view, *(f.name for f in s.files))
    }
    return sorted(done - later)


def _known_keys(staging: Staging, store: Store, table: str, v: Validated | None) -> str:
    """A staged one-column table ``k`` of the keys of ``table``: in the store or in this load."""
    key = q(schema.table(table).key[0])
    name = staging.fresh(f"known_{table}")
    staging.con.register(name + "_store", store.distinct_values(table, schema.table(table).key[0]))
    parts = [f"SELECT CAST({key} AS VARCHAR) AS k FROM {q(name + '_store')}"]
    if v is not None:
        parts.append(f"SELECT CAST({key} AS VARCHAR) AS k FROM {q(v.valid)}")
    staging.con.execute(
        f"CREATE TEMP TABLE {q(name)} AS SELECT DISTINCT k FROM ({' UNION ALL '.join(parts)})"
    )
    staging.con.unregister(name + "_store")
    return name


def _reject_rows(
    staging: Staging, v: Validated, sources: list[Source], load_id: str, at: dt.datetime
) -> pa.Table:
    """The quarantine rows of one table: rejected rows, then records rejected when staged.

    The rejected rows are built by DuckDB (its Arrow export): ``pa.array`` of Python values
    would import pandas (about 0.35 s) into a load that has nothing to quarantine. File
    names and ids are bound as parameters, never written into the SQL.
    """
    shas = {str(f.path): f.sha256 for s in sources for f in s.files}
    sha = "CASE _file " + "WHEN ? THEN ? " * len(shas) + "ELSE '' END"
    rows = staging.con.sql(
        f"""SELECT CAST(? AS VARCHAR) AS load_id, CAST(? AS VARCHAR) AS table_name,
                   CAST(_file AS VARCHAR) AS file, {sha} AS file_sha256,
                   CAST(_line AS BIGINT) AS line, CAST(column_name AS VARCHAR) AS column_name,
                   CAST(rule AS VARCHAR) AS rule, CAST(reason AS VARCHAR) AS reason,
                   CAST(raw AS VARCHAR) AS raw, CAST(? AS TIMESTAMP) AS quarantined_at
            FROM {q(v.rejects)}""",
        params=[load_id, v.table, *(x for pair in shas.items() for x in pair), at],
    ).to_arrow_table()
    pre = [(f, r) for s in sources for (f, r) in s.rejects]
    if not pre:
        return rows
    n = len(pre)
    files = [str(f.path) for f, _ in pre]
    more = pa.table(
        {
            "load_id": [load_id] * n,
            "table_name": [v.table] * n,
            "file": files,
            "file_sha256": [shas.get(f, "") for f in files],
            "line": pa.array([r.line for _, r in pre], pa.int64()),
            "column_name": pa.array([None] * n, pa.string()),
            "rule": [r.rule for _, r in pre],
            "reason": [r.reason for _, r in pre],
            "raw": pa.array([r.raw for _, r in pre], pa.string()),
            "quarantined_at": pa.array([at] * n, pa.timestamp("us")),
        }
    )
    return pa.concat_tables([rows, more.cast(rows.schema)])


def _reasons(quarantine: pa.Table) -> list[ReasonCount]:
    groups: dict[tuple[str, str | None, str], list[int]] = {}
    rules = quarantine.column("rule").to_pylist()
    cols = quarantine.column("column_name").to_pylist()
    reasons = quarantine.column("reason").to_pylist()
    for i, (rule, col, reason) in enumerate(zip(rules, cols, reasons, strict=True)):
        # Checks word their reasons alike per (rule, column); an adapter's own reasons and
        # structural ones differ in kind, so those group by the words before any detail.
        kind = (
            re.split(r"[:(']", reason or "", maxsplit=1)[0]
            if col is None or rule == "adapter"
            else ""
        )
        groups.setdefault((rule, col, kind), []).append(i)
    out = []
    files = quarantine.column("file").to_pylist()
    lines = quarantine.column("line").to_pylist()
    for (rule, col, _), idx in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        i = min(idx, key=lambda j: (files[j], lines[j] or 0))
        out.append(ReasonCount(rule, col, len(idx), reasons[i], files[i], lines[i] or 0))
    return out


def _table_report(
    staging: Staging, v: Validated, sources: list[Source], quarantine: pa.Table | None
) -> TableReport:
    if quarantine is None:
        quarantine = _reject_rows(staging, v, sources, "", _utcnow())
    files = [str(f.path) for s in sources for f in s.files]
    pre = sum(len(s.rejects) for s in sources)
    return TableReport(
        table=v.table,
        files=files,
        rows_read=v.rows_in + pre,
        rows_loaded=staging.count(v.valid),
        rows_quarantined=quarantine.num_rows,
        reasons=_reasons(quarantine),
        readings=v.readings,
    )


def _write(
    store: Store,
    staging: Staging,
    v: Validated,
    sources: list[Source],
    load_id: str,
    started: dt.datetime,
) -> TableReport:
    quarantine = _reject_rows(staging, v, sources, load_id, started)
    report = _table_report(staging, v, sources, quarantine)
    if staging.shared:  # the staged rows are on the store's own connection
        counts = store.upsert(v.table, v.valid)
    else:
        reader = staging.con.sql(f"SELECT * FROM {q(v.valid)}").to_arrow_reader(200_000)
        counts = store.upsert(v.table, reader)
    report.inserted, report.updated, report.unchanged = (
        counts.inserted,
        counts.updated,
        counts.unchanged,
    )
    # Re-ingesting a file replaces its quarantine rows instead of adding copies.
    shas = sorted({f.sha256 for s in sources for f in s.files})
    store.delete_quarantine(v.table, shas)
    store.append("quarantine", quarantine)
    finished = _utcnow()
    totals = {
        "rows_read": report.rows_read,
        "rows_loaded": report.rows_loaded,
        "rows_quarantined": report.rows_quarantined,
        "rows_inserted": counts.inserted,
        "rows_updated": counts.updated,
        "rows_unchanged": counts.unchanged,
    }
    # One log row per file; the table totals go on the first (files of one load share them).
    # Built by DuckDB, as the quarantine rows are (no pandas import), values as parameters.
    nums = ", ".join(f"CAST(? AS BIGINT) AS {k}" for k in totals)
    one = (
        "SELECT CAST(? AS VARCHAR) AS load_id, CAST(? AS VARCHAR) AS file, "
        "CAST(? AS VARCHAR) AS file_sha256, CAST(? AS VARCHAR) AS source, "
        f"CAST(? AS VARCHAR) AS table_name, {nums}, CAST(? AS TIMESTAMP) AS started_at, "
        "CAST(? AS TIMESTAMP) AS finished_at"
    )
    log: list[str] = []
    params: list[Any] = []
    for s in sources:
        for f in s.files:
            params += [load_id, str(f.path), f.sha256, f.format, v.table]
            params += [val if not log else 0 for val in totals.values()]
            params += [started, finished]
            log.append(one)
    if log:
        rows = staging.con.sql(" UNION ALL ".join(log), params=params).to_arrow_table()
        store.append("ingest_log", rows)
    return report
