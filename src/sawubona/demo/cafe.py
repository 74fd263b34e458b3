"""The café world: three coffee shops, their regulars, baristas and an ordering app.

Customers visit (kind ``visit``) following the BG/NBD process of ``retail.py``,
mostly in the morning; a visit wants one to three items from an 18-item menu
(drinks can be someone's core item: the flat white, the orange juice...).
Orange and green juice and pastries run out now and then. Each customer has a
home site; every visit is served by a barista of that site (an agent).

A quarter of visits are app pre-orders: an ``order_ready`` promise (ready in
5-9 minutes, sometimes late, rarely forgotten), a "ready" notification, and for
an item out of stock an apology notice and a refund. In the shop, some
customers complain about a stock-out and a barista answers in person
(``spoken``). App messages to the café become support cases (kind ``support``).
Baristas send a thank-you in the app after some visits; the begging ones ask
for a 10 there. App orders get CSAT surveys, baristas trigger NPS surveys, and
an audit sample is surveyed too. Regulars get a free drink now and then (a
``gift``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.campaigns import CAFE_CAMPAIGNS, marketing
from sawubona.demo.catalogues import CAFE_MENU, MENU
from sawubona.demo.common import (
    A_CUSTOMER,
    A_PERSON,
    A_SYSTEM,
    ACTION,
    APP,
    AS_OF,
    CSAT,
    DAY,
    FAILED,
    I64,
    INBOUND,
    MINUTE,
    NOTIFICATION,
    NPS,
    PROMISE,
    STORE,
    SYSTEM_AGENT,
    date_text,
    event_ids,
    journey_table,
    labels,
    money_text,
    to_seconds,
    uniform_time,
)
from sawubona.demo.common import APOLOGY as K_APOLOGY
from sawubona.demo.common import COMPLAINT as K_COMPLAINT
from sawubona.demo.common import THANKS as K_THANKS
from sawubona.demo.contacts import Cases, Topic, play_cases
from sawubona.demo.people import BEGGING, Customers, make_customers
from sawubona.demo.promises import make_promises
from sawubona.demo.retail import (
    LOYAL,
    Buying,
    buy,
    first_item,
    items_table,
    missing_item,
    wanted_text,
)
from sawubona.demo.surveys import Surveyed, survey_journeys
from sawubona.demo.text import BEGGING_SENTENCES, Template, pick

NAME = "cafe"
TABLES = ("customers", "journeys", "journey_items", "touchpoints", "promises", "surveys", "actions")
TEAMS = ("soho", "shoreditch", "leeds")
N_AGENT_TEAMS = 3
#: the compensation the café declares for broken promises (giving lens's rule format)
COMPENSATION_RULES: dict[str, dict[str, float]] = {"order_ready": {"amount": 3.0}}
CUSTOMERS_PER_AGENT = 400
SITES = 3
KINDS = ("visit", "support")

BUYING = Buying(
    r=0.6,
    alpha=60.0,
    a=1.0,
    b=5.0,
    regular_share=0.04,
    regular_rate=(0.08, 0.25),
    stop_days=(90, 330),
    core_share_regular=0.85,
    core_share_other=0.5,
    max_items=2,
    hours=(0, 0, 0, 0, 0, 0, 1, 6, 10, 8, 5, 4, 5, 4, 3, 3, 3, 2, 1, 0.5, 0, 0, 0, 0),
)
TOPICS = (
    Topic(
        "wrong_order",
        "get the order I paid for",
        "your app order",
        "My app order was wrong",
        "refund",
        0.1,
        "refund refused",
    ),
    Topic(
        "stockout",
        "tell the café the juice keeps running out",
        "the juice running out",
        "You were out of orange juice again",
        None,
        0.3,
        "no change promised",
    ),
    Topic(
        "loyalty_points",
        "get missing loyalty stamps added",
        "your loyalty stamps",
        "My stamps didn't register",
        "fix",
        0.1,
        "stamps not found",
    ),
    Topic(
        "allergens",
        "find out what is in a product",
        "your allergen question",
        "Does the banana bread contain nuts?",
        "reply",
        0.05,
        "no answer given",
    ),
    Topic(
        "app_payment",
        "get a failed app payment sorted",
        "the app payment",
        "The app charged me but the order failed",
        "refund",
        0.08,
        "charge upheld",
    ),
)
_TOPIC_P = (0.25, 0.2, 0.25, 0.1, 0.2)

ORDER_READY = Template("order_ready", "{first}, your {item} is ready at the counter!", 0.6)
APP_STOCKOUT = Template(
    "app_stockout",
    "Sorry {first}, we've run out of {item} today. We've refunded {amount} to your card.",
    0.4,
)
THANKS_CANNED = (
    Template("thanks_visit", "Thanks for coming in today, {first}! See you soon. {agent}", 0.0),
    Template("thanks_visit_2", "Lovely to see you, {first}. Have a great day! {agent}", 0.0),
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
        "menu": {m[0]: {"price": m[1], "stockout_rate": m[3]} for m in MENU},
        "sites": list(TEAMS[:SITES]),
        "support_topics": {t.key: t.desired for t in TOPICS},
    }


def customers(rng: np.random.Generator, offset: int, n: int, width: int) -> Customers:
    return make_customers(
        rng, offset, n, width, share_before=0.25, years_before=3.0, segment_p=(0.9, 0.07, 0.03)
    )


def block(b: Block, base: int) -> tuple[dict[str, pa.Table], int]:
    """Generate one block; returns its own tables and the number of journeys used."""
    rng, cu, ag = b.rng, b.cust, b.agents
    log = buy(b, CAFE_MENU, BUYING, base)
    m = log.n
    ref = log.ids()
    first = b.first(log.cust)
    miss = missing_item(log)
    main = first_item(log)
    # baristas of the customer's home site
    site = rng.integers(0, SITES, cu.n)[log.cust]
    barista = np.zeros(m, I64)
    for s in range(SITES):
        rows = np.flatnonzero(site == s)
        barista[rows] = ag.pick(rng, len(rows), among=ag.team == s)
    app = rng.random(m) < 0.25

    # app orders: a ready promise, a notification, stock-out refunds
    a = np.flatnonzero(app & (main >= 0))
    st = make_promises(
        b,
        log.cust[a],
        log.number[a],
        np.full(len(a), PROMISE["order_ready"]),
        log.at[a],
        np.full(len(a), SYSTEM_AGENT),
        np.full(len(a), APP),
        first.take(pa.array(a)),
        ref.take(pa.array(a)),
        p_kept=0.86,
        p_late=0.11,
        p_unkept=0.02,
        p_make_good=0.5,
        team=site[a],
        on_time=log.clean[a],
    )
    ready = st.kept >= 0
    r = a[ready]
    b.send_templates(
        [ORDER_READY],
        np.zeros(len(r), I64),
        {"first": first.take(pa.array(r)), "item": labels(CAFE_MENU.display, main[r])},
        cust=log.cust[r],
        journey=log.number[r],
        at=st.kept[ready],
        channel=APP,
        actor=A_SYSTEM,
        kind=NOTIFICATION,
    )
    late = np.zeros(m, bool)
    late[a] = st.broken
    r = np.flatnonzero(app & (miss >= 0))
    price = CAFE_MENU.price[np.maximum(miss[r], 0)]
    b.send_templates(
        [APP_STOCKOUT],
        np.zeros(len(r), I64),
        {
            "first": first.take(pa.array(r)),
            "item": labels(CAFE_MENU.display, miss[r]),
            "amount": money_text(price),
        },
        cust=log.cust[r],
        journey=log.number[r],
        at=log.at[r] + 2 * MINUTE,
        channel=APP,
        actor=A_SYSTEM,
        kind=NOTIFICATION,
    )
    b.actions.add(
        len(r),
        cust=log.cust[r],
        at=log.at[r] + 3 * MINUTE,
        kind=ACTION["refund"],
        amount=price,
        initiated=0,
        journey=log.number[r],
        purpose="stockout_refund",
    )

    # in-store complaints about a stock-out, answered in person
    c = np.flatnonzero(~app & (miss >= 0) & (rng.random(m) < 0.12) & ~b.neglected[log.cust])
    item_txt = labels(CAFE_MENU.display, miss[c])
    b.tp.add(
        len(c),
        cust=log.cust[c],
        journey=log.number[c],
        at=log.at[c] + MINUTE,
        channel=STORE,
        direction=INBOUND,
        actor=A_CUSTOMER,
        kind=K_COMPLAINT,
        text=pc.binary_join_element_wise(
            "No ",
            item_txt,
            pick(rng, (" again?", " today?!", " - that's the third time.", ", seriously?"), len(c)),
            "",
        ),
    )
    b.tp.add(
        len(c),
        cust=log.cust[c],
        journey=log.number[c],
        at=log.at[c] + 2 * MINUTE,
        channel=STORE,
        actor=A_PERSON,
        agent=barista[c],
        kind=K_APOLOGY,
    )

    # thank-you messages from baristas in the app (the begging ones ask for a 10)
    beg = (ag.behaviour[barista] == BEGGING) & (rng.random(m) < 0.25)
    thanks = np.flatnonzero(beg | (rng.random(m) < 0.04))
    t_at = log.at[thanks] + uniform_time(rng, 10 * MINUTE, 3 * 3600e6, len(thanks))
    templated = b.neglected[log.cust[thanks]] | (rng.random(len(thanks)) < 0.5)
    suffix = pc.if_else(pa.array(beg[thanks]), pick(rng, BEGGING_SENTENCES, len(thanks)), "")
    slots = {"first": first.take(pa.array(thanks)), "agent": b.agent_first(barista[thanks])}
    b.send_mixed(
        log.cust[thanks],
        barista[thanks],
        templated,
        THANKS_CANNED,
        slots,
        pc.binary_join_element_wise(
            "your visit this morning (", ref.take(pa.array(thanks)), ")", ""
        ),
        t_at + DAY,
        suffix,
        journey=log.number[thanks],
        at=t_at,
        channel=APP,
        kind=K_THANKS,
        begging=beg[thanks],
    )
    ended = log.at + 5 * MINUTE
    ended[a[ready]] = np.maximum(ended[a[ready]], st.kept[ready])
    survey_after = ended.copy()
    survey_after[thanks] = np.maximum(survey_after[thanks], t_at)

    # gifts for regulars
    g = np.flatnonzero((log.role[log.cust] == LOYAL) & (rng.random(m) < 0.05))
    b.actions.add(
        len(g),
        cust=log.cust[g],
        at=log.at[g] + MINUTE,
        kind=ACTION["gift"],
        amount=3.2,
        initiated=0,
        agent=barista[g],
        journey=log.number[g],
        purpose="loyalty_gift",
    )

    # surveys: CSAT for app orders, barista NPS, audits
    pen = -2.5 * (miss >= 0) - 1.2 * late
    survey_journeys(
        b,
        Surveyed(
            journey=log.number,
            cust=log.cust,
            ended=survey_after,
            outcome=log.outcome,
            agent=barista,
            begged=beg,
            penalty=pen,
            effort=np.zeros(m),
            ref=ref,
            instrument=np.where(app, CSAT, NPS),
            p_system=0.05 + 0.15 * app,
            p_audit=0.015,
            channel=APP,
            agent_rate=0.4,
        ),
    )

    # app support cases
    sup, used = _support(
        b, log.cust, log.at, log.alive_to, log.dead, log.role, miss, base + m, log.clean
    )
    marketing(b, cu.joined, log.alive_to + 30 * DAY, CAFE_CAMPAIGNS)
    visits = journey_table(
        log.number,
        cu.ids,
        log.cust,
        KINDS,
        np.zeros(m, I64),
        log.at,
        ended,
        wanted_text(log, CAFE_MENU, "buy "),
        log.outcome,
        log.reason,
        log.value,
    )
    journeys = pa.concat_tables([visits, sup]) if sup is not None else visits
    return {"journeys": journeys, "journey_items": items_table(log, CAFE_MENU)}, m + used


def _support(
    b: Block,
    jcust: np.ndarray,
    jat: np.ndarray,
    alive_to: np.ndarray,
    dead: np.ndarray,
    role: np.ndarray,
    miss: np.ndarray,
    base: int,
    clean: np.ndarray,
) -> tuple[pa.Table | None, int]:
    """Messages to the café in the app, some about a stock-out just suffered."""
    rng = b.rng
    m = len(jcust)
    about_so = (miss >= 0) & (rng.random(m) < 0.1)
    other = rng.random(m) < 0.012
    at = jat + uniform_time(rng, 30 * MINUTE, 2 * DAY, m)
    limit = np.where(dead[jcust], alive_to[jcust], AS_OF - MINUTE)
    rows = np.flatnonzero((about_so | other) & ~clean & (at < limit))
    rows = rows[np.argsort(at[rows], kind="stable")]
    k = len(rows)
    if k == 0:
        return None, 0
    topic = np.where(
        about_so[rows],
        1,
        np.searchsorted(np.cumsum(_TOPIC_P) / sum(_TOPIC_P), rng.random(k), side="right"),
    )
    number = base + np.arange(k, dtype=I64)
    jref = event_ids("journeys", number)
    cases = Cases(
        journey=number,
        cust=jcust[rows],
        start=to_seconds(at[rows]),
        topic=topic,
        ref=jref,
        detail=pc.binary_join_element_wise("visit on ", date_text(jat[rows]), ""),
        ignored=rng.random(k) < 0.08,
    )
    res = play_cases(b, TOPICS, cases, (0.1, 0.0, 0.15, 0.15, 0.0, 0.6))
    closed = np.flatnonzero(res.ended >= 0)
    pen = -3.0 * (res.outcome == FAILED) - 1.5 * res.broken - 1.0 * res.repeat
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
            effort=(1.0 * res.transfer + 1.3 * res.repeat)[closed],
            ref=jref.take(pa.array(closed)),
            instrument=np.full(len(closed), CSAT),
            p_system=0.2,
            p_audit=0.05,
            channel=APP,
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
        labels([t.desired for t in TOPICS], topic),
        res.outcome,
        res.reason,
        np.full(k, np.nan),
    )
    return table, k
