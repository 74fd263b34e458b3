"""The lens registry: every lens, declared once.

Each entry names the module that defines ``LENS`` (an object following
:class:`sawubona.lenses.base.Lens`). Lenses run in the order listed, after the
lenses they read (``after``). A lens whose module is not written yet is simply
absent from :func:`available`.
"""

from __future__ import annotations

import importlib

from sawubona.errors import SawubonaError
from sawubona.lenses.base import Finding, Lens, LensInput, LensOutput, Setting

#: lens name → module under sawubona.lenses
REGISTRY: dict[str, str] = {
    "experience": "experience",
    "promises": "promises",
    "giving": "giving",
    "drift": "drift",
    "voice": "voice",
    "touch": "touch",
}


def available() -> dict[str, Lens]:
    """The lenses whose modules exist, in run order."""
    out: dict[str, Lens] = {}
    for name, module in REGISTRY.items():
        try:
            mod = importlib.import_module(f"sawubona.lenses.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sawubona.lenses.{module}":
                continue
            raise
        out[name] = mod.LENS
    return out


def get(name: str) -> Lens:
    lenses = available()
    if name not in lenses:
        raise SawubonaError(f"unknown lens {name!r}; use one of {', '.join(lenses) or 'none yet'}")
    return lenses[name]


__all__ = ["REGISTRY", "Finding", "Lens", "LensInput", "LensOutput", "Setting", "available", "get"]
