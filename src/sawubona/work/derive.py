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
import functools
import json
import json.encoder
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

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


_DAYS: dict[tuple[int, int, int], str] = {}


def _day(v: Any) -> str:
    if isinstance(v, dt.datetime | dt.date):
        day = (v.year, v.month, v.day)
        text = _DAYS.get(day)
        if text is None:
            text = _DAYS[day] = f"{v.day} {v:%B %Y}"
        return text
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


class Items:
    """Work items column by column: one list per field of :class:`Item`, evidence as JSON.

    What :func:`derive_items` returns and :meth:`sawubona.work.db.Worklist.refresh`
    takes. On a large world (three quarters of a million items) making an
    :class:`Item` and an evidence dict per item cost more than writing them.
    """

    def __init__(self) -> None:
        self.key: list[str] = []
        self.kind: list[str] = []
        self.subkind: list[str] = []
        self.customer_id: list[str] = []
        self.title: list[str] = []
        self.why: list[str] = []
        self.wording: list[str] = []
        self.urgency: list[str] = []
        self.cause: list[str] = []
        self.at: list[dt.datetime | None] = []
        self.team: list[str | None] = []
        self.value: list[float | None] = []
        self.currency: list[str | None] = []
        self.evidence: list[str] = []  # JSON, as Item.evidence_json()

    def __len__(self) -> int:
        return len(self.key)

    def append(
        self,
        *,
        key: str,
        kind: str,
        subkind: str,
        customer_id: str,
        title: str,
        why: str,
        wording: str,
        urgency: str,
        cause: str,
        evidence: str,
        at: dt.datetime | None = None,
        team: str | None = None,
        value: float | None = None,
        currency: str | None = None,
    ) -> None:
        self.key.append(key)
        self.kind.append(kind)
        self.subkind.append(subkind)
        self.customer_id.append(customer_id)
        self.title.append(title)
        self.why.append(why)
        self.wording.append(wording)
        self.urgency.append(urgency)
        self.cause.append(cause)
        self.at.append(at)
        self.team.append(team)
        self.value.append(value)
        self.currency.append(currency)
        self.evidence.append(evidence)

    def extend(self, other: Items) -> None:
        for mine, theirs in zip(self.columns(), other.columns(), strict=True):
            mine.extend(theirs)

    def append_from(self, other: Items, i: int) -> None:
        """Append item ``i`` of ``other``."""
        for mine, theirs in zip(self.columns(), other.columns(), strict=True):
            mine.append(theirs[i])

    @classmethod
    def from_items(cls, items: Iterable[Item]) -> Items:
        out = cls()
        for it in items:
            out.append(
                key=it.key,
                kind=it.kind,
                subkind=it.subkind,
                customer_id=it.customer_id,
                title=it.title,
                why=it.why,
                wording=it.wording,
                urgency=it.urgency,
                cause=it.cause,
                evidence=it.evidence_json(),
                at=it.at,
                team=it.team,
                value=it.value,
                currency=it.currency,
            )
        return out

    def to_items(self) -> list[Item]:
        """The same items as :class:`Item` objects (evidence parsed back from its JSON)."""
        return [
            Item(
                key=k,
                kind=kind,
                subkind=sub,
                customer_id=cid,
                title=title,
                why=why,
                wording=wording,
                urgency=urgency,
                cause=cause,
                at=at,
                team=team,
                value=value,
                currency=currency,
                evidence=json.loads(ev),
            )
            for (
                k,
                kind,
                sub,
                cid,
                title,
                why,
                wording,
                urgency,
                cause,
                at,
                team,
                value,
                currency,
                ev,
            ) in zip(*self.columns(), strict=True)
        ]

    def columns(self) -> tuple[list[Any], ...]:
        return (
            self.key,
            self.kind,
            self.subkind,
            self.customer_id,
            self.title,
            self.why,
            self.wording,
            self.urgency,
            self.cause,
            self.at,
            self.team,
            self.value,
            self.currency,
            self.evidence,
        )

    def first_of_each_key(self) -> Items:
        """The first item of each key, in order (a later item with the same key is dropped)."""
        if len(set(self.key)) == len(self.key):
            return self
        first: dict[str, int] = {}
        for i, k in enumerate(self.key):
            first.setdefault(k, i)
        if len(first) == len(self.key):
            return self
        keep = list(first.values())
        out = Items()
        for mine, theirs in zip(out.columns(), self.columns(), strict=True):
            mine.extend(theirs[i] for i in keep)
        return out


