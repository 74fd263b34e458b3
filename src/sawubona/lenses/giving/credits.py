"""Owed credits: what the organisation's own compensation rules owe, minus what was paid.

The rules are a TOML file (setting ``compensation_rules``; empty = the built-in
example rules below, which an organisation should replace with its own)::

    paid_kinds = ["credit", "compensation"]   # actions that count as paid
    match_days = 30    # a payment with no journey counts against a claim up to this late

    [[promise]]        # a broken promise of this kind ("*" = any kind)
    kind = "delivery"
    per_day_late = 5.0 # per started day between due_at and kept_at (or as_of)
    max = 50.0         # optional cap
    grace_days = 0     # optional: days late that are free

    [[promise]]
    kind = "visit"
    amount = 25.0      # a flat amount when the promise is broken

    [[journey]]        # a journey of this kind with this outcome
    kind = "support"
    outcome = "failed"
    amount = 10.0

A promise is **broken** (DESIGN.md §5.2) when it was due by ``as_of`` and was
not kept by ``due_at`` (kept late, or not kept at all), unless it was cancelled
first (cancelled before it fell due and before it was kept). A claim's
**paid** part is the sum of ``paid_kinds`` actions of the same customer on the
same journey — or, for a payment that names no journey, the latest claim of the
customer at most ``match_days`` before it. What remains is owed.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sawubona.errors import SawubonaError
from sawubona.lenses.base import Finding
from sawubona.lenses.giving import messages
from sawubona.lenses.giving.common import (
    gifts_table,
    json_float,
    json_str,
    json_times,
    json_values,
    money,
)

if TYPE_CHECKING:
    from sawubona.lenses.giving.lens import Context

DEFAULT_RULES_TOML = """
# Built-in example rules: replace them with your organisation's own
# (setting giving.compensation_rules = path/to/rules.toml).
paid_kinds = ["credit", "compensation"]
match_days = 30

[[promise]]
kind = "delivery"
per_day_late = 5.0
max = 50.0

[[promise]]
kind = "visit"
amount = 25.0

[[promise]]
kind = "fix"
per_day_late = 5.0
max = 50.0

