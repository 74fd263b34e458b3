"""Shared fixtures: a fresh store per test, and the public data sets (skipped when absent)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import sawubona

ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("SAWUBONA_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The folder of public data sets (../shared/data or $SAWUBONA_DATA)."""
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"public data sets not found at {root} (set SAWUBONA_DATA)")
    return root


def dataset(name: str) -> Path:
    """One public data set's folder, or a skip naming what is missing."""
    path = data_root() / name
    if not path.is_dir():
        pytest.skip(f"public data set {name!r} not found at {path} (set SAWUBONA_DATA)")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[sawubona.Store]:
    s = sawubona.open(tmp_path / "test.duckdb")
    yield s
    s.close()
