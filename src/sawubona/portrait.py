"""The portrait: one concrete customer, on one page, before a conversation.

``store.portrait(customer_id)`` gathers who they are, their story, what matters
to them, how their experiences went, the promises made to them, what could be
given to them, whether they are drifting and why, what they said and did, and
**what not to do now**. Every statement carries ``refs``: the table and key of
the rows it comes from, so each surface can link to them.

It reads canonical tables and whatever lens results exist (a lens that has not
run simply leaves its section empty, saying so). It never writes.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sawubona.errors import UnknownCustomerError

if TYPE_CHECKING:
    from sawubona.portrait_snapshot import Snapshot
    from sawubona.store import Store

STORY_LIMIT = 60
#: Canonical tables a portrait reads, every row of the customer.
CANONICAL_TABLES = (
    "customers",
    "journeys",
    "touchpoints",
    "promises",
    "surveys",
    "actions",
    "subscriptions",
)
#: Lens result tables a portrait reads when they exist (one row or several per customer).
LENS_TABLES = {
    "experience": "experience_customers",
    "drift": "drift_customers",
    "touch": "touch_customers",
    "giving": "giving_gifts",
    "promises": "promises_status",
}
#: Every ``(table, column)`` a portrait looks rows up by: index these (:func:`prepare`).
LOOKUPS = (
    *((t, "customer_id") for t in CANONICAL_TABLES),
    *((t, "customer_id") for t in LENS_TABLES.values()),
    ("journey_items", "journey_id"),
)


@dataclass
class Statement:
    """A sentence about the customer and the rows behind it."""

    text: str
    refs: list[dict[str, Any]] = field(default_factory=list)
    tone: str = "info"  # info | good | attention | warning

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "refs": self.refs, "tone": self.tone}


@dataclass
class Portrait:
    customer_id: str
    as_of: dt.datetime | None
    who: dict[str, Any]
    story: list[dict[str, Any]]
    sections: dict[str, list[Statement]]
    do_not: list[Statement]
    lenses: dict[str, list[dict[str, Any]]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "who": self.who,
            "story": self.story,
            "sections": {k: [s.to_dict() for s in v] for k, v in self.sections.items()},
            "do_not": [s.to_dict() for s in self.do_not],
            "lenses": self.lenses,
        }

    def _repr_html_(self) -> str:
        """A compact, escaped HTML view for notebooks."""
        e = html.escape
        parts = [f"<div><h3>Customer {e(self.customer_id)}</h3><ul>"]
        for key, value in self.who.items():
            if value not in (None, ""):
                parts.append(f"<li><b>{e(str(key))}</b>: {e(str(value))}</li>")
        parts.append("</ul>")
        for name, statements in self.sections.items():
            if statements:
                parts.append(f"<h4>{e(name)}</h4><ul>")
                parts += [f"<li>{e(s.text)}</li>" for s in statements]
                parts.append("</ul>")
        if self.do_not:
            parts.append("<h4>What not to do now</h4><ul>")
            parts += [f"<li>{e(s.text)}</li>" for s in self.do_not]
            parts.append("</ul>")
        parts.append("</div>")
        return "".join(parts)


@dataclass(frozen=True)
class Context:
    """What every portrait of one version of the store shares: compute once, reuse.

    A surface that knows the store does not change under it (the web app, which
    reopens the file when a writer swaps in a new version) keeps one per version;
    :func:`build` without one computes it each time."""

    present: frozenset[str]
    as_of: dt.datetime | None
    #: the store's memory-mapped snapshot of the looked-up rows, when one is up to date
    #: (:mod:`sawubona.portrait_snapshot`); without it the rows come from the store
    snapshot: Snapshot | None = field(default=None, compare=False)


def context(store: Store, *, snapshot: bool = True) -> Context:
    """The tables present and the ``as_of`` of the latest analysis (or the latest event).

    A table a portrait looks rows up in counts as present only when it has rows: the
    lookup would find none (journey_items, in a world without items). With
    ``snapshot``, the store's snapshot when it matches the store (opening one costs a
    query and mapping its files: worth it for a context kept across portraits)."""
    from sawubona import portrait_snapshot

    tables = store.tables()
    looked_up = {t for t, _ in LOOKUPS}
    present = frozenset(t for t in tables if t not in looked_up or store.count(t) > 0)
    snap = portrait_snapshot.open(store) if snapshot else None
    return Context(present, _as_of(store, frozenset(tables)), snap)


def prepare(store: Store) -> dict[str, float]:
    """Index the columns portraits look rows up by, and write their snapshot; seconds
    per index and per snapshot table (DuckDB only).

    Call after a write session that changed canonical or result tables (an ingest, an
    analysis, a ``forget``): ``IF NOT EXISTS``, so an index already there costs nothing,
    and the snapshot (:mod:`sawubona.portrait_snapshot`) is rewritten only when the
    store's fingerprint changed. Without the indexes a portrait reads every row group
    of each table, which on a million customers takes most of a second; without the
    snapshot it makes a dozen DuckDB queries. Other backends: nothing to do, ``{}``."""
    from sawubona import portrait_snapshot

    index = getattr(getattr(store, "_backend", None), "index_lookups", None)
    if index is None or store.read_only:
        return {}
    took: dict[str, float] = index(LOOKUPS)
    took.update({f"snapshot.{t}": s for t, s in portrait_snapshot.build(store).items()})
    return took


def _rows(
    store: Store,
    present: frozenset[str],
    table: str,
    column: str,
    value: str,
    snapshot: Snapshot | None = None,
) -> list[dict[str, Any]]:
    """The rows of ``table`` whose ``column`` is ``value`` (none when the table is absent).

    A bound-parameter lookup through the store, not an Ibis expression: compiling one
    costs more than the lookup itself, and a portrait makes a dozen of them. On DuckDB
    the backend's ``lookup`` fetches them as tuples on the thread's own cursor (the same
    values as Arrow's ``to_pylist``, at half the cost for a handful of rows)."""
    if table not in present:
        return []
    if snapshot is not None and snapshot.has(table, column):
        return snapshot.lookup(table, {column: value})
    lookup = getattr(getattr(store, "_backend", None), "lookup", None)
    if lookup is not None:
        found: list[dict[str, Any]] = lookup(table, {column: value})
        return found
    rows: list[dict[str, Any]] = store.arrow(table, where={column: value}).to_pylist()
    return rows


def _fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, dt.datetime) else str(value)


