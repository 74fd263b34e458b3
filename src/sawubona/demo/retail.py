"""The purchase log shared by the shop and the café: BG/NBD buying, regulars, items.

Buying follows the BG/NBD story (Fader, Hardie & Lee, 2005): while alive a
customer buys as a Poisson process with a personal rate λ ~ Gamma(r, α); after
each repeat purchase they drop out for good with a personal probability
p ~ Beta(a, b) (nudged up for less satisfied customers). Customers who joined
during the history make a first purchase when they join.

On top of it, a share of long-standing customers are **regulars** — frequent,
with a *core item* in most of their journeys — in one of three planted roles:

``loyal``           keep coming to the end (some despite a stock-out of their core item);
``drift_stockout``  stop for good right after one or two stock-outs of their core item;
``drift_unknown``   stop for good with nothing bad in their last journeys.

Each journey wants 1-4 distinct items; an item is out of stock (``fulfilled =
false``) at its catalogue rate; a journey with a missing item has outcome
``failed`` ("out of stock: <item>").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sawubona.demo.block import Block
from sawubona.demo.common import (
    ACHIEVED,
    AS_OF,
    DAY,
    FAILED,
    I64,
    MINUTE,
    SECOND,
    assemble,
    event_ids,
    labels,
    num,
    pick_count,
    rank_from_end,
    rank_in_group,
    to_seconds,
    ts,
    ts_opt,
)

ROLES = ("none", "loyal", "drift_stockout", "drift_unknown")
NONE, LOYAL, DRIFT_STOCKOUT, DRIFT_UNKNOWN = range(4)


@dataclass(frozen=True)
class Catalogue:
    """Items on sale: ids, unit prices, popularity weights, stock-out rates."""

    item_ids: tuple[str, ...]
    price: np.ndarray
    popularity: np.ndarray
    stockout: np.ndarray
    #: items that can be someone's core item
    core_ok: np.ndarray

    @property
    def display(self) -> list[str]:
        """Item names as written in messages (``flat white``)."""
        return [i.replace("_", " ") for i in self.item_ids]


@dataclass(frozen=True)
class Buying:
    """Parameters of a world's buying process (rates per day)."""

    r: float
    alpha: float
    a: float
    b: float
    regular_share: float
    regular_rate: tuple[float, float]
    #: earliest and latest stop, in days before as_of, for drifting regulars
    stop_days: tuple[float, float]
    core_share_regular: float
    core_share_other: float
    max_items: int
    #: probability weights of the hour of day (24 values)
    hours: tuple[float, ...]


@dataclass
class Log:
    """A block's journeys (sorted by start) and wanted items."""

    cust: np.ndarray
    at: np.ndarray
    number: np.ndarray
    outcome: np.ndarray
    reason: pa.Array
    value: np.ndarray
    #: the journey must stay free of bad experiences (drift_unknown's last journeys)
    clean: np.ndarray
    item_journey: np.ndarray
    item: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    fulfilled: np.ndarray
    #: per customer
    role: np.ndarray
    core: np.ndarray
    alive_to: np.ndarray
    dead: np.ndarray

    @property
    def n(self) -> int:
        return len(self.cust)

    def ids(self) -> pa.Array:
        return event_ids("journeys", self.number)


def _hours(rng: np.random.Generator, n: int, hours: tuple[float, ...]) -> np.ndarray:
    cp = np.cumsum(hours) / np.sum(hours)
    h = np.searchsorted(cp, rng.random(n), side="right")
    return h * 3600 * SECOND + rng.integers(0, 3600, n) * SECOND


