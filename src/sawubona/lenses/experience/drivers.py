"""Which journey features move the outcome, the treatment and the effort: ``experience_drivers``.

The model, kept transparent (``docs/lenses/experience.md`` says it in words):

1. **Targets**, one model per target and journey kind: ``outcome_achieved``
   (journeys with a known outcome), ``treatment_survey`` (the customer's own
   rating of the treatment, 0–1), ``effort_survey`` (their rating of the ease,
   0–1), ``effort_contacts`` (inbound contacts) and ``elapsed_vs_norm``. The
   operational treatment parts (broken promises, transfers…) are *features*, not
   targets: regressing the blended treatment on them would only find its recipe.
2. **Features**: yes/no facts of the journey (a broken promise of each kind, an
   item unavailable, a transfer, a repeat contact…) and the channel (one dummy per
   channel against the most common). Controls are held constant without being
   ranked: the outcome (failed / unknown) for the treatment and effort targets,
   the survey instrument, and — as context — what the customer came for
   (``desired_outcome``, when it has few values).
3. **Sufficient statistics from the backend**: one Ibis ``group_by`` over all the
   features returns, per distinct combination of feature values (a *cell*), the
   journeys, Σy and Σy². Ordinary least squares on the cells weighted by their
   size gives exactly the per-journey fit, and — because the features are constant
   within a cell — so do the residual sums and the HC3 heteroskedasticity-robust
   covariance (MacKinnon & White 1985). Nothing per journey leaves the backend.
4. **Per feature**: the adjusted effect (the coefficient: the difference it makes
   with the other features held constant) with a t interval and p-value, the raw
   difference of means with a Welch interval, the journeys with and without it,
   and its share of the explained variance (Johnson's relative weights, 2000).
5. **Rank**: features whose effect survives Benjamini–Hochberg at 5% (within the
   model) first, by the size of the effect; then the others by size. Features seen
   in fewer than ``min_n`` journeys (with or without) are left out; a feature that
   coincides with one already in the model (R² > 0.98) is left out and named in the
   ``note`` of the one kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import stats

from sawubona.stats import bh_adjust

Array = npt.NDArray[np.float64]

MISSING = "(none)"


@dataclass(frozen=True)
class Target:
    name: str
    part: str
    unit: str
    label: str
    #: features not used for this target (they are the target, or imply it)
    exclude: frozenset[str] = frozenset()
    controls_outcome: bool = True
    survey: bool = False


CONTACT_FEATURES = frozenset(
    {
        "transferred",
        "repeat_contact",
        "channel_switch",
        "unanswered",
        "slow_first_response",
        "templated_replies",
    }
)

TARGETS = (
    Target(
        "outcome_achieved",
        "outcome",
        "share of journeys achieved (0–1)",
        "outcome achieved",
        controls_outcome=False,
    ),
    Target(
        "treatment_survey",
        "treatment",
        "customer's treatment rating (0–1)",
        "customer's rating of the treatment",
        survey=True,
    ),
    Target(
        "effort_survey",
        "effort",
        "customer's ease rating (0–1, 1 = easy)",
        "customer's rating of the ease",
        survey=True,
    ),
    Target(
        "effort_contacts",
        "effort",
        "inbound contacts",
        "contacts the customer had to make",
        exclude=CONTACT_FEATURES,
    ),
    Target(
        "elapsed_vs_norm",
        "effort",
        "elapsed time ÷ the kind's median",
        "time to the outcome against the norm",
    ),
)


@dataclass(frozen=True)
class Feature:
    name: str
    label: str
    expr: Callable[[ir.Table], ir.BooleanValue]


def static_features(wait_factor: float) -> list[Feature]:
    return [
        Feature(
            "item_unavailable",
            "an item the customer wanted was not available (stock-out)",
            lambda t: t.items_unavailable > 0,
        ),
        Feature("several_items", "several items wanted", lambda t: t.items >= 2),
        Feature("transferred", "transferred to another agent or team", lambda t: t.transfers > 0),
        Feature(
            "repeat_contact", "the customer had to contact again", lambda t: t.repeat_contacts > 0
        ),
        Feature(
            "channel_switch", "the customer had to switch channel", lambda t: t.channel_switches > 0
        ),
        Feature(
            "unanswered",
            "a contact from the customer was left unanswered",
            lambda t: t.unanswered_contacts > 0,
        ),
        Feature(
            "slow_first_response",
            f"first response slower than {wait_factor:g}× the channel's median",
            lambda t: t.first_response_vs_norm > wait_factor,
        ),
        Feature(
            "templated_replies",
            "only templated or bot replies, none written by a person",
            lambda t: (t.replies > 0) & (t.personal_replies == 0),
        ),
    ]


def promise_feature(kind: str) -> Feature:
    late = (
        "delivered late or not by the promised date"
        if kind == "delivery"
        else ("kept late, or not kept by its due date")
    )
    return Feature(
        f"broken_promise:{kind}",
        f"{kind} promise broken ({late})",
        lambda t: t.broken_promise_kinds.split(",").contains(kind),
    )


# --------------------------------------------------------------------------- fitting


@dataclass
class Fit:
    beta: Array
    cov: Array
    n: int
    r2: float
    df: int


def fit_cells(x: Array, n: Array, sy: Array, syy: Array) -> Fit:
    """OLS of y on the columns of ``x`` (one row per cell of identical x), from each cell's
    count, Σy and Σy²; HC3 covariance. Exactly the fit on the expanded journeys."""
    w = n.astype(float)
    xtx = (x * w[:, None]).T @ x
    xty = x.T @ sy
    inv = np.linalg.pinv(xtx)
    beta = inv @ xty
    mu = x @ beta
    ssr_c = np.maximum(syy - 2 * mu * sy + w * mu**2, 0.0)
    h = np.einsum("ij,jk,ik->i", x, inv, x)
    h = np.clip(h, 0.0, 0.99)
    meat = (x * (ssr_c / (1 - h) ** 2)[:, None]).T @ x
    cov = inv @ meat @ inv
    total_n = int(w.sum())
    ybar = sy.sum() / max(total_n, 1)
    sst = syy.sum() - total_n * ybar**2
    ssr = ssr_c.sum()
    r2 = float(1 - ssr / sst) if sst > 0 else float("nan")
    return Fit(beta, cov, total_n, r2, total_n - x.shape[1])


def relative_weights(x: Array, n: Array, sy: Array, syy: Array) -> Array:
    """Johnson's (2000) relative weights of the columns of ``x`` (no intercept column):
    each predictor's share of R², from the cell-weighted correlation matrix."""
    w = n.astype(float)
    total = w.sum()
    k = x.shape[1]
    if k == 0 or total < 3:
        return np.zeros(k)
    mx = (x * w[:, None]).sum(0) / total
    my = sy.sum() / total
    cxx = (x * w[:, None]).T @ x / total - np.outer(mx, mx)
    cxy = x.T @ sy / total - mx * my
    vy = syy.sum() / total - my**2
    sd = np.sqrt(np.clip(np.diag(cxx), 1e-15, None))
    if vy <= 0:
        return np.zeros(k)
    rxx = cxx / np.outer(sd, sd)
    rxy = cxy / (sd * np.sqrt(vy))
    vals, vecs = np.linalg.eigh(rxx)
    vals = np.clip(vals, 1e-12, None)
    lam = vecs @ np.diag(np.sqrt(vals)) @ vecs.T
    beta = np.linalg.solve(lam, rxy)
    return (lam**2) @ (beta**2)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- the table


