"""Every customer's experiences: ``experience_customers``.

Per customer, from the per-journey table (Ibis, in the backend): journeys, the
outcome rate with its Wilson interval, the last failed outcome, the latest known
outcome, and the distributions of the treatment and of the effort — median and
worst — and a **trend**: the least-squares slope of their treatment against time,
per year (the engine's population covariance over variance per customer, no
sorting), for customers with at least two rated journeys at different times.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import stats

from sawubona.lenses.experience.journeys import arg_max, count_if
from sawubona.stats import wilson


def customers(t: ir.Table, *, level: float) -> pa.Table:
    """The ``experience_customers`` table from the per-journey table ``t``."""
    y = t.outcome_achieved
    rated = t.treatment.notnull()
    # years since 2000, so that the sums keep their precision
    # a double before dividing (Spark reads the literal as a decimal and would round)
    x = (t.started_at.epoch_seconds() - 946_684_800).cast("float64") / (365.25 * 86_400)
    failed = (y == False).fill_null(False)  # noqa: E712
    agg = t.group_by("customer_id").aggregate(
        journeys=ibis._.count(),
        first_journey_at=t.started_at.min(),
        last_journey_at=t.started_at.max(),
        outcome_known=count_if(t, y.notnull()),
        outcome_achieved=count_if(t, y.fill_null(False)),
        last_outcome_achieved=arg_max(y, t.started_at, where=y.notnull()),
        last_failed_at=t.started_at.max(where=failed),
        last_failed_journey_id=arg_max(t.journey_id, t.started_at, where=failed),
        last_failed_kind=arg_max(t.kind, t.started_at, where=failed),
        treatment_journeys=count_if(t, t.treatment.notnull()),
        treatment_median=t.treatment.median(),
        treatment_worst=t.treatment.min(),
        treatment_last=arg_max(t.treatment, t.started_at, where=t.treatment.notnull()),
        effort_contacts_median=t.effort_contacts.median(),
        effort_contacts_worst=t.effort_contacts.max(),
        elapsed_vs_norm_median=t.elapsed_vs_norm.median(),
        elapsed_vs_norm_worst=t.elapsed_vs_norm.max(),
        # the least-squares slope of treatment on time (years) is cov(x, y) / var(x); the
        # engines' covariance and variance aggregates are computed stably (one pass, about
        # the running mean), where sums of x and x² would cancel and lose the slope of
        # journeys hours apart
        _n=count_if(t, rated),
        _cov=x.cov(t.treatment, where=rated, how="pop"),
        _var=x.var(where=rated, how="pop"),
    )
    out = agg.to_pyarrow()
    z = float(stats.norm.ppf(0.5 + level / 2))
    k = np.asarray(out.column("outcome_achieved"), dtype=float)
    n = np.asarray(out.column("outcome_known"), dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(n > 0, k / n, np.nan)
    low, high = wilson(k, n, z)
    at = out.schema.get_field_index("outcome_achieved") + 1
    for name, values in (("outcome_rate", rate), ("outcome_low", low), ("outcome_high", high)):
        out = out.add_column(at, name, pa.array(values, pa.float64(), mask=np.isnan(values)))
        at += 1
    n_, cov, var = (
        np.asarray(pc.fill_null(out.column(c).cast(pa.float64()), np.nan), dtype=float)
        for c in ("_n", "_cov", "_var")
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        # n·var is the centred sum of squares; below 1e-9 years² the times are all but equal
        slope = np.where((n_ >= 2) & (n_ * var > 1e-9), cov / var, np.nan)
    out = out.drop_columns(["_n", "_cov", "_var"])
    return out.append_column("treatment_trend", pa.array(slope, pa.float64(), mask=np.isnan(slope)))
