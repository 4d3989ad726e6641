"""Rebuild a model from its `hparams()` dict (as stored in checkpoints). Checkpoints written
before the convolutional models existed carry no "arch" key: they are MLPs."""

from __future__ import annotations

from augflow.models.classifier import ClassifierBase, MLPClassifier
from augflow.models.conv import CNNClassifier, ConvCVAE
from augflow.models.cvae import CVAE, CVAEBase


def build_cvae(hparams: dict) -> CVAEBase:
    h = hparams
    arch = h.get("arch", "mlp")
    if arch == "mlp":
        return CVAE(h["n_features"], h["n_classes"], h["latent_dim"], tuple(h["hidden_dims"]))
    if arch == "conv":
        model = ConvCVAE(tuple(h["image_shape"]), h["n_classes"], h["latent_dim"],
                         tuple(h["channels"]))
        _check_features(model, h)
        return model
    raise ValueError(f"unknown CVAE arch {arch!r} (expected 'mlp' or 'conv')")


def build_classifier(hparams: dict) -> ClassifierBase:
    h = hparams
    arch = h.get("arch", "mlp")
    if arch == "mlp":
        return MLPClassifier(h["n_features"], h["n_classes"], tuple(h["hidden_dims"]))
    if arch == "cnn":
        model = CNNClassifier(tuple(h["image_shape"]), h["n_classes"], tuple(h["channels"]),
                              h["embed_dim"])
        _check_features(model, h)
        return model
    raise ValueError(f"unknown classifier arch {arch!r} (expected 'mlp' or 'cnn')")


def _check_features(model: CVAEBase | ClassifierBase, h: dict) -> None:
    # image_shape determines n_features; a mismatch means a corrupted or hand-edited dict.
    if "n_features" in h and h["n_features"] != model.n_features:
        raise ValueError(f"hparams n_features={h['n_features']} does not match "
                         f"image_shape {h['image_shape']} ({model.n_features} features)")
