"""The voice lens's run: frames (Ibis) → summaries → statistics → result tables.

Result tables (every one documented in ``docs/lenses/voice.md``):

``voice_scores``          NPS / CSAT top-2-box / CES by dimension and group, n, interval,
                          non-response, changes
``voice_funnel``          teams and agents against funnel limits, with shrunk estimates
``voice_coverage``        invitation and answer shares by outcome and promise status
``voice_selection``       raw against selection-corrected (IPW) scores
``voice_concessions``     concessions around surveys, NPS with and without them
``voice_honesty``         every honesty test: unit, signal, statistic, p, q, prompt, rows
``voice_review_queue``    the units with at least one signal at the FDR
``voice_evidence``        the rows behind flagged solicitation, concession, top-score signals
``voice_say_do``          retention by score
``voice_validity``        AUC of the score for retention, overall and per unit
``voice_themes``          comment themes per score band
``voice_theme_comments``  the comments behind each theme
"""

from __future__ import annotations

import json

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from sawubona.lenses.base import LensInput, LensOutput
from sawubona.lenses.voice import (
    forensics,
    honesty,
    prep,
    saydo,
    scores,
    selection,
    smallgroups,
    themes,
    units,
)
from sawubona.lenses.voice.config import resolve
from sawubona.lenses.voice.findings import findings
from sawubona.stats import bh_adjust

ANSWER_KEYS = [
    "routine",
    "agent_id",
    "team",
    "instrument",
    "kind",
    "outcome",
    "promise",
    "channel",
    "score",
    "solicited",
    "conceded",
]


S, F, INT, B = pa.string(), pa.float64(), pa.int64(), pa.bool_()

#: Column names and types of every result table (empty tables keep them).
SCHEMAS: dict[str, pa.Schema] = {
    "voice_scores": pa.schema(
        [("instrument", S), ("metric", S), ("dimension", S), ("group", S), ("n", INT)]
        + [(c, F) for c in ("value", "low", "high", "se")]
        + [("interval", S)]
        + [(c, INT) for c in ("n_invited", "n_answered", "n_no_score", "n_no_answer")]
        + [("response_rate", F)]
        + [(c, INT) for c in ("promoters", "passives", "detractors")]
        + [("compared_with", S)]
        + [(c, F) for c in ("difference", "difference_low", "difference_high", "difference_p")]
    ),
    "voice_funnel": pa.schema(
        [("metric", S), ("unit_kind", S), ("unit", S), ("n", INT)]
        + [(c, F) for c in ("value", "target", "z", "low_95", "high_95", "low_998", "high_998")]
        + [("position", S)]
        + [(c, F) for c in ("shrunk", "shrunk_low", "shrunk_high")]
        + [(c, F) for c in ("overdispersion_phi", "overdispersion_p", "tau")]
    ),
    "voice_coverage": pa.schema(
        [("dimension", S), ("group", S), ("closed_journeys", INT), ("invited_journeys", INT)]
        + [(c, F) for c in ("coverage", "coverage_low", "coverage_high")]
        + [("compared_with", S), ("coverage_difference", F), ("coverage_difference_p", F)]
        + [("invitations", INT), ("answered", INT)]
        + [(c, F) for c in ("response_rate", "response_low", "response_high")]
    ),
    "voice_selection": pa.schema(
        [("instrument", S), ("metric", S), ("answers", INT), ("closed_journeys", INT)]
        + [("weighting_classes", INT)]
        + [(c, F) for c in ("raw", "raw_low", "raw_high", "corrected")]
        + [(c, F) for c in ("corrected_low", "corrected_high", "correction")]
    ),
    "voice_concessions": pa.schema(
        [("measure", S), ("value", F), ("low", F), ("high", F), ("n", INT), ("note", S)]
    ),
    "voice_honesty": pa.schema(
        [(c, S) for c in ("unit_kind", "unit", "team", "signal", "instrument")]
        + [("statistic_name", S)]
        + [(c, F) for c in ("statistic", "observed", "expected")]
        + [("n", INT), ("p_value", F), ("q_value", F), ("flagged", B)]
        + [(c, S) for c in ("prompt", "rows_table", "rows_where")]
    ),
    "voice_review_queue": pa.schema(
        [(c, S) for c in ("unit_kind", "unit", "team", "signals")]
        + [("n_signals", INT), ("smallest_q", F), ("prompt", S)]
    ),
    "voice_evidence": pa.schema(
        [(c, S) for c in ("unit_kind", "unit", "signal", "row_table", "row_id")]
        + [("at", pa.timestamp("us"))]
    ),
    "voice_say_do": pa.schema(
        [("instrument", S), ("score", INT), ("answers", INT), ("retained", INT)]
        + [(c, F) for c in ("retention", "low", "high")]
        + [("behaviour", S)]
    ),
    "voice_validity": pa.schema(
        [(c, S) for c in ("instrument", "scope_kind", "scope")]
        + [("answers", INT), ("lost", INT)]
        + [(c, F) for c in ("auc", "auc_low", "auc_high", "p_value")]
        + [("predicts", B)]
    ),
    "voice_themes": pa.schema(
        [(c, S) for c in ("instrument", "band")]
        + [("rank", INT), ("phrase", S), ("words", INT), ("comments", INT), ("band_comments", INT)]
        + [(c, F) for c in ("share", "share_low", "share_high", "other_share")]
        + [("distinctiveness_z", F), ("language", S)]
    ),
    "voice_theme_comments": pa.schema(
        [(c, S) for c in ("instrument", "band", "phrase", "survey_id", "customer_id")]
        + [("score", INT), ("language", S), ("comment", S)]
    ),
}


