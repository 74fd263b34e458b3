"""Entry point of the demo generator: sizes, blocks, writing, ``truth.json``.

A world is generated in blocks of at most :data:`BLOCK_CUSTOMERS` customers.
Each block draws from its own stream ``numpy.random.default_rng([seed, world,
block])`` and holds every row of its customers, so memory stays bounded and the
output is byte-identical for the same arguments. The work is a two-stage
pipeline: while the main thread generates block *k*, one background thread
finishes block *k-1* (sorting, ids, truths) and writes it; NumPy and Arrow
release the GIL, so this uses the second core. At most two blocks are in memory.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from sawubona.demo import cafe, shop, telco
from sawubona.demo.block import Block, TemplateBook
from sawubona.demo.common import (
    AS_OF,
    AS_OF_TEXT,
    CURRENCY,
    HISTORY_START_TEXT,
    arrow_schema,
    assemble,
    labels,
    ts,
)
from sawubona.demo.events import Counters, finish_block
from sawubona.demo.people import BEHAVIOURS, customer_width, make_agents
from sawubona.demo.text import BEGGING_PHRASES
from sawubona.schema import TABLE_BY_NAME

WORLDS = ("telco", "shop", "cafe")
SIZES = {"small": 10_000, "medium": 100_000, "large": 1_000_000}
BLOCK_CUSTOMERS = 125_000
FORMATS = ("parquet", "csv")
GENERATOR_VERSION = 1
_MODULES: dict[str, ModuleType] = {"telco": telco, "shop": shop, "cafe": cafe}


@dataclass(frozen=True)
class World:
    """A generated demo world: where it is, what it holds, where its truth is."""

    out_dir: Path
    world: str
    size: str | int
    seed: int
    fmt: str
    n_customers: int
    counts: dict[str, int]
    truth_path: Path
    seconds: float = field(default=0.0, compare=False)

    @property
    def tables(self) -> tuple[str, ...]:
        """The canonical tables written."""
        return tuple(self.counts)

    def path(self, table: str) -> Path:
        """The file of canonical table ``table``."""
        return self.out_dir / f"{table}.{self.fmt}"

    def truth(self) -> dict[str, Any]:
        """The parsed ``truth.json``."""
        return dict(json.loads(self.truth_path.read_text()))


def resolve_size(size: str | int) -> int:
    """Number of customers of a size name or count."""
    if isinstance(size, bool):
        raise ValueError("size must be small, medium, large or a number of customers")
    if isinstance(size, int | np.integer):
        if size < 100:
            raise ValueError(f"size {size} is too small: use at least 100 customers")
        return int(size)
    if size in SIZES:
        return SIZES[size]
    raise ValueError(f"unknown size {size!r}: use small, medium, large or a number of customers")


class _Writer:
    """Appends tables to one file per canonical table (Parquet row groups or CSV)."""

    def __init__(self, out_dir: Path, fmt: str) -> None:
        self.out_dir, self.fmt = out_dir, fmt
        self.writers: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def write(self, name: str, table: pa.Table) -> None:
        self.counts[name] = self.counts.get(name, 0) + table.num_rows
        w = self.writers.get(name)
        if self.fmt == "parquet":
            if w is None:
                w = pq.ParquetWriter(
                    self.out_dir / f"{name}.parquet",
                    arrow_schema(name),
                    compression="zstd",
                    compression_level=1,
                    use_dictionary=_dictionary_columns(name),
                )
                self.writers[name] = w
            w.write_table(table, row_group_size=1 << 20)
        else:
            table = _csv_ready(table)
            if w is None:
                w = pacsv.CSVWriter(self.out_dir / f"{name}.csv", table.schema)
                self.writers[name] = w
            w.write_table(table)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def _dictionary_columns(name: str) -> list[str]:
    """Columns worth dictionary-encoding: categorical strings, not ids or free text."""
    t = TABLE_BY_NAME[name]
    skip = set(t.key) | {"customer_id", "journey_id", "text", "comment", "name", "email"}
    return [
        c.name
        for c in t.columns
        if (c.type in ("string", "json") and c.name not in skip) or c.name == "period_start"
    ]


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps as ``YYYY-MM-DDTHH:MM:SS`` text for CSV."""
    cols = []
    for col, f in zip(table.columns, table.schema, strict=True):
        if pa.types.is_timestamp(f.type):
            s = pc.utf8_slice_codeunits(pc.cast(col, pa.string()), 0, 19)
            col = pc.utf8_replace_slice(s, start=10, stop=11, replacement="T")
        cols.append(col)
    names = table.schema.names
    return pa.Table.from_arrays(cols, names=names)


