"""augflow.quality.sample_filter: per-sample scores, thresholds from real validation scores, and
the keep/reject decisions (per sample, then the per-class FID gate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from augflow.config import FidGate, FilterConfig, Threshold
from augflow.errors import AugflowError
from augflow.models.classifier import MLPClassifier
from augflow.models.cvae import CVAE
from augflow.quality.sample_filter import (CRITERIA, SCORE_COLUMNS, Reference, apply_class_gate,
                                           build_reference, class_gate, passes,
                                           per_sample_reasons, resolve_threshold, score_rows)


def _val_scores() -> pd.DataFrame:
    grid = np.linspace(0.0, 1.0, 101)                  # quantile q of the column is q itself
    return pd.DataFrame({c: grid for c in SCORE_COLUMNS})


CFG = FilterConfig(reconstruction=Threshold(kind="quantile", value=0.9),
                   consistency=Threshold(kind="absolute", value=0.5),
                   manifold=Threshold(kind="quantile", value=0.5),
                   near_copy=Threshold(kind="absolute", value=0.0))


def test_thresholds_are_quantiles_of_validation_scores_or_absolute():
    assert resolve_threshold(Threshold(kind="quantile", value=0.25), np.arange(5.0)) == 1.0
    assert resolve_threshold(Threshold(kind="absolute", value=7.5), np.arange(5.0)) == 7.5
    s = np.array([0.1, 0.5, 0.9])
    assert passes(s, 0.5, "<=").tolist() == [True, True, False]
    assert passes(s, 0.5, ">=").tolist() == [False, True, True]
    assert passes(s, 0.5, ">").tolist() == [False, False, True]


def test_per_sample_reasons_give_the_first_failing_criterion():
    scores = pd.DataFrame(
        #  recon  consistency  manifold  copy
        [[0.90, 0.50, 0.50, 0.01],    # every score exactly on its threshold's kept side: kept
         [0.95, 0.90, 0.10, 0.30],    # reconstruction error above the 0.9 quantile
         [0.10, 0.49, 0.10, 0.30],    # the class is not recognised
         [0.10, 0.90, 0.51, 0.30],    # too far from the train manifold
         [0.10, 0.90, 0.10, 0.00],    # an exact copy of a train row
         [0.99, 0.10, 0.90, 0.00]],   # fails all four: the first in CRITERIA order is reported
        columns=list(SCORE_COLUMNS))
    reason, thresholds = per_sample_reasons(scores, _val_scores(), CFG)
    assert reason.tolist() == ["", "reconstruction", "consistency", "manifold", "near_copy",
                               "reconstruction"]
    assert thresholds == pytest.approx({"reconstruction": 0.9, "consistency": 0.5,
                                        "manifold": 0.5, "near_copy": 0.0})
    assert list(thresholds) == [name for name, _, _ in CRITERIA]


def test_thresholds_follow_the_validation_scores_not_the_synthetic_ones():
    scores = pd.DataFrame({"recon_error": [0.3, 0.6], "consistency": [1.0, 1.0],
                           "manifold_ratio": [0.0, 0.0], "copy_distance": [1.0, 1.0]})
    val = _val_scores().assign(recon_error=np.linspace(0, 0.5, 101))   # 0.9 quantile: 0.45
    reason, thresholds = per_sample_reasons(scores, val, CFG)
    assert thresholds["reconstruction"] == pytest.approx(0.45)
    assert reason.tolist() == ["", "reconstruction"]


def _reference(rng, per_class=40, dim=3) -> Reference:
    f = rng.normal(size=(2 * per_class, dim))
    y = np.repeat([0, 1], per_class)
    return Reference(x_train=f.astype(np.float32), y_train=y, f_train=f, radii=np.ones(len(y)))


def test_class_gate_passes_a_class_like_train_and_drops_a_shifted_one():
    rng = np.random.default_rng(0)
    ref = _reference(rng)
    f_val, y_val = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    f_fake = np.vstack([rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 6.0])
    y_fake = np.repeat([0, 1], 30)
    gate = class_gate(f_fake, y_fake, f_val, y_val, ref, max_ratio=4.0)
    assert sorted(gate) == [0, 1] and all(type(c) is int for c in gate)
    for g in gate.values():
        assert g["ratio"] == pytest.approx(g["fid"] / g["floor"])
    assert gate[0]["passed"] and gate[0]["ratio"] < 4.0
    assert not gate[1]["passed"] and gate[1]["ratio"] > 4.0 and gate[1]["fid"] > 3 * 36 * 0.5


def test_class_gate_passes_a_class_with_too_few_rows_to_judge():
    rng = np.random.default_rng(1)
    ref = _reference(rng)
    f_val, y_val = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    f_fake = np.vstack([rng.normal(size=(2, 3)) + 50, rng.normal(size=(10, 3))])
    y_fake = np.array([0, 0] + [1] * 10)
    gate = class_gate(f_fake, y_fake, f_val, y_val, ref, max_ratio=4.0)
    assert gate[0] == {"fid": None, "floor": None, "ratio": None, "passed": True}
    assert gate[1]["fid"] is not None
    # only classes that have synthetic rows are judged
    assert set(class_gate(f_fake[2:], y_fake[2:], f_val, y_val, ref, 4.0)) == {1}


def _gate(passed: dict[int, bool]) -> dict[int, dict]:
    return {c: {"fid": 9.0 if not ok else 1.0, "floor": 1.0, "ratio": 9.0 if not ok else 1.0 + c,
                "passed": ok} for c, ok in passed.items()}


def test_apply_class_gate_drops_whole_classes_and_keeps_earlier_reasons():
    scores = pd.DataFrame({"recon_error": np.arange(6.0)})
    reason = np.array(["", "manifold", "", "", "consistency", ""], dtype=object)
    labels = np.array([0, 1, 1, 2, 2, 2])
    out = apply_class_gate(scores, reason, labels, _gate({0: True, 1: False, 2: True}), CFG)
    assert out["reject_reason"].tolist() == ["", "manifold", "class_gate", "", "consistency", ""]
    assert out["kept"].tolist() == [True, False, False, True, False, True]
    assert out["recon_error"].tolist() == list(np.arange(6.0))
    # the inputs are not changed
    assert "kept" not in scores.columns and reason.tolist()[2] == ""


def test_apply_class_gate_with_every_class_passing_keeps_the_per_sample_decisions():
    reason = np.array(["", "near_copy"], dtype=object)
    out = apply_class_gate(pd.DataFrame({"a": [1, 2]}), reason, np.array([0, 1]),
                           _gate({0: True, 1: True}), CFG)
    assert out["kept"].tolist() == [True, False]
    assert out["reject_reason"].tolist() == ["", "near_copy"]


def test_apply_class_gate_fails_on_the_worst_class_when_asked_to():
    cfg = FilterConfig(fid_gate=FidGate(max_ratio=4.0, action="fail"))
    gate = _gate({0: False, 1: True, 2: False})
    gate[2]["ratio"] = 12.0
    with pytest.raises(AugflowError) as info:
        apply_class_gate(pd.DataFrame({"a": [1, 2, 3]}), np.array(["", "", ""], dtype=object),
                         np.array([0, 1, 2]), gate, cfg)
    err = info.value
    assert (err.field, err.rule) == ("filter.fid_gate", "max_ratio")
    assert str(err).startswith("filter.fid_gate: class 2 synthetic FID is 12.00x the real floor")
    assert "[0, 2]" in str(err)
    # with every class passing, action=fail does not fail
    out = apply_class_gate(pd.DataFrame({"a": [1]}), np.array([""], dtype=object), np.array([1]),
                           _gate({1: True}), cfg)
    assert out["kept"].tolist() == [True]


def test_score_rows_gives_the_four_scores_and_a_zero_copy_distance_for_a_train_row():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x_train = rng.uniform(size=(20, 6)).astype(np.float32)
    y_train = np.repeat([0, 1], 10)
    vae = CVAE(6, 2, latent_dim=2, hidden_dims=(8,)).eval()
    extractor = MLPClassifier(6, 2, (8,)).eval()
    ref = build_reference(x_train, y_train, extractor, k=3, chunk=16)
    assert ref.f_train.shape == (20, 8) and ref.radii.shape == (20,)
    x = np.vstack([x_train[:2], rng.uniform(size=(3, 6)).astype(np.float32)])
    y = np.array([0, 0, 1, 1, 0])
    s = score_rows(x, y, vae, extractor, ref, chunk=16)
    assert list(s.columns) == list(SCORE_COLUMNS) and len(s) == 5
    assert (s.dtypes == np.float64).all()
    assert s["copy_distance"].tolist()[:2] == [0.0, 0.0] and (s["copy_distance"][2:] > 0).all()
    assert ((s["consistency"] >= 0) & (s["consistency"] <= 1)).all()
    probs = extractor.proba(torch.from_numpy(x)).numpy()
    assert np.allclose(s["consistency"], probs[np.arange(5), y])
    assert np.allclose(s["recon_error"],
                       vae.reconstruction_error(torch.from_numpy(x), torch.from_numpy(y)).numpy())
