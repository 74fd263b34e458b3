"""Turn a block's row sinks into canonical event tables, and derive the truths that
need final ids: touch classes, customers only ever sent templates, unanswered
inbound contacts, promise statuses and make-goods, begging messages, survey and
action purposes.

Rules applied here (documented in ``docs/demo.md``):

* nothing later than ``as_of`` but the due time of open promises: touchpoints,
  actions and surveys invited after it are dropped; answers, fulfilments and
  cancellations after it become null; promises made after it are not written;
* an inbound touchpoint is **unanswered** when no outbound touchpoint of the same
  journey comes after it;
* a broken promise is **made good** when an ``apology`` touchpoint or a
  ``credit``/``compensation`` action reaches the same customer after ``due_at``
  and at most 7 days after the later of ``due_at`` and ``kept_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.common import (
    ACTION_KINDS,
    AS_OF,
    CHANNELS,
    DAY,
    HOUR,
    I64,
    INSTRUMENTS,
    PENDING,
    PROMISE_KINDS,
    SECOND,
    SYSTEM_AGENT,
    TP_KINDS,
    assemble,
    event_ids,
    labels,
    num,
    take_cols,
    ts,
    ts_opt,
)
from sawubona.demo.common import APOLOGY as K_APOLOGY
from sawubona.schema import ACTORS, DIRECTIONS, INITIATORS, TRIGGERS


@dataclass
class Counters:
    """Rows of each event table written so far (for globally unique ids)."""

    journeys: int = 0
    touchpoints: int = 0
    promises: int = 0
    surveys: int = 0
    actions: int = 0


def _opt_ids(table: str, numbers: np.ndarray) -> pa.Array:
    numbers = np.asarray(numbers, dtype=I64)
    ids = event_ids(table, np.maximum(numbers, 0))
    neg = numbers < 0
    if neg.any():
        return pc.if_else(pa.array(neg), pa.nulls(len(numbers), pa.string()), ids)
    return ids


def _agent_ids(b: Block, agent: np.ndarray) -> pa.Array:
    return labels(b.agents.ids, np.where(agent >= 0, agent, -1))


def _team(b: Block, agent: np.ndarray) -> pa.Array:
    return labels(b.agents.teams, np.where(agent >= 0, b.agents.team[np.maximum(agent, 0)], -1))


def finish_block(b: Block, ctr: Counters) -> dict[str, pa.Table]:
    """The block's touchpoints, promises, surveys and actions; truths added to ``b``."""
    out: dict[str, pa.Table] = {}
    tp = b.tp.columns()
    keep = np.flatnonzero(tp["at"] <= AS_OF)
    tp = take_cols(tp, keep[np.argsort(tp["at"][keep], kind="stable")])
    n_tp = len(tp["at"])
    tp_num = ctr.touchpoints + np.arange(n_tp, dtype=I64)
    tp_ids = event_ids("touchpoints", tp_num)
    ctr.touchpoints += n_tp
    tpl_ids = pa.array([t.template_id for t in b.book.templates], pa.string())
    show = tp["show_tpl"] & (tp["tpl"] >= 0)
    cust_ids = b.cust.ids
    out["touchpoints"] = assemble(
        "touchpoints",
        n_tp,
        {
            "touchpoint_id": tp_ids,
            "customer_id": labels(cust_ids, tp["cust"]),
            "journey_id": _opt_ids("journeys", tp["journey"]),
            "at": ts(tp["at"]),
            "channel": labels(CHANNELS, tp["channel"]),
            "direction": labels(DIRECTIONS, tp["direction"]),
            "actor": labels(ACTORS, tp["actor"]),
            "agent_id": _agent_ids(b, tp["agent"]),
            "team": _team(b, tp["agent"]),
            "kind": labels(TP_KINDS, tp["kind"]),
            "text": tp["text"],
            "template_id": labels(tpl_ids, np.where(show, tp["tpl"], -1)),
        },
    )
    _touch_truth(b, tp, tp_ids)

    ac = b.actions.columns()
    keep = np.flatnonzero(ac["at"] <= AS_OF)
    ac = take_cols(ac, keep[np.argsort(ac["at"][keep], kind="stable")])
    n_ac = len(ac["at"])
    ac_ids = event_ids("actions", ctr.actions + np.arange(n_ac, dtype=I64))
    ctr.actions += n_ac
    out["actions"] = assemble(
        "actions",
        n_ac,
        {
            "action_id": ac_ids,
            "customer_id": labels(cust_ids, ac["cust"]),
            "at": ts(ac["at"]),
            "kind": labels(ACTION_KINDS, ac["kind"]),
            "amount": num(ac["amount"]),
            "currency": labels(("GBP",), np.where(np.isnan(ac["amount"]), -1, 0)),
            "initiated_by": labels(INITIATORS, ac["initiated"]),
            "agent_id": _agent_ids(b, ac["agent"]),
            "journey_id": _opt_ids("journeys", ac["journey"]),
        },
    )
    b.add_truth("actions", pa.table({"action_id": ac_ids, "purpose": ac["purpose"]}))

    pr = b.promises.columns()
    keep = np.flatnonzero(pr["made"] <= AS_OF)
    pr = take_cols(pr, keep[np.argsort(pr["made"][keep], kind="stable")])
    n_pr = len(pr["made"])
    pr_ids = event_ids("promises", ctr.promises + np.arange(n_pr, dtype=I64))
    ctr.promises += n_pr
    kept = np.where(pr["kept"] <= AS_OF, pr["kept"], -1)
    cancelled = np.where(pr["cancelled"] <= AS_OF, pr["cancelled"], -1)
    made_by = pc.if_else(
        pa.array(pr["made_by"] == SYSTEM_AGENT),
        pa.array(["system"] * n_pr, pa.string()),
        _agent_ids(b, pr["made_by"]),
    )
    out["promises"] = assemble(
        "promises",
        n_pr,
        {
            "promise_id": pr_ids,
            "customer_id": labels(cust_ids, pr["cust"]),
            "journey_id": _opt_ids("journeys", pr["journey"]),
            "kind": labels(PROMISE_KINDS, pr["kind"]),
            "made_at": ts(pr["made"]),
            "due_at": ts(pr["due"]),
            "made_by": made_by,
            "team": labels(b.agents.teams, pr["team"]),
            "channel": labels(CHANNELS, pr["channel"]),
            "kept_at": ts_opt(kept),
            "cancelled_at": ts_opt(cancelled),
            "cancel_reason": pc.if_else(
                pa.array(cancelled >= 0), pr["cancel_reason"], pa.nulls(n_pr, pa.string())
            ),
        },
    )
    _promise_truth(b, pr, kept, cancelled, pr_ids, tp, tp_ids, ac, ac_ids)

    sv = b.surveys.columns()
    keep = np.flatnonzero(sv["invited"] <= AS_OF)
    sv = take_cols(sv, keep[np.argsort(sv["invited"][keep], kind="stable")])
    n_sv = len(sv["invited"])
    sv_ids = event_ids("surveys", ctr.surveys + np.arange(n_sv, dtype=I64))
    ctr.surveys += n_sv
    answered = (sv["responded"] >= 0) & (sv["responded"] <= AS_OF)
    out["surveys"] = assemble(
        "surveys",
        n_sv,
        {
            "survey_id": sv_ids,
            "customer_id": labels(cust_ids, sv["cust"]),
            "journey_id": _opt_ids("journeys", sv["journey"]),
            "instrument": labels(INSTRUMENTS, sv["instrument"]),
            "invited_at": ts(sv["invited"]),
            "responded_at": ts_opt(np.where(answered, sv["responded"], -1)),
            "score": num(np.where(answered, sv["score"], np.nan), None),
            "comment": pc.if_else(pa.array(answered), sv["comment"], pa.nulls(n_sv, pa.string())),
            "agent_id": _agent_ids(b, sv["agent"]),
            "team": labels(b.agents.teams, sv["team"]),
            "trigger": labels(TRIGGERS, sv["trigger"]),
        },
    )
    b.add_truth(
        "surveys",
        pa.table(
            {
                "survey_id": sv_ids,
                "agent_id": _agent_ids(b, sv["agent"]),
                "trigger": labels(TRIGGERS, sv["trigger"]),
                "concession_before": pa.array(sv["concession"]),
                "begged_before": pa.array(sv["begged"]),
            }
        ),
    )
    return out


