"""The set-based worklist refresh and the column-wise derivation give exactly what the
row-by-row ones gave: the same items, keys, wording, evidence, values, urgency, states,
events and holdout, on demo worlds and on hand-made edge cases, over a run of refreshes.

The reference is the implementation of commit 99b8df3 (before issue 10's rewrite), kept
below verbatim apart from its names; ``db._now`` is pinned so timestamps compare too.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import sawubona
from sawubona import work
from sawubona.work import Item, Items, Worklist, db, derive, derive_gifts, derive_items
from sawubona.work.db import ACTIVE, in_holdout, item_id_of

# -- the reference: derive and Worklist.refresh as they were, one row at a time ---------------


def _iso(v: dt.datetime | None) -> str | None:
    return None if v is None else v.isoformat()


LOW_SCORE = {"nps": 6.0, "csat": 2.0, "ces": 3.0}
SCALE = {"nps": "0–10", "csat": "1–5", "ces": "1–7"}


def _rows(tables: Mapping[str, pa.Table], name: str) -> list[dict[str, Any]]:
    t = tables.get(name)
    return [] if t is None else t.to_pylist()


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _first_name(names: Mapping[str, str | None], customer_id: str) -> str:
    name = (names.get(customer_id) or "").strip()
    return name.split()[0] if name else "there"


def _day(v: Any) -> str:
    if isinstance(v, dt.datetime | dt.date):
        return f"{v.day} {v:%B %Y}"
    return str(v)


def _iso_day(v: Any) -> str:
    if isinstance(v, dt.datetime | dt.date):
        return f"{v:%Y-%m-%d}"
    return str(v)


def _money(v: float | None, currency: str | None) -> str:
    if v is None:
        return ""
    sign = {"GBP": "£", "EUR": "€", "USD": "$"}.get(currency or "", "")
    return f"{sign}{v:,.2f}" if sign else f"{v:,.2f} {currency or ''}".strip()


def _as_datetime(v: Any) -> dt.datetime | None:
    if isinstance(v, dt.datetime):
        return v
    if isinstance(v, dt.date):
        return dt.datetime.combine(v, dt.time())
    return None


PROMISE_VERB = {
    "delivery": "deliver your order",
    "callback": "call you back",
    "reply": "reply to you",
    "refund": "refund you",
    "fix": "fix the problem",
    "visit": "visit you",
    "order_ready": "have your order ready",
    "plan_change": "change your plan",
}


def reference_derive(
    tables: Mapping[str, pa.Table],
    as_of: dt.datetime,
    *,
    lookback_days: float = 180.0,
) -> list[Item]:
    """Every work item the lens results call for, as of ``as_of`` (deduplicated by key)."""
    names = {r["customer_id"]: r.get("name") for r in _rows(tables, "customers")}
    since = as_of - dt.timedelta(days=lookback_days)
    items: dict[str, Item] = {}

    def add(item: Item) -> None:
        items.setdefault(item.key, item)

    gifts = _rows(tables, "giving_gifts")
    owed_by_promise = {
        g["source_ids"]: g
        for g in gifts
        if g["kind"] == "owed_credit" and g.get("source_table") == "promises"
    }
    make_right_ids = {
        r["promise_id"]
        for r in _rows(tables, "promises_make_right")
        if (_as_datetime(r.get("due_at")) or as_of) >= since
    }

    # -- broken promises with no make-good --------------------------------------------
    for r in _rows(tables, "promises_make_right"):
        due = _as_datetime(r.get("due_at"))
        if due is not None and due < since:
            continue
        cid, pid = r["customer_id"], r["promise_id"]
        first = _first_name(names, cid)
        verb = PROMISE_VERB.get(r["kind"], f"keep our {r['kind']} promise")
        how = "and we were late" if r.get("broken_how") == "late" else "and we did not do it"
        owed = owed_by_promise.get(pid)
        if owed is not None:
            wording = owed["message"]
            value, currency = _num(owed.get("value_per_year")), owed.get("currency")
        else:
            wording = (
                f"Hi {first}, we told you we would {verb} by {_day(due)}, {how}. "
                "That is not good enough, and I'm sorry. I have looked at what happened and "
                "I'd like to put it right — reply to me directly, or I'll call you if you "
                "prefer."
            )
            value, currency = None, r.get("currency")
        stake = _num(r.get("stake"))
        recent = due is not None and (as_of - due).days <= 30
        add(
            Item(
                key=f"make_right:{cid}:{pid}",
                kind="make_right",
                subkind=r["kind"],
                customer_id=cid,
                title=f"Make right a broken {r['kind']} promise",
                why=f"{r.get('evidence') or 'broken'}; no apology, credit or follow-up since"
                + (f"; {_money(value, currency)} still owed by our own rules" if value else ""),
                wording=wording,
                urgency="high" if recent or value else "medium",
                cause=f"broken {r['kind']} promise · team {r.get('team') or '(none)'}",
                at=due,
                team=r.get("team"),
                value=value if value is not None else stake,
                currency=currency,
                evidence={"promises": [pid]}
                | ({"journeys": [r["journey_id"]]} if r.get("journey_id") else {}),
            )
        )

    # -- gifts ----------------------------------------------------------------------------
    best: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for g in gifts:
        cid, kind = g["customer_id"], g["kind"]
        value, currency = _num(g.get("value_per_year")), g.get("currency")
        if kind.startswith("best_plan"):
            best.setdefault((cid, g.get("current_plan_id") or ""), []).append(g)
            continue
        if kind == "owed_credit" and g.get("source_ids") in make_right_ids:
            continue  # folded into the make_right item for the same promise
        stable = g.get("plan_id") or g.get("source_ids") or g["gift_id"]
        per = "a year" if g.get("recurring") else "once"
        add(
            Item(
                key=f"gift:{kind}:{cid}:{stable}",
                kind="gift",
                subkind=kind,
                customer_id=cid,
                title=f"Give: {kind.replace('_', ' ')}",
                why=f"{kind.replace('_', ' ')} worth {_money(value, currency)} {per} to the "
                f"customer (confidence {(_num(g.get('confidence')) or 0):.2f})",
                wording=g.get("message") or "",
                urgency="high"
                if kind == "owed_credit"
                else ("medium" if (value or 0) >= 50 else "low"),
                cause=" · ".join(x for x in (kind.replace("_", " "), g.get("plan_id") or "") if x),
                at=None,
                team=None,
                value=value,
                currency=currency,
                evidence={"giving_gifts": [g["gift_id"]]},
            )
        )
    for (cid, current), group in best.items():
        group.sort(
            key=lambda g: (g["kind"] != "best_plan_cheaper", -(_num(g.get("value_per_year")) or 0))
        )
        best_gift = group[0]
        value, currency = _num(best_gift.get("value_per_year")), best_gift.get("currency")
        why = (
            f"{best_gift.get('plan_id')} would have cost less than {current or 'their plan'} "
            f"in most months: {_money(value, currency)} a year"
        )
        for other in group[1:]:
            why += (
                f"; like for like: {other.get('plan_id')} "
                f"({_money(_num(other.get('value_per_year')), currency)} a year)"
            )
        add(
            Item(
                key=f"gift:best_plan:{cid}:{current}",
                kind="gift",
                subkind="best_plan",
                customer_id=cid,
                title="Give: a cheaper plan that fits",
                why=why,
                wording=best_gift.get("message") or "",
                urgency="medium" if (value or 0) >= 50 else "low",
                cause=f"best plan · on {current or '(unknown plan)'}",
                value=value,
                currency=currency,
                evidence={"giving_gifts": [g["gift_id"] for g in group]},
            )
        )

    # -- promises at risk -----------------------------------------------------------------
    for r in _rows(tables, "promises_at_risk"):
        if r.get("status") != "at_risk":
            continue
        cid, pid = r["customer_id"], r["promise_id"]
        first = _first_name(names, cid)
        verb = PROMISE_VERB.get(r["kind"], f"keep our {r['kind']} promise")
        left = _num(r.get("time_left_hours"))
        add(
            Item(
                key=f"promise_at_risk:{cid}:{pid}",
                kind="promise_at_risk",
                subkind=r["kind"],
                customer_id=cid,
                title=f"Keep a {r['kind']} promise that is at risk",
                why=f"{r.get('evidence') or ''} ({r.get('at_risk_reason') or 'at risk'})".strip(),
                wording=(
                    f"Hi {first}, we said we would {verb} by {_day(r.get('due_at'))}. I'm "
                    "checking it personally so that we do what we said; I'll let you know "
                    "as soon as it is done."
                ),
                urgency="high",
                cause=f"{r['kind']} promise at risk · team {r.get('team') or '(none)'}",
                at=_as_datetime(r.get("due_at")),
                team=r.get("team"),
                value=_num(r.get("stake")),
                currency=r.get("currency"),
                evidence={"promises": [pid]}
                | ({"hours_left": [f"{left:.1f}"]} if left is not None else {}),
            )
        )

    # -- drifting regulars ------------------------------------------------------------------
    reasons: dict[str, list[dict[str, Any]]] = {}
    for r in _rows(tables, "drift_reasons"):
        reasons.setdefault(r["customer_id"], []).append(r)
    for r in _rows(tables, "drift_customers"):
        if not r.get("regular") or r.get("status") not in ("drifting", "lapsed"):
            continue
        if not r.get("cadence_broken"):
            continue
        cid = r["customer_id"]
        last = r.get("last_purchase")
        rs = sorted(reasons.get(cid, []), key=lambda x: x.get("rank") or 99)
        top = rs[0] if rs else None
        reason = (top or {}).get("reason") or "no_visible_cause"
        first = _first_name(names, cid)
        core = r.get("core_item")
        detail = (top or {}).get("detail")
        if reason == "core_item_unavailable" and detail:
            line = (
                f" The last time, your {str(detail).replace('_', ' ')} was out of stock, and "
                "I'm sorry about that — tell me when you'd like it and I'll keep one aside for you."
            )
        elif reason == "broken_promise":
            line = " I know we let you down on a promise last time, and I'm sorry."
        elif reason == "failed_outcome":
            line = " I know your last order did not go as it should have, and I'm sorry."
        else:
            line = ""
        evidence: dict[str, list[str]] = {"drift_customers": [cid]}
        for x in rs:
            if x.get("evidence_table") and x.get("evidence_ids"):
                evidence.setdefault(x["evidence_table"], []).extend(
                    str(i) for i in x["evidence_ids"]
                )
        value = _num(r.get("value_at_stake"))
        add(
            Item(
                key=f"drifting_regular:{cid}:{_iso_day(last)}",
                kind="drifting_regular",
                subkind=reason,
                customer_id=cid,
                title="Contact a regular who has gone quiet",
                why=f"a regular (usually every {(_num(r.get('usual_gap_days')) or 0):.0f} days) "
                f"silent for {(_num(r.get('silence_days')) or 0):.0f} days since {_day(last)}; "
                f"likely reason: {r.get('likely_reasons') or 'no visible cause'}",
                wording=f"Hi {first}, we haven't seen you since {_day(last)} and I wanted to "
                f"check that all is well.{line} No need to reply unless you'd like to.",
                urgency="high" if r.get("status") == "drifting" else "medium",
                cause=(
                    f"core item unavailable · {top.get('detail')}"
                    if reason == "core_item_unavailable" and top and top.get("detail")
                    else f"{reason.replace('_', ' ')}"
                    + (f" · {top.get('detail')}" if top and top.get("detail") else "")
                ),
                at=_as_datetime(last),
                value=value,
                currency=None,
                evidence=evidence | ({"core_item": [str(core)]} if core else {}),
            )
        )

    # -- unanswered contacts ------------------------------------------------------------------
    neglected = {r["customer_id"] for r in _rows(tables, "drift_neglect")}
    for r in _rows(tables, "experience_journeys"):
        if not (r.get("unanswered_contacts") or 0) > 0:
            continue
        started = _as_datetime(r.get("started_at"))
        if started is not None and started < since:
            continue
        cid, jid = r["customer_id"], r["journey_id"]
        first = _first_name(names, cid)
        age = (as_of - started).days if started else None
        add(
            Item(
                key=f"unanswered:{cid}:{jid}",
                kind="unanswered",
                subkind=r.get("channel") or "(unknown channel)",
                customer_id=cid,
                title="Answer a customer nobody answered",
                why=f"{r['unanswered_contacts']} message(s) in a {r.get('kind')} case started "
                f"{_day(started)} got no reply"
                + ("; a valuable customer showing signs of neglect" if cid in neglected else ""),
                wording=f"Hi {first}, you wrote to us on {_day(started)} and nobody answered you. "
                "I'm sorry — that should not happen. I have read your message and I'm "
                "looking after it myself now.",
                urgency="high" if cid in neglected or (age is not None and age <= 14) else "medium",
                cause=f"unanswered {r.get('channel') or ''} contact · "
                f"team {r.get('team') or '(none)'}",
                at=started,
                team=r.get("team"),
                evidence={"journeys": [jid]},
            )
        )

    # -- survey answers that need a reply --------------------------------------------------------
    personal: dict[str, list[dt.datetime]] = {}
    for r in _rows(tables, "touch_messages"):
        if r.get("touch") in ("personal", "spoken") and r.get("at") is not None:
            personal.setdefault(r["customer_id"], []).append(r["at"])
    for r in _rows(tables, "surveys"):
        inst, score, at = (
            r.get("instrument"),
            _num(r.get("score")),
            _as_datetime(r.get("responded_at")),
        )
        if inst not in LOW_SCORE or score is None or at is None:
            continue
        if score > LOW_SCORE[inst] or at < since or at > as_of:
            continue
        cid = r["customer_id"]
        if any(at < t <= as_of for t in personal.get(cid, [])):
            continue
        first = _first_name(names, cid)
        said = " and told us why" if r.get("comment") else ""
        add(
            Item(
                key=f"survey_reply:{cid}:{r['survey_id']}",
                kind="survey_reply",
                subkind=inst,
                customer_id=cid,
                title="Reply to a customer who told us it went badly",
                why=f"{inst.upper()} {score:g} on {SCALE[inst]} on {_day(at)}{said}; no personal "
                "contact since",
                wording=f"Hi {first}, thank you for telling us how it went on {_day(at)}. "
                "I'm sorry it wasn't what you should have had. I'd like to understand what "
                "happened and put it right — could I call you, or would you rather reply here?",
                urgency="high" if (as_of - at).days <= 14 else "medium",
                cause=f"low {inst} answer · team {r.get('team') or '(none)'}",
                at=at,
                team=r.get("team"),
                evidence={"surveys": [r["survey_id"]]}
                | ({"journeys": [r["journey_id"]]} if r.get("journey_id") else {}),
            )
        )
    return list(items.values())


def reference_refresh(
    self: Worklist, items: Sequence[Item], as_of: dt.datetime, *, who: str = "analyze"
) -> dict[str, int]:
    """Upsert the items an analysis found; expire active items it no longer finds.

    New items open (or are held out); items found again get their evidence, value
    and urgency updated and keep their state; an expired item found again reopens.
    Done and dismissed items are never touched. Returns counts per outcome.
    """
    cfg = self.config()
    now, stamp = db._now(), _iso(as_of)
    counts = {
        "new": 0,
        "updated": 0,
        "unchanged": 0,
        "reopened": 0,
        "expired": 0,
        "held_out": 0,
    }
    with self._write() as con:
        existing = {
            r["dedup_key"]: r
            for r in con.execute(
                "SELECT dedup_key, item_id, state, why, wording, evidence, value, urgency, "
                "team, cause, event_at FROM work_items"
            ).fetchall()
        }
        seen: set[str] = set()
        events: list[tuple[Any, ...]] = []
        for it in items:
            seen.add(it.key)
            fields = (
                it.why,
                it.wording,
                it.evidence_json(),
                it.value,
                it.urgency,
                it.team,
                it.cause,
                _iso(it.at),
            )
            old = existing.get(it.key)
            if old is None:
                iid = item_id_of(it.key)
                held = it.kind in cfg["holdout_kinds"] and in_holdout(
                    it.key, cfg["holdout_share"], cfg["holdout_seed"]
                )
                con.execute(
                    "INSERT INTO work_items (item_id, dedup_key, kind, subkind, customer_id, "
                    "team, title, why, wording, evidence, value, currency, urgency, cause, "
                    "event_at, state, holdout, first_seen_as_of, last_seen_as_of, created_at, "
                    "updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        iid,
                        it.key,
                        it.kind,
                        it.subkind,
                        it.customer_id,
                        it.team,
                        it.title,
                        it.why,
                        it.wording,
                        it.evidence_json(),
                        it.value,
                        it.currency,
                        it.urgency,
                        it.cause,
                        _iso(it.at),
                        "open",
                        int(held),
                        stamp,
                        stamp,
                        now,
                        now,
                    ),
                )
                events.append(
                    (iid, "created", None, "open", who, now, "held out" if held else None)
                )
                counts["new"] += 1
                counts["held_out"] += int(held)
                continue
            iid, state = old["item_id"], old["state"]
            before = (
                old["why"],
                old["wording"],
                old["evidence"],
                old["value"],
                old["urgency"],
                old["team"],
                old["cause"],
                old["event_at"],
            )
            if state in ("done", "dismissed"):
                con.execute(
                    "UPDATE work_items SET last_seen_as_of = ? WHERE item_id = ?", (stamp, iid)
                )
                counts["unchanged"] += 1
                continue
            new_state = "open" if state == "expired" else state
            if state == "expired":
                events.append((iid, "reopened", "expired", "open", who, now, None))
                counts["reopened"] += 1
            elif before != fields:
                events.append((iid, "updated", state, state, who, now, None))
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
            con.execute(
                "UPDATE work_items SET why = ?, wording = ?, evidence = ?, value = ?, "
                "urgency = ?, team = COALESCE(?, team), cause = ?, event_at = ?, state = ?, "
                "last_seen_as_of = ?, updated_at = CASE WHEN ? THEN ? ELSE updated_at END, "
                "version = version + CASE WHEN ? THEN 1 ELSE 0 END WHERE item_id = ?",
                (
                    *fields,
                    new_state,
                    stamp,
                    before != fields or state == "expired",
                    now,
                    before != fields or state == "expired",
                    iid,
                ),
            )
        for key, old in existing.items():
            if key in seen or old["state"] not in ACTIVE:
                continue
            con.execute(
                "UPDATE work_items SET state = 'expired', updated_at = ?, "
                "version = version + 1 WHERE item_id = ?",
                (now, old["item_id"]),
            )
            events.append((old["item_id"], "expired", old["state"], "expired", who, now, None))
            counts["expired"] += 1
        con.executemany(
            "INSERT INTO work_events (item_id, event, from_state, to_state, who, at, note) "
            "VALUES (?,?,?,?,?,?,?)",
            events,
        )
    return counts


# -- worlds -------------------------------------------------------------------------------------

AS_OF = dt.datetime(2025, 6, 30, 23, 59, 59)


@pytest.fixture(scope="module")
def shop_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An analysed shop world (regulars who drift, with their likely reasons)."""
    from sawubona.demo import generate

    root = tmp_path_factory.mktemp("equal-shop")
    generate(root / "world", world="shop", size=1000, seed=5)
    path = root / "shop.duckdb"
    with sawubona.open(path) as s:
        s.ingest(root / "world")
        s.analyze(as_of=AS_OF)
    return path


