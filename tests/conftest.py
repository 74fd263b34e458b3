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


@pytest.fixture(autouse=True, scope="session")
def _worklists_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Worklists of server and Spark stores live in SAWUBONA_WORK_DIR (default: the user's
    home); tests keep theirs in a temporary folder."""
    old = os.environ.get("SAWUBONA_WORK_DIR")
    os.environ["SAWUBONA_WORK_DIR"] = str(tmp_path_factory.mktemp("work"))
    yield
    if old is None:
        os.environ.pop("SAWUBONA_WORK_DIR", None)
    else:
        os.environ["SAWUBONA_WORK_DIR"] = old


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


HOSTILE_NAME = '<script>window.__xss = 1</script>Eve "Quote" O\'Brien'
HOSTILE_COMMENT = '"><img src=x onerror="window.__xss = 2">great service <b>bold</b>'


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small analysed telco demo world plus one customer whose text is hostile HTML."""
    from sawubona.demo import generate

    root = tmp_path_factory.mktemp("demo")
    generate(root / "world", world="telco", size=1500, seed=11)
    hostile = root / "hostile"
    hostile.mkdir()
    (hostile / "customers.csv").write_text(
        "customer_id,name,email,segment,joined_at\n"
        f'"X<script>1","{HOSTILE_NAME.replace(chr(34), chr(34) * 2)}",eve@example.com,vip,'
        "2024-01-01\n",
        encoding="utf-8",
    )
    (hostile / "surveys.csv").write_text(
        "survey_id,customer_id,instrument,responded_at,score,comment\n"
        f'xs1,"X<script>1",nps,2024-06-01,10,"{HOSTILE_COMMENT.replace(chr(34), chr(34) * 2)}"\n',
        encoding="utf-8",
    )
    path = root / "demo.duckdb"
    with sawubona.open(path) as s:
        s.ingest(root / "world")
        report = s.ingest(hostile)
        assert report.rows_quarantined == 0, report.to_dict()
        s.analyze()
    return path
