"""Marketing: each world's campaigns, sent as templates by the system.

A campaign goes to a share of the customers live on its date; the planted
neglected customers (who only ever get templates) are reached twice as often.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sawubona.demo.block import Block
from sawubona.demo.common import (
    A_SYSTEM,
    APP,
    EMAIL,
    HOUR,
    I64,
    MARKETING,
    money_text,
    uniform_time,
)
from sawubona.demo.text import Template


@dataclass(frozen=True)
class Campaign:
    """A marketing send: a template to a share of the customers live on a date."""

    at: str
    template: Template
    share: float
    channel: int = EMAIL
    offer: str = ""


def marketing(
    b: Block, alive_from: np.ndarray, alive_to: np.ndarray, campaigns: Sequence[Campaign]
) -> None:
    """Marketing sends (templated, by the system); neglected customers get more."""
    rng = b.rng
    for cp in campaigns:
        t = int(np.datetime64(cp.at, "us").astype(np.int64))
        live = (alive_from < t) & (alive_to > t)
        p = np.where(b.neglected, min(1.0, cp.share * 2), cp.share)
        cust = np.flatnonzero(live & (rng.random(b.cust.n) < p))
        k = len(cust)
        slots = {
            "first": b.first(cust),
            "offer": pa.array([cp.offer] * k, pa.string()),
            "amount": money_text(np.full(k, 5.0)),
        }
        b.send_templates(
            [cp.template],
            np.zeros(k, I64),
            slots,
            cust=cust,
            at=t + uniform_time(rng, 0, 8 * HOUR, k),
            channel=cp.channel,
            actor=A_SYSTEM,
            kind=MARKETING,
        )


TELCO_CAMPAIGNS = (
    Campaign(
        "2023-09-12T10:00:00",
        Template(
            "mkt_new_phone",
            "Hi {first}, the new phones are here! Upgrade today from {amount} "
            "extra a month. {offer}",
            0.9,
        ),
        0.35,
        offer="Offer ends Sunday.",
    ),
    Campaign(
        "2024-02-06T10:00:00",
        Template(
            "mkt_data_boost",
            "{first}, never run out: add a data boost for just {amount} a month. {offer}",
            0.9,
        ),
        0.3,
        offer="Tap to add it now.",
    ),
    Campaign(
        "2024-06-18T10:00:00",
        Template(
            "mkt_broadband",
            "Hi {first}, get home broadband with us and save {amount} a month. {offer}",
            0.9,
        ),
        0.3,
        offer="Check your postcode.",
    ),
    Campaign(
        "2024-11-26T10:00:00",
        Template(
            "mkt_black_friday",
            "Black Friday, {first}! Upgrades from {amount} a month. {offer}",
            0.9,
        ),
        0.4,
        offer="This week only.",
    ),
    Campaign(
        "2025-03-04T10:00:00",
        Template(
            "mkt_roaming",
            "Going away, {first}? Add the Roam abroad pass for {amount}. {offer}",
            0.9,
        ),
        0.3,
        offer="Works in 50 countries.",
    ),
    Campaign(
        "2025-05-20T10:00:00",
        Template(
            "mkt_upgrade_unl", "{first}, go unlimited from {amount} more a month. {offer}", 0.9
        ),
        0.35,
        offer="Upgrade in the app.",
    ),
)


SHOP_CAMPAIGNS = (
    Campaign(
        "2023-09-05T09:00:00",
        Template(
            "mkt_autumn",
            "{first}, autumn essentials are in! Take {amount} off with code AUTUMN. {offer}",
            0.9,
        ),
        0.4,
        offer="Ends Friday.",
    ),
    Campaign(
        "2023-11-24T07:00:00",
        Template("mkt_black_friday", "Black Friday is here, {first}: up to 40% off. {offer}", 0.9),
        0.5,
        offer="Today only.",
    ),
    Campaign(
        "2024-03-12T09:00:00",
        Template("mkt_spring", "Spring clean, {first}? {amount} off home and garden. {offer}", 0.9),
        0.35,
        offer="Shop now.",
    ),
    Campaign(
        "2024-07-09T09:00:00",
        Template(
            "mkt_summer", "Summer sale, {first}! Extra {amount} off when you spend 40. {offer}", 0.9
        ),
        0.4,
        offer="While stocks last.",
    ),
    Campaign(
        "2024-11-29T07:00:00",
        Template("mkt_black_friday_24", "{first}, our biggest Black Friday yet. {offer}", 0.9),
        0.5,
        offer="Don't miss out.",
    ),
    Campaign(
        "2025-05-06T09:00:00",
        Template(
            "mkt_subscribe",
            "{first}, never run out: subscribe and save {amount} on every repeat order. {offer}",
            0.9,
        ),
        0.35,
        offer="Set it up in two clicks.",
    ),
)


CAFE_CAMPAIGNS = (
    Campaign(
        "2023-09-18T07:00:00",
        Template("mkt_pumpkin", "{first}, pumpkin spice is back! {offer}", 0.9),
        0.4,
        APP,
        offer="Order ahead in the app.",
    ),
    Campaign(
        "2023-12-04T07:00:00",
        Template(
            "mkt_festive", "Festive menu, {first}: gingerbread latte and mince pies. {offer}", 0.9
        ),
        0.4,
        APP,
        offer="Only in December.",
    ),
    Campaign(
        "2024-03-11T07:00:00",
        Template("mkt_double_stamps", "Double stamps this week, {first}! {offer}", 0.9),
        0.4,
        APP,
        offer="Mon-Fri before 10am.",
    ),
    Campaign(
        "2024-06-17T07:00:00",
        Template(
            "mkt_iced",
            "Too hot for a flat white, {first}? Try our iced latte for {amount}. {offer}",
            0.9,
        ),
        0.4,
        APP,
        offer="All summer.",
    ),
    Campaign(
        "2024-10-07T07:00:00",
        Template("mkt_new_app", "{first}, our app has a new look. {offer}", 0.9),
        0.4,
        APP,
        offer="Update today.",
    ),
    Campaign(
        "2025-04-14T07:00:00",
        Template("mkt_spring_menu", "Spring menu is here, {first}! {offer}", 0.9),
        0.4,
        APP,
        offer="See what's new.",
    ),
)
