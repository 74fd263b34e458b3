"""Which file feeds which canonical table, and which column feeds which column.

Three ways in, from least to most explicit:

1. **No mapping**: a file named after a canonical table (``customers.csv``,
   ``journeys.parquet``, ``touchpoints_2024.jsonl``) whose columns carry the
   canonical names, or a known other spelling (``Customer ID``, ``CustomerID``,
   ``customer-id`` all read as ``customer_id``; see the aliases in
   ``docs/data-model.md``).
2. **A mapping file** (TOML; ``sawubona init`` writes a commented template for
   every table) naming files, columns, constant values, value translations and
   parsing options per table.
3. **An adapter** for a public format (``--adapter olist``), see
   :mod:`sawubona.ingest.adapters`.

Mapping file layout::

    [defaults]                   # optional, apply to every table
    date_format = "%d/%m/%Y"     # otherwise guessed per column
    decimal = ","                # otherwise guessed per column
    timezone = "Europe/London"   # zone of timestamps written without one (default UTC)
    encoding = "cp1252"          # otherwise sniffed
    delimiter = ";"              # otherwise sniffed

    [tables.journeys]
    files = ["exports/orders*.csv"]          # relative to the mapping file; globs allowed
    columns = { journey_id = "Order No", customer_id = "Client", started_at = "Date" }
    constants = { kind = "order" }           # a value for every row
    values.outcome = { Delivered = "achieved", Cancelled = "failed" }
    formats = { started_at = "%d/%m/%Y %H:%M" }   # per-column date formats
"""

from __future__ import annotations

import glob
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from sawubona import schema
from sawubona.errors import InputError, MappingError
from sawubona.ingest.parse import check_format, q
from sawubona.ingest.readers import SUFFIXES, StagedFile, Staging
from sawubona.ingest.validate import ColumnOptions

_OPTION_KEYS = ("date_format", "decimal", "timezone", "encoding", "delimiter", "format")


@dataclass
class TableMapping:
    """How one canonical table is read from one or more files."""

    table: str
    files: list[Path]
    columns: dict[str, str] = field(default_factory=dict)  # canonical → header in the file
    constants: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)

    def column_options(self) -> dict[str, ColumnOptions]:
        out = {}
        for c in schema.table(self.table).columns:
            fmt = self.formats.get(c.name) or self.options.get("date_format")
            out[c.name] = ColumnOptions(
                date_format=fmt,
                decimal=self.options.get("decimal"),
                timezone=self.options.get("timezone", "UTC"),
            )
        return out


def table_for_file(path: Path) -> str | None:
    """The canonical table a file is named after, if any."""
    stem = path.name
    for suffix in reversed(path.suffixes):
        if suffix.lower() in SUFFIXES or suffix.lower() in (".gz", ".zst"):
            stem = stem[: -len(suffix)]
    norm = schema.normalise_name(stem)
    names = sorted(schema.TABLE_BY_NAME, key=len, reverse=True)
    for name in names:
        if norm == name:
            return name
    for name in names:
        if norm.startswith(name + "_"):
            return name
    return None


def auto_plan(paths: list[Path]) -> tuple[list[TableMapping], list[str]]:
    """Mappings for files named after canonical tables; notes on files left out."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        elif p.exists():
            files.append(p)
        else:
            raise InputError("no such file or folder; check the path", file=str(p))
    by_table: dict[str, list[Path]] = {}
    notes = []
    for f in files:
        name = table_for_file(f)
        if name and f.suffix.lower() in SUFFIXES:
            by_table.setdefault(name, []).append(f)
        else:
            notes.append(f"left out {f.name}: not named after a canonical table")
    if not by_table:
        where = ", ".join(str(p) for p in paths)
        raise InputError(
            f"no file in {where} is named after a canonical table (customers.csv, "
            "journeys.parquet, ...); rename the files, or use --mapping FILE or --adapter NAME"
        )
    return [TableMapping(t, fs) for t, fs in by_table.items()], notes


def load_mapping(path: Path) -> list[TableMapping]:
    """Read a TOML mapping file (see the module docstring for its layout)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MappingError(f"no mapping file at {path}; write one with `sawubona init`") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML ({exc}); fix the line it names") from None
    defaults = _options(doc.get("defaults", {}), f"{path} [defaults]")
    tables = doc.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise MappingError(f"{path}: no [tables.NAME] section; add one per canonical table")
    out = []
    for name, spec in tables.items():
        where = f"{path} [tables.{name}]"
        if name not in schema.TABLE_BY_NAME:
            raise MappingError(
                f"{where}: {name} is not a canonical table; use one of "
                + ", ".join(schema.TABLE_BY_NAME)
            )
        if not isinstance(spec, dict):
            raise MappingError(f"{where}: expected a table of settings")
        patterns = spec.get("files") or spec.get("file")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns:
            raise MappingError(f"{where}: no files = [...]; name the file(s) for this table")
        files: list[Path] = []
        for pat in patterns:
            full = str(path.parent / pat) if not Path(pat).is_absolute() else pat
            hits = sorted(Path(h) for h in glob.glob(full))
            if not hits:
                raise MappingError(f"{where}: no file matches {pat!r}; check the path")
            files += hits
        t = schema.table(name)
        columns = _str_dict(spec.get("columns", {}), f"{where} columns")
        for canon in columns:
            if canon not in t.column_names:
                raise MappingError(
                    f"{where}: {canon} is not a column of {name}; use one of "
                    + ", ".join(t.column_names)
                )
        constants = _str_dict(spec.get("constants", {}), f"{where} constants")
        values = {
            k: _str_dict(v, f"{where} values.{k}") for k, v in dict(spec.get("values", {})).items()
        }
        formats = {
            k: check_format(v, f"{where} formats.{k}")
            for k, v in _str_dict(spec.get("formats", {}), f"{where} formats").items()
        }
        options = {**defaults, **_options(spec, where)}
        out.append(TableMapping(name, files, columns, constants, values, formats, options))
    return out


