"""What every lens is: pure, declared once, with an explicit ``as_of``.

A lens takes canonical tables (Ibis expressions, wherever the data lives), an
``as_of`` timestamp and its settings, and returns result tables and findings.
It never reads files, prints, or knows the web app. A lens declares the
canonical tables it **needs** (without them it is skipped, and says why) and
those it **uses** when present; :mod:`sawubona.analyze` runs it and writes its
results into the store as ``<lens>_<what>`` tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir


@dataclass(frozen=True)
class Setting:
    """One tunable of a lens, declared once (name, default, help) for CLI, docs and tests."""

    name: str
    default: Any
    help: str


@dataclass
class Finding:
    """A sentence with numbers, linked to the rows behind it.

    ``table`` and ``where`` name the rows: the result (or canonical) table and
    column = value filters that select them, so every surface can drill down.
    """

    lens: str
    key: str
    text: str
    value: float | None = None
    n: int | None = None
    low: float | None = None
    high: float | None = None
    table: str | None = None
    where: dict[str, Any] = field(default_factory=dict)
    severity: str = "info"  # info | attention | action


@dataclass
class LensInput:
    """What a lens sees: canonical tables present, earlier results, ``as_of``, settings."""

    tables: Mapping[str, ir.Table]
    results: Mapping[str, ir.Table]
    as_of: dt.datetime
    settings: Mapping[str, Any]

    def has(self, name: str) -> bool:
        return name in self.tables

    def table(self, name: str) -> ir.Table:
        return self.tables[name]

    def result(self, name: str) -> ir.Table | None:
        return self.results.get(name)

    def until(self, name: str) -> ir.Table:
        """Canonical table ``name`` as it was at ``as_of``: rows whose event time is later are
        left out (rows with no event time stay). Later *fields* of a row that existed (a
        promise kept after ``as_of``) are the lens's to read as not-yet-happened."""
        import ibis

        from sawubona import schema

        table = self.tables[name]
        cols = schema.table(name).event_time
        if not cols:
            return table
        stamp = ibis.coalesce(*[table[c] for c in cols]) if len(cols) > 1 else table[cols[0]]
        return table.filter(stamp.isnull() | (stamp <= self.as_of))


@dataclass
class LensOutput:
    """Result tables (Arrow) named ``<lens>_<what>``, findings, and what was skipped."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Lens(Protocol):
    name: str
    title: str
    needs: tuple[str, ...]
    uses: tuple[str, ...]
    settings: tuple[Setting, ...]
    #: other lenses whose results this one reads when present
    after: tuple[str, ...]

    def run(self, data: LensInput) -> LensOutput: ...