def _col(t: pa.Table | None, name: str, *, required: bool = False) -> list[Any]:
    """A column as a list; a missing optional column is all None (as ``row.get``)."""
    if t is None:
        return []
    if name not in t.column_names and not (required and t.num_rows):
        return [None] * t.num_rows
    return t.column(name).to_pylist()


def _evidence(d: Mapping[str, list[Any]]) -> str:
    """``json.dumps(d, sort_keys=True)``; by hand (C escaping only) when all is text."""
    for k, vs in d.items():
        if type(k) is not str:
            return json.dumps(d, sort_keys=True)
        for v in vs:
            if type(v) is not str:
                return json.dumps(d, sort_keys=True)
    return "{" + ", ".join(f"{_js(k)}: [{', '.join(map(_js, d[k]))}]" for k in sorted(d)) + "}"


_js = json.encoder.encode_basestring_ascii  # what json.dumps makes of a str (ensure_ascii)


def derive(
    tables: Mapping[str, pa.Table],
    as_of: dt.datetime,
    *,
    lookback_days: float = 180.0,
) -> list[Item]:
    """Every work item the lens results call for, as of ``as_of`` (deduplicated by key)."""
    return derive_items(tables, as_of, lookback_days=lookback_days).to_items()


# -- column-wise helpers --------------------------------------------------------------------------
#
# Arrow only ever drops rows the row-by-row code would skip anyway (too old, not a low
# score, not a regular); the row-by-row code then sees the rows it always saw, so what it
# makes of them does not change. The one exception is the common gift, made column by
# column in :func:`_gift_columns` — the equality with the row-by-row :func:`_gift_item`
# is what tests/test_work_equal.py checks.

_TEXT = (pa.string(), pa.large_string())
#: Printable ASCII but ``"`` and ``\``: what ``json.dumps`` writes as itself, in quotes.
_PLAIN_JSON = r"^[ !#-\[\]-~]*$"


def _typed(t: pa.Table, name: str, types: tuple[pa.DataType, ...]) -> pa.ChunkedArray | None:
    """A column of one of ``types`` (all null when missing, as ``row.get``); None otherwise."""
    if name not in t.column_names:
        return pa.chunked_array([pa.nulls(t.num_rows, types[0])], types[0])
    column = t.column(name)
    return column if column.type in types else None


def _where(t: pa.Table, mask: pa.ChunkedArray | pa.Array) -> pa.Table:
    """The rows of ``t`` where ``mask`` is true (a mask in one piece: filtering by a mask
    chunked unlike the table is several times slower)."""
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    return t.filter(mask)


def _truthy(a: pa.ChunkedArray) -> pa.ChunkedArray:
    """Python's truth of each value of a text or boolean column (None, '' and False are false)."""
    if a.type in _TEXT:
        return pc.fill_null(pc.not_equal(a, ""), False)
    return pc.fill_null(a, False)


def _both(a: pa.ChunkedArray | None, b: pa.ChunkedArray | None) -> pa.ChunkedArray | None:
    if a is None or b is None:
        return a if b is None else b
    return pc.and_(a, b)


def _not_before(t: pa.Table, name: str, since: dt.datetime) -> pa.ChunkedArray | None:
    """Rows whose time is missing or not before ``since`` (None when the column is not a
    naive timestamp: then no row is dropped)."""
    if name not in t.column_names or since.tzinfo is not None:
        return None
    column = t.column(name)
    kind = column.type
    if not pa.types.is_timestamp(kind) or kind.tz is not None or kind.unit == "ns":
        return None
    us = pa.timestamp("us")
    return pc.fill_null(pc.greater_equal(column.cast(us), pa.scalar(since, us)), True)


