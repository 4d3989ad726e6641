"""augflow.data.schema: the typed schema.json and prepared tables read through it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from augflow.config import ColumnRule
from augflow.data.preprocess import Encoder
from augflow.data.schema import Schema, frame_xy, read_schema, read_xy
from augflow.errors import AugflowError
from augflow.io import write_json, write_parquet


def _table() -> pd.DataFrame:
    return pd.DataFrame({"width": [0.5, 2.0, 3.5, 1.0], "depth": [0.1234567891, 1.0, 2.0, 3.0],
                         "shade": ["b", "a", "a", "b"],
                         "label": np.array([0, 1, 1, 0], dtype=np.int64)})


def _schema(**over) -> Schema:
    declared = {"width": ColumnRule(min=0.0)}
    enc = Encoder.fit(_table(), ("shade",), declared)
    fields = dict(kind="table", origin="csv:flowers.csv", label_column="species",
                  features=["width", "depth", "shade"], categorical=["shade"], classes=[0, 1],
                  class_names=["setosa", "virginica"], image_shape=None, pixel_range=None,
                  declared={c: r.model_dump(exclude_none=True) for c, r in declared.items()},
                  encoder=enc)
    fields.update(over)
    return Schema(**fields)


def _sorted_everywhere(obj) -> bool:
    if isinstance(obj, dict):
        return list(obj) == sorted(obj) and all(_sorted_everywhere(v) for v in obj.values())
    if isinstance(obj, list):
        return all(_sorted_everywhere(v) for v in obj)
    return True


def test_to_dict_is_the_json_form_with_sorted_keys_and_rounded_floats(tmp_path):
    schema = _schema()
    d = schema.to_dict()
    assert _sorted_everywhere(d)
    assert d == json.loads(json.dumps(d))                     # plain JSON types only
    assert d["encoder"]["high"] == [3.5, 3.0]
    assert d["encoder"]["low"] == [0.0, 0.123457]              # declared min; rounded train min
    assert d["declared"] == {"width": {"min": 0.0}}
    # what prepare writes to schema.json and what the object gives are the same
    write_json(tmp_path / "schema.json", d)
    assert json.loads((tmp_path / "schema.json").read_text()) == d


def test_from_dict_to_dict_round_trip_through_the_file(tmp_path):
    schema = _schema()
    path = tmp_path / "schema.json"
    write_json(path, schema.to_dict())
    back = read_schema(path)
    assert back.to_dict() == schema.to_dict()
    assert back.n_classes == 2 and back.classes == [0, 1]
    assert back.image_shape is None and back.pixel_range is None
    assert back.encoder.categories == {"shade": ["a", "b"]}
    # the schema read back encodes as the one prepare fitted (up to the 6-digit rounding)
    assert np.allclose(back.encoder.transform(_table(), "f"),
                       schema.encoder.transform(_table(), "f"), atol=1e-6)


def test_image_shape_and_pixel_range_come_back_as_tuples():
    pixels = pd.DataFrame({"pixel_0_0": [0.0, 16.0], "pixel_0_1": [4.0, 8.0], "label": [0, 1]})
    enc = Encoder.fit(pixels, (), {}, fixed_range=(0.0, 16.0))
    schema = _schema(kind="image", image_shape=(1, 2, 1), pixel_range=(0.0, 16.0),
                     features=["pixel_0_0", "pixel_0_1"], categorical=[], declared={},
                     encoder=enc)
    d = schema.to_dict()
    assert d["image_shape"] == [1, 2, 1] and d["pixel_range"] == [0.0, 16.0]
    back = Schema.from_dict(d)
    assert back.image_shape == (1, 2, 1) and back.pixel_range == (0.0, 16.0)
    assert back.to_dict() == d


@pytest.mark.parametrize("key", ["kind", "encoder", "class_names", "pixel_range"])
def test_a_missing_key_names_the_field_and_the_stage_to_rerun(key):
    d = _schema().to_dict()
    del d[key]
    with pytest.raises(AugflowError) as info:
        Schema.from_dict(d, "data/prepared/schema.json")
    err = info.value
    assert err.field == key and err.rule == "required" and err.file == "data/prepared/schema.json"
    assert "rerun the prepare stage" in str(err)


def test_read_schema_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(AugflowError) as info:
        read_schema(tmp_path / "schema.json")
    assert info.value.rule == "exists"


def test_read_xy_gives_model_rows_and_integer_labels(tmp_path):
    schema = _schema()
    path = tmp_path / "train.parquet"
    write_parquet(path, _table())
    x, y = read_xy(path, schema)
    assert x.dtype == np.float32 and x.shape == (4, schema.encoder.width)
    assert np.array_equal(x, schema.encoder.transform(_table(), "f"))
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 1, 0]


def test_read_xy_names_a_missing_or_non_integer_label(tmp_path):
    schema = _schema()
    path = tmp_path / "val.parquet"
    write_parquet(path, _table().drop(columns=["label"]))
    with pytest.raises(AugflowError) as info:
        read_xy(path, schema)
    assert (info.value.file, info.value.field, info.value.rule) == (str(path), "label", "required")
    with pytest.raises(AugflowError) as info:
        frame_xy(_table().assign(label=["setosa"] * 4), schema, "val.parquet")
    assert (info.value.field, info.value.rule) == ("label", "integer")


def test_read_xy_names_a_feature_problem_with_the_file(tmp_path):
    path = tmp_path / "test.parquet"
    write_parquet(path, _table().assign(depth=[1.0, np.nan, 2.0, 3.0]))
    with pytest.raises(AugflowError) as info:
        read_xy(path, _schema())
    assert info.value.file == str(path) and info.value.field == "depth"


def test_a_split_row_of_a_level_train_never_showed_is_encoded_as_no_level(tmp_path):
    """A val or test row of a category too rare for a small train split (validate let it
    through) gets zeros in that column's one-hot block; our own outputs (frame_xy's default,
    used for samples and the augmented set) must hold train's levels and are refused."""
    schema = _schema()
    path = tmp_path / "test.parquet"
    write_parquet(path, _table().assign(shade=["a", "a", "c", "b"]))
    x, _ = read_xy(path, schema)
    block = x[:, len(schema.encoder.numeric):]
    assert block.sum(axis=1).tolist() == [1.0, 1.0, 0.0, 1.0]
    with pytest.raises(AugflowError) as info:
        frame_xy(_table().assign(shade=["a", "a", "c", "b"]), schema, "samples.parquet")
    assert (info.value.field, info.value.rule) == ("shade", "category seen in train or declared")
