"""The experience lens: outcome, treatment and effort-time of every journey (DESIGN.md §5.1).

The three parts of an experience are measured **separately** and never blended
into one index: did the customer get what they came for (``outcome_achieved``),
how were they treated (``treatment``, 0–1, shown with its parts), and what did it
cost them (contacts, repeats, channel switches, transfers, elapsed time against
the norm). Results:

* ``experience_journeys`` — one row per journey (:mod:`.journeys`);
* ``experience_customers`` — one row per customer (:mod:`.customers`);
* ``experience_segments`` — by kind, channel, team, segment and month, every rate
  with n and an interval (:mod:`.segments`);
* ``experience_drivers`` — which journey features move each part, with effect,
  interval and n, ranked (:mod:`.drivers`);
* findings (:mod:`.findings`).

Heavy work is Ibis over the canonical tables as they were at ``as_of``;
statistics are NumPy/SciPy on small summaries. ``docs/lenses/experience.md``
explains every column and derivation.
"""

from __future__ import annotations

from sawubona.lenses.base import LensInput, LensOutput, Setting
from sawubona.lenses.experience import customers as _customers
from sawubona.lenses.experience import drivers as _drivers
from sawubona.lenses.experience import findings as _findings
from sawubona.lenses.experience import journeys as _journeys
from sawubona.lenses.experience import segments as _segments
from sawubona.lenses.experience.sentiment import (
    LexiconScorer,
    SentimentScorer,
    get_scorer,
    register_scorer,
    scorer_names,
)


class ExperienceLens:
    name = "experience"
    title = "Experience: outcome, treatment and effort-time"
    needs = ("journeys",)
    uses = ("customers", "journey_items", "touchpoints", "promises", "surveys")
    #: the touch lens's verdict on each reply (templated or personal) when it ran first
    after = ("touch",)
    settings = (
        Setting("level", 0.95, "confidence level of every interval"),
        Setting(
            "min_n",
            30,
            "fewest journeys with (and without) a feature for it to enter a driver model",
        ),
        Setting(
            "wait_factor",
            2.0,
            "a first response is 'slow' beyond this many times the median of its channel",
        ),
        Setting(
            "unanswered_after_hours",
            168.0,
            "an inbound contact with no reply after it counts as unanswered once this old",
        ),
        Setting(
            "max_levels",
            20,
            "most distinct desired outcomes of a kind for them to be held constant in drivers",
        ),
        Setting(
            "sentiment",
            "lexicon",
            "comment sentiment scorer: lexicon (English and Portuguese) or none",
        ),
    )

    def run(self, data: LensInput) -> LensOutput:
        s = data.settings
        level = float(s.get("level", 0.95))
        scorer = get_scorer(str(s.get("sentiment", "lexicon")))
        opts = _journeys.Options(
            unanswered_after_hours=float(s.get("unanswered_after_hours", 168.0))
        )
        scratch = _journeys.Scratch()
        try:
            t, journeys, notes = _journeys.build(data, scorer, opts, scratch)
            if journeys.num_rows == 0:
                return LensOutput(
                    tables={"experience_journeys": journeys},
                    skipped=[*notes, f"no journeys started by {data.as_of:%Y-%m-%d %H:%M}"],
                )
            customers = _customers.customers(t, level=level)
            segments = _segments.segments(t, level=level)
            drivers = _drivers.drivers(
                t,
                min_n=int(s.get("min_n", 30)),
                level=level,
                wait_factor=float(s.get("wait_factor", 2.0)),
                max_levels=int(s.get("max_levels", 20)),
            )
            found = [
                *_findings.outcome_findings(segments, level),
                *_findings.lateness_finding(t, level),
                *_findings.driver_findings(drivers),
                *_findings.customer_finding(customers, level),
            ]
        finally:
            scratch.release()
        return LensOutput(
            tables={
                "experience_journeys": journeys,
                "experience_customers": customers,
                "experience_segments": segments,
                "experience_drivers": drivers,
            },
            findings=found,
            skipped=notes,
        )


LENS = ExperienceLens()

__all__ = [
    "LENS",
    "ExperienceLens",
    "LexiconScorer",
    "SentimentScorer",
    "get_scorer",
    "register_scorer",
    "scorer_names",
]
