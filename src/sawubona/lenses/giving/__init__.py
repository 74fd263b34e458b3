"""The giving lens (DESIGN.md §5.3): what could we give this customer — never an upsell.

``sawubona analyze --lens giving`` writes ``giving_gifts``, ``giving_best_plan``,
``giving_credits``, ``giving_loyalty_penalty``, ``giving_loyalty_bands``,
``giving_ledger``, ``giving_ledger_months``, ``giving_ledger_kinds`` and
``giving_customers``; see ``docs/lenses/giving.md``.
"""

from sawubona.lenses.giving.common import GIFT_KINDS
from sawubona.lenses.giving.lens import LENS, SETTINGS, GivingLens

__all__ = ["GIFT_KINDS", "LENS", "SETTINGS", "GivingLens"]
