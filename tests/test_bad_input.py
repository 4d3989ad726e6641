"""Each kind of bad input: a non-zero exit, a message naming file, field and rule, no traceback,
and every output already produced left byte-for-byte as it was."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from augflow.config import DataConfig
from augflow.errors import AugflowError
from augflow.stages.prepare import split_dataset

from conftest import TINY, fails_cleanly, merged


@pytest.fixture
def ws(pipeline_ws, tmp_path):
    """A private copy of a workspace where the whole pipeline has run."""
    dst = tmp_path / "ws"
    shutil.copytree(pipeline_ws, dst, symlinks=True)
    return dst


SAMPLES = "data/synthetic/samples.parquet"


def _edit_samples(ws, fn):
    df = pd.read_parquet(ws / SAMPLES)
    fn(df).to_parquet(ws / SAMPLES, index=False)


def test_missing_file(ws):
    (ws / "data/prepared/train.parquet").unlink()
    fails_cleanly(ws, "train", "data/prepared/train.parquet", "file not found",
                  touched=["data/prepared/train.parquet"], new_process=True)   # the exit status


def test_empty_file(ws):
    (ws / SAMPLES).write_bytes(b"")
    fails_cleanly(ws, "filter", SAMPLES, "file is empty", touched=[SAMPLES])


def test_corrupt_file(ws):
    (ws / SAMPLES).write_bytes(b"PAR1 this is not a parquet file")
    fails_cleanly(ws, "filter", SAMPLES, "cannot read as parquet", touched=[SAMPLES])


def test_corrupt_checkpoint(ws):
    (ws / "data/models/cvae.pt").write_bytes(b"\x80\x04 not a checkpoint")
    fails_cleanly(ws, "generate", "data/models/cvae.pt", "cannot load checkpoint",
                          touched=["data/models/cvae.pt"])


def test_missing_label_column(ws):
    _edit_samples(ws, lambda d: d.drop(columns=["label"]))
    fails_cleanly(ws, "filter", SAMPLES, "label", "missing column", touched=[SAMPLES])


def test_nan_and_inf(ws):
    def poison(d):
        d.loc[4, "pixel_3_3"] = np.inf
        return d
    _edit_samples(ws, poison)
    fails_cleanly(ws, "filter", SAMPLES, "pixel_3_3", "NaN or infinite", touched=[SAMPLES])


def test_non_numeric_values(ws):
    def text(d):
        d["pixel_1_2"] = d["pixel_1_2"].astype(str)
        return d
    _edit_samples(ws, text)
    fails_cleanly(ws, "filter", SAMPLES, "pixel_1_2", "non-numeric", touched=[SAMPLES])


def test_values_outside_the_declared_range(ws):
    def big(d):
        d.loc[0, "pixel_5_5"] = 40.0
        return d
    _edit_samples(ws, big)
    fails_cleanly(ws, "filter", SAMPLES, "pixel_5_5", "outside the range [0, 16]",
                          touched=[SAMPLES])


def test_duplicate_sample_ids(ws):
    _edit_samples(ws, lambda d: d.assign(sample_id="same"))
    fails_cleanly(ws, "filter", SAMPLES, "sample_id", "duplicate", touched=[SAMPLES])


def test_single_class_in_a_split_fails_validation(ws):
    path = ws / "data/prepared/train.parquet"
    df = pd.read_parquet(path)
    df[df["label"] == 3].to_parquet(path, index=False)
    fails_cleanly(ws, "validate", "expect_column_distinct_values_to_equal_set",
                          "label", touched=["data/prepared/train.parquet",
                                            "data/reports/validation_failed.json"])


@pytest.mark.parametrize("raw, needle", [
    ({"vae": {"latent_dim": "many"}}, "vae.latent_dim: Input should be a valid integer"),
    ({"vae": {"lr": 5.0}}, "vae.lr: Input should be less than or equal to 1"),
    ({"evaluate": {"classifiers": ["xgboost"], "promote_classifier": "xgboost"}},
     "evaluate.classifiers.0"),
    ({"generate": {"n_per_clas": 3}}, "generate.n_per_clas: unknown key"),
    ({"vae": {"arch": "resnet"}}, "vae.arch: Input should be 'auto', 'mlp' or 'conv'"),
    ({"vae": {"processes": 0}}, "vae.processes: Input should be greater than or equal to 1"),
    ({"extractor": {"arch": "vit"}}, "extractor.arch"),
    ({"generate": {"latent": "flow"}}, "generate.latent"),
    ({"evaluate": {"runner": "dask", "dask_address": "localhost:8786"}},
     "evaluate.dask_address: Value error, 'localhost:8786' is not a Dask scheduler address"),
    ({"generate": {"dask_address": "tcp://10.0.0.5:8786"}},
     "generate.dask_address is set but generate.runner is 'local'"),
])
def test_bad_params_name_the_key(ws, raw, needle):
    (ws / "params.yaml").write_text(yaml.safe_dump(merged(TINY, raw)))
    fails_cleanly(ws, "generate", needle)


def test_too_few_rows_per_class_and_a_single_class():
    with pytest.raises(AugflowError, match="class 1 has 2 rows") as err:
        split_dataset(np.array([0, 0, 0, 0, 0, 0, 1, 1]), DataConfig(), 0)
    assert err.value.field == "label" and err.value.rule == "rows_per_class"
    with pytest.raises(AugflowError, match="at least two classes"):
        split_dataset(np.zeros(8, np.int64), DataConfig(), 0)
