"""Bootstrap CIs over seeds and test rows."""

from __future__ import annotations

import numpy as np

from augflow.evaluation.stats import arm_and_gain_cis


def test_identical_arms_have_zero_gain_and_a_ci_that_covers_the_truth():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=400)
    preds = np.where(rng.random((5, 400)) < 0.8, y, (y + 1) % 3)   # ~80% accurate, 5 seeds
    arms, gain = arm_and_gain_cis(y, {"real": preds, "augmented": preds.copy()},
                                  np.arange(3), n_boot=500, seed=1)
    assert gain["accuracy"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    acc = arms["real"]["accuracy"]
    assert acc["ci_low"] < 0.8 < acc["ci_high"] and acc["ci_high"] - acc["ci_low"] < 0.1
    assert abs(acc["mean"] - (preds == y).mean()) < 1e-12


def test_a_real_gain_has_a_ci_above_zero():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, size=600)
    base = np.where(rng.random((5, 600)) < 0.7, y, (y + 1) % 4)
    better = np.where(rng.random((5, 600)) < 0.5, y, base)          # fixes half the errors
    _, gain = arm_and_gain_cis(y, {"real": base, "augmented": better}, np.arange(4), 500, 3)
    assert gain["accuracy"]["ci_low"] > 0.05
    assert gain["macro_f1"]["ci_low"] > 0
