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
