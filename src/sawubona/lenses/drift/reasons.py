"""Why: the experiences just before a regular stopped coming, ranked, with the rows.

For each drifting or lapsed regular the **break window** runs from the start of
their ``reason_journeys``-th last purchase journey to the moment their silence
became abnormal (last purchase + their cadence limit, or ``as_of`` if sooner).
Everything below is looked for inside that window, as Ibis expressions over the
canonical tables (each table optional):

======================  ======  ==========================================================
reason                  weight  evidence
======================  ======  ==========================================================
core_item_unavailable   5       an item of theirs not supplied (``fulfilled = false``) that
                                is *their* core item: the item in most of their journeys
                                (at least ``core_share`` of those with items)
failed_outcome          3       a journey whose outcome failed (not explained by a missing
                                item; the experience lens's ``outcome_achieved`` when present)
broken_promise          3       a promise due in the window, not cancelled, not kept by its
                                due time (the promises lens's status when present)
price_rise              3       an action of kind price_rise, fee or penalty
unanswered_contact      3       an inbound contact with no outbound reply (not marketing; same
                                journey, or to them when it has no journey) within
                                ``reply_days``
high_effort             2       a journey with ``effort_contacts`` or more inbound contacts,
                                or a transfer
item_unavailable        1       another item of theirs not supplied
marketing_only          1       ``marketing_min`` or more marketing messages and not one
                                personal contact (a person, no template) in the window
======================  ======  ==========================================================

A reason's score is its weight × (1 + ½ per further event, at most 3 events); the
reasons of a customer are ranked by score, then by how close the last event is to
the break. A customer with none of these gets one row ``no_visible_cause`` — the
lens does not invent a cause.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir

WEIGHTS: dict[str, float] = {
    "core_item_unavailable": 5.0,
    "failed_outcome": 3.0,
    "broken_promise": 3.0,
    "price_rise": 3.0,
    "unanswered_contact": 3.0,
    "high_effort": 2.0,
    "item_unavailable": 1.0,
    "marketing_only": 1.0,
}
LABELS: dict[str, str] = {
    "core_item_unavailable": "their core item was not available",
    "failed_outcome": "a journey failed",
    "broken_promise": "a promise to them was broken",
    "price_rise": "a price rise or new fee",
    "unanswered_contact": "a message of theirs went unanswered",
    "high_effort": "a high-effort journey",
    "item_unavailable": "an item they wanted was not available",
    "marketing_only": "marketing, but no personal contact",
    "no_visible_cause": "no visible cause",
}
TAKING_KINDS = ("price_rise", "fee", "penalty")

EVIDENCE_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("reason", pa.string()),
        ("evidence_table", pa.string()),
        ("row_id", pa.string()),
        ("at", pa.timestamp("us")),
        ("detail", pa.string()),
    ]
)


def _rows(
    expr: ir.Table,
    reason: ir.Value | str,
    table: str,
    row_id: ir.Value,
    at: ir.Value,
    detail: ir.Value | str | None,
) -> ir.Table:
    return expr.select(
        customer_id=expr.customer_id.cast("string"),
        reason=ibis.literal(reason) if isinstance(reason, str) else reason,
        evidence_table=ibis.literal(table),
        row_id=row_id.cast("string"),
        at=at.cast("timestamp"),
        detail=(
            ibis.literal(detail, type="string")
            if detail is None or isinstance(detail, str)
            else detail.cast("string")
        ),
    )


def evidence(
    targets: pa.Table,
    core_pairs: pa.Table,
    tables: Mapping[str, ir.Table],
    results: Mapping[str, ir.Table],
    as_of: dt.datetime,
    settings: Mapping[str, Any],
) -> pa.Table:
    """Evidence rows (``EVIDENCE_SCHEMA``) for ``targets`` (customer_id, window_start,
    window_end) from the canonical tables present (all as of ``as_of``); ``core_pairs``
    (customer_id, item_id) are the items in most of each target's journeys."""
    if targets.num_rows == 0:
        return EVIDENCE_SCHEMA.empty_table()
    tg = ibis.memtable(targets)
    parts: list[ir.Table] = []
    journeys = tables["journeys"]
    jw = journeys.join(tg, "customer_id")
    jw = jw.filter((jw.started_at >= jw.window_start) & (jw.started_at <= jw.window_end))
    in_window = jw.select("journey_id", "customer_id", "started_at", "outcome", "outcome_reason")

    missing_journeys = None
    if "journey_items" in tables:
        items = tables["journey_items"]
        miss = items.filter(items.fulfilled == ibis.literal(False)).join(in_window, "journey_id")
        core = ibis.memtable(
            core_pairs.append_column("is_core", pa.array([True] * core_pairs.num_rows, pa.bool_()))
        )
        miss = miss.left_join(core, ["customer_id", "item_id"]).select(
            "customer_id", "journey_id", "item_id", "started_at", "is_core"
        )
        is_core = miss.is_core.notnull()
        parts.append(
            _rows(
                miss,
                ibis.ifelse(is_core, "core_item_unavailable", "item_unavailable"),
                "journey_items",
                miss.journey_id,
                miss.started_at,
                miss.item_id,
            )
        )
        missing_journeys = miss.select("journey_id").distinct()

    failed = _failed_journeys(in_window, results)
    if missing_journeys is not None:
        failed = failed.anti_join(missing_journeys, "journey_id")
    parts.append(
        _rows(
            failed,
            "failed_outcome",
            "journeys",
            failed.journey_id,
            failed.started_at,
            failed.outcome_reason,
        )
    )

    if "promises" in tables:
        parts.append(_broken_promises(tables["promises"], tg, results, as_of))
    if "actions" in tables:
        a = tables["actions"].join(tg, "customer_id")
        a = a.filter(
            a.kind.isin(list(TAKING_KINDS)) & (a.at >= a.window_start) & (a.at <= a.window_end)
        )
        parts.append(_rows(a, "price_rise", "actions", a.action_id, a.at, a.kind))
    if "touchpoints" in tables:
        parts.extend(_contact_evidence(tables["touchpoints"], tg, in_window, as_of, settings))
    union = parts[0]
    for p in parts[1:]:
        union = union.union(p)
    got = union.to_pyarrow()
    return got.cast(EVIDENCE_SCHEMA)