def _touch_truth(b: Block, tp: dict[str, np.ndarray], tp_ids: pa.Array) -> None:
    """Classes of outbound messages, template-only customers, unanswered contacts."""
    n = b.cust.n
    out = tp["direction"] == 1
    templated = out & (tp["tpl"] >= 0)
    has_text = np.asarray(pc.is_valid(tp["text"]))
    cls = np.where(templated, 0, np.where(has_text, 1, 2))  # templated / personal / spoken
    o = np.flatnonzero(out)
    keys = pa.array([t.key for t in b.book.templates], pa.string())
    b.add_truth(
        "touchpoints",
        pa.table(
            {
                "touchpoint_id": tp_ids.take(pa.array(o)),
                "customer_id": labels(b.cust.ids, tp["cust"][o]),
                "class": labels(("templated", "personal", "spoken"), cls[o]),
                "template": labels(keys, np.where(templated[o], tp["tpl"][o], -1)),
                "template_id_shown": pa.array(tp["show_tpl"][o] & templated[o]),
            }
        ),
    )
    # customers only ever sent templates
    c = tp["cust"]
    n_out = np.bincount(c[out], minlength=n)
    n_human = np.bincount(c[out & ~templated], minlength=n)
    n_in = np.bincount(c[~out], minlength=n)
    only = np.flatnonzero((n_out > 0) & (n_human == 0))
    b.add_truth(
        "only_templates",
        pa.table(
            {
                "customer_id": labels(b.cust.ids, only),
                "n_outbound": pa.array(n_out[only]),
                "contacted_us": pa.array(n_in[only] > 0),
                "planted_neglect": pa.array(b.neglected[only]),
            }
        ),
    )
    # unanswered inbound: no outbound of the same journey after it
    j = tp["journey"]
    has_j = j >= 0
    uj, inv = np.unique(j[has_j], return_inverse=True)
    last_out = np.full(len(uj), -1, I64)
    oj = out[has_j]
    np.maximum.at(last_out, inv[oj], tp["at"][has_j][oj])
    inbound = np.flatnonzero(has_j & ~out)
    pos = np.searchsorted(uj, j[inbound])
    un = inbound[last_out[pos] <= tp["at"][inbound]]
    age = (AS_OF - tp["at"][un]) / DAY
    b.add_truth(
        "unanswered",
        pa.table(
            {
                "touchpoint_id": tp_ids.take(pa.array(un)),
                "customer_id": labels(b.cust.ids, c[un]),
                "journey_id": event_ids("journeys", j[un]),
                "at": ts(tp["at"][un]),
                "age_days": pa.array(np.round(age, 2)),
                "reason": pa.array(np.where(age < 7, "pending", "ignored").astype(object)),
            }
        ),
    )
    beg = np.flatnonzero(tp["begging"])
    b.add_truth(
        "begging",
        pa.table(
            {
                "touchpoint_id": tp_ids.take(pa.array(beg)),
                "agent_id": _agent_ids(b, tp["agent"][beg]),
                "customer_id": labels(b.cust.ids, c[beg]),
            }
        ),
    )


