"""Stage prepare: dataset source -> stratified, seeded train/val/test splits."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from augflow.config import DataConfig
from augflow.data.sources import Dataset, load_source
from augflow.data.table import make_table
from augflow.errors import AugflowError
from augflow.io import write_json, write_parquet
from augflow.paths import Paths


def cap_per_class(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices keeping at most `per_class` rows of each class, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(np.sort(rng.permutation(idx)[:per_class]))
    return np.sort(np.concatenate(keep))


def split_dataset(ds: Dataset, cfg: DataConfig, seed: int,
                  subset_seed: int | None = None) -> dict[str, np.ndarray]:
    """Row indices of train/val/test. The test split is drawn first from `seed` alone, so
    re-drawing the labelled subset (`subset_seed`) never moves a row into or out of test.
    With labels_per_class set, train and val are both capped: a low-data user has no large
    labelled validation set either."""
    classes, counts = np.unique(ds.y, return_counts=True)
    if len(classes) < 2:
        raise AugflowError("needs at least two classes", field="label", rule="n_classes>=2")
    need = max(cfg.min_rows_per_class, 3)
    if counts.min() < need:
        raise AugflowError(f"class {classes[counts.argmin()]} has {counts.min()} rows; each class "
                           f"needs at least {need} for train/val/test", field="label",
                           rule="rows_per_class")
    idx = np.arange(len(ds.y))
    rest, test = train_test_split(idx, test_size=cfg.test_size, stratify=ds.y, random_state=seed)
    train, val = train_test_split(rest, test_size=cfg.val_size, stratify=ds.y[rest],
                                  random_state=seed + 1)
    if cfg.labels_per_class is not None:
        sub = seed + 2 if subset_seed is None else subset_seed
        train = train[cap_per_class(ds.y[train], cfg.labels_per_class, sub)]
        val = val[cap_per_class(ds.y[val], max(cfg.labels_per_class // 2, 2), sub + 1)]
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def schema_of(ds: Dataset) -> dict:
    """What later stages need to know about the data without re-reading the source."""
    return {"features": ds.features, "value_range": list(ds.value_range),
            "classes": sorted(int(c) for c in np.unique(ds.y)),
            "image_shape": list(ds.image_shape) if ds.image_shape else None}


def run_prepare(cfg: DataConfig, seed: int, paths: Paths, subset_seed: int | None = None) -> dict:
    ds = load_source(cfg.source)
    splits = split_dataset(ds, cfg, seed, subset_seed)
    metrics: dict = {"n_features": len(ds.features), "n_classes": int(len(np.unique(ds.y)))}
    for name, idx in splits.items():
        write_parquet(paths.split(name), make_table(ds.x[idx], ds.y[idx], ds.features))
        metrics[f"n_{name}"] = int(len(idx))
    write_json(paths.schema, schema_of(ds))
    return metrics
