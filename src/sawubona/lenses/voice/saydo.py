"""Say vs do: do scores predict what customers did afterwards?

Each scored answer whose follow-up window ``[responded_at, responded_at + horizon]``
ends by ``as_of`` is linked to the customer's behaviour in that window:

* with ``subscriptions`` — **stayed**: the customer had a subscription running
  when answering and still has one at the end of the window (churned otherwise;
  customers with none running when answering are left out);
* else with repeat ``journeys`` — **bought again**: a journey started in the window.

Outputs: retention by score (Wilson intervals) and the **AUC** of the score for
retention — the probability that a retained customer scored higher than one who
left, ties counting half — i.e. the Mann–Whitney U / (n₁n₀) (Hanley & McNeil
1982, "The meaning and use of the area under a ROC curve", Radiology 143), with
the Hanley–McNeil standard error and the one-sided Mann–Whitney p-value (normal
approximation with the tie correction). Whether scores predict behaviour is
reported for all answers, per team and per agent, and for the units in the review
queue against the others (de Haan, Verhoef & Wiesel 2015, "The predictive ability
of different customer feedback metrics for retention", IJRM 32(2); Keiningham et
al. 2007, "A longitudinal examination of net promoter and firm revenue growth",
J Marketing 71(3)): scores that stop predicting behaviour are a gaming signal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from sawubona.lenses.base import LensInput
from sawubona.lenses.voice.units import signal_frame, teams_of
from sawubona.stats import wilson

Array = npt.NDArray[np.float64]
Z95 = float(sps.norm.ppf(0.975))

KEYS = ["instrument", "score", "agent_id", "team", "solicited", "conceded", "retained"]


def behaviour(data: LensInput, frame: ir.Table, horizon_days: int) -> tuple[ir.Table | None, str]:
    """Scored answers with a complete follow-up window, counted by :data:`KEYS`, and the name
    of the behaviour measured (or ``None`` and the reason it cannot be measured)."""
    h = dt.timedelta(days=horizon_days)
    f = frame.filter(
        (frame.status == "scored")
        & frame.responded_at.notnull()
        & (frame.responded_at + h <= data.as_of)
    )
    f = f.select("survey_id", "customer_id", "responded_at", *[k for k in KEYS[:-1]])
    if data.has("subscriptions"):
        s = data.until("subscriptions")
        ended = ibis.ifelse(s.ended_at <= data.as_of, s.ended_at, ibis.null("timestamp"))
        s = s.select("customer_id", "started_at", ended_at=ended)
        j = f.join(s, f.customer_id == s.customer_id)
        end = j.responded_at + h
        running = (j.started_at <= j.responded_at) & (
            j.ended_at.isnull() | (j.ended_at > j.responded_at)
        )
        after = (j.started_at <= end) & (j.ended_at.isnull() | (j.ended_at > end))
        per = j.group_by("survey_id").aggregate(running=running.any(), stayed=after.any())
        per = per.filter(per.running)
        linked = f.join(per, "survey_id").mutate(retained=lambda t: t.stayed)
        label = f"stayed subscribed {horizon_days} days after answering"
    elif data.has("journeys"):
        jn = data.until("journeys")
        repeat = jn.group_by("customer_id").aggregate(n=jn.count()).filter(lambda t: t.n > 1)
        if repeat.count().execute() == 0:
            return None, "no customer has more than one journey, so there is no later behaviour"
        jn = jn.select("customer_id", "started_at")
        j = f.join(jn, f.customer_id == jn.customer_id)
        later = (j.started_at > j.responded_at) & (j.started_at <= j.responded_at + h)
        per = j.group_by("survey_id").aggregate(came_back=later.any())
        linked = f.left_join(per, "survey_id").drop("survey_id_right")
        linked = linked.mutate(retained=linked.came_back.fill_null(False))
        label = f"bought again within {horizon_days} days of answering"
    else:
        return None, "needs subscriptions or journeys to see what customers did"
    counted = linked.group_by(KEYS).aggregate(rows=linked.count())
    return counted, label


@dataclass(frozen=True)
class Auc:
    """Arrays (one value per histogram row) of the AUC, its interval, SE and p-value."""

    auc: Array
    low: Array
    high: Array
    se: Array
    p_value: Array
    n_retained: Array
    n_lost: Array


def auc_from_counts(retained: npt.ArrayLike, lost: npt.ArrayLike) -> Auc:
    """AUC of the score for retention from histograms over the same ordered scores (last axis;
    one row per group)."""
    r = np.atleast_2d(np.asarray(retained, float))
    lo = np.atleast_2d(np.asarray(lost, float))
    n1, n0 = r.sum(axis=1), lo.sum(axis=1)
    below = np.cumsum(lo, axis=1) - lo  # lost customers with a lower score
    u = np.sum(r * (below + 0.5 * lo), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = u / (n1 * n0)
        q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
        v = a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)
        se = np.sqrt(np.maximum(v, 0) / (n1 * n0))
        total = n1 + n0
        ties = r + lo
        var_u = (
            n1 * n0 / 12 * ((total + 1) - np.sum(ties**3 - ties, axis=1) / (total * (total - 1)))
        )
        z = np.where(var_u > 0, (u - n1 * n0 / 2) / np.sqrt(np.where(var_u > 0, var_u, 1)), 0.0)
    empty = (n1 == 0) | (n0 == 0)
    nan = np.full(len(a), np.nan)
    return Auc(
        np.where(empty, nan, a),
        np.where(empty, nan, np.maximum(0.0, a - Z95 * se)),
        np.where(empty, nan, np.minimum(1.0, a + Z95 * se)),
        np.where(empty, nan, se),
        np.where(empty, nan, sps.norm.sf(z)),
        n1,
        n0,
    )


def _hists(block: pd.DataFrame, by: pd.Series, scores: Array) -> tuple[pd.Index, Array, Array]:
    """Per group of ``by``: retained and lost histograms over ``scores``."""
    g = block.groupby([by, block["score"], block["retained"].astype(bool)])["rows"].sum()
    wide = g.unstack(["retained", "score"], fill_value=0)
    idx = wide.index
    r = np.zeros((len(idx), len(scores)))
    lo = np.zeros((len(idx), len(scores)))
    pos = {float(x): i for i, x in enumerate(scores)}
    for key, values in wide.items():
        pair: tuple[Any, Any] = key  # type: ignore[assignment]
        (r if pair[0] else lo)[:, pos[float(pair[1])]] = values.to_numpy(float)
    return idx, r, lo


def retention_by_score(counted: pd.DataFrame, label: str) -> pd.DataFrame:
    """``voice_say_do``: per instrument and score, answers, retained share and interval."""
    g = counted.groupby(["instrument", "score"])
    n = g["rows"].sum()
    k = counted[counted["retained"]].groupby(["instrument", "score"])["rows"].sum()
    k = k.reindex(n.index).fillna(0)
    low, high = wilson(k.to_numpy(), n.to_numpy())
    out = n.reset_index(name="answers")
    out["retained"] = k.to_numpy()
    out["retention"] = 100 * out["retained"] / out["answers"]
    out["low"] = 100 * low
    out["high"] = 100 * high
    out["behaviour"] = label
    return out


def _scopes(block: pd.DataFrame, flagged: dict[str, set[str]]) -> list[tuple[str, pd.Series]]:
    """(scope kind, grouping series) pairs: everyone, teams, agents, queue membership,
    solicitation."""
    scopes: list[tuple[str, pd.Series]] = [("all", pd.Series("all", index=block.index))]
    for kind, col in (("team", "team"), ("agent", "agent_id")):
        scopes.append((kind, block[col].astype(object)))
        if flagged.get(kind):
            member = block[col].astype(str).isin(flagged[kind])
            label = pd.Series("no", index=block.index, dtype=object)
            label[member] = "yes"
            label[block[col].isna()] = None
            scopes.append((f"{kind}s_in_review_queue", label))
    if block["solicited"].any():
        flag = pd.Series(np.where(block["solicited"], "yes", "no"), index=block.index)
        scopes.append(("solicited", flag))
    return scopes


def validity(
    counted: pd.DataFrame, flagged: dict[str, set[str]], min_each: int = 5
) -> pd.DataFrame:
    """``voice_validity``: AUC of the score for retention overall, per team and agent, for
    units in the review queue against the rest, and after solicitation or not."""
    parts = []
    for instrument, block in counted.groupby("instrument", sort=True):
        scores = np.sort(block["score"].unique()).astype(float)
        for kind, by in _scopes(block, flagged):
            keep = by.notna()
            if not keep.any():
                continue
            idx, r, lo = _hists(block[keep], by[keep].astype(str), scores)
            a = auc_from_counts(r, lo)
            ok = (a.n_retained >= min_each) & (a.n_lost >= min_each)
            parts.append(
                pd.DataFrame(
                    {
                        "instrument": instrument,
                        "scope_kind": kind,
                        "scope": np.asarray(idx, dtype=object)[ok],
                        "answers": (a.n_retained + a.n_lost)[ok],
                        "lost": a.n_lost[ok],
                        "auc": a.auc[ok],
                        "auc_low": a.low[ok],
                        "auc_high": a.high[ok],
                        "p_value": a.p_value[ok],
                        "predicts": a.low[ok] > 0.5,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def validity_signals(counted: pd.DataFrame, min_each: int = 10) -> list[pd.DataFrame]:
    """Honesty rows ``say_do_validity``: a unit's scores predict retention less than the
    others' (one-sided z test of the AUC difference, Hanley–McNeil standard errors)."""
    out: list[pd.DataFrame] = []
    teams = teams_of(counted, "agent_id", "team")
    for instrument, block in counted.groupby("instrument", sort=True):
        scores = np.sort(block["score"].unique()).astype(float)
        _, r_all, lo_all = _hists(block, pd.Series("all", index=block.index), scores)
        for kind, col in (("agent", "agent_id"), ("team", "team")):
            b = block[block[col].notna()]
            if b.empty:
                continue
            idx, r, lo = _hists(b, b[col].astype(str), scores)
            r2, lo2 = r_all - r, lo_all - lo
            a, rest = auc_from_counts(r, lo), auc_from_counts(r2, lo2)
            ok = (
                np.minimum.reduce([a.n_retained, a.n_lost, rest.n_retained, rest.n_lost])
                >= min_each
            )
            if not ok.any():
                continue
            z = (rest.auc - a.auc) / np.hypot(a.se, rest.se)
            units = pd.Index(idx[ok])
            prompts = [
                f"{unit}'s {str(instrument).upper()} scores predict whether customers stay "
                f"with AUC {x:.2f} [{lo_:.2f}, {hi:.2f}]; everyone else's with {y:.2f}."
                for unit, x, lo_, hi, y in zip(
                    units, a.auc[ok], a.low[ok], a.high[ok], rest.auc[ok], strict=True
                )
            ]
            out.append(
                signal_frame(
                    kind,
                    units,
                    teams,
                    "say_do_validity",
                    "AUC of the others − AUC of the unit",
                    (rest.auc - a.auc)[ok],
                    sps.norm.sf(z[ok]),
                    (a.n_retained + a.n_lost)[ok],
                    prompts,
                    "surveys",
                    [{col: str(u), "instrument": str(instrument)} for u in units],
                    a.auc[ok],
                    rest.auc[ok],
                    instrument=str(instrument),
                )
            )
    return out
