"""What a load did, table by table: the numbers a user sees after ``sawubona ingest``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ReasonCount:
    """One kind of problem in one table: how often, and an example."""

    rule: str
    column: str | None
    count: int
    example_reason: str
    example_file: str
    example_line: int


@dataclass
class TableReport:
    table: str
    files: list[str]
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    reasons: list[ReasonCount] = field(default_factory=list)
    readings: dict[str, str] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        """The invariant: every row read is loaded or quarantined."""
        return self.rows_read == self.rows_loaded + self.rows_quarantined


@dataclass
class IngestReport:
    load_id: str
    store: str
    source: str
    committed: bool
    tables: list[TableReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(t.rows_read for t in self.tables)

    @property
    def rows_loaded(self) -> int:
        return sum(t.rows_loaded for t in self.tables)

    @property
    def rows_quarantined(self) -> int:
        return sum(t.rows_quarantined for t in self.tables)

    def table(self, name: str) -> TableReport:
        for t in self.tables:
            if t.table == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows_read"], d["rows_loaded"] = self.rows_read, self.rows_loaded
        d["rows_quarantined"] = self.rows_quarantined
        return d
