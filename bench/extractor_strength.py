"""How well does the filter's feature extractor read a small image set? Accuracy of the
extractor fitted as the filter stage fits it, on a fresh pool of images drawn by the same
generator with another seed (not the pipeline's test split, which nothing here touches).

    python bench/extractor_strength.py --set glyphs28 --draws 3
    python bench/extractor_strength.py --set shapes32 --draws 3

Variants per draw (5 labels per class): copies 0/10 (extractor.train_copies) x patience in
epochs alone (patience_steps 0) or with extractor.patience_steps from params.yaml. The consistency
check of the filter is this classifier's probability of the conditioned class: an extractor at
chance rejects good samples and keeps bad ones."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (thread environment before numpy)
import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]


def fresh_pool(which: str, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """per_class new images of every class, flattened channel-last in [0, 1] as augflow reads
    them; labels in the order image_folder gives (sorted folder names)."""
    from lowdata_sets import LETTERS, SHAPES, _glyph, _shape32

    rng = np.random.default_rng(seed)
    if which == "glyphs28":
        pairs = [(i, _glyph(c, rng)) for _ in range(per_class) for i, c in enumerate(LETTERS)]
    else:
        pairs = [(sorted(SHAPES).index(k), _shape32(k, rng)) for _ in range(per_class)
                 for k in SHAPES]
    x = np.stack([p[1] for p in pairs]).astype(np.float32).reshape(len(pairs), -1) / 255
    return x, np.array([p[0] for p in pairs])


def image_set(which: str, level: int, pool: int):
    """The set written to a temp folder as PNGs, a config reading it at `level` labels per
    class (the repo's params.yaml otherwise) and a fresh pool of `pool` images per class:
    (config, the folder holding raw/, (x_pool, y_pool)). digits: the shipped set as
    params.yaml has it, and no pool (its generator is not ours)."""
    from lowdata_sets import write_set

    from augflow.config import load_config

    root = Path(tempfile.mkdtemp(prefix=f"augflow-{which}-"))
    (root / "raw").mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["labels_per_class"] = level
    params["data"].update(write_set(which, root / "raw"))
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return (load_config(root / "params.yaml"), root,
            None if which == "digits" else fresh_pool(which, pool, seed=999))


def main() -> int:
    from augflow.data.copies import copies_for, with_classic_copies
    from augflow.data.schema import read_schema, read_xy
    from augflow.lowdata import draw_workspace
    from augflow.quality.extractor import fit_extractor
    from augflow.stages.prepare import run_prepare

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("glyphs28", "shapes32"), required=True)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--level", type=int, default=5)
    ap.add_argument("--pool", type=int, default=60, help="fresh images per class")
    args = ap.parse_args()

    cfg, root, (xp, yp) = image_set(args.set, args.level, args.pool)
    raw = root / "raw"
    ext = cfg.extractor
    variants = {"no copies, patience in epochs": (0, 0),
                f"no copies, + {ext.patience_steps} steps": (0, ext.patience_steps),
                f"{ext.train_copies} copies, patience in epochs": (ext.train_copies, 0),
                f"{ext.train_copies} copies, + {ext.patience_steps} steps (default)":
                    (ext.train_copies, ext.patience_steps)}
    acc: dict[str, list[float]] = {v: [] for v in variants}
    for draw in range(args.draws):
        with draw_workspace(raw) as paths:
            run_prepare(cfg.data, cfg.seed, paths, subset_seed=draw)
            schema = read_schema(paths.schema)
            xtr, ytr = read_xy(paths.split("train"), schema)
            xva, yva = read_xy(paths.split("val"), schema)
            for name, (copies, steps) in variants.items():
                began = time.time()
                n = copies_for(copies, len(xtr), ext.epoch_rows)
                x, y = with_classic_copies(xtr, ytr, n, schema.image_shape, cfg.seed, cfg.classic)
                c = ext.model_copy(update={"patience_steps": steps})
                model, fit = fit_extractor(x, y, xva, yva, schema.n_classes, c, cfg.seed,
                                           schema.image_shape)
                with torch.no_grad():
                    a = float((model(torch.from_numpy(xp)).argmax(1).numpy() == yp).mean())
                acc[name].append(a)
                print(f"draw {draw}: {name}: pool accuracy {a:.3f}, {fit.steps} steps, "
                      f"{time.time() - began:.0f} s", flush=True)
    print(f"\n{args.set}, {args.level} labels/class, accuracy on {len(yp)} fresh images:")
    for name, a in acc.items():
        print(f"- {name}: mean {np.mean(a):.3f} (draws: {', '.join(f'{v:.3f}' for v in a)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
