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


def test_gains_against_every_arm_are_paired_and_name_the_best_baseline():
    from augflow.evaluation.stats import arm_and_paired_cis, best_baseline, verdict

    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, size=600)
    real = np.where(rng.random((4, 600)) < 0.6, y, (y + 1) % 4)
    classic = np.where(rng.random((4, 600)) < 0.5, y, real)          # fixes half of real's errors
    augmented = np.where(rng.random((4, 600)) < 0.3, y, classic)     # and a few more
    arms, gain_vs = arm_and_paired_cis(
        y, {"real": real, "augmented": augmented, "classic": classic}, np.arange(4), 500, 5)
    assert set(gain_vs) == {"real", "classic"}
    for arm in ("real", "classic"):
        g = gain_vs[arm]["accuracy"]
        diff = arms["augmented"]["accuracy"]["mean"] - arms[arm]["accuracy"]["mean"]
        assert abs(g["mean"] - diff) < 1e-12
        assert g["ci_low"] > 0 and verdict(g) == "better"
    # paired: the gain over classic is far narrower than the two arms' own CIs side by side
    own = arms["classic"]["accuracy"]["ci_high"] - arms["classic"]["accuracy"]["ci_low"]
    paired = gain_vs["classic"]["accuracy"]["ci_high"] - gain_vs["classic"]["accuracy"]["ci_low"]
    assert paired < own
    # the old single-gain call is the gain over real from the same draws
    _, gain = arm_and_gain_cis(y, {"real": real, "augmented": augmented, "classic": classic},
                               np.arange(4), 500, 5)
    assert gain == gain_vs["real"]
    means = {a: v["accuracy"]["mean"] for a, v in arms.items()}
    assert best_baseline(means) == "classic"
    assert verdict({"mean": -0.1, "ci_low": -0.2, "ci_high": -0.01}) == "worse"
    assert verdict({"mean": 0.0, "ci_low": -0.2, "ci_high": 0.1}) == "level"
