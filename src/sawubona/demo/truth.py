"""The description of a world's planted truth written into ``truth.json``.

Long lists live in ``truth/<name>.parquet``; ``truth.json`` names each file, says
what one row is and what every column means, and summarises the counts, the
agents by planted behaviour and the message templates.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import TemplateBook
from sawubona.demo.people import BEHAVIOURS, Agents

#: name -> (what one row is, {column: meaning})
DESCRIPTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "customers": (
        "every customer's hidden state",
        {
            "customer_id": "the customer",
            "churned": "telco: left (subscriptions ended); shop/cafe: stopped buying for good",
            "churned_at": "when (telco: subscription end; shop/cafe: time of dropout)",
            "satisfaction": "latent satisfaction (standard normal) behind survey scores; "
            "lowers the churn hazard only weakly",
        },
    ),
    "overpaying": (
        "an active customer for whom another open plan was cheaper in most months "
        "billed on their current plan (the documented bill formula)",
        {
            "current_plan": "their plan now",
            "fit_plan": "the open plan with the largest "
            "total saving among plans cheaper in >= 75% of those months",
            "reason": "low_usage (planted: usage fits a smaller plan), heavy_overage (planted: "
            "overage makes a bigger plan cheaper) or legacy_plan (everyone on a "
            "closed plan)",
            "direction": "smaller or bigger than the current plan (by fee)",
            "months": "months evaluated (full months on the current plan in the last 12)",
            "share_cheaper": "share of those months fit_plan was cheaper (planted >= 11/12 "
            "for low_usage and heavy_overage, 1 for legacy)",
            "yearly_saving": "12 x mean monthly saving on fit_plan",
            "monthly_fee_paid": "what they pay now",
        },
    ),
    "unused_addons": (
        "an active paid add-on with zero use of its metric in its last months",
        {
            "plan_id": "the add-on",
            "months_unused": "trailing months with zero use (>= 3)",
            "monthly_fee_paid": "its fee",
            "yearly_cost": "12 x fee",
        },
    ),
    "loyalty_penalty": (
        "an active customer paying more than a new customer pays for the same plan",
        {
            "monthly_fee_paid": "what they pay (after price rises)",
            "monthly_fee": "the plan's fee for a new customer today",
            "yearly_penalty": "12 x the difference",
            "tenure_years": "years since joining",
        },
    ),
    "promises": (
        "every promise, with its status at as_of",
        {
            "status": "kept (kept_at <= due_at), broken_late (kept after due_at), broken_unkept "
            "(never kept, due before as_of) or cancelled",
            "made_good": "broken and followed by an apology touchpoint or a credit/compensation "
            "action to the customer after due_at, within 7 days of the later of "
            "due_at and kept_at",
            "make_good_id": "the first such touchpoint or action",
        },
    ),
    "touchpoints": (
        "every outbound touchpoint and how it was written",
        {
            "class": "templated (filled-in template), personal (composed by a person) or spoken "
            "(a person spoke on the phone or in store; no text)",
            "template": "the template's key (see templates in truth.json)",
            "template_id_shown": "whether template_id is filled in the data",
        },
    ),
    "only_templates": (
        "a customer who was sent outbound messages but never a personal one (only "
        "templates, bots, system notices and marketing)",
        {
            "n_outbound": "outbound touchpoints they received",
            "contacted_us": "they sent inbound messages (and still got only templates)",
            "planted_neglect": "in the planted neglected group (every reply templated)",
        },
    ),
    "unanswered": (
        "an inbound touchpoint with no outbound touchpoint of the same journey after it",
        {"age_days": "days before as_of", "reason": "ignored (older than 7 days) or pending"},
    ),
    "begging": (
        "an outbound message that asks for top scores (contains a begging phrase)",
        {"agent_id": "who wrote it"},
    ),
    "surveys": (
        "every survey, with what preceded it",
        {
            "trigger": "system, agent or audit",
            "concession_before": "a discount/credit by the agent shortly before the invitation",
            "begged_before": "the agent's last message before it begged for a top score",
        },
    ),
    "actions": (
        "every action and why it was taken",
        {
            "purpose": "make_good, concession, price_rise, promised_refund, return_refund, "
            "retention_offer, upsell, late_payment_fee, loyalty_gift, ..."
        },
    ),
    "agents": (
        "every agent and their planted behaviour",
        {
            "behaviour": ", ".join(BEHAVIOURS),
            "n_routine_surveys": "system/agent-triggered surveys attributed to them",
            "n_audit_surveys": "audit surveys attributed to them",
            "n_begging_messages": "their messages that beg for scores",
        },
    ),
    "drift": (
        "a regular (frequent customer with a core item) and what happened to them",
        {
            "role": "loyal (keeps coming), drift_stockout (stopped after 1-2 stock-outs of "
            "their core item) or drift_unknown (stopped with no bad experience in "
            "their last journeys)",
            "core_item": "the item in most of their journeys",
            "n_journeys": "their journeys",
            "last_journey_at": "their last journey",
            "stopped": "no journeys after last_journey_at although their cadence expects some",
            "reason": "core_item_stockout, unknown, or null (loyal)",
            "stockout_journey_ids": "the journeys where their core item was out of stock just "
            "before they stopped (drift_stockout)",
            "core_stockouts": "stock-outs of their core item over their whole history",
        },
    ),
}


def _counts(t: pa.Table, column: str) -> dict[str, int]:
    vc = pc.value_counts(t.column(column).combine_chunks())
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


def describe(
    world: str, mod: ModuleType, files: dict[str, pa.Table], book: TemplateBook, agents: Agents
) -> dict[str, Any]:
    """The ``truth.json`` entries describing ``files`` (written to ``truth/``)."""
    truths: dict[str, Any] = {}
    for name, t in sorted(files.items()):
        row, cols = DESCRIPTIONS.get(name, ("", {}))
        truths[name] = {
            "file": f"truth/{name}.parquet",
            "rows": t.num_rows,
            "row": row,
            "columns": {c: cols.get(c, "") for c in t.column_names},
        }
    by_behaviour: dict[str, Any] = {}
    ids = agents.ids.to_pylist()
    for code, b in enumerate(BEHAVIOURS):
        members = [a for a, x in zip(ids, agents.behaviour.tolist(), strict=True) if x == code]
        by_behaviour[b] = members if b != "honest" else {"count": len(members)}
    summary: dict[str, Any] = {
        "promises": _counts(files["promises"], "status"),
        "promises_made_good": int(pc.sum(files["promises"].column("made_good")).as_py() or 0),
        "unanswered": _counts(files["unanswered"], "reason"),
        "only_templates": files["only_templates"].num_rows,
        "only_templates_who_contacted_us": int(
            pc.sum(files["only_templates"].column("contacted_us")).as_py() or 0
        ),
        "outbound_by_class": _counts(files["touchpoints"], "class"),
        "surveys_by_trigger": _counts(files["surveys"], "trigger"),
        "churned": int(pc.sum(files["customers"].column("churned")).as_py() or 0),
    }
    if "overpaying" in files:
        summary["overpaying"] = _counts(files["overpaying"], "reason")
    if "drift" in files:
        summary["drift"] = _counts(files["drift"], "role")
    return {
        "truths": truths,
        "summary": summary,
        "agents": by_behaviour,
        "templates": [
            {
                "key": t.key,
                "template_id": t.template_id,
                "pattern": t.pattern,
                "id_share": t.id_share,
            }
            for t in book.templates
        ],
        "world_facts": mod.facts(),
    }
