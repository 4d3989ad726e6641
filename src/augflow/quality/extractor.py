"""The domain feature extractor: fitted on real train rows, early-stopped on real val rows."""

from __future__ import annotations

import io as _io

import numpy as np
import torch

from augflow.config import ExtractorConfig
from augflow.errors import AugflowError
from augflow.io import write_bytes
from augflow.models.classifier import MLPClassifier, classification_loss
from augflow.models.fitting import FitResult, fit


def fit_extractor(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                  n_classes: int, cfg: ExtractorConfig, seed: int) -> tuple[MLPClassifier, FitResult]:
    torch.manual_seed(seed)
    model = MLPClassifier(x.shape[1], n_classes, cfg.hidden_dims)
    result = fit(model, classification_loss, torch.from_numpy(x), torch.from_numpy(y),
                 torch.from_numpy(x_val), torch.from_numpy(y_val), lr=cfg.lr,
                 batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 seed=seed, weight_decay=cfg.weight_decay, name="extractor")
    return model.eval(), result


def save_extractor(path, model: MLPClassifier) -> None:
    buf = _io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hparams": model.hparams()}, buf)
    write_bytes(path, buf.getvalue())


def load_extractor(path) -> MLPClassifier:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AugflowError("feature extractor not found", file=str(path), rule="exists") from None
    h = ckpt["hparams"]
    model = MLPClassifier(h["n_features"], h["n_classes"], tuple(h["hidden_dims"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
