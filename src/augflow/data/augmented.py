"""The augmented training set's format (written by the augment stage, read by evaluate and by
users): the user's feature and label columns, `origin` (real, classic:<train row>, or a synthetic
sample_id) and `sample_weight`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augflow.data.schema import Schema
from augflow.data.table import codes_from_names
from augflow.errors import AugflowError
from augflow.io import read_parquet

ORIGIN = "origin"
WEIGHT = "sample_weight"
REAL = "real"


def origin_kinds(origin: np.ndarray) -> np.ndarray:
    """real, classic or synthetic per row, from the origin column."""
    s = pd.Series(origin, dtype=str)
    return np.where(s == REAL, REAL, np.where(s.str.startswith("classic:"), "classic",
                                              "synthetic")).astype(object)


def read_augmented(path: str | Path, schema: Schema) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The augmented table back in model space, as the evaluation trains on it: (x, y, weights)."""
    df = read_parquet(path)
    column = schema.label_column
    for col in (column, WEIGHT):
        if col not in df.columns:
            raise AugflowError(f"missing column {col!r}", file=str(path), field=col,
                               rule="required")
    w = df[WEIGHT].to_numpy(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise AugflowError("weights must be finite and non-negative", file=str(path),
                           field=WEIGHT, rule="weight>=0")
    y = codes_from_names(df[column].to_numpy(), schema.class_names, str(path), column)
    return schema.encoder.transform(df, str(path)), y, w


def added_weight_fraction(path: str | Path) -> float:
    """The share of the augmented set's total weight carried by added (non-real) rows."""
    df = read_parquet(path)
    w = df[WEIGHT].to_numpy(np.float64)
    added = df[ORIGIN].astype(str).to_numpy() != REAL
    return float(w[added].sum() / max(w.sum(), 1e-12))
