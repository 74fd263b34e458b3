"""Running lenses: resolve ``as_of``, run each lens, write its results, log the run.

``as_of`` defaults to the latest event in the data — never the wall clock — so a
run is reproducible and can be back-tested by passing an earlier ``as_of``.
Lenses receive whole tables and are responsible for ``as_of``: they see the
world as it was then through :meth:`LensInput.until` (rows whose event time is
after ``as_of`` are invisible), and may look past it only for an explicit
holdout check (the drift lens's calibration/holdout split).

Each lens's results are written in one transaction: its result tables replaced,
its findings replaced, and a ``lens_runs`` row appended.

On DuckDB, lenses that do not read each other run at the same time, each in a
thread on its own cursor (:func:`limits.lens_workers` at once, two by default): a
lens starts once every lens it reads (``after``) has written its results, and
results are written one lens at a time. The results are the same as one lens
after another; the order of work is :func:`run_order`'s, longest chain first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sawubona import lenses as registry
from sawubona import limits, schema
from sawubona.errors import SawubonaError
from sawubona.lenses.base import Finding, Lens, LensInput, LensOutput
from sawubona.store import META_TABLES

if TYPE_CHECKING:
    from sawubona.store import Store
    from sawubona.work import Items


@dataclass
class LensReport:
    lens: str
    status: str  # ran | skipped | failed
    message: str = ""
    tables: dict[str, int] = field(default_factory=dict)
    findings: int = 0
    seconds: float = 0.0


@dataclass
class AnalyzeReport:
    as_of: dt.datetime
    lenses: list[LensReport] = field(default_factory=list)
    work: dict[str, int] = field(default_factory=dict)  # worklist refresh counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "lenses": [vars(r) for r in self.lenses],
            "work": self.work,
        }


def parse_as_of(text: str) -> dt.datetime:
    """An ``as_of`` from the command line: a bare date means the end of that day (UTC)."""
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return dt.datetime.combine(day, dt.time(23, 59, 59, 999999))
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SawubonaError(
            f"--as-of {text!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"
        ) from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def latest_event(store: Store) -> dt.datetime | None:
    """The latest event time in the canonical tables (the default ``as_of``)."""
    latest: dt.datetime | None = None
    for t in schema.TABLES:
        if store.count(t.name) == 0:
            continue
        for col in [c.name for c in t.columns if c.type == "timestamp" and not c.future_ok]:
            value = store.table(t.name)[col].max().execute()
            if value is not None and value == value:  # not NaT
                stamp = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
                latest = stamp if latest is None else max(latest, stamp)
    return latest


def _resolve_settings(lens: Lens, overrides: Mapping[str, Any]) -> dict[str, Any]:
    values = {s.name: s.default for s in lens.settings}
    known = {s.name for s in lens.settings}
    for key, value in overrides.items():
        name, _, setting = key.partition(".")
        if name != lens.name:
            continue
        if setting not in known:
            raise SawubonaError(
                f"the {lens.name} lens has no setting {setting!r}; it has "
                + (", ".join(sorted(known)) or "none")
            )
        default = values[setting]
        values[setting] = _coerce(value, default, key)
    return values


def _coerce(value: Any, default: Any, key: str) -> Any:
    if not isinstance(value, str) or isinstance(default, str) or default is None:
        return value
    try:
        if isinstance(default, bool):
            if value.lower() in ("true", "yes", "1"):
                return True
            if value.lower() in ("false", "no", "0"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise SawubonaError(
            f"setting {key} = {value!r} is not a {type(default).__name__}; "
            f"give a value like {default!r}"
        ) from None
    return value


def _findings_table(findings: list[Finding], run_id: str, as_of: dt.datetime) -> pa.Table:
    return pa.table(
        {
            "run_id": [run_id] * len(findings),
            "lens": [f.lens for f in findings],
            "key": [f.key for f in findings],
            "text": [f.text for f in findings],
            "value": pa.array([f.value for f in findings], pa.float64()),
            "n": pa.array([f.n for f in findings], pa.int64()),
            "low": pa.array([f.low for f in findings], pa.float64()),
            "high": pa.array([f.high for f in findings], pa.float64()),
            "table_name": pa.array([f.table for f in findings], pa.string()),
            "where_json": [json.dumps(f.where, default=str, sort_keys=True) for f in findings],
            "severity": [f.severity for f in findings],
            "as_of": pa.array([as_of] * len(findings), pa.timestamp("us")),
        }
    )


def analyze(
    store: Store,
    lenses: Sequence[str] | None = None,
    *,
    as_of: dt.datetime | str | None = None,
    settings: Mapping[str, Any] | None = None,
    progress: Callable[[str, int | None], None] | None = None,
    workers: int | None = None,
) -> AnalyzeReport:
    """Run ``lenses`` (default: all) on ``store`` as of ``as_of`` and write their results.

    ``workers``: lenses run at once (default :func:`limits.lens_workers`; 1 on engines
    other than DuckDB).
    """
    settings = settings or {}
    available = registry.available()
    names = list(lenses) if lenses else list(available)
    for name in names:
        if name not in available:
            raise SawubonaError(
                f"unknown lens {name!r}; use one of {', '.join(available) or 'none yet'}"
            )
    if isinstance(as_of, str):
        as_of = parse_as_of(as_of)
    if as_of is None:
        as_of = latest_event(store)
        if as_of is None:
            raise SawubonaError("the store holds no events yet; load data with `sawubona ingest`")
    report = AnalyzeReport(as_of)
    order = run_order(available, names)
    # the lenses keep their own data in memory beside the engine's: a smaller share for it
    if workers is None:
        workers = limits.lens_workers()
    with store.memory_share(limits.ANALYZE_SHARE):
        gifts = None
        if workers > 1 and len(order) > 1 and store.thread_tables() is not None:
            done, gifts = _run_parallel(store, available, order, as_of, settings, progress, workers)
            report.lenses.extend(done[name] for name in order)
        else:
            for name in order:
                if progress:
                    progress(f"{name} lens", None)
                report.lenses.append(_run_one(store, available[name], as_of, settings))
                store.release_cache()
        report.work = _refresh_worklist(store, as_of, settings, progress, gifts)
    return report


def _run_parallel(
    store: Store,
    available: Mapping[str, Lens],
    order: list[str],
    as_of: dt.datetime,
    settings: Mapping[str, Any],
    progress: Callable[[str, int | None], None] | None,
    workers: int,
) -> tuple[dict[str, LensReport], Items | None]:
    """Run the lenses ``order`` names on ``workers`` threads, each lens once those it reads
    are written. The first lens to fail stops new starts; its error is raised once the
    lenses already running have finished.

    Also, on a thread no lens needs, once the lenses that write the tables the gift items
    of the worklist read (:data:`sawubona.work.GIFT_TABLES`) are done: those items, the
    most of a refresh, so that the refresh after the last lens has less to do. Returns
    the lens reports and the gift items (``None`` when they were not made here)."""
    from sawubona import work

    gift_writers = {n for n in order if any(t.startswith(f"{n}_") for t in work.GIFT_TABLES)}
    work_settings = _work_settings(settings)
    gifts: Future[Items | None] | None = None
    with store.transaction():
        # a store the web app serves switches to its private copy here, before any thread
        # holds a cursor on the file (and a read-only store fails before any lens runs)
        pass
    waits = {n: {a for a in available[n].after if a in order} for n in order}
    # a lens on a longer chain of readers starts first, so the chains finish together
    rank = {n: (-_chain(n, waits), i) for i, n in enumerate(order)}
    write = threading.Lock()
    done: dict[str, LensReport] = {}
    running: dict[Future[Any], str] = {}
    failed: BaseException | None = None

    def run(name: str) -> LensReport:
        own = store.thread_tables()
        assert own is not None  # checked by the caller
        with own as tables:
            return _run_one(store, available[name], as_of, settings, tables=tables, write=write)

    def make_gifts() -> Items | None:
        own = store.thread_tables()
        assert own is not None
        try:
            with own as tables:
                with write:
                    present = [n for n in work.GIFT_TABLES if store.has_table(n)]
                return work.gift_items(tables, present, as_of, work_settings)
        except Exception:  # the refresh makes them itself, and reports what is wrong
            return None

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sawubona-lens") as pool:
        while len(done) < len(order) and (running or failed is None):
            if failed is None:
                ready = sorted(
                    (
                        n
                        for n in order
                        if n not in done and n not in running.values() and waits[n] <= done.keys()
                    ),
                    key=rank.__getitem__,
                )
                for name in ready[: workers - len(running)]:
                    if progress:
                        progress(f"{name} lens", None)
                    running[pool.submit(run, name)] = name
                if (
                    gifts is None
                    and len(running) < workers
                    and gift_writers <= done.keys()
                    and len(done) < len(order)
                ):
                    gifts = pool.submit(make_gifts)
                    running[gifts] = ""
            if not running:  # pragma: no cover - run_order refuses a cycle before this
                raise SawubonaError(f"no lens can start: {sorted(set(order) - done.keys())}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future is gifts:
                    continue
                try:
                    done[name] = future.result()
                except BaseException as exc:  # re-raised below
                    failed = failed or exc
            if not running:  # no lens holds memory in the engine now
                store.release_cache()
    if failed is not None:
        raise failed
    return done, (gifts.result() if gifts is not None else None)


def _chain(name: str, waits: Mapping[str, set[str]]) -> int:
    """How many lenses wait, directly or not, on ``name``."""
    readers: set[str] = set()
    new = {name}
    while new:
        new = {n for n, w in waits.items() if w & new} - readers
        readers |= new
    return len(readers)


def run_order(available: Mapping[str, Lens], names: Sequence[str]) -> list[str]:
    """``names`` in registry order, except that a lens runs after those it reads (``after``).

    Only lenses being run count: a lens whose ``after`` lens is not in ``names`` reads
    that lens's results from an earlier run, if the store has them.
    """
    wanted = [n for n in available if n in names]
    done: list[str] = []
    while len(done) < len(wanted):
        ready = [
            n
            for n in wanted
            if n not in done and all(a in done or a not in wanted for a in available[n].after)
        ]
        if not ready:  # pragma: no cover - a cycle in the registry is a programming error
            raise SawubonaError(f"the lenses {sorted(set(wanted) - set(done))} wait on each other")
        done.append(ready[0])
    return done


def _work_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The worklist's settings among an analysis's (``work.NAME``)."""
    return {k.partition(".")[2]: v for k, v in settings.items() if k.startswith("work.")}


