"""Every customer's experiences: ``experience_customers``.

Per customer, from the per-journey table (Ibis, in the backend): journeys, the
outcome rate with its Wilson interval, the last failed outcome, the latest known
outcome, and the distributions of the treatment and of the effort — median and
worst — and a **trend**: the mean treatment of the later half of their rated
journeys minus that of the earlier half (the middle one of an odd number left
out), for customers with at least two.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from scipy import stats

from sawubona.stats import wilson


def customers(t: ir.Table, *, level: float) -> pa.Table:
    """The ``experience_customers`` table from the per-journey table ``t``."""
    y = t.outcome_achieved
    failed = (y == False).fill_null(False)  # noqa: E712
    agg = t.group_by("customer_id").aggregate(
        journeys=ibis._.count(),
        first_journey_at=t.started_at.min(),
        last_journey_at=t.started_at.max(),
        outcome_known=y.notnull().cast("int64").sum(),
        outcome_achieved=y.fill_null(False).cast("int64").sum(),
        last_outcome_achieved=y.argmax(t.started_at, where=y.notnull()),
        last_failed_at=t.started_at.max(where=failed),
        last_failed_journey_id=t.journey_id.argmax(t.started_at, where=failed),
        last_failed_kind=t.kind.argmax(t.started_at, where=failed),
        treatment_journeys=t.treatment.notnull().cast("int64").sum(),
        treatment_median=t.treatment.median(),
        treatment_worst=t.treatment.min(),
        treatment_last=t.treatment.argmax(t.started_at, where=t.treatment.notnull()),
        effort_contacts_median=t.effort_contacts.median(),
        effort_contacts_worst=t.effort_contacts.max(),
        elapsed_vs_norm_median=t.elapsed_vs_norm.median(),
        elapsed_vs_norm_worst=t.elapsed_vs_norm.max(),
    )
    rated = t.filter(t.treatment.notnull())
    w = ibis.window(group_by="customer_id", order_by=[rated.started_at, rated.journey_id])
    rated = rated.mutate(
        _rn=ibis.row_number().over(w),
        _cnt=rated.count().over(ibis.window(group_by="customer_id")),
    )
    half = (rated._cnt / 2).floor().cast("int64")
    trend = (
        rated.filter(rated._cnt >= 2)
        .mutate(_early=rated._rn < half, _late=rated._rn >= rated._cnt - half)
        .group_by("customer_id")
        .aggregate(
            treatment_trend=ibis._.treatment.mean(where=ibis._._late)
            - ibis._.treatment.mean(where=ibis._._early)
        )
    )
    out = (
        agg.left_join(trend, "customer_id")
        .select(~ibis.selectors.matches("customer_id_right"))
        .order_by("customer_id")
        .to_pyarrow()
    )
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
    return out
