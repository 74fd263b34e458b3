"""Survey honesty: statistical signals per agent and team, for a review queue.

Every signal is a one-sided test whose alternative is "the numbers are being bent";
its p-value joins one Benjamini–Hochberg family (Benjamini & Hochberg 1995,
:func:`sawubona.stats.bh_adjust`) over all units and signals, and a flag means
*look at these rows*, never *this person cheated*. Signals:

* ``selectivity`` — Fisher's exact test (Fisher 1922; Agresti, *Categorical Data
  Analysis*, §3.5; one-sided p = the hypergeometric tail) on the unit's closed
  journeys, surveyed × failed/achieved: are failed journeys surveyed less?
  Invitations the agent triggered are used when the data has any
  (``trigger = agent``), else all routine invitations.
* ``concession`` — Fisher's exact test, surveyed × conceded: do surveyed journeys
  get discounts/credits (setting ``concession_kinds``) more than the unit's other
  journeys, from the journey's start to ``concession_window_hours`` after its end?
* ``selectivity_by_trigger`` and ``concession_before_survey`` — the same questions
  asked of the unit's own invitations (:func:`by_trigger`), for worlds where
  journeys without a survey cannot be attributed to an agent.
* ``solicitation`` — the unit's routine invitations preceded, in the same journey, by
  an agent's message asking for a top score (patterns in
  :data:`.prep.SOLICITATION_PATTERNS`): Binomial(n, p₀) with p₀ everyone else's share
  ((k + ½)/(n + 1), so that a silent peer group does not give p₀ = 0).
* ``solicitation_uplift`` — within the unit, is the top score more frequent after a
  solicitation than without one (Fisher's exact test)?
* ``audit_gap`` — routine NPS above the unit's audit-stream NPS: an exact
  permutation test conditional on the unit's pooled answers (the audit answers as
  a draw without replacement; Good, *Permutation Tests*, 2000, §3), normal
  approximation beyond 60 audit answers.
* distribution forensics (``distribution_g``, ``excess_top``, ``top_to_second``,
  ``heaping``, ``low_entropy``) — :func:`.forensics.distribution`, per instrument.
* ``say_do_validity`` — added by :mod:`.saydo`.

Units are journeys' and surveys' agents (``agent``) and teams (``team``). Journeys
are attributed to an agent by the touchpoints and promises of the journey, never by
its survey, so that attribution cannot depend on whether it was surveyed.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special
from scipy import stats as sps

from sawubona.lenses.voice.scores import scale
from sawubona.lenses.voice.units import UNIT_COLUMNS, Array, cells, pct, signal_frame, teams_of


def selectivity(cube: pd.DataFrame) -> list[pd.DataFrame]:
    """Fisher's exact test per unit: are failed journeys surveyed less than achieved ones?"""
    c = cube[cube["outcome"].isin(["achieved", "failed"])].copy()
    if c.empty:
        return []
    by_agent = bool(c.loc[c["agent_invited"], "journeys"].sum() > 0)
    col = "agent_invited" if by_agent else "invited"
    what = "an agent-triggered survey" if by_agent else "a routine survey"
    c["failed"] = c["outcome"] == "failed"
    teams = teams_of(c, "journey_agent", "journey_team")
    out = []
    for kind, (_, unit_col) in UNIT_COLUMNS.items():
        u = c.dropna(subset=[unit_col])
        if u.empty:
            continue
        t = cells(u, unit_col, "failed", col, "journeys")
        fs, fn, as_, an = t["tt"], t["tf"], t["ft"], t["ff"]
        keep = (fs + fn > 0) & (as_ + an > 0) & (fs + as_ > 0)
        t, fs, fn, as_, an = t[keep], fs[keep], fn[keep], as_[keep], an[keep]
        if t.empty:
            continue
        total = fs + fn + as_ + an
        p = sps.hypergeom.cdf(fs, total, fs + fn, fs + as_)
        rate_f, rate_a = fs / (fs + fn), as_ / (as_ + an)
        prompts = [
            f"Look at which journeys {unit} surveys: {pct(a, a + b)} of failed journeys had "
            f"{what}, against {pct(x, x + y)} of achieved ones."
            for unit, a, b, x, y in zip(t.index, fs, fn, as_, an, strict=True)
        ]
        key = UNIT_COLUMNS[kind][0]
        wheres = [
            {key: str(unit), "trigger": "agent"} if by_agent else {key: str(unit)}
            for unit in t.index
        ]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(rate_a > 0, rate_f / rate_a, np.nan)
        out.append(
            signal_frame(
                kind,
                t.index,
                teams,
                "selectivity",
                "failed/achieved survey rate",
                ratio,
                p,
                total,
                prompts,
                "surveys",
                wheres,
                fs,
                (fs + fn) * (fs + as_) / total,
            )
        )
    return out


