"""Can held-out train rows tell whether classic rows help? A first look at a do-no-harm rule for
images (issue 28): at 5 labels per class the val split holds 12-20 rows, too few to see a loss
of 5-10 points; cross-validation over the train rows adds the train rows to the judged ones.

    python bench/cv_decides.py --set shapes32 --draws 3
    python bench/cv_decides.py --set glyphs28 --draws 3
    python bench/cv_decides.py --set digits --draws 3

Per draw (augflow's prepare at --level labels per class) and classifier: real alone against real
plus --extra classic rows per class (params.yaml's recipe), judged three ways:
- val: fitted on all train rows (+ their classic rows), scored on the val split;
- cv: leave-one-row-per-class-out folds over the train rows, each fold fitted on the other
  rows and the classic rows made from them only (a classic copy of a held-out row would leak
  it), scored on the held-out rows; pooled with the val rows' hits;
- truth: fitted on all train rows, scored on a fresh pool from the set's generator (digits: the
  test split, used here only to score, never to choose).
Prints, per classifier, the mean gain of classic rows each way and how often val and cv get the
sign of the truth right."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _common  # noqa: F401  (thread environment before numpy)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    from extractor_strength import image_set
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from augflow.data.schema import read_schema, read_xy
    from augflow.evaluation.arms import classic_rows
    from augflow.lowdata import draw_workspace
    from augflow.stages.prepare import run_prepare

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("digits", "glyphs28", "shapes32"), required=True)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--level", type=int, default=5)
    ap.add_argument("--extra", type=int, default=300, help="classic rows added per class")
    args = ap.parse_args()

    cfg, root, pool = image_set(args.set, args.level, 60)
    if pool is not None:
        xp, yp = pool
    clfs = {"logreg": lambda: LogisticRegression(max_iter=2000), "svm_rbf": lambda: SVC(),
            "random_forest": lambda: RandomForestClassifier(200, random_state=0)}
    rows: dict[str, list[tuple[float, float, float]]] = {c: [] for c in clfs}
    for draw in range(args.draws):
        with draw_workspace(root / "raw") as paths:
            run_prepare(cfg.data, cfg.seed, paths, subset_seed=draw)
            schema = read_schema(paths.schema)
            x, y = read_xy(paths.split("train"), schema)
            xv, yv = read_xy(paths.split("val"), schema)
            if args.set == "digits":
                xp, yp = read_xy(paths.split("test"), schema)
            shape = tuple(schema.image_shape)
            k = schema.n_classes

            def with_classic(xa, ya, seed):
                return classic_rows(xa, ya, {c: args.extra for c in range(k)}, shape, seed,
                                    cfg.classic)

            # fold f holds out the f-th train row of every class
            fold = np.zeros(len(y), int)
            for c in range(k):
                idx = np.flatnonzero(y == c)
                fold[idx] = np.arange(len(idx))
            for name, make in clfs.items():
                hits = {"real": [], "classic": []}
                truth = {}
                for arm in hits:
                    xa, ya = (x, y) if arm == "real" else with_classic(x, y, draw)
                    m = make().fit(xa, ya)
                    hits[arm].append(m.predict(xv) == yv)
                    truth[arm] = float((m.predict(xp) == yp).mean())
                val_gain = float(hits["classic"][0].mean() - hits["real"][0].mean())
                for f in range(fold.max() + 1):
                    tr, te = fold != f, fold == f
                    for arm in hits:
                        xa, ya = ((x[tr], y[tr]) if arm == "real"
                                  else with_classic(x[tr], y[tr], draw * 100 + f))
                        hits[arm].append(make().fit(xa, ya).predict(x[te]) == y[te])
                cv_gain = float(np.concatenate(hits["classic"]).mean()
                                - np.concatenate(hits["real"]).mean())
                rows[name].append((val_gain, cv_gain, truth["classic"] - truth["real"]))
                print(f"draw {draw} {name}: classic - real: val {val_gain:+.3f}, "
                      f"cv+val {cv_gain:+.3f}, truth {truth['classic'] - truth['real']:+.3f}",
                      flush=True)
    print(f"\n{args.set}, {args.level} labels/class, +{args.extra} classic rows per class:\n")
    print("| classifier | truth (mean) | val (mean) | cv+val (mean) | val sign right | "
          "cv+val sign right |\n| --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        a = np.array(r)
        right = lambda j: int((np.sign(a[:, j]) == np.sign(a[:, 2])).sum())
        print(f"| {name} | {a[:, 2].mean():+.3f} | {a[:, 0].mean():+.3f} | {a[:, 1].mean():+.3f} "
              f"| {right(0)}/{len(a)} | {right(1)}/{len(a)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
