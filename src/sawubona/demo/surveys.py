"""Surveys of journeys and relationship surveys, with their invitations.

Routine surveys are triggered by the system at random or by agents as their
planted behaviour dictates (selective agents only after achieved outcomes,
begging agents after they begged); an audit sample is surveyed whatever the
agent did. Scores come from a 0-10 *quality*: the customer's latent
satisfaction plus the journey's penalties plus noise; a begged customer mostly
answers 9 or 10, a concession adds 1.8 — but never on audit surveys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.demo.block import Block
from sawubona.demo.common import (
    A_SYSTEM,
    ACHIEVED,
    ACTION,
    AS_OF,
    CSAT,
    DAY,
    EMAIL,
    FAILED,
    HOUR,
    I64,
    MINUTE,
    NPS,
    TRIG_AGENT,
    TRIG_AUDIT,
    TRIG_SYSTEM,
    event_ids,
    to_seconds,
    uniform_time,
)
from sawubona.demo.common import SURVEY_INVITE as K_SURVEY_INVITE
from sawubona.demo.people import BEGGING, CONCESSION, SELECTIVE
from sawubona.demo.text import SURVEY_INVITE, comments


@dataclass
class Surveyed:
    """Closed journeys that may be surveyed (one row per journey)."""

    journey: np.ndarray
    cust: np.ndarray
    ended: np.ndarray
    outcome: np.ndarray
    agent: np.ndarray
    begged: np.ndarray
    #: effect on the score (0-10 scale; negative = worse experience)
    penalty: np.ndarray
    #: effort points (transfers, repeats, channel switches) for CES
    effort: np.ndarray
    ref: pa.Array
    #: instrument of system-triggered surveys, per journey
    instrument: np.ndarray
    #: probability of a system-triggered survey (one value, or one per journey)
    p_system: float | np.ndarray
    p_audit: float
    channel: int = EMAIL
    #: scales how often agents trigger surveys themselves
    agent_rate: float = 1.0


_P_AGENT_TRIGGER = np.array([0.06, 0.03, 0.0, 0.10, 0.06])  # by behaviour; see below


def survey_journeys(b: Block, s: Surveyed) -> None:
    """Routine (system/agent) and audit surveys of closed journeys, with invitations."""
    rng, ag = b.rng, b.agents
    n = len(s.cust)
    has_agent = s.agent >= 0
    beh = np.where(has_agent, ag.behaviour[np.maximum(s.agent, 0)], -1)
    p_agent = np.where(has_agent, _P_AGENT_TRIGGER[np.maximum(beh, 0)], 0.0)
    # selective agents survey only achieved outcomes; beggers survey after they begged
    p_agent = np.where(beh == SELECTIVE, 0.55 * (s.outcome == ACHIEVED), p_agent)
    p_agent = np.where((beh == BEGGING) & s.begged, 0.3, p_agent) * s.agent_rate
    trig_agent = rng.random(n) < p_agent
    trig_sys = ~trig_agent & (rng.random(n) < s.p_system)
    routine = trig_agent | trig_sys
    concession = routine & (beh == CONCESSION) & (rng.random(n) < 0.7)
    invited = np.where(
        trig_agent,
        s.ended + uniform_time(rng, MINUTE, 30 * MINUTE, n),
        s.ended + uniform_time(rng, HOUR, 48 * HOUR, n),
    )
    invited = np.where(concession, s.ended + uniform_time(rng, 2 * HOUR, 30 * HOUR, n), invited)
    instrument = np.where(trig_agent, NPS, s.instrument)
    audit = has_agent & (rng.random(n) < s.p_audit)
    a_inv = s.ended + uniform_time(rng, 3 * DAY, 10 * DAY, n)

    ri = np.flatnonzero(routine & (invited <= AS_OF))
    ai = np.flatnonzero(audit & (a_inv <= AS_OF))
    # concessions shortly before the invitation
    rc = ri[concession[ri]]
    gap = invited[rc] - s.ended[rc]
    b.actions.add(
        len(rc),
        cust=s.cust[rc],
        at=s.ended[rc] + to_seconds((gap * rng.uniform(0.1, 0.8, len(rc))).astype(I64)),
        kind=np.where(rng.random(len(rc)) < 0.5, ACTION["discount"], ACTION["credit"]),
        amount=np.round(rng.uniform(5, 25, len(rc)), 0),
        initiated=0,
        agent=s.agent[rc],
        journey=s.journey[rc],
        purpose="concession",
    )

    rows = np.concatenate([ri, ai])
    is_audit = np.r_[np.zeros(len(ri), bool), np.ones(len(ai), bool)]
    inv = np.r_[invited[ri], a_inv[ai]]
    instr = np.r_[instrument[ri], np.full(len(ai), NPS)]
    trig = np.r_[np.where(trig_agent[ri], TRIG_AGENT, TRIG_SYSTEM), np.full(len(ai), TRIG_AUDIT)]
    begged = s.begged[rows] & ~is_audit
    conc = concession[rows] & ~is_audit
    k = len(rows)
    sat = b.cust.sat[s.cust[rows]]
    q = 7.9 + 0.9 * sat + s.penalty[rows] + 1.4 * rng.standard_normal(k)
    _true_scores(b, s, rows, q)
    # a begged customer mostly gives the 9 or 10 asked for, whatever happened
    pressed = begged & (rng.random(k) < 0.85)
    q = np.where(pressed, np.where(rng.random(k) < 0.7, 10.0, 9.0), q)
    q = np.where(conc, q + 1.8, q)
    effort_q = 5.6 + 0.3 * sat - s.effort[rows] + rng.standard_normal(k) + 1.0 * begged
    score = score_from_quality(instr, q, effort_q)
    failed = s.outcome[rows] == FAILED
    p_resp = np.clip(0.34 + 0.05 * sat - 0.1 * failed, 0.05, 0.9)
    responded = inv + 2 * MINUTE + to_seconds(rng.exponential(18 * HOUR, k).astype(I64))
    answered = (rng.random(k) < p_resp) & (responded <= AS_OF)
    add_surveys(
        b,
        s.cust[rows],
        s.journey[rows],
        instr,
        inv,
        np.where(answered, responded, -1),
        np.where(answered, score, np.nan),
        s.agent[rows],
        trig,
        conc,
        begged,
    )
    # invitations
    tpl = np.where(is_audit, 3, instr)
    templates = [
        SURVEY_INVITE["nps"],
        SURVEY_INVITE["csat"],
        SURVEY_INVITE["ces"],
        SURVEY_INVITE["audit"],
    ]
    b.send_templates(
        templates,
        tpl,
        {"first": b.first(s.cust[rows]), "ref": s.ref.take(pa.array(rows))},
        cust=s.cust[rows],
        journey=s.journey[rows],
        at=inv,
        channel=s.channel,
        actor=A_SYSTEM,
        kind=K_SURVEY_INVITE,
    )


def _true_scores(b: Block, s: Surveyed, rows: np.ndarray, q_rows: np.ndarray) -> None:
    """Truth: the NPS every closed journey's customer would have given if asked honestly
    (no plea, no concession): for surveyed journeys the quality behind their (first)
    survey, for the others a draw from the same model (``b.plant`` stream)."""
    n = len(s.cust)
    q = 7.9 + 0.9 * b.cust.sat[s.cust] + s.penalty + 1.4 * b.plant.standard_normal(n)
    q[rows[::-1]] = q_rows[::-1]  # routine surveys come first: theirs wins
    closed = np.flatnonzero(s.ended <= AS_OF)
    b.add_truth(
        "true_scores",
        pa.table(
            {
                "journey_id": event_ids("journeys", s.journey[closed]),
                "nps": pa.array(np.clip(np.rint(q[closed]), 0, 10).astype(np.int8)),
            }
        ),
    )


def score_from_quality(instr: np.ndarray, q: np.ndarray, effort_q: np.ndarray) -> np.ndarray:
    """Scores on each instrument's scale from a 0-10 quality and a 1-7 ease."""
    nps = np.clip(np.rint(q), 0, 10)
    csat = np.clip(np.rint(1 + (q - 2) / 2), 1, 5)
    ces = np.clip(np.rint(effort_q), 1, 7)
    return np.where(instr == NPS, nps, np.where(instr == CSAT, csat, ces))


