"""Stage augment: real train rows plus the kept synthetic rows -> the augmented training set,
in the user's own format: their feature columns and units, their label column and class names,
and an `origin` column (real, or the synthetic sample_id that traces back to the generator)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augflow.data.table import codes_from_names, label_codes
from augflow.errors import AugflowError
from augflow.io import read_json, read_parquet, write_parquet
from augflow.paths import Paths
from augflow.preprocess import encoder_of

ORIGIN = "origin"


def augment_table(real: pd.DataFrame, kept: pd.DataFrame, schema: dict) -> pd.DataFrame:
    features, names = schema["features"], np.asarray(schema["class_names"], dtype=object)
    parts = []
    for df, origin in ((real, "real"), (kept, None)):
        out = df[features].copy()
        out[schema["label_column"]] = names[label_codes(df, "")]
        out[ORIGIN] = df["sample_id"].astype(str).to_numpy() if origin is None else origin
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def read_augmented(path, schema: dict) -> tuple[np.ndarray, np.ndarray]:
    """The augmented table back in model space, as the evaluation trains on it."""
    df = read_parquet(path)
    column = schema["label_column"]
    if column not in df.columns:
        raise AugflowError(f"missing column {column!r}", file=str(path), field=column,
                           rule="required")
    y = codes_from_names(df[column].to_numpy(), schema["class_names"], str(path), column)
    return encoder_of(schema).transform(df, str(path)), y


def run_augment(paths: Paths) -> dict:
    schema = read_json(paths.schema)
    real = read_parquet(paths.split("train"))
    # An empty kept table is legitimate (everything rejected): augmented == real.
    kept = pd.read_parquet(paths.kept) if paths.kept.is_file() else real.iloc[:0]
    out = augment_table(real, kept, schema)
    write_parquet(paths.augmented, out)
    return {"n_real": int(len(real)), "n_synthetic": int(len(kept)), "n_total": int(len(out)),
            "synthetic_fraction": float(len(kept) / max(len(out), 1))}
