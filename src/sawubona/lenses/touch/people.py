"""Per customer and per team: who heard from a person, and who only from machines.

Aggregations over ``touch_messages`` (Arrow, vectorised); statistics from
:mod:`sawubona.stats`. Column meanings: :data:`sawubona.lenses.touch.columns.COLUMNS`.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.lenses.touch.summary import PERSON_TOUCHES, TOUCHES, WRITTEN, is_value
from sawubona.stats import bh_adjust, fit_beta_prior, shrink, two_proportion_z, wilson


def _days(as_of: dt.datetime, at: pa.Array | pa.ChunkedArray) -> pa.Array:
    stamp = pa.scalar(as_of, pa.timestamp("us"))
    micros = pc.microseconds_between(pc.cast(at, pa.timestamp("us")), stamp)
    return pc.divide(pc.cast(micros, pa.float64()), 86_400e6)


def customers_table(messages: pa.Table, inbound: pa.Table, as_of: dt.datetime) -> pa.Table:
    """One row per customer with an outbound or inbound touchpoint."""
    touch = messages["touch"]
    cols: dict[str, pa.Array] = {"customer_id": messages["customer_id"]}
    person = np.zeros(messages.num_rows, bool)
    for t in TOUCHES:
        flag = is_value(touch, t)
        cols[t] = pa.array(flag.astype(np.int8))  # summed as int64
        if t in PERSON_TOUCHES:
            person |= flag
    cols["at"] = messages["at"]
    cols["person_at"] = pc.if_else(
        pa.array(person), messages["at"], pa.scalar(None, messages["at"].type)
    )
    per = (
        pa.table(cols)
        .group_by("customer_id")
        .aggregate(
            [(t, "sum") for t in TOUCHES]
            + [("customer_id", "count"), ("at", "min"), ("at", "max"), ("person_at", "max")]
        )
    )
    per = per.rename_columns([c.removesuffix("_sum") for c in per.column_names])
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
    m = messages.filter(written)
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