def _refresh_worklist(
    store: Store,
    as_of: dt.datetime,
    settings: Mapping[str, Any],
    progress: Callable[[str, int | None], None] | None,
    gifts: Items | None = None,
) -> dict[str, int]:
    """After the lenses: turn their results into work items (``sawubona.work``)."""
    from sawubona import work

    if progress:
        progress("worklist", None)
    return work.refresh(store, as_of, _work_settings(settings), gifts=gifts)


class _Tables(Mapping[str, Any]):
    """A lens's tables by name, each made when the lens first reads it: making an Ibis
    table asks the engine for its columns (a few milliseconds), and a lens reads a few of
    the store's fifty-odd tables."""

    def __init__(self, names: Sequence[str], make: Callable[[str], Any]) -> None:
        self._names = list(names)
        self._known = set(self._names)
        self._make = make
        self._made: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._made:
            if name not in self._known:
                raise KeyError(name)
            self._made[name] = self._make(name)
        return self._made[name]

    def __contains__(self, name: object) -> bool:
        return name in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _run_one(
    store: Store,
    lens: Lens,
    as_of: dt.datetime,
    overrides: Mapping[str, Any],
    *,
    tables: Callable[[str], Any] | None = None,
    write: threading.Lock | None = None,
) -> LensReport:
    """Run one lens and write its results. ``tables`` makes the lens's Ibis tables (default
    the store's); ``write`` is held while the store itself is used (parallel lenses)."""
    lock = write or contextlib.nullcontext()
    make = tables or store.table
    with lock:
        counts = {t.name: store.count(t.name) for t in schema.TABLES}
        names = store.tables()
    present = _Tables([t.name for t in schema.TABLES if counts[t.name] > 0], make)
    missing = [t for t in lens.needs if t not in present]
    run_id = uuid.uuid4().hex[:12]
    values = _resolve_settings(lens, overrides)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if missing:
        message = f"needs the {', '.join(missing)} table{'s' if len(missing) > 1 else ''}"
        with lock, store.transaction():
            store.log_lens_run(
                run_id=run_id,
                lens=lens.name,
                as_of=as_of,
                parameters=values,
                started_at=started,
                duration_s=0.0,
                rows_written={},
                status="skipped",
                message=message,
            )
        return LensReport(lens.name, "skipped", message)
    results = _Tables(
        [n for n in names if n not in schema.TABLE_BY_NAME and n not in META_TABLES], make
    )
    data = LensInput(tables=present, results=results, as_of=as_of, settings=values)
    t0 = time.perf_counter()
    output: LensOutput = lens.run(data)
    seconds = time.perf_counter() - t0
    for table_name in output.tables:
        if not table_name.startswith(f"{lens.name}_"):
            raise SawubonaError(
                f"lens {lens.name} returned table {table_name}: results are "
                f"named {lens.name}_<what>"
            )
    rows = {k: v.num_rows for k, v in output.tables.items()}
    with lock, store.transaction():
        for table_name, table in output.tables.items():
            store.replace(table_name, table)
        store.replace_findings(lens.name, _findings_table(output.findings, run_id, as_of))
        store.log_lens_run(
            run_id=run_id,
            lens=lens.name,
            as_of=as_of,
            parameters=values,
            started_at=started,
            duration_s=seconds,
            rows_written=rows,
            status="ran",
            message="; ".join(output.skipped),
        )
    report = LensReport(
        lens.name, "ran", "; ".join(output.skipped), rows, len(output.findings), seconds
    )
    del output, data, results
    # Arrow keeps the memory a lens freed for this thread's next allocations (mimalloc's
    # heaps are per thread): hand it back, so that it does not sit under the lens another
    # thread runs (a no-op with allocators that keep nothing)
    pa.default_memory_pool().release_unused()
    return report