@dataclass
class Model:
    target: Target
    kind: str
    columns: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


COLUMNS: dict[str, pa.DataType] = {
    "part": pa.string(),
    "target": pa.string(),
    "kind": pa.string(),
    "rank": pa.int64(),
    "feature": pa.string(),
    "label": pa.string(),
    "role": pa.string(),
    "effect": pa.float64(),
    "low": pa.float64(),
    "high": pa.float64(),
    "p_value": pa.float64(),
    "q_value": pa.float64(),
    "n_with": pa.int64(),
    "n_without": pa.int64(),
    "mean_with": pa.float64(),
    "mean_without": pa.float64(),
    "raw_difference": pa.float64(),
    "raw_low": pa.float64(),
    "raw_high": pa.float64(),
    "share_explained": pa.float64(),
    "model_n": pa.int64(),
    "model_r2": pa.float64(),
    "unit": pa.string(),
    "note": pa.string(),
}


def empty() -> pa.Table:
    return pa.table({k: pa.array([], v) for k, v in COLUMNS.items()})


def _categorical(t: ir.Table, col: str) -> ir.StringValue:
    return t[col].cast("string").fill_null(MISSING)  # type: ignore[no-any-return]


def drivers(
    t: ir.Table,
    *,
    min_n: int,
    level: float,
    wait_factor: float,
    max_levels: int,
) -> pa.Table:
    """The ``experience_drivers`` table from the per-journey table ``t``: two queries (the
    kinds, then the cells of every model at once), the rest in NumPy."""
    kinds = (
        t.group_by("kind")
        .aggregate(n=ibis._.count(), n_desired=ibis._.desired_outcome.nunique())
        .order_by([ibis.desc("n"), "kind"])
        .to_pyarrow()
        .to_pylist()
    )
    with_desired = [
        k["kind"] for k in kinds if k["n_desired"] is not None and 2 <= k["n_desired"] <= max_levels
    ]
    static = static_features(wait_factor)
    cells = _cells(t, static, with_desired)
    rows: list[dict[str, Any]] = []
    kind_col = np.array(cells.column("kind").to_pylist(), dtype=object)
    for target in TARGETS:
        for k in kinds:
            if k["n"] < 2 * min_n:
                continue
            sel = (kind_col == k["kind"]) & (np.asarray(cells.column(f"_n_{target.name}")) > 0)
            if not sel.any():
                continue
            part = cells.filter(pa.array(sel))
            cats = ["channel"]
            if k["kind"] in with_desired:
                cats.append("desired_outcome")
            if target.survey:
                cats.append("survey_instrument")
            rows += _one_model(part, target, k["kind"], static, cats, min_n, level)
    if not rows:
        return empty()
    return pa.table({c: pa.array([r.get(c) for r in rows], ty) for c, ty in COLUMNS.items()})


