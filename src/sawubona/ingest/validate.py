"""Validation: typed values and row rules as set-based queries over a staged view.

Input: a staged view whose columns carry canonical names (any subset), plus
``_file`` and ``_line`` and, optionally, ``_reject`` (a reason an adapter
already found) and ``_raw``. Output: a view of valid, typed rows and a view of
rejected rows with ``rule``, ``column_name``, ``reason`` and ``raw``.

Checks, in order (a row is rejected for the first that fails):

1. ``adapter``   — the adapter's own reason (e.g. an Online Retail line with no customer);
2. ``required``  — a required column is empty;
3. ``type``      — a value that does not parse as its type (``31/02/2024``);
4. ``allowed``   — a value outside the allowed set (``direction = sideways``);
5. ``range``     — below the minimum, a survey score outside its instrument's
   scale (an NPS of 11), a timestamp before 1900 or in the future (deadlines may
   lie up to 100 years ahead);
6. ``order``     — cross-column order (a promise due before it was made);
7. ``duplicate`` — the same key more than once in this load: an identical copy
   is quarantined as a duplicate; rows that differ keep the **last** occurrence
   (file order, then line) and quarantine the earlier ones, saying which line won;
8. ``reference`` — a reference to a customer, journey or plan that is neither in
   the store nor in this load (unless orphans are allowed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sawubona import schema
from sawubona.ingest.parse import Parsed, column_expr, lit, q
from sawubona.ingest.readers import Staging

if TYPE_CHECKING:
    import duckdb

TYPE_WORDS = {
    "timestamp": "a date/time",
    "money": "an amount",
    "float": "a number",
    "int": "a whole number",
    "bool": "yes/no",
    "json": "a JSON object",
    "string": "text",
}


@dataclass
class ColumnOptions:
    date_format: str | None = None
    decimal: str | None = None
    timezone: str = "UTC"


@dataclass
class Validated:
    table: str
    valid: str  # staged view: canonical columns + _source + _ingested_at
    rejects: str  # staged view: _file, _line, column_name, rule, reason, raw
    rows_in: int
    readings: dict[str, str] = field(default_factory=dict)
    #: the temporary tables and views made to check the rows (dropped once written)
    made: list[str] = field(default_factory=list)


def _show(raw: str) -> str:
    return f"'''' || left({raw}, 60) || ''''"


def _clean(
    con: duckdb.DuckDBPyConnection,
    checked: str,
    dupkeys: str,
    ref_joins: list[str],
    ref_conds: list[str],
) -> bool:
    """No duplicate key and no row (that passed its checks) referring to an unknown key."""
    if con.execute(f"SELECT count(*) FROM {q(dupkeys)}").fetchall()[0][0]:
        return False
    if not ref_conds:
        return True
    orphans = con.execute(
        f"SELECT count(*) FROM {q(checked)} c {' '.join(ref_joins)} "
        f"WHERE c._err IS NULL AND ({' OR '.join(ref_conds)})"
    ).fetchall()[0][0]
    return not orphans


def validate(
    staging: Staging,
    view: str,
    table: schema.Table,
    *,
    options: dict[str, ColumnOptions] | None = None,
    known: dict[str, str] | None = None,
    allow_orphans: bool = False,
    now: dt.datetime,
) -> Validated:
    """Split ``view`` into valid typed rows and rejected rows for canonical ``table``."""
    con = staging.con
    options = options or {}
    known = known or {}
    present = staging.columns(view)
    parsed: dict[str, Parsed] = {}
    readings: dict[str, str] = {}
    for c in table.columns:
        if c.name not in present:
            parsed[c.name] = Parsed("CAST(NULL AS VARCHAR)", _null(c.type), "absent")
            continue
        opt = options.get(c.name, ColumnOptions())
        p = column_expr(
            con,
            view,
            c.name,
            present[c.name],
            c.type,
            date_format=opt.date_format,
            decimal=opt.decimal,
            timezone=opt.timezone,
            lower=c.lower,
        )
        parsed[c.name] = p
        readings[c.name] = p.how

    has_reject = "_reject" in present
    has_raw = "_raw" in present
    select = [
        '"_file"',
        '"_line"',
        '"_reject"' if has_reject else 'CAST(NULL AS VARCHAR) AS "_reject"',
    ]
    if has_raw:
        select.append('"_raw"')
    # the raw copy of each column whose parse can fail → its text, from that copy
    kept_raw = {
        name: p.as_text(q("r__" + name))
        for name, p in parsed.items()
        if p.can_fail and p.how != "absent"
    }
    for c in table.columns:
        if c.name in kept_raw:
            select.append(f"{parsed[c.name].keep()} AS {q('r__' + c.name)}")
        select.append(f"{parsed[c.name].value} AS {q(c.name)}")
    checks = _row_checks(table, now, kept_raw)
    cond_sql = " ".join(f"WHEN {cond} THEN {i}" for i, (cond, _, _, _) in enumerate(checks))
    checks_view = staging.fresh(f"{table.name}_checks")
    con.execute(
        f"CREATE TEMP VIEW {q(checks_view)} AS SELECT *, CASE {cond_sql} END AS _err "
        f"FROM (SELECT {', '.join(select)} FROM {q(view)})"
    )
    keys = ", ".join(q(k) for k in table.key)
    key_text = " || '/' || ".join(f"CAST({q(k)} AS VARCHAR)" for k in table.key)
    key_names = "/".join(table.key)
    ref_joins, ref_conds = [], []
    if not allow_orphans:
        for i, (col, ref_table, _) in enumerate(table.references):
            if ref_table not in known:
                continue
            alias = f"k{i}"
            ref_joins.append(f"LEFT JOIN {q(known[ref_table])} {alias} ON c.{q(col)} = {alias}.k")
            ref_conds.append((col, ref_table, f"c.{q(col)} IS NOT NULL AND {alias}.k IS NULL"))

    # -- one pass: how many rows fail a check, repeat a key, or refer to an unknown key ---
    # Counting the distinct 64-bit hashes of the key costs less than grouping the key's
    # columns (or grouping the hashes); equal keys hash alike, so as many distinct hashes as
    # rows that passed means no key seen twice (the usual case).
    passed = "WHERE c._err IS NULL"
    orphan_sql = (
        f"count(*) FILTER ({passed} AND ({' OR '.join(cond for _, _, cond in ref_conds)}))"
        if ref_conds
        else "0"
    )
    hashed = ", ".join(f"c.{q(k)}" for k in table.key)
    rows_in, failed, repeats, orphans = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE c._err IS NOT NULL),
                   count(*) FILTER ({passed}) - count(DISTINCT hash({hashed})) FILTER ({passed}),
                   {orphan_sql}
            FROM {q(checks_view)} c {" ".join(ref_joins)}"""
    ).fetchall()[0]
    final = staging.fresh(f"{table.name}_final")
    checked = staging.fresh(f"{table.name}_checked")
    dupkeys = staging.fresh(f"{table.name}_dupkeys")
    dedup = staging.fresh(f"{table.name}_dedup")
    now_sql = f"TIMESTAMP '{now.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    cols = ", ".join(q(c) for c in table.column_names)
    ok = "_err IS NULL AND (_n = 1 OR _rank_last = 1) AND _ref_err IS NULL"
    valid = staging.fresh(f"{table.name}_valid")
    source = "_file || ':' || CAST(_line AS VARCHAR) AS _source"
    no_dups = """CAST(1 AS BIGINT) AS _n, CAST(NULL AS BOOLEAN) AS _identical,
                 CAST(NULL AS BIGINT) AS _rank_last, CAST(NULL AS BIGINT) AS _winner_line,
                 CAST(NULL AS BIGINT) AS _first_line, CAST(NULL AS INTEGER) AS _ref_err"""
    if not (failed or repeats or orphans):
        # the usual case — every row passes, no key twice, no orphan — keeps no copy of the
        # rows: the store reads them through the checks once more (parsing again costs
        # less than writing and reading a copy), and nothing is rejected
        con.execute(
            f"CREATE TEMP VIEW {q(final)} AS SELECT *, 0 AS _rid, {no_dups} "
            f"FROM {q(checks_view)} WHERE false"
        )
        con.execute(
            f"""CREATE TEMP VIEW {q(valid)} AS
                SELECT {cols}, {source}, {now_sql} AS _ingested_at FROM {q(checks_view)}"""
        )
    else:
        # No row number in the checks: ``row_number() OVER ()`` makes DuckDB compute the
        # whole projection (every parse and check) on one thread. The copy's ``rowid`` is
        # the same number for free: its rows are inserted in the view's order.
        con.execute(f"CREATE TEMP TABLE {q(checked)} AS SELECT * FROM {q(checks_view)}")
        # -- duplicates among rows that passed (window work only for keys seen twice) ----
        values = ", ".join(q(c) for c in table.column_names)
        con.execute(
            f"CREATE TEMP TABLE {q(dupkeys)} AS SELECT {keys} FROM {q(checked)} "
            + (
                f"WHERE _err IS NULL GROUP BY {keys} HAVING count(*) > 1"
                if repeats
                else "WHERE false"
            )
        )
        con.execute(
            f"""CREATE TEMP TABLE {q(dedup)} AS
                SELECT _rid, _file, _line,
                       count(*) OVER w AS _n,
                       min(_h) OVER w = max(_h) OVER w AS _identical,
                       row_number() OVER (w ORDER BY _fileno DESC, _line DESC) AS _rank_last,
                       last(_line) OVER (w ORDER BY _fileno, _line
                            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                            AS _winner_line,
                       first(_line) OVER (w ORDER BY _fileno, _line
                            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                            AS _first_line
                FROM (SELECT c.*, c.rowid AS _rid, hash({values}) AS _h,
                             dense_rank() OVER (ORDER BY _file) AS _fileno
                      FROM {q(checked)} c SEMI JOIN {q(dupkeys)} USING ({keys})
                      WHERE _err IS NULL)
                WINDOW w AS (PARTITION BY {keys})"""
        )
        ref_case = " ".join(f"WHEN {cond} THEN {j}" for j, (_, _, cond) in enumerate(ref_conds))
        ref_err = f"CASE {ref_case} END" if ref_conds else "CAST(NULL AS INTEGER)"
        clean = _clean(con, checked, dupkeys, ref_joins, [cond for _, _, cond in ref_conds])
        if clean:
            # no key seen twice, no orphan: the checked rows with those columns empty
            con.execute(
                f"CREATE TEMP VIEW {q(final)} AS SELECT *, rowid AS _rid, {no_dups} "
                f"FROM {q(checked)}"
            )
        else:
            con.execute(
                f"""CREATE TEMP TABLE {q(final)} AS
                    SELECT c.*, c.rowid AS _rid, coalesce(d._n, 1) AS _n, d._identical,
                           d._rank_last, d._winner_line, d._first_line, {ref_err} AS _ref_err
                    FROM {q(checked)} c LEFT JOIN {q(dedup)} d ON d._rid = c.rowid
                    {" ".join(ref_joins)}"""
            )
        # the checked rows are stored in _rid order, and a filter keeps it (insertion
        # order is preserved): only the joined table needs sorting back
        order = "" if clean else " ORDER BY _rid"
        con.execute(
            f"""CREATE TEMP VIEW {q(valid)} AS
                SELECT {cols}, {source}, {now_sql} AS _ingested_at
                FROM {q(final)} WHERE {ok}{order}"""
        )
    reason_case = " ".join(f"WHEN {i} THEN {reason}" for i, (_, _, _, reason) in enumerate(checks))
    rule_case = " ".join(f"WHEN {i} THEN {lit(rule)}" for i, (_, rule, _, _) in enumerate(checks))
    col_case = " ".join(
        f"WHEN {i} THEN {lit(col) if col else 'NULL'}" for i, (_, _, col, _) in enumerate(checks)
    )
    ref_reason = " ".join(
        f"WHEN {j} THEN {lit(col + ' ')} || {_show(f'c.{q(col)}')} || "
        f"{lit(f' is not in {ref}; load it first or pass --allow-orphans')}"
        for j, (col, ref, _) in enumerate(ref_conds)
    )
    ref_col = " ".join(f"WHEN {j} THEN {lit(col)}" for j, (col, _, _) in enumerate(ref_conds))
    raw = (
        '"_raw"'
        if has_raw
        else (
            "CAST(to_json(struct_pack("
            + ", ".join(
                f"{q(c)} := {kept_raw[c] if c in kept_raw else q(c)}" for c in table.column_names
            )
            + ")) AS VARCHAR)"
        )
    )
    dup_reason = (
        f"CASE WHEN _identical THEN {lit('exact duplicate of line ')} || "
        f"CAST(_winner_line AS VARCHAR) "
        f"|| {lit(' (one copy is loaded)')} ELSE {lit(f'duplicate {key_names} ')} || "
        f"{_show(key_text)} || {lit('; line ')} || CAST(_winner_line AS VARCHAR) || "
        f"{lit(' has the same key and is loaded instead (the last occurrence wins)')} END"
    )
    rejects = staging.fresh(f"{table.name}_rejects")
    con.execute(
        f"""CREATE TEMP VIEW {q(rejects)} AS
            SELECT _file, _line,
              CASE WHEN _err IS NOT NULL THEN CASE _err {col_case} END
                   WHEN _n > 1 THEN {lit(key_names)}
                   ELSE CASE _ref_err {ref_col or "WHEN -1 THEN NULL"} END END AS column_name,
              CASE WHEN _err IS NOT NULL THEN CASE _err {rule_case} END
                   WHEN _n > 1 THEN 'duplicate' ELSE 'reference' END AS rule,
              CASE WHEN _err IS NOT NULL THEN CASE _err {reason_case} END
                   WHEN _n > 1 THEN {dup_reason}
                   ELSE CASE _ref_err {ref_reason or "WHEN -1 THEN NULL"} END END AS reason,
              {raw} AS raw
            FROM {q(final)} c WHERE NOT ({ok}) ORDER BY _rid"""
    )
    made = [valid, rejects, final, checks_view, dedup, dupkeys, checked]
    return Validated(table.name, valid, rejects, rows_in, readings, made)


