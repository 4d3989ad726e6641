"""augflow.data.profile: rules profiled from a small train split allow for what it cannot see,
and still catch gross errors and shifts."""

from __future__ import annotations

import numpy as np
import pytest

from augflow.data import profile


@pytest.mark.parametrize("draw", [
    lambda r, k: r.normal(10, 2, k),
    lambda r, k: np.exp(r.normal(2, 1.5, k)),
    lambda r, k: (r.pareto(1.5, k) + 1) * 10,
])
def test_hull_tolerance_false_alarms_at_its_stated_rate_for_any_distribution(draw):
    """Fresh rows from train's distribution fail the hull test at most alpha of the time (the
    beta-binomial count is exact for exchangeable rows), and not far less: the rule is not
    vacuous."""
    rng = np.random.default_rng(0)
    n, m, alpha, reps = 20, 240, 0.05, 3000
    mostly = profile.hull_tolerance(n, m, alpha)
    assert 0.5 < mostly < 0.95
    fails = 0
    for _ in range(reps):
        train, fresh = draw(rng, n), draw(rng, m)
        inside = np.mean((fresh >= train.min()) & (fresh <= train.max()))
        fails += inside < mostly
    rate = fails / reps
    assert 0.02 < rate <= alpha + 0.012, rate


def test_hull_tolerance_tightens_with_more_train_rows():
    small, large = (profile.hull_tolerance(n, 400, 1e-4) for n in (20, 2000))
    assert small < 0.8 < 0.98 < large


@pytest.mark.parametrize("n", [10, 20, 40, 80])
def test_the_hard_range_holds_heavy_tails_at_every_small_size(n):
    """A log-normal (sigma 1.5) and a power-law column: the hard range profiled from n rows
    keeps every one of 500 fresh rows in at least 995 of 1,000 draws."""
    rng = np.random.default_rng(n)
    alpha = 1e-4
    for draw in (lambda k: np.exp(rng.normal(2, 1.5, k)), lambda k: (rng.pareto(1.5, k) + 1) * 10,
                 lambda k: rng.poisson(3, k).astype(float), lambda k: np.round(rng.normal(50, 12, k))):
        misses = 0
        for _ in range(1000):
            rule = profile.numeric_rule(draw(n), 500, alpha)
            fresh = draw(500)
            if rule["min"] is not None:
                misses += bool(((fresh < rule["min"]) | (fresh > rule["max"])).any())
        assert misses <= 5, misses


def test_the_hard_range_still_catches_sentinels_and_other_units():
    rng = np.random.default_rng(1)
    amount = np.exp(rng.normal(2, 1.5, 20))           # log scale chosen
    rule = profile.numeric_rule(amount, 240, 1e-4)
    assert rule["scale"].startswith("log")
    assert rule["min"] > -999 and rule["min"] > -amount[amount > 0].min()
    alcohol = rng.normal(13, 0.8, 20)                 # non-negative: log scale, nearly linear
    rule = profile.numeric_rule(alcohol, 240, 1e-4)
    assert not rule["min"] <= -999 <= rule["max"]
    assert not rule["min"] <= 13 * 1000 <= rule["max"]    # g/L typed as mg/L
    assert rule["min"] <= alcohol.min() and alcohol.max() <= rule["max"]
    celsius = rng.normal(5, 8, 20)                    # negatives: the linear scale
    rule = profile.numeric_rule(celsius, 240, 1e-4)
    assert rule["scale"] == "linear"
    assert not rule["min"] <= -999 <= rule["max"] and not rule["min"] <= 5000 <= rule["max"]


def test_few_distinct_values_get_the_tolerance_test_only():
    flag = np.zeros(40)
    rule = profile.numeric_rule(flag, 240, 1e-4)
    assert rule["min"] is None and rule["hull"] == [0.0, 0.0]
    # a rare 1 in 4% of fresh rows passes; a flag that is 1 on most rows does not
    mostly = profile.hull_tolerance(40, 240, 1e-4)
    assert 0.96 > mostly > 0.5


def test_category_tolerance_knows_how_little_a_small_sample_says():
    rng = np.random.default_rng(0)
    levels = ["web", "store", "phone", "partner", "fax"]
    p = [0.5, 0.3, 0.15, 0.04, 0.01]
    small = profile.category_tolerance(rng.choice(levels, 20, p=p), 240, 1e-4)
    assert small == 1.0            # 20 rows cannot rule out that half the levels are unseen
    big = profile.category_tolerance(rng.choice(levels, 5000, p=p), 1000, 1e-4)
    assert big < 0.15              # but 5,000 can: a renamed level on most rows fails


def test_per_check_alpha_splits_the_stated_rate():
    assert profile.per_check_alpha(20) * 20 == pytest.approx(profile.FALSE_ALARM)