def _str_dict(obj: Any, where: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise MappingError(f'{where}: expected a table like {{ name = "value" }}')
    return {str(k): str(v) for k, v in obj.items()}


def _options(spec: dict[str, Any], where: str) -> dict[str, str]:
    opts = {k: str(spec[k]) for k in _OPTION_KEYS if k in spec}
    if "date_format" in opts:
        check_format(opts["date_format"], where)
    if opts.get("decimal") not in (None, ".", ","):
        raise MappingError(f'{where}: decimal must be "." or ","')
    return opts


def map_file(staging: Staging, staged: StagedFile, tm: TableMapping) -> str:
    """A staged view of ``staged`` with canonical column names; errors if a required one lacks."""
    t = schema.table(tm.table)
    available = set(staged.columns)
    by_norm = {schema.normalise_name(orig): new for new, orig in staged.columns.items()}
    chosen: dict[str, str] = {}
    for c in t.columns:
        if c.name in tm.constants:
            continue
        if c.name in tm.columns:
            header = tm.columns[c.name]
            src = by_norm.get(schema.normalise_name(header))
            if src is None:
                raise InputError(
                    f"the mapping names column {header!r} for {tm.table}.{c.name}, but the file "
                    "has no such column; fix the mapping",
                    file=str(staged.path),
                )
            chosen[c.name] = src
        elif c.name in available:
            chosen[c.name] = c.name
        else:
            for alias in c.aliases:
                if alias in available and alias not in chosen.values():
                    chosen[c.name] = alias
                    break
    missing = [c for c in t.required if c not in chosen and c not in tm.constants]
    if missing:
        have = ", ".join(staged.columns.values())
        raise InputError(
            f"required column {missing[0]} missing for {tm.table} (the file has: {have}); "
            "rename the column or map it in a mapping file (sawubona init writes one)",
            file=str(staged.path),
        )
    con = staging.con
    select, joins = [], []
    if tm.constants:
        consts = staging.fresh("constants")
        con.register(consts + "_arrow", pa.table({k: [v] for k, v in tm.constants.items()}))
        con.execute(f"CREATE TEMP TABLE {q(consts)} AS SELECT * FROM {q(consts + '_arrow')}")
        con.unregister(consts + "_arrow")
        joins.append(f"CROSS JOIN {q(consts)} k")
        select += [f"k.{q(c)} AS {q(c)}" for c in tm.constants if c in t.column_names]
    for i, (canon, src) in enumerate(chosen.items()):
        if canon in tm.values:
            vm = staging.fresh("values")
            pairs = tm.values[canon]
            con.register(vm + "_arrow", pa.table({"src": list(pairs), "dst": list(pairs.values())}))
            con.execute(f"CREATE TEMP TABLE {q(vm)} AS SELECT * FROM {q(vm + '_arrow')}")
            con.unregister(vm + "_arrow")
            alias = f"v{i}"
            joins.append(
                f"LEFT JOIN {q(vm)} {alias} ON trim(CAST(s.{q(src)} AS VARCHAR)) = {alias}.src"
            )
            select.append(f"COALESCE({alias}.dst, CAST(s.{q(src)} AS VARCHAR)) AS {q(canon)}")
        else:
            select.append(f"s.{q(src)} AS {q(canon)}")
    view = staging.fresh(f"{tm.table}_mapped")
    con.execute(
        f"CREATE TEMP VIEW {q(view)} AS SELECT {', '.join(select)}, s._file, s._line "
        f"FROM {q(staged.name)} s {' '.join(joins)}"
    )
    return view


def template() -> str:
    """A commented mapping template for every canonical table (``sawubona init``)."""
    out = [
        "# sawubona mapping: which of your files and columns feed each canonical table.",
        "# Delete the tables you do not have. Paths are relative to this file; globs work.",
        "# Columns you leave out are read from a column of the canonical name when present.",
        "",
        "[defaults]",
        '# date_format = "%d/%m/%Y %H:%M"   # guessed per column when absent',
        '# decimal = ","                    # "." or ","; guessed per column when absent',
        '# timezone = "UTC"                 # zone of timestamps written without one',
        '# encoding = "utf-8"               # sniffed when absent',
        '# delimiter = ","                  # sniffed when absent',
        "",
    ]
    for t in schema.TABLES:
        out += [
            f"# {t.name}: one row is {t.row}.",
            f"[tables.{t.name}]",
            f'files = ["{t.name}.csv"]',
            "[tables." + t.name + ".columns]",
        ]
        for c in t.columns:
            req = "required" if c.required else "optional"
            out.append(f'# {c.name} = "Your column"   # {c.type}, {req}: {c.description}')
        out += [f'# [tables.{t.name}.constants]  e.g. kind = "order"', ""]
    return "\n".join(out)
