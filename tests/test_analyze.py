"""The lens runner: as_of from the data, skips with reasons, results and findings replaced."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import sawubona
from sawubona import analyze as runner
from sawubona import lenses, work
from sawubona.errors import SawubonaError
from sawubona.lenses.base import Finding, LensInput, LensOutput, Setting
from test_backends import assert_same_table


class CountingLens:
    """A minimal lens used to exercise the runner: journeys per kind as of ``as_of``."""

    name = "counting"
    title = "Counting"
    needs = ("journeys",)
    uses = ()
    after = ()
    settings = (Setting("min_n", 1, "smallest count reported"), Setting("label", "x", "a label"))

    def run(self, data: LensInput) -> LensOutput:
        j = data.until("journeys")
        counts = j.group_by("kind").aggregate(n=j.count()).order_by("kind").to_pyarrow()
        keep = [n >= data.settings["min_n"] for n in counts.column("n").to_pylist()]
        counts = counts.filter(pa.array(keep))
        total = sum(counts.column("n").to_pylist())
        return LensOutput(
            tables={"counting_kinds": counts},
            findings=[
                Finding(
                    self.name,
                    "total",
                    f"{total} journeys",
                    value=total,
                    n=total,
                    table="counting_kinds",
                )
            ],
        )


class NeedsPlans(CountingLens):
    name = "needsplans"
    needs = ("plans",)


@pytest.fixture
def loaded(tmp_path: Path, store: sawubona.Store, monkeypatch: pytest.MonkeyPatch):
    d = tmp_path / "in"
    d.mkdir()
    (d / "customers.csv").write_text("customer_id\nc1\nc2\n")
    (d / "journeys.csv").write_text(
        "journey_id,customer_id,kind,started_at,ended_at\n"
        "j1,c1,order,2024-01-01,2024-01-02\nj2,c2,order,2024-02-01,\n"
        "j3,c2,visit,2024-03-01,2024-03-05T10:00:00\n"
    )
    store.ingest(d)
    monkeypatch.setattr(
        lenses, "available", lambda: {"counting": CountingLens(), "needsplans": NeedsPlans()}
    )
    return store


def test_as_of_defaults_to_the_latest_event(loaded: sawubona.Store) -> None:
    assert runner.latest_event(loaded) == dt.datetime(2024, 3, 5, 10, 0)
    report = runner.analyze(loaded, ["counting"])
    assert report.as_of == dt.datetime(2024, 3, 5, 10, 0)


def test_bare_date_is_the_end_of_that_day() -> None:
    assert runner.parse_as_of("2024-02-01") == dt.datetime(2024, 2, 1, 23, 59, 59, 999999)
    assert runner.parse_as_of("2024-02-01T10:00:00+02:00") == dt.datetime(2024, 2, 1, 8, 0)
    with pytest.raises(SawubonaError, match="not a date"):
        runner.parse_as_of("yesterday")


def test_results_respect_as_of_and_are_replaced(loaded: sawubona.Store) -> None:
    runner.analyze(loaded, ["counting"], as_of="2024-02-01")
    got = loaded.table("counting_kinds").to_pyarrow().to_pylist()
    assert got == [{"kind": "order", "n": 2}]
    runner.analyze(loaded, ["counting"])  # later as_of: the visit appears, findings replaced
    assert loaded.count("counting_kinds") == 2
    f = loaded.table("findings").to_pandas()
    assert list(f["text"]) == ["3 journeys"]
    runs = loaded.table("lens_runs").to_pandas()
    assert list(runs["status"]) == ["ran", "ran"]


def test_missing_table_skips_with_the_reason(loaded: sawubona.Store) -> None:
    report = runner.analyze(loaded)
    by = {r.lens: r for r in report.lenses}
    assert by["needsplans"].status == "skipped"
    assert by["needsplans"].message == "needs the plans table"
    assert by["counting"].status == "ran" and by["counting"].tables == {"counting_kinds": 2}


def test_settings_are_coerced_and_checked(loaded: sawubona.Store) -> None:
    runner.analyze(loaded, ["counting"], settings={"counting.min_n": "2"})
    assert loaded.count("counting_kinds") == 1
    with pytest.raises(SawubonaError, match="has no setting 'nope'; it has label, min_n"):
        runner.analyze(loaded, ["counting"], settings={"counting.nope": "1"})
    with pytest.raises(SawubonaError, match="is not a int"):
        runner.analyze(loaded, ["counting"], settings={"counting.min_n": "many"})


def test_unknown_lens_and_empty_store(loaded: sawubona.Store, tmp_path: Path) -> None:
    with pytest.raises(SawubonaError, match="unknown lens 'nope'"):
        runner.analyze(loaded, ["nope"])
    with (
        sawubona.open(tmp_path / "empty.duckdb") as empty,
        pytest.raises(SawubonaError, match="holds no events yet"),
    ):
        runner.analyze(empty)


def test_run_order_puts_a_lens_after_the_lenses_it_reads() -> None:
    """Registry order, except that a lens waits for the lenses it reads when they run too."""

    def lens(name: str, after: tuple[str, ...] = ()) -> CountingLens:
        one = CountingLens()
        one.name, one.after = name, after  # type: ignore[misc]
        return one

    reg = {
        "a": lens("a", ("d",)),
        "b": lens("b"),
        "c": lens("c", ("b",)),
        "d": lens("d"),
    }
    assert runner.run_order(reg, ["a", "b", "c", "d"]) == ["b", "c", "d", "a"]
    assert runner.run_order(reg, ["a", "c"]) == ["a", "c"]  # earlier results, if any
    assert runner.run_order(reg, ["d", "a"]) == ["d", "a"]
    real = runner.run_order(lenses.available(), list(lenses.available()))
    for name, one in lenses.available().items():
        assert all(real.index(a) < real.index(name) for a in one.after)


def test_lenses_run_with_a_smaller_engine_share(
    loaded: sawubona.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While lenses run, DuckDB may use ANALYZE_SHARE of RAM (the lenses' own data sits
    beside it); the default share again afterwards."""
    from sawubona import limits

    monkeypatch.delenv(limits.ENV, raising=False)
    seen: list[str] = []

    class Probe(CountingLens):
        def run(self, data: LensInput) -> LensOutput:
            con = data.table("journeys")._find_backend().con
            seen.append(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
            return super().run(data)

    def setting() -> str:
        con = loaded._backend.con  # type: ignore[attr-defined]
        return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

    monkeypatch.setattr(lenses, "available", lambda: {"counting": Probe()})
    before = setting()
    runner.analyze(loaded, ["counting"])
    assert setting() == before
    ram = limits.physical_memory()
    want = limits.memory_limit(limits.ANALYZE_SHARE) >> 20
    assert ram and limits.memory_limit(limits.DEFAULT_SHARE) > limits.memory_limit(
        limits.ANALYZE_SHARE
    )
    assert len(seen) == 1 and seen[0] != before
    # DuckDB reads "MB" as 10^6 bytes and shows the limit cut to one decimal ("3.3 GiB")
    number, unit = seen[0].split()
    shown = float(number) * {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]
    assert abs(shown - want * 10**6) <= 0.1 * {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


def _named(name: str, after: tuple[str, ...], run: Any) -> CountingLens:
    one = CountingLens()
    one.name, one.after = name, after  # type: ignore[misc]
    one.run = run  # type: ignore[method-assign]
    return one


def test_parallel_lenses_overlap_and_wait_for_what_they_read(
    loaded: sawubona.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two lenses that read nothing of each other run at the same time (each waits at a
    barrier for the other: run one after the other, the barrier would break); a lens
    starts only after the lenses it reads have written their results."""
    barrier = threading.Barrier(2, timeout=60)
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def lens(name: str, after: tuple[str, ...] = (), meet: bool = False) -> CountingLens:
        def run(data: LensInput) -> LensOutput:
            with lock:
                events.append(("start", name))
                if after:  # what it reads is written already, and visible on its cursor
                    assert all(f"{a}_kinds" in data.results for a in after), data.results
            if meet:
                barrier.wait()
            out = CountingLens.run(one, data)
            out = LensOutput(tables={f"{name}_kinds": out.tables["counting_kinds"]})
            with lock:
                events.append(("end", name))
            return out

        one = _named(name, after, run)
        return one

    reg = {"a": lens("a", ("d",)), "b": lens("b", meet=True), "d": lens("d", meet=True)}
    monkeypatch.setattr(lenses, "available", lambda: reg)
    report = runner.analyze(loaded, workers=2)
    assert [r.lens for r in report.lenses] == runner.run_order(reg, list(reg))
    assert all(r.status == "ran" for r in report.lenses)
    assert events.index(("end", "d")) < events.index(("start", "a"))
    assert loaded.count("a_kinds") == 2 and loaded.count("b_kinds") == 2
    assert len(loaded.table("lens_runs").to_pandas()) == 3


def test_a_failing_parallel_lens_raises_and_its_readers_never_start(
    loaded: sawubona.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []

    def fail(data: LensInput) -> LensOutput:
        raise RuntimeError("the lens broke")

    def ok(data: LensInput) -> LensOutput:
        started.append("reader")
        return LensOutput(tables={})

    reg = {"broken": _named("broken", (), fail), "reader": _named("reader", ("broken",), ok)}
    monkeypatch.setattr(lenses, "available", lambda: reg)
    with pytest.raises(RuntimeError, match="the lens broke"):
        runner.analyze(loaded, workers=2)
    assert started == []


def test_parallel_analysis_writes_what_a_sequential_one_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every lens on a small demo world, one at a time and two at a time: the same tables."""
    from sawubona.demo import generate

    generate(tmp_path / "world", world="telco", size=800, seed=5)
    got: dict[int, dict[str, pa.Table]] = {}
    items: dict[int, list[dict[str, Any]]] = {}
    made: list[int] = []  # gift items made on a lens thread, while lenses still ran
    real = work.gift_items

    def gift_items(*args: Any, **kwargs: Any) -> work.Items:
        out = real(*args, **kwargs)
        made.append(len(out))
        return out

    monkeypatch.setattr(work, "gift_items", gift_items)
    for workers in (1, 2):
        with sawubona.open(tmp_path / f"w{workers}.duckdb") as s:
            s.ingest(tmp_path / "world")
            report = runner.analyze(s, workers=workers)
            assert all(r.status == "ran" for r in report.lenses), report.to_dict()
            names = [n for r in report.lenses for n in r.tables] + ["findings"]
            got[workers] = {n: s.table(n).to_pyarrow() for n in names}
            assert report.work["new"] > 0
            with work.open_worklist(s) as wl:
                items[workers] = [
                    {k: v for k, v in i.items() if k not in ("created_at", "updated_at")}
                    for i in wl.items(state=None, include_holdout=True)
                ]
        assert len(made) == (workers == 2)
    assert made[0] > 0 and sum(i["kind"] == "gift" for i in items[2]) == made[0]
    assert items[1] == items[2]
    assert got[1].keys() == got[2].keys()
    for name, one in got[1].items():
        # equal to the cross-backend suite's float tolerance: DuckDB's threads add floats
        # in any order, in one lens at a time as in two
        drop = [c for c in ("run_id",) if c in one.column_names]
        assert_same_table(name, one.drop_columns(drop), got[2][name].drop_columns(drop))


def test_engine_cache_is_released_between_lenses(
    store: sawubona.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Table pages DuckDB cached while a lens read them are let go of after it (they would
    sit under the next lens's own arrays); the engine's memory limit is as it was."""
    from sawubona import limits

    monkeypatch.delenv(limits.ENV, raising=False)
    con = store._con
    con.execute(
        "CREATE TABLE big AS SELECT range AS i, "
        "md5(range::VARCHAR) || md5((range * 7)::VARCHAR) AS s FROM range(3000000)"
    )
    con.execute("CHECKPOINT")  # on disk: its pages can be evicted and read again

    def cached() -> int:
        sql = "SELECT sum(memory_usage_bytes) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
        return int(con.execute(sql).fetchall()[0][0] or 0)

    def limit() -> str:
        return str(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])

    with store.memory_share(limits.ANALYZE_SHARE):  # as during an analysis
        during = limit()
        assert con.execute("SELECT count(DISTINCT s) FROM big").fetchall()[0][0] == 3_000_000
        assert cached() > 64 << 20
        store.release_cache()
        assert cached() <= 64 << 20
        assert limit() == during
    assert limit() != during  # the default share again after the analysis


def test_how_many_lenses_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAWUBONA_LENS_WORKERS wins; else two on a machine with two cores and enough RAM,
    one on a smaller machine (two lenses at once hold two lenses' arrays)."""
    from sawubona import limits

    monkeypatch.setenv(limits.LENS_WORKERS_ENV, "3")
    assert limits.lens_workers() == 3
    monkeypatch.setenv(limits.LENS_WORKERS_ENV, "none")
    with pytest.raises(ValueError, match="is not a count"):
        limits.lens_workers()
    monkeypatch.delenv(limits.LENS_WORKERS_ENV)
    monkeypatch.setattr(limits.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(limits, "physical_memory", lambda: 24 << 30)
    assert limits.lens_workers() == 2
    monkeypatch.setattr(limits, "physical_memory", lambda: 8 << 30)
    assert limits.lens_workers() == 1
    monkeypatch.setattr(limits, "physical_memory", lambda: 64 << 30)
    monkeypatch.setattr(limits.os, "cpu_count", lambda: 1)
    assert limits.lens_workers() == 1
