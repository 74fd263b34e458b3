"""A planted effect of giving: simulate a team handling a worklist, and what customers did next.

Given a demo world's worklist (after ``analyze`` with a holdout switched on), this
plays a team and its customers with a known truth:

* every eligible item has a hidden *ease* ``u ~ N(0, 1)`` (how easy and promising
  the case looks to the person reading it);
* **selection**: the team handles an item that is not held out with probability
  ``sigmoid(handle_bias + selection · u)`` — the easy, promising cases first — and
  records it as done through the worklist (author ``demo-loop``);
* **later behaviour**: the customer is retained over the horizon with probability
  ``p0 = 0.15 + 0.6 · Φ(u)`` (the same easy cases were more likely to stay anyway)
  plus ``effect`` if the item was handled — a constant effect on the probability
  scale, never clipped (``p0 + effect ≤ 0.9`` for effect ≤ 0.15).

So the naive handled − unhandled difference is ``effect`` plus a selection bias,
while the holdout comparison divided by the share handled recovers ``effect``.
:func:`plant` is the pure core (arrays in, arrays out); :func:`run` applies it to a
worklist and returns the outcomes and the truth.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sawubona.work.db import Worklist


@dataclass(frozen=True)
class Planted:
    """The truth of one simulated loop."""

    effect: float
    selection: float
    handle_bias: float
    ease: np.ndarray
    p0: np.ndarray
    handled: np.ndarray
    retained: np.ndarray

    def truth(self) -> dict[str, Any]:
        return {
            "effect": self.effect,
            "selection": self.selection,
            "handle_bias": self.handle_bias,
            "items": int(self.ease.size),
            "handled": int(self.handled.sum()),
            "rule": "retained ~ Bernoulli(0.15 + 0.6*Phi(ease) + effect*handled); "
            "handled ~ Bernoulli(sigmoid(handle_bias + selection*ease)) unless held out",
        }


def _phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _seed_of(seed: int, keys: Sequence[str]) -> np.random.Generator:
    digest = hashlib.sha256(("|".join(keys[:50]) + f"#{seed}").encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def plant(
    holdout: np.ndarray,
    *,
    seed: int = 0,
    effect: float = 0.15,
    selection: float = 1.5,
    handle_bias: float = -0.2,
    rng: np.random.Generator | None = None,
) -> Planted:
    """Simulate handling and retention for items with the given holdout marks."""
    if not 0 <= effect <= 0.15:
        raise ValueError("effect must be between 0 and 0.15 so probabilities stay below 0.9")
    rng = rng or np.random.default_rng(seed)
    n = holdout.size
    ease = rng.standard_normal(n)
    p_handle = 1.0 / (1.0 + np.exp(-(handle_bias + selection * ease)))
    handled = (rng.random(n) < p_handle) & ~holdout
    p0 = 0.15 + 0.6 * _phi(ease)
    retained = rng.random(n) < p0 + effect * handled
    return Planted(effect, selection, handle_bias, ease, p0, handled, retained)


def run(
    wl: Worklist,
    *,
    seed: int = 0,
    effect: float = 0.15,
    selection: float = 1.5,
    kinds: Sequence[str] = ("gift", "drifting_regular"),
    who: str = "demo-loop",
) -> tuple[list[dict[str, Any]], dict[str, float], dict[str, Any]]:
    """Handle a worklist as a selective team would; return (items, outcomes, truth).

    Items of ``kinds`` still open are considered; the handled ones are marked done in
    the worklist. ``outcomes`` maps item id → retained (1.0/0.0).
    """
    items = [
        i for i in wl.items(state=("open", "assigned"), include_holdout=True) if i["kind"] in kinds
    ]
    items.sort(key=lambda i: i["item_id"])
    holdout = np.array([i["holdout"] for i in items], dtype=bool)
    planted = plant(
        holdout,
        effect=effect,
        selection=selection,
        rng=_seed_of(seed, [i["item_id"] for i in items]),
    )
    for it, h in zip(items, planted.handled, strict=True):
        if h:
            wl.done(it["item_id"], "gave it, as suggested", who=who, done_kind="gift_given")
    outcomes = {it["item_id"]: float(r) for it, r in zip(items, planted.retained, strict=True)}
    fresh = {i["item_id"]: i for i in wl.items(state=None, include_holdout=True)}
    truth = planted.truth() | {"held_out": int(holdout.sum())}
    return [fresh[i["item_id"]] for i in items], outcomes, truth
