"""The documented synthetic-table format, checked on read so any generator's output can be filtered.

Required: every feature column of the schema in the user's units (numbers finite and inside the
prepare stage's scaling range, categories among the known ones), `label` (an integer from the
schema's classes) and `sample_id` (unique, non-empty). Other provenance columns are optional."""

from __future__ import annotations

import numpy as np
import pandas as pd

from augflow.data.schema import Schema
from augflow.data.table import LABEL, SAMPLE_ID, label_codes
from augflow.errors import AugflowError
from augflow.io import read_parquet


def read_synthetic(path, schema: Schema) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    df = read_parquet(path)
    file = str(path)
    if SAMPLE_ID not in df.columns:
        raise AugflowError(f"missing column {SAMPLE_ID!r}", file=file, field=SAMPLE_ID,
                           rule="required")
    ids = df[SAMPLE_ID].astype(str)
    if (ids.str.len() == 0).any() or df[SAMPLE_ID].isna().any():
        raise AugflowError("empty sample ids", file=file, field=SAMPLE_ID, rule="non-empty")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise AugflowError(f"duplicate sample ids, e.g. {dup.iloc[0]!r}", file=file,
                           field=SAMPLE_ID, rule="unique")
    y = label_codes(df, file)
    unknown = sorted(set(y.tolist()) - set(schema.classes))
    if unknown:
        raise AugflowError(f"labels {unknown} are not among the training classes "
                           f"{schema.classes}", file=file, field=LABEL, rule="label_set")
    return df, schema.encoder.check_values(df, file), y