def _among(column: pa.ChunkedArray, values: Iterable[Any]) -> pa.ChunkedArray | None:
    """``value in values`` for each row of a text column (None if ``values`` is not all text)."""
    values = set(values)
    texts = [v for v in values if type(v) is str]
    if column.type not in _TEXT or len(texts) + (None in values) != len(values):
        return None
    found = pc.is_in(column, value_set=pa.array(texts, column.type), skip_nulls=True)
    return pc.fill_null(found, None in values)


def _rows_where(
    tables: Mapping[str, pa.Table], name: str, mask: Any = None
) -> list[dict[str, Any]]:
    """``_rows``, less the rows ``mask(table)`` (a boolean column, or None) drops."""
    t = tables.get(name)
    if t is None:
        return []
    keep = None if mask is None or not t.num_rows else mask(t)
    return (t if keep is None else _where(t, keep)).to_pylist()


def _drift_mask(t: pa.Table) -> pa.ChunkedArray | None:
    """Regulars whose cadence broke, drifting or lapsed."""
    if not {"regular", "status", "cadence_broken"} <= set(t.column_names):
        return None
    regular, broken, status = t["regular"], t["cadence_broken"], t["status"]
    if not (regular.type == broken.type == pa.bool_() and status.type in _TEXT):
        return None
    wanted = pc.is_in(status, value_set=pa.array(["drifting", "lapsed"], status.type))
    return pc.and_(pc.and_(_truthy(regular), _truthy(broken)), wanted)


def _low_score_mask(since: dt.datetime) -> Any:
    def mask(t: pa.Table) -> pa.ChunkedArray | None:
        """Low answers (NPS 0–6, CSAT 1–2, CES 1–3) not before ``since``."""
        low = None
        if {"instrument", "score"} <= set(t.column_names):
            inst, score = t["instrument"], t["score"]
            if inst.type in _TEXT and (
                pa.types.is_floating(score.type) or pa.types.is_integer(score.type)
            ):
                low = functools.reduce(
                    pc.or_kleene,
                    [
                        pc.and_kleene(pc.equal(inst, i), pc.less_equal(score, cap))
                        for i, cap in LOW_SCORE.items()
                    ],
                )
                low = pc.fill_null(low, False)
        return _both(low, _not_before(t, "responded_at", since))

    return mask


