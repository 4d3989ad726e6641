"""Each kind of bad input: a non-zero exit, a message naming file, field and rule, no traceback,
and every output already produced left byte-for-byte as it was."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from augflow.config import DataConfig
from augflow.errors import AugflowError
from augflow.prepare import split_dataset

from conftest import TINY, augflow, merged


def _digest(ws) -> dict[str, str]:
    out = {}
    for sub in ("data", "metrics", "plots"):
        for f in sorted((ws / sub).rglob("*")):
            if f.is_file() and "runlog" not in f.parts and "data_docs" not in f.parts:
                out[str(f.relative_to(ws))] = hashlib.md5(f.read_bytes()).hexdigest()
    return out


@pytest.fixture
def ws(pipeline_ws, tmp_path):
    """A private copy of a workspace where the whole pipeline has run."""
    dst = tmp_path / "ws"
    shutil.copytree(pipeline_ws, dst, symlinks=True)
    return dst


def _expect_clean_failure(ws, stage, *needles, touched=()):
    before = _digest(ws)
    proc = augflow(ws, stage)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr
    after = _digest(ws)
    for k in set(before) - set(touched):
        assert after.get(k) == before[k], f"{k} changed"


SAMPLES = "data/synthetic/samples.parquet"


def _edit_samples(ws, fn):
    df = pd.read_parquet(ws / SAMPLES)
    fn(df).to_parquet(ws / SAMPLES, index=False)


def test_missing_file(ws):
    (ws / "data/prepared/train.parquet").unlink()
    _expect_clean_failure(ws, "train", "data/prepared/train.parquet", "file not found",
                          touched=["data/prepared/train.parquet"])


def test_empty_file(ws):
    (ws / SAMPLES).write_bytes(b"")
    _expect_clean_failure(ws, "filter", SAMPLES, "file is empty", touched=[SAMPLES])


def test_corrupt_file(ws):
    (ws / SAMPLES).write_bytes(b"PAR1 this is not a parquet file")
    _expect_clean_failure(ws, "filter", SAMPLES, "cannot read as parquet", touched=[SAMPLES])


def test_corrupt_checkpoint(ws):
    (ws / "data/models/cvae.pt").write_bytes(b"\x80\x04 not a checkpoint")
    _expect_clean_failure(ws, "generate", "data/models/cvae.pt", "cannot load checkpoint",
                          touched=["data/models/cvae.pt"])


def test_missing_label_column(ws):
    _edit_samples(ws, lambda d: d.drop(columns=["label"]))
    _expect_clean_failure(ws, "filter", SAMPLES, "label", "missing column", touched=[SAMPLES])


def test_nan_and_inf(ws):
    def poison(d):
        d.loc[4, "pixel_3_3"] = np.inf
        return d
    _edit_samples(ws, poison)
    _expect_clean_failure(ws, "filter", SAMPLES, "pixel_3_3", "NaN or infinite", touched=[SAMPLES])


def test_non_numeric_values(ws):
    def text(d):
        d["pixel_1_2"] = d["pixel_1_2"].astype(str)
        return d
    _edit_samples(ws, text)
    _expect_clean_failure(ws, "filter", SAMPLES, "pixel_1_2", "non-numeric", touched=[SAMPLES])


def test_values_outside_the_declared_range(ws):
    def big(d):
        d.loc[0, "pixel_5_5"] = 40.0
        return d
    _edit_samples(ws, big)
    _expect_clean_failure(ws, "filter", SAMPLES, "pixel_5_5", "outside the range [0, 16]",
                          touched=[SAMPLES])


def test_duplicate_sample_ids(ws):
    _edit_samples(ws, lambda d: d.assign(sample_id="same"))
    _expect_clean_failure(ws, "filter", SAMPLES, "sample_id", "duplicate", touched=[SAMPLES])


def test_single_class_in_a_split_fails_validation(ws):
    path = ws / "data/prepared/train.parquet"
    df = pd.read_parquet(path)
    df[df["label"] == 3].to_parquet(path, index=False)
    _expect_clean_failure(ws, "validate", "expect_column_distinct_values_to_equal_set",
                          "label", touched=["data/prepared/train.parquet",
                                            "data/reports/validation_failed.json"])


@pytest.mark.parametrize("raw, needle", [
    ({"vae": {"latent_dim": "many"}}, "vae.latent_dim: Input should be a valid integer"),
    ({"vae": {"lr": 5.0}}, "vae.lr: Input should be less than or equal to 1"),
    ({"evaluate": {"classifiers": ["xgboost"], "promote_classifier": "xgboost"}},
     "evaluate.classifiers.0"),
    ({"generate": {"n_per_clas": 3}}, "generate.n_per_clas: unknown key"),
    ({"vae": {"arch": "resnet"}}, "vae.arch: Input should be 'auto', 'mlp' or 'conv'"),
    ({"extractor": {"arch": "vit"}}, "extractor.arch"),
    ({"generate": {"latent": "flow"}}, "generate.latent"),
])
def test_bad_params_name_the_key(ws, raw, needle):
    (ws / "params.yaml").write_text(yaml.safe_dump(merged(TINY, raw)))
    _expect_clean_failure(ws, "generate", needle)


def test_too_few_rows_per_class_and_a_single_class():
    with pytest.raises(AugflowError, match="class 1 has 2 rows") as err:
        split_dataset(np.array([0, 0, 0, 0, 0, 0, 1, 1]), DataConfig(), 0)
    assert err.value.field == "label" and err.value.rule == "rows_per_class"
    with pytest.raises(AugflowError, match="at least two classes"):
        split_dataset(np.zeros(8, np.int64), DataConfig(), 0)
