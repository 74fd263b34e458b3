"""From lens results to work items: one item per thing a person should do for one customer.

Pure: a mapping of tables (lens results and a few canonical tables, as Arrow) and
``as_of`` in, a list of :class:`Item` out. Nothing here reads the store or
writes anything; :mod:`sawubona.work.db` keeps the items and their lifecycle.

Every item carries a **deduplication key** = kind + customer + the stable key of
its evidence (the promise, the journey, the survey, the plan, the last purchase
before a break), so running ``analyze`` again finds the same item and updates
it instead of adding a second one.

Kinds (see ``docs/closing-the-loop.md``):

* ``gift`` — from ``giving_gifts``: best plan (one item per customer and current
  plan, the cheapest plan's message; a like-for-like alternative is named in
  *why*), unused add-on, loyalty penalty, owed credit (folded into the
  ``make_right`` item when it is owed for a broken promise without make-good);
* ``make_right`` — from ``promises_make_right``: a broken promise with no
  apology, credit or follow-up;
* ``promise_at_risk`` — from ``promises_at_risk`` (status ``at_risk``);
* ``drifting_regular`` — from ``drift_customers`` (a regular whose cadence broke,
  drifting or lapsed) with the likely reason from ``drift_reasons``;
* ``unanswered`` — from ``experience_journeys``: a journey with inbound contacts
  nobody answered (more urgent when ``drift_neglect`` lists the customer);
* ``survey_reply`` — from ``surveys`` and ``touch_messages``: a low score (NPS
  0–6, CSAT 1–2, CES 1–3) with no personal contact after it.

Event-based items (broken promises, unanswered contacts, survey answers) are
made for events within ``lookback_days`` of ``as_of``; gifts and drift describe
the customer's state now and have no age limit. Wording is plain and personal,
and never proposes an upsell: every item is a gift, a kept promise or a human
conversation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

#: Tables the derivation reads (name → columns); absent tables give no items of their kind.
NEEDS: dict[str, tuple[str, ...]] = {
    "giving_gifts": (
        "gift_id",
        "customer_id",
        "kind",
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
    "promises_make_right": (
        "promise_id",
        "customer_id",
        "journey_id",
        "kind",
        "team",
        "due_at",
        "kept_at",
        "broken_how",
        "lateness_hours",
        "stake",
        "currency",
        "customer_value",
        "evidence",
        "suggestion",
    ),
    "promises_at_risk": (
        "promise_id",
        "customer_id",
        "journey_id",
        "kind",
        "team",
        "due_at",
        "status",
        "at_risk_reason",
        "time_left_hours",
        "stake",
        "currency",
        "evidence",
    ),
    "drift_customers": (
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
    "drift_reasons": ("customer_id", "rank", "reason", "evidence_table", "evidence_ids", "detail"),
    "drift_neglect": ("customer_id", "value_total"),
    "experience_journeys": (
        "journey_id",
        "customer_id",
        "kind",
        "team",
        "channel",
        "started_at",
        "unanswered_contacts",
        "effort_contacts",
    ),
    "surveys": (
        "survey_id",
        "customer_id",
        "journey_id",
        "instrument",
        "responded_at",
        "score",
        "comment",
        "team",
    ),
    "touch_messages": ("customer_id", "at", "touch"),
    "customers": ("customer_id", "name"),
}

KINDS = ("gift", "make_right", "promise_at_risk", "drifting_regular", "unanswered", "survey_reply")
URGENCIES = ("high", "medium", "low")

#: Scores that ask for a reply, per instrument: answer <= this.
LOW_SCORE = {"nps": 6.0, "csat": 2.0, "ces": 3.0}
SCALE = {"nps": "0–10", "csat": "1–5", "ces": "1–7"}


@dataclass
class Item:
    """One piece of human work for one customer."""

    key: str
    kind: str
    subkind: str
    customer_id: str
    title: str
    why: str
    wording: str
    urgency: str
    cause: str
    at: dt.datetime | None = None
    team: str | None = None
    value: float | None = None
    currency: str | None = None
    evidence: dict[str, list[str]] = field(default_factory=dict)

    def evidence_json(self) -> str:
        return json.dumps(self.evidence, sort_keys=True)


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


def derive(
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
