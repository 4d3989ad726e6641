"""The shared table format: the user's feature columns, an integer `label` (the index of the
class in the schema's class_names), and optional provenance columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augflow.errors import AugflowError

LABEL = "label"
SAMPLE_ID = "sample_id"
# Columns a synthetic table may carry besides features and label.
PROVENANCE = ("sample_id", "generator", "gen_model", "gen_seed", "gen_index", "gen_parent")


def feature_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c != LABEL and c not in PROVENANCE]


def label_codes(df: pd.DataFrame, file: str, column: str = LABEL) -> np.ndarray:
    """The integer label column, with a clear error when it is missing or not integers."""
    if column not in df.columns:
        raise AugflowError(f"missing column {column!r}", file=file, field=column, rule="required")
    y = df[column].to_numpy()
    if not np.issubdtype(y.dtype, np.integer):
        raise AugflowError("labels must be integers", file=file, field=column, rule="integer")
    return y.astype(np.int64)


def codes_from_names(values, class_names: list, file: str, field: str) -> np.ndarray:
    """The user's label values -> class indices; an unknown value names itself."""
    lookup = {str(n): i for i, n in enumerate(class_names)}
    out = np.empty(len(values), np.int64)
    for i, v in enumerate(values):
        code = lookup.get(str(v))
        if code is None:
            raise AugflowError(f"label {v!r} is not one of the classes {class_names[:10]}",
                               file=file, field=field, rule="label_set")
        out[i] = code
    return out


def make_table(features: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
    df = features.reset_index(drop=True).copy()
    df[LABEL] = np.asarray(y, dtype=np.int64)
    return df
