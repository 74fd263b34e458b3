"""The promise ledger: does the organisation keep its word? (DESIGN.md §5.2)

Every promise — from the ``promises`` table, or implied by a policy over
journeys and touchpoints — gets a status frozen at its first terminal event
(``kept``, ``broken``, ``cancelled``; before due ``open`` or ``at_risk``), its
lateness in elapsed and business time, and the evidence. Results:

* ``promises_status`` — one row per promise;
* ``promises_integrity`` — kept / (kept + broken) with Wilson interval and
  beta-binomial shrinkage, overall and by kind, team, channel, month, source;
* ``promises_lateness`` — how early or late, in bands;
* ``promises_at_risk`` — open promises, at risk first, by time left and stake;
* ``promises_make_right`` — broken promises with no apology or credit, by stake;
* ``promises_gaming`` — padded deadlines, renegotiated due dates, pauses.

See ``docs/lenses/promises.md`` for every column and the policy file.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from sawubona.lenses import engine
from sawubona.lenses.base import LensInput, LensOutput, Setting
from sawubona.lenses.promises import enrich, ledger, policies, report
from sawubona.lenses.promises.calendar import (
    Calendar,
    Clock,
    add_business,
    business_seconds,
    parse_duration,
)
from sawubona.lenses.promises.findings import findings


def _words(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip().lower() for v in value if str(v).strip())
    return tuple(w.strip().lower() for w in str(value or "").split(",") if w.strip())


class PromisesLens:
    name = "promises"
    title = "Promises: the integrity ledger"
    #: the promises table, or touchpoints/journeys for policies: checked in ``run``
    needs: tuple[str, ...] = ()
    uses = ("promises", "touchpoints", "journeys", "actions")
    after: tuple[str, ...] = ()
    settings = (
        Setting(
            "at_risk_share",
            0.8,
            "An open promise is at risk once this share of its promised (business) time has "
            "elapsed (per kind: at_risk_share in the policy file).",
        ),
        Setting(
            "at_risk_quantile",
            0.9,
            "...or once its business time left is below this quantile of the kind's time to "
            "keep (over promises kept by as_of).",
        ),
        Setting(
            "calendar",
            "24/7",
            "Business calendar of kinds the policy file gives none: 24/7 (elapsed time) or "
            "e.g. 'mon-fri 09:00-12:30,13:30-17:00; Europe/London; holidays 2024-12-25'.",
        ),
        Setting(
            "pause_on",
            "",
            "Touchpoint kinds (comma-separated, e.g. 'wait,pending') that pause the clock of "
            "kinds the policy file does not list, until the journey's next touchpoint.",
        ),
        Setting(
            "policies",
            "",
            "Policy file (TOML): calendars, per-kind rules and the policies that generate "
            "implied promises from journeys or touchpoints (docs/lenses/promises.md).",
        ),
        Setting(
            "padding_ratio",
            2.0,
            "A promise is padded when it gives itself at least this many times the median "
            "promised business time of its kind.",
        ),
        Setting(
            "padding_min_ratio",
            1.25,
            "A team or agent is flagged for padded deadlines when its promises give "
            "themselves significantly more time than their kinds' norms (FDR) and a median "
            "of at least this many times the norm.",
        ),
        Setting(
            "make_good_days",
            7.0,
            "An apology or credit makes a broken promise right when it comes after the due "
            "time and within this many days of the later of due and fulfilment.",
        ),
        Setting(
            "make_good_touchpoint_kinds",
            "apology",
            "Outbound touchpoint kinds that make a broken promise right (comma-separated; add "
            "follow_up to count any follow-up message).",
        ),
        Setting(
            "make_good_action_kinds",
            "credit,compensation",
            "Action kinds that make a broken promise right (comma-separated).",
        ),
        Setting(
            "pause_after_message_minutes",
            15.0,
            "A pause that starts within this many minutes of a customer message counts as "
            "'right after a customer message' (a mark of parking the clock).",
        ),
        Setting(
            "fdr",
            0.05,
            "False-discovery rate of the flags (teams keeping their word less often than the "
            "rest, padded deadlines, renegotiated due dates).",
        ),
        Setting(
            "min_n", 20, "Smallest number of judged promises for a kind to be named in a finding."
        ),
    )

    def run(self, data: LensInput) -> LensOutput:
        import ibis

        s = data.settings
        book = policies.load(
            s.get("policies") or None,
            calendar=str(s.get("calendar", "24/7")),
            at_risk_share=float(s.get("at_risk_share", 0.8)),
            pause_on=_words(s.get("pause_on", "")),
        )
        if not data.has("promises") and not book.policies:
            return LensOutput(
                skipped=[
                    "no promises table and no policy: load promises, or declare a policy "
                    "(--set promises.policies=FILE.toml) that derives them from touchpoints "
                    "or journeys"
                ]
            )
        frame = ledger.frame(data, book)
        if frame is None:
            return LensOutput(
                skipped=["the policies need touchpoints or journeys, and the store has neither"]
            )
        opts = ledger.Options(
            as_of=data.as_of,
            at_risk_quantile=float(s.get("at_risk_quantile", 0.9)),
            padding_ratio=float(s.get("padding_ratio", 2.0)),
            make_good_days=float(s.get("make_good_days", 7.0)),
            make_good_touchpoint_kinds=_words(s.get("make_good_touchpoint_kinds", "apology")),
            make_good_action_kinds=_words(s.get("make_good_action_kinds", "credit,compensation")),
            pause_after_message_minutes=float(s.get("pause_after_message_minutes", 15.0)),
        )
        fdr = float(s.get("fdr", 0.05))
        pause_kinds = {k for v in book.pausable.values() for k in v}
        pz = ledger.pauses(data, pause_kinds, opts)
        core = ledger.status(data, frame, book, opts)
        backend = ibis.get_backend(core)
        views: list[str] = []

        def keep(table: pa.Table) -> Any:
            """An Arrow result back in the engine (see sawubona.lenses.engine)."""
            got, view = engine.from_arrow(backend, table, "_promises")
            if view:
                views.append(view)
            return got

        if book.business_calendars or book.policies or pz is not None:
            # the per-promise core takes joins: materialise it once, since the enrichment
            # reads it several times (renegotiations, make-goods)
            core = keep(backend.to_pyarrow(core))
        kinds = backend.to_pyarrow(enrich.kind_norms(core, opts))
        pause_on = [",".join(book.rule(k).pause_on) for k in kinds.column("kind").to_pylist()]
        kinds = kinds.append_column("pause_on", pa.array(pause_on, pa.string()))
        status = backend.to_pyarrow(enrich.enrich(data, core, keep(kinds), opts))
        led = keep(status)
        integrity = report.integrity(led, backend, fdr)
        make_right = report.make_right(data, led, backend)
        at_risk = report.at_risk(data, led, keep(kinds), backend)
        gaming = report.gaming(led, pz, backend, fdr, float(s.get("padding_min_ratio", 1.25)))
        tables = {
            "promises_status": status,
            "promises_kinds": kinds,
            "promises_integrity": integrity,
            "promises_lateness": report.lateness(led, backend),
            "promises_at_risk": at_risk,
            "promises_make_right": make_right,
            "promises_gaming": gaming,
        }
        for name in views:
            backend._session.catalog.dropTempView(name)
        notes = []
        if not data.has("promises"):
            notes.append("no promises table: the ledger holds the promises the policies imply")
        if not data.has("touchpoints") and not data.has("actions"):
            notes.append("no touchpoints or actions: no make-good can be seen")
        return LensOutput(
            tables=tables,
            findings=findings(
                integrity, make_right, at_risk, gaming, fdr=fdr, min_n=int(s.get("min_n", 20))
            ),
            skipped=notes,
        )


LENS = PromisesLens()

__all__ = [
    "LENS",
    "Calendar",
    "Clock",
    "PromisesLens",
    "add_business",
    "business_seconds",
    "parse_duration",
]
