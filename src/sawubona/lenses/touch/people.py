"""Per customer and per team: who heard from a person, and who only from machines.

Aggregations over ``touch_messages`` (Arrow, vectorised); statistics from
:mod:`sawubona.stats`. Column meanings: :data:`sawubona.lenses.touch.columns.COLUMNS`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.touch.summary import (
    PERSON_TOUCHES,
    TOUCHES,
    WRITTEN,
    customer_codes,
    is_value,
)
from sawubona.stats import bh_adjust, fit_beta_prior, shrink, two_proportion_z, wilson


def _days(as_of: dt.datetime, at: pa.Array | pa.ChunkedArray) -> pa.Array:
    stamp = pa.scalar(as_of, pa.timestamp("us"))
    micros = pc.microseconds_between(pc.cast(at, pa.timestamp("us")), stamp)
    return pc.divide(pc.cast(micros, pa.float64()), 86_400e6)


def customers_table(
    messages: pa.Table,
    inbound: pa.Table,
    as_of: dt.datetime,
    customer: tuple[npt.NDArray[np.int64], pa.Array] | None = None,
) -> pa.Table:
    """One row per customer with an outbound or inbound touchpoint.

    ``customer`` numbers each message's customer (``-1``: none) and gives the
    values so numbered (:func:`~sawubona.lenses.touch.summary.customer_codes`);
    the per-customer counts are NumPy counts over these numbers. Messages are in
    time order, so a customer's first and last messages bound their times.
    """
    codes, values = customer if customer is not None else customer_codes(messages["customer_id"])
    n_customers = len(values)
    which = np.asarray(
        pc.fill_null(pc.index_in(messages["touch"], value_set=pa.array(TOUCHES)), -1),
        dtype=np.int64,
    )
    ok = (codes >= 0) & (which >= 0)
    counts = np.bincount(
        codes[ok] * len(TOUCHES) + which[ok], minlength=n_customers * len(TOUCHES)
    ).reshape(n_customers, len(TOUCHES))
    at = messages["at"]
    index = np.arange(messages.num_rows, dtype=np.int64)
    dated = (codes >= 0) & np.asarray(pc.is_valid(at), dtype=bool)
    person = dated & np.isin(which, [TOUCHES.index(t) for t in PERSON_TOUCHES])

    def at_of(rows: npt.NDArray[np.bool_], last: bool) -> pa.ChunkedArray:
        pick = np.full(n_customers, -1 if last else messages.num_rows, np.int64)
        (np.maximum if last else np.minimum).at(pick, codes[rows], index[rows])
        missing = (pick < 0) | (pick >= messages.num_rows)
        return at.take(pa.array(np.where(missing, 0, pick), mask=missing))

    per = pa.table(
        {
            "customer_id": values,
            **{t: pa.array(counts[:, i]) for i, t in enumerate(TOUCHES)},
            "customer_id_count": pa.array(np.bincount(codes[codes >= 0], minlength=n_customers)),
            "at_min": at_of(dated, last=False),
            "at_max": at_of(dated, last=True),
            "person_at_max": at_of(person, last=True),
        }
    )
    joined = per.join(inbound, "customer_id", join_type="full outer")
    zero = pa.scalar(0, pa.int64())
    outbound = pc.fill_null(joined["customer_id_count"], zero)
    person_touches = pc.add(
        pc.fill_null(joined["personal"], zero), pc.fill_null(joined["spoken"], zero)
    )
    inbound_n = pc.fill_null(joined["inbound"], zero)
    share = pc.divide(pc.cast(person_touches, pa.float64()), pc.cast(outbound, pa.float64()))
    share = pc.if_else(pc.greater(outbound, 0), share, pa.scalar(None, pa.float64()))
    table = pa.table(
        {
            "customer_id": joined["customer_id"],
            "outbound": outbound,
            **{t: pc.fill_null(joined[t], zero) for t in TOUCHES},
            "person_touches": person_touches,
            "person_share": share,
            "first_outbound_at": joined["at_min"],
            "last_outbound_at": joined["at_max"],
            "last_personal_at": joined["person_at_max"],
            "days_since_personal": _days(as_of, joined["person_at_max"]),
            "inbound": inbound_n,
            "last_inbound_at": joined["last_inbound_at"],
            "only_machines": pc.and_(pc.greater(outbound, 0), pc.equal(person_touches, 0)),
        }
    )
    return table.sort_by("customer_id")


def only_machines_table(customers: pa.Table) -> pa.Table:
    """Customers sent messages but never by a person; those who wrote to us first."""
    t = customers.filter(customers["only_machines"])
    t = t.select(
        [
            "customer_id",
            "outbound",
            "templated",
            "bot",
            "system",
            "marketing",
            "unknown",
            "inbound",
            "last_inbound_at",
            "first_outbound_at",
            "last_outbound_at",
        ]
    )
    t = t.append_column("wrote_to_us", pc.greater(t["inbound"], 0))
    return t.sort_by(
        [
            ("wrote_to_us", "descending"),
            ("inbound", "descending"),
            ("outbound", "descending"),
            ("customer_id", "ascending"),
        ]
    )


def teams_table(messages: pa.Table, fdr: float = 0.05) -> pa.Table:
    """Template share of the messages people wrote, per team, with intervals.

    ``template_share`` is the raw share with a Wilson interval; ``shrunk_share``
    its beta-binomial posterior mean (small teams pulled towards the others);
    ``above_rest`` flags teams whose share is above all other teams' pooled
    share (two-proportion z test, Benjamini–Hochberg at ``fdr``).
    """
    touch = messages["touch"]
    written = pc.is_in(touch, value_set=pa.array(WRITTEN))
    m = messages.select(["team", "touch"]).filter(written)  # a filter copies every column
    team = pc.fill_null(m["team"], "(no team)")
    t = pa.table(
        {"team": team, "templated": pa.array(is_value(m["touch"], "templated").astype(np.int64))}
    )
    per = t.group_by("team").aggregate([("templated", "sum"), ("team", "count")])
    per = per.sort_by("team")
    k = np.asarray(per["templated_sum"], dtype=float)
    n = np.asarray(per["team_count"], dtype=float)
    low, high = wilson(k, n)
    mean, s_low, s_high = shrink(k, n, fit_beta_prior(k, n)) if len(k) else (k, k, k)
    p_values = (
        np.array(
            [
                two_proportion_z(ki, ni, k.sum() - ki, n.sum() - ni)[1]
                if ki / ni > (k.sum() - ki) / max(n.sum() - ni, 1)
                else 1.0
                for ki, ni in zip(k, n, strict=True)
            ]
        )
        if len(k)
        else np.zeros(0)
    )
    q = bh_adjust(p_values) if len(k) > 1 else np.ones(len(k))
    with np.errstate(invalid="ignore", divide="ignore"):
        rest = (k.sum() - k) / (n.sum() - n)
        share = k / n
    return pa.table(
        {
            "team": per["team"],
            "written": pa.array(n.astype(np.int64)),
            "templated": pa.array(k.astype(np.int64)),
            "personal": pa.array((n - k).astype(np.int64)),
            "template_share": pa.array(share),
            "low": pa.array(low),
            "high": pa.array(high),
            "shrunk_share": pa.array(mean),
            "shrunk_low": pa.array(s_low),
            "shrunk_high": pa.array(s_high),
            "rest_share": pa.array(rest, from_pandas=True),
            "q_value": pa.array(q, from_pandas=True),
            "above_rest": pa.array(np.nan_to_num(q, nan=1.0) <= fdr),
        }
    )