def concession(cube: pd.DataFrame) -> list[pd.DataFrame]:
    """Fisher's exact test per unit: are surveyed journeys conceded more than the others?"""
    if cube.empty or not cube["conceded"].any():
        return []
    teams = teams_of(cube, "journey_agent", "journey_team")
    out = []
    for kind, (survey_col, unit_col) in UNIT_COLUMNS.items():
        u = cube.dropna(subset=[unit_col])
        if u.empty:
            continue
        t = cells(u, unit_col, "invited", "conceded", "journeys")
        sc, sn, oc, on = t["tt"], t["tf"], t["ft"], t["ff"]
        keep = (sc + sn > 0) & (oc + on > 0) & (sc + oc > 0)
        t, sc, sn, oc, on = t[keep], sc[keep], sn[keep], oc[keep], on[keep]
        if t.empty:
            continue
        total = sc + sn + oc + on
        p = sps.hypergeom.sf(sc - 1, total, sc + sn, sc + oc)
        rs, ro = sc / (sc + sn), oc / (oc + on)
        prompts = [
            f"Check the concessions around {unit}'s surveys: {pct(a, a + b)} of surveyed "
            f"journeys had a discount or credit, against {pct(x, x + y)} of the others."
            for unit, a, b, x, y in zip(t.index, sc, sn, oc, on, strict=True)
        ]
        wheres = [{survey_col: str(unit)} for unit in t.index]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(ro > 0, rs / np.where(ro > 0, ro, 1), np.inf)
        out.append(
            signal_frame(
                kind,
                t.index,
                teams,
                "concession",
                "conceded rate surveyed/not surveyed",
                ratio,
                p,
                total,
                prompts,
                "surveys",
                wheres,
                sc,
                (sc + sn) * (sc + oc) / total,
            )
        )
    return out


