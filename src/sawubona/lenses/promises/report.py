"""From the ledger to the result tables: integrity, lateness, at-risk, make-right, gaming.

Counting runs as Ibis over the ledger (registered back as an Arrow memtable on the
same backend); the statistics — Wilson intervals, beta-binomial shrinkage,
one-sided hypergeometric tests with Benjamini–Hochberg — run in NumPy/SciPy on
the per-group counts, which are small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from sawubona.lenses.promises.enrich import evidence, one_decimal, stake
from sawubona.stats import bh_adjust, fit_beta_prior, shrink, wilson

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.lenses.base import LensInput

#: dimensions of promises_integrity: name → ledger column
DIMENSIONS = {
    "all": None,
    "kind": "kind",
    "team": "team",
    "channel": "channel",
    "month": "due_at",
    "source": "source",
}
#: dimensions whose groups can be small: their rates are shrunk (beta-binomial)
SHRUNK = ("team", "month")
#: lateness bands in hours (upper bounds), early ones negative
BANDS = (
    ("early by more than 7 days", -168.0),
    ("early by 1-7 days", -24.0),
    ("early by up to 1 day", 0.0),
    ("late by up to 1 day", 24.0),
    ("late by 1-3 days", 72.0),
    ("late by 3-7 days", 168.0),
    ("late by 7-14 days", 336.0),
    ("late by more than 14 days", float("inf")),
)


def _count(cond: ir.BooleanValue) -> ir.IntegerScalar:
    return cond.fill_null(False).cast("int32").sum()


def _run(backend: Any, expr: ir.Table) -> pa.Table:
    return backend.to_pyarrow(expr) if backend is not None else expr.to_pyarrow()


def integrity(ledger: ir.Table, backend: Any, fdr: float) -> pa.Table:
    """Integrity rate = kept / (kept + broken) per dimension and group, with its Wilson
    interval, the beta-binomial shrunk rate beside the raw one, and a one-sided test of
    "keeps its word less often than expected" (BH within a dimension). The expectation
    is the group's own mix of kinds at each kind's rate (``expected_rate``), so a team
    that makes the hard promises is not flagged for it; kinds are compared with each
    other (hypergeometric)."""
    import ibis

    month = ledger.due_at.strftime("%Y-%m")
    keys = {
        d: (month if d == "month" else ledger[c].cast("string")).fill_null("(none)")
        for d, c in DIMENSIONS.items()
        if c is not None
    }
    st = ledger.status
    # counts are additive: one pass over the ledger by every combination of the
    # dimensions, rolled up per dimension below
    cells = _run(
        backend,
        ledger.group_by(**keys).aggregate(
            kept=_count(st == "kept"),
            broken=_count(st == "broken"),
            broken_late=_count(ledger.broken_how == "late"),
            broken_not_kept=_count(ledger.broken_how == "not_kept"),
            cancelled=_count(st == "cancelled"),
            open=_count(st == "open"),
            at_risk=_count(st == "at_risk"),
        ),
    ).to_pandas()
    # quantiles are not: computed per dimension over the few broken promises
    b = ledger.filter(st == "broken").mutate(**keys)
    late, unkept = b.broken_how == "late", b.broken_how == "not_kept"
    missing = ibis.null("float64")
    parts = [
        b.group_by(_g=ibis.literal("all") if c is None else b[d]).aggregate(
            dimension=ibis.literal(d),
            # x.median(where=c) spelt as the median of x-or-null: Ibis's PySpark compiler
            # would filter percentile()'s constant 0.5 too, which Spark refuses
            median_lateness_hours=late.ifelse(b.lateness_hours, missing).median(),
            p90_lateness_hours=b.lateness_hours.quantile(0.9, where=late),
            median_business_lateness_hours=late.ifelse(b.business_lateness_hours, missing).median(),
            median_overdue_hours=unkept.ifelse(b.lateness_hours, missing).median(),
        )
        for d, c in DIMENSIONS.items()
    ]
    quant = _run(backend, parts[0].union(*parts[1:])).to_pandas()
    n_cols = ["kept", "broken", "broken_late", "broken_not_kept", "cancelled", "open", "at_risk"]
    kind_kept = cells.groupby("kind")["kept"].sum()
    kind_n = kind_kept + cells.groupby("kind")["broken"].sum()
    rate = (kind_kept / kind_n.where(kind_n > 0)).fillna(0.0)
    cells["expected_kept"] = cells["kind"].map(rate) * (cells["kept"] + cells["broken"])
    rolled = []
    for d in DIMENSIONS:
        g = cells.assign(_g="all") if d == "all" else cells.rename(columns={d: "_g"})
        r = g.groupby("_g", as_index=False)[[*n_cols, "expected_kept"]].sum()
        rolled.append(r.assign(dimension=d))
    counts = pd.concat(rolled, ignore_index=True).merge(quant, on=["dimension", "_g"], how="left")
    counts = counts.rename(columns={"_g": "group"})
    counts["n"] = counts["kept"] + counts["broken"]
    k, n = counts["kept"].to_numpy(float), counts["n"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        counts["integrity_rate"] = np.where(n > 0, k / n, np.nan)
    low, high = wilson(k, n)
    counts["low"], counts["high"] = low, high
    with np.errstate(invalid="ignore", divide="ignore"):
        counts["expected_rate"] = np.where(n > 0, counts["expected_kept"] / n, np.nan)
    for col in ("shrunk_rate", "shrunk_low", "shrunk_high", "p_value", "q_value"):
        counts[col] = np.nan
    counts["prior_mean"] = np.nan
    counts["flagged"] = False
    for dim in DIMENSIONS:
        m = (counts["dimension"] == dim).to_numpy()
        if dim == "all" or m.sum() < 2:
            continue
        kk, nn = k[m], n[m]
        has = nn > 0
        if dim in SHRUNK:
            prior = fit_beta_prior(kk, nn)
            mean, lo_, hi_ = shrink(kk, nn, prior)
            counts.loc[m, "shrunk_rate"] = np.where(has, mean, np.nan)
            counts.loc[m, "shrunk_low"] = np.where(has, lo_, np.nan)
            counts.loc[m, "shrunk_high"] = np.where(has, hi_, np.nan)
            counts.loc[m, "prior_mean"] = prior.mean
        if dim == "kind":  # P(kept <= k) if its promises were drawn from all of them
            p = stats.hypergeom.cdf(kk, nn.sum(), kk.sum(), nn)
        else:  # P(kept <= k) at the rate its own kind mix leads to expect
            e = counts.loc[m, "expected_kept"].fillna(0).to_numpy(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                rate = np.clip(np.where(has, e / nn, 0.5), 1e-9, 1 - 1e-9)
            p = stats.binom.cdf(kk, nn, rate)
        p = np.where(has, p, np.nan)
        q = bh_adjust(p)
        counts.loc[m, "p_value"], counts.loc[m, "q_value"] = p, q
        counts.loc[m, "flagged"] = np.nan_to_num(q, nan=1.0) <= fdr
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    counts["_o"] = counts["dimension"].map(order)
    counts = counts.sort_values(["_o", "group"]).drop(columns="_o")
    cols = [
        "dimension",
        "group",
        "n",
        "kept",
        "broken",
        "integrity_rate",
        "low",
        "high",
        "shrunk_rate",
        "shrunk_low",
        "shrunk_high",
        "prior_mean",
        "expected_rate",
        "p_value",
        "q_value",
        "flagged",
        "broken_late",
        "broken_not_kept",
        "cancelled",
        "open",
        "at_risk",
        "median_lateness_hours",
        "p90_lateness_hours",
        "median_business_lateness_hours",
        "median_overdue_hours",
    ]
    return pa.Table.from_pandas(counts[cols], preserve_index=False)


def lateness(ledger: ir.Table, backend: Any) -> pa.Table:
    """How early or late kept and broken promises were, in bands, per kind and overall;
    broken promises not kept at all form their own band."""
    import ibis

    h = ledger.lateness_hours
    branches = [(ledger.broken_how == "not_kept", ibis.literal("not kept (still open past due)"))]
    branches += [(h <= upper, ibis.literal(name)) for name, upper in BANDS[:-1]]
    band = ibis.cases(*branches, else_=ibis.literal(BANDS[-1][0]))
    t = ledger.filter(ledger.status.isin(["kept", "broken"])).mutate(band=band)
    parts = [
        t.group_by("band").aggregate(n=t.count()).mutate(kind=ibis.literal("(all)")),
        t.group_by("kind", "band").aggregate(n=t.count()),
    ]
    out = _run(backend, parts[0].union(parts[1].select("band", "n", "kind"))).to_pandas()
    names = [b for b, _ in BANDS] + ["not kept (still open past due)"]
    out["band_order"] = out["band"].map({b: i for i, b in enumerate(names)})
    out["share"] = out["n"] / out.groupby("kind")["n"].transform("sum")
    out = out.sort_values(["kind", "band_order"])[["kind", "band", "band_order", "n", "share"]]
    return pa.Table.from_pandas(out, preserve_index=False)


def at_risk(data: LensInput, ledger: ir.Table, kinds: ir.Table, backend: Any) -> pa.Table:
    """Open promises, the ones at risk first, then by time left and by the stake."""
    t = stake(data, ledger.filter(ledger.status.isin(["open", "at_risk"])), ledger)
    k = kinds.select(_k=kinds.kind, p90_time_to_keep_hours=kinds.p90_time_to_keep_hours)
    t = t.left_join(k, t.kind == k._k).select(*t.columns, "p90_time_to_keep_hours")
    t = t.order_by(
        (t.status == "at_risk").desc(),
        t.time_left_hours.asc(),
        t.stake.desc(nulls_first=False),
        t.promise_id,
    )
    return _run(
        backend,
        t.select(
            "promise_id",
            "customer_id",
            "journey_id",
            "kind",
            "team",
            "made_by",
            "channel",
            "made_at",
            "due_at",
            "status",
            "at_risk_reason",
            "time_left_hours",
            "business_time_left_hours",
            "elapsed_share",
            "p90_time_to_keep_hours",
            "stake",
            "currency",
            "customer_value",
            "customer_broken",
            evidence=evidence(t),
            source_row=t.evidence,
        ),
    )


def make_right(data: LensInput, ledger: ir.Table, backend: Any) -> pa.Table:
    """Broken promises with no apology or credit after them, most at stake first."""
    import ibis

    t = ledger.filter((ledger.status == "broken") & ~ledger.made_good.fill_null(False))
    t = stake(data, t, ledger)
    t = t.order_by(
        t.stake.desc(nulls_first=False),
        t.customer_broken.desc(),
        t.lateness_hours.desc(),
        t.promise_id,
    )
    days = one_decimal(t.lateness_hours / 24)
    suggestion = ibis.ifelse(
        t.broken_how == "late",
        "Apologise: the " + t.kind + " came " + days + " days after it was promised",
        "Apologise and put it right: the "
        + t.kind
        + " promised for "
        + t.due_at.strftime("%Y-%m-%d")
        + " has not happened",
    )
    return _run(
        backend,
        t.select(
            "promise_id",
            "customer_id",
            "journey_id",
            "kind",
            "team",
            "made_by",
            "channel",
            "made_at",
            "due_at",
            "kept_at",
            "broken_how",
            "lateness_hours",
            "business_lateness_hours",
            "followed_up_at",
            "stake",
            "currency",
            "customer_value",
            "customer_broken",
            evidence=evidence(t),
            source_row=t.evidence,
            suggestion=suggestion,
        ),
    )


def gaming(
    ledger: ir.Table,
    pauses: ir.Table | None,
    backend: Any,
    fdr: float,
    padding_min_ratio: float,
) -> pa.Table:
    """Marks of gaming the ledger, per team and per agent: padded deadlines, renegotiated
    due dates, paused time, pauses right after a customer message. Prompts for review,
    never verdicts.

    Padding: each promise's ``log(promised_vs_norm)`` is compared with its kind's mean and
    variance of it; the group's sum gives a one-sided z-test ("gives itself more time than
    its kinds' norms"), BH within a dimension, flagged when also the group's median
    promised time is at least ``padding_min_ratio`` × the norm. Renegotiations: a binomial
    test against the count its kind mix leads to expect."""
    import ibis

    r = ledger.promised_vs_norm
    lr = ibis.ifelse(r > 0, r.ln(), None)
    base = ledger.mutate(_lr=lr)
    kind_stats = base.group_by(_k=base.kind).aggregate(
        _km=base._lr.mean(),
        _kv=base._lr.var(how="pop"),
        _kr=base.renegotiated.cast("int32").cast("float64").mean(),
    )
    t = base.left_join(kind_stats, base.kind == kind_stats._k).select(
        *base.columns, "_km", "_kv", "_kr"
    )
    has_lr = t._lr.notnull()
    parts = []
    for dim, col in (("team", "team"), ("agent", "made_by")):
        g = t.mutate(dimension=ibis.literal(dim), group=t[col].fill_null("(none)"))
        parts.append(
            g.group_by("dimension", "group").aggregate(
                promises=g.count(),
                median_promised_vs_norm=g.promised_vs_norm.median(),
                padded=g.padded.cast("int32").sum(),
                _lr_n=_count(has_lr),
                _lr_sum=g._lr.sum(),
                _lr_exp=g._km.sum(where=has_lr),
                _lr_var=g._kv.sum(where=has_lr),
                renegotiated=g.renegotiated.cast("int32").sum(),
                expected_renegotiated=g._kr.sum(),
                paused_business_hours=g.paused_business_hours.sum(),
                promised_business_hours=g.promised_business_hours.sum(),
            )
        )
    out = _run(backend, parts[0].union(parts[1])).to_pandas()
    if pauses is not None:
        pz = []
        for dim, col in (("team", "p_team"), ("agent", "p_agent")):
            g = pauses.mutate(dimension=ibis.literal(dim), group=pauses[col].fill_null("(none)"))
            pz.append(
                g.group_by("dimension", "group").aggregate(
                    pauses=g.count(), pauses_after_customer=g.p_after_customer.cast("int32").sum()
                )
            )
        pc = _run(backend, pz[0].union(pz[1])).to_pandas()
        out = out.merge(pc, on=["dimension", "group"], how="outer")
    else:
        out["pauses"] = 0
        out["pauses_after_customer"] = 0
    for c in ("promises", "padded", "renegotiated", "pauses", "pauses_after_customer", "_lr_n"):
        out[c] = out[c].fillna(0).astype("int64")
    for c in (
        "expected_renegotiated",
        "paused_business_hours",
        "promised_business_hours",
        "_lr_sum",
        "_lr_exp",
        "_lr_var",
    ):
        out[c] = out[c].fillna(0.0)
    n = out["promises"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["padded_share"] = out["padded"] / n
        out["renegotiated_share"] = out["renegotiated"] / n
        out["pause_share"] = out["paused_business_hours"] / (
            out["paused_business_hours"] + out["promised_business_hours"]
        )
        out["pauses_after_customer_share"] = out["pauses_after_customer"] / out["pauses"]
        z = (out["_lr_sum"] - out["_lr_exp"]) / np.sqrt(out["_lr_var"])
        z = np.where(out["_lr_var"] > 0, z, np.where(out["_lr_sum"] > out["_lr_exp"], np.inf, 0))
    out["padding_z"] = np.where(out["_lr_n"] > 0, z, np.nan)
    out["padding_q"] = np.nan
    out["renegotiation_q"] = np.nan
    for dim in out["dimension"].unique():
        m = (out["dimension"] == dim).to_numpy()
        out.loc[m, "padding_q"] = bh_adjust(stats.norm.sf(out.loc[m, "padding_z"].to_numpy()))
        k = out.loc[m, "renegotiated"].to_numpy(float)
        nn = n[m]
        with np.errstate(invalid="ignore", divide="ignore"):
            p0 = np.clip(out.loc[m, "expected_renegotiated"].to_numpy(float) / nn, 1e-6, 1 - 1e-6)
        p = np.where(nn > 0, stats.binom.sf(k - 1, nn, p0), np.nan)
        out.loc[m, "renegotiation_q"] = bh_adjust(p)
    out["padding_flag"] = (out["padding_q"].fillna(1) <= fdr) & (
        out["median_promised_vs_norm"].fillna(0) >= padding_min_ratio
    )
    out["renegotiation_flag"] = (out["renegotiation_q"].fillna(1) <= fdr) & (
        out["renegotiated"] >= 2 * out["expected_renegotiated"]
    )
    out = out.sort_values(["dimension", "group"])
    cols = [
        "dimension",
        "group",
        "promises",
        "median_promised_vs_norm",
        "padded",
        "padded_share",
        "padding_z",
        "padding_q",
        "padding_flag",
        "renegotiated",
        "renegotiated_share",
        "expected_renegotiated",
        "renegotiation_q",
        "renegotiation_flag",
        "paused_business_hours",
        "pause_share",
        "pauses",
        "pauses_after_customer",
        "pauses_after_customer_share",
    ]
    return pa.Table.from_pandas(out[cols], preserve_index=False)
