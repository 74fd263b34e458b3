"""Shared statistics: intervals, shrinkage, multiple testing (NumPy/SciPy, small inputs)."""

from sawubona.stats.bgnbd import BetaGeo, ModifiedBetaGeo
from sawubona.stats.fdr import bh_adjust, bh_reject
from sawubona.stats.intervals import nps, nps_interval, nps_se, two_proportion_z, wilson
from sawubona.stats.pareto_nbd import ParetoNBD
from sawubona.stats.shrinkage import BetaPrior, fit_beta_prior, shrink

__all__ = [
    "BetaGeo",
    "BetaPrior",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "bh_adjust",
    "bh_reject",
    "fit_beta_prior",
    "nps",
    "nps_interval",
    "nps_se",
    "shrink",
    "two_proportion_z",
    "wilson",
]
