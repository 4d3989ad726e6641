"""Dataset sources. Only packaged data: nothing is downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray            # (n, d) float32 in the source's own units
    y: np.ndarray            # (n,) int64 class labels 0..k-1
    features: list[str]
    value_range: tuple[float, float]   # the domain of every feature (for validation and scaling)
    image_shape: tuple[int, int] | None  # (h, w) when rows are flattened grayscale images


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    return Dataset(x=bunch.data.astype(np.float32), y=bunch.target.astype(np.int64),
                   features=[f"pixel_{i}_{j}" for i in range(8) for j in range(8)],
                   value_range=(0.0, 16.0), image_shape=(8, 8))


SOURCES = {"digits": load_digits}


def load_source(name: str) -> Dataset:
    return SOURCES[name]()
