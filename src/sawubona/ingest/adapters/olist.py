"""Olist (Brazilian e-commerce marketplace, Kaggle) → canonical tables.

Files read (names as published): ``olist_customers_dataset.csv``,
``olist_orders_dataset.csv``, ``olist_order_items_dataset.csv``,
``olist_order_payments_dataset.csv``, ``olist_order_reviews_dataset.csv``
(``olist_products_dataset.csv`` and ``olist_sellers_dataset.csv`` are optional
and not needed).

Derivations:

* **customers** — one per ``customer_unique_id`` (Olist gives every order its own
  ``customer_id``; the unique id is the person). ``segment`` = the customer's
  state (``SP``, ``RJ``…) on their first order row; ``joined_at`` = their first
  purchase. Source line = the first line of that person in the customers file.
* **journeys** — one per order, kind ``order``; ``started_at`` = purchase
  timestamp; ``ended_at`` = delivered-to-customer timestamp; ``outcome``:
  ``delivered`` → ``achieved``, ``canceled`` or ``unavailable`` → ``failed``
  (``outcome_reason`` = the status), any other status (shipped, invoiced,
  processing, approved, created) → ``open``; ``value`` = the sum of the order's
  payments (BRL), or of its item prices and freight when it has no payment row.
* **journey_items** — one per (order, product): ``quantity`` = number of item
  rows, ``unit_price`` = their mean price; ``fulfilled`` = true for delivered
  orders, false for ``unavailable`` orders, unknown otherwise.
* **promises** — the estimated delivery date is a ``delivery`` promise
  (``promise_id`` = ``delivery:<order_id>``), made at purchase, due at the
  estimated date (as published: midnight of that day), ``kept_at`` = the
  delivered timestamp, ``made_by``/``team`` = the seller of the order's first
  item; canceled and unavailable orders cancel it (``cancelled_at`` = the last
  timestamp the order shows, ``cancel_reason`` = the status).
* **surveys** — one per review, instrument ``csat`` (1–5), ``invited_at`` =
  review creation date, ``responded_at`` = answer timestamp, ``comment`` = title
  and message joined by `` — ``, ``trigger`` = ``system``. A review id that
  covers several orders becomes ``<review_id>/<order_id>`` so each order keeps
  its review.
"""

from __future__ import annotations

from pathlib import Path

from sawubona.ingest.adapters import derive, find_file, find_optional, stage, t
from sawubona.ingest.pipeline import Source
from sawubona.ingest.readers import Staging


