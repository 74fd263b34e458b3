"""Plain-language messages a person could send with each gift.

Each message speaks to one customer about their own numbers, says what we
noticed and what it is worth to them, leaves the choice with them, and asks for
nothing in return: no offer deadline, no "upgrade", no survey. The wording is a
draft for a person to adapt, not a template to blast.
"""

from __future__ import annotations

import datetime as dt
import functools

from sawubona.lenses.giving.common import money

#: what a broken promise of each kind was about, in the customer's words
PROMISE_WORDS = {
    "delivery": "deliver your order",
    "callback": "call you back",
    "reply": "reply to you",
    "refund": "refund you",
    "fix": "fix the problem you reported",
    "visit": "visit you",
    "appointment": "keep your appointment",
    "installation": "install your service",
    "order_ready": "have your order ready",
    "plan_change": "change your plan",
}


def _hello(first: str | None) -> str:
    return f"Hi {first}," if first else "Hello,"


def _day(t: dt.datetime | dt.date) -> str:
    return _day_text(t.year, t.month, t.day)


@functools.lru_cache(maxsize=1 << 14)
def _day_text(year: int, month: int, day: int) -> str:
    return f"{day} {dt.date(year, month, 1).strftime('%B %Y')}"


def _months(n: int) -> str:
    return "month" if n == 1 else f"{n} months"


def best_plan(
    *,
    first: str | None,
    current: str,
    plan: str,
    months: int,
    cheaper: int,
    paid_per_month: float,
    saving_per_year: float,
    bigger: bool,
    like_for_like: bool,
    dearer_month: dt.datetime | None,
    dearer_by: float,
    currency: str | None,
) -> str:
    span = "your last month" if months == 1 else f"your last {months} months"
    how_often = (
        "in that month"
        if months == 1
        else ("in every one of them" if cheaper == months else f"in {cheaper} of those {months}")
    )
    parts = [
        _hello(first),
        f"we looked at what you actually used over {span} on {current}, where your bills "
        f"came to about {money(paid_per_month, currency)} a month.",
        f"The {plan} plan would have cost you less {how_often} — about "
        f"{money(saving_per_year / 12, currency)} a month, "
        f"{money(saving_per_year, currency)} over a year.",
    ]
    if bigger:
        parts.append(
            "It has a higher monthly price, but it includes more, so you would stop paying "
            "for going over your allowance."
        )
    elif like_for_like:
        parts.append("It includes at least everything your current plan does.")
    else:
        parts.append("It includes less than your current plan, but more than you have been using.")
    if dearer_month is not None and dearer_by > 0:
        parts.append(
            f"(In {dearer_month.strftime('%B %Y')} it would have cost "
            f"{money(dearer_by, currency)} more, so we have counted that too.)"
        )
    parts.append(
        "Nothing changes unless you want it to: if you would like to move, just reply and we "
        "will do it for you."
    )
    return " ".join(parts)


def unused_addon(
    *,
    first: str | None,
    addon: str,
    months_unused: int,
    fee: float,
    currency: str | None,
) -> str:
    return (
        _hello(first)
        + " "
        + unused_addon_body(addon=addon, months_unused=months_unused, fee=fee, currency=currency)
    )


def unused_addon_body(*, addon: str, months_unused: int, fee: float, currency: str | None) -> str:
    """What an unused-add-on message says after the greeting."""
    return " ".join(
        [
            f"you pay {money(fee, currency)} a month for {addon}, and it hasn't been used in "
            f"the last {_months(months_unused)}.",
            f"Removing it would save you {money(12 * fee, currency)} a year.",
            "If you keep it for the odd trip or month, that's fine too — just reply if you "
            "would like us to take it off, and we will.",
        ]
    )


def owed_credit(
    *,
    first: str | None,
    kind: str,
    what: str | None,
    due_at: dt.datetime | None,
    kept_at: dt.datetime | None,
    days_late: int,
    owed: float,
    paid: float,
    basis: str,
    currency: str | None,
) -> str:
    if what is None:
        doing = PROMISE_WORDS.get(kind, f"complete your {kind.replace('_', ' ')}")
        when = f" by {_day(due_at)}" if due_at is not None else ""
        if kept_at is not None:
            late = f"and it took until {_day(kept_at)}"
        elif days_late > 0:
            late = "and we still haven't done it"
        else:
            late = "and we didn't"
        said = f"we told you we would {doing}{when}, {late}."
    else:
        said = what
    still = owed - paid
    parts = [
        _hello(first),
        said,
        f"Our own rules say that is worth {money(owed, currency)} to you ({basis}).",
    ]
    if paid > 0:
        parts.append(
            f"We have paid {money(paid, currency)} of it, so {money(still, currency)} is still "
            "owed."
        )
    parts.append(
        f"We are crediting {money(still, currency)} to your account — you don't need to ask "
        "for it. We're sorry."
    )
    return " ".join(parts)


def failed_journey(kind: str, desired: str | None, when: dt.datetime | None) -> str:
    """What a failed journey was, in the customer's words."""
    on = f" on {_day(when)}" if when is not None else ""
    if desired:
        return f"when you came to us{on} to {desired}, we didn't manage it."
    return f"we didn't manage to sort out your {kind.replace('_', ' ')}{on}."


def loyalty_penalty(
    *,
    first: str | None,
    plan: str,
    paid: float,
    new_price: float,
    years: float | None,
    currency: str | None,
) -> str:
    return (
        _hello(first)
        + " "
        + loyalty_tenure(years)
        + loyalty_penalty_body(plan=plan, paid=paid, new_price=new_price, currency=currency)
    )


def loyalty_tenure(years: float | None) -> str:
    """The tenure clause of a loyalty-penalty message (empty under a year)."""
    return f"you have been with us for {years:.0f} years, and " if years and years >= 1 else ""


def loyalty_penalty_body(*, plan: str, paid: float, new_price: float, currency: str | None) -> str:
    """What a loyalty-penalty message says after the greeting and the tenure clause."""
    return " ".join(
        [
            f"you pay {money(paid, currency)} a month for {plan}, while someone "
            f"joining today pays {money(new_price, currency)} for the same plan.",
            "That isn't fair on you. We'll bring your price down to "
            f"{money(new_price, currency)}, which saves you "
            f"{money(12 * (paid - new_price), currency)} a year. You don't need to do anything.",
        ]
    )


def hello(first: str | None) -> str:
    return _hello(first)
