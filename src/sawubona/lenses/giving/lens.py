"""The giving lens: what could we give this customer — and the give/take ledger.

Runs five parts, each of which skips with a reason when its tables are absent:
best plan (:mod:`.best_plan`), unused add-ons (:mod:`.addons`), owed credits
(:mod:`.credits`), loyalty penalty (:mod:`.loyalty`) and the give/take ledger
(:mod:`.ledger`). Every gift has a customer, a kind, its value per year *to the
customer*, a confidence, the evidence and a message a person could send. No part
can produce an upsell: gift kinds are a closed list (``GIFT_KINDS``) and the run
refuses anything else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.errors import SawubonaError
from sawubona.lenses.base import Finding, LensInput, LensOutput, Setting
from sawubona.lenses.giving import addons, best_plan, credits, ledger, loyalty
from sawubona.lenses.giving.bills import tariffs_from_plans
from sawubona.lenses.giving.common import GIFT_KINDS, empty_gifts, first_names, money

SETTINGS: tuple[Setting, ...] = (
    Setting("history_months", 12, "months of usage looked at, up to as_of (best plan, add-ons)"),
    Setting(
        "min_period_days",
        28,
        "a usage period counts once this many of its days lie before as_of (no part-months)",
    ),
    Setting("min_months", 1, "months of usage on the current plan needed for a best-plan verdict"),
    Setting(
        "most_months_share",
        0.5,
        "a plan is recommended only if cheaper in more than this share of the months",
    ),
    Setting(
        "min_saving_per_year",
        10.0,
        "a plan is recommended only if it saves at least this much a year (plan currency)",
    ),
    Setting(
        "addon_idle_periods", 3, "an add-on is unused after this many metered months without use"
    ),
    Setting(
        "compensation_rules",
        "",
        "TOML file of compensation rules for owed credits (empty: the built-in example rules)",
    ),
    Setting("tenure_bands", "1,2,3,5,10", "tenure band edges in years (loyalty penalty)"),
    Setting(
        "ledger_give",
        "refund,credit,compensation,downgrade_advice,proactive_help,gift",
        "action and outbound touchpoint kinds counted as giving",
    ),
    Setting(
        "ledger_take",
        "upsell,cross_sell,price_rise,fee,penalty,marketing",
        "action and outbound touchpoint kinds counted as taking",
    ),
)


@dataclass
class Context:
    """What every part of the lens sees."""

    data: LensInput
    as_of: dt.datetime
    settings: Mapping[str, Any]
    currency: str | None
    skipped: list[str] = field(default_factory=list)
    _customers: pa.Table | None = None

    def first_names(self, ids: Sequence[str]) -> list[str | None]:
        if self._customers is None and self.data.has("customers"):
            c = self.data.table("customers")
            self._customers = c.select("customer_id", "name").to_pyarrow()
        return first_names(self._customers, list(ids))


def _currency(data: LensInput) -> str | None:
    for name in ("plans", "actions"):
        if data.has(name):
            t = data.table(name)
            t = t.filter(t.currency.notnull())
            got = t.group_by("currency").aggregate(n=t.count())
            rows = got.order_by([got.n.desc(), "currency"]).limit(1).to_pyarrow().to_pylist()
            if rows:
                return str(rows[0]["currency"])
    return None


class GivingLens:
    name: str = "giving"
    title: str = "Giving: what we could give back, and the give/take ledger"
    needs: tuple[str, ...] = ()
    uses: tuple[str, ...] = (
        "plans",
        "subscriptions",
        "usage",
        "actions",
        "touchpoints",
        "promises",
        "journeys",
        "customers",
    )
    after: tuple[str, ...] = ("promises",)
    settings: tuple[Setting, ...] = SETTINGS

    def run(self, data: LensInput) -> LensOutput:
        ctx = Context(data, data.as_of, data.settings, _currency(data))
        _check(ctx.settings)
        rules = credits.load_rules(ctx.settings["compensation_rules"])  # a bad file fails early
        tables: dict[str, pa.Table] = {}
        findings: list[Finding] = []
        gifts: list[pa.Table] = []
        per_customer: list[pa.Table] = []
        # in plan_id order: an engine returns rows in any order, and the order of the plans
        # (and of the metrics first named in them) shows in the evidence and breaks ties
        plans = data.table("plans").order_by("plan_id").to_pyarrow() if data.has("plans") else None
        window = best_plan.Window.at(
            data.as_of, int(ctx.settings["history_months"]), int(ctx.settings["min_period_days"])
        )

        missing = _missing(data, ("plans", "subscriptions", "usage"))
        if missing:
            ctx.skipped.append(f"best plan: {missing}")
        elif plans is not None:
            tariffs = tariffs_from_plans(plans, data.as_of)
            ctx.skipped.extend(f"best plan: {p}; that plan is left out" for p in tariffs.problems)
            if tariffs.n == 0:
                ctx.skipped.append("best plan: the plans table has no main plan (kind plan)")
            else:
                bp = best_plan.run(ctx, tariffs)
                tables["giving_best_plan"] = bp.table
                gifts.append(bp.gifts)
                findings += bp.findings
                per_customer.append(bp.per_customer)
        if not missing and plans is not None:
            ad = addons.run(ctx, plans, window)
            gifts.append(ad.gifts)
            findings += ad.findings
        elif missing:
            ctx.skipped.append(f"unused add-ons: {missing}")

        if data.has("promises") or data.has("journeys"):
            cr = credits.run(ctx, rules)
            tables["giving_credits"] = cr.claims
            gifts.append(cr.gifts)
            findings += cr.findings
        else:
            ctx.skipped.append("owed credits: no promises or journeys table")

        missing = _missing(data, ("plans", "subscriptions"))
        if missing:
            ctx.skipped.append(f"loyalty penalty: {missing}")
        elif plans is not None:
            lo = loyalty.run(ctx, plans)
            tables["giving_loyalty_penalty"] = lo.table
            tables["giving_loyalty_bands"] = lo.bands
            gifts.append(lo.gifts)
            findings += lo.findings

        lg = ledger.run(ctx)
        if lg.table.num_rows or data.has("actions") or data.has("touchpoints"):
            tables["giving_ledger"] = lg.table
            tables["giving_ledger_months"] = lg.months
            tables["giving_ledger_kinds"] = lg.kinds
            per_customer.append(lg.per_customer)
            findings += lg.findings

        all_gifts = pa.concat_tables(gifts) if gifts else empty_gifts()
        all_gifts = all_gifts.sort_by([("customer_id", "ascending"), ("kind", "ascending")])
        _refuse_non_gifts(all_gifts)
        tables["giving_gifts"] = all_gifts
        tables["giving_customers"] = _customers(per_customer, all_gifts)
        findings.insert(0, _headline(ctx, all_gifts))
        return LensOutput(tables=tables, findings=findings, skipped=ctx.skipped)


def _missing(data: LensInput, names: tuple[str, ...]) -> str:
    gone = [n for n in names if not data.has(n)]
    if not gone:
        return ""
    return f"no {', '.join(gone)} table{'s' if len(gone) > 1 else ''}"


def _check(settings: Mapping[str, Any]) -> None:
    if int(settings["history_months"]) < 1:
        raise SawubonaError("setting giving.history_months must be at least 1")
    share = float(settings["most_months_share"])
    if not 0 <= share < 1:
        raise SawubonaError(
            f"setting giving.most_months_share = {share} must be at least 0 and below 1 "
            "(0.5 = more than half the months)"
        )


def _refuse_non_gifts(gifts: pa.Table) -> None:
    kinds = set(gifts.column("kind").to_pylist())
    bad = kinds - set(GIFT_KINDS)
    if bad:  # pragma: no cover - a programming error, never data
        raise SawubonaError(f"the giving lens produced non-gift kinds {sorted(bad)}")
    values = np.asarray(gifts.column("value_per_year").fill_null(0.0), dtype=float)
    if (values <= 0).any():  # pragma: no cover
        raise SawubonaError("the giving lens produced a gift worth nothing to the customer")


def _customers(parts: list[pa.Table], gifts: pa.Table) -> pa.Table:
    """``giving_customers``: the parts' per-customer columns side by side, and the gifts.

    One row per customer id met anywhere (sorted, a missing id last), matched by position
    in Arrow; the columns come out as :func:`_customers_pandas` (the outer merge it
    replaced) gives them — a whole-number column with gaps as floats.
    """
    id_cols = [gifts.column("customer_id"), *(p.column("customer_id") for p in parts)]
    every = pa.chunked_array(
        [c.cast(pa.large_string()) for col in id_cols for c in col.chunks], pa.large_string()
    )
    ids = pc.unique(every)
    if len(ids) == 0:
        return _customers_pandas([p.to_pandas() for p in parts], gifts)
    ids = ids.take(pc.array_sort_indices(ids, null_placement="at_end"))
    n = len(ids)
    cols: dict[str, pa.Array] = {"customer_id": ids}
    for part in parts:
        pos = pc.index_in(ids, value_set=part.column("customer_id").cast(pa.large_string()))
        for name in part.column_names:
            if name != "customer_id":
                cols[name] = _as_merged(part.column(name).combine_chunks().take(pos))
    # the gifts per customer: pandas group sums (compensated) over integer positions
    gid = gifts.column("customer_id").cast(pa.large_string())
    code = np.asarray(pc.index_in(gid, value_set=ids).fill_null(-1), dtype=np.int64)
    code = np.where(np.asarray(gid.is_null()), -1, code)  # a gift without a customer counts nowhere
    g = pd.DataFrame(
        {
            "code": code,
            "kind": np.asarray(gifts.column("kind").to_pandas(), dtype=object),
            "value": np.asarray(gifts.column("value_per_year").to_pandas(), dtype=float),
        }
    )
    g = g[g["code"] >= 0]
    is_plan = g["kind"].str.startswith("best_plan").to_numpy(dtype=bool)
    is_penalty = (g["kind"] == "loyalty_penalty").to_numpy(dtype=bool)

    def per(rows: np.ndarray, how: str) -> np.ndarray:
        out = np.full(n, np.nan)
        got = getattr(g[rows].groupby("code")["value"], how)()
        out[got.index.to_numpy()] = got.to_numpy(dtype=float)
        return out

    plan_best = per(is_plan, "max")
    penalty = per(is_penalty, "sum")
    other = per(~is_plan & ~is_penalty, "sum")
    # a better plan already removes what they overpay on the current one: count the larger
    recurring = np.fmax(plan_best, penalty)
    value = np.where(
        np.isnan(recurring), other, np.where(np.isnan(other), recurring, recurring + other)
    )
    counts = np.bincount(g["code"].to_numpy(), minlength=n)
    cols["gifts_to_give"] = pa.array(counts.astype(np.int64))
    cols["gift_value_per_year"] = pa.array(np.round(np.nan_to_num(value, nan=0.0), 2))
    for name in ("gifts", "asks"):
        if name in cols:
            cols[name] = pa.array(
                np.nan_to_num(np.asarray(cols[name].cast(pa.float64()).fill_null(0.0))).astype(
                    np.int64
                )
            )
    if "only_asked" in cols:
        cols["only_asked"] = cols["only_asked"].cast(pa.bool_()).fill_null(False)
    renamed = {"gifts": "ledger_gifts", "asks": "ledger_asks"}
    order = [k for k in cols if k not in ("gifts_to_give", "gift_value_per_year")]
    order += ["gifts_to_give", "gift_value_per_year"]
    return pa.table({renamed.get(k, k): cols[k] for k in order})


def _as_merged(values: pa.Array) -> pa.Array:
    """A column as a pandas outer merge leaves it: gaps in whole numbers make floats, NaN null."""
    t = values.type
    if pa.types.is_integer(t) and values.null_count:
        values = values.cast(pa.float64())
        t = values.type
    if pa.types.is_floating(t):
        x = np.asarray(values.cast(pa.float64()).fill_null(np.nan), dtype=float)
        return pa.array(x, values.type, mask=np.isnan(x))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return values.cast(pa.large_string())
    return values


def _customers_pandas(parts: list[pd.DataFrame], gifts: pa.Table) -> pa.Table:
    """The pandas reference of :func:`_customers` (used as is for an empty table)."""
    g = gifts.select(["customer_id", "kind", "value_per_year"]).to_pandas()
    is_plan = g["kind"].str.startswith("best_plan")
    plan_best = g[is_plan].groupby("customer_id")["value_per_year"].max()
    penalty = g[g["kind"] == "loyalty_penalty"].groupby("customer_id")["value_per_year"].sum()
    other = (
        g[~is_plan & (g["kind"] != "loyalty_penalty")]
        .groupby("customer_id")["value_per_year"]
        .sum()
    )
    counts = g.groupby("customer_id").size().rename("gifts_to_give")
    # a better plan already removes what they overpay on the current one: count the larger
    recurring = pd.concat([plan_best, penalty], axis=1).max(axis=1)
    value = recurring.add(other, fill_value=0.0).rename("gift_value_per_year")
    frame: pd.DataFrame | None = None
    for p in parts:
        frame = p if frame is None else frame.merge(p, on="customer_id", how="outer")
    ids = pd.Index(g["customer_id"].unique(), name="customer_id")
    if frame is not None:
        ids = ids.union(pd.Index(frame["customer_id"]))
    out = pd.DataFrame(index=ids.sort_values())
    if frame is not None:
        out = out.join(frame.set_index("customer_id"))
    out = out.join(counts).join(value)
    out["gifts_to_give"] = out["gifts_to_give"].fillna(0).astype("int64")
    out["gift_value_per_year"] = out["gift_value_per_year"].fillna(0.0).round(2)
    for col in ("gifts", "asks"):
        if col in out:
            out[col] = out[col].fillna(0).astype("int64")
    if "only_asked" in out:
        out["only_asked"] = out["only_asked"].fillna(False).astype(bool)
    out = out.rename(columns={"gifts": "ledger_gifts", "asks": "ledger_asks"})
    return pa.Table.from_pandas(out.reset_index(), preserve_index=False)


def _headline(ctx: Context, gifts: pa.Table) -> Finding:
    n = gifts.num_rows
    people = len(pc.unique(gifts.column("customer_id"))) if n else 0
    total = float(pc.sum(gifts.column("value_per_year")).as_py() or 0.0) if n else 0.0
    kinds = pc.value_counts(gifts.column("kind")).to_pylist() if n else []
    parts = ", ".join(f"{k['counts']} {k['values'].replace('_', ' ')}" for k in kinds)
    return Finding(
        "giving",
        "gifts",
        f"{n} gifts to {people} customers, worth {money(total, ctx.currency)} a year to them"
        + (f" ({parts})" if parts else "")
        + ". None is an upsell.",
        value=total,
        n=n,
        table="giving_gifts",
        severity="action" if n else "info",
    )


LENS = GivingLens()