def _failed_journeys(in_window: ir.Table, results: Mapping[str, ir.Table]) -> ir.Table:
    exp = results.get("experience_journeys")
    if (
        exp is not None
        and {"journey_id", "outcome_achieved"} <= set(exp.columns)
        and exp.outcome_achieved.type().is_boolean()
    ):
        bad = exp.filter(exp.outcome_achieved == ibis.literal(False)).select("journey_id")
        return in_window.semi_join(bad, "journey_id")
    return in_window.filter(in_window.outcome == "failed")


def _broken_promises(
    promises: ir.Table, tg: ir.Table, results: Mapping[str, ir.Table], as_of: dt.datetime
) -> ir.Table:
    p = promises.join(tg, "customer_id")
    p = p.filter((p.due_at >= p.window_start) & (p.due_at <= p.window_end) & (p.due_at <= as_of))
    status = results.get("promises_status")
    if (
        status is not None
        and {"promise_id", "status"} <= set(status.columns)
        and status.status.type().is_string()
    ):
        broken = status.filter(status.status == "broken").select("promise_id")
        p = p.semi_join(broken, "promise_id")
    else:
        kept_in_time = p.kept_at.notnull() & (p.kept_at <= p.due_at)
        cancelled = p.cancelled_at.notnull() & (p.cancelled_at <= p.due_at)
        p = p.filter(~kept_in_time & ~cancelled)
    return _rows(p, "broken_promise", "promises", p.promise_id, p.due_at, p.kind)


def _contact_evidence(
    touchpoints: ir.Table,
    tg: ir.Table,
    in_window: ir.Table,
    as_of: dt.datetime,
    settings: Mapping[str, Any],
) -> list[ir.Table]:
    tp = touchpoints.filter(touchpoints.at <= as_of).semi_join(tg, "customer_id")
    out: list[ir.Table] = []
    # high effort: many inbound contacts or a transfer on a journey in the window
    on_j = tp.filter(tp.journey_id.notnull()).join(
        in_window.select("journey_id", j_at="started_at"), "journey_id"
    )
    effort = on_j.group_by(["customer_id", "journey_id", "j_at"]).aggregate(
        inbound=(on_j.direction == "inbound").sum(),
        transfers=(on_j.kind == "transfer").sum(),
    )
    effort = effort.filter(
        (effort.inbound >= int(settings["effort_contacts"])) | (effort.transfers > 0)
    )
    out.append(
        _rows(
            effort,
            "high_effort",
            "journeys",
            effort.journey_id,
            effort.j_at,
            effort.inbound.cast("string").concat(" inbound contacts"),
        )
    )
    # unanswered inbound contacts in the window
    tw = tp.join(tg, "customer_id")
    tw = tw.filter((tw.at >= tw.window_start) & (tw.at <= tw.window_end))
    inbound = tw.filter(tw.direction == "inbound")
    outbound = tp.filter(
        (tp.direction == "outbound") & (tp.kind.isnull() | (tp.kind != "marketing"))
    ).select("customer_id", o_journey="journey_id", o_at="at")
    reply_days = ibis.interval(days=int(settings["reply_days"]))
    pairs = inbound.join(
        outbound,
        [
            inbound.customer_id == outbound.customer_id,
            outbound.o_at > inbound.at,
            outbound.o_at <= inbound.at + reply_days,
            inbound.journey_id.isnull() | (outbound.o_journey == inbound.journey_id),
        ],
    )
    answered = pairs.select("touchpoint_id").distinct()
    waited_enough = inbound.filter(inbound.at + reply_days <= as_of)
    unanswered = waited_enough.anti_join(answered, "touchpoint_id")
    out.append(
        _rows(
            unanswered,
            "unanswered_contact",
            "touchpoints",
            unanswered.touchpoint_id,
            unanswered.at,
            unanswered.kind,
        )
    )
    # marketing without a personal contact in the window
    outw = tw.filter(tw.direction == "outbound")
    personal = (
        (outw.actor == "person")
        & outw.template_id.isnull()
        & (outw.kind.isnull() | (outw.kind != "marketing"))
    )
    per = outw.group_by("customer_id").aggregate(
        marketing=(outw.kind == "marketing").sum(), personal=personal.sum()
    )
    pushy = per.filter(
        (per.marketing >= int(settings["marketing_min"])) & (per.personal == 0)
    ).select("customer_id")
    mk = outw.filter(outw.kind == "marketing").semi_join(pushy, "customer_id")
    out.append(_rows(mk, "marketing_only", "touchpoints", mk.touchpoint_id, mk.at, mk.template_id))
    return out


