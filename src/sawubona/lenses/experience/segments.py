"""Outcome, treatment and effort by kind, channel, team, segment and month: ``experience_segments``.

Per group (computed in the backend with Ibis ``group_by``, then finished in NumPy):

* the **outcome rate** achieved / known with its Wilson interval and n, and — for
  groups within one dimension (channel, team, segment, month) — the
  beta-binomial shrunk rate with its posterior interval, so that a team with 3
  of 3 does not top a team with 950 of 1000;
* the **mean survey rating** of the treatment (0–1) with a t interval;
* the **medians** of the treatment (0–1), of the inbound contacts and of the
  elapsed time against the kind's norm, each with its **exact distribution-free
  interval**: the order statistics at ranks r and n + 1 − r with r the 2.5%
  quantile of Binomial(n, ½) (coverage ≥ 95%). The ranks are read from a
  histogram the backend returns per group (treatment rounded to 0.001; contacts
  exact; elapsed ratio on a log grid of 0.5%), so nothing per journey leaves it.
  Bins round to the nearest with ties up (``floor(x + ½)``): engines break ties of
  ``round`` differently (PostgreSQL rounds a double's tie to even).
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from sawubona.lenses.experience.journeys import count_if
from sawubona.stats import fit_beta_prior, shrink, wilson

ALL = "(all)"
MISSING = "(none)"
#: dimensions broken down within each journey kind
DIMENSIONS = ("channel", "team", "segment", "month")
#: metric → (column, histogram bin expression, value of a bin); bins round ties up, alike
#: on every engine
LOG_STEP = 200.0


def _bins(t: ir.Table) -> dict[str, tuple[ir.Value, Any]]:
    return {
        "treatment": (
            (t.treatment * 1000 + 0.5).floor().cast("int64"),
            lambda b: b / 1000.0,
        ),
        "effort_contacts": (t.effort_contacts.cast("int64"), lambda b: b.astype(float)),
        "elapsed_vs_norm": (
            (ibis.greatest(t.elapsed_vs_norm, 1e-4).ln() * LOG_STEP + 0.5).floor().cast("int64"),
            lambda b: np.exp(b / LOG_STEP),
        ),
    }


COLUMNS: dict[str, pa.DataType] = {
    "kind": pa.string(),
    "dimension": pa.string(),
    "value": pa.string(),
    "n": pa.int64(),
    "outcome_known": pa.int64(),
    "outcome_achieved": pa.int64(),
    "outcome_rate": pa.float64(),
    "outcome_low": pa.float64(),
    "outcome_high": pa.float64(),
    "outcome_rate_shrunk": pa.float64(),
    "outcome_shrunk_low": pa.float64(),
    "outcome_shrunk_high": pa.float64(),
    "rated_n": pa.int64(),
    "rating_mean": pa.float64(),
    "rating_low": pa.float64(),
    "rating_high": pa.float64(),
    "treatment_n": pa.int64(),
    "treatment_median": pa.float64(),
    "treatment_low": pa.float64(),
    "treatment_high": pa.float64(),
    "effort_n": pa.int64(),
    "effort_contacts_median": pa.float64(),
    "effort_contacts_low": pa.float64(),
    "effort_contacts_high": pa.float64(),
    "elapsed_n": pa.int64(),
    "elapsed_vs_norm_median": pa.float64(),
    "elapsed_vs_norm_low": pa.float64(),
    "elapsed_vs_norm_high": pa.float64(),
}


#: the rows' order; "all" and "kind" are rolled up from the channel groups (counts add up)
GROUPINGS = (("all", None, "_all"), ("kind", None, "kind"), *((d, "kind", d) for d in DIMENSIONS))
SUMS = ("n", "outcome_known", "outcome_achieved", "rated_n", "_rs", "_rss")
METRICS = (
    ("treatment", "treatment", "treatment_n"),
    ("effort_contacts", "effort_contacts", "effort_n"),
    ("elapsed_vs_norm", "elapsed_vs_norm", "elapsed_n"),
)


def _keyed(t: ir.Table) -> ir.Table:
    """``t`` with every dimension as text, ``(none)`` when missing."""
    return t.mutate(**{d: t[d].cast("string").fill_null(MISSING) for d in DIMENSIONS})


def _by_dimension(cells: pa.Table, extra: list[str], sums: tuple[str, ...]) -> pa.Table:
    """One row per (dimension, kind, value, ``extra``…) summed from the finest cells (one
    row per kind × channel × team × segment × month × ``extra``): every journey is in one
    cell, so the sums are those of a ``group_by`` over the journeys, from a small table."""
    parts = []
    for dimension in DIMENSIONS:
        g = cells.group_by(["kind", dimension, *extra]).aggregate([(c, "sum") for c in sums])
        g = g.rename_columns([c.removesuffix("_sum") for c in g.column_names])
        parts.append(
            g.rename_columns(
                [
                    "_gkind" if c == "kind" else "_value" if c == dimension else c
                    for c in g.column_names
                ]
            ).append_column("_dimension", pa.array([dimension] * g.num_rows, pa.string()))
        )
    cols = ["_dimension", "_gkind", "_value", *extra, *sums]
    return pa.concat_tables([p.select(cols) for p in parts])


def segments(t: ir.Table, *, level: float) -> pa.Table:
    """The ``experience_segments`` table from the per-journey table ``t``."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    keyed = _keyed(t)
    keys = ["_dimension", "_gkind", "_value"]
    y = keyed.outcome_achieved
    rating = keyed.treatment_survey
    cells = (
        keyed.group_by(["kind", *DIMENSIONS])
        .aggregate(
            n=ibis._.count(),
            outcome_known=count_if(keyed, y.notnull()),
            outcome_achieved=count_if(keyed, y.fill_null(False)),
            rated_n=count_if(keyed, rating.notnull()),
            _rs=rating.sum(),
            _rss=(rating * rating).sum(),
        )
        .to_pyarrow()
    )
    agg = _roll_up(_by_dimension(cells, [], SUMS), [], SUMS)
    order = {g[0]: i for i, g in enumerate(GROUPINGS)}
    rows = sorted(
        range(agg.num_rows),
        key=lambda i: (
            order[agg.column("_dimension")[i].as_py()],
            agg.column("_gkind")[i].as_py() or "",
            agg.column("_value")[i].as_py() or "",
        ),
    )
    agg = agg.take(pa.array(rows, pa.int64()))
    m = agg.num_rows
    dims = agg.column("_dimension").to_pylist()
    kind = agg.column("_gkind").to_pylist()
    out: dict[str, Any] = {
        "kind": kind,
        "dimension": dims,
        "value": agg.column("_value").to_pylist(),
        "n": agg.column("n"),
        "outcome_known": agg.column("outcome_known"),
        "outcome_achieved": agg.column("outcome_achieved"),
    }
    known = np.asarray(agg.column("outcome_known"), dtype=float)
    ach = np.asarray(agg.column("outcome_achieved"), dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["outcome_rate"] = np.where(known > 0, ach / known, np.nan)
    out["outcome_low"], out["outcome_high"] = wilson(ach, known, z)
    shrunk = np.full((3, m), np.nan)
    groups = np.array([f"{d}|{k}" for d, k in zip(dims, kind, strict=True)], dtype=object)
    for g in np.unique(groups):
        if g.split("|")[0] in ("all", "kind"):
            continue
        sel = (groups == g) & (known > 0)
        if sel.sum() >= 2:
            prior = fit_beta_prior(ach[sel], known[sel])
            mean, lo, hi = shrink(ach[sel], known[sel], prior, level)
            shrunk[:, sel] = np.vstack([mean, lo, hi])
    out["outcome_rate_shrunk"], out["outcome_shrunk_low"], out["outcome_shrunk_high"] = shrunk
    rn = np.asarray(agg.column("rated_n"), dtype=float)
    rs = np.nan_to_num(np.asarray(agg.column("_rs").to_pylist(), dtype=float))
    rss = np.nan_to_num(np.asarray(agg.column("_rss").to_pylist(), dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(rn > 0, rs / rn, np.nan)
        var = np.where(rn > 1, (rss - rn * mean**2) / (rn - 1), np.nan)
        tq = stats.t.ppf(0.5 + level / 2, np.maximum(rn - 1, 1))
        half = tq * np.sqrt(np.clip(var, 0, None) / rn)
    out["rated_n"] = agg.column("rated_n")
    out["rating_mean"] = mean
    out["rating_low"] = np.where(rn > 1, np.clip(mean - half, 0, 1), np.nan)
    out["rating_high"] = np.where(rn > 1, np.clip(mean + half, 0, 1), np.nan)
    medians = _medians(keyed, keys, agg, level)
    for metric, prefix, nname in METRICS:
        cnt, med, lo, hi = medians[metric]
        out[nname] = cnt
        out[f"{prefix}_median"], out[f"{prefix}_low"], out[f"{prefix}_high"] = med, lo, hi
    return pa.table({c: pa.array(_py(out[c]), ty) for c, ty in COLUMNS.items()})


def _roll_up(t: pa.Table, extra: list[str], sums: tuple[str, ...]) -> pa.Table:
    """Add the ``all`` and ``kind`` groups, summed from the channel groups (every journey is
    in exactly one channel group, ``(none)`` included)."""
    ch = t.filter(pc.equal(t.column("_dimension"), "channel"))
    parts = [t]
    by_kind = ch.group_by(["_gkind", *extra]).aggregate([(c, "sum") for c in sums])
    by_kind = by_kind.rename_columns([c.removesuffix("_sum") for c in by_kind.column_names])
    k = by_kind.num_rows
    parts.append(
        by_kind.append_column("_dimension", pa.array(["kind"] * k, pa.string())).append_column(
            "_value", by_kind.column("_gkind")
        )
    )
    if extra:
        every = ch.group_by(extra).aggregate([(c, "sum") for c in sums])
    else:
        every = pa.table({f"{c}_sum": [pc.sum(ch.column(c)).as_py()] for c in sums})
    every = every.rename_columns([c.removesuffix("_sum") for c in every.column_names])
    a = every.num_rows
    every = (
        every.append_column("_gkind", pa.nulls(a, pa.string()))
        .append_column("_dimension", pa.array(["all"] * a, pa.string()))
        .append_column("_value", pa.array([ALL] * a, pa.string()))
    )
    cols = t.column_names
    return pa.concat_tables([p.select(cols).cast(t.schema) for p in (*parts, every)])


def _py(values: Any) -> Any:
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        return pa.array(values, pa.float64(), mask=np.isnan(values))
    return values


Stats = tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
]


def _medians(keyed: ir.Table, keys: list[str], agg: pa.Table, level: float) -> dict[str, Stats]:
    """Median and exact order-statistic interval of each metric per group of ``agg``'s keys,
    from one histogram query (per finest cell and bin, summed per dimension here)."""
    bins = _bins(keyed)
    hist_parts = [
        keyed.filter(keyed[metric].notnull()).select(
            "kind", *DIMENSIONS, _metric=ibis.literal(metric), _bin=bins[metric][0]
        )
        for metric, _, _ in METRICS
    ]
    cells = (
        ibis.union(*hist_parts, distinct=False)
        .group_by(["kind", *DIMENSIONS, "_metric", "_bin"])
        .aggregate(_c=ibis._.count())
        .to_pyarrow()
    )
    hist = _roll_up(
        _by_dimension(cells, ["_metric", "_bin"], ("_c",)), ["_metric", "_bin"], ("_c",)
    )
    m = agg.num_rows
    index = {
        r: i for i, r in enumerate(zip(*[agg.column(k).to_pylist() for k in keys], strict=True))
    }
    gid_all = np.array(
        [index[r] for r in zip(*[hist.column(k).to_pylist() for k in keys], strict=True)],
        np.int64,
    )
    metric_all = np.array(hist.column("_metric").to_pylist(), dtype=object)
    b_all = np.asarray(hist.column("_bin"), dtype=np.int64)
    c_all = np.asarray(hist.column("_c"), dtype=np.int64)
    out: dict[str, Stats] = {}
    for metric, _, _ in METRICS:
        sel = metric_all == metric
        out[metric] = _order_stats(gid_all[sel], b_all[sel], c_all[sel], m, level, bins[metric][1])
    return out


def _order_stats(
    gid: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    c: npt.NDArray[np.int64],
    m: int,
    level: float,
    value_of: Any,
) -> Stats:
    res_n = np.zeros(m, np.int64)
    res = np.full((3, m), np.nan)
    if len(b) == 0:
        return res_n, res[0], res[1], res[2]
    order = np.lexsort((b, gid))
    gid, b, c = gid[order], b[order], c[order]
    cum = np.cumsum(c)
    n = np.bincount(gid, weights=c, minlength=m).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]])
    has = n > 0
    r = np.maximum(stats.binom.ppf((1 - level) / 2, n, 0.5), 1).astype(np.int64)

    def at(rank: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        pos = np.searchsorted(cum, start + rank, side="left")
        pos = np.clip(pos, 0, len(b) - 1)
        return value_of(b[pos])  # type: ignore[no-any-return]

    lo_mid = np.maximum((n + 1) // 2, 1)
    hi_mid = np.maximum(n // 2 + 1, 1)
    med = (at(lo_mid) + at(hi_mid)) / 2
    low = at(r)
    high = at(np.maximum(n + 1 - r, 1))
    res_n[:] = n
    res[0] = np.where(has, med, np.nan)
    res[1] = np.where(has, low, np.nan)
    res[2] = np.where(has, high, np.nan)
    return res_n, res[0], res[1], res[2]