def generate(
    out_dir: str | Path,
    world: str = "telco",
    size: str | int = "small",
    seed: int = 0,
    fmt: str = "parquet",
    *,
    progress: Callable[[int, int], None] | None = None,
) -> World:
    """Generate demo world ``world`` into ``out_dir``; return what was written.

    ``size`` is ``small`` (10k customers), ``medium`` (100k), ``large`` (1M) or a
    number of customers; ``fmt`` is ``parquet`` or ``csv``. One file per canonical
    table, ``truth.json`` and ``truth/*.parquet`` describe everything planted.
    ``progress(done, total)`` is called after each block of customers.
    """
    if world not in _MODULES:
        raise ValueError(f"unknown world {world!r}: use one of {', '.join(WORLDS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use parquet or csv")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    n_total = resolve_size(size)
    mod = _MODULES[world]
    w_index = WORLDS.index(world)
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth_dir = out / "truth"
    if truth_dir.exists():
        shutil.rmtree(truth_dir)
    truth_dir.mkdir()
    for name in TABLE_BY_NAME:
        for ext in FORMATS:
            (out / f"{name}.{ext}").unlink(missing_ok=True)

    g_rng = np.random.default_rng([int(seed), w_index, 0])
    agents = make_agents(g_rng, n_total, mod.TEAMS, mod.N_AGENT_TEAMS, mod.CUSTOMERS_PER_AGENT)
    agents.plant_padders(np.random.default_rng([int(seed), w_index, 0, 1]))
    book = TemplateBook()
    writer = _Writer(out, fmt)
    truth_parts: dict[str, list[pa.Table]] = {}
    ctr = Counters()
    width = customer_width(n_total)
    blocks = list(range(0, n_total, BLOCK_CUSTOMERS))

    def finish(b: Block, own: dict[str, pa.Table], bi: int) -> None:
        """Second stage (one background thread, blocks in order): ids, truths, files."""
        events = finish_block(b, ctr)
        writer.write("customers", _customer_table(b))
        for name in mod.TABLES:
            t = own.get(name, events.get(name))
            if t is not None:
                writer.write(name, t)
        for k, parts in b.truth.items():
            truth_parts.setdefault(k, []).extend(parts)
        if progress is not None:
            progress(bi + 1, len(blocks))

    pool = ThreadPoolExecutor(max_workers=1)
    pending: Future[None] | None = None
    try:
        for name, table in mod.static_tables().items():
            writer.write(name, table)
        for bi, off in enumerate(blocks):
            rng = np.random.default_rng([int(seed), w_index, bi + 1])
            n = min(BLOCK_CUSTOMERS, n_total - off)
            cust = mod.customers(rng, off, n, width)
            b = Block(
                rng=rng,
                cust=cust,
                agents=agents,
                book=book,
                neglected=rng.random(n) < 0.05,
                plant=np.random.default_rng([int(seed), w_index, bi + 1, 1]),
                compensation=mod.COMPENSATION_RULES,
            )
            own, used = mod.block(b, ctr.journeys)
            ctr.journeys += used
            if pending is not None:
                pending.result()  # at most one block waits to be finished (memory)
            pending = pool.submit(finish, b, own, bi)
        if pending is not None:
            pending.result()
    finally:
        pool.shutdown(wait=True)
        writer.close()
    counts = {name: writer.counts.get(name, 0) for name in mod.TABLES}
    truth = _write_truth(out, mod, world, size, seed, n_total, counts, truth_parts, agents, book)
    return World(
        out_dir=out,
        world=world,
        size=size,
        seed=int(seed),
        fmt=fmt,
        n_customers=n_total,
        counts=counts,
        truth_path=truth,
        seconds=time.perf_counter() - t0,
    )


def _customer_table(b: Block) -> pa.Table:
    cust = b.cust
    segments = pa.array(["consumer", "business", "vip"], pa.string())
    return assemble(
        "customers",
        cust.n,
        {
            "customer_id": cust.ids,
            "joined_at": ts(cust.joined),
            "segment": labels(segments, cust.segment),
            "name": cust.name,
            "email": cust.email,
        },
    )