def _as_of(store: Store, present: frozenset[str]) -> dt.datetime | None:
    if "lens_runs" in present:
        runs = [v for v in store.arrow("lens_runs", ["as_of"]).column(0).to_pylist() if v]
        if runs:
            latest: dt.datetime = max(runs)
            return latest
    from sawubona.analyze import latest_event

    return latest_event(store)


def build(store: Store, customer_id: str, ctx: Context | None = None) -> Portrait:
    """The portrait of ``customer_id``; :class:`UnknownCustomerError` if there is none.

    ``ctx``: the store version's :class:`Context`, when the caller keeps one."""
    ctx = ctx or context(store, snapshot=False)
    present = ctx.present
    snap = ctx.snapshot

    def rows(table: str) -> list[dict[str, Any]]:
        return _rows(store, present, table, "customer_id", customer_id, snap)

    customer = rows("customers")
    if not customer:
        raise UnknownCustomerError(f"no customer has the id {customer_id!r}")
    c = customer[0]
    as_of = ctx.as_of
    journeys = rows("journeys")
    touches = rows("touchpoints")
    promises = rows("promises")
    surveys = rows("surveys")
    actions = rows("actions")
    subs = rows("subscriptions")

    tenure = (as_of - c["joined_at"]).days if as_of and c.get("joined_at") else None
    value = sum(j["value"] or 0 for j in journeys)
    currencies = {j["currency"] for j in journeys if j.get("currency")}
    who = {
        "name": c.get("name"),
        "email": c.get("email"),
        "segment": c.get("segment"),
        "joined_at": _fmt_time(c["joined_at"]) if c.get("joined_at") else None,
        "tenure_days": tenure,
        "journeys": len(journeys),
        "value": round(value, 2),
        "currency": ", ".join(sorted(currencies)) or None,
        "plans": [s["plan_id"] for s in subs if not s.get("ended_at")],
    }
    sections: dict[str, list[Statement]] = {
        "what matters": _matters(store, present, journeys, touches, snap),
        "experiences": _experiences(journeys),
        "promises": _promises(promises, as_of),
        "what they said": _said(surveys),
        "money": _money(actions),
    }
    lenses: dict[str, list[dict[str, Any]]] = {}
    for lens, table in LENS_TABLES.items():
        found = rows(table)
        if found:
            lenses[lens] = found
    sections["what we could give"] = [
        Statement(
            str(g.get("message") or g.get("kind")),
            [{"table": "giving_gifts", "customer_id": customer_id, "kind": g.get("kind")}],
            "good",
        )
        for g in lenses.get("giving", [])
    ]
    sections["drift"] = [
        Statement(
            f"Status {d.get('status')}; probability still active "
            f"{_pct(d.get('p_alive'))}; likely reasons: {d.get('likely_reasons') or 'none seen'}",
            [{"table": "drift_customers", "customer_id": customer_id}],
            "warning" if d.get("status") in ("drifting", "lapsed") else "info",
        )
        for d in lenses.get("drift", [])
    ]
    story = _story(journeys, touches, promises, surveys, actions)
    do_not = _do_not(touches, promises, as_of, sections)
    return Portrait(customer_id, as_of, who, story, sections, do_not, lenses)


