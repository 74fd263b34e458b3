"""Docs that cannot drift: pages generated from the declarations they describe.

``python -m sawubona._docs`` rewrites ``docs/data-model.md`` (from the schema),
``docs/cli.md`` (from the CLI's own options and help) and ``docs/adapters.md``
(from each adapter module's docstring). ``tests/test_docs.py`` fails when a page
and its source differ.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import typer
import typer.main

from sawubona import schema
from sawubona.cli import app
from sawubona.ingest.adapters import ADAPTERS, get_adapter


def cli_markdown() -> str:
    group = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the CLI itself (`python -m sawubona._docs`); `sawubona COMMAND --help`",
        "shows the same. Every command exits 0 on success, 1 with `Error: <one sentence>` when",
        "something is wrong, and 2 on a usage error; `--debug` (before the command) shows traces.",
        "",
    ]
    ctx = typer.Context(group, info_name="sawubona")
    for name in group.list_commands(ctx):  # type: ignore[attr-defined]
        cmd = group.get_command(ctx, name)  # type: ignore[attr-defined]
        if cmd is None:
            continue
        help_text = inspect.cleandoc(cmd.help or "").replace("[bold]", "`").replace("[/bold]", "`")
        lines += [f"## `sawubona {name}`", "", help_text, ""]
        rows = []
        for p in cmd.params:
            if p.param_type_name == "argument":
                rows.append(
                    (
                        f"`{(p.name or '').upper()}`",
                        (getattr(p, "help", None) or "argument").strip(),
                        "",
                    )
                )
            elif p.param_type_name == "option" and not getattr(p, "hidden", False):
                opts = ", ".join(f"`{o}`" for o in p.opts)
                default = "" if p.default in (None, False, ()) or p.is_flag else f"`{p.default}`"
                rows.append((opts, (p.help or "").strip(), default))
        if rows:
            lines += ["| option | meaning | default |", "|---|---|---|"]
            lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
            lines.append("")
    return "\n".join(lines)


def adapters_markdown() -> str:
    lines = [
        "# Adapters for public data formats",
        "",
        "Generated from each adapter module's docstring (`python -m sawubona._docs`). Use one",
        "with `sawubona ingest --adapter NAME FOLDER`. Rows an adapter refuses are quarantined",
        "with its reason, like any other invalid row.",
        "",
    ]
    for name, module in ADAPTERS.items():
        adapter = get_adapter(name)
        doc = inspect.cleandoc(
            importlib.import_module(f"sawubona.ingest.adapters.{module}").__doc__ or ""
        )
        lines += [f"## `{name}` — {adapter.title}", "", doc, ""]
    return "\n".join(lines)


PAGES = {
    "data-model.md": schema.data_model_markdown,
    "cli.md": cli_markdown,
    "adapters.md": adapters_markdown,
}


def write_all(docs: Path) -> None:
    for name, render in PAGES.items():
        (docs / name).write_text(render(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    write_all(Path(__file__).resolve().parents[2] / "docs")
