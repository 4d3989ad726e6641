"""augflow.data.files: a user's CSV/Parquet table or NPZ arrays as a source. Every bad input
names the file, the column and the rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augflow.data.files import read_npz, read_table_file
from augflow.errors import AugflowError

GOOD_CSV = """length, color, weight, species
1.5, red, 3, setosa
2.5, blue, 4, versicolor
3.0 , red , 5, setosa
"""


def _csv(tmp_path, text: str, name: str = "flowers.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _table_error(path, fmt="csv", label="species", categorical=("color",)) -> AugflowError:
    with pytest.raises(AugflowError) as info:
        read_table_file(path, fmt, label, categorical)
    assert info.value.file == str(path)
    return info.value


def test_a_good_csv_becomes_raw_table_data(tmp_path):
    path = _csv(tmp_path, GOOD_CSV)
    raw = read_table_file(path, "csv", "species", ("color",))
    assert raw.kind == "table" and raw.label_column == "species" and raw.categorical == ("color",)
    assert raw.origin == "csv:flowers.csv" and raw.image_shape is None
    assert list(raw.frame.columns) == ["length", "color", "weight"]     # header spaces stripped
    assert raw.frame["length"].dtype == np.float32 and raw.frame["weight"].dtype == np.float32
    assert raw.frame["length"].tolist() == [1.5, 2.5, 3.0]
    assert raw.frame["color"].tolist() == ["red", "blue", "red"]         # values stripped
    assert raw.labels.tolist() == ["setosa", "versicolor", "setosa"]


def test_whole_float_labels_are_integer_classes(tmp_path):
    raw = read_table_file(_csv(tmp_path, "a,y\n0.5,1.0\n0.7,2.0\n"), "csv", "y", ())
    assert raw.labels.dtype == np.int64 and raw.labels.tolist() == [1, 2]
    raw = read_table_file(_csv(tmp_path, "a,y\n0.5,3\n0.7,4\n", "ints.csv"), "csv", "y", ())
    assert raw.labels.tolist() == [3, 4] and raw.labels.dtype.kind == "i"


def test_a_good_parquet_becomes_raw_table_data(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [1, 2, 3], "kind": ["x", "y", "x"], "target": ["p", "q", "p"]}).to_parquet(path)
    raw = read_table_file(path, "parquet", "target", ("kind",))
    assert raw.origin == "parquet:t.parquet"
    assert raw.frame["a"].tolist() == [1.0, 2.0, 3.0] and raw.frame["a"].dtype == np.float32
    assert raw.labels.tolist() == ["p", "q", "p"]


def test_files_that_cannot_be_read_as_tables(tmp_path):
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    assert _table_error(folder).rule == "file"
    assert _table_error(_csv(tmp_path, "", "empty.csv")).rule == "non-empty"
    assert _table_error(_csv(tmp_path, "length,species\n", "header.csv")).rule == "non-empty"
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 this is not parquet")
    err = _table_error(junk, fmt="parquet")
    assert err.rule == "readable" and "cannot read as parquet" in str(err)


def test_a_repeated_header_is_named_as_written(tmp_path):
    err = _table_error(_csv(tmp_path, "alcohol,color,alcohol,species\n1,red,2,a\n"))
    assert (err.field, err.rule) == ("alcohol", "unique column names")
    assert "again as column 3" in str(err)


@pytest.mark.parametrize("text, label, categorical, field, rule", [
    ("a,b\n1,2\n", "species", (), "species", "data.label_column must name a column"),
    ("species\na\n", "species", (), None, "features"),
    ("a,sample_id,species\n1,2,x\n", "species", (), "sample_id", "reserved name"),
    ("a,origin,species\n1,2,x\n", "species", (), "origin", "reserved name"),
    ("a,label,species\n1,2,x\n", "species", (), "label", "reserved name"),
    ("a,species\n1,x\n", "species", ("shade",), "shade", "declared column exists"),
    ("a,species\n1,x\n2,\n", "species", (), "species", "no missing labels"),
    ("a,color,species\n1,red,x\n2,,y\n", "species", ("color",), "color", "no missing values"),
    ("a,species\n1,x\n2,y\nabc,z\n", "species", (), "a", "numeric"),
    ("a,species\n1,x\n,y\n", "species", (), "a", "finite"),
    ("a,species\n1,x\ninf,y\n", "species", (), "a", "finite"),
])
def test_each_bad_table_names_its_column_and_rule(tmp_path, text, label, categorical, field, rule):
    err = _table_error(_csv(tmp_path, text), label=label, categorical=categorical)
    assert (err.field, err.rule) == (field, rule)


def test_a_bad_value_names_its_row_as_a_spreadsheet_shows_it(tmp_path):
    err = _table_error(_csv(tmp_path, "a,species\n1,x\n2,y\nabc,z\n"), categorical=())
    assert "'abc'" in str(err) and "data row 3 (line 4)" in str(err)
    assert "data.categorical" in str(err)               # tells how to declare categories
    err = _table_error(_csv(tmp_path, "a,species\n1,x\n2,\n", "nolabel.csv"), categorical=())
    assert "data row 2 (line 3)" in str(err)


def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_a_2d_npz_is_a_table(tmp_path):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    raw = read_npz(_npz(tmp_path, X=x, y=np.array(["a", "b", "a", "b"])))
    assert raw.kind == "table" and raw.origin == "npz:d.npz" and raw.label_column == "label"
    assert list(raw.frame.columns) == ["x0", "x1", "x2"] and raw.frame.dtypes.eq(np.float32).all()
    assert np.array_equal(raw.frame.to_numpy(), x)
    assert raw.labels.tolist() == ["a", "b", "a", "b"]


def test_npz_images_gray_rgb_integer_and_float(tmp_path):
    gray = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5)
    raw = read_npz(_npz(tmp_path, "g.npz", X=gray, y=np.array([0, 1])))
    assert raw.kind == "image" and raw.image_shape == (4, 5, 1) and raw.pixel_range == (0.0, 255.0)
    assert raw.frame.shape == (2, 20) and raw.frame.columns[6] == "pixel_1_1"
    assert raw.frame.iloc[1].tolist() == list(range(20, 40))
    rgb = np.random.default_rng(0).uniform(size=(3, 4, 4, 3)).astype(np.float32)
    raw = read_npz(_npz(tmp_path, "c.npz", X=rgb, y=np.array([1, 2, 3])))
    assert raw.image_shape == (4, 4, 3) and raw.pixel_range == (0.0, 1.0)
    assert raw.frame.columns[:4].tolist() == ["pixel_0_0_0", "pixel_0_0_1", "pixel_0_0_2", "pixel_0_1_0"]
    assert np.array_equal(raw.frame.to_numpy(), rgb.reshape(3, -1))   # channel-last rows


def _npz_error(path) -> AugflowError:
    with pytest.raises(AugflowError) as info:
        read_npz(path)
    assert info.value.file == str(path)
    return info.value


def test_npz_files_that_cannot_be_read(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert _npz_error(empty).rule == "non-empty"
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip archive")
    assert _npz_error(junk).rule == "readable (no pickled objects)"
    pickled = _npz(tmp_path, "obj.npz", X=np.array([{"a": 1}, {"b": 2}], dtype=object),
                   y=np.array([0, 1]))
    assert _npz_error(pickled).rule == "readable (no pickled objects)"


@pytest.mark.parametrize("arrays, field, rule", [
    ({"X": np.zeros((2, 3))}, "y", "arrays X and y"),
    ({"data": np.zeros((2, 3)), "y": np.zeros(2)}, "X", "arrays X and y"),
    ({"X": np.zeros((3, 3)), "y": np.zeros(2)}, "X", "shapes"),
    ({"X": np.zeros(3), "y": np.zeros(3)}, "X", "shapes"),
    ({"X": np.zeros((2, 3)), "y": np.zeros((2, 1))}, "X", "shapes"),
    ({"X": np.array([["a", "b"], ["c", "d"]]), "y": np.zeros(2)}, "X", "numeric"),
    ({"X": np.array([[0.1, np.nan], [0.2, 0.3]]), "y": np.zeros(2)}, "X", "finite"),
    ({"X": np.zeros((2, 4, 4, 2)), "y": np.zeros(2)}, "X", "1 (gray) or 3 (RGB) channels"),
    ({"X": np.full((2, 4, 4), 300, dtype=np.int32), "y": np.zeros(2)}, "X",
     "integer pixels in 0..255"),
    ({"X": np.full((2, 4, 4), 1.5), "y": np.zeros(2)}, "X", "uint8 pixels or floats in [0, 1]"),
])
def test_each_bad_npz_names_its_array_and_rule(tmp_path, arrays, field, rule):
    err = _npz_error(_npz(tmp_path, **arrays))
    assert (err.field, err.rule) == (field, rule)