class Olist:
    name = "olist"
    title = "Olist Brazilian e-commerce marketplace"

    def read(self, folder: Path, staging: Staging) -> list[Source]:
        f = {
            "customers": stage(staging, find_file(folder, self.name, "*customers*.csv")),
            "orders": stage(
                staging, find_file(folder, self.name, "*orders_dataset*.csv", "*orders*.csv")
            ),
            "items": stage(staging, find_file(folder, self.name, "*order_items*.csv")),
            "reviews": stage(staging, find_file(folder, self.name, "*reviews*.csv")),
        }
        pay = find_optional(folder, self.name, "*payments*.csv")
        payments = stage(staging, pay) if pay else None
        c, o, i, r = t(f["customers"]), t(f["orders"]), t(f["items"]), t(f["reviews"])
        person = f"(SELECT customer_id, customer_unique_id FROM {c})"
        pay_sum = (
            f"(SELECT order_id, sum(TRY_CAST(payment_value AS DOUBLE)) AS paid "
            f"FROM {t(payments)} GROUP BY order_id)"
            if payments
            else "(SELECT NULL::VARCHAR AS order_id, NULL::DOUBLE AS paid WHERE false)"
        )
        item_sum = (
            f"(SELECT order_id, sum(TRY_CAST(price AS DOUBLE) + "
            f"coalesce(TRY_CAST(freight_value AS DOUBLE), 0)) AS total, "
            f"arg_min(seller_id, TRY_CAST(order_item_id AS INTEGER)) AS seller "
            f"FROM {i} GROUP BY order_id)"
        )
        first_order = (
            f"(SELECT p.customer_unique_id, min(o.order_purchase_timestamp) AS first_at "
            f"FROM {o} o JOIN {person} p USING (customer_id) GROUP BY 1)"
        )
        sources = [
            derive(
                staging,
                "customers",
                f"""
                SELECT c.customer_unique_id AS customer_id, fo.first_at AS joined_at,
                       arg_min(c.customer_state, c._line) AS segment,
                       min(c._file) AS _file, min(c._line) AS _line
                FROM {c} c LEFT JOIN {first_order} fo USING (customer_unique_id)
                GROUP BY c.customer_unique_id, fo.first_at""",
                [f["customers"]],
                [f["orders"]],
            ),
            derive(
                staging,
                "journeys",
                f"""
                SELECT o.order_id AS journey_id, p.customer_unique_id AS customer_id,
                       'order' AS kind, o.order_purchase_timestamp AS started_at,
                       o.order_delivered_customer_date AS ended_at,
                       'receive the order' AS desired_outcome,
                       CASE o.order_status WHEN 'delivered' THEN 'achieved'
                            WHEN 'canceled' THEN 'failed' WHEN 'unavailable' THEN 'failed'
                            ELSE 'open' END AS outcome,
                       CASE WHEN o.order_status IN ('canceled', 'unavailable')
                            THEN o.order_status END AS outcome_reason,
                       round(coalesce(ps.paid, its.total), 2) AS value, 'BRL' AS currency,
                       o._file, o._line
                FROM {o} o LEFT JOIN {person} p USING (customer_id)
                LEFT JOIN {pay_sum} ps USING (order_id)
                LEFT JOIN {item_sum} its USING (order_id)""",
                [f["orders"]],
                [f["customers"], *([payments] if payments else []), f["items"]],
            ),
            derive(
                staging,
                "journey_items",
                f"""
                SELECT i.order_id AS journey_id, i.product_id AS item_id,
                       count(*) AS quantity, avg(TRY_CAST(i.price AS DOUBLE)) AS unit_price,
                       CASE any_value(o.order_status) WHEN 'delivered' THEN 'true'
                            WHEN 'unavailable' THEN 'false' END AS fulfilled,
                       min(i._file) AS _file, min(i._line) AS _line
                FROM {i} i LEFT JOIN {o} o USING (order_id)
                GROUP BY i.order_id, i.product_id""",
                [f["items"]],
                [f["orders"]],
            ),
            derive(
                staging,
                "promises",
                f"""
                SELECT 'delivery:' || o.order_id AS promise_id,
                       p.customer_unique_id AS customer_id, o.order_id AS journey_id,
                       'delivery' AS kind, o.order_purchase_timestamp AS made_at,
                       o.order_estimated_delivery_date AS due_at,
                       its.seller AS made_by, its.seller AS team, 'web' AS channel,
                       o.order_delivered_customer_date AS kept_at,
                       CASE WHEN o.order_status IN ('canceled', 'unavailable')
                            THEN coalesce(o.order_delivered_carrier_date, o.order_approved_at,
                                          o.order_purchase_timestamp) END AS cancelled_at,
                       CASE WHEN o.order_status IN ('canceled', 'unavailable')
                            THEN o.order_status END AS cancel_reason,
                       o._file, o._line,
                       CASE WHEN NULLIF(trim(o.order_estimated_delivery_date), '') IS NULL
                            THEN 'the order has no estimated delivery date, so no promise'
                            END AS _reject
                FROM {o} o LEFT JOIN {person} p USING (customer_id)
                LEFT JOIN {item_sum} its USING (order_id)""",
                [f["orders"]],
                [f["customers"], f["items"]],
            ),
            derive(
                staging,
                "surveys",
                f"""
                SELECT CASE WHEN count(*) OVER (PARTITION BY r.review_id) > 1
                            THEN r.review_id || '/' || r.order_id ELSE r.review_id END
                           AS survey_id,
                       p.customer_unique_id AS customer_id, r.order_id AS journey_id,
                       'csat' AS instrument, r.review_creation_date AS invited_at,
                       r.review_answer_timestamp AS responded_at, r.review_score AS score,
                       NULLIF(concat_ws(' — ', NULLIF(trim(r.review_comment_title), ''),
                                        NULLIF(trim(r.review_comment_message), '')), '')
                           AS comment,
                       'system' AS trigger, r._file, r._line
                FROM {r} r LEFT JOIN {o} o USING (order_id)
                LEFT JOIN {person} p USING (customer_id)""",
                [f["reviews"]],
                [f["orders"], f["customers"]],
            ),
        ]
        return sources


ADAPTER = Olist()
