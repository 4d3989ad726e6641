"""The low-data curve on data the defaults were not tuned on, beside digits.

    python bench/lowdata_sets.py --set glyphs28 --levels 5,10 --draws 3 --seeds 2
    python bench/lowdata_sets.py --set wine --levels 5,10 --draws 3 --seeds 2

Sets:
- digits: the default params as they are (what `augflow lowdata` runs).
- glyphs28: 28x28 grey images of ten letters (A-J) that this script draws itself with Pillow's
  built-in font: random size, stroke width, rotation, shear, position, elastic wobble, blur and
  sensor noise; 300 images per letter, written as PNGs in class folders (source image_folder).
  Nothing in it comes from digits; it goes through the conv CVAE and the CNN extractor.
- shapes32: 32x32 RGB images of six shapes (circle, square, triangle, cross, ring, star) in a
  random bright colour, size and turn near the centre, on a dark background of another random
  colour (a soft gradient), written as PNGs (source image_folder, 3 channels). Another kind of
  image than strokes on black: colour, and a background that fills the frame. Real rows alone
  score 0.38-0.50 at 5-10 labels per class (chance 0.17).
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


SHAPES = ("circle", "square", "triangle", "cross", "ring", "star")


def _shape32(kind: str, rng: np.random.Generator) -> np.ndarray:
    """One 32x32 RGB image: a filled shape of a random bright colour, size and turn, near the
    centre, on a dark background of another random colour with a soft gradient, blurred and
    noisy; the class is the shape, never the colour.

    Two earlier versions were at chance for every classifier at 5-10 labels per class (real
    rows alone, so they could not tell methods apart): shapes on striped or blotchy textures,
    then on plain backgrounds with the shape anywhere in the frame and dark on light or light
    on dark at random. This one fixes the polarity (bright shape, dark ground) and keeps the
    shape within a few pixels of the centre, as a photographed object roughly is. Changed on
    real-only accuracy, before any VAE run on it."""
    from PIL import Image, ImageDraw, ImageFilter

    big = 64
    yy, xx = np.mgrid[:big, :big] / big
    c1 = rng.uniform(0, 0.35, 3)
    a = rng.uniform(0, 2 * np.pi)   # a gentle gradient between two close dark colours
    t = 0.5 + 0.25 * ((xx - 0.5) * np.cos(a) + (yy - 0.5) * np.sin(a))
    c2 = np.clip(c1 + rng.uniform(-0.1, 0.1, 3), 0, 1)
    bg = (c1[None, None] * t[..., None] + c2[None, None] * (1 - t[..., None])) * 255
    img = Image.fromarray(bg.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    r = rng.uniform(14, 22)
    cx, cy = big / 2 + rng.uniform(-5, 5, 2)
    fill = tuple(int(v) for v in 255 * rng.uniform(0.6, 1, 3))
    turn = rng.uniform(0, 2 * np.pi)
    poly = lambda k, rad: [(cx + rad[i % len(rad)] * np.cos(turn + 2 * np.pi * i / k),
                            cy + rad[i % len(rad)] * np.sin(turn + 2 * np.pi * i / k))
                           for i in range(k)]
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=int(rng.integers(4, 7)))
    elif kind == "square":
        draw.polygon(poly(4, [r]), fill=fill)
    elif kind == "triangle":
        draw.polygon(poly(3, [r]), fill=fill)
    elif kind == "star":
        draw.polygon(poly(10, [r, r * 0.45]), fill=fill)
    else:   # cross: two bars
        w = r * 0.35
        for k in range(2):
            ang = turn + k * np.pi / 2
            dx, dy = np.cos(ang), np.sin(ang)
            draw.polygon([(cx + r * dx - w * dy, cy + r * dy + w * dx),
                          (cx + r * dx + w * dy, cy + r * dy - w * dx),
                          (cx - r * dx + w * dy, cy - r * dy - w * dx),
                          (cx - r * dx - w * dy, cy - r * dy + w * dx)], fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0))).resize((32, 32),
                                                                              Image.BILINEAR)
    a = np.asarray(img, np.float64) + rng.normal(0, 6, (32, 32, 3))
    return np.clip(a, 0, 255).astype(np.uint8)


def write_shapes(folder: Path, per_class: int = 300, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for kind in SHAPES:
        sub = folder / kind
        sub.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_shape32(kind, rng), "RGB").save(sub / f"{i:04d}.png")


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


def write_set(name: str, raw: Path, per_class: int = 300) -> dict:
    """Write bench set `name`'s files under `raw` (a workspace's data/raw) and return the
    params.yaml `data` keys that read them; sets augflow ships need no files (digits: {})."""
    if name == "glyphs28":
        write_glyphs(raw / "glyphs", per_class)
        return {"source": "image_folder", "path": "data/raw/glyphs"}
    if name == "shapes32":
        write_shapes(raw / "shapes", per_class)
        return {"source": "image_folder", "path": "data/raw/shapes"}
    if name == "table":
        write_table(raw / "table.csv")
        return {"source": "csv", "path": "data/raw/table.csv", "label_column": "segment"}
    return {"wine": {"source": "wine"}, "cancer": {"source": "breast_cancer"}}.get(name, {})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--set", choices=("digits", "glyphs28", "shapes32", "wine", "cancer", "table"), required=True)
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
                         + (",classic" if args.set in ("digits", "glyphs28", "shapes32") else ""))
    with tempfile.TemporaryDirectory(prefix=f"augflow-{args.set}-") as tmp:
        root = Path(tmp)
        params["data"].update(write_set(args.set, root / "data" / "raw", args.per_class))
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        cmd = [sys.executable, "-m", "augflow.cli", "--root", str(root), "--params",
               str(root / "params.yaml"), "lowdata", "--levels", args.levels, "--draws",
               str(args.draws), "--seeds", str(args.seeds), "--classifiers", args.classifiers,
               "--arms", arms, "--out", str(out.resolve())]
        return subprocess.call(cmd, cwd=root)


if __name__ == "__main__":
    raise SystemExit(main())
