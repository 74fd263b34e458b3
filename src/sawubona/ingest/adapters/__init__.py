"""Adapters: a downloaded folder of a public data format → canonical tables, no mapping file.

An adapter stages the folder's files (with their line numbers) and returns one
:class:`~sawubona.ingest.pipeline.Source` per canonical table it derives: a
staged view with canonical column names plus ``_file`` and ``_line`` (the
source line each row came from) and, optionally, ``_reject`` — a reason the
adapter itself refuses a row for (it is then quarantined with that reason). The
pipeline parses, validates and loads those views like any other file, so an
adapter only decides *what* each canonical row is; every derivation is written
in the adapter module's docstring, which ``docs/adapters.md`` reproduces.

To add one: write a module with a class that has ``name``, ``title`` and
``read(folder, staging)``, and list it in :data:`ADAPTERS`.
"""

from __future__ import annotations

import fnmatch
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sawubona.errors import InputError
from sawubona.ingest.parse import (
    _is_text,
    choose_date_format,
    choose_decimal,
    number_expr,
    q,
    timestamp_expr,
)
from sawubona.ingest.readers import StagedFile, Staging, read_file

if TYPE_CHECKING:
    from sawubona.ingest.pipeline import Source

#: adapter name → module under sawubona.ingest.adapters
ADAPTERS: dict[str, str] = {
    "olist": "olist",
    "online-retail": "online_retail",
    "telco-churn": "telco_churn",
    "telecom-usage": "telecom_usage",
    "twitter-support": "twitter_support",
    "ticket-log": "ticket_log",
    "nps-verbatims": "nps_verbatims",
}


class Adapter(Protocol):
    name: str
    title: str

    def read(self, folder: Path, staging: Staging) -> list[Source]: ...


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise InputError(f"unknown adapter {name!r}; use one of {', '.join(ADAPTERS)}")
    module = importlib.import_module(f"sawubona.ingest.adapters.{ADAPTERS[name]}")
    adapter: Adapter = module.ADAPTER
    return adapter


def find_optional(folder: Path, adapter: str, *patterns: str) -> Path | None:
    """The first file in ``folder`` whose name matches one of ``patterns`` (case-insensitive)."""
    if folder.is_file():
        candidates = [folder]
    elif folder.is_dir():
        candidates = sorted(p for p in folder.rglob("*") if p.is_file())
    else:
        raise InputError("no such folder; give the folder you downloaded", file=str(folder))
    for pat in patterns:
        for p in candidates:
            if fnmatch.fnmatch(p.name.lower(), pat.lower()):
                return p
    return None


def find_file(folder: Path, adapter: str, *patterns: str) -> Path:
    """Like :func:`find_optional`, but a clear error names the file the adapter needs."""
    found = find_optional(folder, adapter, *patterns)
    if found is None:
        raise InputError(
            f"the {adapter} adapter needs a file named like {patterns[0]} in this folder; "
            "give the folder that holds it",
            file=str(folder),
        )
    return found


def stage(staging: Staging, path: Path, **options: str | None) -> StagedFile:
    """Stage one source file (CSV, Parquet or JSON Lines) with its line numbers."""
    return read_file(path, staging, **options)  # type: ignore[arg-type]


def derive(
    staging: Staging,
    table: str,
    sql: str,
    primary: list[StagedFile],
    also: list[StagedFile] | None = None,
) -> Source:
    """A :class:`Source` for ``table`` from ``sql`` over staged files.

    ``primary`` files are those whose rows become this table's rows: their
    unreadable records are counted (and quarantined) under this table. ``also``
    are files the SQL only joins to.
    """
    from sawubona.ingest.pipeline import Source

    view = staging.fresh(f"{table}_derived")
    staging.con.execute(f"CREATE TEMP VIEW {q(view)} AS {sql}")
    return Source(
        table,
        view,
        [*primary, *(also or [])],
        rejects=[(f, r) for f in primary for r in f.rejects],
    )


def t(staged: StagedFile) -> str:
    """The quoted staged-table name of a file, for use in adapter SQL."""
    return q(staged.name)


# -- SQL helpers shared by adapters that shape typed values themselves -----------------


def text_of(col: str) -> str:
    """A staged column as trimmed text, empty text as NULL."""
    return f"NULLIF(trim(CAST({q(col)} AS VARCHAR)), '')"


def date_exprs(staging: Staging, f: StagedFile, col: str) -> tuple[str, str]:
    """(timestamp expression, ISO text — or the raw text when unreadable) of a date column."""
    if _is_text(staging.columns(f.name)[col]):
        raw = text_of(col)
        ts = timestamp_expr(raw, choose_date_format(staging.con, f.name, col))
    else:
        raw = f"CAST({q(col)} AS VARCHAR)"
        ts = f"TRY_CAST({q(col)} AS TIMESTAMP)"
    return ts, f"coalesce(strftime({ts}, '%Y-%m-%d %H:%M:%S'), {raw})"


def number_of(staging: Staging, f: StagedFile, col: str) -> str:
    """A staged column as DOUBLE, its decimal mark chosen from its values when it is text."""
    if _is_text(staging.columns(f.name)[col]):
        return number_expr(text_of(col), choose_decimal(staging.con, f.name, col))
    return f"TRY_CAST({q(col)} AS DOUBLE)"
