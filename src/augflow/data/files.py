"""User files as sources: a CSV or Parquet table with a label column, or an NPZ with X and y.
Every problem names the file, the column and the rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augflow.data.raw import RawData, pixel_columns
from augflow.data.table import LABEL, PROVENANCE
from augflow.errors import AugflowError


def _read(path: Path, fmt: str) -> pd.DataFrame:
    file = str(path)
    if path.is_dir():
        raise AugflowError(f"is a folder, expected a {fmt} file", file=file, rule="file")
    if path.stat().st_size == 0:
        raise AugflowError("file is empty", file=file, rule="non-empty")
    try:
        if fmt == "csv":
            df = pd.read_csv(path, skipinitialspace=True)
        else:
            df = pd.read_parquet(path, engine="pyarrow")
    except Exception as err:   # parsers raise many types for corrupt input
        raise AugflowError(f"cannot read as {fmt} ({type(err).__name__}: {str(err)[:200]})",
                           file=file, rule="readable") from None
    if len(df) == 0:
        raise AugflowError("table has no rows", file=file, rule="non-empty")
    if fmt == "csv":
        # pandas renames a repeated header (alcohol, alcohol.1): read the header as written
        header = pd.read_csv(path, nrows=1, skipinitialspace=True, header=None).iloc[0]
        names = [str(h).strip() for h in header.tolist()] if len(header) else []
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise AugflowError(f"column {name!r} appears twice in the header (again as "
                                   f"column {i + 1}); rename or drop one", file=file,
                                   field=name, rule="unique column names")
            seen.add(name)
    return df


def read_table_file(path: Path, fmt: str, label_column: str,
                    categorical: tuple[str, ...]) -> RawData:
    file = str(path)
    df = _read(path, fmt)
    df.columns = [str(c) for c in df.columns]
    if label_column not in df.columns:
        raise AugflowError(f"missing label column {label_column!r} (columns: "
                           f"{list(df.columns)[:8]})", file=file, field=label_column,
                           rule="data.label_column must name a column")
    features = [c for c in df.columns if c != label_column]
    if not features:
        raise AugflowError("no feature columns besides the label", file=file, rule="features")
    clash = [c for c in features if c == LABEL or c in PROVENANCE or c in ("origin", "sample_weight")]
    if clash:
        raise AugflowError(f"column name {clash[0]!r} is reserved for augflow's own columns; "
                           "rename it", file=file, field=clash[0], rule="reserved name")
    unknown = [c for c in categorical if c not in features]
    if unknown:
        raise AugflowError(f"data.categorical names {unknown[0]!r}, which is not a feature "
                           "column", file=file, field=unknown[0], rule="declared column exists")
    labels = df[label_column]
    if labels.isna().any():
        raise AugflowError(f"missing labels in {_row(labels.isna())}", file=file,
                           field=label_column, rule="no missing labels")
    out = {}
    for col in features:
        s = df[col]
        if col in categorical:
            if s.isna().any():
                raise AugflowError(f"missing value in {_row(s.isna())}", file=file, field=col,
                                   rule="no missing values")
            out[col] = s.astype(str).str.strip()
            continue
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() & s.notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise AugflowError(f"non-numeric value {s.iloc[i]!r} in {_row(bad)}; list the column "
                               "under data.categorical if it holds categories", file=file,
                               field=col, rule="numeric")
        if num.isna().any():
            raise AugflowError(f"missing value (NaN) in {_row(num.isna())}", file=file, field=col,
                               rule="finite")
        if not np.isfinite(num.to_numpy(dtype=np.float64)).all():
            raise AugflowError(f"infinite value in {_row(~np.isfinite(num))}", file=file,
                               field=col, rule="finite")
        out[col] = num.astype(np.float32)
    lab = labels.to_numpy()
    if lab.dtype.kind == "f" and np.all(lab == np.round(lab)):
        lab = lab.astype(np.int64)       # 1.0, 2.0 read from a CSV are the classes 1, 2
    elif lab.dtype.kind not in "iu":
        lab = labels.astype(str).str.strip().to_numpy()
    return RawData(frame=pd.DataFrame(out, columns=features), labels=lab,
                   label_column=label_column, kind="table", categorical=tuple(categorical),
                   origin=f"{fmt}:{path.name}")


def _row(mask) -> str:
    """The first offending row, numbered as a spreadsheet shows a CSV (header = line 1)."""
    i = int(np.flatnonzero(np.asarray(mask))[0])
    return f"data row {i + 1} (line {i + 2})"


def read_npz(path: Path) -> RawData:
    """Arrays X (n, d) -> a table; X (n, h, w) or (n, h, w, c) -> images (uint8 pixels 0..255,
    float pixels 0..1). y (n,) holds the labels. Never unpickles: allow_pickle=False."""
    file = str(path)
    if path.stat().st_size == 0:
        raise AugflowError("file is empty", file=file, rule="non-empty")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as err:
        raise AugflowError(f"cannot read as npz ({type(err).__name__}: {str(err)[:200]})",
                           file=file, rule="readable (no pickled objects)") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise AugflowError(f"missing array {key!r} (arrays: {sorted(arrays)})", file=file,
                               field=key, rule="arrays X and y")
    x, y = arrays["X"], arrays["y"]
    if x.ndim not in (2, 3, 4) or y.ndim != 1 or len(x) != len(y):
        raise AugflowError(f"X has shape {x.shape} and y {y.shape}; expected X (n, d), (n, h, w) "
                           "or (n, h, w, c) and y (n,)", file=file, field="X", rule="shapes")
    if x.dtype.kind not in "iuf":
        raise AugflowError(f"X has dtype {x.dtype}", file=file, field="X", rule="numeric")
    xf = x.astype(np.float32)
    if not np.isfinite(xf).all():
        raise AugflowError("NaN or infinite values", file=file, field="X", rule="finite")
    labels = y.astype(str) if y.dtype.kind in "OUS" else y
    if x.ndim == 2:
        cols = [f"x{i}" for i in range(x.shape[1])]
        return RawData(frame=pd.DataFrame(xf, columns=cols), labels=labels, label_column="label",
                       kind="table", origin=f"npz:{path.name}")
    shape = x.shape[1:] + ((1,) if x.ndim == 3 else ())
    if shape[2] not in (1, 3):
        raise AugflowError(f"images have {shape[2]} channels", file=file, field="X",
                           rule="1 (gray) or 3 (RGB) channels")
    if x.dtype.kind in "iu":
        if xf.min() < 0 or xf.max() > 255:
            raise AugflowError(f"integer pixels in [{xf.min():.0f}, {xf.max():.0f}]", file=file,
                               field="X", rule="integer pixels in 0..255")
        domain = (0.0, 255.0)
    elif xf.min() >= 0 and xf.max() <= 1:
        domain = (0.0, 1.0)
    else:
        raise AugflowError(f"float pixels in [{xf.min():.3g}, {xf.max():.3g}]", file=file,
                           field="X", rule="uint8 pixels or floats in [0, 1]")
    return RawData(frame=pd.DataFrame(xf.reshape(len(xf), -1), columns=pixel_columns(*shape)),
                   labels=labels, label_column="label", kind="image",
                   image_shape=(int(shape[0]), int(shape[1]), int(shape[2])), pixel_range=domain,
                   origin=f"npz:{path.name}")