def _cells(t: ir.Table, static: list[Feature], with_desired: list[str]) -> pa.Table:
    """Per distinct combination of every feature and control (a cell): for each target, its
    journeys, Σy and Σy² — the sufficient statistics of all the models in one query."""
    cols: dict[str, Any] = {f"f:{f.name}": f.expr(t).fill_null(False).cast("int32") for f in static}
    cols["broken_promise_kinds"] = t.broken_promise_kinds.fill_null("")
    cols["channel"] = _categorical(t, "channel")
    cols["desired_outcome"] = ibis.ifelse(
        t.kind.isin(with_desired or [""]), _categorical(t, "desired_outcome"), MISSING
    )
    cols["survey_instrument"] = _categorical(t, "survey_instrument")
    cols["_outcome"] = ibis.cases(
        (t.outcome_achieved.isnull(), "unknown"), (t.outcome_achieved, "achieved"), else_="failed"
    )
    metrics: dict[str, Any] = {}
    for target in TARGETS:
        y = t[target.name]
        if y.type().is_boolean():  # PostgreSQL casts booleans to integers, not to doubles
            y = y.cast("int32")
        y = y.cast("float64")
        metrics[f"_n_{target.name}"] = y.count()
        metrics[f"_sy_{target.name}"] = y.sum()
        metrics[f"_syy_{target.name}"] = (y * y).sum()
    return (
        t.mutate(**cols)
        .group_by(["kind", *cols])
        .aggregate(**{k: v.name(k) for k, v in metrics.items()})
        .to_pyarrow()
    )


