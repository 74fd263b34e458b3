"""Policies: the promises an organisation makes implicitly, declared in TOML.

An organisation without a promise log still makes promises: "we answer every
e-mail within 8 business hours", "a ticket is taken in charge within one working
day". A policy declares one such promise; the lens generates the implied promise
for every matching journey or touchpoint and judges it like any other. The same
file sets, per promise kind, the business calendar its time is measured in, its
at-risk threshold and which touchpoint kinds pause its clock::

    [calendars.office]
    timezone = "Europe/Rome"
    hours = { "mon-fri" = ["09:00-13:00", "14:00-18:00"] }
    holidays = ["2012-12-25", "2012-12-26"]

    [kinds.first_response]
    calendar = "office"          # or an inline spec: "mon-fri 09:00-17:00; Europe/London"
    at_risk_share = 0.75
    pause_on = []                # touchpoint kinds that stop this kind's clock

    [[policies]]
    kind = "first_response"
    from = "journeys"            # made when a journey starts (or "touchpoints")
    when = { kind = "support" }  # which journeys / touchpoints
    kept_by = { direction = "outbound", kind = ["take_in_charge_ticket"] }
    within = "8h"                # business hours of the kind's calendar; "1d" = a working day

``kept_by`` is either a touchpoint filter (the first matching touchpoint of the
same journey at or after the promise keeps it) or ``"journey_achieved"`` (kept
when the journey ends with outcome ``achieved``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sawubona.errors import SawubonaError
from sawubona.lenses.promises.calendar import ALWAYS, Calendar, parse_duration
from sawubona.lenses.promises.clock import asof_join

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from sawubona.lenses.base import LensInput

#: columns a ``when`` / ``kept_by`` filter may test, per source table
FILTERABLE = {
    "touchpoints": ("direction", "channel", "kind", "actor", "team", "agent_id", "template_id"),
    "journeys": ("kind", "outcome", "desired_outcome"),
}
LOWER = {"direction", "channel", "kind", "actor", "outcome"}
JOURNEY_ACHIEVED = "journey_achieved"


class PolicyError(SawubonaError):
    """A policy file that cannot be used as written."""


@dataclass(frozen=True)
class KindRule:
    """How promises of one kind are measured."""

    kind: str
    calendar: Calendar
    at_risk_share: float
    pause_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """One implied promise, generated for each matching journey or touchpoint."""

    name: str
    kind: str
    source: str
    when: Mapping[str, tuple[str, ...]]
    kept_by: Mapping[str, tuple[str, ...]] | str
    within: str
    once_per_journey: bool = True


@dataclass(frozen=True)
class Book:
    """Calendars, kind rules and policies: everything the policy file declares."""

    calendars: Mapping[str, Calendar] = field(default_factory=dict)
    kinds: Mapping[str, KindRule] = field(default_factory=dict)
    default: KindRule = KindRule("*", Calendar(), 0.8)
    policies: tuple[Policy, ...] = ()

    def rule(self, kind: str) -> KindRule:
        return self.kinds.get(kind, self.default)

    @property
    def business_calendars(self) -> dict[str, Calendar]:
        """Every calendar in use that is not 24/7, by name."""
        cals = [self.default.calendar, *(r.calendar for r in self.kinds.values())]
        return {c.name: c for c in cals if not c.continuous}

    @property
    def pausable(self) -> dict[str, tuple[str, ...]]:
        """Kind → the touchpoint kinds that pause it ("*" = every kind not listed)."""
        out = {k: r.pause_on for k, r in self.kinds.items() if r.pause_on}
        if self.default.pause_on:
            out["*"] = self.default.pause_on
        return out

    def within_seconds(self, policy: Policy) -> float:
        return parse_duration(policy.within, self.rule(policy.kind).calendar)


def _values(v: Any, where: str) -> tuple[str, ...]:
    items = [v] if isinstance(v, str | int | float | bool) else list(v)
    if not items:
        raise PolicyError(f"{where} lists no values")
    return tuple(str(x) for x in items)


def _filter(d: Any, source: str, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(d, Mapping):
        raise PolicyError(f'{where} must be a table like {{ kind = "inquiry" }}')
    out: dict[str, tuple[str, ...]] = {}
    for col, v in d.items():
        if col not in FILTERABLE[source]:
            raise PolicyError(
                f"{where} tests {col!r}, which {source} filters cannot use; "
                f"use {', '.join(FILTERABLE[source])}"
            )
        vals = _values(v, f"{where}.{col}")
        out[col] = tuple(x.lower() for x in vals) if col in LOWER else vals
    return out


def _calendar(value: Any, calendars: Mapping[str, Calendar], where: str) -> Calendar:
    if value is None:
        return Calendar()
    if isinstance(value, Mapping):
        return Calendar.from_dict(where, value)
    text = str(value)
    if text in calendars:
        return calendars[text]
    if text == ALWAYS or any(ch.isdigit() for ch in text):
        return Calendar.parse(text)
    raise PolicyError(
        f"{where}: no calendar named {text!r}; declare [calendars.{text}] or give an inline "
        "spec like 'mon-fri 09:00-17:00; Europe/London'"
    )


def load(
    source: str | Path | Mapping[str, Any] | None,
    *,
    calendar: str = ALWAYS,
    at_risk_share: float = 0.8,
    pause_on: tuple[str, ...] = (),
) -> Book:
    """The policy book from a TOML path (or its parsed dict); the keyword arguments are
    the lens settings that apply to every kind the file does not list."""
    doc: Mapping[str, Any]
    if source is None or (isinstance(source, str) and not source.strip()):
        doc = {}
    elif isinstance(source, Mapping):
        doc = source
    else:
        path = Path(source)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PolicyError(
                f"policy file {path} not found; give an existing TOML file with "
                "--set promises.policies=PATH"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file {path} is not valid TOML: {exc}") from None
    unknown = set(doc) - {"calendars", "kinds", "policies"}
    if unknown:
        raise PolicyError(
            f"policy file: unknown section {sorted(unknown)[0]!r}; use calendars, kinds, policies"
        )
    calendars = {
        name: Calendar.from_dict(name, spec) for name, spec in doc.get("calendars", {}).items()
    }
    default = KindRule(
        "*", _calendar(calendar, calendars, "calendar setting"), at_risk_share, tuple(pause_on)
    )
    kinds: dict[str, KindRule] = {}
    for kind, spec in doc.get("kinds", {}).items():
        bad = set(spec) - {"calendar", "at_risk_share", "pause_on"}
        if bad:
            raise PolicyError(
                f"kinds.{kind}: unknown key {sorted(bad)[0]!r}; "
                "use calendar, at_risk_share, pause_on"
            )
        cal = (
            _calendar(spec["calendar"], calendars, f"kinds.{kind}.calendar")
            if "calendar" in spec
            else default.calendar
        )
        share = float(spec.get("at_risk_share", at_risk_share))
        if not 0 < share <= 1:
            raise PolicyError(f"kinds.{kind}.at_risk_share must be in (0, 1], not {share}")
        pauses = spec.get("pause_on", pause_on)
        kinds[kind.lower()] = KindRule(
            kind.lower(), cal, share, tuple(str(x).lower() for x in pauses)
        )
    policies: list[Policy] = []
    for i, spec in enumerate(doc.get("policies", [])):
        where = f"policies[{i}]"
        bad = set(spec) - {"name", "kind", "from", "when", "kept_by", "within", "once_per_journey"}
        if bad:
            raise PolicyError(f"{where}: unknown key {sorted(bad)[0]!r}")
        for key in ("kind", "from", "kept_by", "within"):
            if key not in spec:
                raise PolicyError(f"{where} needs {key} (see docs/lenses/promises.md)")
        src = str(spec["from"])
        if src not in FILTERABLE:
            raise PolicyError(f"{where}.from must be journeys or touchpoints, not {src!r}")
        kept_by: Mapping[str, tuple[str, ...]] | str
        if spec["kept_by"] == JOURNEY_ACHIEVED:
            kept_by = JOURNEY_ACHIEVED
        else:
            kept_by = _filter(spec["kept_by"], "touchpoints", f"{where}.kept_by")
        kind = str(spec["kind"]).lower()
        policy = Policy(
            name=str(spec.get("name", kind)),
            kind=kind,
            source=src,
            when=_filter(spec.get("when", {}), src, f"{where}.when"),
            kept_by=kept_by,
            within=str(spec["within"]),
            once_per_journey=bool(spec.get("once_per_journey", True)),
        )
        policies.append(policy)
    book = Book(calendars, kinds, default, tuple(policies))
    for p in policies:
        if book.within_seconds(p) <= 0:
            raise PolicyError(f"policy {p.name}: within must be more than zero")
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise PolicyError("policies: two policies have the same name; give each a distinct name")
    return book


# --------------------------------------------------------------------------- generation


def _matches(t: ir.Table, flt: Mapping[str, tuple[str, ...]]) -> ir.BooleanValue:
    import ibis

    cond: ir.BooleanValue = ibis.literal(True)
    for col, vals in flt.items():
        if col not in t.columns:
            return ibis.literal(False)
        cond &= t[col].isin(list(vals))
    return cond


def generate(data: LensInput, book: Book, policy: Policy) -> ir.Table | None:
    """The promises ``policy`` implies, in the promises layout plus ``source``,
    ``source_row`` and ``within_s`` (business seconds; ``due_at`` is left null and
    computed by the ledger in the kind's calendar). None when the tables it needs
    are absent."""
    import ibis

    if policy.source not in data.tables or (
        policy.kept_by != JOURNEY_ACHIEVED and not data.has("touchpoints")
    ):
        return None
    if policy.kept_by == JOURNEY_ACHIEVED and not data.has("journeys"):
        return None
    within = book.within_seconds(policy)
    tp = data.until("touchpoints") if data.has("touchpoints") else None
    null_s = ibis.null("string")
    if policy.source == "journeys":
        j = data.until("journeys")
        trig = j.filter(_matches(j, policy.when)).select(
            trig_id=j.journey_id,
            customer_id=j.customer_id,
            journey_id=j.journey_id,
            made_at=j.started_at,
            source_row=j._source,
            trig_team=null_s,
            trig_channel=null_s,
            ended_at=j.ended_at,
            outcome=j.outcome,
        )
        key = trig.journey_id
    else:
        assert tp is not None
        trig = tp.filter(_matches(tp, policy.when))
        trig = trig.select(
            trig_id=trig.touchpoint_id,
            customer_id=trig.customer_id,
            journey_id=trig.journey_id,
            made_at=trig.at,
            source_row=trig._source,
            trig_team=trig.team,
            trig_channel=trig.channel,
            ended_at=ibis.null("timestamp"),
            outcome=null_s,
        )
        key = trig.journey_id
        if policy.once_per_journey:
            w = ibis.window(
                group_by=ibis.coalesce(trig.journey_id, "customer:" + trig.customer_id),
                order_by=[trig.made_at, trig.trig_id],
            )
            trig = trig.filter(ibis.row_number().over(w) == 0)
        key = trig.journey_id
    trig = trig.mutate(_key=ibis.coalesce(key, "customer:" + trig.customer_id))

    if policy.kept_by == JOURNEY_ACHIEVED:
        achieved = trig.outcome == "achieved"
        kept = trig.mutate(
            kept_at=ibis.ifelse(achieved, trig.ended_at, None),
            kept_team=null_s,
            kept_id=ibis.ifelse(achieved, "the end of journey " + trig.journey_id, None),
        )
    else:
        assert tp is not None and not isinstance(policy.kept_by, str)
        f = tp.filter(_matches(tp, policy.kept_by))
        f = f.select(
            _fkey=ibis.coalesce(f.journey_id, "customer:" + f.customer_id),
            _fat=f.at,
            kept_team=f.team,
            _fid=f.touchpoint_id,
        )
        op = "<=" if policy.source == "journeys" else "<"
        kept = asof_join(trig, f, "made_at", op, "_fat", ("_key", "_fkey")).select(
            *trig.columns, kept_at="_fat", kept_team="kept_team", kept_id="_fid"
        )
    # the journey's first team and channel, for promises whose trigger names none
    if tp is not None:
        firsts = (
            tp.filter(tp.journey_id.notnull())
            .group_by(_jid=tp.journey_id)
            .aggregate(
                j_team=tp.team.argmin(tp.at, where=tp.team.notnull()),
                j_channel=tp.channel.argmin(tp.at),
            )
        )
        kept = kept.left_join(firsts, kept.journey_id == firsts._jid).select(
            *kept.columns, "j_team", "j_channel"
        )
    else:
        kept = kept.mutate(j_team=null_s, j_channel=null_s)
    return kept.select(
        promise_id=ibis.literal(policy.name + ":") + kept.trig_id,
        customer_id=kept.customer_id,
        journey_id=kept.journey_id,
        kind=ibis.literal(policy.kind),
        made_at=kept.made_at,
        due_at=ibis.null("timestamp"),
        made_by=ibis.literal("policy:" + policy.name),
        team=ibis.coalesce(kept.kept_team, kept.trig_team, kept.j_team),
        channel=ibis.coalesce(kept.trig_channel, kept.j_channel),
        kept_at=kept.kept_at,
        cancelled_at=ibis.null("timestamp"),
        cancel_reason=null_s,
        source=ibis.literal("policy:" + policy.name),
        source_row=kept.source_row.fill_null("")
        + ibis.ifelse(kept.kept_id.notnull(), "; kept by " + kept.kept_id, ""),
        within_s=ibis.literal(within, type="float64"),
    )
