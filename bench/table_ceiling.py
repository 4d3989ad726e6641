"""How much can any cheap augmentation add on the bench table? A ceiling check for issue 13.

    python bench/table_ceiling.py [--set table|cancer] [--draws 5 --seeds 2]

The table is bench/lowdata_sets.py's (make_classification: 5 classes of two clusters each, 12
columns), or with --set cancer scikit-learn's breast cancer table (30 columns, 2 classes).
Per draw, 5 or 10 labelled rows per class are taken from 70% of it; the other 30% is the test
set (never used to fit anything). Arms, each trained with the pipeline's own classifiers
(augflow.evaluation.classifiers):
- real: the labelled rows alone;
- jitter: + 2 copies of each real row with Gaussian noise of 0.3 x the class's per-column
  standard deviation (the tabular analogue of shifts and rotations), weight 1 each;
- class_gauss: + 2 rows per real row drawn from a Gaussian fitted to each class (covariance
  shrunk halfway to its diagonal), weight 0.25 each: the best a generator that only knows the
  class's first two moments can do;
- smote: + 2 SMOTE rows per real row;
- oracle: + 2 more real rows per real row of its class, from the unlabelled rest of the pool,
  weight 1: what a perfect generator would add. Not an augmentation: the yardstick.
Gains over real are paired bootstrap CIs over test rows and seeds (augflow's own statistics).
This bench touches no pipeline stage: it asks whether the table has anything to gain."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lowdata_sets import write_table  # noqa: E402

from augflow.evaluation.arms import smote_rows  # noqa: E402
from augflow.evaluation.classifiers import fit_weighted, make_classifier  # noqa: E402
from augflow.evaluation.stats import arm_and_gain_cis  # noqa: E402

CLASSIFIERS = ("logreg", "svm_rbf", "random_forest")


def jitter(x, y, per_row, scale, rng):
    parts = [(x[y == c][rng.integers(0, (y == c).sum(), per_row * (y == c).sum())], c)
             for c in np.unique(y)]
    xs = np.vstack([p + scale * x[y == c].std(0) * rng.standard_normal(p.shape)
                    for p, c in parts])
    return xs, np.concatenate([np.full(len(p), c) for p, c in parts])


def class_gauss(x, y, per_row, rng, shrink=0.5):
    xs, ys = [], []
    for c in np.unique(y):
        xc = x[y == c]
        cov = np.cov(xc.T)
        cov = (1 - shrink) * cov + shrink * np.diag(np.diag(cov))
        xs.append(rng.multivariate_normal(xc.mean(0), cov, per_row * len(xc)))
        ys.append(np.full(per_row * len(xc), c))
    return np.vstack(xs), np.concatenate(ys)


def main() -> int:
    import pandas as pd
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--levels", default="5,10")
    ap.add_argument("--set", choices=("table", "cancer"), default="table")
    args = ap.parse_args()
    if args.set == "cancer":
        from sklearn.datasets import load_breast_cancer
        x_all, y_all = load_breast_cancer(return_X_y=True)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            write_table(Path(tmp) / "table.csv")
            df = pd.read_csv(Path(tmp) / "table.csv")
        y_all = pd.factorize(df.pop("segment"), sort=True)[0]
        x_all = df.to_numpy(np.float64)
    rng0 = np.random.default_rng(12345)
    test = np.zeros(len(y_all), bool)
    test[rng0.permutation(len(y_all))[:int(0.3 * len(y_all))]] = True
    pool = np.flatnonzero(~test)
    classes = np.unique(y_all)
    print("| labels/class | classifier | real | jitter | class_gauss | smote | oracle |")
    print("| --- " * 7 + "|")
    for level in (int(v) for v in args.levels.split(",")):
        preds: dict[str, dict[str, list]] = {c: {} for c in CLASSIFIERS}
        for d in range(args.draws):
            rng = np.random.default_rng(d)
            idx = np.concatenate([rng.choice(pool[y_all[pool] == c], level, replace=False)
                                  for c in classes])
            x, y = x_all[idx], y_all[idx]
            xj, yj = jitter(x, y, 2, 0.3, rng)
            xg, yg = class_gauss(x, y, 2, rng)
            xs, ysm = smote_rows(x, y, {int(c): 2 * level for c in classes}, d)
            extra = np.concatenate([rng.choice(np.setdiff1d(pool[y_all[pool] == c], idx),
                                               2 * level, replace=False) for c in classes])
            arms = {"real": (x, y, None),
                    "jitter": (np.vstack([x, xj]), np.concatenate([y, yj]), None),
                    "class_gauss": (np.vstack([x, xg]), np.concatenate([y, yg]),
                                    np.r_[np.ones(len(y)), np.full(len(yg), 0.25)]),
                    "smote": (xs, ysm, None),
                    "oracle": (np.vstack([x, x_all[extra]]), np.r_[y, y_all[extra]], None)}
            for clf in CLASSIFIERS:
                for arm, (xa, ya, wa) in arms.items():
                    preds[clf].setdefault(arm, []).extend(
                        fit_weighted(make_classifier(clf, s), xa, ya, wa).predict(x_all[test])
                        for s in range(args.seeds))
        for clf in CLASSIFIERS:
            # every (draw, seed) predicts the same test rows: the bootstrap resamples those
            # fits and the test rows, as evaluate does with its seeds
            stacked = {arm: np.stack(p) for arm, p in preds[clf].items()}
            cells = []
            for arm in ("jitter", "class_gauss", "smote", "oracle"):
                ci, gain = arm_and_gain_cis(y_all[test], stacked, classes, 1000, 0, treated=arm)
                g = gain["accuracy"]
                cells.append(f"{ci[arm]['accuracy']['mean']:.3f} ({g['mean']:+.3f} "
                             f"[{g['ci_low']:+.3f}, {g['ci_high']:+.3f}])")
            print(f"| {level} | {clf} | {ci['real']['accuracy']['mean']:.3f} | "
                  + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