class _Money:
    """``_money``, once per distinct (value, currency)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[float, str | None], str] = {}

    def __call__(self, v: float | None, currency: str | None) -> str:
        if v is None or v == 0:  # 0.0 and -0.0 are one dict key but print differently
            return _money(v, currency)
        text = self.seen.get((v, currency))
        if text is None:
            text = self.seen[(v, currency)] = _money(v, currency)
        return text


def _each_distinct(column: pa.ChunkedArray, text: Callable[[Any], str]) -> pa.Array:
    """``text(v)`` for each value of a float64 column (a null is None), called once per
    distinct value — distinct to the bit, so that 0.0 and -0.0 stay apart."""
    bits = column.combine_chunks().view(pa.int64())
    codes = pc.dictionary_encode(bits)
    distinct = codes.dictionary.view(pa.float64()).to_pylist()
    texts = pa.array([text(v) for v in distinct], pa.string())
    return pc.fill_null(texts.take(codes.indices), text(None))


def _gift_item(g: Mapping[str, Any], out: Items, money: _Money) -> None:
    """One gift that is not a best plan, from its row."""
    cid, kind = g["customer_id"], g["kind"]
    value, currency = _num(g.get("value_per_year")), g.get("currency")
    stable = g.get("plan_id") or g.get("source_ids") or g["gift_id"]
    per = "a year" if g.get("recurring") else "once"
    out.append(
        key=f"gift:{kind}:{cid}:{stable}",
        kind="gift",
        subkind=kind,
        customer_id=cid,
        title=f"Give: {kind.replace('_', ' ')}",
        why=f"{kind.replace('_', ' ')} worth {money(value, currency)} {per} to the "
        f"customer (confidence {(_num(g.get('confidence')) or 0):.2f})",
        wording=g.get("message") or "",
        urgency="high" if kind == "owed_credit" else ("medium" if (value or 0) >= 50 else "low"),
        cause=" · ".join(x for x in (kind.replace("_", " "), g.get("plan_id") or "") if x),
        at=None,
        team=None,
        value=value,
        currency=currency,
        evidence=_evidence({"giving_gifts": [g["gift_id"]]}),
    )


def _gift_columns(g: pa.Table, money: _Money) -> Items | None:
    """:func:`_gift_item` for every row of ``g`` at once (None if a column's type is unusual).

    The rows must have a kind (not empty), a customer and a gift id that JSON writes as
    itself (:data:`_PLAIN_JSON`); :func:`_gifts` sends the others to :func:`_gift_item`.
    """
    names = ("kind", "customer_id", "gift_id", "plan_id", "source_ids", "currency", "message")
    text = {c: _typed(g, c, _TEXT) for c in names}
    value = _typed(g, "value_per_year", (pa.float64(),))
    confidence = _typed(g, "confidence", (pa.float64(),))
    recurring = _typed(g, "recurring", (pa.bool_(),))
    if value is None or confidence is None or recurring is None or None in text.values():
        return None
    try:  # one text type for the kernels below (a large_string chunk over 2 GB stays large)
        kind, cid, gid, plan, source, currency, message = (
            pc.cast(text[c], pa.string()) for c in names
        )
    except pa.ArrowInvalid:
        return None
    has_plan = _truthy(plan)
    stable = pc.if_else(has_plan, plan, pc.if_else(_truthy(source), source, gid))
    name = pc.replace_substring(kind, "_", " ")
    value = pc.if_else(pc.is_nan(value), pa.scalar(None, pa.float64()), value)  # as _num
    n = g.num_rows
    if n and pc.count_distinct(currency, mode="all").as_py() == 1:
        one = currency[0].as_py()
        shown = _each_distinct(value, lambda v: money(v, one))
    else:
        shown = pa.array(list(map(money, value.to_pylist(), currency.to_pylist())), pa.string())
    why = pc.binary_join_element_wise(
        name,
        " worth ",
        shown,
        " ",
        pc.if_else(pc.fill_null(recurring, False), "a year", "once"),
        " to the customer (confidence ",
        _each_distinct(confidence, lambda x: f"{(x if x == x else None) or 0:.2f}"),
        ")",
        "",
    )
    out = Items()
    out.key = pc.binary_join_element_wise("gift", kind, cid, stable, ":").to_pylist()
    out.kind = ["gift"] * n
    out.subkind = kind.to_pylist()
    out.customer_id = cid.to_pylist()
    out.title = pc.binary_join_element_wise("Give: ", name, "").to_pylist()
    out.why = why.to_pylist()
    out.wording = pc.fill_null(message, "").to_pylist()
    medium = pc.if_else(pc.greater_equal(pc.fill_null(value, 0.0), 50.0), "medium", "low")
    out.urgency = pc.if_else(pc.equal(kind, "owed_credit"), "high", medium).to_pylist()
    with_plan = pc.binary_join_element_wise(name, plan, " · ")
    out.cause = pc.if_else(has_plan, with_plan, name).to_pylist()
    out.at = [None] * n
    out.team = [None] * n
    out.value = value.to_pylist()
    out.currency = currency.to_pylist()
    out.evidence = pc.binary_join_element_wise('{"giving_gifts": ["', gid, '"]}', "").to_pylist()
    return out


def _gifts(
    g: pa.Table | None, make_right_ids: set[Any], out: Items, money: _Money
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Append the gifts that are not best plans, in row order; return the best plans by
    (customer, current plan) in order of first appearance, for :func:`_best_plans`."""
    best: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if g is None or not g.num_rows:
        return best
    kind = g.column("kind")
    source = _typed(g, "source_ids", _TEXT)
    folded = None if source is None else _among(source, make_right_ids)
    gid = _typed(g, "gift_id", _TEXT) if "gift_id" in g.column_names else None
    cid = g.column("customer_id")
    if kind.type in _TEXT and folded is not None and gid is not None:
        is_best = pc.fill_null(pc.starts_with(kind, "best_plan"), False)
        # an owed credit for a promise made right is part of that item
        chosen = pc.invert(pc.or_(is_best, pc.and_(pc.equal(kind, "owed_credit"), folded)))
        chosen = pc.fill_null(chosen, True)  # no kind: fails in _gift_item, as it did
        plain = pc.fill_null(pc.match_substring_regex(gid, _PLAIN_JSON), False)
        usual = pc.and_(pc.and_(_truthy(kind), pc.is_valid(cid)), plain)
        fast, slow = pc.and_(chosen, usual), pc.and_(chosen, pc.invert(usual))
        used: tuple[str, ...] = ("kind", "customer_id", "gift_id", "plan_id", "source_ids")
        used += ("currency", "message", "value_per_year", "confidence", "recurring")
        items = _gift_columns(
            _where(g.select([c for c in used if c in g.column_names]), fast), money
        )
        if items is not None:
            rest = _where(g, slow).to_pylist()
            if not rest:
                out.extend(items)
            else:  # the unusual rows row by row, in their places
                order = sorted(
                    [(i, n, True) for n, i in enumerate(pc.indices_nonzero(fast).to_pylist())]
                    + [(i, n, False) for n, i in enumerate(pc.indices_nonzero(slow).to_pylist())]
                )
                for _, n, by_column in order:
                    if by_column:
                        out.append_from(items, n)
                    else:
                        _gift_item(rest[n], out, money)
            wanted: tuple[str, ...] = ("customer_id", "kind", "current_plan_id", "plan_id")
            wanted += ("value_per_year", "currency", "message", "gift_id")
            best_rows = _where(g.select([c for c in wanted if c in g.column_names]), is_best)
            for r in best_rows.to_pylist():
                best.setdefault((r["customer_id"], r.get("current_plan_id") or ""), []).append(r)
            return best
    for r in g.to_pylist():
        if r["kind"].startswith("best_plan"):
            best.setdefault((r["customer_id"], r.get("current_plan_id") or ""), []).append(r)
            continue
        if r["kind"] == "owed_credit" and r.get("source_ids") in make_right_ids:
            continue  # folded into the make_right item for the same promise
        _gift_item(r, out, money)
    return best


def _best_plans(
    best: Mapping[tuple[str, str], list[dict[str, Any]]], out: Items, money: _Money
) -> None:
    """One item per customer and current plan: the cheapest plan's message, others named."""
    key, why, wording, urgency, cause = out.key, out.why, out.wording, out.urgency, out.cause
    value_of, currency_of, evidence = out.value, out.currency, out.evidence
    n = len(best)
    for (cid, current), group in best.items():
        group.sort(
            key=lambda g: (g["kind"] != "best_plan_cheaper", -(_num(g.get("value_per_year")) or 0))
        )
        best_gift = group[0]
        value, currency = _num(best_gift.get("value_per_year")), best_gift.get("currency")
        text = (
            f"{best_gift.get('plan_id')} would have cost less than {current or 'their plan'} "
            f"in most months: {money(value, currency)} a year"
        )
        for other in group[1:]:
            text += (
                f"; like for like: {other.get('plan_id')} "
                f"({money(_num(other.get('value_per_year')), currency)} a year)"
            )
        ids = [g["gift_id"] for g in group]
        key.append(f"gift:best_plan:{cid}:{current}")
        out.customer_id.append(cid)
        why.append(text)
        wording.append(best_gift.get("message") or "")
        urgency.append("medium" if (value or 0) >= 50 else "low")
        cause.append(f"best plan · on {current or '(unknown plan)'}")
        value_of.append(value)
        currency_of.append(currency)
        if all(type(i) is str for i in ids):
            evidence.append('{"giving_gifts": [' + ", ".join(map(_js, ids)) + "]}")
        else:
            evidence.append(_evidence({"giving_gifts": ids}))
    out.kind.extend(["gift"] * n)
    out.subkind.extend(["best_plan"] * n)
    out.title.extend(["Give: a cheaper plan that fits"] * n)
    out.at.extend([None] * n)
    out.team.extend([None] * n)


def _owed_by_promise(g: pa.Table | None) -> dict[Any, dict[str, Any]]:
    """Owed credits for a broken promise, by promise (the last row of a promise wins)."""
    if g is None or not g.num_rows:
        return {}
    kind = g.column("kind")
    if kind.type in _TEXT:
        used = ("kind", "source_ids", "source_table", "message", "value_per_year", "currency")
        g = g.select([c for c in used if c in g.column_names])
        g = _where(g, pc.fill_null(pc.equal(kind, "owed_credit"), False))
    return {
        r["source_ids"]: r
        for r in g.to_pylist()
        if r["kind"] == "owed_credit" and r.get("source_table") == "promises"
    }


def _names(customers: pa.Table | None, wanted: set[Any]) -> dict[Any, Any]:
    """Customer id → name, for the ``wanted`` customers at least (the last row of an id wins)."""
    if customers is None or not customers.num_rows:
        return {}
    keep = _among(customers.column("customer_id"), wanted)
    if keep is not None:
        customers = _where(customers, keep)
    return dict(
        zip(_col(customers, "customer_id", required=True), _col(customers, "name"), strict=True)
    )


#: the tables :func:`derive_gifts` reads (the gifts section of :func:`derive_items`)
GIFT_TABLES = ("giving_gifts", "promises_make_right")


def _make_right_rows(tables: Mapping[str, pa.Table], since: dt.datetime) -> list[dict[str, Any]]:
    return _rows_where(tables, "promises_make_right", lambda t: _not_before(t, "due_at", since))


def _made_right_ids(
    make_right: list[dict[str, Any]], as_of: dt.datetime, since: dt.datetime
) -> set[Any]:
    return {
        r["promise_id"] for r in make_right if (_as_datetime(r.get("due_at")) or as_of) >= since
    }


def derive_gifts(
    tables: Mapping[str, pa.Table],
    as_of: dt.datetime,
    *,
    lookback_days: float = 180.0,
) -> Items:
    """The gift items of :func:`derive_items` (the most items by far), from
    :data:`GIFT_TABLES` alone: an analysis makes them while other lenses still run, and
    hands them to :func:`derive_items` as ``gifts``."""
    since = as_of - dt.timedelta(days=lookback_days)
    out, money = Items(), _Money()
    made_right = _made_right_ids(_make_right_rows(tables, since), as_of, since)
    best = _gifts(tables.get("giving_gifts"), made_right, out, money)
    _best_plans(best, out, money)
    return out


def derive_items(
    tables: Mapping[str, pa.Table],
    as_of: dt.datetime,
    *,
    lookback_days: float = 180.0,
    gifts: Items | None = None,
) -> Items:
    """:func:`derive`, column by column: the same items in the same order, as :class:`Items`.

    The first item of each key wins. The common gifts (most items by far) are made
    column-wise with Arrow, money and confidence formatted once per distinct value;
    everything else row by row, after Arrow has dropped the rows it would skip.
    ``gifts``: the gift items, made before by :func:`derive_gifts` from the same tables
    (then ``giving_gifts`` need only hold the owed credits for promises).
    """
    since = as_of - dt.timedelta(days=lookback_days)
    out = Items()

    make_right = _make_right_rows(tables, since)
    at_risk = _rows(tables, "promises_at_risk")
    drift = _rows_where(tables, "drift_customers", _drift_mask)
    journeys = _rows_where(
        tables, "experience_journeys", lambda t: _not_before(t, "started_at", since)
    )
    surveys = _rows_where(tables, "surveys", _low_score_mask(since))
    surveyed = {r["customer_id"] for r in surveys}
    # personal contacts matter only to customers with a low answer
    touches = (
        _rows_where(tables, "touch_messages", lambda t: _among(t.column("customer_id"), surveyed))
        if surveyed
        else []
    )
    drifting = {r["customer_id"] for r in drift}
    reasons_rows = _rows_where(
        tables, "drift_reasons", lambda t: _among(t.column("customer_id"), drifting)
    )
    # .get: a row the loops below skip may lack the column (a hand-made result table)
    wanted = {r.get("customer_id") for rows in (make_right, at_risk, drift, journeys) for r in rows}
    wanted.discard(None)
    names = _names(tables.get("customers"), wanted | surveyed)
    owed_by_promise = _owed_by_promise(tables.get("giving_gifts"))

    # -- broken promises with no make-good --------------------------------------------
    for r in make_right:
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
        out.append(
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
            evidence=_evidence(
                {"promises": [pid]}
                | ({"journeys": [r["journey_id"]]} if r.get("journey_id") else {})
            ),
        )

    # -- gifts ----------------------------------------------------------------------------
    if gifts is None:
        gifts = derive_gifts(tables, as_of, lookback_days=lookback_days)
    out.extend(gifts)

    # -- promises at risk -----------------------------------------------------------------
    for r in at_risk:
        if r.get("status") != "at_risk":
            continue
        cid, pid = r["customer_id"], r["promise_id"]
        first = _first_name(names, cid)
        verb = PROMISE_VERB.get(r["kind"], f"keep our {r['kind']} promise")
        left = _num(r.get("time_left_hours"))
        out.append(
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
            evidence=_evidence(
                {"promises": [pid]} | ({"hours_left": [f"{left:.1f}"]} if left is not None else {})
            ),
        )

    # -- drifting regulars ------------------------------------------------------------------
    reasons: dict[str, list[dict[str, Any]]] = {}
    for r in reasons_rows:
        reasons.setdefault(r["customer_id"], []).append(r)
    for r in drift:
        if not r.get("regular") or r.get("status") not in ("drifting", "lapsed"):
            continue
        if not r.get("cadence_broken"):
            continue
        cid = r["customer_id"]
        last = r.get("last_purchase")
        rs = sorted(reasons.get(cid, []), key=lambda x: x.get("rank") or 99)
        top_reason = rs[0] if rs else None
        reason = (top_reason or {}).get("reason") or "no_visible_cause"
        first = _first_name(names, cid)
        core = r.get("core_item")
        detail = (top_reason or {}).get("detail")
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
        out.append(
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
                f"core item unavailable · {top_reason.get('detail')}"
                if reason == "core_item_unavailable" and top_reason and top_reason.get("detail")
                else f"{reason.replace('_', ' ')}"
                + (
                    f" · {top_reason.get('detail')}"
                    if top_reason and top_reason.get("detail")
                    else ""
                )
            ),
            at=_as_datetime(last),
            value=value,
            currency=None,
            evidence=_evidence(evidence | ({"core_item": [str(core)]} if core else {})),
        )

    # -- unanswered contacts ------------------------------------------------------------------
    neglected = set(_col(tables.get("drift_neglect"), "customer_id", required=True))
    for r in journeys:
        if not (r.get("unanswered_contacts") or 0) > 0:
            continue
        started = _as_datetime(r.get("started_at"))
        if started is not None and started < since:
            continue
        cid, jid = r["customer_id"], r["journey_id"]
        first = _first_name(names, cid)
        age = (as_of - started).days if started else None
        out.append(
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
            cause=f"unanswered {r.get('channel') or ''} contact · team {r.get('team') or '(none)'}",
            at=started,
            team=r.get("team"),
            evidence=_evidence({"journeys": [jid]}),
        )

    # -- survey answers that need a reply --------------------------------------------------------
    personal: dict[str, list[dt.datetime]] = {}
    for r in touches:
        if r.get("touch") in ("personal", "spoken") and r.get("at") is not None:
            personal.setdefault(r["customer_id"], []).append(r["at"])
    for r in surveys:
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
        out.append(
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
            evidence=_evidence(
                {"surveys": [r["survey_id"]]}
                | ({"journeys": [r["journey_id"]]} if r.get("journey_id") else {})
            ),
        )
    return out.first_of_each_key()
