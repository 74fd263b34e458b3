"""The outer loop (which causes keep producing work) and "did it help?".

**Outer loop.** Items grouped by kind and cause (``cause`` is set by
:mod:`sawubona.work.derive`: "broken delivery promise · team delivery", "core item
unavailable · coffee_beans_1kg", "best plan · on classic_20gb" ...): how many, how
many handled, how fast (median hours from the item's creation to done or
dismissed), and in how many analyses the cause produced new items — the causes
that keep sending work are the fixes that would stop it arriving.

**Did it help?** Items handled (``done``) against comparable items not handled,
on what the customer did over a horizon after the item appeared (``outcomes``: one
number per item — retained 0/1, repurchased 0/1, complaints, survey score):

* *naive*: mean outcome of handled − unhandled (not held out) items, Welch
  difference with a normal 95% interval. People choose which items to handle —
  the easy, the valuable, the ones likely to go well — so this difference mixes
  the effect of handling with the difference between the customers. It is shown,
  labelled as such, never as the effect.
* *holdout* (when a share of eligible items was held back at random, by hash):
  the intention-to-treat difference, all eligible non-held-out items − held-out
  items, is an unbiased estimate of the effect of *offering* the work to the
  team; divided by the share handled it estimates the effect per handled item
  (Bloom 1984, "Accounting for no-shows in experimental evaluation designs",
  *Evaluation Review* 8(2); Angrist, Imbens & Rubin 1996, JASA 91: the Wald/IV
  estimator, valid when holding out an item means it is not handled). Its
  interval is the delta method on the ratio.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sawubona.work.db import Worklist

if TYPE_CHECKING:
    from sawubona.store import Store

Z95 = 1.959963984540054

SELECTION_CAVEAT = (
    "Handled items are not a random sample: people pick the cases that look easy, "
    "valuable or likely to go well, so the handled-vs-unhandled difference mixes the "
    "effect of handling with the differences between those customers. Only the holdout "
    "comparison (items held back at random) estimates the effect itself."
)


def outer_loop(wl: Worklist) -> list[dict[str, Any]]:
    """Per kind and cause: counts by state, handling speed, and how often new items arrived."""
    rows = wl.items(state=None, include_holdout=True)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["cause"] or "(none)"), []).append(r)
    out: list[dict[str, Any]] = []
    for (kind, cause), items in groups.items():
        states = {
            s: sum(1 for i in items if i["state"] == s)
            for s in ("open", "assigned", "done", "dismissed", "expired")
        }
        hours = [
            (
                dt.datetime.fromisoformat(i["handled_at"])
                - dt.datetime.fromisoformat(i["created_at"])
            ).total_seconds()
            / 3600
            for i in items
            if i["handled_at"]
        ]
        runs = {i["first_seen_as_of"] for i in items}
        handled = states["done"] + states["dismissed"]
        eligible = len(items) - sum(1 for i in items if i["holdout"])
        out.append(
            {
                "kind": kind,
                "cause": cause,
                "items": len(items),
                **states,
                "held_out": len(items) - eligible,
                "handled_share": handled / eligible if eligible else None,
                "median_hours_to_handle": statistics.median(hours) if hours else None,
                "analyses_with_new_items": len(runs),
                "first_seen_as_of": min(runs) if runs else None,
                "last_seen_as_of": max(i["last_seen_as_of"] or "" for i in items) or None,
                "value": sum(i["value"] or 0 for i in items),
                "recurring": len(runs) >= 2 or len(items) >= 3,
            }
        )
    out.sort(key=lambda r: (-r["items"], r["kind"], r["cause"]))
    return out


def kinds_summary(wl: Worklist) -> list[dict[str, Any]]:
    """Per kind: the same figures as :func:`outer_loop` summed over causes."""
    by: dict[str, dict[str, Any]] = {}
    for r in outer_loop(wl):
        k = by.setdefault(
            r["kind"],
            {
                "kind": r["kind"],
                "items": 0,
                "open": 0,
                "assigned": 0,
                "done": 0,
                "dismissed": 0,
                "expired": 0,
                "held_out": 0,
                "causes": 0,
            },
        )
        for col in ("items", "open", "assigned", "done", "dismissed", "expired", "held_out"):
            k[col] += r[col]
        k["causes"] += 1
    return sorted(by.values(), key=lambda r: -r["items"])


@dataclass
class Difference:
    """A difference of means between two groups, with its 95% interval."""

    label: str
    estimate: float | None
    low: float | None
    high: float | None
    n_a: int
    n_b: int
    mean_a: float | None
    mean_b: float | None
    note: str = ""


def _mean_var(xs: Sequence[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    v = sum((x - m) ** 2 for x in xs) / (len(xs) - 1) if len(xs) > 1 else 0.0
    return m, v


def diff_means(a: Sequence[float], b: Sequence[float], label: str, note: str = "") -> Difference:
    """mean(a) − mean(b) with a Welch (unequal-variance) normal 95% interval."""
    if len(a) < 2 or len(b) < 2:
        return Difference(
            label, None, None, None, len(a), len(b), None, None, "too few items to compare"
        )
    ma, va = _mean_var(a)
    mb, vb = _mean_var(b)
    se = math.sqrt(va / len(a) + vb / len(b))
    d = ma - mb
    return Difference(label, d, d - Z95 * se, d + Z95 * se, len(a), len(b), ma, mb, note)


def did_it_help(
    items: Sequence[Mapping[str, Any]],
    outcomes: Mapping[str, float],
    *,
    outcome: str = "retained",
) -> dict[str, Any]:
    """Compare handled, unhandled and held-out items on one outcome (item_id → number).

    ``items`` are worklist rows (``state``, ``holdout``, ``item_id``); items without
    an outcome (not yet old enough) are left out and counted.
    """
    handled, unhandled, held = [], [], []
    missing = 0
    for it in items:
        y = outcomes.get(it["item_id"])
        if y is None or (isinstance(y, float) and math.isnan(y)):
            missing += 1
            continue
        if it["holdout"]:
            held.append(float(y))
        elif it["state"] == "done":
            handled.append(float(y))
        elif it["state"] != "dismissed":
            unhandled.append(float(y))
    naive = diff_means(
        handled,
        unhandled,
        "handled − not (yet) handled",
        "biased by selection: handled items were chosen by people",
    )
    out: dict[str, Any] = {
        "outcome": outcome,
        "handled": len(handled),
        "unhandled": len(unhandled),
        "held_out": len(held),
        "without_outcome": missing,
        "naive": asdict(naive),
        "itt": None,
        "per_handled": None,
        "caveat": SELECTION_CAVEAT,
    }
    if len(held) >= 2:
        offered = handled + unhandled
        itt = diff_means(
            offered, held, "offered (not held out) − held out", "unbiased: the holdout is random"
        )
        out["itt"] = asdict(itt)
        c = len(handled) / len(offered) if offered else 0.0
        if itt.estimate is not None and c > 0:
            se_itt = (itt.high - itt.estimate) / Z95 if itt.high is not None else 0.0
            var_c = c * (1 - c) / len(offered)
            est = itt.estimate / c
            se = math.sqrt(se_itt**2 / c**2 + itt.estimate**2 * var_c / c**4)
            out["per_handled"] = asdict(
                Difference(
                    "effect per handled item (holdout ÷ share handled)",
                    est,
                    est - Z95 * se,
                    est + Z95 * se,
                    len(offered),
                    len(held),
                    None,
                    None,
                    f"share handled {c:.2f}; valid if held-out items are never handled",
                )
            )
    return out


def outcomes_from_store(
    store: Store, items: Sequence[Mapping[str, Any]], *, horizon_days: float = 90.0
) -> dict[str, dict[str, float]]:
    """What each item's customer did in the ``horizon_days`` after the item appeared.

    Per outcome name → {item_id: value}: ``retained`` (a journey started in the
    window, or a subscription still running at its end), ``repurchased`` (a purchase
    journey — order, visit, purchase — in the window), ``complaints`` (inbound
    contacts in the window), ``survey_score`` (mean NPS answered in the window).
    Only items whose window ends by the data's latest event are measured.
    """
    from sawubona.analyze import latest_event

    end = latest_event(store)
    out: dict[str, dict[str, float]] = {
        "retained": {},
        "repurchased": {},
        "complaints": {},
        "survey_score": {},
    }
    if end is None:
        return out
    windows: dict[str, tuple[dt.datetime, dt.datetime]] = {}
    for it in items:
        t0 = dt.datetime.fromisoformat(it["first_seen_as_of"])
        t1 = t0 + dt.timedelta(days=horizon_days)
        if t1 <= end:
            windows[it["item_id"]] = (t0, t1)
    if not windows:
        return out
    customers = sorted({it["customer_id"] for it in items if it["item_id"] in windows})

    def fetch(name: str, cols: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not store.has_table(name):
            return {}
        t = store.table(name)
        rows = t.filter(t.customer_id.isin(customers)).select(*cols).to_pyarrow().to_pylist()
        by: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by.setdefault(r["customer_id"], []).append(r)
        return by

    journeys = fetch("journeys", ["customer_id", "kind", "started_at"])
    subs = fetch("subscriptions", ["customer_id", "started_at", "ended_at"])
    touch = fetch("touchpoints", ["customer_id", "at", "direction"])
    surveys = fetch("surveys", ["customer_id", "instrument", "responded_at", "score"])
    for it in items:
        if it["item_id"] not in windows:
            continue
        t0, t1 = windows[it["item_id"]]
        cid, iid = it["customer_id"], it["item_id"]
        js = [j for j in journeys.get(cid, []) if t0 < j["started_at"] <= t1]
        running = any(
            s["started_at"] <= t1 and (s["ended_at"] is None or s["ended_at"] > t1)
            for s in subs.get(cid, [])
        )
        out["retained"][iid] = float(bool(js) or running)
        out["repurchased"][iid] = float(
            any(j["kind"] in ("order", "visit", "purchase") for j in js)
        )
        out["complaints"][iid] = float(
            sum(1 for t in touch.get(cid, []) if t["direction"] == "inbound" and t0 < t["at"] <= t1)
        )
        scores = [
            s["score"]
            for s in surveys.get(cid, [])
            if s["instrument"] == "nps"
            and s["responded_at"] is not None
            and t0 < s["responded_at"] <= t1
            and s["score"] is not None
        ]
        if scores:
            out["survey_score"][iid] = sum(scores) / len(scores)
    return out


def impact(
    store: Store,
    wl: Worklist,
    *,
    horizon_days: float = 90.0,
    kinds: Sequence[str] = ("gift", "drifting_regular", "unanswered", "survey_reply", "make_right"),
) -> dict[str, Any]:
    """ "Did it help?" for every outcome, over the items of ``kinds`` old enough to measure."""
    items = [i for i in wl.items(state=None, include_holdout=True) if i["kind"] in kinds]
    outcomes = outcomes_from_store(store, items, horizon_days=horizon_days)
    measured = len(next(iter(outcomes.values()), {}))
    return {
        "horizon_days": horizon_days,
        "items": len(items),
        "measured": measured,
        "outcomes": [did_it_help(items, v, outcome=k) for k, v in outcomes.items()],
        "caveat": SELECTION_CAVEAT,
    }