def _pct(x: Any) -> str:
    return f"{100 * x:.0f}%" if isinstance(x, int | float) else "unknown"


def _matters(
    store: Store,
    present: frozenset[str],
    journeys: list[dict[str, Any]],
    touches: list[dict[str, Any]],
    snapshot: Snapshot | None = None,
) -> list[Statement]:
    out = []
    if journeys and "journey_items" in present:
        ids = [j["journey_id"] for j in journeys]
        items = _items(store, ids, snapshot)
        per_journey = Counter({(i["journey_id"], i["item_id"]) for i in items})
        counts = Counter(item for (_, item) in per_journey)
        if counts:
            item, n = counts.most_common(1)[0]
            share = n / len(journeys)
            if n >= 2:
                out.append(
                    Statement(
                        f"Their core item is {item}: in {n} of {len(journeys)} journeys "
                        f"({share:.0%}).",
                        [{"table": "journey_items", "item_id": item, "journey_id": ids[0]}],
                    )
                )
    inbound = Counter(t["channel"] for t in touches if t["direction"] == "inbound")
    if inbound:
        channel, n = inbound.most_common(1)[0]
        out.append(
            Statement(
                f"They reach out by {channel} ({n} of {sum(inbound.values())} contacts).",
                [
                    {
                        "table": "touchpoints",
                        "customer_id": touches[0]["customer_id"],
                        "channel": channel,
                        "direction": "inbound",
                    }
                ],
            )
        )
    return out


def _items(
    store: Store, journey_ids: list[str], snapshot: Snapshot | None = None
) -> list[dict[str, Any]]:
    """The journey_items rows of these journeys, journey by journey: one lookup on DuckDB
    (or in the snapshot)."""
    lookup = getattr(getattr(store, "_backend", None), "lookup", None)
    if snapshot is not None and snapshot.has("journey_items", "journey_id"):
        lookup = snapshot.lookup
    if lookup is None:
        return [
            row
            for jid in journey_ids
            for row in store.arrow("journey_items", where={"journey_id": jid}).to_pylist()
        ]
    rows: list[dict[str, Any]] = lookup("journey_items", {"journey_id": sorted(set(journey_ids))})
    order = {jid: i for i, jid in reversed(list(enumerate(journey_ids)))}
    return sorted(rows, key=lambda r: order[r["journey_id"]])