@pytest.fixture(scope="module")
def worlds(
    demo_store: Path, shop_store: Path
) -> dict[str, tuple[dict[str, pa.Table], dt.datetime]]:
    """The tables the derivation reads (gathered with a long lookback), per demo world."""
    from sawubona.analyze import latest_event

    out = {}
    for name, path in (("telco", demo_store), ("shop", shop_store)):
        with sawubona.open(path, read_only=True) as s:
            as_of = AS_OF if name == "shop" else latest_event(s)
            assert as_of is not None
            out[name] = (work.gather(s, as_of, lookback_days=400.0), as_of)
    return out


def _first_difference(a: Items, b: Items) -> str | None:
    names = ("key", "kind", "subkind", "customer_id", "title", "why", "wording", "urgency")
    names += ("cause", "at", "team", "value", "currency", "evidence")
    if len(a) != len(b):
        return f"{len(a)} items != {len(b)}"
    for name, x, y in zip(names, a.columns(), b.columns(), strict=True):
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            if u != v or type(u) is not type(v):
                return f"item {i} ({a.key[i]}) {name}: {u!r} != {v!r}"
    return None


def _same_items(tables: Mapping[str, pa.Table], as_of: dt.datetime, lookback: float) -> Items:
    """Derive both ways and check they agree, item for item and field for field."""
    old = reference_derive(tables, as_of, lookback_days=lookback)
    new = derive_items(tables, as_of, lookback_days=lookback)
    assert _first_difference(Items.from_items(old), new) is None
    assert derive(tables, as_of, lookback_days=lookback) == old  # the list-of-Item API
    # the gift items made first (as an analysis does on a free thread), then the rest from
    # the owed credits alone (what the refresh then gathers of giving_gifts)
    gifts = derive_gifts(tables, as_of, lookback_days=lookback)
    rest = dict(tables)
    g = tables.get("giving_gifts")
    if g is not None and "kind" in g.column_names:
        rest["giving_gifts"] = g.filter(
            pc.fill_null(pc.equal(g.column("kind"), "owed_credit"), False)
        )
    split = derive_items(rest, as_of, lookback_days=lookback, gifts=gifts)
    assert _first_difference(new, split) is None
    return new


