"""The shared table format: feature columns, an integer `label`, and optional provenance columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augflow.errors import AugflowError

LABEL = "label"
SAMPLE_ID = "sample_id"
# Columns a synthetic table may carry besides features and label.
PROVENANCE = ("sample_id", "generator", "gen_model", "gen_seed", "gen_index")


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c != LABEL and c not in PROVENANCE]


def split_xy(df: pd.DataFrame, features: list[str], file: str) -> tuple[np.ndarray, np.ndarray]:
    """Features as float32 and labels as int64, with a clear error for any broken column."""
    if LABEL not in df.columns:
        raise AugflowError(f"missing column {LABEL!r}", file=file, field=LABEL, rule="required")
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise AugflowError(f"missing feature columns {missing[:5]}", file=file,
                           field=missing[0], rule="required")
    for col in features:
        if not pd.api.types.is_numeric_dtype(df[col]):
            raise AugflowError("non-numeric values in a numeric column", file=file, field=col,
                               rule="numeric")
    x = df[features].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        col = features[int(np.argwhere(bad)[0][1])]
        raise AugflowError("NaN or infinite values", file=file, field=col, rule="finite")
    y = df[LABEL].to_numpy()
    if not np.issubdtype(y.dtype, np.integer):
        raise AugflowError("labels must be integers", file=file, field=LABEL, rule="integer")
    return x.astype(np.float32), y.astype(np.int64)


def make_table(x: np.ndarray, y: np.ndarray, features: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(np.asarray(x, dtype=np.float32), columns=features)
    df[LABEL] = np.asarray(y, dtype=np.int64)
    return df
