"""The augmented training set's format (written by the augment stage, read by evaluate and by
users): the user's feature and label columns, `origin` (real, classic:<train row>, or a synthetic
sample_id), `sample_weight` (the share scheme) and, for images, `sample_weight_count` (the
count scheme; augment.schemes)."""

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
WEIGHT_COUNT = "sample_weight_count"
# the column of each weighting scheme (augment.schemes); count exists for images only
WEIGHTS = {"share": WEIGHT, "count": WEIGHT_COUNT}
REAL = "real"


def origin_kinds(origin: np.ndarray) -> np.ndarray:
    """real, classic or synthetic per row, from the origin column."""
    s = pd.Series(origin, dtype=str)
    return np.where(s == REAL, REAL, np.where(s.str.startswith("classic:"), "classic",
                                              "synthetic")).astype(object)


def sample_lineage(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(sample ids, gen_parent) of a samples or kept table; -1 where no parent is recorded
    (generate writes gen_parent; a table from elsewhere may not have it)."""
    parents = (df["gen_parent"].to_numpy(np.int64) if "gen_parent" in df.columns
               else np.full(len(df), -1, np.int64))
    return df["sample_id"].astype(str).to_numpy(dtype=object), parents


def origin_parents(origin: np.ndarray, parent_of: dict[str, int]) -> np.ndarray:
    """Per row of the augmented set, the real train row it was made from, -1 for none: a real
    row is its own parent (real rows come first, in train order), classic:<i> is row i, a
    synthetic row's is its sample's gen_parent (`parent_of`: sample_id -> gen_parent)."""
    s = pd.Series(origin, dtype=str)
    real = (s == REAL).to_numpy()
    out = np.full(len(s), -1, np.int64)
    out[real] = np.arange(int(real.sum()))
    classic = s.str.startswith("classic:").to_numpy()
    out[classic] = s[classic].str.slice(len("classic:")).astype(np.int64).to_numpy()
    other = ~(real | classic)
    out[other] = [parent_of.get(o, -1) for o in s[other]]
    return out


def read_augmented(path: str | Path, schema: Schema
                   ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The augmented table back in model space, as the evaluation trains on it: (x, y, the
    weights of each scheme the file holds, by scheme name: share always, count for images)."""
    df = read_parquet(path)
    column = schema.label_column
    for col in (column, WEIGHT, ORIGIN):
        if col not in df.columns:
            raise AugflowError(f"missing column {col!r}", file=str(path), field=col,
                               rule="required")
    weights = {}
    for scheme, col in WEIGHTS.items():
        if col not in df.columns:
            continue
        w = df[col].to_numpy(np.float64)
        if not np.isfinite(w).all() or (w < 0).any():
            raise AugflowError("weights must be finite and non-negative", file=str(path),
                               field=col, rule="weight>=0")
        weights[scheme] = w
    y = codes_from_names(df[column].to_numpy(), schema.class_names, str(path), column)
    return schema.encoder.transform(df, str(path)), y, weights


def added_weight_fraction(path: str | Path) -> float:
    """The share of the augmented set's total weight carried by added (non-real) rows."""
    df = read_parquet(path)
    w = df[WEIGHT].to_numpy(np.float64)
    added = df[ORIGIN].astype(str).to_numpy() != REAL
    return float(w[added].sum() / max(w.sum(), 1e-12))


def mix_summary(mix: dict) -> str:
    """One line on how the augmented set was weighted (augment metrics' mix), for the flow's
    run summary and the MLflow run description."""
    count = sorted(c for c, s in mix.get("scheme", {}).items() if s == "count")
    if mix.get("count_only"):
        text = (f"real and classic rows weigh 1, a VAE row {mix.get('synthetic_row_weight', 1):g} "
                "(sample_weight_count), for every classifier")
    else:
        text = (f"scale {mix['scale']:g} of the shares chosen by {mix['select']} (classic share "
                f"{mix['classic_share']:g}, synthetic share {mix['synthetic_share']:g})")
    if count and not mix.get("count_only"):
        text += (f"; {', '.join(count)} given the count weights (sample_weight_count: real and "
                 "classic rows 1 each)")
    if not mix.get("added", mix["helped_on_val"]):
        text += "; no amount of added data helped on validation"
    elif not mix["helped_on_val"]:
        text += "; on validation the chosen mix did not score above real rows alone"
    return text