def _experiences(journeys: list[dict[str, Any]]) -> list[Statement]:
    out = []
    failed = [j for j in journeys if j.get("outcome") == "failed"]
    achieved = [j for j in journeys if j.get("outcome") == "achieved"]
    if journeys:
        out.append(
            Statement(
                f"{len(achieved)} of {len(journeys)} journeys reached what they came for; "
                f"{len(failed)} failed.",
                [{"table": "journeys", "customer_id": journeys[0]["customer_id"]}],
                "attention" if failed else "good",
            )
        )
    for j in sorted(failed, key=lambda r: r["started_at"], reverse=True)[:3]:
        out.append(
            Statement(
                f"{j['kind']} {j['journey_id']} on {_fmt_time(j['started_at'])} failed"
                + (f": {j['outcome_reason']}" if j.get("outcome_reason") else "")
                + ".",
                [{"table": "journeys", "journey_id": j["journey_id"]}],
                "attention",
            )
        )
    return out


def promise_state(p: dict[str, Any], as_of: dt.datetime | None) -> str:
    """kept / broken / cancelled / open, frozen at the first terminal event."""
    if (
        p.get("cancelled_at")
        and (as_of is None or p["cancelled_at"] <= as_of)
        and not (p.get("kept_at") and p["kept_at"] <= p["cancelled_at"])
    ):
        return "cancelled"
    kept = p.get("kept_at")
    if kept and (as_of is None or kept <= as_of):
        return "kept" if kept <= p["due_at"] else "broken"
    if as_of is not None and p["due_at"] < as_of:
        return "broken"
    return "open"


def _promises(promises: list[dict[str, Any]], as_of: dt.datetime | None) -> list[Statement]:
    out = []
    for p in sorted(promises, key=lambda r: r["made_at"], reverse=True):
        state = promise_state(p, as_of)
        if state in ("broken", "open"):
            out.append(
                Statement(
                    f"A {p['kind']} promise made {_fmt_time(p['made_at'])}, due "
                    f"{_fmt_time(p['due_at'])}, is {state}.",
                    [{"table": "promises", "promise_id": p["promise_id"]}],
                    "warning" if state == "broken" else "attention",
                )
            )
    kept = sum(promise_state(p, as_of) == "kept" for p in promises)
    if promises:
        out.append(
            Statement(
                f"{kept} of {len(promises)} promises to them were kept on time.",
                [{"table": "promises", "customer_id": promises[0]["customer_id"]}],
            )
        )
    return out


def _said(surveys: list[dict[str, Any]]) -> list[Statement]:
    answered = [s for s in surveys if s.get("score") is not None]
    out = []
    for s in sorted(
        answered,
        key=lambda r: r.get("responded_at") or r.get("invited_at") or dt.datetime.min,
        reverse=True,
    )[:5]:
        text = f"{s['instrument'].upper()} {s['score']:g}"
        if s.get("comment"):
            text += f": “{s['comment']}”"
        out.append(Statement(text, [{"table": "surveys", "survey_id": s["survey_id"]}]))
    if surveys and not answered:
        out.append(
            Statement(
                f"Asked {len(surveys)} times; never answered.",
                [{"table": "surveys", "customer_id": surveys[0]["customer_id"]}],
            )
        )
    return out


GIVING = {"refund", "credit", "compensation", "downgrade_advice", "proactive_help", "gift"}
TAKING = {"upsell", "cross_sell", "price_rise", "fee", "penalty"}


