"""Users' own data, made by the tests from sets that ship offline: wine as a CSV with a named
label column and a categorical column, and digits upscaled to 28x28 PNGs in class folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

WINE_LABEL = "cultivar"
BANDS = ("low", "mid", "high")


def wine_frame() -> pd.DataFrame:
    """Wine with the user's column names, a text label and a categorical hue band."""
    from sklearn.datasets import load_wine

    b = load_wine()
    df = pd.DataFrame(b.data, columns=[c.replace("/", "_") for c in b.feature_names])
    cuts = np.quantile(df["hue"], [1 / 3, 2 / 3])
    df["hue_band"] = np.asarray(BANDS)[np.searchsorted(cuts, df["hue"], side="right")]
    df[WINE_LABEL] = np.asarray(["barolo", "grignolino", "barbera"])[b.target]
    return df


def write_wine_csv(path: Path) -> pd.DataFrame:
    path.parent.mkdir(parents=True, exist_ok=True)
    df = wine_frame()
    df.to_csv(path, index=False)
    return df


def write_digit_pngs(folder: Path, classes=(0, 1, 2, 3), per_class: int = 60, size: int = 28,
                     mode: str = "L") -> dict[int, list[Path]]:
    """digits' 8x8 images upscaled (bilinear) to size x size, one subfolder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    b = load_digits()
    written: dict[int, list[Path]] = {}
    for c in classes:
        sub = folder / f"digit_{c}"
        sub.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(b.target == c)[:per_class]):
            px = (b.images[i] * (255.0 / 16.0)).astype(np.uint8)
            img = Image.fromarray(px).resize((size, size), Image.BILINEAR).convert(mode)
            path = sub / f"{k:03d}.png"
            img.save(path)
            written.setdefault(c, []).append(path)
    return written


def skewed_frame(seed: int = 0, rows: int = 1200) -> pd.DataFrame:
    """A table of the kind low-data users bring: 4 classes (`kind`), a log-normal amount
    (`amount`, prices), a power-law duration (`wait_s`), a rounded score, an integer count, a near-constant flag
    (a rare 1), and three categorical columns whose rarer levels a 5-per-class sample misses."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, rows)
    df = pd.DataFrame({
        "amount": np.exp(rng.normal(2.0 + 0.4 * y, 1.5)),
        "wait_s": (rng.pareto(1.5, rows) + 1) * (10 + 5 * y),   # a power-law tail
        "score": np.round(rng.normal(50 + 5 * y, 12)),
        "visits": rng.poisson(2.0 + y).astype(np.int64),
        "flag": (rng.random(rows) < 0.03).astype(np.int64),
        "channel": rng.choice(["web", "store", "phone", "partner", "fax"], rows,
                              p=[0.5, 0.3, 0.15, 0.04, 0.01]),
        "region": np.asarray(["north", "south", "east", "west"])[(y + rng.integers(0, 2, rows)) % 4],
        "tier": rng.choice(["basic", "plus", "gold"], rows, p=[0.7, 0.25, 0.05]),
    })
    df["kind"] = np.asarray(["alpha", "beta", "gamma", "delta"])[y]
    return df


SKEWED_PARAMS_DATA = {"source": "csv", "path": "data/raw/skewed.csv", "label_column": "kind",
                      "categorical": ["channel", "region", "tier"]}