def by_trigger(invites: pd.DataFrame) -> list[pd.DataFrame]:
    """Survey-side versions of selectivity and concessions, on the unit's own invitations
    (attributed by the survey's agent), for data where journeys cannot be attributed:

    * ``selectivity_by_trigger`` — Fisher's exact test: do the invitations the unit
      triggered cover failed journeys less than the unit's system and audit invitations
      (a sample of the same work the unit did not choose)?
    * ``concession_before_survey`` — Fisher's exact test: are the unit's routine
      invitations preceded by a concession more often than other units' invitations?
    """
    out: list[pd.DataFrame] = []
    if invites.empty:
        return out
    teams = teams_of(invites, "agent_id", "team")
    inv = invites.assign(
        mine=invites["trigger"] == "agent",
        failed=invites["outcome"] == "failed",
    )
    closed = inv[inv["outcome"].isin(["achieved", "failed"])]
    if closed["mine"].any() and (~closed["mine"]).any():
        for kind, (col, _) in UNIT_COLUMNS.items():
            u = closed.dropna(subset=[col])
            if u.empty:
                continue
            t = cells(u, col, "mine", "failed", "rows")
            mf, ma, of, oa = t["tt"], t["tf"], t["ft"], t["ff"]
            keep = (mf + ma > 0) & (of + oa > 0) & (mf + of > 0)
            t, mf, ma, of, oa = t[keep], mf[keep], ma[keep], of[keep], oa[keep]
            if t.empty:
                continue
            total = mf + ma + of + oa
            p = sps.hypergeom.cdf(mf, total, mf + ma, mf + of)
            prompts = [
                f"Look at which journeys {unit} chooses to survey: {pct(a, a + b)} of the "
                f"surveys {unit} triggered were about failed journeys, against {pct(x, x + y)} "
                "of the system and audit surveys of the same work."
                for unit, a, b, x, y in zip(t.index, mf, ma, of, oa, strict=True)
            ]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio: Array = np.asarray(
                    (mf / (mf + ma)) / np.where(of > 0, of / (of + oa), np.nan), dtype=float
                )
            out.append(
                signal_frame(
                    kind,
                    t.index,
                    teams,
                    "selectivity_by_trigger",
                    "failed share: own/system+audit invitations",
                    ratio,
                    p,
                    total,
                    prompts,
                    "surveys",
                    [{col: str(u), "trigger": "agent"} for u in t.index],
                    mf,
                    (mf + ma) * (mf + of) / total,
                )
            )
    routine = inv[inv["routine"]]
    if routine["conceded"].any():
        for kind, (col, _) in UNIT_COLUMNS.items():
            u = routine.dropna(subset=[col])
            if u.empty:
                continue
            g = u.groupby([col, "conceded"])["rows"].sum().unstack("conceded", fill_value=0)
            k = g[True].to_numpy(float) if True in g.columns else np.zeros(len(g))
            n = g.sum(axis=1).to_numpy(float)
            big_k, big_n = k.sum(), n.sum()
            ok = (n > 0) & (big_n - n > 0)
            if not ok.any():
                continue
            units, k, n = g.index[ok], k[ok], n[ok]
            p = sps.hypergeom.sf(k - 1, big_n, n, big_k)
            p0 = (big_k - k) / (big_n - n)
            prompts = [
                f"Check the concessions before {unit}'s surveys: {pct(a, b)} of {unit}'s "
                f"routine invitations followed a discount or credit, against {100 * c:.1f}% "
                "for everyone else."
                for unit, a, b, c in zip(units, k, n, p0, strict=True)
            ]
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = (k / n) / np.where(p0 > 0, p0, np.nan)
            out.append(
                signal_frame(
                    kind,
                    units,
                    teams,
                    "concession_before_survey",
                    "conceded share / others' share",
                    ratio,
                    p,
                    n,
                    prompts,
                    "surveys",
                    [{col: str(u)} for u in units],
                    k,
                    n * big_k / big_n,
                )
            )
    return out