def _null(logical: str) -> str:
    sql = {
        "timestamp": "TIMESTAMP",
        "money": "DOUBLE",
        "float": "DOUBLE",
        "int": "BIGINT",
        "bool": "BOOLEAN",
    }.get(logical, "VARCHAR")
    return f"CAST(NULL AS {sql})"


def _row_checks(
    table: schema.Table, now: dt.datetime, kept_raw: dict[str, str]
) -> list[tuple[str, str, str | None, str]]:
    """(condition, rule, column, reason expression) in the order they are applied.

    ``kept_raw`` maps the columns whose raw value was kept (their parse can fail) to the
    expression of its text.
    """
    checks: list[tuple[str, str, str | None, str]] = [
        ("_reject IS NOT NULL", "adapter", None, "_reject")
    ]
    for c in table.columns:
        if c.required:
            had = f" AND {q('r__' + c.name)} IS NULL" if c.name in kept_raw else ""
            checks.append(
                (
                    f"{q(c.name)} IS NULL{had}",
                    "required",
                    c.name,
                    lit(f"required {c.name} is empty; fill it in or map another column to it"),
                )
            )
    for c in table.columns:
        if c.name not in kept_raw:
            continue  # nothing to parse, nothing can fail
        word = TYPE_WORDS[c.type]
        hint = {
            "timestamp": "; fix the value or declare date_format in a mapping",
            "money": "; use digits with one decimal mark",
            "float": "; use digits with one decimal mark",
        }.get(c.type, "")
        checks.append(
            (
                f"{q('r__' + c.name)} IS NOT NULL AND {q(c.name)} IS NULL",
                "type",
                c.name,
                f"{lit(c.name + ' ')} || {_show(kept_raw[c.name])} || "
                f"{lit(f' is not {word}{hint}')}",
            )
        )
    for c in table.columns:
        if c.allowed:
            allowed = ", ".join(lit(a) for a in c.allowed)
            checks.append(
                (
                    f"{q(c.name)} IS NOT NULL AND {q(c.name)} NOT IN ({allowed})",
                    "allowed",
                    c.name,
                    f"{lit(c.name + ' ')} || {_show(q(c.name))} || "
                    f"{lit(' is not one of ' + '/'.join(c.allowed))}",
                )
            )
        if c.minimum is not None:
            checks.append(
                (
                    f"{q(c.name)} < {c.minimum}",
                    "range",
                    c.name,
                    f"{lit(c.name + ' ')} || CAST({q(c.name)} AS VARCHAR) || "
                    f"{lit(f' is below {c.minimum:g}')}",
                )
            )
        if c.maximum is not None:
            checks.append(
                (
                    f"{q(c.name)} > {c.maximum}",
                    "range",
                    c.name,
                    f"{lit(c.name + ' ')} || CAST({q(c.name)} AS VARCHAR) || "
                    f"{lit(f' is above {c.maximum:g}')}",
                )
            )
        if c.type == "timestamp":
            horizon = now + (dt.timedelta(days=36525) if c.future_ok else dt.timedelta(days=1))
            limit = f"TIMESTAMP '{horizon.strftime('%Y-%m-%d %H:%M:%S')}'"
            checks.append(
                (
                    f"{q(c.name)} < TIMESTAMP '1900-01-01'",
                    "range",
                    c.name,
                    f"{lit(c.name + ' ')} || CAST({q(c.name)} AS VARCHAR) || "
                    f"{lit(' is before 1900, which cannot be right; fix the value')}",
                )
            )
            checks.append(
                (
                    f"{q(c.name)} > {limit}",
                    "range",
                    c.name,
                    f"{lit(c.name + ' ')} || CAST({q(c.name)} AS VARCHAR) || "
                    + lit(
                        " is in the far future; fix the value or leave it empty"
                        if c.future_ok
                        else " is in the future; fix the value or the clock"
                    ),
                )
            )
    if table.name == "surveys":
        for inst, (lo, hi) in schema.SURVEY_SCALES.items():
            checks.append(
                (
                    f"instrument = {lit(inst)} AND (score < {lo} OR score > {hi})",
                    "range",
                    "score",
                    f"{lit('score ')} || CAST(score AS VARCHAR) || "
                    f"{lit(f' is outside the {inst} scale {lo}-{hi}')}",
                )
            )
    for r in table.rules:
        checks.append(
            (
                f"{q(r.left)} < {q(r.right)}",
                "order",
                r.left,
                lit(r.reason),
            )
        )
    return checks