def _one_model(
    cells: pa.Table,
    target: Target,
    kind: str,
    static: list[Feature],
    cats: list[str],
    min_n: int,
    level: float,
) -> list[dict[str, Any]]:
    n = np.asarray(cells.column(f"_n_{target.name}"), dtype=float)
    sy = np.nan_to_num(np.asarray(cells.column(f"_sy_{target.name}").to_pylist(), dtype=float))
    syy = np.nan_to_num(np.asarray(cells.column(f"_syy_{target.name}").to_pylist(), dtype=float))
    total = n.sum()
    if total < 2 * min_n or syy.sum() - sy.sum() ** 2 / total <= 1e-12 * total:
        return []  # too few journeys, or the target does not vary
    # candidate columns, in priority order: drivers, context, controls
    cand: list[tuple[str, str, str, Array]] = []
    for f in static:
        if f.name not in target.exclude:
            col = np.asarray(cells.column(f"f:{f.name}"), dtype=float)
            cand.append((f.name, f.label, "driver", col))
    lists = [set(v.split(",")) - {""} for v in cells.column("broken_promise_kinds").to_pylist()]
    for pk in sorted(set().union(*lists)):
        f = promise_feature(pk)
        if f.name not in target.exclude:
            col = np.array([pk in s_ for s_ in lists], dtype=float)
            cand.append((f.name, f.label, "driver", col))
    for c in cats:
        role = {"channel": "driver", "desired_outcome": "context"}.get(c, "control")
        cand += _dummies(cells.column(c).to_pylist(), n, c, role, min_n)
    if target.controls_outcome:
        cand += _dummies(
            cells.column("_outcome").to_pylist(),
            n,
            "outcome",
            "control",
            min_n,
            reference="achieved",
        )
    design = [np.ones(len(n))]
    kept: list[tuple[str, str, str, Array]] = []
    notes: dict[str, str] = {}
    for name, label, role, col in cand:
        n_with = float((n * col).sum())
        if n_with < min_n or total - n_with < min_n:
            continue
        r2 = _r2_on(np.column_stack(design), col, n)
        if r2 > 0.98:
            same = _most_similar(kept, col, n)
            if same is not None:
                notes[same] = (notes.get(same, "") + f"; coincides with: {label}").lstrip("; ")
            continue
        design.append(col)
        kept.append((name, label, role, col))
    if not kept:
        return []
    x = np.column_stack(design)
    fit = fit_cells(x, n, sy, syy)
    rw = relative_weights(x[:, 1:], n, sy, syy)
    se = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
    df = max(fit.df, 1)
    tq = float(stats.t.ppf(0.5 + level / 2, df))
    effect = fit.beta[1:]
    se1 = se[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(effect / se1), df)
    is_driver = np.array([k[2] == "driver" for k in kept])
    q = np.full(len(kept), np.nan)
    q[is_driver] = bh_adjust(p[is_driver])
    out: list[dict[str, Any]] = []
    for j, (name, label, role, col) in enumerate(kept):
        nw, sw, sww = (n * col).sum(), (sy * col).sum(), (syy * col).sum()
        no, so, soo = (n * (1 - col)).sum(), (sy * (1 - col)).sum(), (syy * (1 - col)).sum()
        mw, mo = sw / nw, so / no
        vw = max(sww / nw - mw**2, 0.0) * nw / max(nw - 1, 1)
        vo = max(soo / no - mo**2, 0.0) * no / max(no - 1, 1)
        raw_se = np.sqrt(vw / nw + vo / no)
        welch_df = _welch_df(vw, nw, vo, no)
        rq = float(stats.t.ppf(0.5 + level / 2, welch_df)) if welch_df > 0 else float("nan")
        out.append(
            {
                "part": target.part,
                "target": target.name,
                "kind": kind,
                "feature": name,
                "label": label,
                "role": role,
                "effect": float(effect[j]),
                "low": float(effect[j] - tq * se1[j]),
                "high": float(effect[j] + tq * se1[j]),
                "p_value": float(p[j]),
                "q_value": None if np.isnan(q[j]) else float(q[j]),
                "n_with": round(float(nw)),
                "n_without": round(float(no)),
                "mean_with": float(mw),
                "mean_without": float(mo),
                "raw_difference": float(mw - mo),
                "raw_low": float(mw - mo - rq * raw_se),
                "raw_high": float(mw - mo + rq * raw_se),
                "share_explained": float(rw[j] / fit.r2) if fit.r2 > 0 else None,
                "model_n": fit.n,
                "model_r2": fit.r2,
                "unit": target.unit,
                "note": notes.get(name),
            }
        )
    drivers_ = [r for r in out if r["role"] == "driver"]
    others = [r for r in out if r["role"] != "driver"]
    drivers_.sort(
        key=lambda r: (
            not (r["q_value"] is not None and r["q_value"] <= 0.05),
            -abs(r["effect"]),
        )
    )
    for i, r in enumerate(drivers_, 1):
        r["rank"] = i
    return drivers_ + others