def solicitation(invites: pd.DataFrame, answers: pd.DataFrame) -> list[pd.DataFrame]:
    """Per unit: the share of its routine invitations preceded by a message asking for a top
    score, against everyone else's, and the uplift in top scores after such a message."""
    out: list[pd.DataFrame] = []
    routine_inv = invites[invites["routine"]] if not invites.empty else invites
    if routine_inv.empty or not routine_inv["solicited"].any():
        return out
    teams = teams_of(routine_inv, "agent_id", "team")
    big_k = float(routine_inv.loc[routine_inv["solicited"], "rows"].sum())
    big_n = float(routine_inv["rows"].sum())
    for kind, (col, _) in UNIT_COLUMNS.items():
        u = routine_inv.dropna(subset=[col])
        if u.empty:
            continue
        sums = u.assign(hit=np.where(u["solicited"], u["rows"], 0)).groupby(col)
        g = sums[["hit", "rows"]].sum()
        k, n = g["hit"].to_numpy(float), g["rows"].to_numpy(float)
        p0 = (big_k - k + 0.5) / (big_n - n + 1)
        p = np.where(k > 0, sps.binom.sf(k - 1, n, p0), 1.0)
        prompts = [
            f"Read {unit}'s messages before surveys: {pct(a, b)} of {unit}'s surveyed journeys "
            f"had a message asking for a top score (or saying only top scores count) before "
            f"the invitation, against {100 * c:.2f}% elsewhere."
            for unit, a, b, c in zip(g.index, k, n, p0, strict=True)
        ]
        wheres = [{col: str(unit), "direction": "outbound"} for unit in g.index]
        out.append(
            signal_frame(
                kind,
                g.index,
                teams,
                "solicitation",
                "solicited share / others' share",
                (k / n) / p0,
                p,
                n,
                prompts,
                "touchpoints",
                wheres,
                k,
                n * p0,
            )
        )
    if answers.empty or not answers["solicited"].any():
        return out
    routine = answers[answers["routine"]].copy()
    teams = teams_of(routine, "agent_id", "team") or teams
    for instrument, block in routine.groupby("instrument", sort=True):
        top = scale(str(instrument), block["score"].to_numpy(dtype=np.int64))[1]
        block = block.assign(is_top=block["score"] == top, sol=block["solicited"].astype(bool))
        for kind, (col, _) in UNIT_COLUMNS.items():
            u = block.dropna(subset=[col])
            if u.empty:
                continue
            t = cells(u, col, "sol", "is_top", "rows")
            st, sn, ut, un = t["tt"], t["tf"], t["ft"], t["ff"]
            keep = (st + sn > 0) & (ut + un > 0)
            t, st, sn, ut, un = t[keep], st[keep], sn[keep], ut[keep], un[keep]
            if t.empty:
                continue
            total = st + sn + ut + un
            p = sps.hypergeom.sf(st - 1, total, st + sn, st + ut)
            prompts = [
                f"After {unit} asked for a top score, {pct(a, a + b)} of answers were {top}; "
                f"without asking, {pct(x, x + y)}."
                for unit, a, b, x, y in zip(t.index, st, sn, ut, un, strict=True)
            ]
            wheres = [{col: str(unit), "instrument": str(instrument)} for unit in t.index]
            out.append(
                signal_frame(
                    kind,
                    t.index,
                    teams,
                    "solicitation_uplift",
                    f"uplift in share of {top}s (points)",
                    100 * (st / (st + sn) - ut / (ut + un)),
                    p,
                    total,
                    prompts,
                    "surveys",
                    wheres,
                    st,
                    (st + sn) * (st + ut) / total,
                    instrument=str(instrument),
                )
            )
    return out


def permutation_p(pooled: npt.NDArray[np.int64], n_audit: int, observed: float) -> float:
    """P(routine − audit NPS ≥ observed) when the audit answers are a random draw (without
    replacement) of ``n_audit`` from the unit's pooled (detractor, passive, promoter) counts."""
    d, pa_, pr = (int(x) for x in pooled)
    total = d + pa_ + pr
    n_r = total - n_audit
    if n_audit > 60:
        # normal approximation of the permutation distribution of the difference
        y = np.r_[np.full(d, -100.0), np.zeros(pa_), np.full(pr, 100.0)]
        var = y.var() * total / (total - 1) * (1 / n_r + 1 / n_audit)
        return float(sps.norm.sf(observed / np.sqrt(var))) if var > 0 else 1.0
    xd = np.arange(0, min(d, n_audit) + 1)[:, None]
    xp = np.arange(0, min(pr, n_audit) + 1)[None, :]
    xa = n_audit - xd - xp
    ok = (xa >= 0) & (xa <= pa_)
    logp = (
        _log_choose(d, xd) + _log_choose(pr, xp) + _log_choose(pa_, np.clip(xa, 0, None))
    ) - _log_choose(total, n_audit)
    audit = 100 * (xp - xd) / n_audit
    routine = 100 * ((pr - xp) - (d - xd)) / n_r
    hit = ok & (routine - audit >= observed - 1e-9)
    return float(np.clip(np.exp(logp)[hit].sum(), 0.0, 1.0))


