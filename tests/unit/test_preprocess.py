"""augflow.data.preprocess: the train-fitted Encoder between the user's units and model space."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augflow.config import ColumnRule
from augflow.data.preprocess import Encoder
from augflow.errors import AugflowError


def _train() -> pd.DataFrame:
    return pd.DataFrame({
        "height": [1.5, 2.25, 3.0, 4.5, 2.0],      # floats: min 1.5, max 4.5
        "count": [0, 10, 4, 7, 3],                 # whole numbers: rounded on the way back
        "color": ["red", "blue", "red", "green", "blue"],
        "label": [0, 1, 0, 1, 1],
    })


def _fit(**kw) -> Encoder:
    return Encoder.fit(_train(), ("color",), kw.pop("declared", {}), **kw)


def test_fit_learns_ranges_integer_columns_and_sorted_categories():
    enc = _fit()
    assert enc.features == ["height", "count", "color"]
    assert enc.numeric == ["height", "count"]
    assert enc.low.tolist() == [1.5, 0.0] and enc.high.tolist() == [4.5, 10.0]
    assert enc.integer.tolist() == [False, True]
    assert enc.categories == {"color": ["blue", "green", "red"]}
    assert enc.width == 2 + 3


def test_transform_scales_to_unit_range_and_one_hot_encodes():
    enc = _fit()
    u = enc.transform(_train(), "train.parquet")
    assert u.dtype == np.float32 and u.shape == (5, enc.width)
    assert u.min() >= 0 and u.max() <= 1
    assert np.allclose(u[:, 0], [0.0, 0.25, 0.5, 1.0, 0.5 / 3])
    assert np.allclose(u[:, 1], [0.0, 1.0, 0.4, 0.7, 0.3])
    assert u[:, 2:].tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]


def test_inverse_of_transform_gives_back_the_users_rows():
    enc = _fit()
    train = _train()
    back = enc.inverse(enc.transform(train, "train"))
    assert list(back.columns) == enc.features            # no label column: features only
    assert np.allclose(back["height"], train["height"])
    assert back["count"].tolist() == train["count"].tolist()
    assert back["color"].tolist() == train["color"].tolist()
    assert back["height"].dtype == np.float32


def test_inverse_rounds_integer_columns_clips_and_decodes_categories_by_argmax():
    enc = _fit()
    u = np.array([[0.5, 0.37, 0.2, 0.1, 0.3],      # count 3.7 -> 4; color argmax -> red
                  [1.7, -0.4, 0.0, 0.9, 0.8]])     # outside [0, 1]: clipped to the range
    back = enc.inverse(u)
    assert back["count"].tolist() == [4.0, 0.0]
    assert back["height"].tolist() == [3.0, 4.5]
    assert back["color"].tolist() == ["red", "green"]


def test_values_outside_the_train_range_are_clipped_in_model_space():
    enc = _fit()
    df = _train().assign(height=[0.0, 1.5, 3.0, 4.5, 99.0])
    assert enc.transform(df, "f")[:, 0].tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_a_constant_column_maps_to_zero_not_nan():
    train = _train().assign(height=2.0)
    enc = Encoder.fit(train, ("color",), {})
    u = enc.transform(train, "f")
    assert np.isfinite(u).all() and (u[:, 0] == 0).all()
    assert enc.inverse(u)["height"].tolist() == [2.0] * 5


def test_declared_ranges_and_categories_override_what_train_shows():
    declared = {"height": ColumnRule(min=0.0, max=10.0), "count": ColumnRule(max=20),
                "color": ColumnRule(categories=("red", "yellow", "blue", "green"))}
    enc = _fit(declared=declared)
    assert enc.low.tolist() == [0.0, 0.0] and enc.high.tolist() == [10.0, 20.0]
    assert enc.categories["color"] == ["blue", "green", "red", "yellow"]   # sorted
    u = enc.transform(_train(), "f")
    assert np.allclose(u[:, 0], np.array([1.5, 2.25, 3.0, 4.5, 2.0]) / 10)
    # a declared category the train split never showed is accepted
    one = _train().iloc[:1].assign(color="yellow")
    assert enc.transform(one, "f")[0, 2:].tolist() == [0, 0, 0, 1]


def test_a_fixed_pixel_range_is_shared_by_every_numeric_column():
    train = pd.DataFrame({"p0": [0.0, 3.0], "p1": [8.0, 16.0], "label": [0, 1]})
    enc = Encoder.fit(train, (), {}, fixed_range=(0.0, 16.0))
    assert enc.low.tolist() == [0.0, 0.0] and enc.high.tolist() == [16.0, 16.0]
    assert enc.integer.tolist() == [False, False]       # decoded pixels keep their fractions
    assert enc.transform(train, "f").tolist() == [[0.0, 0.5], [3 / 16, 1.0]]
    assert enc.inverse(np.array([[0.03125, 1.0]])).iloc[0].tolist() == [0.5, 16.0]


def test_to_dict_from_dict_round_trip():
    enc = _fit()
    d = enc.to_dict()
    again = Encoder.from_dict(d)
    assert again.to_dict() == d
    u = enc.transform(_train(), "f")
    assert np.array_equal(again.transform(_train(), "f"), u)
    assert again.integer.dtype == bool and again.low.dtype == np.float64


def _error(enc: Encoder, df: pd.DataFrame, file: str = "data/prepared/val.parquet",
           check: bool = False) -> AugflowError:
    with pytest.raises(AugflowError) as info:
        (enc.check_values if check else enc.transform)(df, file)
    assert info.value.file == file and str(info.value).startswith(f"{file}: {info.value.field}: ")
    return info.value


def test_a_missing_feature_column_is_named():
    err = _error(_fit(), _train().drop(columns=["count"]))
    assert err.field == "count" and err.rule == "required" and "missing feature" in str(err)


def test_a_non_numeric_value_in_a_numeric_column_is_named():
    err = _error(_fit(), _train().assign(count=["1", "2", "x", "4", "5"]))
    assert err.field == "count" and err.rule == "numeric"


def test_nan_and_infinity_are_named_with_their_column():
    err = _error(_fit(), _train().assign(count=[0, 1, np.nan, 2, 3]))
    assert err.field == "count" and err.rule == "finite"
    err = _error(_fit(), _train().assign(height=[1.5, np.inf, 2, 3, 4]))
    assert err.field == "height" and err.rule == "finite"


def test_an_unknown_category_is_named_with_the_known_ones():
    err = _error(_fit(), _train().assign(color=["red", "red", "purple", "red", "red"]))
    assert err.field == "color" and err.rule == "category seen in train or declared"
    assert "'purple'" in str(err) and "blue" in str(err)


def test_check_values_accepts_the_range_and_refuses_values_outside_it():
    enc = _fit()
    ok = _train().assign(height=[1.5, 4.5, 4.5 + 1e-9, 2.0, 3.0])   # within the tolerance
    assert np.array_equal(enc.check_values(ok, "f"), enc.transform(ok, "f"))
    err = _error(enc, _train().assign(count=[0, 11, 12, 3, 4]), check=True)
    assert err.field == "count" and err.rule == "value_range"
    assert str(err).startswith("data/prepared/val.parquet: count: 2 values outside the range [0, 10]")
    err = _error(enc, _train().assign(height=[1.4, 2, 3, 4, 4]), check=True)
    assert err.field == "height" and err.rule == "value_range"


def test_check_values_runs_the_transform_checks_first():
    err = _error(_fit(), _train().assign(color="purple"), check=True)
    assert err.rule == "category seen in train or declared"


def test_decoded_rows_pass_the_encoders_own_range_check():
    enc = _fit(declared={"height": ColumnRule(min=0.0, max=10.0)})
    u = np.random.default_rng(0).uniform(-0.2, 1.2, size=(50, enc.width))
    back = enc.inverse(u)
    assert np.array_equal(enc.check_values(back, "generated"), enc.transform(back, "generated"))


def test_integer_columns_decode_inside_non_integer_declared_bounds():
    train = pd.DataFrame({"score": [1, 4, 7, 9], "label": [0, 1, 0, 1]})
    enc = Encoder.fit(train, (), {"score": ColumnRule(min=0.5, max=9.8)})
    assert enc.integer.tolist() == [True]
    back = enc.inverse(np.array([[0.0], [1.0]]))
    assert back["score"].tolist() == [1.0, 9.0]          # whole numbers inside [0.5, 9.8]
    enc.check_values(back, "generated")
