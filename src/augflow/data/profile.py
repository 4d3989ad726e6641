"""Rules profiled from the train split that know how much evidence they rest on.

A low-data train split holds 10-100 rows. Its [min, max] is not the column's range: of m fresh
rows from the same distribution, about 2m/(n+1) fall outside the hull of n train rows (an
order-statistics fact that holds for every continuous distribution), and on a skewed column
(prices, durations, counts) they fall far outside. Refusing them refuses the data's nature. So
each profiled numeric column gets two rules, and the whole set of profiled rules is held to one
stated false-alarm rate (`FALSE_ALARM`, split evenly over the checks, Bonferroni):

- **hull with a tolerance** (a distribution-shift test): at least `mostly` of a split's values
  lie in train's [min, max]. The count outside follows a beta-binomial(m, 2, n - 1) for
  exchangeable rows whatever the distribution, so `mostly` is exact, not a guess; a unit change
  or a shifted column moves most values out and still fails.
- **a hard range** for gross errors (a sentinel -999, a value typed in another unit): every value
  inside a prediction interval computed on the log scale for a non-negative column (else on
  the values), from train's mean, sd and count (Student's t, Bonferroni over the split's rows),
  tripled to allow tails heavier than a normal's. A column with fewer than 3 distinct train values has no scale to build it on and
  gets only the hull test (widened by its span).

A profiled categorical column checks membership in train's levels with a tolerance for the
share of rows a sample of n can leave unseen (Good-Turing's estimate of the missing mass plus
its deviation bound); when that share reaches 1 the train split is too small to say anything and
no membership rule is profiled. Declared rules (params data.columns) stay strict, always.

Pure functions of arrays: the validate stage turns them into Great Expectations."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

FALSE_ALARM = 0.001    # on clean data, the chance that any profiled check of a run fails
# the hard range's width over a normal prediction interval's: on the log scale a power law's
# tail is exponential, which 2 did not hold at 500 fresh rows (misses in 5% of draws)
HEAVY_TAIL_ALLOWANCE = 3.0


def _log_shift(values: np.ndarray) -> float | None:
    """The offset of the log scale for a non-negative column (its smallest positive value, so
    zeros and counts map to finite numbers), or None for a column holding negatives. Every
    non-negative column gets the log scale: at 10 rows a log-normal often looks symmetric, and
    for a column far from zero the log is nearly linear over the data anyway."""
    if values.min() < 0 or not (values > 0).any():
        return None
    return float(values[values > 0].min())


def hull_tolerance(n_train: int, m_rows: int, alpha: float) -> float:
    """The share of m fresh rows that must lie in the hull of n train rows: the count outside
    is beta-binomial(m, 2, n - 1) for exchangeable rows; its 1 - alpha quantile is tolerated."""
    if m_rows == 0:
        return 1.0
    k = float(stats.betabinom.ppf(1.0 - alpha, m_rows, 2, max(n_train - 1, 1)))
    return max(0.0, 1.0 - k / m_rows)


def numeric_rule(values: np.ndarray, max_rows: int, alpha: float) -> dict:
    """The profiled rules of one numeric column from its n train values: `min`/`max` (the hard
    range) and `hull` (for the tolerance test, see hull_tolerance). `max_rows`: the most rows a
    checked split holds (the hard range's Bonferroni count); `alpha`: one check's share of the
    false-alarm rate."""
    v = np.asarray(values, np.float64)
    lo, hi = float(v.min()), float(v.max())
    rule: dict = {"hull": [lo, hi], "n_train": int(len(v)), "alpha": alpha}
    distinct = len(np.unique(v))
    if distinct < 3 or len(v) < 3:
        pad = hi - lo
        # no hard range: two values say nothing of the scale (a flag whose 1s train missed)
        rule.update(min=None, max=None, scale="none (fewer than 3 distinct train values)")
        rule["hull"] = [lo - pad, hi + pad]
        return rule
    shift = _log_shift(v)
    t = np.log(v + shift) if shift is not None else v
    n = len(t)
    k = stats.t.isf(alpha / (2 * max(max_rows, 1)), n - 1) * math.sqrt(1 + 1 / n)
    half = HEAVY_TAIL_ALLOWANCE * k * float(t.std(ddof=1))
    c = float(t.mean())
    if shift is not None:
        low, high = math.exp(c - half) - shift, math.exp(min(c + half, 700.0)) - shift
        rule["scale"] = f"log(x + {shift:.6g})"
    else:
        low, high = c - half, c + half
        rule["scale"] = "linear"
    rule.update(min=min(low, lo), max=max(high, hi))
    return rule


def category_tolerance(train_values: np.ndarray, m_rows: int, alpha: float) -> float:
    """The share of m fresh rows that may hold levels the n train rows never showed:
    Good-Turing's missing mass (singletons / n), its upper deviation bound
    sqrt(3 ln(1/alpha) / n) (McAllester and Ortiz 2003) and Hoeffding's for drawing m rows.
    1.0: too few rows to tell."""
    vals = np.asarray(train_values).astype(str)
    n = len(vals)
    if n == 0:
        return 1.0
    _, counts = np.unique(vals, return_counts=True)
    singles = int((counts == 1).sum())
    log_term = math.log(2 / alpha)   # alpha shared by the two bounds
    slack = math.sqrt(log_term / (2 * max(m_rows, 1)))
    return min(1.0, singles / n + math.sqrt(3 * log_term / n) + slack)


def per_check_alpha(n_checks: int) -> float:
    return FALSE_ALARM / max(n_checks, 1)
