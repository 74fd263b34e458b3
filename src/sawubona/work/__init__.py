"""Closing the loop: the worklist, its lifecycle, the outer loop and "did it help?".

* :mod:`sawubona.work.derive` — lens results → work items (pure);
* :mod:`sawubona.work.db` — the worklist file next to the store: items, append-only
  events, lifecycle, holdout;
* :mod:`sawubona.work.measure` — the outer loop (which causes keep producing work)
  and "did it help?" (handled vs comparable unhandled items, and vs the holdout).

``refresh(store, as_of)`` is what ``analyze`` calls after the lenses.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from sawubona.work.db import (
    DONE_KINDS,
    HOLDOUT_KINDS,
    STATES,
    WorkError,
    Worklist,
    default_author,
    in_holdout,
    item_id_of,
    worklist_path,
)
from sawubona.work.derive import (
    GIFT_TABLES,
    KINDS,
    URGENCIES,
    Item,
    Items,
    derive,
    derive_gifts,
    derive_items,
)

if TYPE_CHECKING:
    from sawubona.store import Store

__all__ = [
    "DONE_KINDS",
    "HOLDOUT_KINDS",
    "KINDS",
    "SETTINGS",
    "STATES",
    "URGENCIES",
    "Item",
    "Items",
    "WorkError",
    "Worklist",
    "default_author",
    "derive",
    "derive_gifts",
    "derive_items",
    "gather",
    "gift_items",
    "in_holdout",
    "item_id_of",
    "open_worklist",
    "refresh",
    "worklist_path",
]

#: Settings of the worklist refresh, given to analyze as ``--set work.NAME=VALUE``.
SETTINGS: dict[str, tuple[Any, str]] = {
    "lookback_days": (
        180.0,
        "event-based items (broken promises, unanswered contacts, survey "
        "answers) are made for events this many days before as_of at most",
    ),
    "holdout_share": (
        None,
        "share of new gift and contact items held back to measure whether "
        "handling helps (remembered by the worklist; 0 = off)",
    ),
    "holdout_seed": (None, "seed of the holdout's hash (remembered)"),
}


def open_worklist(store: Any) -> Worklist:
    """The worklist next to ``store`` (a Store or its path), created when missing."""
    return Worklist(worklist_path(store))


def gather(
    store: Store,
    as_of: dt.datetime,
    *,
    lookback_days: float = 180.0,
    owed_credits_only: bool = False,
) -> dict[str, pa.Table]:
    """The rows :func:`derive` needs, read where the data lives (filtered before fetching).

    ``owed_credits_only``: of ``giving_gifts`` only the owed credits (the gift items were
    made before, by :func:`gift_items`)."""
    from sawubona.work.derive import NEEDS

    present = [name for name in NEEDS if store.has_table(name)]
    return _fetch(store.table, present, as_of, lookback_days, owed_credits_only)


def _fetch(
    table: Callable[[str], Any],
    present: Collection[str],
    as_of: dt.datetime,
    lookback_days: float,
    owed_credits_only: bool = False,
) -> dict[str, pa.Table]:
    from sawubona.work.derive import NEEDS

    since = as_of - dt.timedelta(days=lookback_days)
    out: dict[str, pa.Table] = {}
    for name, cols in NEEDS.items():
        if name not in present:
            continue
        t = table(name)
        cols = tuple(c for c in cols if c in t.columns)
        if name == "experience_journeys" and "unanswered_contacts" in t.columns:
            t = t.filter(t.unanswered_contacts > 0)
        elif name == "surveys":
            t = t.filter(t.score.notnull() & (t.responded_at >= since) & (t.responded_at <= as_of))
        elif name == "touch_messages":
            t = t.filter(t.touch.isin(["personal", "spoken"]) & (t.at >= since))
        elif name == "giving_gifts" and owed_credits_only and "kind" in t.columns:
            t = t.filter(t.kind == "owed_credit")
        out[name] = t.select(*cols).to_pyarrow()
    if "customers" in out:  # only the names of customers some item may be for
        names = out["customers"]
        ids = names.column("customer_id")
        chunks = [
            chunk.cast(ids.type)
            for name, t in out.items()
            if name not in ("customers", "touch_messages") and "customer_id" in t.column_names
            for chunk in t.column("customer_id").chunks
        ]
        wanted = pc.unique(pa.chunked_array(chunks, ids.type).combine_chunks().drop_null())
        wanted = wanted.filter(pc.not_equal(wanted, ""))  # as `if v`: no null, no ''
        out["customers"] = names.filter(pc.is_in(ids, value_set=wanted).combine_chunks())
    return out


def _lookback(settings: Mapping[str, Any]) -> float:
    try:
        return float(settings.get("lookback_days", SETTINGS["lookback_days"][0]))
    except ValueError:
        raise WorkError("setting work.lookback_days must be a number of days, e.g. 180") from None


def gift_items(
    table: Callable[[str], Any],
    present: Collection[str],
    as_of: dt.datetime,
    settings: Mapping[str, Any] | None = None,
) -> Items:
    """The gift items of a refresh (:func:`derive_gifts`), made from ``table(name)`` for
    the tables in ``present``: an analysis makes them on a free thread once the giving and
    promises lenses have written their results, and passes them to :func:`refresh`."""
    lookback = _lookback(dict(settings or {}))
    wanted = [n for n in GIFT_TABLES if n in present]
    return derive_gifts(_fetch(table, wanted, as_of, lookback), as_of, lookback_days=lookback)


def refresh(
    store: Store,
    as_of: dt.datetime,
    settings: Mapping[str, Any] | None = None,
    *,
    who: str = "analyze",
    gifts: Items | None = None,
) -> dict[str, int]:
    """Derive the items from the store's lens results and upsert them into its worklist.

    ``gifts``: the gift items :func:`gift_items` made from the same results."""
    settings = dict(settings or {})
    unknown = [k for k in settings if k not in SETTINGS]
    if unknown:
        raise WorkError(f"the worklist has no setting {unknown[0]!r}; it has {', '.join(SETTINGS)}")
    lookback = _lookback(settings)
    tables = gather(store, as_of, lookback_days=lookback, owed_credits_only=gifts is not None)
    items = derive_items(tables, as_of, lookback_days=lookback, gifts=gifts)
    del tables
    with open_worklist(store) as wl:
        if "holdout_share" in settings or "holdout_seed" in settings:
            cfg = wl.config()
            try:
                share = float(settings.get("holdout_share", cfg["holdout_share"]))
                seed = int(settings.get("holdout_seed", cfg["holdout_seed"]))
            except ValueError:
                raise WorkError(
                    "work.holdout_share must be a number between 0 and 1 and work.holdout_seed "
                    "a whole number, e.g. --set work.holdout_share=0.1"
                ) from None
            wl.set_holdout(share, seed=seed, kinds=cfg["holdout_kinds"])
        return wl.refresh(items, as_of, who=who)
