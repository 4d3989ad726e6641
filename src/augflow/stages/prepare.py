"""Stage prepare: dataset source -> stratified, seeded train/val/test splits, and the
preprocessing (fitted on train only) that every later stage reads from schema.json."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from augflow.config import DataConfig
from augflow.data.preprocess import Encoder
from augflow.data.raw import RawData
from augflow.data.schema import Schema
from augflow.data.sources import load_source, resolve_data_path
from augflow.data.table import make_table
from augflow.errors import AugflowError
from augflow.io import write_json, write_parquet
from augflow.paths import Paths

log = logging.getLogger("augflow.prepare")


def cap_per_class(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices keeping at most `per_class` rows of each class, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(np.sort(rng.permutation(idx)[:per_class]))
    return np.sort(np.concatenate(keep))


def split_dataset(y: np.ndarray, cfg: DataConfig, seed: int, subset_seed: int | None = None,
                  names: list | None = None, file: str | None = None,
                  field: str = "label") -> dict[str, np.ndarray]:
    """Row indices of train/val/test. The test split is drawn first from `seed` alone, so
    re-drawing the labelled subset (`subset_seed`) never moves a row into or out of test.
    With labels_per_class set, train and val are both capped: a low-data user has no large
    labelled validation set either."""
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise AugflowError(f"needs at least two classes, found {len(classes)}", file=file,
                           field=field, rule="n_classes>=2")
    need = max(cfg.min_rows_per_class, 3)
    if counts.min() < need:
        small = classes[counts.argmin()]
        shown = names[int(small)] if names is not None else small
        raise AugflowError(f"class {shown} has {counts.min()} rows; each class needs at least "
                           f"{need} for train/val/test", file=file, field=field,
                           rule="rows_per_class")
    idx = np.arange(len(y))
    try:
        rest, test = train_test_split(idx, test_size=cfg.test_size, stratify=y, random_state=seed)
        train, val = train_test_split(rest, test_size=cfg.val_size, stratify=y[rest],
                                      random_state=seed + 1)
    except ValueError as err:   # a class too small for the split fractions
        raise AugflowError(f"cannot split stratified ({err})", field="data.test_size",
                           rule="rows_per_class") from None
    cap = cfg.train_cap
    if cap is not None:
        sub = seed + 2 if subset_seed is None else subset_seed
        train = train[cap_per_class(y[train], cap, sub)]
        val = val[cap_per_class(y[val], max(cap // 2, 2), sub + 1)]
    splits = {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}
    # A very rare class (3 rows beside 500) can come out of the stratified split with no row in
    # val or test: say so here, with the class and its count, not as a failed expectation later.
    for c, n in zip(classes, counts):
        for name, idx in splits.items():
            if not (y[idx] == c).any():
                shown = names[int(c)] if names is not None else c
                need = math.ceil(1 / min(cfg.test_size, (1 - cfg.test_size) * cfg.val_size))
                raise AugflowError(
                    f"class {shown} has {n} rows, and the stratified split left none in "
                    f"{name} (test_size {cfg.test_size}, val_size {cfg.val_size}); give it at "
                    f"least {need} rows, or raise data.test_size / data.val_size",
                    file=file, field=field, rule="every class in every split")
    return splits


def class_names_of(labels: np.ndarray) -> list:
    """The user's label values, sorted; a class's integer label is its index here."""
    names = np.unique(labels)
    return [n.item() if hasattr(n, "item") else n for n in names]


def schema_of(raw: RawData, cfg: DataConfig, names: list, encoder: Encoder) -> Schema:
    """What later stages need to know about the data without re-reading the source."""
    return Schema(kind=raw.kind, origin=raw.origin, label_column=raw.label_column,
                  features=list(raw.frame.columns), categorical=list(raw.categorical),
                  classes=list(range(len(names))), class_names=names,
                  image_shape=raw.image_shape, pixel_range=raw.pixel_range,
                  declared={c: r.model_dump(exclude_none=True) for c, r in cfg.columns.items()},
                  encoder=encoder)


def _check_declared(raw: RawData, cfg: DataConfig) -> None:
    for col, rule in cfg.columns.items():
        if col not in raw.frame.columns:
            raise AugflowError(f"data.columns declares {col!r}, which the data does not have "
                               f"(columns: {list(raw.frame.columns)[:8]})", file="params.yaml",
                               field=f"data.columns.{col}", rule="declared column exists")
        if rule.categories is not None and col not in raw.categorical:
            raise AugflowError("declares categories for a column not listed in data.categorical",
                               file="params.yaml", field=f"data.columns.{col}",
                               rule="categorical columns are listed in data.categorical")


def drop_duplicate_rows(raw: RawData, where: str = "") -> tuple[RawData, dict]:
    """Rows with identical features, after the first, are dropped before splitting: a copy on
    each side of the split would be a test row the model trained on (validation's leak check
    would stop the run; iris ships one such pair). Counted in metrics. The same features under
    two classes are refused, naming both rows and classes."""
    dup = raw.frame.duplicated(keep="first").to_numpy()
    if not dup.any():
        return raw, {"n_duplicates_dropped": 0}
    key = pd.util.hash_pandas_object(raw.frame, index=False).to_numpy()
    first = {}
    for i in np.flatnonzero(~dup):
        first[key[i]] = i
    clash = [(first[key[i]], i) for i in np.flatnonzero(dup)
             if raw.labels[first[key[i]]] != raw.labels[i]]
    if clash:
        # the same features under two classes is bad data: keeping either label silently can
        # make a whole class vanish (a class folder holding copies of another class's images)
        a, b = clash[0]
        raise AugflowError(
            f"{len(clash)} rows repeat the features of an earlier row under another class, e.g. "
            f"{_describe_row(raw, b)} (class {raw.labels[b]!r}) repeats {_describe_row(raw, a)} "
            f"(class {raw.labels[a]!r}); remove the copies or fix their labels",
            file=where or raw.origin, field=raw.label_column, rule="one class per distinct row")
    keep = ~dup
    log.warning("dropped %d duplicate rows (same features, same class)", int(dup.sum()))
    files = tuple(f for f, k in zip(raw.row_files, keep) if k) if raw.row_files else None
    raw = replace(raw, frame=raw.frame[keep].reset_index(drop=True), labels=raw.labels[keep],
                  row_files=files)
    return raw, {"n_duplicates_dropped": int(dup.sum())}


def _describe_row(raw: RawData, i: int | np.integer) -> str:
    """A row as the user finds it: its file for images, its data row for tables."""
    if raw.row_files is not None:
        return raw.row_files[i]
    return f"data row {i + 1} (line {i + 2})" if raw.kind == "table" else f"row {i + 1}"


def run_prepare(cfg: DataConfig, seed: int, paths: Paths, subset_seed: int | None = None) -> dict:
    """Load data.source, drop duplicate rows, split train/val/test stratified by class (seeded;
    `subset_seed` re-draws the labelled subset for the low-data study), fit the encoder on train
    and write the splits and schema.json."""
    raw = load_source(cfg, Path(paths.root))
    _check_declared(raw, cfg)
    where = str(resolve_data_path(cfg, Path(paths.root))) if cfg.path else raw.origin
    raw, dup_metrics = drop_duplicate_rows(raw, where)
    names = class_names_of(raw.labels)
    y = np.searchsorted(np.asarray(names), raw.labels).astype(np.int64)
    splits = split_dataset(y, cfg, seed, subset_seed, names, where, raw.label_column)
    tables = {name: make_table(raw.frame.iloc[idx], y[idx]) for name, idx in splits.items()}
    encoder = Encoder.fit(tables["train"], raw.categorical, cfg.columns, raw.pixel_range)
    metrics: dict = {"n_features": len(raw.frame.columns), "model_dims": encoder.width,
                     "n_classes": len(names), **dup_metrics}
    for name, table in tables.items():
        write_parquet(paths.split(name), table)
        metrics[f"n_{name}"] = int(len(table))
    write_json(paths.schema, schema_of(raw, cfg, names, encoder).to_dict())
    return metrics
