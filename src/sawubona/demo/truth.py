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
            "(never kept, due before as_of), cancelled, open (due after as_of, not kept or "
            "cancelled) or at_risk (open, and at least 80% of its time gone or less time left "
            "than the kind's 90th percentile time to keep: the promises lens's default rule)",
            "made_good": "broken and followed by an apology touchpoint or a credit/compensation "
            "action to the customer after due_at, within 7 days of the later of "
            "due_at and kept_at",
            "make_good_id": "the first such touchpoint or action",
            "padded": "made by a planted padder (an agent who quotes 3x the usual time)",
            "renegotiated": "its due date was moved later by a new promise of the same kind "
            "in the same journey while it was pending (planted); it is never kept itself",
            "replaced_by": "the promise that moved its due date",
            "replaces": "the promise whose due date this one moved",
            "paused_hours": "planted paused promises: hours their clock stood still (from the "
            "pending touchpoint to the journey's next touchpoint, within made..kept)",
            "status_with_pauses": "the status when pending touchpoints stop the clock "
            "(promises lens with pause_on = pending); as status for unpaused promises",
        },
    ),
    "true_scores": (
        "a closed journey that could be surveyed, and the NPS its customer would have given "
        "if asked honestly (surveyed or not)",
        {
            "nps": "0-10: 7.9 + 0.9 x satisfaction + the journey's penalties + N(0, 1.4), "
            "rounded; for surveyed journeys the quality behind their first survey, before any "
            "plea or concession",
        },
    ),
    "owed_credits": (
        "a journey whose broken promises the world's compensation rules "
        "(truth/compensation_rules.toml) compensate",
        {
            "claim_ids": "its broken promises with a rule (comma-separated)",
            "owed": "what the rules owe for them at as_of (per started day late, capped)",
            "paid": "credit/compensation actions on the journey",
            "still_owed": "max(0, owed - paid): owed credit still to give (>= 0.01 to count)",
            "paid_ids": "those actions",
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
            "padding": "a planted padder: quotes deadlines 3x the usual (keeps 95% on time)",
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
    by_behaviour["padding"] = [a for a, x in zip(ids, agents.padding.tolist(), strict=True) if x]
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
    if "true_scores" in files:
        nps = files["true_scores"].column("nps").to_numpy()
        summary["true_nps"] = round(float(100 * ((nps >= 9).mean() - (nps <= 6).mean())), 2)
    if "owed_credits" in files:
        oc = files["owed_credits"]
        summary["owed_credits"] = {
            "journeys": oc.num_rows,
            "owed": round(float(pc.sum(oc.column("owed")).as_py() or 0), 2),
            "still_owed": round(float(pc.sum(oc.column("still_owed")).as_py() or 0), 2),
            "journeys_still_owed": int(
                pc.sum(pc.greater_equal(oc.column("still_owed"), 0.01)).as_py() or 0
            ),
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
        "world_facts": {**mod.facts(), "compensation_rules": mod.COMPENSATION_RULES},
    }