[[promise]]
kind = "callback"
amount = 5.0
"""

_PROMISE_KEYS = {"kind", "amount", "per_day_late", "max", "grace_days"}
_JOURNEY_KEYS = {"kind", "outcome", "amount"}


@dataclass(frozen=True)
class Rule:
    on: str  # promise | journey
    kind: str
    amount: float = 0.0
    per_day_late: float = 0.0
    max: float | None = None
    grace_days: float = 0.0
    outcome: str = "failed"

    def basis(self, days: int, currency: str | None) -> str:
        if self.on == "journey":
            what = self.kind.replace("_", " ")
            return f"{money(self.amount, currency)} for a {what} we could not complete"
        parts = []
        if self.amount:
            parts.append(f"{money(self.amount, currency)} for a broken {self.kind} promise")
        if self.per_day_late:
            late = max(0, days - int(self.grace_days))
            days_text = f"{late} day" + ("s" if late != 1 else "")
            parts.append(f"{money(self.per_day_late, currency)} a day for {days_text} late")
        text = " plus ".join(parts)
        if self.max is not None:
            text += f", up to {money(self.max, currency)}"
        return text

    def owed(self, days: np.ndarray) -> np.ndarray:
        late = np.maximum(0, days - self.grace_days)
        value = self.amount + self.per_day_late * late
        return np.minimum(value, self.max) if self.max is not None else value


@dataclass(frozen=True)
class Rules:
    promise: list[Rule]
    journey: list[Rule]
    paid_kinds: list[str] = field(default_factory=lambda: ["credit", "compensation"])
    match_days: float = 30.0
    source: str = "built-in example rules"

    def for_promise(self, kind: str) -> Rule | None:
        return _first(self.promise, kind)

    def for_journey(self, kind: str, outcome: str) -> Rule | None:
        return _first([r for r in self.journey if r.outcome == outcome], kind)


def _first(rules: list[Rule], kind: str) -> Rule | None:
    for r in rules:
        if r.kind == kind:
            return r
    for r in rules:
        if r.kind == "*":
            return r
    return None


def load_rules(setting: Any) -> Rules:
    """Rules from a TOML path, a mapping (Python API), or the built-in examples ("")."""
    if isinstance(setting, Mapping):
        return parse_rules(setting, "rules given as a mapping")
    text = str(setting or "").strip()
    if not text:
        return parse_rules(tomllib.loads(DEFAULT_RULES_TOML), "built-in example rules")
    path = Path(text).expanduser()
    if not path.is_file():
        raise SawubonaError(
            f"compensation rules file {text} not found: give a TOML file "
            "(see docs/lenses/giving.md) or leave giving.compensation_rules empty"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SawubonaError(f"compensation rules file {text} is not valid TOML: {exc}") from None
    return parse_rules(data, str(path))


def parse_rules(data: Mapping[str, Any], source: str) -> Rules:
    def number(rule: Mapping[str, Any], key: str, where: str) -> float:
        value = rule.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SawubonaError(f"{source}: {where} {key} = {value!r} must be a number ≥ 0")
        return float(value)

    out: dict[str, list[Rule]] = {"promise": [], "journey": []}
    for on, keys in (("promise", _PROMISE_KEYS), ("journey", _JOURNEY_KEYS)):
        items = data.get(on, [])
        if not isinstance(items, list):
            raise SawubonaError(f"{source}: write each {on} rule as a [[{on}]] table")
        for i, rule in enumerate(items, 1):
            where = f"[[{on}]] number {i}"
            unknown = set(rule) - keys
            if unknown:
                raise SawubonaError(
                    f"{source}: {where} has unknown key {sorted(unknown)[0]!r}; "
                    f"use {', '.join(sorted(keys))}"
                )
            if not rule.get("kind"):
                raise SawubonaError(f'{source}: {where} needs a kind (e.g. kind = "delivery")')
            cap = rule.get("max")
            out[on].append(
                Rule(
                    on=on,
                    kind=str(rule["kind"]).lower(),
                    amount=number(rule, "amount", where),
                    per_day_late=number(rule, "per_day_late", where) if on == "promise" else 0.0,
                    max=None if cap is None else number(rule, "max", where),
                    grace_days=number(rule, "grace_days", where) if on == "promise" else 0.0,
                    outcome=str(rule.get("outcome", "failed")).lower(),
                )
            )
    paid = data.get("paid_kinds", ["credit", "compensation"])
    if isinstance(paid, str):
        paid = [paid]
    return Rules(
        out["promise"],
        out["journey"],
        [str(k).lower() for k in paid],
        number(data, "match_days", "match_days") if "match_days" in data else 30.0,
        source,
    )


@dataclass
class Credits:
    gifts: pa.Table
    claims: pa.Table  # giving_credits
    findings: list[Finding]


def broken_promises(ctx: Context, kinds: list[str], any_kind: bool) -> pd.DataFrame:
    """Promises broken by ``as_of`` (of the kinds with a rule), with their days late."""
    p = ctx.data.until("promises")
    if not any_kind:
        p = p.filter(p.kind.isin(kinds))
    # the promises lens's rule (DESIGN.md §5.2), fields later than as_of not yet happened
    kept = p.kept_at.notnull() & (p.kept_at <= ctx.as_of)
    gone = p.cancelled_at.notnull() & (p.cancelled_at <= ctx.as_of)
    kept_ok = (kept & (p.kept_at <= p.due_at) & (~gone | (p.kept_at <= p.cancelled_at))).fill_null(
        False
    )
    cancelled_first = (~kept_ok & gone & (p.cancelled_at < p.due_at)).fill_null(False)
    broken = ~kept_ok & ~cancelled_first & (p.due_at <= ctx.as_of)
    p = p.filter(broken)
    return p.select(
        "promise_id",
        "customer_id",
        "journey_id",
        "kind",
        "made_at",
        "due_at",
        kept_at=kept.ifelse(p.kept_at, None),
    ).to_pandas()


def run(ctx: Context, rules: Rules) -> Credits:
    claims = _claims(ctx, rules)
    payments = _payments(ctx, rules)
    claims = _match(claims, payments, rules.match_days)
    return _report(ctx, rules, claims)


def _claims(ctx: Context, rules: Rules) -> pd.DataFrame:
    cols = ["claim_id", "source", "customer_id", "journey_id", "kind", "at", "due_at", "kept_at"]
    frames = []
    if rules.promise and ctx.data.has("promises"):
        kinds = [r.kind for r in rules.promise]
        # every fetch in id order: engines return rows in any order, and the order shows in
        # the evidence (claims of a group, the payments against it)
        pr = broken_promises(ctx, kinds, "*" in kinds)
        pr = pr.sort_values("promise_id", kind="stable", ignore_index=True)
        if len(pr):
            end = pr["kept_at"].fillna(pd.Timestamp(ctx.as_of))
            days = (end - pr["due_at"]).dt.total_seconds().to_numpy() / 86400
            pr["days_late"] = np.ceil(np.round(days, 6)).astype(int)
            pr["owed"], pr["basis"] = _apply(rules.promise, pr, ctx.currency)
            pr = pr.rename(columns={"promise_id": "claim_id"})
            pr["source"], pr["at"] = "promises", pr["due_at"]
            pr["what"] = None
            frames.append(pr[[*cols, "days_late", "owed", "basis", "what"]])
    elif rules.promise:
        ctx.skipped.append("owed credits: no promises table, so no broken promise is known")
    if rules.journey and ctx.data.has("journeys"):
        j = ctx.data.until("journeys")
        j = j.filter(j.outcome.notnull() & (j.ended_at.isnull() | (j.ended_at <= ctx.as_of)))
        j = j.filter(
            j.kind.isin([r.kind for r in rules.journey]) | ("*" in [r.kind for r in rules.journey])
        )
        jd = j.select(
            "journey_id",
            "customer_id",
            "kind",
            "outcome",
            "started_at",
            "ended_at",
            "desired_outcome",
        ).to_pandas()
        jd = jd.sort_values("journey_id", kind="stable", ignore_index=True)
        found = [rules.for_journey(k, o) for k, o in zip(jd["kind"], jd["outcome"], strict=True)]
        hits = [r for r in found if r is not None]
        jd = jd[np.array([r is not None for r in found], bool)].copy()
        if len(jd):
            jd["owed"] = [r.amount for r in hits]
            jd["basis"] = [r.basis(0, ctx.currency) for r in hits]
            jd["claim_id"], jd["source"] = jd["journey_id"], "journeys"
            jd["at"] = jd["ended_at"].fillna(jd["started_at"])
            jd["due_at"], jd["kept_at"], jd["days_late"] = pd.NaT, pd.NaT, 0
            jd["what"] = [
                messages.failed_journey(k, d, t.to_pydatetime() if pd.notna(t) else None)
                for k, d, t in zip(jd["kind"], jd["desired_outcome"], jd["started_at"], strict=True)
            ]
            frames.append(jd[[*cols, "days_late", "owed", "basis", "what"]])
    if not frames:
        return pd.DataFrame(columns=[*cols, "days_late", "owed", "basis", "what"])
    out = pd.concat(frames, ignore_index=True)
    return out[out["owed"] > 0].reset_index(drop=True)


def _apply(
    rules: list[Rule], pr: pd.DataFrame, currency: str | None
) -> tuple[np.ndarray, list[str]]:
    owed = np.zeros(len(pr))
    basis = [""] * len(pr)
    kinds = pr["kind"].to_numpy()
    days = pr["days_late"].to_numpy()
    for kind in np.unique(kinds):
        rule = _first(rules, str(kind))
        if rule is None:
            continue
        rows = np.flatnonzero(kinds == kind)
        owed[rows] = rule.owed(days[rows].astype(float))
        for r in rows:
            basis[r] = rule.basis(int(days[r]), currency)
    return np.round(owed, 2), basis


def _payments(ctx: Context, rules: Rules) -> pd.DataFrame:
    if not ctx.data.has("actions"):
        return pd.DataFrame(columns=["action_id", "customer_id", "at", "amount", "journey_id"])
    a = ctx.data.until("actions")
    a = a.filter(a.kind.isin(rules.paid_kinds))
    pay = a.select("action_id", "customer_id", "at", "amount", "journey_id").to_pandas()
    return pay.sort_values("action_id", kind="stable", ignore_index=True)


def _match(claims: pd.DataFrame, pay: pd.DataFrame, match_days: float) -> pd.DataFrame:
    """Each claim's group (journey, else itself) and what was paid against the group."""
    claims = claims.copy()
    claims["group"] = np.where(
        claims["journey_id"].notna(),
        claims["customer_id"].astype(str) + "|" + claims["journey_id"].astype(str),
        claims["customer_id"].astype(str) + "|" + claims["claim_id"].astype(str),
    )
    claims["paid"], claims["paid_ids"] = 0.0, ""
    if not len(claims) or not len(pay):
        return claims
    pay = pay.assign(amount=pay["amount"].fillna(0.0))
    groups = pa.array(claims["group"].unique().tolist(), pa.string(), from_pandas=True)
    key = pay["customer_id"].astype(str) + "|" + pay["journey_id"].astype(str)
    # a payment without a journey has no key (missing, not text): it matches no group
    keys = pa.array(key.tolist(), pa.string(), from_pandas=True)
    found = pc.fill_null(pc.is_in(keys, value_set=groups), False)
    linked = pay["journey_id"].notna() & np.asarray(found, dtype=bool)
    by_group = pay[linked].assign(group=key[linked])
    loose = pay[pay["journey_id"].isna()].sort_values("at")
    if len(loose):
        c = claims[["customer_id", "at", "group"]].dropna(subset=["at"]).sort_values("at")
        m = pd.merge_asof(
            loose,
            c,
            on="at",
            by="customer_id",
            direction="backward",
            tolerance=pd.Timedelta(days=match_days),
        ).dropna(subset=["group"])
        by_group = pd.concat([by_group, m[by_group.columns]], ignore_index=True)
    agg = by_group.groupby("group").agg(paid=("amount", "sum"))
    agg["paid_ids"] = _joined(by_group["group"], by_group["action_id"]).reindex(agg.index)
    claims = claims.drop(columns=["paid", "paid_ids"]).join(agg, on="group")
    claims["paid"] = claims["paid"].fillna(0.0)
    claims["paid_ids"] = claims["paid_ids"].fillna("")
    return claims


