"""How strong is the classic baseline? Real rows alone against three classic recipes, no VAE.

    python bench/classic_strength.py --set digits --levels 5,10 --draws 3 --seeds 1
    python bench/classic_strength.py --set glyphs28 ...    # 28x28 letters (bench/lowdata_sets.py)
    python bench/classic_strength.py --set shapes32 ...    # 32x32 RGB shapes on textures

Arms, each adding --extra rows per class to the labelled rows, unweighted:
- old: augflow's recipe until 2026-12-02: rotation +-12 degrees, whole-pixel shifts of up to a
  side/8, nothing else (re-implemented here as the reference; it is gone from src/);
- affine: params.yaml's `classic` with the elastic distortion off (rotation, translation, scale,
  shear);
- classic: params.yaml's `classic` as it is (affine + elastic distortion).
Per level and draw a fresh labelled subset (augflow's prepare with labels_per_class), the same
untouched test split. Gains of `classic` over each other arm, paired over (draw, seed) and test
rows with 95% bootstrap CIs. Writes results/classic-<set>/classic.json and .md."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (thread environment before numpy)
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]


def old_recipe(x: np.ndarray, y: np.ndarray, per_class: int, shape, seed: int):
    """The classic rows augflow made before: +-12 degree turns and whole-pixel shifts."""
    from scipy.ndimage import rotate, shift

    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    full = (h, w, shape[2] if len(shape) > 2 else 1)
    reach = max(1, min(h, w) // 8)
    out, labels = [], []
    for c in np.unique(y):
        for i in rng.choice(np.flatnonzero(y == c), size=per_class, replace=True):
            img = rotate(x[i].reshape(full), rng.uniform(-12, 12), axes=(1, 0), reshape=False,
                         order=1, mode="constant")
            img = shift(img, (*rng.integers(-reach, reach + 1, size=2), 0), order=0,
                        mode="constant")
            out.append(np.clip(img, 0, 1).ravel())
            labels.append(c)
    return np.asarray(out, np.float32), np.asarray(labels, np.int64)


def arm_sets(x, y, shape, classic, per_class: int, seed: int) -> dict:
    from augflow.evaluation.arms import classic_variants

    extra = {int(c): per_class for c in np.unique(y)}
    sets = {"real": (x, y)}
    xo, yo = old_recipe(x, y, per_class, shape, seed)
    sets["old"] = (np.vstack([x, xo]), np.concatenate([y, yo]))
    for name, cfg in (("affine", classic.model_copy(update={"elastic": 0.0})),
                      ("classic", classic)):
        xc, yc, _ = classic_variants(x, y, extra, shape, seed, cfg)
        sets[name] = (np.vstack([x, xc]), np.concatenate([y, yc]))
    return sets


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("digits", "glyphs28", "shapes32"), required=True)
    ap.add_argument("--levels", default="5,10")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--extra", type=int, default=300, help="classic rows added per class")
    ap.add_argument("--classifiers", default="logreg,svm_rbf,random_forest,cnn")
    args = ap.parse_args()

    import torch
    from augflow.config import load_config
    from augflow.data.schema import read_schema, read_xy
    from augflow.evaluation.classifiers import fit_weighted, make_classifier
    from augflow.evaluation.stats import arm_and_paired_cis
    from augflow.lowdata import draw_workspace
    from augflow.stages.prepare import run_prepare
    from lowdata_sets import write_set

    torch.set_num_threads(1)
    cfg = load_config(REPO / "params.yaml")
    src = Path(tempfile.mkdtemp(prefix=f"augflow-classic-{args.set}-")) / "data" / "raw"
    src.mkdir(parents=True)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update=write_set(args.set, src))})
    classifiers = args.classifiers.split(",")
    result: dict = {"set": args.set, "extra_per_class": args.extra, "draws": args.draws,
                    "seeds": args.seeds, "classic": cfg.classic.model_dump(), "levels": {}}
    t0 = time.time()
    for level in [int(v) for v in args.levels.split(",")]:
        preds: dict = {c: {} for c in classifiers}
        y_test = None
        for d in range(args.draws):
            data_cfg = cfg.data.model_copy(update={"labels_per_class": level})
            with draw_workspace(src) as paths:
                run_prepare(data_cfg, cfg.seed, paths, subset_seed=1000 * (d + 1) + cfg.seed)
                schema = read_schema(paths.schema)
                x, y = read_xy(paths.split("train"), schema)
                xt, y_test = read_xy(paths.split("test"), schema)
            sets = arm_sets(x, y, schema.image_shape, cfg.classic, args.extra, 7 * d)
            for clf in classifiers:
                for s in range(args.seeds):
                    for arm, (xa, ya) in sets.items():
                        model = make_classifier(clf, cfg.seed + s, None, schema.image_shape)
                        p = fit_weighted(model, xa, ya).predict(xt)
                        preds[clf].setdefault(arm, []).append(p)
            print(f"{args.set} level {level} draw {d + 1} done at {time.time() - t0:.0f} s",
                  flush=True)
        assert y_test is not None
        out = result["levels"][str(level)] = {}
        for clf in classifiers:
            stacked = {a: np.vstack(v) for a, v in preds[clf].items()}
            arms, gain_vs = arm_and_paired_cis(y_test, stacked, np.unique(y_test), 1000, 0,
                                               treated="classic")
            out[clf] = {"arms": {a: v["accuracy"] for a, v in arms.items()},
                        "gain_vs": {a: g["accuracy"] for a, g in gain_vs.items()}}
    result["seconds"] = time.time() - t0
    dest = REPO / "results" / f"classic-{args.set}"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "classic.json").write_text(json.dumps(result, indent=1))
    (dest / "classic.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def markdown(r: dict) -> str:
    ci = lambda g: f"{g['mean']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]"
    lines = [f"{r['set']}: test accuracy, {r['draws']} draws x {r['seeds']} seeds, "
             f"{r['extra_per_class']} classic rows added per class.", "",
             "| labels/class | classifier | real | old | affine | classic | classic - old | "
             "classic - real |", "| --- " * 8 + "|"]
    for level, per in r["levels"].items():
        for clf, e in per.items():
            a = e["arms"]
            lines.append(f"| {level} | {clf} | " + " | ".join(
                f"{a[k]['mean']:.3f}" for k in ("real", "old", "affine", "classic")) +
                f" | {ci(e['gain_vs']['old'])} | {ci(e['gain_vs']['real'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
