"""Dataset sources, chosen by `data.source` in params.yaml. The built-in sets ship with
scikit-learn; everything else is a file or folder under data/raw/. Only the torchvision source
may download, into its folder under data/raw/, and only while data.download is true."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from augflow.config import BUILTIN_SOURCES, DataConfig
from augflow.data.files import read_npz, read_table_file
from augflow.data.images import read_image_folder
from augflow.data.raw import RawData, pixel_columns
from augflow.data.torchvision_sets import read_torchvision_set
from augflow.errors import AugflowError

RAW_DIR = "data/raw"   # dvc.yaml's prepare stage depends on this folder


def _digits() -> RawData:
    from sklearn.datasets import load_digits

    b = load_digits()
    return RawData(frame=pd.DataFrame(b.data.astype(np.float32), columns=pixel_columns(8, 8, 1)),
                   labels=b.target.astype(np.int64), label_column="label", kind="image",
                   image_shape=(8, 8, 1), pixel_range=(0.0, 16.0), origin="sklearn:digits")


def _sklearn_table(name: str) -> RawData:
    import sklearn.datasets as sk

    b = getattr(sk, f"load_{name}")()
    names = np.asarray(b.target_names)
    return RawData(frame=pd.DataFrame(b.data.astype(np.float32), columns=list(b.feature_names)),
                   labels=names[b.target].astype(str), label_column="label", kind="table",
                   origin=f"sklearn:{name}")


def resolve_data_path(cfg: DataConfig, root: Path, must_exist: bool = True) -> Path:
    """data.path resolved against the workspace and kept inside data/raw/ (symlinks resolved),
    so DVC sees every input file and params cannot point the pipeline elsewhere. `must_exist`
    False: the caller names what is missing (a torchvision root may not be downloaded yet)."""
    raw = (root / RAW_DIR).resolve()
    path = (root / str(cfg.path)).resolve()
    if path != raw and raw not in path.parents:
        raise AugflowError(f"{cfg.path!r} resolves to {path}, outside {RAW_DIR}/; put the data "
                           f"under {RAW_DIR}/ so DVC tracks it as the prepare stage's input",
                           file="params.yaml", field="data.path", rule=f"inside {RAW_DIR}/")
    if must_exist and not path.exists():
        raise AugflowError("file not found", file=str(path), field="data.path", rule="exists")
    return path


def load_source(cfg: DataConfig, root: Path = Path(".")) -> RawData:
    if cfg.source == "digits":
        return _digits()
    if cfg.source in BUILTIN_SOURCES:
        return _sklearn_table(cfg.source)
    if cfg.source == "torchvision":
        assert cfg.torchvision_dataset is not None   # the config refuses torchvision without it
        return read_torchvision_set(resolve_data_path(cfg, root, must_exist=False),
                                    cfg.torchvision_dataset, cfg.download)
    path = resolve_data_path(cfg, root)
    if cfg.source in ("csv", "parquet"):
        return read_table_file(path, cfg.source, cfg.label_column, cfg.categorical)
    if cfg.source == "npz":
        return read_npz(path)
    return read_image_folder(path, cfg.image_size, cfg.image_channels)