def _log_choose(n: float, k: Any) -> Any:
    return special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)


def audit_gap(answers: pd.DataFrame) -> list[pd.DataFrame]:
    """Per unit: is the routine NPS above the unit's audit-stream NPS?"""
    a = answers[answers["instrument"] == "nps"]
    if a.empty or a["routine"].all() or not a["routine"].any():
        return []
    a = a.assign(
        band=np.where(a["score"] >= 9, "p", np.where(a["score"] <= 6, "d", "n")),
    )
    teams = teams_of(a, "agent_id", "team")
    out = []
    for kind, (col, _) in UNIT_COLUMNS.items():
        u = a.dropna(subset=[col])
        if u.empty:
            continue
        g = u.groupby([col, "routine", "band"])["rows"].sum().unstack(["routine", "band"], 0)

        def part(routine: bool, band: str, g: pd.DataFrame = g) -> Array:
            return (
                g[(routine, band)].to_numpy(float)
                if (routine, band) in g.columns
                else np.zeros(len(g))
            )

        dr, nr_, pr = part(True, "d"), part(True, "n"), part(True, "p")
        da, na_, pa_ = part(False, "d"), part(False, "n"), part(False, "p")
        nr, na = dr + nr_ + pr, da + na_ + pa_
        keep = (nr > 0) & (na > 0)
        if not keep.any():
            continue
        units = g.index[keep]
        dr, nr_, pr, da, na_, pa_, nr, na = (x[keep] for x in (dr, nr_, pr, da, na_, pa_, nr, na))
        v_r, v_a = 100 * (pr - dr) / nr, 100 * (pa_ - da) / na
        p = np.array(
            [
                permutation_p(np.array([d1 + d2, n1 + n2, p1 + p2], np.int64), int(k), obs)
                for d1, d2, n1, n2, p1, p2, k, obs in zip(
                    dr, da, nr_, na_, pr, pa_, na, v_r - v_a, strict=True
                )
            ]
        )
        prompts = [
            f"{unit}'s routine surveys give NPS {x:+.0f} (n = {m:.0f}); the audit sample of "
            f"the same work gives {y:+.0f} (n = {k:.0f})."
            for unit, x, m, y, k in zip(units, v_r, nr, v_a, na, strict=True)
        ]
        wheres = [{col: str(unit), "instrument": "nps"} for unit in units]
        out.append(
            signal_frame(
                kind,
                units,
                teams,
                "audit_gap",
                "routine − audit NPS",
                v_r - v_a,
                p,
                nr + na,
                prompts,
                "surveys",
                wheres,
                v_r,
                v_a,
                instrument="nps",
            )
        )
    return out


def review_queue(honesty: pd.DataFrame) -> pd.DataFrame:
    """One row per flagged unit: which signals flagged it and the prompts, in unit order."""
    cols = ["unit_kind", "unit", "team", "signals", "n_signals", "smallest_q", "prompt"]
    flagged = honesty[honesty["flagged"]].sort_values(["unit_kind", "unit", "q_value"])
    rows = []
    records = flagged[["unit_kind", "unit", "team", "signal", "q_value", "prompt"]].to_dict(
        "records"
    )
    for (kind, unit), group in itertools.groupby(
        records, key=lambda r: (r["unit_kind"], r["unit"])
    ):
        g = list(group)
        signals = list(dict.fromkeys(r["signal"] for r in g))
        rows.append(
            {
                "unit_kind": kind,
                "unit": unit,
                "team": g[0]["team"],
                "signals": ", ".join(signals),
                "n_signals": len(signals),
                "smallest_q": float(min(r["q_value"] for r in g)),
                "prompt": "Worth a look: " + " ".join(dict.fromkeys(r["prompt"] for r in g)),
            }
        )
    return pd.DataFrame(rows, columns=cols)