def _report(ctx: Context, rules: Rules, claims: pd.DataFrame) -> Credits:
    cur = ctx.currency
    give = pd.DataFrame(columns=["customer_id", "owed", "paid", "still_owed"])
    findings: list[Finding] = []
    evidence: list[str] = []
    texts: list[str] = []
    g_claims: list[str] = []
    if len(claims):
        grp = claims.groupby("group", sort=True).agg(
            customer_id=("customer_id", "first"),
            owed=("owed", "sum"),
            paid=("paid", "first"),
            paid_ids=("paid_ids", "first"),
            source=("source", "first"),
        )
        grp["still_owed"] = np.round(np.maximum(0.0, grp["owed"] - grp["paid"]), 2)
        owing = grp["still_owed"].to_numpy() >= 0.01
        give = grp[owing]
        shown = ["claim_id", "source", "kind", "due_at", "kept_at", "days_late", "owed", "basis"]
        # each claim's group as its position in ``grp`` (sorted keys, as groupby sorts them)
        code = pd.factorize(claims["group"], sort=True)[0]
        wanted = claims[owing[code]]
        # column lists, not to_dict("records"): iterating Arrow-backed columns one value at
        # a time is slow in pandas 3; timestamps stay pandas Timestamps as before
        cols = {c: _values(wanted[c]) for c in [*shown, "what"]}
        # each claim's JSON object, written column by column as to_json writes the dict
        frags = zip(*[_json_column(wanted[c], cols[c]) for c in shown], strict=True)
        claim_json = [
            "{" + ",".join(f'"{k}":{v}' for k, v in zip(shown, f, strict=True)) + "}" for f in frags
        ]
        claim_ids = [str(x) for x in cols["claim_id"]]
        claim_ids_json = json_values(claim_ids)
        # the claims of each group owed something, in their order in ``claims``
        code = code[owing[code]]
        order = np.argsort(code, kind="stable")
        owed_codes = np.flatnonzero(owing)
        first_at = np.searchsorted(code[order], owed_codes, side="left").tolist()
        end_at = np.searchsorted(code[order], owed_codes, side="right").tolist()
        order_l = order.tolist()
        names = ctx.first_names(give["customer_id"].astype(str).tolist())
        g_owed = give["owed"].astype(float).tolist()
        g_paid = give["paid"].astype(float).tolist()
        g_still = give["still_owed"].astype(float).tolist()
        g_ids = give["paid_ids"].astype(str).tolist()
        g_source = give["source"].astype(str).tolist()
        rules_json = json_str(rules.source)
        for i in range(len(give)):
            rows = order_l[first_at[i] : end_at[i]]
            c = rows[0]
            g_claims.append(",".join([claim_ids[r] for r in rows]))
            paid_by = json_values([x for x in g_ids[i].split(",") if x])
            evidence.append(
                f'{{"rules":{rules_json},"claims":[{",".join([claim_json[r] for r in rows])}],'
                f'"owed":{json_float(round(g_owed[i], 2))},'
                f'"paid":{json_float(round(g_paid[i], 2))},'
                f'"paid_by":[{",".join(paid_by)}],"still_owed":{json_float(g_still[i])},'
                f'"rows":{{{json_str(g_source[i])}:'
                f'{{"id":[{",".join([claim_ids_json[r] for r in rows])}]}}}}}}'
            )
            what = cols["what"][c]
            texts.append(
                messages.owed_credit(
                    first=names[i],
                    kind=str(cols["kind"][c]),
                    what=what if isinstance(what, str) else None,
                    due_at=_py(cols["due_at"][c]),
                    kept_at=_py(cols["kept_at"][c]),
                    days_late=int(cols["days_late"][c]),
                    owed=g_owed[i],
                    paid=g_paid[i],
                    basis=str(cols["basis"][c])
                    if len(rows) == 1
                    else f"for {len(rows)} things we got wrong",
                    currency=cur,
                )
            )
        owed, paid = float(grp["owed"].sum()), float(np.minimum(grp["paid"], grp["owed"]).sum())
        still = float(give["still_owed"].sum())
        findings.append(
            Finding(
                "giving",
                "owed_credits",
                f"Under {rules.source}, {len(claims)} broken promises and failed journeys are owed "
                f"{money(owed, cur)}; {money(paid, cur)} of it was paid, "
                f"{money(still, cur)} is still owed to {give['customer_id'].nunique()} customers.",
                value=still,
                n=len(claims),
                table="giving_gifts",
                where={"kind": "owed_credit"},
                severity="action" if len(give) else "info",
            )
        )
    give = give.assign(claim_ids=g_claims)
    first_ids = [str(x).split(",")[0] for x in give["claim_ids"]]
    gifts = gifts_table(
        {
            "gift_id": [
                f"owed_credit:{c}:{k}" for c, k in zip(give["customer_id"], first_ids, strict=True)
            ],
            "customer_id": give["customer_id"].astype(str).tolist(),
            "kind": ["owed_credit"] * len(give),
            "value_per_year": give["still_owed"].astype(float).to_numpy(),
            "currency": [cur] * len(give),
            "recurring": [False] * len(give),
            "confidence": [1.0] * len(give),
            "evidence": evidence,
            "message": texts,
            "source_table": give["source"].astype(str).tolist() if len(give) else [],
            "source_ids": give["claim_ids"].astype(str).tolist() if len(give) else [],
        }
    )
    return Credits(gifts, _claims_table(claims), findings)


