"""Which weighting each classifier wants: the share scheme (sample_weight), the same at mean 1,
and count schemes (real and classic rows weigh 1, a VAE row s) with 1N or 2N classic rows (N =
the kept VAE rows), against the classic arm. An ablation for the README (the count scheme and
augment.classic_per_kept), not a tuner.

    python bench/scheme_sweep.py --set glyphs28 --level 10      # ~40 min on 2 cores
    python bench/scheme_sweep.py --set digits --level 10        # ~8 min

Per draw the chain (prepare .. augment) runs once with the repo's params; every weighting then
re-weights rows of that draw. Paired 95% bootstrap CIs against the classic arm, over (draw,
seed) pairs and test rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _weightings(paths) -> tuple[dict, np.ndarray, np.ndarray]:
    """One draw's training sets under each weighting, and the test split."""
    from augflow.data.augmented import ORIGIN, origin_kinds
    from augflow.data.schema import read_schema, read_xy
    from augflow.evaluation.arms import classic_variants
    from augflow.io import read_parquet
    from augflow.stages.augment import mix_weights

    schema = read_schema(paths.schema)
    assert schema.image_shape is not None, "the schemes differ only where classic rows exist"
    table = read_parquet(paths.augmented)
    kinds = origin_kinds(table[ORIGIN].to_numpy())
    syn = kinds == "synthetic"
    xa = schema.encoder.transform(table, "augmented")
    xs, ys = xa[syn], np.asarray(table.loc[syn, schema.label_column].map(
        {n: i for i, n in enumerate(schema.class_names)}), np.int64)
    xt, yt = read_xy(paths.split("test"), schema)
    xr, yr = read_xy(paths.split("train"), schema)
    n = {int(c): int((ys == c).sum()) for c in np.unique(yr)}
    # fresh classic rows, so the 1N and 2N sets and the arm do not depend on classic_per_kept
    x1, y1, _ = classic_variants(xr, yr, n, schema.image_shape, 1)
    x2, y2, _ = classic_variants(xr, yr, {c: 2 * v for c, v in n.items()}, schema.image_shape, 2)
    xc = np.vstack([xr, x1, xs])
    yc = np.concatenate([yr, y1, ys])
    kc = np.array(["real"] * len(yr) + ["classic"] * len(y1) + ["synthetic"] * len(ys), object)
    share = mix_weights(kc, {"classic": 0.5, "synthetic": 0.25})
    ones = lambda k, s: np.concatenate([np.ones(k), np.full(len(ys), s)])
    sets = {"classic arm (2N)": (np.vstack([xr, x2]), np.concatenate([yr, y2]), None),
            "share": (xc, yc, share), "share, mean 1": (xc, yc, share * len(share) / share.sum()),
            "count 1N, s 0.25": (xc, yc, ones(len(yr) + len(y1), 0.25)),
            "real": (xr, yr, None)}
    x2n, y2n = np.vstack([xr, x2, xs]), np.concatenate([yr, y2, ys])
    for s in (1.0, 0.5, 0.25):
        sets[f"count 2N, s {s:g}"] = (x2n, y2n, ones(len(yr) + len(y2), s))
    return sets, xt, yt


def main() -> int:
    from augflow.evaluation.classifiers import fit_weighted, make_classifier
    from augflow.evaluation.stats import arm_and_gain_cis
    from augflow.lowdata import _chain, draw_workspace
    from mix_sweep import source_cfg

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("digits", "glyphs28"), default="digits")
    ap.add_argument("--level", type=int, default=10)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--classifiers", default="logreg,svm_rbf,random_forest")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg, raw = source_cfg(args.set, "augflow-schemes-")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(
        update={"labels_per_class": args.level})})
    preds: dict[str, dict[str, list]] = {}
    yt = None
    for d in range(args.draws):
        with draw_workspace(raw, "augflow-schemes-draw-") as paths:
            _chain(cfg, paths, 1000 * (d + 1) + cfg.seed, args.classifiers.split(","))
            sets, xt, yt = _weightings(paths)
        for name, (x, y, w) in sets.items():
            for clf in args.classifiers.split(","):
                for seed in range(2):
                    model = fit_weighted(make_classifier(clf, seed), x, y, w)
                    preds.setdefault(clf, {}).setdefault(name, []).append(model.predict(xt))
        print(f"draw {d + 1}/{args.draws} done", flush=True)
    assert yt is not None
    print(f"\n{args.set}, {args.level} labels/class: test accuracy; vs the classic arm, paired")
    for clf, per in preds.items():
        p = {a: np.vstack(v) for a, v in per.items()}
        print(f"{clf}: real {np.mean(p['real'] == yt):.3f}")
        for a in p:
            arm, gain = arm_and_gain_cis(yt, {"real": p["classic arm (2N)"], "augmented": p[a]},
                                         np.unique(yt), 1000, 0)
            g = gain["accuracy"]
            print(f"  {a:18s} {arm['augmented']['accuracy']['mean']:.3f}  "
                  f"{g['mean']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