def _money(actions: list[dict[str, Any]]) -> list[Statement]:
    if not actions:
        return []
    given = [a for a in actions if a["kind"] in GIVING]
    taken = [a for a in actions if a["kind"] in TAKING]
    return [
        Statement(
            f"We gave {len(given)} times ({sum(a['amount'] or 0 for a in given):,.2f}) and asked "
            f"{len(taken)} times ({sum(a['amount'] or 0 for a in taken):,.2f}).",
            [{"table": "actions", "customer_id": actions[0]["customer_id"]}],
            "attention" if len(taken) > len(given) else "info",
        )
    ]


def _story(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    journeys, touches, promises, surveys, actions = groups
    events: list[dict[str, Any]] = []
    for j in journeys:
        events.append(
            {
                "at": j["started_at"],
                "what": "journey",
                "summary": f"{j['kind']} {j['journey_id']}: {j.get('outcome') or 'unknown'}",
                "ref": {"table": "journeys", "journey_id": j["journey_id"]},
            }
        )
    for t in touches:
        who = t.get("agent_id") or t.get("actor") or ""
        events.append(
            {
                "at": t["at"],
                "what": "contact",
                "summary": f"{t['direction']} {t['channel']} {t.get('kind') or ''} {who}".strip(),
                "text": t.get("text"),
                "ref": {"table": "touchpoints", "touchpoint_id": t["touchpoint_id"]},
            }
        )
    for p in promises:
        events.append(
            {
                "at": p["made_at"],
                "what": "promise",
                "summary": f"{p['kind']} promised by {_fmt_time(p['due_at'])}",
                "ref": {"table": "promises", "promise_id": p["promise_id"]},
            }
        )
    for s in surveys:
        at = s.get("responded_at") or s.get("invited_at")
        if at:
            score = "" if s.get("score") is None else f" {s['score']:g}"
            events.append(
                {
                    "at": at,
                    "what": "survey",
                    "summary": f"{s['instrument']}{score}",
                    "text": s.get("comment"),
                    "ref": {"table": "surveys", "survey_id": s["survey_id"]},
                }
            )
    for a in actions:
        amount = "" if a.get("amount") is None else f" {a['amount']:,.2f}"
        events.append(
            {
                "at": a["at"],
                "what": "action",
                "summary": f"{a['kind']}{amount}",
                "ref": {"table": "actions", "action_id": a["action_id"]},
            }
        )
    events.sort(key=lambda e: e["at"], reverse=True)
    for e in events:
        e["at"] = _fmt_time(e["at"])
    return events[:STORY_LIMIT]


def _do_not(
    touches: list[dict[str, Any]],
    promises: list[dict[str, Any]],
    as_of: dt.datetime | None,
    sections: dict[str, list[Statement]],
) -> list[Statement]:
    """Rules for the next contact, each with the rows that trigger it."""
    out = []
    inbound = sorted((t for t in touches if t["direction"] == "inbound"), key=lambda t: t["at"])
    if inbound:
        last_in = inbound[-1]
        replied = any(
            t["direction"] == "outbound"
            and t["at"] > last_in["at"]
            and t.get("actor") in ("person", None)
            and t.get("kind") != "marketing"
            for t in touches
        )
        if not replied:
            out.append(
                Statement(
                    "No marketing and no survey: their last message "
                    f"({_fmt_time(last_in['at'])}) has not been answered by a person yet. "
                    "Answer it first.",
                    [{"table": "touchpoints", "touchpoint_id": last_in["touchpoint_id"]}],
                    "warning",
                )
            )
    broken = [p for p in promises if promise_state(p, as_of) == "broken"]
    if broken:
        out.append(
            Statement(
                f"No survey and no offer while {len(broken)} promise(s) to them stand broken; "
                "make it right first.",
                [{"table": "promises", "promise_id": p["promise_id"]} for p in broken[:5]],
                "warning",
            )
        )
    out.append(
        Statement(
            "Never an upsell: offer only what serves them (see 'what we could give').", [], "info"
        )
    )
    return out
