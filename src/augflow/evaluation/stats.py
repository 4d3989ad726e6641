"""Bootstrap confidence intervals over seeds and test rows, for single arms and paired gains."""

from __future__ import annotations

import numpy as np


def _scores(y: np.ndarray, preds: np.ndarray, classes: np.ndarray,
            seed_idx: np.ndarray, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics averaged over the resampled seeds, for each of B bootstrap draws.

    preds (K, n); seed_idx (B, K) indices into K; weights (B, n) resample counts of test rows."""
    true_c = (y[None, :] == classes[:, None]).astype(np.float64)            # (C, n)
    pred_c = (preds[:, None, :] == classes[None, :, None]).astype(np.float64)  # (K, C, n)
    tp = np.einsum("kcn,cn,bn->bkc", pred_c, true_c, weights)
    n_pred = np.einsum("kcn,bn->bkc", pred_c, weights)
    n_true = np.einsum("cn,bn->bc", true_c, weights)[:, None, :]
    recall = np.divide(tp, n_true, out=np.zeros_like(tp), where=n_true > 0)
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    acc = tp.sum(axis=2) / weights.sum(axis=1, keepdims=True)                 # (B, K)
    take = lambda a: np.take_along_axis(a, seed_idx if a.ndim == 2 else seed_idx[..., None],
                                        axis=1).mean(axis=1)
    out = {"accuracy": take(acc), "macro_f1": take(f1.mean(axis=2))}
    rec = take(recall)                                                          # (B, C)
    for j, c in enumerate(classes):
        out[f"recall_class_{int(c)}"] = rec[:, j]
    return out


def _draws(n_seeds: int, n_rows: int, n_boot: int, seed: int):
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    weights = rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=n_boot).astype(np.float64)
    # Draw 0 is the plain sample (all seeds, every row once): it gives the point estimate.
    seed_idx[0] = np.arange(n_seeds)
    weights[0] = 1.0
    return seed_idx, weights


def summarise(draws: np.ndarray) -> dict[str, float]:
    lo, hi = np.quantile(draws[1:], [0.025, 0.975])
    return {"mean": float(draws[0]), "ci_low": float(lo), "ci_high": float(hi)}


def arm_and_paired_cis(y: np.ndarray, preds: dict[str, np.ndarray], classes: np.ndarray,
                       n_boot: int, seed: int, treated: str = "augmented"):
    """CI per arm, and the paired CI of treated - arm for every other arm (the same seeds and
    test rows in every draw, so what the arms share cancels). Returns (per arm: metric ->
    summary, per other arm: metric -> summary of the gain)."""
    k, n = next(iter(preds.values())).shape
    seed_idx, weights = _draws(k, n, n_boot + 1, seed)
    per_arm = {arm: _scores(y, p, classes, seed_idx, weights) for arm, p in preds.items()}
    arms = {arm: {m: summarise(v) for m, v in s.items()} for arm, s in per_arm.items()}
    gain_vs = {arm: {m: summarise(per_arm[treated][m] - s[m]) for m in s}
               for arm, s in per_arm.items() if arm != treated}
    return arms, gain_vs


def arm_and_gain_cis(y: np.ndarray, preds: dict[str, np.ndarray], classes: np.ndarray,
                     n_boot: int, seed: int, base: str = "real", treated: str = "augmented"):
    """CI per arm, and the paired CI of treated - base (same seeds and rows in every draw)."""
    arms, gain_vs = arm_and_paired_cis(y, preds, classes, n_boot, seed, treated)
    return arms, gain_vs[base]


def best_baseline(arm_means: dict[str, float], treated: str = "augmented") -> str:
    """The arm other than `treated` with the highest mean (ties: the first listed)."""
    others = [a for a in arm_means if a != treated]
    return max(others, key=lambda a: (arm_means[a], -others.index(a)))


def verdict(gain: dict[str, float]) -> str:
    """better / worse / level: whether a paired gain's 95% CI lies above zero, below, or spans it."""
    return "better" if gain["ci_low"] > 0 else "worse" if gain["ci_high"] < 0 else "level"


def against_best(arm_means: dict[str, float], accuracy_gain_vs: dict[str, dict]) -> dict:
    """The best baseline by mean and the verdicts of the treated arm against real and against
    it: the part of a classifier's entry that evaluate.json and the lowdata JSON share."""
    best = best_baseline(arm_means)
    return {"best_baseline": best,
            "verdict": {"vs_real": verdict(accuracy_gain_vs["real"]),
                        "vs_best_baseline": verdict(accuracy_gain_vs[best])}}
