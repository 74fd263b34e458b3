"""The shop world: an online shop with orders, deliveries, returns and support.

Customers (80% joined during the history) order (kind ``order``) following the
BG/NBD process of ``retail.py``; each order wants 1-4 distinct items from a
catalogue of 480 with a Zipf-like popularity, some out of stock. Every order
that ships carries a ``delivery`` promise (made by the system, team
``delivery``): most arrive on time, some late (with a delay notice, and a
make-good for about half), a few never (lost), some are cancelled. Some
deliveries are returned: a ``refund`` promise and a refund. Late, lost and some
other orders lead to support cases (kind ``support``) handled by agents.
Delivered orders get CSAT surveys (worse when late or short), support cases NPS
surveys; a relationship NPS goes to a sample now and then; marketing e-mails go
out by campaign.

Regulars are replenishment buyers (coffee beans, pet food...) whose core item is
in most of their orders; the drifting ones stop after their core item was out of
stock (or for no visible reason).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.campaigns import SHOP_CAMPAIGNS, marketing
from sawubona.demo.catalogues import SHOP_CATALOGUE
from sawubona.demo.common import (
    A_SYSTEM,
    ACTION,
    APP,
    AS_OF,
    CSAT,
    DAY,
    EMAIL,
    FAILED,
    HOUR,
    I64,
    MINUTE,
    NOTIFICATION,
    NPS,
    OPEN,
    PROMISE,
    SYSTEM_AGENT,
    WEB,
    date_text,
    event_ids,
    journey_table,
    labels,
    money_text,
    to_seconds,
    uniform_time,
)
from sawubona.demo.contacts import Cases, Topic, play_cases
from sawubona.demo.people import Customers, make_customers
from sawubona.demo.promises import make_promises
from sawubona.demo.retail import (
    Buying,
    Log,
    buy,
    items_table,
    missing_item,
    wanted_text,
)
from sawubona.demo.surveys import Surveyed, relationship_surveys, survey_journeys
from sawubona.demo.text import Template

NAME = "shop"
TABLES = ("customers", "journeys", "journey_items", "touchpoints", "promises", "surveys", "actions")
TEAMS = ("orders", "returns", "care", "delivery")
N_AGENT_TEAMS = 3
#: the compensation the shop declares for broken promises (giving lens's rule format)
COMPENSATION_RULES: dict[str, dict[str, float]] = {
    "delivery": {"per_day_late": 3.0, "max": 15.0},
    "refund": {"per_day_late": 2.0, "max": 20.0},
}
CUSTOMERS_PER_AGENT = 1500
KINDS = ("order", "support")


BUYING = Buying(
    r=0.7,
    alpha=80.0,
    a=0.9,
    b=5.0,
    regular_share=0.05,
    regular_rate=(0.04, 0.08),
    stop_days=(150, 330),
    core_share_regular=0.8,
    core_share_other=0.35,
    max_items=3,
    hours=(1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 2, 3, 4, 5, 5, 6, 5, 5, 5, 5, 5, 6, 7, 8, 7, 5, 2),
)
TOPICS = (
    Topic(
        "where_is_my_order",
        "find out where my order is",
        "your delivery",
        "My order still hasn't arrived",
        "reply",
        0.15,
        "parcel not traced",
    ),
    Topic(
        "damaged",
        "get a damaged item replaced or refunded",
        "the damaged item",
        "One of the items arrived broken",
        "refund",
        0.12,
        "claim refused: no photo",
    ),
    Topic(
        "wrong_item",
        "get the item I ordered",
        "the wrong item",
        "You sent me the wrong item",
        "refund",
        0.1,
        "replacement out of stock",
    ),
    Topic(
        "return_help",
        "return an item",
        "your return",
        "How do I return something?",
        "reply",
        0.05,
        "return window closed",
    ),
    Topic(
        "payment",
        "get a double charge refunded",
        "the payment",
        "I was charged twice",
        "refund",
        0.08,
        "charge upheld",
    ),
)
_TOPIC_P = (0.0, 0.3, 0.25, 0.3, 0.15)  # where_is_my_order comes from late orders

ORDER_CONFIRMED = Template(
    "order_confirmed",
    "Hi {first}, thanks for your order {ref} ({amount}). We'll deliver it by {date}.",
    0.5,
)
ORDER_DISPATCHED = Template(
    "order_dispatched", "Good news, {first}! Order {ref} is on its way. Track it in the app.", 0.5
)
ORDER_DELAYED = Template(
    "order_delayed", "Hi {first}, order {ref} is running late. It should now arrive by {date}.", 0.3
)
ORDER_STOCKOUT = Template(
    "order_stockout",
    "Sorry {first}, {item} in order {ref} is out of stock. You have not been charged for it.",
    0.3,
)


def static_tables() -> dict[str, pa.Table]:
    return {}


def facts() -> dict[str, object]:
    """World facts for ``truth.json``."""
    return {
        "buying": {
            "model": "BG/NBD",
            "r": BUYING.r,
            "alpha_days": BUYING.alpha,
            "a": BUYING.a,
            "b": BUYING.b,
            "regular_share": BUYING.regular_share,
            "regular_rate_per_day": list(BUYING.regular_rate),
            "drift_stop_days_before_as_of": list(BUYING.stop_days),
        },
        "catalogue_items": len(SHOP_CATALOGUE.item_ids),
        "delivery_promise": "made by the system 1 minute after the order, due in 2-5 days; "
        "86% on time, 8% late, 2% never, 4% cancelled (drift_unknown "
        "regulars' last orders always on time)",
        "support_topics": {t.key: t.desired for t in TOPICS},
    }


def customers(rng: np.random.Generator, offset: int, n: int, width: int) -> Customers:
    return make_customers(
        rng, offset, n, width, share_before=0.2, years_before=3.0, segment_p=(0.88, 0.09, 0.03)
    )


def block(b: Block, base: int) -> tuple[dict[str, pa.Table], int]:
    """Generate one block; returns its own tables and the number of journeys used."""
    rng, cu = b.rng, b.cust
    log = buy(b, SHOP_CATALOGUE, BUYING, base)
    m = log.n
    ref = log.ids()
    first = b.first(log.cust)
    miss = missing_item(log)
    n_items = np.bincount(log.item_journey, minlength=m)
    n_missing = np.bincount(log.item_journey, weights=~log.fulfilled * 1.0, minlength=m)
    all_missing = n_missing >= n_items
    ship = np.flatnonzero(~all_missing)
    chan = np.where(rng.random(m) < 0.45, APP, WEB)
    st = make_promises(
        b,
        log.cust[ship],
        log.number[ship],
        np.full(len(ship), PROMISE["delivery"]),
        log.at[ship] + MINUTE,
        np.full(len(ship), SYSTEM_AGENT),
        chan[ship],
        first.take(pa.array(ship)),
        ref.take(pa.array(ship)),
        p_kept=0.86,
        p_late=0.08,
        p_unkept=0.02,
        team=np.full(len(ship), 3),
        on_time=log.clean[ship],
    )
    due = np.full(m, -1, I64)
    kept = np.full(m, -1, I64)
    canc = np.full(m, -1, I64)
    made = np.zeros(m, bool)
    due[ship], kept[ship], canc[ship], made[ship] = st.due, st.kept, st.cancelled, st.made
    late = (kept > due) & made
    lost = made & (kept < 0) & (canc < 0)
    # outcome of each order
    ended = np.where(kept >= 0, kept, -1)
    outcome = log.outcome.copy()
    reason = log.reason
    extra_reason = np.full(m, -1, I64)
    ended = np.where(all_missing, log.at + 2 * HOUR, ended)
    ended = np.where(canc >= 0, canc, ended)
    extra_reason[canc >= 0] = 0
    closed_lost = lost & (due + 10 * DAY <= AS_OF)
    ended = np.where(closed_lost, due + 10 * DAY, ended)
    extra_reason[closed_lost] = 1
    outcome = np.where(extra_reason >= 0, FAILED, outcome)
    reason = pc.coalesce(labels(("cancelled by customer", "lost in transit"), extra_reason), reason)
    pending = ~all_missing & (ended < 0)
    outcome = np.where(pending, OPEN, outcome)
    reason = pc.if_else(pa.array(pending), pa.nulls(m, pa.string()), reason)

    # notifications
    date_due = np.where(due > 0, due, log.at + 3 * DAY)
    _notify(
        b,
        ORDER_CONFIRMED,
        np.arange(m),
        log,
        log.at + MINUTE,
        chan,
        {"first": first, "ref": ref, "amount": money_text(log.value), "date": date_text(date_due)},
    )
    r = np.flatnonzero(miss >= 0)
    _notify(
        b,
        ORDER_STOCKOUT,
        r,
        log,
        log.at[r] + 20 * MINUTE,
        chan[r],
        {
            "first": first.take(pa.array(r)),
            "ref": ref.take(pa.array(r)),
            "item": labels(SHOP_CATALOGUE.display, miss[r]),
        },
    )
    r = np.flatnonzero((kept >= 0) & (rng.random(m) < 0.6))
    disp = np.maximum(kept[r] - uniform_time(rng, 6 * HOUR, 18 * HOUR, len(r)), log.at[r] + HOUR)
    _notify(
        b,
        ORDER_DISPATCHED,
        r,
        log,
        disp,
        chan[r],
        {"first": first.take(pa.array(r)), "ref": ref.take(pa.array(r))},
    )
    r = np.flatnonzero((late | lost) & (due - 2 * HOUR <= AS_OF))
    new_date = np.where(kept[r] > 0, kept[r], due[r] + 3 * DAY)
    _notify(
        b,
        ORDER_DELAYED,
        r,
        log,
        due[r] - 2 * HOUR,
        chan[r],
        {
            "first": first.take(pa.array(r)),
            "ref": ref.take(pa.array(r)),
            "date": date_text(new_date),
        },
    )

    # returns: a refund promise and the refund
    ret = np.flatnonzero((kept >= 0) & ~log.clean & (rng.random(m) < 0.05))
    r_at = kept[ret] + uniform_time(rng, 3 * DAY, 20 * DAY, len(ret))
    ok = r_at < np.minimum(log.alive_to[log.cust[ret]] + 30 * DAY, AS_OF)
    ret, r_at = ret[ok], r_at[ok]
    rs = make_promises(
        b,
        log.cust[ret],
        log.number[ret],
        np.full(len(ret), PROMISE["refund"]),
        r_at,
        np.full(len(ret), SYSTEM_AGENT),
        np.full(len(ret), EMAIL),
        first.take(pa.array(ret)),
        ref.take(pa.array(ret)),
        p_kept=0.85,
        p_late=0.1,
        p_unkept=0.03,
        team=np.full(len(ret), 1),
    )
    paid = np.flatnonzero(rs.kept >= 0)
    b.actions.add(
        len(paid),
        cust=log.cust[ret[paid]],
        at=rs.kept[paid],
        kind=ACTION["refund"],
        amount=np.round(log.value[ret[paid]] * rng.uniform(0.3, 1.0, len(paid)), 2),
        initiated=1,
        journey=log.number[ret[paid]],
        purpose="return_refund",
    )
    xs = np.flatnonzero(rng.random(m) < 0.03)
    b.actions.add(
        len(xs),
        cust=log.cust[xs],
        at=log.at[xs] + DAY,
        kind=ACTION["cross_sell"],
        initiated=0,
        journey=log.number[xs],
        purpose="cross_sell",
    )

    # support cases about orders
    sup, used = _support(b, log, base + m, ref, late | lost, due, ended)
    # surveys of delivered orders (CSAT, by the system)
    deliv = np.flatnonzero(kept >= 0)
    pen = (-2.5 * late - 2.0 * (miss >= 0))[deliv]
    survey_journeys(
        b,
        Surveyed(
            journey=log.number[deliv],
            cust=log.cust[deliv],
            ended=kept[deliv],
            outcome=outcome[deliv],
            agent=np.full(len(deliv), -1),
            begged=np.zeros(len(deliv), bool),
            penalty=pen,
            effort=np.zeros(len(deliv)),
            ref=ref.take(pa.array(deliv)),
            instrument=np.full(len(deliv), CSAT),
            p_system=0.2,
            p_audit=0.0,
        ),
    )
    waves = [
        int(np.datetime64(d, "us").astype(I64))
        for d in ("2023-12-04", "2024-06-03", "2024-12-02", "2025-06-02")
    ]
    relationship_surveys(b, cu.joined, log.alive_to + 60 * DAY, waves, 0.06, NPS, np.zeros(cu.n))
    marketing(b, cu.joined, np.full(cu.n, AS_OF + DAY), SHOP_CAMPAIGNS)

    journeys = journey_table(
        log.number,
        cu.ids,
        log.cust,
        KINDS,
        np.zeros(m, I64),
        log.at,
        ended,
        wanted_text(log, SHOP_CATALOGUE, "receive "),
        outcome,
        reason,
        log.value,
    )
    if sup is not None:
        journeys = pa.concat_tables([journeys, sup])
    return {"journeys": journeys, "journey_items": items_table(log, SHOP_CATALOGUE)}, m + used


def _notify(
    b: Block,
    tpl: Template,
    rows: np.ndarray,
    log: Log,
    at: np.ndarray,
    chan: np.ndarray,
    slots: dict[str, pa.Array],
) -> None:
    b.send_templates(
        [tpl],
        np.zeros(len(rows), I64),
        slots,
        cust=log.cust[rows],
        journey=log.number[rows],
        at=at,
        channel=np.where(chan == APP, APP, EMAIL),
        actor=A_SYSTEM,
        kind=NOTIFICATION,
    )


def _support(
    b: Block,
    log: Log,
    base: int,
    ref: pa.Array,
    trouble: np.ndarray,
    due: np.ndarray,
    ended: np.ndarray,
) -> tuple[pa.Table | None, int]:
    """Support cases about orders: late or lost ones often, others now and then."""
    rng = b.rng
    m = log.n
    wismo = trouble & (rng.random(m) < 0.5)
    other = ~trouble & ~log.clean & (rng.random(m) < 0.06)
    at_w = due + uniform_time(rng, 6 * HOUR, 3 * DAY, m)
    at_o = np.where(ended > 0, ended, log.at) + uniform_time(rng, DAY, 10 * DAY, m)
    at = np.where(wismo, at_w, at_o)
    topic = np.where(
        wismo,
        0,
        1
        + np.searchsorted(np.cumsum(_TOPIC_P[1:]) / sum(_TOPIC_P[1:]), rng.random(m), side="right"),
    )
    limit = np.where(log.dead[log.cust], log.alive_to[log.cust], AS_OF - HOUR)
    rows = np.flatnonzero((wismo | other) & (at < limit))
    rows = rows[np.argsort(at[rows], kind="stable")]
    k = len(rows)
    if k == 0:
        return None, 0
    number = base + np.arange(k, dtype=I64)
    jref = event_ids("journeys", number)
    cases = Cases(
        journey=number,
        cust=log.cust[rows],
        start=to_seconds(at[rows]),
        topic=topic[rows],
        ref=jref,
        detail=pc.binary_join_element_wise("order ", ref.take(pa.array(rows)), ""),
        ignored=rng.random(k) < 0.03,
    )
    res = play_cases(b, TOPICS, cases, (0.5, 0.15, 0.25, 0.08, 0.0, 0.02))
    pen = (
        -3.5 * (res.outcome == FAILED)
        - 1.5 * res.broken
        - 0.8 * res.transfer
        - 1.2 * res.repeat
        - 1.0 * wismo[rows]
    )
    effort = 1.0 * res.transfer + 1.3 * res.repeat + 0.8 * res.switch
    closed = np.flatnonzero(res.ended >= 0)
    survey_journeys(
        b,
        Surveyed(
            journey=number[closed],
            cust=cases.cust[closed],
            ended=res.ended[closed],
            outcome=res.outcome[closed],
            agent=res.agent[closed],
            begged=res.begged[closed],
            penalty=pen[closed],
            effort=effort[closed],
            ref=jref.take(pa.array(closed)),
            instrument=np.full(len(closed), NPS),
            p_system=0.25,
            p_audit=0.05,
        ),
    )
    table = journey_table(
        number,
        b.cust.ids,
        cases.cust,
        KINDS,
        np.ones(k, I64),
        cases.start,
        res.ended,
        labels([t.desired for t in TOPICS], cases.topic),
        res.outcome,
        res.reason,
        np.full(k, np.nan),
    )
    return table, k