def rank(evidence_rows: pa.Table, targets: pa.Table) -> pa.Table:
    """``drift_reasons``: one row per (customer, reason), ranked; ``no_visible_cause``
    for targets without evidence."""
    ev = evidence_rows.to_pylist()
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in ev:
        by.setdefault((row["customer_id"], row["reason"]), []).append(row)
    end_of = dict(
        zip(
            targets.column("customer_id").to_pylist(),
            targets.column("window_end").to_pylist(),
            strict=True,
        )
    )
    per_customer: dict[str, list[dict[str, Any]]] = {}
    for (cid, reason), rows in by.items():
        rows.sort(key=lambda r: (r["at"] or dt.datetime.min, r["row_id"] or ""))
        ids = list(dict.fromkeys(r["row_id"] for r in rows))
        n = len(ids)
        details = [r["detail"] for r in rows if r["detail"]]
        per_customer.setdefault(cid, []).append(
            {
                "customer_id": cid,
                "reason": reason,
                "label": LABELS[reason],
                "score": WEIGHTS[reason] * (1 + 0.5 * (min(n, 3) - 1)),
                "events": n,
                "evidence_table": rows[0]["evidence_table"],
                "evidence_ids": ids,
                "first_at": rows[0]["at"],
                "last_at": rows[-1]["at"],
                "detail": ", ".join(dict.fromkeys(details)) or None,
            }
        )
    out: list[dict[str, Any]] = []
    for cid in targets.column("customer_id").to_pylist():
        reasons = per_customer.get(cid)
        if not reasons:
            out.append(
                {
                    "customer_id": cid,
                    "rank": 1,
                    "reason": "no_visible_cause",
                    "label": LABELS["no_visible_cause"],
                    "score": 0.0,
                    "events": 0,
                    "evidence_table": None,
                    "evidence_ids": [],
                    "first_at": None,
                    "last_at": None,
                    "detail": None,
                }
            )
            continue
        end = end_of.get(cid) or dt.datetime.max
        reasons.sort(
            key=lambda r: (
                -r["score"],
                abs((end - (r["last_at"] or dt.datetime.min)).total_seconds()),
                r["reason"],
            )
        )
        for i, r in enumerate(reasons, 1):
            out.append(
                {
                    "customer_id": cid,
                    "rank": i,
                    **{k: v for k, v in r.items() if k != "customer_id"},
                }
            )
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("rank", pa.int64()),
            ("reason", pa.string()),
            ("label", pa.string()),
            ("score", pa.float64()),
            ("events", pa.int64()),
            ("evidence_table", pa.string()),
            ("evidence_ids", pa.list_(pa.string())),
            ("first_at", pa.timestamp("us")),
            ("last_at", pa.timestamp("us")),
            ("detail", pa.string()),
        ]
    )
    return pa.Table.from_pylist(out, schema=schema)


def summary_text(reasons: pa.Table, top: int = 3) -> dict[str, str]:
    """Per customer: their top reasons in words (``"no visible cause"`` when none)."""
    out: dict[str, list[str]] = {}
    for r in reasons.to_pylist():
        texts = out.setdefault(r["customer_id"], [])
        if len(texts) >= top:
            continue
        label = r["label"]
        if r["reason"] in ("core_item_unavailable", "item_unavailable") and r["detail"]:
            label = f"{label} ({r['detail']}, {r['events']}x)"
        elif r["events"] and r["events"] > 1:
            label = f"{label} ({r['events']}x)"
        texts.append(label)
    return {k: "; ".join(v) for k, v in out.items()}
