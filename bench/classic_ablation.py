"""Which part of the classic recipe helps or hurts on an image set? Real rows alone against
classic arms that each change one thing of params.yaml's `classic`, no VAE.

    python bench/classic_ablation.py --set shapes32 --draws 3
    python bench/classic_ablation.py --set glyphs28 --draws 3 --arms recipe,elastic_half,no_elastic

Arms (--level labels per class, --extra classic rows per class added, unweighted, as evaluate's
classic arm): real; the recipe as it is; the named changes of ARMS below; and the ceiling arms of
ORACLE (part of the added rows new real images instead of classic ones). Fitted with augflow's
own classifiers (evaluation/classifiers.py: the scaled logistic regression and RBF SVM,
the forest, the CNN) and scored on a fresh pool drawn by the set's generator with another seed
(digits: its test split, used here only to score). Each draw is a new labelled subset; the
classifiers' seed is the draw's.

Printed: each arm's mean accuracy, and its paired difference against the recipe with a 95% CI
from the project's own paired bootstrap (evaluation/stats.py, as evaluate's gain_vs: draws and
pool rows resampled together, the same indices for both arms), and the draws' spread beside it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _common  # noqa: F401  (thread environment before numpy)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ARMS = {"recipe": {}, "border_nearest": {"border": "nearest"},
        "border_reflect": {"border": "reflect"}, "no_elastic": {"elastic": 0.0},
        "elastic_half": {"elastic": 0.03}, "elastic_smooth": {"elastic_smoothness": 0.2},
        "no_translation": {"translate": 0.0}, "no_scale_shear": {"scale": (1.0, 1.0), "shear": 0.0},
        "rotation_alone": {"elastic": 0.0, "translate": 0.0, "scale": (1.0, 1.0), "shear": 0.0}}
# Ceiling arms: F of the added rows are fresh images of the class from the set's generator (a
# pool drawn with its own seed, not the scored one) and the rest classic rows of the recipe.
# A perfect generator could do no better than new real images: if these do not beat the recipe
# with the same number of added rows, no VAE can.
ORACLE = {"oracle25": 0.25, "oracle50": 0.5}
DEFAULT_ARMS = ("recipe,border_nearest,border_reflect,no_elastic,no_translation,no_scale_shear,"
                "rotation_alone")


def main() -> int:
    from extractor_strength import fresh_pool, image_set

    from augflow.data.schema import read_schema, read_xy
    from augflow.evaluation.arms import classic_rows
    from augflow.evaluation.classifiers import make_classifier
    from augflow.evaluation.stats import arm_and_paired_cis
    from augflow.lowdata import draw_workspace
    from augflow.stages.prepare import run_prepare

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("digits", "glyphs28", "shapes32"), required=True)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--level", type=int, default=5)
    ap.add_argument("--extra", type=int, default=600, help="classic rows added per class")
    ap.add_argument("--pool", type=int, default=100, help="fresh images per class")
    ap.add_argument("--arms", default=DEFAULT_ARMS, help="of: " + ", ".join([*ARMS, *ORACLE]))
    ap.add_argument("--classifiers", default="logreg,svm_rbf,random_forest,cnn")
    args = ap.parse_args()
    arms = args.arms.split(",")
    clfs = args.classifiers.split(",")
    unknown = [a for a in arms if a not in ARMS and a not in ORACLE]
    if unknown:
        ap.error(f"unknown arm(s) {unknown}; known: {', '.join([*ARMS, *ORACLE])}")
    if args.set == "digits" and any(a in ORACLE for a in arms):
        ap.error("the oracle arms need a set whose generator is ours (glyphs28, shapes32)")

    cfg, root, pool = image_set(args.set, args.level, args.pool)
    preds: dict[tuple[str, str], list[np.ndarray]] = {}
    scored: np.ndarray | None = None
    for draw in range(args.draws):
        with draw_workspace(root / "raw") as paths:
            run_prepare(cfg.data, cfg.seed, paths, subset_seed=draw)
            schema = read_schema(paths.schema)
            xtr, ytr = read_xy(paths.split("train"), schema)
            xp, yp = read_xy(paths.split("test"), schema) if pool is None else pool
            # the paired bootstrap pairs rows across draws: every draw must score the same rows
            assert scored is None or np.array_equal(scored, yp), "scored rows differ by draw"
            scored = yp
            shape = tuple(schema.image_shape)
            sets = {"real": (xtr, ytr)}
            for arm in arms:
                if arm in ORACLE:
                    n_new = round(ORACLE[arm] * args.extra)
                    xf, yf = fresh_pool(args.set, n_new, seed=5000 + draw)
                    xc, yc = classic_rows(xtr, ytr, {c: args.extra - n_new
                                                     for c in range(schema.n_classes)},
                                          shape, draw, cfg.classic)
                    sets[arm] = (np.vstack([xc, xf]), np.concatenate([yc, yf]))
                    continue
                sets[arm] = classic_rows(xtr, ytr, {c: args.extra for c in range(schema.n_classes)},
                                         shape, draw, cfg.classic.model_copy(update=ARMS[arm]))
            for arm, (x, y) in sets.items():
                for name in clfs:
                    model = make_classifier(name, draw, image_shape=shape).fit(x, y)
                    preds.setdefault((arm, name), []).append(model.predict(xp))
        print(f"draw {draw} done", flush=True)
    pool_text = "its test split" if pool is None else f"{len(pool[1])} fresh images"
    print(f"\n{args.set}, {args.level} labels/class + {args.extra} classic rows per class, "
          f"accuracy on {pool_text} (mean over {args.draws} draws); below each arm, its "
          f"difference from the recipe [95% CI over draws and pool rows] (spread of the draws' "
          f"differences):\n")
    print("| arm | " + " | ".join(clfs) + " |\n| --- |" + " --- |" * len(clfs))
    for arm in ["real", *arms]:
        cells = []
        for c in clfs:
            acc = np.mean([np.mean(p == scored) for p in preds[(arm, c)]])
            if arm == "recipe" or "recipe" not in arms:
                cells.append(f"{acc:.3f}")
                continue
            stacked = {a: np.stack(preds[(a, c)]) for a in (arm, "recipe")}
            _, gain_vs = arm_and_paired_cis(scored, stacked, np.unique(scored), 1000, 0,
                                            treated=arm)
            g = gain_vs["recipe"]["accuracy"]
            per = [np.mean(a == scored) - np.mean(b == scored)
                   for a, b in zip(preds[(arm, c)], preds[("recipe", c)])]
            cells.append(f"{acc:.3f}: {g['mean']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}] "
                         f"({min(per):+.3f}..{max(per):+.3f})")
        print(f"| {arm} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
