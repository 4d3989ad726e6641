"""The prepared data's schema (data/prepared/schema.json, written by prepare, read by every later
stage) as one typed object, and prepared tables read through it into model space."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from augflow.data.preprocess import Encoder
from augflow.data.table import label_codes
from augflow.errors import AugflowError
from augflow.io import jsonable, read_json, read_parquet


@dataclass(frozen=True)
class Schema:
    kind: str                                   # "table" or "image"
    origin: str                                 # where the data came from (source and file)
    label_column: str                           # the user's name for the label
    features: list[str]                         # the user's feature columns, in order
    categorical: list[str]
    classes: list[int]                          # 0..n-1: the integer labels of the prepared format
    class_names: list[Any]                      # the user's label values, index = class
    image_shape: tuple[int, int, int] | None    # (height, width, channels) for images
    pixel_range: tuple[float, float] | None     # the declared domain of every pixel
    declared: dict[str, dict]                   # data.columns as the user declared them
    encoder: Encoder                            # fitted on train: user units <-> model space

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @classmethod
    def from_dict(cls, d: dict, file: str = "schema.json") -> Schema:
        fields = ("kind", "origin", "label_column", "features", "categorical", "classes",
                  "class_names", "image_shape", "pixel_range", "declared", "encoder")
        missing = [f for f in fields if f not in d]
        if missing:
            raise AugflowError(f"missing key {missing[0]!r}; rerun the prepare stage", file=file,
                               field=missing[0], rule="required")
        shape, pixels = d["image_shape"], d["pixel_range"]
        return cls(kind=d["kind"], origin=d["origin"], label_column=d["label_column"],
                   features=list(d["features"]), categorical=list(d["categorical"]),
                   classes=[int(c) for c in d["classes"]], class_names=list(d["class_names"]),
                   image_shape=tuple(int(s) for s in shape) if shape else None,  # type: ignore[arg-type]
                   pixel_range=(pixels[0], pixels[1]) if pixels else None,
                   declared=dict(d["declared"]), encoder=Encoder.from_dict(d["encoder"]))

    def to_dict(self) -> dict:
        """The form schema.json holds (sorted keys, lists, rounded floats), so a checkpoint that
        embeds it is the same bytes whether the schema came from the file or from prepare."""
        d = {"kind": self.kind, "origin": self.origin, "label_column": self.label_column,
             "features": self.features, "categorical": self.categorical, "classes": self.classes,
             "class_names": self.class_names,
             "image_shape": list(self.image_shape) if self.image_shape else None,
             "pixel_range": list(self.pixel_range) if self.pixel_range else None,
             "declared": self.declared, "encoder": self.encoder.to_dict()}
        return json.loads(json.dumps(jsonable(d), sort_keys=True))


def read_schema(path: str | Path) -> Schema:
    return Schema.from_dict(read_json(path), str(path))


def frame_xy(df: pd.DataFrame, schema: Schema, file: str,
             unseen: str = "refuse") -> tuple[np.ndarray, np.ndarray]:
    """A prepared-format frame -> model-space rows and integer labels (unseen: see
    Encoder.transform)."""
    y = label_codes(df, file)
    return schema.encoder.transform(df, file, unseen), y


def read_xy(path: str | Path, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """A prepared split -> model-space rows and integer labels. Validate has passed it, so a
    level train never showed (a rare category missed by a small train split) is no level."""
    return frame_xy(read_parquet(path), schema, str(path), unseen="zeros")