@pytest.mark.parametrize("lookback", [30.0, 180.0, 400.0])
def test_derive_equals_the_reference_on_demo_worlds(
    worlds: dict[str, tuple[dict[str, pa.Table], dt.datetime]], lookback: float
) -> None:
    kinds: set[str] = set()
    for tables, as_of in worlds.values():
        for when in (as_of, as_of - dt.timedelta(days=45)):
            items = _same_items(tables, when, lookback)
            assert len(items) > 50
            kinds.update(items.kind)
    assert {"gift", "make_right", "drifting_regular", "unanswered", "survey_reply"} <= kinds


def test_the_item_comparison_can_fail(
    worlds: dict[str, tuple[dict[str, pa.Table], dt.datetime]],
) -> None:
    tables, as_of = worlds["telco"]
    a = derive_items(tables, as_of)
    b = derive_items(tables, as_of)
    assert _first_difference(a, b) is None
    b.why[7] += " "
    assert "why" in (_first_difference(a, b) or "")
    b = derive_items(tables, as_of)
    b.value[len(b) // 2] = None if b.value[len(b) // 2] is not None else 1.0
    assert "value" in (_first_difference(a, b) or "")


# -- hand-made edge cases -------------------------------------------------------------------

T0 = dt.datetime(2025, 6, 30, 12, 0, 0)


def _ts(days: float) -> dt.datetime:
    return T0 - dt.timedelta(days=days)


def _edge_tables(*, drop: Sequence[str] = ()) -> dict[str, pa.Table]:
    """Every branch of the derivation: nulls, NaN, ±0, odd ids, duplicates, ties, dates."""
    nan = math.nan
    gifts = [
        # kind, customer, plan, current, value, currency, recurring, confidence, message, table, ids
        ("loyalty_penalty", "C1", "p1", "p1", 17.76, "GBP", True, 1.0, "m1", "subscriptions", "s"),
        ("loyalty_penalty", "C1", "p1", "p1", 99.0, "GBP", True, 0.5, "dup", "subscriptions", "s"),
        ("unused_addon", "C2", "a1", "p1", 0.0, "EUR", False, None, None, "usage", "u"),
        ("unused_addon", "C3", "a1", "p1", -0.0, "EUR", None, nan, "m", "usage", None),
        ("unused_addon", "C3", "a2", "p1", -0.0, "USD", None, -0.0, "m", "usage", None),
        ("unused_addon", "C4", None, "p1", None, None, True, 0.123456, "m", "usage", "C4|x"),
        ("unused_addon", "C-é", None, None, nan, "ZAR", True, 0.995, "é", None, None),
        ("loyalty_penalty", 'C"q', "p2", "p2", 1234567.891, "GBP", True, 2, "m", "s", "x"),
        ("loyalty_penalty", "C5", "p2", "p2", 50.0, "GBP", True, 1.0, "", "s", "x"),
        ("owed_credit", "C6", None, None, 12.5, "GBP", False, 1.0, "owed", "promises", "P1"),
        ("owed_credit", "C7", None, None, 80.0, "GBP", False, 1.0, "owed2", "promises", "P9"),
        ("owed_credit", "C8", None, None, 5.0, "GBP", False, 1.0, "owed3", "promises", "Pold"),
        ("owed_credit", "C9", None, None, 7.0, "GBP", False, 1.0, "owed4", "other", "P2"),
        ("best_plan_like_for_like", "C1", "b2", "p1", 90.0, "GBP", True, 1.0, "lfl", "s", "x"),
        ("best_plan_cheaper", "C1", "b1", "p1", 60.0, "GBP", True, 1.0, "cheap", "s", "x"),
        ("best_plan_cheaper", "C1", "b3", "p1", 60.0, "GBP", True, 1.0, "tie", "s", "x"),
        ("best_plan_like_for_like", "C1", "b4", None, 10.0, "EUR", True, 1.0, "none", "s", "x"),
        ("best_plan_cheaper", "C2", None, "p9", None, None, True, 1.0, None, "s", "x"),
        ("best_plan_cheaper", "C-é", "b\\1", "p\u2028", 49.99, "GBP", True, 1.0, "m", "s", "x"),
    ]
    gift_rows = [
        dict(
            zip(
                (
                    "kind",
                    "customer_id",
                    "plan_id",
                    "current_plan_id",
                    "value_per_year",
                    "currency",
                    "recurring",
                    "confidence",
                    "message",
                    "source_table",
                    "source_ids",
                ),
                g,
                strict=True,
            ),
            gift_id=f"g{i}:{g[1]}" if i != 3 else 'g"é\\3',
        )
        for i, g in enumerate(gifts)
    ]
    gift_rows[1]["gift_id"] = gift_rows[0]["gift_id"]
    promise = {
        "promise_id": "P1",
        "customer_id": "C6",
        "journey_id": "J1",
        "kind": "delivery",
        "team": "couriers",
        "due_at": _ts(3),
        "kept_at": None,
        "broken_how": "late",
        "lateness_hours": 5.0,
        "stake": 20.0,
        "currency": "GBP",
        "customer_value": 100.0,
        "evidence": "due 27 June, kept 28 June",
        "suggestion": "say sorry",
    }
    make_right = [
        promise,
        {**promise, "promise_id": "P1", "evidence": "duplicate"},
        {
            **promise,
            "promise_id": "P2",
            "customer_id": "C9",
            "broken_how": "missed",
            "journey_id": None,
            "due_at": _ts(60),
            "stake": nan,
            "evidence": None,
            "team": None,
        },
        {
            **promise,
            "promise_id": "P3",
            "customer_id": "C-é",
            "kind": "teleport",
            "due_at": None,
            "journey_id": "",
        },
        {**promise, "promise_id": "Pold", "customer_id": "C8", "due_at": _ts(400)},
        {**promise, "promise_id": "P4", "customer_id": "C10", "due_at": _ts(30.5), "stake": None},
    ]
    at_risk = [
        {
            "promise_id": "R1",
            "customer_id": "C1",
            "journey_id": "J9",
            "kind": "callback",
            "team": "care",
            "due_at": _ts(-1),
            "status": "at_risk",
            "at_risk_reason": "queue",
            "time_left_hours": 3.25,
            "stake": 0.0,
            "currency": "GBP",
            "evidence": "call due",
        },
        {
            "promise_id": "R2",
            "customer_id": "C2",
            "journey_id": None,
            "kind": "odd",
            "team": None,
            "due_at": None,
            "status": "at_risk",
            "at_risk_reason": None,
            "time_left_hours": None,
            "stake": None,
            "currency": None,
            "evidence": None,
        },
        {
            "promise_id": "R3",
            "customer_id": "C3",
            "journey_id": None,
            "kind": "fix",
            "team": None,
            "due_at": _ts(-2),
            "status": "on_track",
            "at_risk_reason": None,
            "time_left_hours": 9.0,
            "stake": None,
            "currency": None,
            "evidence": None,
        },
    ]
    drift = [
        ("C1", True, "drifting", True, _ts(40), 40.0, 7.5, 120.0, "beans", "core item"),
        ("C2", True, "lapsed", True, _ts(90), 90.4, 10.5, None, None, None),
        ("C3", True, "lapsed", True, _ts(50), nan, None, 3.0, "milk", "promise"),
        ("C4", True, "drifting", True, None, 20.0, 3.0, 1.0, None, "failed"),
        ("C5", False, "drifting", True, _ts(40), 40.0, 7.0, 1.0, None, None),
        ("C6", True, "active", True, _ts(40), 40.0, 7.0, 1.0, None, None),
        ("C7", True, "drifting", False, _ts(40), 40.0, 7.0, 1.0, None, None),
        ("C-é", True, "drifting", True, _ts(33), 33.0, 5.0, 9.0, "thé", None),
    ]
    drift_rows = [
        dict(
            zip(
                (
                    "customer_id",
                    "regular",
                    "status",
                    "cadence_broken",
                    "last_purchase",
                    "silence_days",
                    "usual_gap_days",
                    "value_at_stake",
                    "core_item",
                    "likely_reasons",
                ),
                d,
                strict=True,
            )
        )
        for d in drift
    ]
    reasons = [
        ("C1", 2, "broken_promise", "promises", ["P7"], None),
        ("C1", 1, "core_item_unavailable", "stock", ["s1", "s2"], "beans_1kg"),
        ("C3", None, "broken_promise", "promises", ["P8"], "late twice"),
        ("C3", 5, "failed_outcome", None, ["x"], None),
        ("C4", 1, "failed_outcome", "journeys", [], None),
        ("C-é", 1, "core_item_unavailable", "stock", ["s3"], None),
    ]
    reason_rows = [
        dict(
            zip(
                ("customer_id", "rank", "reason", "evidence_table", "evidence_ids", "detail"),
                r,
                strict=True,
            )
        )
        for r in reasons
    ]
    journeys = [
        ("J1", "C1", "order", "care", "email", _ts(2), 2, 3),
        ("J2", "C2", "fault", None, None, _ts(20), 1, 1),
        ("J3", "C3", "fault", "care", "chat", _ts(300), 1, 1),
        ("J4", "C4", "fault", "care", "chat", None, 1, 1),
        ("J5", "C5", "fault", "care", "chat", _ts(1), 0, 1),
        ("J6", "C-é", "fault", "care", "phone", _ts(14.5), 3, 3),
        ("J6", "C-é", "fault", "care", "phone", _ts(14.5), 4, 3),
    ]
    journey_rows = [
        dict(
            zip(
                ("journey_id", "customer_id", "kind", "team", "channel", "started_at"),
                j[:6],
                strict=True,
            ),
            unanswered_contacts=j[6],
            effort_contacts=j[7],
        )
        for j in journeys
    ]
    surveys = [
        ("S1", "C1", "J1", "nps", _ts(3), 6.0, "slow", "care"),
        ("S2", "C2", None, "nps", _ts(3), 7.0, None, None),
        ("S3", "C3", "J3", "csat", _ts(20), 2.0, "", "care"),
        ("S4", "C4", None, "ces", _ts(10), 3.0, None, "care"),
        ("S5", "C4", None, "ces", _ts(10), 4.0, None, "care"),
        ("S6", "C5", None, "xyz", _ts(3), 0.0, None, None),
        ("S7", "C5", None, "nps", _ts(3), None, None, None),
        ("S8", "C6", None, "nps", _ts(-3), 0.0, None, None),
        ("S9", "C6", None, "nps", _ts(500), 0.0, None, None),
        ("S10", "C7", None, "nps", _ts(10), 2.5, "x", None),
        ("S11", "C8", None, "nps", _ts(10), 1.0, "x", None),
        ("S12", "C9", None, "nps", _ts(10), 1.0, "x", None),
        ("S13", "C-é", None, "csat", _ts(15), 1.0, "x", "é"),
    ]
    survey_rows = [
        dict(
            zip(
                (
                    "survey_id",
                    "customer_id",
                    "journey_id",
                    "instrument",
                    "responded_at",
                    "score",
                    "comment",
                    "team",
                ),
                s,
                strict=True,
            )
        )
        for s in surveys
    ]
    touches = [
        ("C7", _ts(5), "personal"),  # after S10: no reply needed
        ("C8", _ts(11), "spoken"),  # before S11: still needed
        ("C9", T0, "personal"),  # exactly as_of counts as after
        ("C1", _ts(1), "template"),
        ("C2", None, "personal"),
    ]
    tables = {
        "customers": pa.Table.from_pylist(
            [
                {"customer_id": "C1", "name": "Ann  Lee"},
                {"customer_id": "C2", "name": None},
                {"customer_id": "C3", "name": "   "},
                {"customer_id": "C4", "name": "Émile Zola"},
                {"customer_id": "C-é", "name": "Zoë"},
                {"customer_id": "C6", "name": "Sam"},
                {"customer_id": "C6", "name": "Samuel"},
            ]
        ),
        "giving_gifts": pa.Table.from_pylist(gift_rows),
        "promises_make_right": pa.Table.from_pylist(make_right),
        "promises_at_risk": pa.Table.from_pylist(at_risk),
        "drift_customers": pa.Table.from_pylist(drift_rows),
        "drift_reasons": pa.Table.from_pylist(reason_rows),
        "drift_neglect": pa.Table.from_pylist(
            [{"customer_id": "C2", "value_total": 1.0}, {"customer_id": "C-é", "value_total": 2.0}]
        ),
        "experience_journeys": pa.Table.from_pylist(journey_rows),
        "surveys": pa.Table.from_pylist(survey_rows),
        "touch_messages": pa.Table.from_pylist(
            [dict(zip(("customer_id", "at", "touch"), t, strict=True)) for t in touches]
        ),
    }
    for spec in drop:
        name, _, column = spec.partition(".")
        tables[name] = tables[name].drop_columns([column])
    return tables


def _as_dates(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The same tables with last purchases as dates (not timestamps)."""
    t = tables["drift_customers"]
    i = t.column_names.index("last_purchase")
    out = dict(tables)
    out["drift_customers"] = t.set_column(
        i, "last_purchase", pc.cast(t["last_purchase"], pa.date32())
    )
    return out


def _retyped(
    tables: dict[str, pa.Table], name: str, column: str, kind: pa.DataType
) -> dict[str, pa.Table]:
    t = tables[name]
    if column not in t.column_names:
        return tables
    i = t.column_names.index(column)
    values = t[column]
    if pa.types.is_integer(kind):  # whole numbers only: a fraction would not cast
        values = pc.floor(pc.fill_null(pc.cast(values, pa.float64()), 0.0))
        values = pc.if_else(pc.is_nan(values), 0.0, values)
    return {**tables, name: t.set_column(i, column, pc.cast(values, kind))}


@pytest.mark.parametrize(
    "drop",
    [
        (),
        ("giving_gifts.confidence", "giving_gifts.recurring", "giving_gifts.plan_id"),
        ("experience_journeys.team", "surveys.comment", "promises_make_right.journey_id"),
        ("drift_reasons.detail", "drift_customers.core_item", "customers.name"),
    ],
)
@pytest.mark.parametrize("lookback", [31.0, 180.0])
def test_derive_equals_the_reference_on_edge_cases(drop: tuple[str, ...], lookback: float) -> None:
    tables = _edge_tables(drop=drop)
    items = _same_items(tables, T0, lookback)
    assert {"gift", "make_right", "promise_at_risk", "drifting_regular"} <= set(items.kind)
    assert {"unanswered", "survey_reply"} <= set(items.kind)
    assert len(set(items.key)) == len(items)  # duplicates in the tables: one item per key
    _same_items(_as_dates(tables), T0, lookback)
    # unusual column types: gifts row by row (float32), or column-wise on large strings
    _same_items(_retyped(tables, "giving_gifts", "confidence", pa.float32()), T0, lookback)
    wide = _retyped(tables, "giving_gifts", "kind", pa.large_string())
    for name in ("customer_id", "gift_id", "message"):
        wide = _retyped(wide, "giving_gifts", name, pa.large_string())
    _same_items(wide, T0, lookback)
    _same_items(_retyped(tables, "surveys", "score", pa.int64()), T0, lookback)
    g = tables["giving_gifts"]  # one currency: money formatted once per distinct value
    for currency in ("GBP", None):
        one = pa.array([currency] * g.num_rows, pa.string())
        same = g.set_column(g.column_names.index("currency"), "currency", one)
        _same_items({**tables, "giving_gifts": same}, T0, lookback)
    _same_items(_retyped(tables, "drift_customers", "regular", pa.int8()), T0, lookback)
    # without some tables at all
    for gone in ("giving_gifts", "customers", "touch_messages", "drift_reasons"):
        _same_items({k: v for k, v in tables.items() if k != gone}, T0, lookback)
    _same_items({}, T0, lookback)


# -- refreshes ------------------------------------------------------------------------------------


def _records(t: pa.Table) -> list[dict[str, Any]]:
    return t.to_pylist()


def _changed(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """The next analysis: some findings gone, some changed (values, wording, teams)."""
    out = dict(tables)

    def edit(name: str, fn: Any) -> None:
        t = tables.get(name)
        if t is not None:
            rows = [x for x in (fn(i, dict(r)) for i, r in enumerate(_records(t))) if x is not None]
            out[name] = pa.Table.from_pylist(rows, schema=t.schema)

    def gift(i: int, r: dict[str, Any]) -> dict[str, Any] | None:
        if i % 8 == 0:
            return None
        if i % 5 == 1 and r["value_per_year"] is not None:
            r["value_per_year"] *= 1.5
        if i % 11 == 2:
            r["message"] = (r["message"] or "") + " Thank you."
        return r

    def journey(i: int, r: dict[str, Any]) -> dict[str, Any] | None:
        if i % 5 == 0:
            return None
        r["team"] = {0: r["team"], 1: "night shift", 2: None}[i % 3]
        return r

    def drifter(i: int, r: dict[str, Any]) -> dict[str, Any] | None:
        if i % 5 == 0:
            return None
        if i % 2 and r["silence_days"] is not None:
            r["silence_days"] += 7
        return r

    edit("giving_gifts", gift)
    edit("promises_make_right", lambda i, r: None if i % 4 == 0 else r)
    edit("experience_journeys", journey)
    edit("surveys", lambda i, r: None if i % 6 == 0 else r)
    edit("drift_customers", drifter)
    return out


def _more(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """The first analysis's findings and 60 new gifts."""
    out = dict(tables)
    g = tables["giving_gifts"]
    extra = [
        {**r, "gift_id": f"{r['gift_id']}:new", "plan_id": f"{r['plan_id']}_new"}
        for r in _records(g.slice(0, 60))
    ]
    out["giving_gifts"] = pa.concat_tables([g, pa.Table.from_pylist(extra, schema=g.schema)])
    return out


def _people(wl: Worklist) -> None:
    """What people did between two analyses: the same on both worklists."""
    todo = sorted(wl.items(), key=lambda i: i["item_id"])
    for n, it in enumerate(todo[:40]):
        iid = it["item_id"]
        if n % 4 == 0:
            wl.assign(iid, "ana", team="care", who="ana")  # a team the finding does not name
        elif n % 4 == 1:
            wl.assign(iid, "bob", who="bob")
        elif n % 4 == 2:
            wl.done(iid, "called them", who="cy", done_kind="contacted", link="action:A1")
        else:
            wl.dismiss(iid, "not now", who="cy")


def _play(
    path: Path,
    tables: dict[str, pa.Table],
    as_of: dt.datetime,
    clock: list[str],
    *,
    new: bool,
) -> list[dict[str, int]]:
    """Five analyses with people working in between, either implementation."""
    day = dt.timedelta(days=1)
    runs: list[tuple[dict[str, pa.Table], dt.datetime, Any]] = [
        (tables, as_of, None),
        (_changed(tables), as_of + day, _people),
        (_more(tables), as_of + 2 * day, lambda wl: wl.set_holdout(0.3, seed=3)),
        (_more(tables), as_of + 2 * day, _people),
        ({}, as_of + 3 * day, None),  # every finding gone: active items expire
    ]
    counts = []
    with Worklist(path) as wl:
        for n, (t, when, before) in enumerate(runs):
            clock[0] = f"2031-01-0{n + 1}T08:00:00.000000"
            if before is not None:
                before(wl)
            clock[0] = f"2031-01-0{n + 1}T09:00:00.000000"
            if new:
                counts.append(wl.refresh(derive_items(t, when), when))
            else:
                counts.append(reference_refresh(wl, reference_derive(t, when), when))
    return counts


def _dump(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every row of both tables, with the storage type of every value."""
    con = sqlite3.connect(path)
    try:
        out = []
        for table, order in (("work_items", "rowid"), ("work_events", "event_id")):
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            typed = ", ".join(f"typeof({c})" for c in cols)
            out.append(
                con.execute(
                    f"SELECT rowid, {', '.join(cols)}, {typed} FROM {table} ORDER BY {order}"
                ).fetchall()
            )
        return out[0], out[1]
    finally:
        con.close()


def _differences(a: Path, b: Path) -> list[str]:
    out = []
    for name, x, y in zip(("items", "events"), _dump(a), _dump(b), strict=True):
        if len(x) != len(y):
            out.append(f"{len(x)} {name} != {len(y)}")
        out += [f"{name}: {u} != {v}" for u, v in zip(x, y, strict=False) if u != v][:3]
    return out


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    now = ["2031-01-01T00:00:00.000000"]
    monkeypatch.setattr(db, "_now", lambda: now[0])
    return now


@pytest.mark.parametrize("world", ["telco", "shop"])
def test_refreshes_equal_the_reference(
    world: str,
    worlds: dict[str, tuple[dict[str, pa.Table], dt.datetime]],
    clock: list[str],
    tmp_path: Path,
) -> None:
    tables, as_of = worlds[world]
    old = _play(tmp_path / "old.sqlite", tables, as_of, clock, new=False)
    new = _play(tmp_path / "new.sqlite", tables, as_of, clock, new=True)
    assert new == old
    # every outcome happened, so every path was compared
    for outcome in ("new", "updated", "unchanged", "reopened", "expired", "held_out"):
        assert sum(c[outcome] for c in old) > 0, (outcome, old)
    assert _differences(tmp_path / "old.sqlite", tmp_path / "new.sqlite") == []
    with Worklist(tmp_path / "new.sqlite") as wl:
        states = {i["state"] for i in wl.items(state=None, include_holdout=True)}
        events = {e["event"] for e in wl.events()}
    assert states == {"done", "dismissed", "expired"}  # the last analysis found nothing
    assert {"created", "updated", "expired", "reopened", "assigned", "done"} <= events
    # and the comparison sees a difference of one character or one storage type
    con = sqlite3.connect(tmp_path / "new.sqlite")
    con.execute("UPDATE work_items SET why = why || ' ' WHERE rowid = 5")
    con.commit()
    assert len(_differences(tmp_path / "old.sqlite", tmp_path / "new.sqlite")) == 1
    con.execute("UPDATE work_items SET why = substr(why, 1, length(why) - 1) WHERE rowid = 5")
    con.execute("UPDATE work_events SET at = CAST(at AS BLOB) WHERE event_id = 3")
    con.commit()
    con.close()
    assert len(_differences(tmp_path / "old.sqlite", tmp_path / "new.sqlite")) == 1


def test_refresh_of_edge_cases_equals_the_reference(clock: list[str], tmp_path: Path) -> None:
    tables = _edge_tables()
    for new in (False, True):
        with Worklist(tmp_path / f"{new}.sqlite") as wl:
            wl.set_holdout(0.5, seed=1, kinds=("gift", "survey_reply"))
            for n, t in enumerate((tables, _edge_tables(drop=("experience_journeys.team",)), {})):
                clock[0] = f"2031-01-0{n + 1}T09:00:00.000000"
                if new:
                    wl.refresh(derive_items(t, T0), T0, who="x")
                else:
                    reference_refresh(wl, reference_derive(t, T0), T0, who="x")
                if n == 0:
                    wl.assign(item_id_of("unanswered:C1:J1"), "ana", team="care", who="ana")
    assert _differences(tmp_path / "False.sqlite", tmp_path / "True.sqlite") == []


def test_refresh_of_items_with_one_key_twice_is_refused(tmp_path: Path) -> None:
    item = Item(
        key="gift:x:C1:p",
        kind="gift",
        subkind="x",
        customer_id="C1",
        title="t",
        why="w",
        wording="w",
        urgency="low",
        cause="c",
    )
    with Worklist(tmp_path / "w.sqlite") as wl:
        with pytest.raises(sqlite3.IntegrityError):
            wl.refresh([item, item], AS_OF)
        assert wl.count(state=None) == 0
        assert wl.refresh([item], AS_OF)["new"] == 1  # the failed load left nothing behind