def _write_truth(
    out: Path,
    mod: ModuleType,
    world: str,
    size: str | int,
    seed: int,
    n: int,
    counts: dict[str, int],
    parts: dict[str, list[pa.Table]],
    agents: Any,
    book: TemplateBook,
) -> Path:
    from sawubona.demo.truth import describe

    files: dict[str, pa.Table] = {k: pa.concat_tables(v) for k, v in parts.items()}
    files["promises"] = _at_risk(files["promises"])
    files["agents"] = _agent_truth(agents, files)
    for k, t in files.items():
        pq.write_table(t, out / "truth" / f"{k}.parquet", compression="zstd", compression_level=1)
    doc = {
        "world": world,
        "size": size,
        "seed": seed,
        "n_customers": n,
        "generator_version": GENERATOR_VERSION,
        "as_of": AS_OF_TEXT,
        "history_start": HISTORY_START_TEXT,
        "currency": CURRENCY,
        "counts": counts,
        **describe(world, mod, files, book, agents),
        "begging_phrases": list(BEGGING_PHRASES),
    }
    (out / "truth" / "compensation_rules.toml").write_text(
        compensation_toml(mod.COMPENSATION_RULES)
    )
    path = out / "truth.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    return path


#: the promises lens's defaults for the at-risk status (its settings at_risk_share and
#: at_risk_quantile)
AT_RISK_SHARE = 0.8
AT_RISK_QUANTILE = 0.9


def _at_risk(t: pa.Table) -> pa.Table:
    """Open promises at risk at ``as_of`` under the promises lens's default rule: at least
    :data:`AT_RISK_SHARE` of the promised time gone, or less time left than the kind's
    time to keep at :data:`AT_RISK_QUANTILE` (over promises kept by ``as_of``; 24/7)."""
    made = np.asarray(t.column("_made"))
    due = np.asarray(t.column("_due"))
    kept = np.asarray(t.column("_kept"))
    enc = t.column("kind").combine_chunks().dictionary_encode()
    kind = np.asarray(enc.indices)
    is_open = np.asarray(pc.equal(t.column("status"), "open"))
    at_risk = is_open & ((AS_OF - made) >= AT_RISK_SHARE * (due - made))
    for k in range(len(enc.dictionary)) if is_open.any() else ():
        done = (kind == k) & (kept >= 0)
        if done.any():
            p90 = float(np.quantile((kept[done] - made[done]) / 3600e6, AT_RISK_QUANTILE))
            at_risk |= is_open & (kind == k) & ((due - AS_OF) / 3600e6 < p90)
    mark = pa.array(at_risk)
    for name in ("status", "status_with_pauses"):
        col = t.column(name)
        moved = pc.and_(mark, pc.equal(col, "open"))
        t = t.set_column(t.schema.get_field_index(name), name, pc.if_else(moved, "at_risk", col))
    return t.drop_columns(["_made", "_due", "_kept"])


def compensation_toml(rules: dict[str, dict[str, float]]) -> str:
    """The world's compensation rules as a TOML file the giving lens reads."""
    lines = [
        "# The compensation this demo world declares for broken promises",
        "# (sawubona analyze --lens giving --set giving.compensation_rules=THIS_FILE)",
        'paid_kinds = ["credit", "compensation"]',
    ]
    for kind, rule in rules.items():
        lines += ["", "[[promise]]", f'kind = "{kind}"']
        lines += [f"{k} = {float(v)!r}" for k, v in rule.items()]
    return "\n".join(lines) + "\n"


def _agent_truth(agents: Any, files: dict[str, pa.Table]) -> pa.Table:
    n = agents.n
    sv = files.get("surveys")
    routine = np.zeros(n, np.int64)
    audit = np.zeros(n, np.int64)
    if sv is not None and sv.num_rows:
        has = sv.filter(pc.is_valid(sv.column("agent_id")))
        idx = _agent_index(has.column("agent_id"))
        is_audit = np.asarray(pc.equal(has.column("trigger"), "audit"))
        routine = np.bincount(idx[~is_audit], minlength=n)
        audit = np.bincount(idx[is_audit], minlength=n)
    beg = np.zeros(n, np.int64)
    bt = files.get("begging")
    if bt is not None and bt.num_rows:
        beg = np.bincount(_agent_index(bt.column("agent_id")), minlength=n)
    return pa.table(
        {
            "agent_id": agents.ids,
            "team": agents.team_names(),
            "behaviour": pa.array(np.array(BEHAVIOURS, dtype=object)[agents.behaviour]),
            "padding": pa.array(agents.padding),
            "n_routine_surveys": pa.array(routine),
            "n_audit_surveys": pa.array(audit),
            "n_begging_messages": pa.array(beg),
        }
    )


def _agent_index(ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """0-based agent numbers of ``A0001``-style ids."""
    digits = pc.utf8_slice_codeunits(ids, 1)
    return np.asarray(pc.cast(digits, pa.int64())) - 1
