"""The low-data curve on data the defaults were not tuned on, beside digits.

    python bench/lowdata_sets.py --set glyphs28 --levels 5,10 --draws 3 --seeds 2
    python bench/lowdata_sets.py --set wine --levels 5,10 --draws 3 --seeds 2

Sets:
- digits: the default params as they are (what `augflow lowdata` runs).
- glyphs28: 28x28 grey images of ten letters (A-J) that this script draws itself with Pillow's
  built-in font: random size, stroke width, rotation, shear, position, elastic wobble, blur and
  sensor noise; 300 images per letter, written as PNGs in class folders (source image_folder).
  Nothing in it comes from digits; it goes through the conv CVAE and the CNN extractor.
- wine: scikit-learn's wine table (13 numeric columns, 3 classes), source wine. Easy (real
  alone scores ~0.97) and its test split holds 36 rows: wide CIs.
- cancer: scikit-learn's breast cancer table (30 numeric columns, 2 classes, 569 rows), source
  breast_cancer. A table nobody tuned anything on; its test split holds ~85 rows.
- table: a CSV this script makes with scikit-learn's make_classification: 3000 rows, 5 classes
  (two clusters each), 12 columns (6 informative, 2 redundant, 4 noise), one made skewed
  (exp) and one rounded to integers, a text label column `segment`.

Each run writes results/lowdata-<set>/ (lowdata.json, .md, .png) with the repo's params.yaml,
only data.source (and data.path) changed."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
LETTERS = "ABCDEFGHIJ"


def _glyph(letter: str, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont
    from scipy.ndimage import map_coordinates, gaussian_filter

    big = 56   # draw at 2x, then warp and shrink: smoother strokes
    img = Image.new("L", (big, big), 0)
    font = ImageFont.load_default(size=int(rng.integers(30, 44)))
    draw = ImageDraw.Draw(img)
    box = draw.textbbox((0, 0), letter, font=font, stroke_width=int(rng.integers(0, 3)))
    w, h = box[2] - box[0], box[3] - box[1]
    x0 = (big - w) / 2 - box[0] + rng.uniform(-4, 4)
    y0 = (big - h) / 2 - box[1] + rng.uniform(-4, 4)
    draw.text((x0, y0), letter, fill=255, font=font, stroke_width=int(rng.integers(0, 3)),
              stroke_fill=255)
    shear = rng.uniform(-0.3, 0.3)
    img = img.transform((big, big), Image.AFFINE, (1, shear, -shear * big / 2, 0, 1, 0),
                        resample=Image.BILINEAR)
    img = img.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR)
    a = np.asarray(img, np.float64)
    # elastic wobble: a smooth random displacement field, as handwriting varies
    dx = gaussian_filter(rng.uniform(-1, 1, a.shape), 6) * 40
    dy = gaussian_filter(rng.uniform(-1, 1, a.shape), 6) * 40
    yy, xx = np.meshgrid(np.arange(big), np.arange(big), indexing="ij")
    a = map_coordinates(a, [yy + dy, xx + dx], order=1, mode="constant")
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2))).resize((28, 28), Image.BILINEAR)
    a = np.asarray(img, np.float64) + rng.normal(0, 8, (28, 28))
    return np.clip(a, 0, 255).astype(np.uint8)


def write_glyphs(folder: Path, per_class: int = 300, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for letter in LETTERS:
        sub = folder / f"letter_{letter}"
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_glyph(letter, rng)).save(sub / f"{i:04d}.png")


def write_table(path: Path, seed: int = 0) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=3000, n_features=12, n_informative=6, n_redundant=2,
                               n_classes=5, n_clusters_per_class=2, class_sep=1.0,
                               random_state=seed)
    df = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(12)])
    df["f00"] = np.exp(df["f00"] / 2)          # a skewed, positive column
    df["f01"] = np.round(df["f01"] * 3)        # an integer-valued column
    df["segment"] = np.asarray(["alpha", "beta", "gamma", "delta", "epsilon"])[y]
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("digits", "glyphs28", "wine", "cancer", "table"), required=True)
    ap.add_argument("--levels", default="5,10")
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--classifiers", default="logreg,svm_rbf,random_forest")
    ap.add_argument("--per-class", type=int, default=300, help="glyphs28: images per letter")
    ap.add_argument("--out", default=None, help="default: results/lowdata-<set>")
    ap.add_argument("--arms", default=None,
                    help="default: real,augmented,unfiltered,smote (+classic for images)")
    args = ap.parse_args()

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    out = Path(args.out) if args.out else REPO / "results" / f"lowdata-{args.set}"
    arms = args.arms or ("real,augmented,unfiltered,smote"
                         + (",classic" if args.set in ("digits", "glyphs28") else ""))
    with tempfile.TemporaryDirectory(prefix=f"augflow-{args.set}-") as tmp:
        root = Path(tmp)
        if args.set == "glyphs28":
            write_glyphs(root / "data" / "raw" / "glyphs", args.per_class)
            params["data"].update(source="image_folder", path="data/raw/glyphs")
        elif args.set == "table":
            write_table(root / "data" / "raw" / "table.csv")
            params["data"].update(source="csv", path="data/raw/table.csv", label_column="segment")
        elif args.set in ("wine", "cancer"):
            params["data"].update(source={"wine": "wine", "cancer": "breast_cancer"}[args.set])
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        cmd = [sys.executable, "-m", "augflow.cli", "--root", str(root), "--params",
               str(root / "params.yaml"), "lowdata", "--levels", args.levels, "--draws",
               str(args.draws), "--seeds", str(args.seeds), "--classifiers", args.classifiers,
               "--arms", arms, "--out", str(out.resolve())]
        return subprocess.call(cmd, cwd=root)


if __name__ == "__main__":
    raise SystemExit(main())
