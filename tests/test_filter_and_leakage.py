"""The filter rejects plainly bad rows and keeps clean ones; the test split never reaches
training, the feature extractor or any threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from augflow.config import config_from_dict
from augflow.paths import Paths

from conftest import REPO

# 2 classic copies of each real row, not 10: what is tested is the filter, not the VAE at its best
CFG = config_from_dict({"vae": {"max_epochs": 120, "patience": 15, "beta": 0.1, "train_copies": 2},
                        "generate": {"n_per_class": 60},
                        "extractor": {"max_epochs": 80, "patience": 10}})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Paths:
    """prepare -> train -> generate in-process, with the test split removed before training."""
    from augflow.stages.generate import run_generate
    from augflow.stages.prepare import run_prepare
    from augflow.stages.train import run_train

    paths = Paths(tmp_path_factory.mktemp("filter"))
    run_prepare(CFG.data, CFG.seed, paths)
    # Nothing before evaluate may read the test split: take it away and everything still runs.
    paths.split("test").rename(paths.root / "held_out_test.parquet")
    run_train(CFG.vae, CFG.seed, paths)
    run_generate(CFG.generate, CFG.seed, paths)
    return paths


def _bad_rows(paths: Paths, rng) -> pd.DataFrame:
    train = pd.read_parquet(paths.split("train"))
    feats = [c for c in train.columns if c != "label"]
    n = 50
    noise = pd.DataFrame(rng.uniform(0, 16, size=(n, len(feats))), columns=feats)
    noise["label"] = rng.integers(0, 10, n)
    blank = pd.DataFrame(np.zeros((n, len(feats))), columns=feats)
    blank["label"] = rng.integers(0, 10, n)
    wrong = train.sample(n, random_state=1).reset_index(drop=True)
    wrong["label"] = (wrong["label"] + rng.integers(1, 10, n)) % 10
    copies = train.sample(n, random_state=2).reset_index(drop=True)
    parts = []
    for kind, df in (("noise", noise), ("blank", blank), ("wronglabel", wrong), ("copy", copies)):
        df = df.copy()
        df[feats] = df[feats].astype("float32")
        df["label"] = df["label"].astype("int64")
        df["sample_id"] = [f"bad-{kind}-{i}" for i in range(len(df))]
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def test_filter_rejects_planted_bad_rows_and_keeps_clean_samples(trained):
    from augflow.stages.filter import run_filter

    paths = trained
    clean = pd.read_parquet(paths.samples)
    bad = _bad_rows(paths, np.random.default_rng(0))
    # A synthetic table from "another generator": only features, label and sample_id.
    mixed = pd.concat([clean, bad], ignore_index=True)
    mixed.to_parquet(paths.samples, index=False)
    run_filter(CFG.filter, CFG.extractor, CFG.seed, paths)
    scores = pd.read_parquet(paths.scores)
    is_bad = scores["sample_id"].str.startswith("bad-")
    rejected_bad = (~scores.loc[is_bad, "kept"]).mean()
    kept_clean = scores.loc[~is_bad, "kept"].mean()
    by_kind = scores[is_bad].assign(kind=scores["sample_id"].str.split("-").str[1])
    assert rejected_bad >= 0.99, by_kind.groupby("kind")["kept"].mean()
    assert kept_clean >= 0.7, scores.loc[~is_bad, "reject_reason"].value_counts()
    copies = by_kind[by_kind["kind"] == "copy"]
    assert (copies["reject_reason"] == "near_copy").all() or (copies["copy_distance"] == 0).all()
    assert (scores.loc[~scores["kept"], "reject_reason"] != "").all()
    kept = pd.read_parquet(paths.kept)
    assert not kept["sample_id"].str.startswith("bad-").any()


def test_only_validate_and_evaluate_declare_the_test_split():
    dag = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    readers = {name for name, st in dag.items()
               if "data/prepared/test.parquet" in st.get("deps", [])}
    assert readers == {"validate", "evaluate"}


def test_filter_never_reads_the_test_split(trained):
    """The fixture removed test.parquet before train, generate and (here) filter ran."""
    from augflow.stages.filter import run_filter

    assert not trained.split("test").exists()
    metrics = run_filter(CFG.filter, CFG.extractor, CFG.seed, trained)
    assert metrics["n_generated"] > 0
    # digits are images: the extractor also learned from classic copies of the train rows
    assert metrics["extractor_train_copies"] == CFG.extractor.train_copies > 0
