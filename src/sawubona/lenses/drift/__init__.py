"""The drift lens: loyal customers going quiet — who, how sure, and what happened just before.

Flow of one run (DESIGN.md §5.4):

1. **Summary** (Ibis, in the store): purchase journeys (``kinds``) up to ``as_of``
   → per customer frequency, recency, age T and value, on a **day** grain
   (:mod:`.summary`).
2. **Models** (NumPy/SciPy): BG/NBD, MBG/NBD and Pareto/NBD fitted by maximum
   likelihood on the unique (x, t_x, T) rows → P(alive) and expected purchases in
   ``horizon`` per customer, and a holdout check when the data goes on after
   ``as_of`` (:mod:`.fitting`).
3. **Cadence** for regulars (≥ ``regular_repeats`` repeat purchases): the current
   silence against their own gaps (:mod:`.cadence`).
4. **Status**: ``lapsed`` when P(alive) < ``lapsed_below``; else ``drifting`` when
   the cadence is broken or P(alive) < ``drifting_below``; else ``active``.
5. **Why** for drifting and lapsed regulars: the experiences in their break window,
   ranked, with the rows (:mod:`.reasons`).
6. **Neglect** of valuable customers (:mod:`.neglect`).

Time: every event is taken on its UTC calendar day; ``as_of`` ends the calibration
on its own day, so T = as_of's day − first purchase day. ``sawubona analyze --as-of
1997-09-30`` therefore gives CDNOW's published 39-week calibration (T = 38.86 weeks
for a customer who first bought on 1 January 1997). Times are reported in
``time_unit`` (week = 7 days, or day).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.errors import SawubonaError
from sawubona.lenses.base import LensInput, LensOutput, Setting
from sawubona.lenses.drift import fitting, reasons, summary
from sawubona.lenses.drift.cadence import cadence
from sawubona.lenses.drift.neglect import neglect
from sawubona.lenses.drift.report import cohorts, customers_table, findings, neglect_findings

SETTINGS: tuple[Setting, ...] = (
    Setting("time_unit", "week", "unit of recency, T, horizon and the models' α (week or day)"),
    Setting("horizon", 13.0, "prediction and holdout period, in time_unit"),
    Setting("kinds", "order,visit,purchase", "journey kinds that are purchases (comma list)"),
    Setting(
        "models",
        "bg/nbd,mbg/nbd",
        "models fitted: bg/nbd, mbg/nbd, pareto/nbd (slow on some data; see docs)",
    ),
    Setting("model", "bg/nbd", "the model whose P(alive) gives each customer's status"),
    Setting("regular_repeats", 5, "repeat purchases that make a customer a regular"),
    Setting(
        "cadence_percentile", 0.95, "a regular drifts when silent beyond this own-gap percentile"
    ),
    Setting("drifting_below", 0.5, "P(alive) below which a customer counts as drifting"),
    Setting("lapsed_below", 0.05, "P(alive) below which a customer counts as lapsed"),
    Setting("reason_journeys", 3, "last purchase journeys examined for why a regular stopped"),
    Setting("core_share", 0.5, "share of their journeys an item needs to be their core item"),
    Setting(
        "not_core_items",
        "POST,DOT,M,C2,D,S,B,PADS,CRUK,BANK CHARGES,AMAZONFEE,ADJUST,TEST001,TEST002",
        "item ids that are never a core item (postage, fees, adjustments)",
    ),
    Setting("effort_contacts", 3, "inbound contacts on one journey that make it high-effort"),
    Setting("reply_days", 7, "days after which an inbound contact with no reply is unanswered"),
    Setting(
        "marketing_min", 2, "marketing messages with no personal contact that count as a reason"
    ),
    Setting("neglect_days", 180, "days without a personal contact that count as neglect"),
    Setting("valuable_share", 0.2, "top share of customers by value checked for neglect"),
)


class DriftLens:
    name = "drift"
    title = "Drift"
    needs = ("journeys",)
    uses = ("journey_items", "promises", "touchpoints", "actions")
    after = ("experience", "promises")
    settings = SETTINGS

    def run(self, data: LensInput) -> LensOutput:
        s = data.settings
        unit_name = str(s["time_unit"]).lower()
        unit = fitting.unit_days(unit_name)
        names = fitting.model_names(str(s["model"]) + "," + str(s["models"]))
        primary = names[0]
        kinds = [k.strip().lower() for k in str(s["kinds"]).split(",") if k.strip()]
        as_of = data.as_of
        as_of_day = summary.day_number(as_of)
        out = LensOutput()
        skipped = [t for t in self.uses if not data.has(t)]
        if skipped:
            out.skipped.append(f"without {', '.join(skipped)}: reasons from those left out")

        cal = summary.purchase_journeys(data.until("journeys"), kinds)
        cal_days = summary.purchase_days(cal)
        cust = summary.customer_summary(cal_days, as_of_day).order_by("customer_id").to_pyarrow()
        if cust.num_rows == 0:
            out.skipped.append(
                f"no purchase journeys (kinds {', '.join(kinds) or 'any'}) up to {as_of:%Y-%m-%d}: "
                "no purchase model or cadence; neglect judged on what customers pay"
            )
            if data.has("touchpoints"):
                customers, basis = _value_without_purchases(data)
                if customers.num_rows:
                    out.tables["drift_neglect"] = _neglect(data, customers, s)
                    out.findings.extend(neglect_findings(self.name, out.tables, s, basis))
            return out
        freq = _np(cust, "frequency")
        rec_d, age_d = _np(cust, "recency_days"), _np(cust, "age_days")
        comp = fitting.compress_days(freq, rec_d, age_d)
        fitted = fitting.fit_models(names, *comp, unit)
        out.skipped.extend(f.note for f in fitted if f.note)
        models = {f.name: f.model for f in fitted if f.model is not None}
        if primary not in models:
            raise SawubonaError(f"the drift lens could not fit {primary}: {fitted[0].note}")
        horizon = float(s["horizon"])
        x, t_x, T = freq, rec_d / unit, age_d / unit
        main = models[primary]
        p_alive = main.p_alive(x, t_x, T)
        expected = main.expected_purchases(horizon, x, t_x, T)

        holdout = _holdout(data, kinds, cust, as_of_day, horizon * unit)
        if holdout is not None:
            t_h = holdout.length_days / unit
            for name, m in models.items():
                holdout.predicted[name] = m.expected_purchases(t_h, x, t_x, T)
            out.tables["drift_holdout"] = fitting.holdout_table(holdout, freq)
        out.tables["drift_model"] = fitting.model_table(
            fitted, unit_name, holdout, as_of.isoformat(sep=" ")
        )

        # cadence of regulars
        n_reg = int(s["regular_repeats"])
        gaps = summary.gap_stats(cal_days, as_of_day, n_reg).to_pyarrow()
        cad = cadence(
            _np(gaps, "gaps"),
            _np(gaps, "log_gap_mean"),
            _np(gaps, "log_gap_var"),
            as_of_day - _lookup(cust, gaps, "last_day"),
            percentile=float(s["cadence_percentile"]),
        )
        status = _status(cust, gaps, cad.broken, p_alive, s)
        not_core = [i.strip() for i in str(s["not_core_items"]).split(",") if i.strip()]
        shares = _item_shares(data, cal, gaps, not_core)
        core = _core_items(shares)
        targets = _targets(
            data, cal, cust, gaps, cad.cadence_limit_days, status, int(s["reason_journeys"])
        )
        core_pairs = _core_pairs(shares, targets, float(s["core_share"]))
        tables = {
            t: data.until(t) if t != "journey_items" else data.table(t)
            for t in ("journeys", *self.uses)
            if data.has(t)
        }
        ev = reasons.evidence(targets, core_pairs, tables, data.results, as_of, s)
        ranked = reasons.rank(ev, targets)
        out.tables["drift_reasons"] = ranked
        customers = customers_table(
            cust,
            gaps,
            cad,
            status,
            p_alive,
            expected,
            holdout,
            core,
            reasons.summary_text(ranked),
            primary,
            unit_name,
            horizon,
        )
        out.tables["drift_customers"] = customers
        out.tables["drift_cohorts"] = cohorts(customers)
        if data.has("touchpoints"):
            out.tables["drift_neglect"] = _neglect(data, customers, s)
        out.findings.extend(
            findings(self.name, out.tables, models, primary, unit_name, horizon, holdout, s)
        )
        return out


def _np(t: pa.Table, col: str) -> np.ndarray:
    return np.asarray(t.column(col).to_numpy(zero_copy_only=False), dtype=float)


def _lookup(cust: pa.Table, other: pa.Table, col: str) -> np.ndarray:
    """``cust[col]`` for the customers of ``other`` (in ``other``'s order)."""
    idx = pc.index_in(other.column("customer_id"), value_set=cust.column("customer_id"))
    return _np(cust.take(idx), col)


def _holdout(
    data: LensInput, kinds: list[str], cust: pa.Table, as_of_day: int, horizon_days: float
) -> fitting.Holdout | None:
    """Purchase days after ``as_of`` of the calibration customers, when the data has them."""
    days = summary.purchase_days(summary.purchase_journeys(data.table("journeys"), kinds))
    last = days.day.max().execute()
    if last is None or last != last or int(last) <= as_of_day:
        return None
    end = min(as_of_day + round(horizon_days), int(last))
    h = summary.holdout_purchases(days, as_of_day, end).to_pyarrow()
    idx = pc.index_in(cust.column("customer_id"), value_set=h.column("customer_id"))
    counts = pc.fill_null(pc.take(h.column("holdout_purchases"), idx), 0)
    return fitting.Holdout(
        np.asarray(counts.to_numpy(zero_copy_only=False), dtype=float),
        end - as_of_day,
        as_of_day,
        end,
    )


def _status(
    cust: pa.Table, gaps: pa.Table, broken: np.ndarray, p_alive: np.ndarray, s: Any
) -> np.ndarray:
    cad_broken = np.zeros(cust.num_rows, bool)
    idx = pc.index_in(gaps.column("customer_id"), value_set=cust.column("customer_id"))
    cad_broken[np.asarray(idx.to_numpy(zero_copy_only=False), dtype=int)] = broken
    status = np.full(cust.num_rows, "active", dtype=object)
    drifting = cad_broken | (p_alive < float(s["drifting_below"]))
    status[drifting] = "drifting"
    status[p_alive < float(s["lapsed_below"])] = "lapsed"
    return status


def _item_shares(data: LensInput, cal: Any, gaps: pa.Table, exclude: list[str]) -> pa.Table:
    """Each regular's items and the share of their journeys (with items) that wanted each."""
    schema = pa.schema(
        [("customer_id", pa.string()), ("item_id", pa.string()), ("share", pa.float64())]
    )
    if not data.has("journey_items") or gaps.num_rows == 0:
        return schema.empty_table()
    import ibis

    regs = ibis.memtable(gaps.select(["customer_id"]))
    t = summary.item_shares(cal, data.table("journey_items"), regs, exclude).to_pyarrow()
    return t.select(["customer_id", "item_id", "share"]).cast(schema)


def _core_items(shares: pa.Table) -> pa.Table:
    """Each regular's core item: the item in most of their journeys (ties: smallest id)."""
    t = shares.sort_by(
        [("customer_id", "ascending"), ("share", "descending"), ("item_id", "ascending")]
    )
    ids = t.column("customer_id")
    if t.num_rows == 0:
        keep = pa.array([], pa.bool_())
    else:
        arr = ids.to_numpy(zero_copy_only=False)
        keep = pa.array(np.r_[True, arr[1:] != arr[:-1]])
    first = t.filter(keep)
    return pa.table(
        {
            "customer_id": first.column("customer_id"),
            "core_item": first.column("item_id"),
            "core_share": first.column("share"),
        }
    )


def _core_pairs(shares: pa.Table, targets: pa.Table, threshold: float) -> pa.Table:
    """(customer_id, item_id) of every item in at least ``threshold`` of a target's journeys:
    *their* core items, whose unavailability is the strongest reason."""
    t = shares.filter(pc.greater_equal(shares.column("share"), threshold))
    t = t.filter(pc.is_in(t.column("customer_id"), value_set=targets.column("customer_id")))
    return t.select(["customer_id", "item_id"])


def _targets(
    data: LensInput,
    cal: Any,
    cust: pa.Table,
    gaps: pa.Table,
    limit_days: np.ndarray,
    status: np.ndarray,
    k: int,
) -> pa.Table:
    """Drifting or lapsed regulars with their break windows (from the start of their
    ``k``-th last purchase journey to their last one + their cadence limit)."""
    import ibis

    reg_idx = np.asarray(
        pc.index_in(gaps.column("customer_id"), value_set=cust.column("customer_id")).to_numpy(
            zero_copy_only=False
        ),
        dtype=int,
    )
    keep = status[reg_idx] != "active"
    ids = gaps.column("customer_id").filter(pa.array(keep))
    limits = limit_days[keep]
    schema = pa.schema(
        [
            ("customer_id", pa.string()),
            ("window_start", pa.timestamp("us")),
            ("window_end", pa.timestamp("us")),
        ]
    )
    if len(ids) == 0:
        return schema.empty_table()
    tg = pa.table({"customer_id": ids, "limit_days": pa.array(limits)})
    last = summary.last_journeys(cal, ibis.memtable(tg.select(["customer_id"])), k)
    win = (
        last.group_by("customer_id")
        .aggregate(window_start=last.started_at.min(), last_at=last.started_at.max())
        .to_pyarrow()
    )
    idx = pc.index_in(tg.column("customer_id"), value_set=win.column("customer_id"))
    start = pc.take(win.column("window_start"), idx)
    last_at = pc.take(win.column("last_at"), idx).to_pylist()
    as_of = data.as_of
    end = [
        min(as_of, la + dt.timedelta(days=float(lim))) if la is not None else as_of
        for la, lim in zip(last_at, limits.tolist(), strict=True)
    ]
    return pa.table(
        {
            "customer_id": ids,
            "window_start": start,
            "window_end": pa.array(end, pa.timestamp("us")),
        },
        schema=schema,
    )


def _value_without_purchases(data: LensInput) -> tuple[pa.Table, str]:
    """Customers and what they are worth when nobody buys by the journey (a subscription
    business): the yearly value of the fees they pay at ``as_of``, else the value of their
    journeys of any kind, else every customer with a touchpoint counts alike. Shaped like
    ``drift_customers`` for :func:`_neglect`, with no model or cadence figures."""
    as_of = data.as_of
    value = None
    basis = ""
    if data.has("subscriptions"):
        sub = data.until("subscriptions")
        live = sub.filter(sub.ended_at.isnull() | (sub.ended_at > as_of))
        if "monthly_fee_paid" in live.columns:
            value = live.group_by("customer_id").aggregate(
                value_total=(live.monthly_fee_paid.fill_null(0) * 12).sum()
            )
            basis = " (by the yearly fees they pay)"
    if value is None or value.count().to_pyarrow().as_py() == 0:
        j = data.until("journeys")
        value = j.group_by("customer_id").aggregate(value_total=j.value.fill_null(0).sum())
        basis = " (by the value of their journeys)"
    got = value.order_by("customer_id").to_pyarrow()
    n = got.num_rows
    nulls = pa.nulls(n, pa.float64())
    customers = pa.table(
        {
            "customer_id": got.column("customer_id"),
            "value_total": pc.cast(got.column("value_total"), pa.float64()),
            "purchase_days": pa.array(np.zeros(n, dtype=np.int64)),
            "status": pa.nulls(n, pa.string()),
            "p_alive": nulls,
            "regular": pa.array(np.zeros(n, dtype=bool)),
        }
    )
    return customers, basis


def _neglect(data: LensInput, customers: pa.Table, s: Any) -> pa.Table:
    value = pc.fill_null(customers.column("value_total"), 0.0)
    if pc.max(value).as_py() in (None, 0, 0.0):
        value = pc.cast(customers.column("purchase_days"), pa.float64())
    n_top = max(1, round(float(s["valuable_share"]) * customers.num_rows))
    order = np.argsort(-np.asarray(value.to_numpy(zero_copy_only=False)), kind="stable")[:n_top]
    valuable = customers.take(pa.array(order))
    got = neglect(
        data.table("touchpoints"),
        valuable,
        data.as_of,
        int(s["reply_days"]),
        int(s["neglect_days"]),
    )
    idx = pc.index_in(got.column("customer_id"), value_set=customers.column("customer_id"))
    extra = customers.take(idx).select(["value_total", "status", "p_alive", "regular"])
    for name in extra.column_names:
        got = got.append_column(name, extra.column(name))
    return got.sort_by([("value_total", "descending"), ("customer_id", "ascending")])


LENS = DriftLens()

__all__ = ["LENS", "SETTINGS", "DriftLens"]
