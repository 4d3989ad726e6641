"""The domain feature extractor: fitted on real train rows, early-stopped on real val rows."""

from __future__ import annotations

import io as _io

import numpy as np
import torch

from augflow.config import ExtractorConfig
from augflow.errors import AugflowError
from augflow.io import write_bytes
from augflow.models.arch import pick_arch
from augflow.models.classifier import MLPClassifier, classification_loss
from augflow.models.fitting import FitResult, fit


def make_extractor(cfg: ExtractorConfig, n_features: int, n_classes: int, image_shape=None):
    """An MLP for tables and small images, a small CNN for larger images."""
    if pick_arch(cfg.arch, image_shape, "cnn", "extractor.arch") == "cnn":
        from augflow.models.conv import CNNClassifier
        return CNNClassifier(tuple(image_shape), n_classes, cfg.conv_channels, cfg.hidden_dims[-1])
    return MLPClassifier(n_features, n_classes, cfg.hidden_dims)


def fit_extractor(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                  n_classes: int, cfg: ExtractorConfig, seed: int,
                  image_shape=None) -> tuple[torch.nn.Module, FitResult]:
    torch.manual_seed(seed)
    model = make_extractor(cfg, x.shape[1], n_classes, image_shape)
    result = fit(model, classification_loss, torch.from_numpy(x), torch.from_numpy(y),
                 torch.from_numpy(x_val), torch.from_numpy(y_val), lr=cfg.lr,
                 batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 seed=seed, weight_decay=cfg.weight_decay, name="extractor")
    return model.eval(), result


def save_extractor(path, model) -> None:
    buf = _io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hparams": model.hparams()}, buf)
    write_bytes(path, buf.getvalue())


def load_extractor(path):
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AugflowError("feature extractor not found", file=str(path), rule="exists") from None
    except Exception as err:   # truncated or foreign bytes: as the VAE checkpoint's loader
        raise AugflowError(f"cannot load feature extractor ({type(err).__name__}); rerun the "
                           "filter stage", file=str(path), rule="readable") from None
    from augflow.models.factory import build_classifier

    try:
        model = build_classifier(ckpt["hparams"])
        model.load_state_dict(ckpt["state_dict"])
    except Exception as err:
        raise AugflowError(f"not a feature extractor checkpoint ({type(err).__name__}); rerun "
                           "the filter stage", file=str(path), rule="readable") from None
    return model.eval()
