"""Synthetic demo worlds with planted truth (DESIGN.md §7).

``generate(out_dir, world="telco", size="small", seed=0, fmt="parquet")`` writes
one file per canonical table of a telco, shop or café world, plus
``truth.json`` (and ``truth/*.parquet``) listing everything planted in it, so
that every lens can be checked against known answers. See ``docs/demo.md``.
"""

from sawubona.demo.generator import SIZES, WORLDS, World, generate

__all__ = ["SIZES", "WORLDS", "World", "generate"]
