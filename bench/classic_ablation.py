"""Which part of the classic recipe helps or hurts on an image set? Real rows alone against
classic arms that each change one thing of params.yaml's `classic`, no VAE.

    python bench/classic_ablation.py --set shapes32 --draws 3

Arms (5 labels per class, --extra classic rows per class added, unweighted): real; the recipe
as it is; border nearest; border reflect; no elastic; no translation; no scale or shear;
rotation alone. Scored with logistic regression, the RBF SVM and a random forest on a fresh
pool drawn by the set's generator with another seed (not the pipeline's test split)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _common  # noqa: F401  (thread environment before numpy)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

ARMS = {"recipe": {}, "border nearest": {"border": "nearest"},
        "border reflect": {"border": "reflect"}, "no elastic": {"elastic": 0.0},
        "no translation": {"translate": 0.0}, "no scale/shear": {"scale": (1.0, 1.0), "shear": 0.0},
        "rotation alone": {"elastic": 0.0, "translate": 0.0, "scale": (1.0, 1.0), "shear": 0.0}}


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
    ap.add_argument("--set", choices=("glyphs28", "shapes32"), required=True)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--level", type=int, default=5)
    ap.add_argument("--extra", type=int, default=600, help="classic rows added per class")
    ap.add_argument("--pool", type=int, default=100, help="fresh images per class")
    args = ap.parse_args()

    cfg, root, (xp, yp) = image_set(args.set, args.level, args.pool)
    clfs = {"logreg": lambda: LogisticRegression(max_iter=2000), "svm_rbf": lambda: SVC(),
            "random_forest": lambda: RandomForestClassifier(300, random_state=0)}
    acc: dict[tuple[str, str], list[float]] = {}
    for draw in range(args.draws):
        with draw_workspace(root / "raw") as paths:
            run_prepare(cfg.data, cfg.seed, paths, subset_seed=draw)
            schema = read_schema(paths.schema)
            xtr, ytr = read_xy(paths.split("train"), schema)
            sets = {"real": (xtr, ytr)}
            for arm, change in ARMS.items():
                sets[arm] = classic_rows(xtr, ytr, {c: args.extra for c in range(schema.n_classes)},
                                         tuple(schema.image_shape), draw,
                                         cfg.classic.model_copy(update=change))
            for arm, (x, y) in sets.items():
                for name, make in clfs.items():
                    a = float((make().fit(x, y).predict(xp) == yp).mean())
                    acc.setdefault((arm, name), []).append(a)
        print(f"draw {draw} done", flush=True)
    print(f"\n{args.set}, {args.level} labels/class + {args.extra} classic rows per class, "
          f"accuracy on {len(yp)} fresh images (mean over {args.draws} draws):\n")
    print("| arm | " + " | ".join(clfs) + " |\n| --- |" + " --- |" * len(clfs))
    for arm in ["real", *ARMS]:
        print(f"| {arm} | " + " | ".join(f"{np.mean(acc[(arm, c)]):.3f}" for c in clfs) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
