"""The command line, as a user runs it: exit codes, one-sentence errors, JSON output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sawubona", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def hostile(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.csv").write_text(
        "customer_id,joined_at,segment\nc1,2024-01-05,a\nc2,31/02/2024,b\n"
    )
    (folder / "surveys.csv").write_text(
        "survey_id,customer_id,instrument,score\ns1,c1,nps,9\ns2,c1,nps,11\n"
    )
    return folder


def test_ingest_prints_a_summary_with_reasons(tmp_path: Path) -> None:
    res = run("ingest", str(hostile(tmp_path / "in")), "--store", str(tmp_path / "s.duckdb"))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    assert "customers" in res.stdout and "quarantined" in res.stdout
    assert "outside the nps scale 0-10" in res.stdout
    assert "sawubona quarantine" in res.stdout


def test_ingest_json_is_data(tmp_path: Path) -> None:
    res = run(
        "ingest", str(hostile(tmp_path / "in")), "--store", str(tmp_path / "s.duckdb"), "--json"
    )
    data = json.loads(res.stdout)
    assert (data["rows_read"], data["rows_loaded"], data["rows_quarantined"]) == (4, 2, 2)
    assert data["committed"] is True


def test_missing_path_is_one_sentence_and_exit_1(tmp_path: Path) -> None:
    res = run("ingest", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s.duckdb"))
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == f"Error: {tmp_path / 'nowhere'}: no such file or folder; check the path"
    )
    assert res.stdout == ""


def test_debug_shows_the_trace(tmp_path: Path) -> None:
    res = run("--debug", "ingest", str(tmp_path / "nowhere"), "--store", str(tmp_path / "s.duckdb"))
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_usage_error_exits_2(tmp_path: Path) -> None:
    res = run("ingest", "--no-such-option")
    assert res.returncode == 2


def test_check_validates_without_loading(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    res = run("check", str(hostile(tmp_path / "in")), "--store", str(store))
    assert res.returncode == 1
    assert "Error: 2 of 4 rows would be quarantined" in res.stderr
    assert not store.exists()


def test_quarantine_and_tables_commands(tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    run("ingest", str(hostile(tmp_path / "in")), "--store", store)
    rows = json.loads(run("quarantine", "--store", store, "--json").stdout)
    assert {r["table_name"] for r in rows} == {"customers", "surveys"}
    assert all(r["line"] and r["reason"] and r["file"] for r in rows)
    counts = json.loads(run("tables", "--store", store, "--json").stdout)
    assert counts["customers"] == 1 and counts["surveys"] == 1 and counts["quarantine"] == 2


def test_export_and_init(tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    run("ingest", str(hostile(tmp_path / "in")), "--store", store)
    res = run("export", "--out", str(tmp_path / "out"), "--store", store)
    assert res.returncode == 0, res.stderr
    assert pq.read_table(tmp_path / "out" / "surveys.parquet").column("survey_id").to_pylist() == [
        "s1"
    ]
    res = run("init", "--out", str(tmp_path / "m.toml"))
    assert res.returncode == 0 and "[tables.touchpoints]" in (tmp_path / "m.toml").read_text()
    res = run("init", "--out", str(tmp_path / "m.toml"))
    assert res.returncode == 1 and "pass --force" in res.stderr


def test_commands_on_a_missing_store_say_how_to_start(tmp_path: Path) -> None:
    res = run("tables", "--store", str(tmp_path / "none.duckdb"))
    assert res.returncode == 1
    assert "no store at" in res.stderr and "sawubona ingest" in res.stderr


def test_every_command_has_help_with_an_example() -> None:
    for cmd in ("ingest", "check", "tables", "quarantine", "export", "init", "demo"):
        res = run(cmd, "--help")
        assert res.returncode == 0 and "Example:" in res.stdout, cmd


def test_ingest_and_analyze_index_what_portraits_look_up(tmp_path: Path) -> None:
    """After `ingest` and `analyze`, every table a portrait looks rows up in has an index
    on its lookup column (a portrait on a million customers would otherwise scan)."""
    import duckdb

    from sawubona.demo import generate
    from sawubona.portrait import LOOKUPS

    world = generate(tmp_path / "w", world="telco", size=300, seed=0)
    db = tmp_path / "s.duckdb"
    assert run("ingest", str(world.out_dir), "--store", str(db)).returncode == 0

    def indexed() -> set[tuple[str, str]]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            rows = con.sql("SELECT table_name, expressions FROM duckdb_indexes()").fetchall()
            filled = {t for (t,) in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
            counts = {t: con.sql(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in filled}
        finally:
            con.close()
        have = {(t, e.strip("[]'\" ")) for t, e in rows}
        return {(t, c) for t, c in LOOKUPS if counts.get(t)} - have

    missing_after_ingest = indexed()
    assert not {t for t, _ in missing_after_ingest} & {"customers", "touchpoints", "journeys"}
    assert run("analyze", "--store", str(db)).returncode == 0
    assert indexed() == set()