def buy(b: Block, cat: Catalogue, par: Buying, base: int) -> Log:
    """Simulate the purchase log of a block; plants the regulars' roles."""
    rng, cu = b.rng, b.cust
    n = cu.n
    start = cu.start
    lam = rng.gamma(par.r, 1.0 / par.alpha, n)
    p = np.clip(rng.beta(par.a, par.b, n) * np.exp(-0.3 * cu.sat), 0.0, 0.99)
    # regulars and their roles
    cand = np.flatnonzero(start <= AS_OF - 550 * DAY)
    k = pick_count(len(cand), par.regular_share * n / max(len(cand), 1), 12)
    regs = rng.choice(cand, k, replace=False) if k else np.zeros(0, I64)
    role = np.zeros(n, I64)
    u = rng.random(len(regs))
    role[regs] = np.where(u < 0.6, LOYAL, np.where(u < 0.8, DRIFT_STOCKOUT, DRIFT_UNKNOWN))
    for r_ in (DRIFT_STOCKOUT, DRIFT_UNKNOWN, LOYAL):  # at least three of each
        if (role == r_).sum() < 3 and len(regs) >= 12:
            spare = regs[role[regs] == LOYAL][:3] if r_ != LOYAL else regs[:3]
            role[spare] = r_
    lam[regs] = rng.uniform(*par.regular_rate, len(regs))
    end = np.full(n, AS_OF, I64)
    drift = np.flatnonzero((role == DRIFT_STOCKOUT) | (role == DRIFT_UNKNOWN))
    lo = np.maximum(start[drift] + 200 * DAY, AS_OF - int(par.stop_days[1] * DAY))
    hi = np.full(len(drift), AS_OF - int(par.stop_days[0] * DAY))
    end[drift] = to_seconds(lo + (rng.random(len(drift)) * np.maximum(hi - lo, DAY)).astype(I64))

    # repeat purchases: Poisson while alive, dropout after each with probability p
    span = np.maximum(end - start, 0)
    cnt = np.minimum(rng.poisson(lam * span / DAY), 2000)
    cnt[regs] = np.maximum(cnt[regs], 10)  # a regular has a history to drift from
    owner = np.repeat(np.arange(n, dtype=I64), cnt)
    t = start[owner] + (rng.random(len(owner)) * span[owner]).astype(I64)
    t = (t // DAY) * DAY + _hours(rng, len(owner), par.hours)
    t = np.clip(t, start[owner] + 31 * MINUTE, end[owner] - MINUTE)
    trial = np.flatnonzero(cu.joined >= start)  # joined during the history
    owner = np.r_[owner, trial]
    t = np.r_[t, start[trial] + MINUTE * rng.integers(1, 30, len(trial))]
    is_trial = np.r_[np.zeros(len(owner) - len(trial), bool), np.ones(len(trial), bool)]
    order = np.lexsort((t, owner))
    owner, t, is_trial = owner[order], t[order], is_trial[order]
    # dropout: keep the first K repeat purchases (trials do not count)
    repeat_no = rank_in_group(owner) + 1 - _has_trial(owner, is_trial, n)
    k_drop = rng.geometric(np.maximum(p, 1e-6))
    keep = is_trial | (role[owner] != NONE) | (repeat_no <= k_drop[owner])
    owner, t = owner[keep], to_seconds(t[keep])
    m = len(owner)
    last = np.full(n, -1, I64)
    np.maximum.at(last, owner, t)
    # a non-regular died if its kept repeats reached K before the end of the data
    n_rep = np.bincount(owner, weights=(~is_trial[keep]).astype(float), minlength=n)
    dead = (role == NONE) & (n_rep >= k_drop) & (n_rep > 0)
    dead |= (role == DRIFT_STOCKOUT) | (role == DRIFT_UNKNOWN)
    alive_to = np.where(dead, last, AS_OF)

    # items: the core item (often) plus popular others, distinct per journey
    core_pool = np.flatnonzero(cat.core_ok)
    w = cat.popularity[core_pool]
    core = core_pool[np.searchsorted(np.cumsum(w) / w.sum(), rng.random(n), side="right")]
    is_reg = role[owner] != NONE
    with_core = rng.random(m) < np.where(is_reg, par.core_share_regular, par.core_share_other)
    extra = rng.integers(0, par.max_items, m) + (~with_core)
    pw = np.cumsum(cat.popularity) / cat.popularity.sum()
    ej = np.repeat(np.arange(m, dtype=I64), extra)
    ei = np.searchsorted(pw, rng.random(len(ej)), side="right")
    cj = np.flatnonzero(with_core)
    j_all = np.r_[cj, ej]
    i_all = np.r_[core[owner[cj]], ei]
    key = j_all * len(cat.item_ids) + i_all
    _, first = np.unique(key, return_index=True)  # distinct items, ordered by journey
    first = np.sort(first)
    ij, item = j_all[first], i_all[first]
    o2 = np.lexsort((item, ij))
    ij, item = ij[o2], item[o2]
    fulfilled = rng.random(len(ij)) >= cat.stockout[item]

    # planted stock-outs and clean endings
    rfe = rank_from_end(owner)
    is_core = item == core[owner[ij]]
    so_role = role[owner] == DRIFT_STOCKOUT
    n_so = 1 + (rng.random(n) < 0.5)
    last_visits = so_role & (rfe < n_so[owner])
    # make sure the core item is wanted on those visits, then out of stock
    need = np.flatnonzero(last_visits & ~_journey_has(ij, is_core, m))
    ij = np.r_[ij, need]
    item = np.r_[item, core[owner[need]]]
    fulfilled = np.r_[fulfilled, np.ones(len(need), bool)]
    is_core = np.r_[is_core, np.ones(len(need), bool)]
    o3 = np.lexsort((item, ij))
    ij, item, fulfilled, is_core = ij[o3], item[o3], fulfilled[o3], is_core[o3]
    fulfilled[last_visits[ij] & is_core] = False
    clean = (role[owner] == DRIFT_UNKNOWN) & (rfe < 4)
    clean |= so_role & (rfe < 4) & ~last_visits  # nothing else bad before the stock-outs
    fulfilled[clean[ij]] = True

    qty = np.where(rng.random(len(ij)) < 0.85, 1.0, 2.0 + rng.integers(0, 2, len(ij)))
    price = cat.price[item]
    value = np.bincount(ij, weights=qty * price * fulfilled, minlength=m)
    missing = np.bincount(ij, weights=~fulfilled * 1.0, minlength=m) > 0
    miss_item = np.full(m, -1, I64)
    miss_rows = np.flatnonzero(~fulfilled)
    miss_item[ij[miss_rows]] = item[miss_rows]
    outcome = np.where(missing, FAILED, ACHIEVED)
    reason_pool = pa.array([f"out of stock: {i}" for i in cat.item_ids], pa.string())
    reason = labels(reason_pool, miss_item)

    # truth about regulars (before re-sorting by time)
    _drift_truth(b, cat, role, core, owner, t, ij, item, fulfilled, is_core, last_visits, base, m)
    # sort journeys by start time and number them
    order = np.argsort(t, kind="stable")
    inv = np.empty(m, I64)
    inv[order] = np.arange(m, dtype=I64)
    ij = inv[ij]
    o4 = np.lexsort((item, ij))
    b.add_truth(
        "customers",
        pa.table(
            {
                "customer_id": cu.ids,
                "churned": pa.array(dead),
                "churned_at": ts_opt(np.where(dead, alive_to, -1)),
                "satisfaction": pa.array(np.round(cu.sat, 4)),
            }
        ),
    )
    return Log(
        cust=owner[order],
        at=t[order],
        number=base + np.arange(m, dtype=I64),
        outcome=outcome[order],
        reason=reason.take(pa.array(order)),
        value=value[order],
        clean=clean[order],
        item_journey=ij[o4],
        item=item[o4],
        quantity=qty[o4],
        price=price[o4],
        fulfilled=fulfilled[o4],
        role=role,
        core=core,
        alive_to=alive_to,
        dead=dead,
    )


def _has_trial(owner: np.ndarray, is_trial: np.ndarray, n: int) -> np.ndarray:
    """Per row: 1 if the owner's first row is a trial purchase (then repeats start at 2)."""
    first_trial = np.zeros(n, I64)
    if len(owner) == 0:
        return np.zeros(0, I64)
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    first_trial[owner[starts]] = is_trial[starts]
    return first_trial[owner]


def _journey_has(ij: np.ndarray, flag: np.ndarray, m: int) -> np.ndarray:
    return np.bincount(ij[flag], minlength=m) > 0


def _drift_truth(
    b: Block,
    cat: Catalogue,
    role: np.ndarray,
    core: np.ndarray,
    owner: np.ndarray,
    t: np.ndarray,
    ij: np.ndarray,
    item: np.ndarray,
    fulfilled: np.ndarray,
    is_core: np.ndarray,
    last_visits: np.ndarray,
    base: int,
    m: int,
) -> None:
    """One row per regular: role, core item, stop, the stock-out journeys before it."""
    n = b.cust.n
    order = np.argsort(t, kind="stable")
    number = np.empty(m, I64)
    number[order] = base + np.arange(m, dtype=I64)
    regs = np.flatnonzero(role != NONE)
    n_j = np.bincount(owner, minlength=n)
    last = np.full(n, -1, I64)
    np.maximum.at(last, owner, t)
    core_so = np.bincount(owner[ij[is_core & ~fulfilled]], minlength=n)
    so_j = np.flatnonzero(last_visits)
    so_ids = event_ids("journeys", number[so_j])
    # list of stock-out journey ids per regular (owner-sorted rows)
    # rows of so_j are grouped by owner (the log is owner-sorted) and ordered by time
    per_reg = np.bincount(owner[so_j], minlength=n)[regs]
    lists = pa.ListArray.from_arrays(pa.array(np.r_[0, np.cumsum(per_reg)], pa.int32()), so_ids)
    reason = np.where(role[regs] == DRIFT_STOCKOUT, 0, np.where(role[regs] == DRIFT_UNKNOWN, 1, -1))
    b.add_truth(
        "drift",
        pa.table(
            {
                "customer_id": labels(b.cust.ids, regs),
                "role": labels(ROLES, role[regs]),
                "core_item": labels(list(cat.item_ids), core[regs]),
                "n_journeys": pa.array(n_j[regs]),
                "last_journey_at": ts(last[regs]),
                "stopped": pa.array(role[regs] >= DRIFT_STOCKOUT),
                "reason": labels(("core_item_stockout", "unknown"), reason),
                "stockout_journey_ids": lists,
                "core_stockouts": pa.array(core_so[regs]),
            }
        ),
    )


def items_table(log: Log, cat: Catalogue) -> pa.Table:
    """The canonical ``journey_items`` rows of a block."""
    k = len(log.item)
    return assemble(
        "journey_items",
        k,
        {
            "journey_id": event_ids("journeys", log.number[log.item_journey]),
            "item_id": labels(list(cat.item_ids), log.item),
            "quantity": num(log.quantity, None),
            "unit_price": num(log.price),
            "fulfilled": pa.array(log.fulfilled),
        },
    )


def wanted_text(log: Log, cat: Catalogue, prefix: str) -> pa.Array:
    """Per journey: ``prefix`` + its wanted items, comma-separated."""
    import pyarrow.compute as pc

    counts = np.bincount(log.item_journey, minlength=log.n)
    offsets = pa.array(np.r_[0, np.cumsum(counts)], pa.int32())
    lists = pa.ListArray.from_arrays(offsets, labels(list(cat.item_ids), log.item))
    return pc.binary_join_element_wise(prefix, pc.binary_join(lists, ", "), "")


def first_item(log: Log) -> np.ndarray:
    """Per journey: its first wanted item (journeys without items give -1)."""
    first = np.full(log.n, -1, I64)
    rev = np.arange(len(log.item))[::-1]
    first[log.item_journey[rev]] = log.item[rev]
    return first


def missing_item(log: Log) -> np.ndarray:
    """Per journey: an unfulfilled item (-1 when all were supplied)."""
    miss = np.full(log.n, -1, I64)
    rows = np.flatnonzero(~log.fulfilled)
    miss[log.item_journey[rows]] = log.item[rows]
    return miss