def _welch_df(v1: float, n1: float, v2: float, n2: float) -> float:
    a, b = v1 / n1, v2 / n2
    denom = (a**2 / max(n1 - 1, 1)) + (b**2 / max(n2 - 1, 1))
    return float((a + b) ** 2 / denom) if denom > 0 else float(n1 + n2 - 2)


def _dummies(
    values: list[str | None],
    n: Array,
    prefix: str,
    role: str,
    min_n: int,
    reference: str | None = None,
) -> list[tuple[str, str, str, Array]]:
    arr = np.array([v if v is not None else MISSING for v in values], dtype=object)
    levels, inverse = np.unique(arr, return_inverse=True)
    counts = np.bincount(inverse, weights=n, minlength=len(levels))
    if len(levels) < 2:
        return []
    ref = reference if reference in levels else levels[int(np.argmax(counts))]
    out = []
    for li, lev in enumerate(levels):
        if lev == ref or counts[li] < min_n:
            continue
        name = f"{prefix}:{lev}"
        if prefix == "outcome":
            label = f"outcome {lev} (held constant; reported in the outcome part)"
        elif prefix == "desired_outcome":
            label = f"wanted: {lev} (vs {ref})"
        elif prefix == "survey_instrument":
            label = f"rated on {lev} (vs {ref})"
        else:
            label = f"{prefix} {lev} (vs {ref})"
        out.append((name, label, role, (inverse == li).astype(float)))
    return out


def _r2_on(x: Array, col: Array, n: Array) -> float:
    """Weighted R² of ``col`` regressed on the columns of ``x`` (which include an intercept),
    from the small weighted Gram matrices (no decomposition of the cells × columns matrix)."""
    xw = x * n[:, None]
    xtx = xw.T @ x
    xty = xw.T @ col
    coef = np.linalg.pinv(xtx) @ xty
    mean = (n * col).sum() / n.sum()
    sst = (n * (col - mean) ** 2).sum()
    resid = col - x @ coef
    return float(1 - (n * resid**2).sum() / sst) if sst > 0 else 1.0


def _most_similar(kept: list[tuple[str, str, str, Array]], col: Array, n: Array) -> str | None:
    """The kept feature most correlated (weighted by cell size) with ``col``."""
    best, name = -1.0, None
    for k in kept:
        a = abs(_wcorr(k[3], col, n))
        if a > best:
            best, name = a, k[0]
    return name


def _wcorr(a: Array, b: Array, n: Array) -> float:
    w = n / n.sum()
    ma, mb = (w * a).sum(), (w * b).sum()
    cov = (w * (a - ma) * (b - mb)).sum()
    va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
    return float(cov / np.sqrt(va * vb)) if va > 0 and vb > 0 else 0.0
