"""The telco's journeys: support cases (bills, signal, data, roaming, handsets,
SIMs, cancellations) at a gamma-distributed personal rate over each customer's
live span, cancellations shortly before churn, plan changes (a request, an
agent's answer, a promise kept when the new plan starts, a confirmation) and
refused plan changes; then their surveys."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.common import (
    A_CUSTOMER,
    A_SYSTEM,
    ACHIEVED,
    ACTION,
    AS_OF,
    DAY,
    EMAIL,
    FAILED,
    HOUR,
    I64,
    INBOUND,
    NOTIFICATION,
    NPS,
    PHONE,
    PROMISE,
    choice_p,
    journey_table,
    labels,
    money_text,
    to_seconds,
    uniform_time,
)
from sawubona.demo.common import INQUIRY as K_INQUIRY
from sawubona.demo.contacts import Cases, Topic, play_cases
from sawubona.demo.surveys import Surveyed, survey_journeys
from sawubona.demo.tariffs import N_OPEN, PLANS
from sawubona.demo.text import REPLY_CANNED, Template, inquiry_text

KINDS = ("support", "plan_change")
TOPICS = (
    Topic(
        "bill_query",
        "get a wrong charge on the bill corrected",
        "a charge on your bill",
        "There's a charge on my bill I don't recognise",
        "refund",
        0.10,
        "charge upheld",
    ),
    Topic(
        "no_signal",
        "get mobile signal working at home",
        "the signal at your address",
        "I've had no signal at home for days",
        "fix",
        0.20,
        "coverage gap, no fix available",
    ),
    Topic(
        "slow_data",
        "get mobile data working at normal speed",
        "your slow data",
        "My mobile data is painfully slow",
        "fix",
        0.15,
        "congestion not resolved",
    ),
    Topic(
        "roaming_charge",
        "get an unexpected roaming charge removed",
        "the roaming charge",
        "I was charged for roaming in a country that should be included",
        "refund",
        0.15,
        "charge upheld",
    ),
    Topic(
        "addon_help",
        "understand what an add-on includes",
        "your add-on",
        "What does my add-on actually include?",
        "reply",
        0.05,
        "question not answered",
    ),
    Topic(
        "phone_fault",
        "get a faulty handset repaired",
        "your handset repair",
        "My phone keeps restarting",
        "callback",
        0.20,
        "repair refused: out of warranty",
    ),
    Topic(
        "sim_swap",
        "get a replacement SIM working",
        "your replacement SIM",
        "My new SIM still isn't working",
        "fix",
        0.08,
        "SIM not activated",
    ),
    Topic(
        "cancel",
        "leave the network",
        "your cancellation",
        "I'd like to cancel my contract",
        None,
        0.05,
        "cancellation blocked",
    ),
)


_TOPIC_P = (0.26, 0.14, 0.14, 0.08, 0.08, 0.1, 0.08, 0.02)


CANCEL = 7


PLAN_CHANGE_DONE = Template(
    "plan_change_done",
    "Hi {first}, good news: your plan is now {plan}. Your new monthly price is {amount}.",
    0.4,
)


def make_journeys(
    b: Block,
    base: int,
    start: np.ndarray,
    end_live: np.ndarray,
    churned: np.ndarray,
    churn_at: np.ndarray,
    changed: np.ndarray,
    change_at: np.ndarray,
    plan: np.ndarray,
    old_plan: np.ndarray,
    fee: np.ndarray,
) -> tuple[pa.Table, int]:
    rng, cu = b.rng, b.cust
    n = cu.n
    # support cases: gamma-Poisson rate per customer over their live span
    lam = rng.gamma(0.9, 1.5 / 0.9, n) / (365 * DAY)
    span = np.maximum(end_live - start, 0)
    cnt = rng.poisson(lam * span)
    sc = np.repeat(np.arange(n), cnt)
    st = start[sc] + (rng.random(len(sc)) * span[sc]).astype(I64)
    st = (st // DAY) * DAY + rng.integers(8 * 3600, 21 * 3600, len(sc)) * 1_000_000
    st = np.clip(st, start[sc], end_live[sc] - 60_000_000)
    topic = choice_p(rng, len(sc), _TOPIC_P)
    # cancellations shortly before churn
    cc = np.flatnonzero(churned & (rng.random(n) < 0.5))
    c_at = churn_at[cc] - uniform_time(rng, DAY, 10 * DAY, len(cc))
    okc = c_at > start[cc]
    cc, c_at = cc[okc], c_at[okc]
    # plan changes (achieved) and refused ones
    pc_c = np.flatnonzero(changed)
    pc_at = change_at[pc_c] - uniform_time(rng, 2 * HOUR, 48 * HOUR, len(pc_c))
    refused = np.flatnonzero(~changed & (rng.random(n) < 0.015) & (end_live - start > 10 * DAY))
    rf_at = start[refused] + (
        rng.random(len(refused)) * (end_live[refused] - start[refused] - 5 * DAY)
    ).astype(I64)
    jc = np.r_[sc, cc, pc_c, refused]
    js = to_seconds(np.r_[st, c_at, pc_at, rf_at])
    kind = np.r_[np.zeros(len(sc) + len(cc), I64), np.ones(len(pc_c) + len(refused), I64)]
    jt = np.r_[topic, np.full(len(cc), CANCEL), np.full(len(pc_c) + len(refused), -1)]
    is_ok = np.r_[
        np.zeros(len(sc) + len(cc), bool), np.ones(len(pc_c), bool), np.zeros(len(refused), bool)
    ]
    order = np.lexsort((jc, js))
    jc, js, kind, jt, is_ok = jc[order], js[order], kind[order], jt[order], is_ok[order]
    m = len(jc)
    number = base + np.arange(m, dtype=I64)
    from sawubona.demo.common import event_ids

    ref = event_ids("journeys", number)
    ended = np.full(m, -1, I64)
    outcome = np.full(m, ACHIEVED, I64)
    reason = pa.nulls(m, pa.string())
    desired = pa.nulls(m, pa.string())
    value = np.full(m, np.nan)
    # support
    s = np.flatnonzero(kind == 0)
    ignored = rng.random(len(s)) < 0.03
    cases = Cases(
        journey=number[s],
        cust=jc[s],
        start=js[s],
        topic=jt[s],
        ref=ref.take(pa.array(s)),
        detail=pc.binary_join_element_wise("account ", labels(cu.ids, jc[s]), ""),
        ignored=ignored,
    )
    res = play_cases(b, TOPICS, cases, (0.35, 0.3, 0.2, 0.1, 0.0, 0.05))
    ended[s], outcome[s] = res.ended, res.outcome
    last_agent = np.full(m, -1, I64)
    last_agent[s] = res.agent
    # retention offers and upsell pitches on support cases
    ro = s[(jt[s] == CANCEL) & ~ignored & (rng.random(len(s)) < 0.4)]
    b.actions.add(
        len(ro),
        cust=jc[ro],
        at=js[ro] + uniform_time(rng, 5 * 60e6, 3600e6, len(ro)),
        kind=ACTION["retention_offer"],
        amount=5.0,
        initiated=0,
        agent=np.maximum(last_agent[ro], -1),
        journey=number[ro],
        purpose="retention_offer",
    )
    up = s[~ignored & (rng.random(len(s)) < 0.04)]
    b.actions.add(
        len(up),
        cust=jc[up],
        at=js[up] + uniform_time(rng, 5 * 60e6, 3600e6, len(up)),
        kind=ACTION["upsell"],
        amount=5.0,
        initiated=0,
        agent=np.maximum(last_agent[up], -1),
        journey=number[up],
        purpose="upsell",
    )
    # plan changes
    p = np.flatnonzero(kind == 1)
    _plan_changes(
        b, p, jc, js, number, ref, is_ok, plan, old_plan, change_at, fee, ended, outcome, last_agent
    )
    # outcome reasons and desired outcomes
    names = [pl.name for pl in PLANS]
    new_name = labels(names, np.where(is_ok, plan[jc], (plan[jc] + 1) % N_OPEN))
    desired = pc.if_else(
        pa.array(kind == 1),
        pc.binary_join_element_wise("move to the ", new_name, " plan", ""),
        labels([t.desired for t in TOPICS], np.maximum(jt, 0)),
    )
    r_all = np.full(m, -1, I64)
    r_all[p] = np.where(outcome[p] == FAILED, 0, -1)
    reason = pc.coalesce(
        _scatter(res.reason, s, m), labels(("not eligible while in contract",), r_all)
    )
    value[p] = np.where(is_ok[p], fee[plan[jc[p]]], np.nan)
    # surveys
    closed = np.flatnonzero(ended >= 0)
    flags = np.zeros((m, 4), bool)
    flags[s] = np.column_stack([res.transfer, res.repeat, res.switch, res.broken])
    pen = -3.5 * (outcome == FAILED) - 1.5 * flags[:, 3] - 0.8 * flags[:, 0] - 1.2 * flags[:, 1]
    effort = 1.0 * flags[:, 0] + 1.3 * flags[:, 1] + 0.8 * flags[:, 2]
    begged = np.zeros(m, bool)
    begged[s] = res.begged
    instr = np.where(rng.random(m) < 0.25, 2, NPS)
    survey_journeys(
        b,
        Surveyed(
            journey=number[closed],
            cust=jc[closed],
            ended=ended[closed],
            outcome=outcome[closed],
            agent=last_agent[closed],
            begged=begged[closed],
            penalty=pen[closed],
            effort=effort[closed],
            ref=ref.take(pa.array(closed)),
            instrument=instr[closed],
            p_system=0.22,
            p_audit=0.05,
        ),
    )
    table = journey_table(
        number, cu.ids, jc, KINDS, kind, js, ended, desired, outcome, reason, value
    )
    return table, m


def _scatter(values: pa.Array, rows: np.ndarray, m: int) -> pa.Array:
    """A length-``m`` array with ``values`` at ``rows`` and null elsewhere."""
    pos = np.full(m, -1, I64)
    pos[rows] = np.arange(len(rows))
    return values.take(pa.array(np.maximum(pos, 0), mask=pos < 0))


def _plan_changes(
    b: Block,
    p: np.ndarray,
    jc: np.ndarray,
    js: np.ndarray,
    number: np.ndarray,
    ref: pa.Array,
    is_ok: np.ndarray,
    plan: np.ndarray,
    old_plan: np.ndarray,
    change_at: np.ndarray,
    fee: np.ndarray,
    ended: np.ndarray,
    outcome: np.ndarray,
    last_agent: np.ndarray,
) -> None:
    """Plan change journeys: a request, an agent's answer, a promise, a confirmation."""
    rng, ag = b.rng, b.agents
    k = len(p)
    cust = jc[p]
    ch = np.where((rng.random(k) < 0.6) & ~b.neglected[cust], PHONE, EMAIL)
    agent = ag.pick(rng, k)
    idx = pa.array(p)
    want = np.where(is_ok[p], plan[cust], (plan[cust] + 1) % N_OPEN)
    name = labels([pl.name for pl in PLANS], want)
    problem = pc.binary_join_element_wise("I'd like to move to the ", name, " plan", "")
    msg = pc.if_else(
        pa.array(ch == PHONE), pa.nulls(k, pa.string()), inquiry_text(rng, problem, ref.take(idx))
    )
    b.tp.add(
        k,
        cust=cust,
        journey=number[p],
        at=js[p],
        channel=ch,
        direction=INBOUND,
        actor=A_CUSTOMER,
        kind=K_INQUIRY,
        text=msg,
    )
    reply_at = js[p] + uniform_time(rng, 2 * 60e6, 30 * 60e6, k)
    templated = b.neglected[cust] | (rng.random(k) < ag.p_template[agent])
    txt_rows = ch != PHONE
    w = np.flatnonzero(txt_rows)
    from sawubona.demo.common import A_PERSON
    from sawubona.demo.common import REPLY as K_REPLY

    b.tp.add(
        int((~txt_rows).sum()),
        cust=cust[~txt_rows],
        journey=number[p][~txt_rows],
        at=reply_at[~txt_rows],
        channel=PHONE,
        actor=A_PERSON,
        agent=agent[~txt_rows],
        kind=K_REPLY,
    )
    topic = pc.binary_join_element_wise("your move to ", name, "")
    slots = {
        "first": b.first(cust[w]),
        "topic": topic.take(pa.array(w)),
        "ref": ref.take(pa.array(p[w])),
        "agent": b.agent_first(agent[w]),
    }
    b.send_mixed(
        cust[w],
        agent[w],
        templated[w],
        REPLY_CANNED,
        slots,
        topic.take(pa.array(w)),
        reply_at[w] + DAY,
        journey=number[p][w],
        at=reply_at[w],
        channel=ch[w],
        kind=K_REPLY,
    )
    ok = is_ok[p]
    o = np.flatnonzero(ok)
    # the promise to change the plan is kept when the new subscription starts
    made = reply_at[o]
    due = made + 72 * HOUR
    kept = np.maximum(change_at[cust[o]], made + 60_000_000)
    b.promises.add(
        len(o),
        cust=cust[o],
        journey=number[p][o],
        kind=PROMISE["plan_change"],
        made=made,
        due=due,
        made_by=agent[o],
        team=ag.team[agent[o]],
        channel=ch[o],
        kept=np.where(kept <= AS_OF, kept, -1),
    )
    b.send_templates(
        [PLAN_CHANGE_DONE],
        np.zeros(len(o), I64),
        {
            "first": b.first(cust[o]),
            "plan": name.take(pa.array(o)),
            "amount": money_text(fee[plan[cust[o]]]),
        },
        cust=cust[o],
        journey=number[p][o],
        at=kept + 60_000_000,
        channel=EMAIL,
        actor=A_SYSTEM,
        kind=NOTIFICATION,
    )
    done = reply_at.copy()
    done[o] = kept + 60_000_000
    ended[p] = done
    outcome[p] = np.where(ok, ACHIEVED, FAILED)
    last_agent[p] = agent
