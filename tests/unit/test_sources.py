"""augflow.data.sources: the built-in sets and the dispatch to file sources, which must sit
under data/raw/."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from augflow.config import DataConfig
from augflow.data.sources import RAW_DIR, load_source, resolve_data_path
from augflow.errors import AugflowError


def test_digits_are_8x8_gray_images_in_0_to_16():
    raw = load_source(DataConfig(source="digits"))
    assert raw.kind == "image" and raw.origin == "sklearn:digits" and raw.label_column == "label"
    assert raw.image_shape == (8, 8, 1) and raw.pixel_range == (0.0, 16.0)
    assert raw.frame.shape == (1797, 64) and raw.frame.columns[9] == "pixel_1_1"
    assert raw.frame.dtypes.eq(np.float32).all()
    assert raw.frame.to_numpy().min() == 0 and raw.frame.to_numpy().max() == 16
    assert raw.labels.dtype == np.int64 and sorted(set(raw.labels.tolist())) == list(range(10))


def test_iris_is_a_table_labelled_with_the_class_names():
    raw = load_source(DataConfig(source="iris"))
    assert raw.kind == "table" and raw.origin == "sklearn:iris" and raw.image_shape is None
    assert raw.frame.shape == (150, 4) and raw.frame.columns[0] == "sepal length (cm)"
    assert raw.frame.dtypes.eq(np.float32).all()
    assert sorted(set(raw.labels.tolist())) == ["setosa", "versicolor", "virginica"]
    assert raw.labels.tolist().count("setosa") == 50


def _workspace(tmp_path):
    (tmp_path / RAW_DIR).mkdir(parents=True)
    return tmp_path


def test_resolve_data_path_accepts_a_file_or_folder_under_data_raw(tmp_path):
    root = _workspace(tmp_path)
    (root / "data/raw/t.csv").write_text("a,label\n1,x\n")
    (root / "data/raw/imgs").mkdir()
    cfg = DataConfig(source="csv", path="data/raw/t.csv")
    assert resolve_data_path(cfg, root) == (root / "data/raw/t.csv").resolve()
    cfg = DataConfig(source="image_folder", path="data/raw/imgs/")
    assert resolve_data_path(cfg, root) == (root / "data/raw/imgs").resolve()
    # data/raw itself is allowed (an image folder of classes)
    cfg = DataConfig(source="image_folder", path="data/raw")
    assert resolve_data_path(cfg, root) == (root / "data/raw").resolve()


@pytest.mark.parametrize("path", ["data/other.csv", "../t.csv", "data/raw/../t.csv", "/etc/hosts",
                                  "data/rawish/t.csv"])
def test_resolve_data_path_refuses_a_path_outside_data_raw(tmp_path, path):
    root = _workspace(tmp_path / "ws")
    with pytest.raises(AugflowError) as info:
        resolve_data_path(DataConfig(source="csv", path=path), root)
    err = info.value
    assert (err.file, err.field, err.rule) == ("params.yaml", "data.path", "inside data/raw/")
    assert repr(path) in str(err)


def test_a_symlink_under_data_raw_pointing_outside_is_refused(tmp_path):
    root = _workspace(tmp_path / "ws")
    outside = tmp_path / "secret.csv"
    outside.write_text("a,label\n1,x\n")
    (root / "data/raw/link.csv").symlink_to(outside)
    with pytest.raises(AugflowError) as info:
        resolve_data_path(DataConfig(source="csv", path="data/raw/link.csv"), root)
    assert info.value.rule == "inside data/raw/"


def test_a_missing_file_under_data_raw_is_named(tmp_path):
    root = _workspace(tmp_path)
    with pytest.raises(AugflowError) as info:
        resolve_data_path(DataConfig(source="npz", path="data/raw/nope.npz"), root)
    err = info.value
    assert (err.field, err.rule) == ("data.path", "exists")
    assert err.file == str((root / "data/raw/nope.npz").resolve())


def test_load_source_dispatches_file_sources_by_name(tmp_path):
    root = _workspace(tmp_path)
    (root / "data/raw/t.csv").write_text("a,kind,y\n1,p,x\n2,q,z\n")
    raw = load_source(DataConfig(source="csv", path="data/raw/t.csv", label_column="y",
                                 categorical=("kind",)), root)
    assert raw.origin == "csv:t.csv" and raw.categorical == ("kind",)
    assert raw.labels.tolist() == ["x", "z"]
    pd.DataFrame({"a": [1.0], "y": ["x"]}).to_parquet(root / "data/raw/t.parquet")
    raw = load_source(DataConfig(source="parquet", path="data/raw/t.parquet", label_column="y"),
                      root)
    assert raw.origin == "parquet:t.parquet"
    np.savez(root / "data/raw/d.npz", X=np.zeros((2, 3)), y=np.array([0, 1]))
    assert load_source(DataConfig(source="npz", path="data/raw/d.npz"), root).origin == "npz:d.npz"
    (root / "data/raw/imgs/a").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "data/raw/imgs/a/1.png")
    raw = load_source(DataConfig(source="image_folder", path="data/raw/imgs", image_size=(6, 5),
                                 image_channels=3), root)
    assert raw.origin == "image_folder:imgs" and raw.image_shape == (6, 5, 3)


def test_load_source_checks_the_path_before_reading(tmp_path):
    root = _workspace(tmp_path / "ws")
    (tmp_path / "t.csv").write_text("a,label\n1,x\n")
    with pytest.raises(AugflowError) as info:
        load_source(DataConfig(source="csv", path="../t.csv"), root)
    assert info.value.rule == "inside data/raw/"
