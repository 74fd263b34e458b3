"""Terminal rendering (rich) for the CLI: summaries and tables, no business logic."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from sawubona.ingest.report import IngestReport

# Piped output (files, CI logs, tests) gets wide lines instead of rich's 80 columns.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def render_ingest(report: IngestReport, *, checked_only: bool = False, top: int = 3) -> None:
    """The load summary: per table rows read/loaded/quarantined, then the top reasons."""
    verb = "would load" if checked_only else "loaded"
    title = f"{'Check' if checked_only else 'Load'} {report.load_id or ''} into {report.store}"
    t = Table(title=title.replace("  ", " "), title_justify="left")
    t.add_column("table")
    t.add_column("read", justify="right")
    t.add_column(verb, justify="right")
    t.add_column("quarantined", justify="right")
    if not checked_only:
        t.add_column("new", justify="right")
        t.add_column("updated", justify="right")
        t.add_column("unchanged", justify="right")
    for tr in report.tables:
        row = [
            tr.table,
            f"{tr.rows_read:,}",
            f"{tr.rows_loaded:,}",
            f"[red]{tr.rows_quarantined:,}[/red]" if tr.rows_quarantined else "0",
        ]
        if not checked_only:
            row += [f"{tr.inserted:,}", f"{tr.updated:,}", f"{tr.unchanged:,}"]
        t.add_row(*row)
    t.add_section()
    total = [
        "all",
        f"{report.rows_read:,}",
        f"{report.rows_loaded:,}",
        f"{report.rows_quarantined:,}",
    ]
    if not checked_only:
        total += [
            f"{sum(x.inserted for x in report.tables):,}",
            f"{sum(x.updated for x in report.tables):,}",
            f"{sum(x.unchanged for x in report.tables):,}",
        ]
    t.add_row(*total, style="bold")
    out.print(t)
    problems = [(tr.table, r) for tr in report.tables for r in tr.reasons[:top]]
    if problems:
        q = Table(title="Why rows were quarantined (top reasons per table)", title_justify="left")
        q.add_column("table")
        q.add_column("rows", justify="right")
        q.add_column("reason (first example)")
        q.add_column("where")
        for table, r in problems:
            q.add_row(table, f"{r.count:,}", r.example_reason, f"{r.example_file}:{r.example_line}")
        out.print(q)
        if not checked_only:
            out.print(
                f"See every quarantined row: [bold]sawubona quarantine --store {report.store}"
                "[/bold] (add --table NAME)"
            )
    for note in report.notes:
        out.print(f"[dim]note: {note}[/dim]")


def render_analyze(report: Any) -> None:
    """Per lens: ran or skipped (and why), tables written with rows, findings, time."""
    t = Table(title=f"Analysis as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC", title_justify="left")
    for col in ("lens", "status", "tables written", "findings", "seconds", "note"):
        t.add_column(col)
    for r in report.lenses:
        written = ", ".join(f"{k} ({v:,})" for k, v in r.tables.items())
        status = "[green]ran[/green]" if r.status == "ran" else f"[yellow]{r.status}[/yellow]"
        t.add_row(r.lens, status, written, str(r.findings), f"{r.seconds:.1f}", r.message)
    out.print(t)


def render_portrait(p: Any) -> None:
    """A portrait in the terminal: who, what not to do now, sections, recent story."""
    who = p.who
    head = f"[bold]{who.get('name') or p.customer_id}[/bold]  customer {p.customer_id}"
    facts = [f"{k}: {v}" for k, v in who.items() if v not in (None, "", []) and k != "name"]
    out.print(head, markup=True)
    out.print(" · ".join(facts), markup=False)
    if p.do_not:
        out.print("\n[bold]What not to do now[/bold]")
        for st in p.do_not:
            out.print(f"  - {st.text}", markup=False)
    for name, statements in p.sections.items():
        if statements:
            out.print(f"\n[bold]{name.capitalize()}[/bold]")
            for st in statements:
                out.print(f"  - {st.text}", markup=False)
    if p.story:
        out.print("\n[bold]Recent story[/bold]")
        for e in p.story[:15]:
            out.print(f"  {e['at']}  {e['what']}: {e['summary']}", markup=False)


def render_rows(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*["" if v is None else str(v) for v in r])
    out.print(t)


@contextmanager
def progress(label: str) -> Iterator[Any]:
    """A spinner on stderr whose text follows the work; yields a ``(text, n)`` callback."""
    with err.status(label) as status:

        def update(text: str, n: int | None = None) -> None:
            status.update(f"{text}{f' ({n:,} rows)' if n else ''}")

        yield update
