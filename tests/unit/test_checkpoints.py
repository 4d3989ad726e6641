"""augflow.checkpoints: the CVAE and feature-extractor files, their round trip and the one clear
error for a missing, truncated or foreign file."""

from __future__ import annotations

import io

import pandas as pd
import pytest
import torch

from augflow.checkpoints import load_cvae, load_extractor, save_cvae, save_extractor
from augflow.data.preprocess import Encoder
from augflow.data.schema import Schema
from augflow.errors import AugflowError
from augflow.io import write_bytes
from augflow.models.classifier import MLPClassifier
from augflow.models.conv import CNNClassifier, ConvCVAE
from augflow.models.cvae import CVAE
from augflow.models.factory import build_cvae


def _schema() -> Schema:
    train = pd.DataFrame({f"x{i}": [0.0, float(i + 1)] for i in range(6)} | {"label": [0, 1]})
    return Schema(kind="table", origin="npz:t.npz", label_column="label",
                  features=[f"x{i}" for i in range(6)], categorical=[], classes=[0, 1],
                  class_names=["no", "yes"], image_shape=None, pixel_range=None, declared={},
                  encoder=Encoder.fit(train, (), {}))


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _cvae() -> CVAE:
    torch.manual_seed(0)
    return CVAE(6, 2, latent_dim=3, hidden_dims=(8, 5))


def test_a_cvae_round_trips_with_its_schema_and_latent_fits(tmp_path):
    model, schema = _cvae(), _schema()
    latents = {"mean": torch.randn(2, 3), "chol": torch.eye(3).repeat(2, 1, 1)}
    path = tmp_path / "models" / "cvae.pt"
    save_cvae(path, model, schema, latents)
    assert sorted(p.name for p in path.parent.iterdir()) == ["cvae.pt"]     # no temp file left
    loaded, schema2, latents2 = load_cvae(path)
    assert type(loaded) is CVAE and not loaded.training
    assert loaded.hparams() == model.hparams() == {"arch": "mlp", "n_features": 6, "n_classes": 2,
                                                   "latent_dim": 3, "hidden_dims": [8, 5]}
    assert _same_weights(loaded, model)
    assert schema2.to_dict() == schema.to_dict() and schema2.class_names == ["no", "yes"]
    assert torch.equal(latents2["mean"], latents["mean"])
    assert torch.equal(latents2["chol"], latents["chol"])
    x, y = torch.rand(4, 6), torch.tensor([0, 1, 0, 1])
    assert torch.equal(loaded.reconstruction_error(x, y), model.eval().reconstruction_error(x, y))


def test_a_cvae_without_latent_fits_loads_none(tmp_path):
    save_cvae(tmp_path / "cvae.pt", _cvae(), _schema())
    _, _, latents = load_cvae(tmp_path / "cvae.pt")
    assert latents is None


def test_a_conv_cvae_is_rebuilt_from_its_hparams(tmp_path):
    torch.manual_seed(0)
    model = ConvCVAE((8, 8, 1), 2, latent_dim=3, channels=(4, 8))
    assert type(build_cvae(model.hparams())) is ConvCVAE
    save_cvae(tmp_path / "cvae.pt", model, _schema())
    loaded, _, _ = load_cvae(tmp_path / "cvae.pt")
    assert type(loaded) is ConvCVAE and loaded.hparams() == model.hparams()
    assert _same_weights(loaded, model)


def test_an_extractor_round_trips(tmp_path):
    torch.manual_seed(0)
    for model in (MLPClassifier(6, 3, (8, 4)), CNNClassifier((8, 8, 1), 3, (4, 8), 5)):
        save_extractor(tmp_path / "extractor.pt", model)
        loaded = load_extractor(tmp_path / "extractor.pt")
        assert type(loaded) is type(model) and not loaded.training
        assert loaded.hparams() == model.hparams() and _same_weights(loaded, model)
        x = torch.rand(3, model.n_features)
        assert torch.equal(loaded.embed(x), model.eval().embed(x))


def _broken(tmp_path, kind: str):
    path = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        save_cvae(path, _cvae(), _schema())
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":
        path.write_text("not a torch file at all\n")
    elif kind == "pickle":      # a full pickle, refused by weights_only=True
        torch.save({"hparams": {"n_features": 6}, "obj": object.__new__(Schema)}, path)
    return path


@pytest.mark.parametrize("load, stage", [(load_cvae, "train"), (load_extractor, "filter")])
def test_a_missing_file_says_which_stage_to_rerun(tmp_path, load, stage):
    path = tmp_path / "nope.pt"
    with pytest.raises(AugflowError) as info:
        load(path)
    assert (info.value.file, info.value.rule) == (str(path), "exists")
    assert f"rerun the {stage} stage" in str(info.value) and "not found" in str(info.value)


@pytest.mark.parametrize("kind", ["truncated", "empty", "foreign", "pickle"])
@pytest.mark.parametrize("load, stage", [(load_cvae, "train"), (load_extractor, "filter")])
def test_an_unreadable_file_says_which_stage_to_rerun(tmp_path, load, stage, kind):
    path = _broken(tmp_path, kind)
    with pytest.raises(AugflowError) as info:
        load(path)
    assert (info.value.file, info.value.rule) == (str(path), "readable")
    assert f"rerun the {stage} stage" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_torch_file_of_something_else_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)        # readable, but no hparams
    for load, what, stage in ((load_cvae, "checkpoint", "train"),
                              (load_extractor, "feature extractor", "filter")):
        with pytest.raises(AugflowError) as info:
            load(path)
        assert info.value.rule == "readable" and f"not a {what} file" in str(info.value)
        assert f"rerun the {stage} stage" in str(info.value)


def test_an_extractor_file_loaded_as_the_cvae_is_refused(tmp_path):
    path = tmp_path / "extractor.pt"
    save_extractor(path, MLPClassifier(6, 2, (8,)))
    with pytest.raises(AugflowError) as info:
        load_cvae(path)
    assert (info.value.file, info.value.rule) == (str(path), "readable")
    assert "not a checkpoint file (KeyError" in str(info.value)
    assert "rerun the train stage" in str(info.value)


def _cvae_as_extractor(tmp_path):
    """The CVAE's file where the extractor belongs: its weights fit no classifier."""
    path = tmp_path / "cvae.pt"
    save_cvae(path, _cvae(), _schema())
    return load_extractor, path, "feature extractor", "filter"


def _edited_hparams(tmp_path):
    """A CVAE file whose hparams no longer fit its weights (hand-edited or mixed up)."""
    path = tmp_path / "cvae.pt"
    save_cvae(path, _cvae(), _schema())
    ckpt = torch.load(path, weights_only=True)
    ckpt["hparams"]["latent_dim"] = 4
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    write_bytes(path, buf.getvalue())
    return load_cvae, path, "checkpoint", "train"


@pytest.mark.parametrize("make", [_cvae_as_extractor, _edited_hparams])
def test_weights_that_do_not_fit_the_model_are_refused(tmp_path, make):
    load, path, what, _ = make(tmp_path)
    with pytest.raises(AugflowError) as info:
        load(path)
    assert (info.value.file, info.value.rule) == (str(path), "readable")
    assert f"not a {what} file (RuntimeError" in str(info.value)


@pytest.mark.parametrize("make", [_cvae_as_extractor, _edited_hparams])
def test_weights_that_do_not_fit_still_say_which_stage_to_rerun(tmp_path, make):
    load, path, _, stage = make(tmp_path)
    with pytest.raises(AugflowError) as info:
        load(path)
    assert f"rerun the {stage} stage" in str(info.value)
