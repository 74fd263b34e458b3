"""Promises: made at a time, due at a time; kept on time, kept late, never kept or
cancelled — and, after about half of the broken ones, a make-good (an apology
and/or a credit or compensation) within a few days of the due time.

Promises made before the world's end but due after it are written open (not
kept, not cancelled); ``due_at`` is the only timestamp later than ``as_of``.

Planted for the promise ledger's gaming checks and for owed credits: padders,
renegotiated due dates, paused clocks, and make-good credits that pay what the
world's compensation rules owe (see :func:`make_promises` and ``docs/demo.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.common import (
    A_PERSON,
    A_SYSTEM,
    ACTION,
    AS_OF,
    DAY,
    EMAIL,
    HOUR,
    I64,
    MINUTE,
    PHONE,
    PROMISE,
    PROMISE_KINDS,
    SECOND,
    date_text,
    subset,
    to_seconds,
    uniform_time,
)
from sawubona.demo.common import APOLOGY as K_APOLOGY
from sawubona.demo.common import NOTIFICATION as K_NOTIFICATION
from sawubona.demo.common import PENDING as K_PENDING
from sawubona.demo.text import APOLOGY_CANNED, PENDING_ASK, RESUMED, pick

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

#: planted padders quote this many times the time they need (and keep 95% on time)
PAD_FACTOR = 3.0
#: share of agents' promises whose due date is moved later by a new promise (renegotiated)
P_RENEGOTIATE = 0.04
#: share of agents' ``fix`` promises paused while the customer is asked for a detail
P_PAUSE = 0.15
#: share of make-good credits that pay exactly what the compensation rules owe
P_PAY_IN_FULL = 0.6


@dataclass
class PromiseStatus:
    """What became of each promise asked for (``made`` false: not due by the world's end).

    For a renegotiated promise ``kept`` is when its replacement was kept (what the
    customer saw happen) and ``broken`` is the original promise's status.
    """

    made: np.ndarray
    due: np.ndarray
    kept: np.ndarray
    cancelled: np.ndarray
    broken: np.ndarray


def owed(
    rules: Mapping[str, Mapping[str, float]], kind: np.ndarray, due: np.ndarray, kept: np.ndarray
) -> np.ndarray:
    """What the world's compensation ``rules`` owe for broken promises of ``kind`` (codes)
    due at ``due`` and kept at ``kept`` (-1 or after ``as_of``: never), judged at
    ``as_of``: ``amount + per_day_late × started days late (after grace_days)``, capped at
    ``max``, in pence — the rule of ``sawubona.lenses.giving.credits``."""
    out = np.zeros(len(kind))
    end = np.where((kept >= 0) & (kept <= AS_OF), kept, AS_OF)
    days = -((due - end) // DAY)  # started days late (whole seconds: exact ceiling)
    for name, rule in rules.items():
        hit = kind == PROMISE_KINDS.index(name)
        late = np.maximum(0, days[hit] - rule.get("grace_days", 0.0))
        value = rule.get("amount", 0.0) + rule.get("per_day_late", 0.0) * late
        if "max" in rule:
            value = np.minimum(value, rule["max"])
        out[hit] = value
    return np.round(out, 2)


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

    Planted in agents' promises (from ``b.plant``): padders' deadlines are
    :data:`PAD_FACTOR` times the usual; :data:`P_RENEGOTIATE` of the others have their
    due date moved later by a new promise of the same kind in the same journey (the
    original is never kept itself); :data:`P_PAUSE` of the ``fix`` promises are
    paused by a ``pending`` message until a ``resumed`` notice, and kept after the
    stated due time but within it plus the pause. Promises not due by the world's end
    are written open (not kept, not cancelled); those made after it are not written.
    """
    rng, pl = b.rng, b.plant
    n = len(cust)
    lo = np.array([_PROMISE_HOURS[k][0] for k in PROMISE_KINDS])[kind] * HOUR
    hi = np.array([_PROMISE_HOURS[k][1] for k in PROMISE_KINDS])[kind] * HOUR
    base = to_seconds((lo + rng.random(n) * (hi - lo)).astype(I64)) + SECOND
    by_agent = agent >= 0
    pad = (
        by_agent & b.agents.padding[np.maximum(agent, 0)]
        if len(b.agents.padding)
        else (np.zeros(n, bool))
    )
    span = np.where(pad, to_seconds((base * PAD_FACTOR).astype(I64)), base)
    due = made + span
    u = rng.random(n)
    if on_time is not None:
        u = np.where(on_time, 0.0, u)
    # padders give themselves the time: 95% kept on time (at their usual speed)
    u = np.where(pad & (pl.random(n) < 0.95), 0.0, u)
    kept = np.full(n, -1, I64)
    timely = u < p_kept
    kept[timely] = made[timely] + to_seconds(
        (base[timely] * rng.uniform(0.1, 0.97, int(timely.sum()))).astype(I64)
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
    # planted renegotiations and pauses (agents' promises that are not padded)
    draw = pl.random(n)
    free = by_agent & ~pad & ~cancelled
    reneg_at = made + to_seconds((base * pl.uniform(0.3, 0.9, n)).astype(I64))
    reneg = free & (draw < P_RENEGOTIATE) & (reneg_at <= AS_OF)
    paused = free & (kind == PROMISE["fix"]) & (draw >= P_RENEGOTIATE)
    paused &= draw < P_RENEGOTIATE + P_PAUSE
    pause_at = np.where(paused, made + to_seconds((base * pl.uniform(0.2, 0.6, n)).astype(I64)), -1)
    pause_len = to_seconds(pl.uniform(12, 72, n) * HOUR)
    kept = np.where(
        paused,
        np.where(
            pl.random(n) < 0.85,
            due + to_seconds((pause_len * pl.uniform(0.2, 0.8, n)).astype(I64)),
            -1,
        ),
        kept,
    )
    new_due = due + to_seconds((span * pl.uniform(0.5, 1.5, n)).astype(I64))
    new_kept = np.where(
        pl.random(n) < 0.85,
        reneg_at + to_seconds(((new_due - reneg_at) * pl.uniform(0.2, 0.95, n)).astype(I64)),
        -1,
    )
    kept_seen = np.where(reneg, new_kept, kept)  # what the customer saw happen
    kept = np.where(reneg, -1, kept)
    kept[kept > AS_OF] = -1
    kept_seen[kept_seen > AS_OF] = -1
    cancel_at[cancel_at > AS_OF] = -1
    cancelled &= cancel_at >= 0
    made_ok = due <= AS_OF
    written = made <= AS_OF
    if team is None:
        team = np.where(agent >= 0, b.agents.team[np.maximum(agent, 0)], -1)
    reason = pc.if_else(
        pa.array(cancelled), pick(rng, _CANCEL_REASONS, n), pa.nulls(n, pa.string())
    )
    plant = np.where(pad, 1, np.where(reneg, 2, np.where(paused, 4, 0)))
    keep = np.flatnonzero(written)
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
        # open at the world's end: not kept, not cancelled (yet)
        kept=np.where(made_ok, kept, -1)[keep],
        cancelled=np.where(made_ok, cancel_at, -1)[keep],
        cancel_reason=reason.take(idx),
        plant=plant[keep],
        pause_at=pause_at[keep],
    )
    r = np.flatnonzero(reneg)
    b.promises.add(
        len(r),
        cust=cust[r],
        journey=journey[r],
        kind=kind[r],
        made=reneg_at[r],
        due=new_due[r],
        made_by=agent[r],
        team=team[r],
        channel=channel[r],
        kept=np.where((new_due[r] <= AS_OF) & (new_kept[r] <= AS_OF), new_kept[r], -1),
        plant=3,
    )
    _pauses(
        b, cust, journey, agent, channel, first, ref, np.flatnonzero(paused), pause_at, pause_len
    )
    broken = made_ok & ~cancelled & ((kept < 0) | (kept > due))
    # make-goods: apology and/or credit within a few days of the due time
    # (not after an agreed new date or a pause: the organisation sees those as kept)
    mg = np.flatnonzero(broken & (rng.random(n) < p_make_good) & ~reneg & ~paused)
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
    amount = np.round(rng.uniform(3, 20, len(rc)), 0)
    if b.compensation:
        # planted: most credits for promises the rules compensate pay exactly what is owed
        due_rc = owed(b.compensation, kind[rc], due[rc], kept[rc])
        full = (due_rc > 0) & (pl.random(len(rc)) < P_PAY_IN_FULL)
        amount = np.where(full, due_rc, amount)
    b.actions.add(
        len(rc),
        cust=cust[rc],
        at=at[credit] + uniform_time(rng, 0, HOUR, len(rc)),
        kind=np.where(rng.random(len(rc)) < 0.5, ACTION["credit"], ACTION["compensation"]),
        amount=amount,
        initiated=0,
        agent=np.maximum(agent[rc], -1),
        journey=journey[rc],
        purpose="make_good",
    )
    return PromiseStatus(
        made=made_ok,
        due=due,
        kept=np.where(made_ok, kept_seen, -1),
        cancelled=np.where(made_ok & cancelled, cancel_at, -1),
        broken=broken,
    )


def _pauses(
    b: Block,
    cust: np.ndarray,
    journey: np.ndarray,
    agent: np.ndarray,
    channel: np.ndarray,
    first: pa.Array,
    ref: pa.Array,
    rows: np.ndarray,
    pause_at: np.ndarray,
    pause_len: np.ndarray,
) -> None:
    """The planted pauses: the agent asks for a detail (``pending``), and a ``resumed``
    notice from the system ends the pause (the journey's next touchpoint, unless another
    one comes first)."""
    k = len(rows)
    if k == 0:
        return
    slots = {"first": first.take(pa.array(rows)), "ref": ref.take(pa.array(rows))}
    chan = np.where(channel[rows] == PHONE, EMAIL, np.maximum(channel[rows], 0))
    b.send_templates(
        [PENDING_ASK],
        np.zeros(k, I64),
        slots,
        cust=cust[rows],
        journey=journey[rows],
        at=pause_at[rows],
        channel=chan,
        actor=A_PERSON,
        agent=agent[rows],
        kind=K_PENDING,
    )
    b.send_templates(
        [RESUMED],
        np.zeros(k, I64),
        slots,
        cust=cust[rows],
        journey=journey[rows],
        at=pause_at[rows] + pause_len[rows],
        channel=chan,
        actor=A_SYSTEM,
        kind=K_NOTIFICATION,
    )