def add_surveys(
    b: Block,
    cust: np.ndarray,
    journey: np.ndarray,
    instr: np.ndarray,
    invited: np.ndarray,
    responded: np.ndarray,
    score: np.ndarray,
    agent: np.ndarray,
    trig: np.ndarray,
    concession: np.ndarray | None = None,
    begged: np.ndarray | None = None,
) -> None:
    """Add survey rows, with a comment on about a third of the answers."""
    rng = b.rng
    k = len(cust)
    band = np.where(
        instr == NPS,
        (score >= 7).astype(I64) + (score >= 9),
        np.where(
            instr == CSAT,
            (score >= 3).astype(I64) + (score >= 5),
            (score >= 4).astype(I64) + (score >= 6),
        ),
    )
    has_comment = ~np.isnan(score) & (rng.random(k) < 0.35)
    text = pc.if_else(pa.array(has_comment), comments(rng, band), pa.nulls(k, pa.string()))
    team = np.where(agent >= 0, b.agents.team[np.maximum(agent, 0)], -1)
    b.surveys.add(
        k,
        cust=cust,
        journey=journey,
        instrument=instr,
        invited=invited,
        responded=responded,
        score=score,
        comment=text,
        agent=agent,
        team=team,
        trigger=trig,
        concession=False if concession is None else concession,
        begged=False if begged is None else begged,
    )


def relationship_surveys(
    b: Block,
    alive_from: np.ndarray,
    alive_to: np.ndarray,
    waves: Sequence[int],
    share: float,
    instrument: int,
    penalty: np.ndarray,
    channel: int = EMAIL,
) -> None:
    """Surveys not about a journey: a share of live customers at each wave date."""
    rng = b.rng
    for w in waves:
        live = np.flatnonzero((alive_from < w) & (alive_to > w + 7 * DAY))
        cust = live[rng.random(len(live)) < share]
        k = len(cust)
        inv = w + uniform_time(rng, 0, 5 * DAY, k)
        sat = b.cust.sat[cust]
        q = 7.4 + 0.9 * sat + penalty[cust] + 1.6 * rng.standard_normal(k)
        score = score_from_quality(np.full(k, instrument), q, 5 + q / 5)
        resp = inv + 5 * MINUTE + to_seconds(rng.exponential(30 * HOUR, k).astype(I64))
        ok = (rng.random(k) < np.clip(0.25 + 0.05 * sat, 0.05, 0.9)) & (resp <= AS_OF)
        add_surveys(
            b,
            cust,
            np.full(k, -1),
            np.full(k, instrument),
            inv,
            np.where(ok, resp, -1),
            np.where(ok, score, np.nan),
            np.full(k, -1),
            np.full(k, TRIG_SYSTEM),
        )
        tpl = SURVEY_INVITE[("nps", "csat", "ces")[instrument]]
        b.send_templates(
            [tpl],
            np.zeros(k, I64),
            {"first": b.first(cust), "ref": pa.array(["your experience"] * k)},
            cust=cust,
            at=inv,
            channel=channel,
            actor=A_SYSTEM,
            kind=K_SURVEY_INVITE,
        )