def _column(values: pd.Series, typ: pa.DataType) -> pa.Array:
    """One column as Arrow ``typ``; NaN and None become null."""
    if pa.types.is_integer(typ) or pa.types.is_floating(typ):
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        missing = ~np.isfinite(v) if pa.types.is_integer(typ) else np.isnan(v)
        if pa.types.is_integer(typ):
            v = np.round(np.where(missing, 0, v))
        return pa.array(v, mask=missing).cast(typ)
    if pa.types.is_boolean(typ):
        return pa.array(values.astype(object).where(values.notna(), None).tolist(), typ)
    if pa.types.is_timestamp(typ):
        return pa.array(pd.to_datetime(values), from_pandas=True).cast(typ)
    objs = values.astype(object).where(values.notna(), None)
    try:
        return pa.array(objs, type=typ, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all str: spell each value
        return pa.array([None if x is None else str(x) for x in objs], typ)


def to_arrow(df: pd.DataFrame, name: str) -> pa.Table:
    """Result table ``name`` from ``df``: its declared columns and types, in order."""
    schema = SCHEMAS[name]
    df = df.reset_index(drop=True)
    arrays = [
        _column(df[f.name], f.type) if f.name in df.columns else pa.nulls(len(df), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def build(data: LensInput) -> LensOutput:
    data = LensInput(data.tables, data.results, data.as_of, resolve(data.settings))
    out = LensOutput()
    with prep.Scratch(data.table("surveys")) as scratch:
        ctx = prep.journey_context(data)
        ctx = scratch.keep(ctx) if ctx is not None else None
        conc = prep.concession_actions(data)
        conc = scratch.keep(conc) if conc is not None else None
        msgs = prep.agent_message_flags(data)
        msgs = scratch.keep(msgs) if msgs is not None else None
        sol = prep.solicitation_messages(msgs)
        frame = scratch.keep(prep.survey_frame(data, ctx, conc, sol))
        if int(frame.count().execute()) == 0:
            out.skipped.append("no survey was sent or answered by as_of")
            out.tables = {name: schema.empty_table() for name, schema in SCHEMAS.items()}
            return out
        for name, missing in (
            ("journeys", "scores by journey kind and outcome, coverage, IPW"),
            ("touchpoints", "channels, agent attribution of journeys, solicitation"),
            ("actions", "concessions"),
        ):
            if not data.has(name):
                out.skipped.append(f"without {name}: no {missing}")
        tables = _analyse(data, frame, ctx, conc, msgs, out)
    for name, schema in SCHEMAS.items():  # every table, so no stale result survives a rerun
        tables.setdefault(name, schema.empty_table())
    out.tables = {name: tables[name] for name in SCHEMAS}
    out.findings = findings(out.tables, float(data.settings["fdr"]))
    return out


def _analyse(
    data: LensInput,
    frame: ir.Table,
    ctx: ir.Table | None,
    conc: ir.Table | None,
    msgs: ir.Table | None,
    out: LensOutput,
) -> dict[str, pa.Table]:
    """Summaries (Ibis, one query each) → statistics → result tables."""
    st = data.settings
    sol = prep.solicitation_messages(msgs)
    answers = (
        frame.filter(frame.status == "scored")
        .group_by(ANSWER_KEYS)
        .aggregate(rows=lambda t: t.count(), amount=lambda t: t.concession_amount.sum())
        .to_pandas()
    )
    cube = _cube(ctx, frame, conc, float(st["concession_window_hours"]))
    counted, label = saydo.behaviour(data, frame, int(st["horizon_days"]))
    behaviour = counted.to_pandas() if counted is not None else pd.DataFrame()
    if counted is None:
        out.skipped.append(f"say vs do: {label}")
    hon = _honesty(data, frame, answers, cube, behaviour)
    queue = honesty.review_queue(hon)
    flagged = {k: set(queue.loc[queue.unit_kind == k, "unit"]) for k in ("agent", "team")}

    t: dict[str, pa.Table] = {}
    t["voice_scores"] = to_arrow(_scores(frame, int(st["adjusted_wald_below"])), "voice_scores")
    t["voice_funnel"] = to_arrow(_funnel(answers), "voice_funnel")
    t["voice_honesty"] = to_arrow(hon, "voice_honesty")
    t["voice_review_queue"] = to_arrow(queue, "voice_review_queue")
    t["voice_evidence"] = to_arrow(
        _evidence(hon, frame, sol, int(st["evidence_rows"])), "voice_evidence"
    )
    if not cube.empty:
        routine_status = (
            frame.filter(frame.routine & frame.journey_id.notnull())
            .group_by(["outcome", "promise", "status"])
            .aggregate(rows=lambda t: t.count())
            .to_pandas()
        )
        t["voice_coverage"] = to_arrow(selection.coverage(cube, routine_status), "voice_coverage")
        sel = [selection.ipw(cube, answers, inst, int(st["min_cell"])) for inst in ("nps", "csat")]
        t["voice_selection"] = to_arrow(
            pd.DataFrame([s for s in sel if s is not None]), "voice_selection"
        )
    if conc is not None:
        t["voice_concessions"] = to_arrow(
            selection.concessions(cube, answers, _leads(frame)), "voice_concessions"
        )
    if counted is not None and not behaviour.empty:
        t["voice_say_do"] = to_arrow(saydo.retention_by_score(behaviour, label), "voice_say_do")
        t["voice_validity"] = to_arrow(saydo.validity(behaviour, flagged), "voice_validity")
    theme_rows, drill = themes.themes(
        prep.scored_comments(data).to_pyarrow(),
        int(st["themes_per_band"]),
        int(st["min_theme_comments"]),
    )
    t["voice_themes"] = to_arrow(theme_rows, "voice_themes")
    t["voice_theme_comments"] = to_arrow(drill, "voice_theme_comments")
    return t


def _cube(
    ctx: ir.Table | None, frame: ir.Table, conc: ir.Table | None, window_hours: float
) -> pd.DataFrame:
    """Closed journeys counted by agent, team, kind, outcome, promise and survey/concession
    flags; a journey's team falls back to its agent's usual team."""
    if ctx is None:
        return pd.DataFrame()
    cube = prep.journey_cube(ctx, frame, conc, window_hours).to_pandas()
    if not cube.empty:
        agent_team = units.teams_of(cube, "journey_agent", "journey_team")
        team = cube["journey_team"].astype(object)
        cube["journey_team"] = team.where(
            team.notna(), cube["journey_agent"].astype(object).map(agent_team)
        )
    return cube


def _honesty(
    data: LensInput,
    frame: ir.Table,
    answers: pd.DataFrame,
    cube: pd.DataFrame,
    behaviour: pd.DataFrame,
) -> pd.DataFrame:
    """Every honesty test, one Benjamini–Hochberg family; flagged rows point at evidence."""
    st = data.settings
    invites = (
        frame.group_by(
            ["routine", "trigger", "agent_id", "team", "outcome", "conceded", "solicited"]
        )
        .aggregate(rows=lambda t: t.count())
        .to_pandas()
    )
    rows: list[pd.DataFrame] = []
    if not cube.empty:
        rows += honesty.selectivity(cube)
        rows += honesty.concession(cube)
    rows += honesty.by_trigger(invites)
    rows += honesty.solicitation(invites, answers)
    rows += honesty.audit_gap(answers)
    rows += forensics.distribution(
        answers, int(st["min_answers"]), int(st["simulations"]), int(st["seed"])
    )
    if not behaviour.empty:
        rows += saydo.validity_signals(behaviour)
    rows = [r for r in rows if not r.empty]
    hon = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(columns=list(units.HONESTY_COLUMNS))
    )
    hon["q_value"] = bh_adjust(hon["p_value"].to_numpy(dtype=float)) if len(hon) else []
    hon["flagged"] = hon["q_value"] <= float(st["fdr"])
    with_evidence = hon["flagged"] & hon["signal"].isin(EVIDENCE_SIGNALS)
    with_evidence &= hon["unit_kind"] == "agent"
    hon.loc[with_evidence, "rows_table"] = "voice_evidence"
    hon.loc[with_evidence, "rows_where"] = [
        json.dumps({"unit_kind": k, "unit": u, "signal": g}, sort_keys=True)
        for k, u, g in zip(
            hon.loc[with_evidence, "unit_kind"],
            hon.loc[with_evidence, "unit"],
            hon.loc[with_evidence, "signal"],
            strict=True,
        )
    ]
    return hon.sort_values(["unit_kind", "unit", "signal", "instrument"], na_position="first")


def _scores(frame: ir.Table, adjusted_below: int) -> pd.DataFrame:
    """Counts by every dimension at once (one query), then summed per dimension."""
    cols = [col for _, col in scores.DIMENSIONS if col]
    keys = ["instrument", "status", "score", "invited_known", *cols]
    fine = frame.group_by(keys).aggregate(rows=frame.count()).to_pandas()
    parts = []
    for dimension, col in scores.DIMENSIONS:
        if col and fine[col].notna().sum() == 0:
            continue
        if col == "trigger" and (fine["trigger"] == "unknown").all():
            continue
        group = fine[col].astype(object) if col else pd.Series("all", index=fine.index)
        base = ["instrument", "status", "score", "invited_known"]
        counted = (
            fine[base]
            .assign(group=group.where(group.notna(), scores.NONE_LABEL).astype(str))
            .assign(rows=fine["rows"])
            .groupby([*base, "group"], dropna=False)["rows"]
            .sum()
            .reset_index()
        )
        part = scores.score_table(counted, dimension, adjusted_below)
        if not part.empty:
            parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _leads(frame: ir.Table) -> tuple[float, float, float, float]:
    f = frame.filter(frame.conceded & frame.concession_lead_hours.notnull())
    h = f.concession_lead_hours
    r = f.aggregate(
        n=f.count(), q25=h.quantile(0.25), q50=h.quantile(0.5), q75=h.quantile(0.75)
    ).to_pandas()
    row = r.iloc[0]
    return (
        float(row["n"]),
        float(row["q25"]) if pd.notna(row["q25"]) else np.nan,
        float(row["q50"]) if pd.notna(row["q50"]) else np.nan,
        float(row["q75"]) if pd.notna(row["q75"]) else np.nan,
    )


def _funnel(answers: pd.DataFrame) -> pd.DataFrame:
    parts = []
    for unit_kind, col in (("team", "team"), ("agent", "agent_id")):
        a = answers[answers[col].notna()]
        a = a.assign(unit=a[col].astype(str))
        nps = a[a["instrument"] == "nps"]
        if not nps.empty:
            c = nps.assign(
                detractors=np.where(nps.score <= 6, nps.rows, 0),
                passives=np.where((nps.score >= 7) & (nps.score <= 8), nps.rows, 0),
                promoters=np.where(nps.score >= 9, nps.rows, 0),
            )
            counts = c.groupby("unit")[["detractors", "passives", "promoters"]].sum().reset_index()
            parts.append(smallgroups.nps_funnel(unit_kind, counts))
        csat = a[a["instrument"] == "csat"]
        if not csat.empty:
            c = csat.assign(successes=np.where(csat.score >= 4, csat.rows, 0), n=csat.rows)
            counts = c.groupby("unit")[["successes", "n"]].sum().reset_index()
            parts.append(smallgroups.rate_funnel(unit_kind, "csat_top2", counts))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


EVIDENCE_COLUMNS = ("unit_kind", "unit", "signal", "row_table", "row_id", "at")
#: signals whose flagged units get their rows listed in ``voice_evidence``
EVIDENCE_SIGNALS = ("solicitation", "concession", "concession_before_survey", "excess_top")


def _evidence(hon: pd.DataFrame, frame: ir.Table, sol: ir.Table | None, limit: int) -> pd.DataFrame:
    """The rows behind flagged agents' solicitation, concession and excess-top signals, the
    first ``limit`` per agent and signal (teams: their agents' rows)."""
    parts: list[pd.DataFrame] = []
    flagged = hon[hon["flagged"] & (hon["unit_kind"] == "agent")]
    for signal in EVIDENCE_SIGNALS:
        agents = sorted(set(flagged.loc[flagged["signal"] == signal, "unit"]))
        if not agents:
            continue
        if signal == "solicitation":
            if sol is None:
                continue
            e = sol.filter(sol.agent_id.isin(agents)).select(
                unit=sol.agent_id, row_id=sol.touchpoint_id, at=sol.msg_at
            )
            table = "touchpoints"
        else:
            cond = frame.agent_id.isin(agents) & frame.routine
            if signal == "excess_top":
                cond = cond & (frame.status == "scored") & _is_top(frame)
            else:
                cond = cond & frame.conceded
            e = frame.filter(cond).select(
                unit=frame.agent_id, row_id=frame.survey_id, at=frame.ref_at
            )
            table = "surveys"
        got = e.to_pandas().sort_values(["unit", "at", "row_id"])
        got = got.groupby("unit", sort=False).head(limit)
        parts.append(got.assign(unit_kind="agent", signal=signal, row_table=table))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in EVIDENCE_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(EVIDENCE_COLUMNS)]


def _is_top(frame: ir.Table) -> ir.BooleanValue:
    return ibis.cases(
        (frame.instrument == "nps", frame.score == 10),
        (frame.instrument == "csat", frame.score == 5),
        (frame.instrument == "ces", frame.score == 7),
        else_=ibis.literal(False),
    )
