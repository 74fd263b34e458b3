"""The voice lens: what customers say — with its uncertainty — and whether to trust it.

DESIGN.md §1 and §5.5. NPS is an indicator, never a target and never a per-person
league table. The lens reports scores with n and 95% intervals on one denominator
(scored answers), small groups through shrinkage and funnel limits, the marks of
gaming as a review queue of statistical prompts (FDR-controlled), what customers
did after they answered, and what their comments are about.

Modules: :mod:`.prep` (Ibis expressions over the canonical tables),
:mod:`.scores`, :mod:`.smallgroups`, :mod:`.selection`, :mod:`.honesty`,
:mod:`.forensics`, :mod:`.saydo`, :mod:`.themes` (NumPy/SciPy on small summaries),
:mod:`.report` (result tables), :mod:`.findings`; settings in :mod:`.config`.
"""

from __future__ import annotations

from sawubona.lenses.base import LensInput, LensOutput
from sawubona.lenses.voice.config import SETTINGS
from sawubona.lenses.voice.report import build


class VoiceLens:
    name = "voice"
    title = "Voice: what customers say, and can we trust it"
    needs = ("surveys",)
    uses = ("journeys", "touchpoints", "promises", "actions", "subscriptions")
    after = ()
    settings = SETTINGS

    def run(self, data: LensInput) -> LensOutput:
        return build(data)


LENS = VoiceLens()

__all__ = ["LENS", "VoiceLens"]
