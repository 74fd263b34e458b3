"""Docs that cannot drift: generated pages match their sources; the README's commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sawubona import _docs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", sorted(_docs.PAGES))
def test_generated_page_is_current(page: str) -> None:
    assert (ROOT / "docs" / page).read_text(encoding="utf-8") == _docs.PAGES[page](), (
        f"docs/{page} is out of date: run `.venv/bin/python -m sawubona._docs`"
    )


def test_readme_starts_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:10]
    commands = [line.strip() for line in head if re.match(r"^\s+make \w+", line)]
    assert [c.split()[1] for c in commands[:2]] == ["demo", "test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_readme_sawubona_commands_are_real_commands() -> None:
    import typer
    import typer.main

    from sawubona.cli import app

    group = typer.main.get_command(app)
    known = set(group.list_commands(typer.Context(group)))  # type: ignore[attr-defined]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    used = re.findall(r"(?:^\s+|`)sawubona ([a-z]+)", readme, re.M)
    assert used and set(used) <= known, set(used) - known


def test_every_adapter_is_documented_in_the_readme() -> None:
    from sawubona.ingest.adapters import ADAPTERS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ADAPTERS:
        assert f"--adapter {name}" in readme, name