def _promise_truth(
    b: Block,
    pr: dict[str, np.ndarray],
    kept: np.ndarray,
    cancelled: np.ndarray,
    pr_ids: pa.Array,
    tp: dict[str, np.ndarray],
    tp_ids: pa.Array,
    ac: dict[str, np.ndarray],
    ac_ids: pa.Array,
) -> None:
    """Status of every promise at ``as_of``, the make-good after broken ones, what was
    planted (padding, renegotiation, pauses) and the credits the rules owe."""
    due = pr["due"]
    status = np.where(
        cancelled >= 0,
        3,
        np.where(kept >= 0, np.where(kept > due, 1, 0), np.where(due > AS_OF, 4, 2)),
    )
    broken = (status == 1) | (status == 2)
    # make-good events: apologies and credit/compensation actions, by customer and time
    apo = np.flatnonzero((tp["kind"] == K_APOLOGY) & (tp["direction"] == 1))
    credit = np.flatnonzero(
        np.isin(ac["kind"], [ACTION_KINDS.index("credit"), ACTION_KINDS.index("compensation")])
    )
    ev_cust = np.r_[tp["cust"][apo], ac["cust"][credit]]
    ev_at = np.r_[tp["at"][apo], ac["at"][credit]] // SECOND
    ev_id = pa.concat_arrays([tp_ids.take(pa.array(apo)), ac_ids.take(pa.array(credit))])
    key = (ev_cust << 32) | ev_at
    order = np.argsort(key, kind="stable")
    key = key[order]
    lo = (pr["cust"] << 32) | (due // SECOND)
    hi_t = np.maximum(due, kept) + 7 * DAY
    i = np.searchsorted(key, lo, side="right")
    ok = i < len(key)
    i2 = np.minimum(i, max(len(key) - 1, 0))
    found = ok & (len(key) > 0)
    if len(key):
        found &= (key[i2] >> 32 == pr["cust"]) & ((key[i2] & 0xFFFFFFFF) <= hi_t // SECOND)
    made_good = broken & found
    mg_id = labels(
        ev_id.take(pa.array(order)) if len(key) else pa.array([], pa.string()),
        np.where(made_good, i2, -1),
    )
    # renegotiations: the replacement is the later promise of the same journey and kind
    plant = pr["plant"]
    orig = np.flatnonzero(plant == 2)
    repl = np.flatnonzero(plant == 3)
    rkey = pr["journey"][repl] * 16 + pr["kind"][repl]
    ro = np.argsort(rkey, kind="stable")
    at_r = np.searchsorted(rkey[ro], pr["journey"][orig] * 16 + pr["kind"][orig])
    replaced_by = np.full(len(due), -1, I64)
    replaced_by[orig] = repl[ro[np.minimum(at_r, max(len(repl) - 1, 0))]] if len(repl) else -1
    replaces = np.full(len(due), -1, I64)
    replaces[replaced_by[orig]] = orig
    paused_s, status_p = _pause_truth(pr, kept, cancelled, status, tp)
    codes = ("kept", "broken_late", "broken_unkept", "cancelled", "open")
    b.add_truth(
        "promises",
        pa.table(
            {
                "promise_id": pr_ids,
                "customer_id": labels(b.cust.ids, pr["cust"]),
                "kind": labels(PROMISE_KINDS, pr["kind"]),
                "status": labels(codes, status),
                "made_good": pa.array(made_good),
                "make_good_id": mg_id,
                "padded": pa.array(plant == 1),
                "renegotiated": pa.array(plant == 2),
                "replaced_by": labels(pr_ids, replaced_by),
                "replaces": labels(pr_ids, replaces),
                "paused_hours": pa.array(
                    np.where(paused_s >= 0, paused_s / HOUR, np.nan), from_pandas=True
                ),
                "status_with_pauses": labels(codes, status_p),
                # for the at-risk status, set once every block is in (dropped then)
                "_made": pa.array(pr["made"]),
                "_due": pa.array(due),
                "_kept": pa.array(kept),
            }
        ),
    )
    if b.compensation:
        _owed_truth(b, pr, kept, broken, pr_ids, ac, ac_ids)


def _pause_truth(
    pr: dict[str, np.ndarray],
    kept: np.ndarray,
    cancelled: np.ndarray,
    status: np.ndarray,
    tp: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Per promise: seconds its clock was paused (-1: not a paused promise) and its status
    when pauses stop the clock. A pause runs from the ``pending`` touchpoint to the
    journey's next touchpoint (or ``as_of``), within made .. kept (or ``as_of``)."""
    paused = np.full(len(status), -1, I64)
    status_p = status.copy()
    rows = np.flatnonzero(pr["pause_at"] >= 0)
    if not len(rows):
        return paused, status_p
    # only the journeys with a pending touchpoint: sorted by journey, then time (stable)
    pend_j = np.unique(tp["journey"][tp["kind"] == PENDING])
    sub = np.flatnonzero(np.isin(tp["journey"], pend_j))
    j = tp["journey"][sub]
    order = sub[np.argsort(j, kind="stable")]
    j, at, kd = tp["journey"][order], tp["at"][order], tp["kind"][order]
    nxt = np.full(len(order), -1, I64)
    same = j[1:] == j[:-1]
    nxt[:-1][same] = at[1:][same]
    pend = np.flatnonzero(kd == PENDING)  # one per journey, in journey order
    pj, pa_, pn = j[pend], at[pend], nxt[pend]
    pos = np.minimum(np.searchsorted(pj, pr["journey"][rows]), max(len(pj) - 1, 0))
    hit = (len(pj) > 0) & (pj[pos] == pr["journey"][rows]) & (pa_[pos] == pr["pause_at"][rows])
    start = pr["pause_at"][rows]
    stop = np.where(pn[pos] >= 0, pn[pos], AS_OF)
    end = np.where(kept[rows] >= 0, kept[rows], AS_OF)
    s = np.maximum(start, pr["made"][rows])
    e = np.minimum(stop, end)
    counted = hit & (start < pr["due"][rows])
    secs = np.where(counted, np.maximum(0, e - s), 0)
    paused[rows] = secs // SECOND
    due_p = pr["due"][rows] + secs
    k = kept[rows]
    st = np.where(
        cancelled[rows] >= 0,
        3,
        np.where(k >= 0, np.where(k > due_p, 1, 0), np.where(due_p > AS_OF, 4, 2)),
    )
    status_p[rows] = st
    return paused * SECOND, status_p


def _owed_truth(
    b: Block,
    pr: dict[str, np.ndarray],
    kept: np.ndarray,
    broken: np.ndarray,
    pr_ids: pa.Array,
    ac: dict[str, np.ndarray],
    ac_ids: pa.Array,
) -> None:
    """Credits the world's compensation rules owe, per journey: broken promises of kinds
    with a rule, minus the credit/compensation actions paid on the journey."""
    import pandas as pd

    from sawubona.demo.promises import owed

    amount = owed(b.compensation, pr["kind"], pr["due"], kept)
    c = np.flatnonzero(broken & (amount > 0))
    claims = pd.DataFrame(
        {
            "cust": pr["cust"][c],
            "journey": pr["journey"][c],
            "claim": np.asarray(pr_ids.take(pa.array(c)).to_pylist(), dtype=object),
            "owed": amount[c],
        }
    )
    paid_kinds = [ACTION_KINDS.index("credit"), ACTION_KINDS.index("compensation")]
    pay = np.flatnonzero(np.isin(ac["kind"], paid_kinds) & (ac["journey"] >= 0))
    pays = pd.DataFrame(
        {
            "journey": ac["journey"][pay],
            "amount": np.round(ac["amount"][pay], 2),
            "id": np.asarray(ac_ids.take(pa.array(pay)).to_pylist(), dtype=object),
        }
    )
    g = claims.groupby("journey", sort=True).agg(
        cust=("cust", "first"), claim_ids=("claim", ",".join), owed=("owed", "sum")
    )
    p = (
        pays[pays["journey"].isin(g.index)]
        .groupby("journey")
        .agg(paid=("amount", "sum"), paid_ids=("id", ",".join))
    )
    g = g.join(p)
    g["paid"] = g["paid"].fillna(0.0)
    g["paid_ids"] = g["paid_ids"].fillna("")
    still = np.round(np.maximum(0.0, g["owed"].to_numpy() - g["paid"].to_numpy()), 2)
    b.add_truth(
        "owed_credits",
        pa.table(
            {
                "customer_id": labels(b.cust.ids, g["cust"].to_numpy(I64)),
                "journey_id": event_ids("journeys", g.index.to_numpy(I64)),
                "claim_ids": pa.array(g["claim_ids"].tolist(), pa.string()),
                "owed": pa.array(np.round(g["owed"].to_numpy(float), 2)),
                "paid": pa.array(np.round(g["paid"].to_numpy(float), 2)),
                "still_owed": pa.array(still),
                "paid_ids": pa.array(g["paid_ids"].tolist(), pa.string()),
            }
        ),
    )