def _claims_table(claims: pd.DataFrame) -> pa.Table:
    cols = {
        "claim_id": pa.string(),
        "source": pa.string(),
        "customer_id": pa.string(),
        "journey_id": pa.string(),
        "kind": pa.string(),
        "due_at": pa.timestamp("us"),
        "kept_at": pa.timestamp("us"),
        "days_late": pa.int64(),
        "owed": pa.float64(),
        "basis": pa.string(),
        "paid_on_journey": pa.float64(),
        "paid_ids": pa.string(),
    }
    df = claims.rename(columns={"paid": "paid_on_journey"})
    arrays = []
    for name, typ in cols.items():
        values = df[name] if name in df else pd.Series([None] * len(df))
        if pa.types.is_timestamp(typ):
            values = pd.to_datetime(values)
        arrays.append(
            pa.array(
                values.tolist() if not pa.types.is_timestamp(typ) else values, typ, from_pandas=True
            )
        )
    return pa.Table.from_arrays(arrays, schema=pa.schema(list(cols.items())))


def _joined(groups: pd.Series, ids: pd.Series) -> pd.Series:
    """The ids of each group joined with commas, in their order of appearance."""
    order = np.argsort(groups.to_numpy(dtype=object).astype(str), kind="stable")
    keys = groups.astype(str).to_numpy(dtype=object)[order]
    values = [str(x) for x in ids.to_numpy(dtype=object)[order]]
    if not len(keys):
        return pd.Series([], dtype=object)
    starts = np.r_[0, np.flatnonzero(keys[1:] != keys[:-1]) + 1, len(keys)]
    return pd.Series(
        [",".join(values[a:b]) for a, b in itertools.pairwise(starts)],
        index=keys[starts[:-1]],
        dtype=object,
    )


def _json_column(column: pd.Series, values: list[Any]) -> list[str]:
    """A column's values as to_json writes them (timestamps formatted all at once)."""
    times = json_times(column.to_numpy()) if column.dtype.kind == "M" else None
    return times if times is not None else json_values(values)


def _values(column: pd.Series) -> list[Any]:
    """A column's values as ``to_dict("records")`` gives them (NaN/NaT/None kept as such)."""
    return column.astype(object).tolist()


def _py(value: Any) -> Any:
    if type(value) is pd.Timestamp:
        return value.to_pydatetime()
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
