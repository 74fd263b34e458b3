"""The voice lens's settings, declared once (name, default, help)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sawubona.lenses.base import Setting

SETTINGS: tuple[Setting, ...] = (
    Setting("fdr", 0.05, "false-discovery rate of the review queue (Benjamini–Hochberg)"),
    Setting(
        "adjusted_wald_below",
        100,
        "NPS intervals of groups with fewer scored answers use Rocks's adjusted Wald",
    ),
    Setting("min_answers", 10, "fewest scored answers for a unit's distribution tests"),
    Setting(
        "concession_kinds",
        "discount,credit",
        "action kinds counted as concessions (comma-separated)",
    ),
    Setting(
        "concession_window_hours",
        72,
        "a concession this many hours before an invitation (or after a journey's end) "
        "counts as given for the survey",
    ),
    Setting(
        "solicitation_pattern",
        "",
        "extra regular expression (lower case) for messages that ask for a top score",
    ),
    Setting("horizon_days", 180, "say vs do: days after an answer in which behaviour counts"),
    Setting("min_cell", 5, "IPW: fewest answers in a weighting class before it borrows"),
    Setting("themes_per_band", 15, "comment themes listed per score band"),
    Setting("min_theme_comments", 3, "fewest comments using a phrase for it to be a theme"),
    Setting("simulations", 2000, "draws of the low-entropy test"),
    Setting("seed", 0, "seed of the low-entropy simulation"),
    Setting("evidence_rows", 200, "evidence rows kept per flagged unit and signal"),
)


def resolve(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every setting's value: the defaults overridden by ``given``."""
    return {s.name: s.default for s in SETTINGS} | dict(given)
