"""What every data source returns: the user's rows in their own names and units, before prepare
splits and encodes them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class RawData:
    frame: pd.DataFrame          # feature columns in the user's names and units
    labels: np.ndarray           # the user's label values, one per row
    label_column: str            # the user's name for the label
    kind: str                    # "table" or "image"
    categorical: tuple[str, ...] = ()
    image_shape: tuple[int, int, int] | None = None   # (height, width, channels), channel-last rows
    pixel_range: tuple[float, float] | None = None    # the declared domain of every pixel
    origin: str = ""             # where it came from, for the schema and the run's tags
    row_files: tuple[str, ...] | None = None   # image folders: the file of each row, for errors


def pixel_columns(h: int, w: int, c: int) -> list[str]:
    """Column names of a flattened (h, w, c) image in row-major, channel-last order."""
    if c == 1:
        return [f"pixel_{i}_{j}" for i in range(h) for j in range(w)]
    return [f"pixel_{i}_{j}_{k}" for i in range(h) for j in range(w) for k in range(c)]
