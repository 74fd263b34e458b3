"""How much memory DuckDB may take, and where it spills when that is not enough.

DuckDB's own default is 80% of RAM *per database instance*; an ingest into a
store that lends no staging connection opens two (the in-memory staging database
and the store), so on a large file the process could ask for 160% of the machine
and be killed. Each instance sawubona opens
gets a share of RAM instead (:data:`DEFAULT_SHARE`, or ``SAWUBONA_MEMORY_LIMIT``
such as ``4GB``), and a temporary directory to spill to, so a load or an
analysis larger than memory runs slower rather than dying. DuckDB's limit
covers its buffer manager (tables, hash tables, sorts), not Arrow data handed
to Python (`DuckDB limits <https://duckdb.org/docs/stable/operations_manual/limits>`_).
"""

from __future__ import annotations

import os
import re
from typing import Any

#: the share of physical memory one DuckDB instance may use
DEFAULT_SHARE = 0.25
#: the share the store's DuckDB may use while lenses run: the lenses hold their own Arrow
#: and NumPy data beside it, and DESIGN.md §7 gives a whole analysis 6 GB of a 24 GB
#: machine (25%); at 10% the experience lens ran out of memory on the large world
ANALYZE_SHARE = 0.15
ENV = "SAWUBONA_MEMORY_LIMIT"
#: lenses run at once by an analysis (``SAWUBONA_LENS_WORKERS`` overrides): most lenses spend
#: much of their time in DuckDB or NumPy, which release the GIL, so two threads keep two
#: cores busy; more would mostly add memory (each running lens holds its own arrays)
LENS_WORKERS_ENV = "SAWUBONA_LENS_WORKERS"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def physical_memory() -> int:
    """Bytes of RAM on this machine (0 when the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def parse_size(text: str) -> int:
    """``"4GB"``, ``"512MiB"``, ``"1.5G"`` or a number of bytes → bytes."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{ENV}={text!r} is not a size; write it like 4GB or 512MB")
    unit = (m.group(2) or "").upper()[:1]
    return int(float(m.group(1)) * _UNITS[unit])


def memory_limit(share: float = DEFAULT_SHARE) -> int:
    """Bytes one DuckDB instance may use: ``SAWUBONA_MEMORY_LIMIT`` or ``share`` of RAM."""
    if os.environ.get(ENV):
        return parse_size(os.environ[ENV])
    ram = physical_memory()
    return max(int(ram * share), 512 << 20) if ram else 4 << 30


#: two lenses at once hold two lenses' arrays: on the large telco world the peak went from
#: 6.8 to 9.0 GB (bench/RESULTS.md), so below this much RAM lenses run one at a time
PARALLEL_LENSES_RAM = 16 << 30


def lens_workers() -> int:
    """How many lenses an analysis runs at once: ``SAWUBONA_LENS_WORKERS``, else 2 on a
    machine with two cores or more and at least :data:`PARALLEL_LENSES_RAM`, else 1."""
    text = os.environ.get(LENS_WORKERS_ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{LENS_WORKERS_ENV}={text!r} is not a count; write it like 1 or 2")
        return int(text)
    if physical_memory() < PARALLEL_LENSES_RAM:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def set_share(con: Any, share: float) -> None:
    """Change a connection's DuckDB memory limit to ``share`` of RAM (or the override)."""
    con.execute(f"SET memory_limit = '{memory_limit(share) >> 20}MB'")


def configure(con: Any, temp_dir: str | None = None, share: float = DEFAULT_SHARE) -> None:
    """Cap a DuckDB connection's memory and, when given, let it spill to ``temp_dir``.

    Also turns DuckDB's own progress bar off: sawubona reports progress itself, and the
    bar would otherwise be written to the terminal (or a log) of whoever runs it.
    """
    set_share(con, share)
    con.execute("SET enable_progress_bar = false")
    if temp_dir is not None:
        escaped = temp_dir.replace("'", "''")
        con.execute(f"SET temp_directory = '{escaped}'")
