"""Neglect: valuable customers nobody is talking to as a person.

"63% of customers who leave say they felt neglected." Two signs, computed as
Ibis expressions over ``touchpoints`` (as of ``as_of``) for the **valuable**
customers — the top ``valuable_share`` by purchase value in the calibration
period (by purchase days when no value is recorded):

* **unanswered**: inbound contacts older than ``reply_days`` with no outbound
  touchpoint other than marketing after them — of the same journey, or to the
  customer at all when the contact belongs to no journey (for contacts in a journey
  this is the definition the demo's truth uses);
* **marketing without a person**: no personal contact — an outbound touchpoint
  by a ``person``, with no ``template_id``, that is not marketing — for
  ``neglect_days`` (or ever), while at least one marketing message was sent to
  them in those days.

Output ``drift_neglect``: one row per valuable customer showing either sign.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir

SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("unanswered_contacts", pa.int64()),
        ("oldest_unanswered_at", pa.timestamp("us")),
        ("unanswered_ids", pa.list_(pa.string())),
        ("last_personal_at", pa.timestamp("us")),
        ("days_since_personal", pa.float64()),
        ("marketing_recent", pa.int64()),
        ("neglect", pa.string()),
    ]
)


def neglect(
    touchpoints: ir.Table,
    valuable: pa.Table,
    as_of: dt.datetime,
    reply_days: int,
    neglect_days: int,
) -> pa.Table:
    """Neglect signs for the ``valuable`` customers (a table with ``customer_id``)."""
    if valuable.num_rows == 0:
        return SCHEMA.empty_table()
    vc = ibis.memtable(valuable.select(["customer_id"]))
    tp = touchpoints.filter(touchpoints.at <= as_of).semi_join(vc, "customer_id")
    inbound = tp.filter(tp.direction == "inbound")
    outbound = tp.filter(tp.direction == "outbound")
    replies = outbound.filter(outbound.kind.isnull() | (outbound.kind != "marketing"))

    # unanswered: compare each inbound contact with the last outbound after it
    last_by_journey = (
        replies.filter(replies.journey_id.notnull())
        .group_by(["customer_id", "journey_id"])
        .aggregate(last_out_j=replies.at.max())
    )
    last_by_customer = replies.group_by("customer_id").aggregate(last_out_c=replies.at.max())
    i = inbound.left_join(last_by_journey, ["customer_id", "journey_id"]).select(
        "touchpoint_id", "customer_id", "journey_id", "at", "last_out_j"
    )
    i = i.left_join(last_by_customer, "customer_id").select(
        "touchpoint_id", "customer_id", "journey_id", "at", "last_out_j", "last_out_c"
    )
    answered = ibis.ifelse(
        i.journey_id.notnull(),
        i.last_out_j.notnull() & (i.last_out_j > i.at),
        i.last_out_c.notnull() & (i.last_out_c > i.at),
    )
    old_enough = i.at + ibis.interval(days=reply_days) <= as_of
    un = i.filter(~answered & old_enough)
    un_per = un.group_by("customer_id").aggregate(
        unanswered_contacts=un.count(),
        oldest_unanswered_at=un.at.min(),
        unanswered_ids=un.touchpoint_id.collect(),
    )

    # personal contact vs marketing
    personal = outbound.filter(
        (outbound.actor == "person")
        & outbound.template_id.isnull()
        & (outbound.kind.isnull() | (outbound.kind != "marketing"))
    )
    last_personal = personal.group_by("customer_id").aggregate(last_personal_at=personal.at.max())
    since = as_of - dt.timedelta(days=neglect_days)
    mk = outbound.filter((outbound.kind == "marketing") & (outbound.at > since))
    mk_per = mk.group_by("customer_id").aggregate(marketing_recent=mk.count())
    contact = mk_per.left_join(last_personal, "customer_id").select(
        "customer_id", "marketing_recent", "last_personal_at"
    )
    contact = contact.filter(
        contact.last_personal_at.isnull() | (contact.last_personal_at <= since)
    )
    un_t = un_per.to_pyarrow()
    ct_t = contact.to_pyarrow()
    lp = dict(
        zip(
            *[c.to_pylist() for c in last_personal.to_pyarrow().columns[:2]],
            strict=True,
        )
    )
    rows: dict[str, dict[str, object]] = {}
    for r in un_t.to_pylist():
        rows[r["customer_id"]] = {
            "customer_id": r["customer_id"],
            "unanswered_contacts": r["unanswered_contacts"],
            "oldest_unanswered_at": r["oldest_unanswered_at"],
            "unanswered_ids": sorted(r["unanswered_ids"] or []),
            "neglect": "unanswered",
        }
    for r in ct_t.to_pylist():
        row = rows.setdefault(
            r["customer_id"],
            {"customer_id": r["customer_id"], "unanswered_contacts": 0, "unanswered_ids": []},
        )
        row["marketing_recent"] = r["marketing_recent"]
        row["neglect"] = (
            "unanswered; marketing without a person"
            if row.get("neglect")
            else "marketing without a person"
        )
    for cid, row in rows.items():
        last = lp.get(cid)
        row["last_personal_at"] = last
        row["days_since_personal"] = (
            None if last is None else round((as_of - last).total_seconds() / 86400, 1)
        )
    return pa.Table.from_pylist(list(rows.values()), schema=SCHEMA)
