"""Bad params and bad data stop the pipeline with a message naming the problem."""

from __future__ import annotations


import numpy as np
import pandas as pd

from conftest import TINY, augflow, dvc, make_workspace, merged


def test_unknown_key_and_out_of_range_value_name_the_key(tmp_path):
    ws = make_workspace(tmp_path / "ws", merged(TINY, {"vae": {"beta": -1.0, "lattent_dim": 4}}))
    proc = augflow(ws, "check-params")
    assert proc.returncode == 2
    assert "vae.beta" in proc.stderr and "greater than 0" in proc.stderr
    assert "vae.lattent_dim: unknown key" in proc.stderr
    proc = dvc(ws, "repro", check=False)
    assert proc.returncode != 0
    assert "vae.beta" in proc.stdout + proc.stderr
    assert not (ws / "data/prepared/train.parquet").exists()   # nothing ran


def test_failed_validation_stops_before_training(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    dvc(ws, "repro", "validate")
    good = (ws / "data/reports/validation.json").read_bytes()
    good_docs = (ws / "data/reports/data_docs/index.html").read_bytes()
    train_path = ws / "data/prepared/train.parquet"
    df = pd.read_parquet(train_path)
    df.loc[3, "pixel_2_3"] = np.nan
    df.loc[5, "pixel_4_4"] = 99.0
    df.to_parquet(train_path, index=False)
    # Validate and everything after it (plain `dvc repro` would first rebuild the split).
    proc = dvc(ws, "repro", "--downstream", "validate", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "data validation failed" in out
    # Images are checked per image; the failure still names the offending pixel columns.
    assert "[train_pixels] expect_column_values_to_be_in_set column='first_bad_pixel'" in out
    assert "'pixel_2_3'" in out and "'pixel_4_4'" in out
    assert "column='non_finite'" in out and "column='pixel_max'" in out
    assert not (ws / "data/models/cvae.pt").exists()             # train never ran
    assert (ws / "data/reports/validation_failed.json").is_file()
    # the failing run's Data Docs sit beside the last good ones, which stay as they were
    assert (ws / "data/reports/data_docs/index.html").read_bytes() == good_docs
    assert (ws / "data/reports/data_docs_failed/index.html").is_file()
    assert "data_docs_failed/index.html" in out
    # DVC removes a stage's outs before running it; the last good result stays in its cache
    # and dvc.lock still names it, so a checkout brings back the same bytes.
    dvc(ws, "checkout", "data/reports/validation.json")
    assert (ws / "data/reports/validation.json").read_bytes() == good


def test_rows_shared_by_train_and_test_fail_validation(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    dvc(ws, "repro", "prepare")
    test_path = ws / "data/prepared/test.parquet"
    train = pd.read_parquet(ws / "data/prepared/train.parquet")
    test = pd.read_parquet(test_path)
    pd.concat([test, train.iloc[:2]], ignore_index=True).to_parquet(test_path, index=False)
    proc = augflow(ws, "validate")
    assert proc.returncode == 2
    assert "test_vs_train" in proc.stderr and "expect_column_values_to_not_be_in_set" in proc.stderr
