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
        per_customer: list[pd.DataFrame] = []
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
                per_customer.append(bp.per_customer.to_pandas())
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
            per_customer.append(lg.per_customer.to_pandas())
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


def _customers(parts: list[pd.DataFrame], gifts: pa.Table) -> pa.Table:
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
