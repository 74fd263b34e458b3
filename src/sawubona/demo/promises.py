"""Promises: made at a time, due at a time; kept on time, kept late, never kept or
cancelled — and, after about half of the broken ones, a make-good (an apology
and/or a credit or compensation) within a few days of the due time.

Promises that would fall due after the world's end are not made (no timestamp in
a demo world is later than ``as_of``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.common import (
    A_SYSTEM,
    ACTION,
    AS_OF,
    DAY,
    EMAIL,
    HOUR,
    I64,
    MINUTE,
    PHONE,
    PROMISE_KINDS,
    SECOND,
    date_text,
    subset,
    to_seconds,
    uniform_time,
)
from sawubona.demo.common import APOLOGY as K_APOLOGY
from sawubona.demo.text import APOLOGY_CANNED, pick

#: how long each promise kind gives itself (hours: low, high)
_PROMISE_HOURS = {
    "callback": (4, 48),
    "reply": (24, 48),
    "refund": (72, 168),
    "fix": (48, 120),
    "delivery": (48, 120),
    "order_ready": (0.08, 0.15),
    "plan_change": (24, 72),
}


_CANCEL_REASONS = ("customer withdrew the request", "no longer needed", "replaced by a new case")


@dataclass
class PromiseStatus:
    """What became of each promise asked for (``made`` false: due after the world's end)."""

    made: np.ndarray
    due: np.ndarray
    kept: np.ndarray
    cancelled: np.ndarray
    broken: np.ndarray


def make_promises(
    b: Block,
    cust: np.ndarray,
    journey: np.ndarray,
    kind: np.ndarray,
    made: np.ndarray,
    agent: np.ndarray,
    channel: np.ndarray,
    first: pa.Array,
    ref: pa.Array,
    *,
    p_kept: float = 0.76,
    p_late: float = 0.12,
    p_unkept: float = 0.08,
    p_make_good: float = 0.5,
    team: np.ndarray | None = None,
    on_time: np.ndarray | None = None,
) -> PromiseStatus:
    """Promises made at ``made``: kept, late, never kept, or cancelled; make-goods.

    Promises that would fall due after the world's end are not made.
    """
    rng = b.rng
    n = len(cust)
    lo = np.array([_PROMISE_HOURS[k][0] for k in PROMISE_KINDS])[kind] * HOUR
    hi = np.array([_PROMISE_HOURS[k][1] for k in PROMISE_KINDS])[kind] * HOUR
    span = to_seconds((lo + rng.random(n) * (hi - lo)).astype(I64)) + SECOND
    due = made + span
    u = rng.random(n)
    if on_time is not None:
        u = np.where(on_time, 0.0, u)
    kept = np.full(n, -1, I64)
    timely = u < p_kept
    kept[timely] = made[timely] + to_seconds(
        (span[timely] * rng.uniform(0.1, 0.97, int(timely.sum()))).astype(I64)
    )
    late = (u >= p_kept) & (u < p_kept + p_late)
    kept[late] = (
        due[late]
        + to_seconds((span[late] * rng.uniform(0.1, 1.5, int(late.sum()))).astype(I64))
        + MINUTE
    )
    cancelled = u >= p_kept + p_late + p_unkept
    cancel_at = np.where(
        cancelled, made + to_seconds((span * rng.uniform(0.1, 0.8, n)).astype(I64)), -1
    )
    kept[kept > AS_OF] = -1
    cancel_at[cancel_at > AS_OF] = -1
    cancelled &= cancel_at >= 0
    made_ok = due <= AS_OF
    if team is None:
        team = np.where(agent >= 0, b.agents.team[np.maximum(agent, 0)], -1)
    reason = pc.if_else(
        pa.array(cancelled), pick(rng, _CANCEL_REASONS, n), pa.nulls(n, pa.string())
    )
    keep = np.flatnonzero(made_ok)
    idx = pa.array(keep)
    b.promises.add(
        len(keep),
        cust=cust[keep],
        journey=journey[keep],
        kind=kind[keep],
        made=made[keep],
        due=due[keep],
        made_by=agent[keep],
        team=team[keep],
        channel=channel[keep],
        kept=kept[keep],
        cancelled=cancel_at[keep],
        cancel_reason=reason.take(idx),
    )
    broken = made_ok & ~cancelled & ((kept < 0) | (kept > due))
    # make-goods: apology and/or credit within a few days of the due time
    mg = np.flatnonzero(broken & (rng.random(n) < p_make_good))
    at = due[mg] + uniform_time(rng, 2 * HOUR, 3 * DAY, len(mg))
    apol = rng.random(len(mg)) < 0.8
    credit = ~apol | (rng.random(len(mg)) < 0.5)
    ra = mg[apol]
    at_a = at[apol]
    person = agent[ra] >= 0
    templated = b.neglected[cust[ra]] | (rng.random(len(ra)) < 0.5)
    sub = {
        "first": first.take(pa.array(ra)),
        "ref": ref.take(pa.array(ra)),
        "date": date_text(due[ra]),
    }
    chan = np.where(channel[ra] == PHONE, EMAIL, np.maximum(channel[ra], 0))
    p = np.flatnonzero(person)
    b.send_mixed(
        cust[ra][p],
        agent[ra][p],
        templated[p],
        [APOLOGY_CANNED],
        subset(sub, p),
        pc.binary_join_element_wise("the delay on ", ref.take(pa.array(ra[p])), ""),
        at_a[p] + DAY,
        journey=journey[ra][p],
        at=at_a[p],
        channel=chan[p],
        kind=K_APOLOGY,
    )
    s_ = np.flatnonzero(~person)
    b.send_templates(
        [APOLOGY_CANNED],
        np.zeros(len(s_), I64),
        subset(sub, s_),
        cust=cust[ra][s_],
        journey=journey[ra][s_],
        at=at_a[s_],
        channel=chan[s_],
        actor=A_SYSTEM,
        kind=K_APOLOGY,
    )
    rc = mg[credit]
    b.actions.add(
        len(rc),
        cust=cust[rc],
        at=at[credit] + uniform_time(rng, 0, HOUR, len(rc)),
        kind=np.where(rng.random(len(rc)) < 0.5, ACTION["credit"], ACTION["compensation"]),
        amount=np.round(rng.uniform(3, 20, len(rc)), 0),
        initiated=0,
        agent=np.maximum(agent[rc], -1),
        journey=journey[rc],
        purpose="make_good",
    )
    return PromiseStatus(
        made=made_ok,
        due=due,
        kept=np.where(made_ok, kept, -1),
        cancelled=np.where(made_ok & cancelled, cancel_at, -1),
        broken=broken,
    )
