"""Stage augment: real train rows plus the kept synthetic rows -> the augmented training set."""

from __future__ import annotations

import pandas as pd

from augflow.data.table import LABEL
from augflow.io import read_json, read_parquet, write_parquet
from augflow.paths import Paths


def augment_table(real: pd.DataFrame, kept: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Feature columns, label, and an `origin` column (real or the synthetic sample_id)."""
    r = real[features + [LABEL]].copy()
    r["origin"] = "real"
    s = kept[features + [LABEL]].copy()
    s["origin"] = kept["sample_id"].astype(str).to_numpy() if "sample_id" in kept else "synthetic"
    return pd.concat([r, s], ignore_index=True)


def run_augment(paths: Paths) -> dict:
    schema = read_json(paths.schema)
    real = read_parquet(paths.split("train"))
    # An empty kept table is legitimate (everything rejected): augmented == real.
    kept = pd.read_parquet(paths.kept) if paths.kept.is_file() else real.iloc[:0]
    out = augment_table(real, kept, schema["features"])
    write_parquet(paths.augmented, out)
    return {"n_real": int(len(real)), "n_synthetic": int(len(kept)), "n_total": int(len(out)),
            "synthetic_fraction": float(len(kept) / max(len(out), 1))}
