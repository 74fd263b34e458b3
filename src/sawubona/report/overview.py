"""The overview: the headline figures of every lens, with their uncertainty.

One function builds it from the store (lens runs, findings, result tables), and
both the web app's front page and the static report render it, so the two never
disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sawubona import charts, schema
from sawubona import lenses as registry
from sawubona.store import META_TABLES

if TYPE_CHECKING:
    from sawubona.store import Store

RATE_WORDS = ("rate", "share", "integrity", "percent")


@dataclass
class LensSection:
    name: str
    title: str
    status: str  # ran | skipped | not run
    message: str
    as_of: dt.datetime | None
    findings: list[dict[str, Any]] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    chart: str = ""


@dataclass
class Overview:
    store: str
    as_of: dt.datetime | None
    data: dict[str, int]
    quarantined: int
    lenses: list[LensSection]


def _latest_runs(store: Store) -> dict[str, dict[str, Any]]:
    if not store.count("lens_runs"):
        return {}
    runs = store.table("lens_runs").order_by("started_at").to_pyarrow().to_pylist()
    return {r["lens"]: r for r in runs}


def _chart(lens: str, findings: list[dict[str, Any]]) -> str:
    rows = [
        charts.Estimate(f["text"].split(":")[0][:40], f["value"], f["low"], f["high"], f["n"])
        for f in findings
        if f["value"] is not None and f["low"] is not None and f["high"] is not None
    ]
    if not rows:
        return ""
    percent = all(0 <= r.value <= 1 and (r.low or 0) >= 0 and (r.high or 0) <= 1 for r in rows)
    same_scale = [r for r in rows if percent or abs(r.value) <= 100]
    return charts.intervals(
        same_scale[:12],
        title=f"{lens}: headline figures with 95% intervals",
        percent=percent,
        domain=(0.0, 100.0) if percent else None,
    )


def build_overview(store: Store) -> Overview:
    data = {t.name: store.count(t.name) for t in schema.TABLES}
    runs = _latest_runs(store)
    findings: dict[str, list[dict[str, Any]]] = {}
    if store.count("findings"):
        for f in store.table("findings").to_pyarrow().to_pylist():
            f["where"] = json.loads(f.pop("where_json") or "{}")
            findings.setdefault(f["lens"], []).append(f)
    tables = {
        n: store.count(n)
        for n in store.tables()
        if n not in schema.TABLE_BY_NAME and n not in META_TABLES
    }
    sections = []
    known = registry.available()
    names = list(dict.fromkeys([*known, *runs]))
    for name in names:
        run = runs.get(name)
        lens = known.get(name)
        section = LensSection(
            name=name,
            title=lens.title if lens else name,
            status=run["status"] if run else "not run",
            message=(run or {}).get("message") or "",
            as_of=run["as_of"] if run else None,
            findings=findings.get(name, []),
            tables={k: v for k, v in tables.items() if k.startswith(f"{name}_")},
        )
        section.chart = _chart(name, section.findings)
        sections.append(section)
    as_of = max((s.as_of for s in sections if s.as_of), default=None)
    return Overview(str(store.path), as_of, data, store.count("quarantine"), sections)
