"""Shared statistics against a reference implementation (statsmodels) and planted truth."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from sawubona import stats


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (8, 10), (50, 100), (999, 1000), (3, 7)])
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    low, high = stats.wilson(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert float(low) == pytest.approx(ref_low, abs=1e-12)
    assert float(high) == pytest.approx(ref_high, abs=1e-12)


def test_wilson_of_zero_n_is_nan() -> None:
    low, high = stats.wilson([1, 0], [2, 0])
    assert np.isnan(low[1]) and np.isnan(high[1]) and not np.isnan(low[0])


def test_bh_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(size=40), rng.uniform(0, 0.002, size=10)])
    ours = stats.bh_adjust(p)
    ref = multipletests(p, alpha=0.05, method="fdr_bh")[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert (stats.bh_reject(p, 0.05) == multipletests(p, 0.05, method="fdr_bh")[0]).all()


def test_nps_and_its_standard_error() -> None:
    # 50 promoters, 30 detractors, 20 passives: NPS 20, se = 100*sqrt((.5+.3-.04)/100)
    assert float(stats.nps(50, 30, 100)) == pytest.approx(20.0)
    assert float(stats.nps_se(50, 30, 100)) == pytest.approx(100 * np.sqrt(0.76 / 100))


@pytest.mark.parametrize("n", [15, 40, 400])
def test_nps_adjusted_wald_covers_planted_truth(n: int) -> None:
    """Coverage of the 95% interval over many samples from a known trinomial."""
    rng = np.random.default_rng(n)
    p_pro, p_det = 0.45, 0.25
    true = 100 * (p_pro - p_det)
    draws = rng.multinomial(n, [p_pro, p_det, 1 - p_pro - p_det], size=4000)
    low, high = stats.nps_interval(draws[:, 0], draws[:, 1], n)
    coverage = np.mean((low <= true) & (true <= high))
    assert 0.93 <= coverage <= 0.975, coverage


def test_shrinkage_recovers_a_planted_prior_and_pulls_small_groups() -> None:
    rng = np.random.default_rng(3)
    alpha, beta = 18.0, 2.0  # true rates around 0.9
    theta = rng.beta(alpha, beta, size=400)
    n = rng.integers(20, 200, size=400)
    k = rng.binomial(n, theta)
    prior = stats.fit_beta_prior(k, n)
    assert prior.mean == pytest.approx(alpha / (alpha + beta), abs=0.01)
    assert prior.alpha + prior.beta == pytest.approx(alpha + beta, rel=0.35)
    # A tiny team with 3 of 3 is pulled toward the prior; a big one barely moves.
    mean, low, high = stats.shrink([3, 950], [3, 1000], prior)
    assert mean[0] < 0.97 and mean[1] == pytest.approx(0.95, abs=0.002)
    assert low[0] < mean[0] < high[0]
    # Shrunk estimates are closer to the truth than raw rates (in squared error).
    shrunk = stats.shrink(k, n, prior)[0]
    assert np.mean((shrunk - theta) ** 2) < np.mean((k / n - theta) ** 2)


def test_two_proportion_z_matches_statsmodels() -> None:
    from statsmodels.stats.proportion import proportions_ztest

    z, p = stats.two_proportion_z(45, 100, 30, 100)
    ref_z, ref_p = proportions_ztest([45, 30], [100, 100])
    assert z == pytest.approx(ref_z) and p == pytest.approx(ref_p)
