"""The domain feature extractor: fitted on train rows (the filter stage adds classic copies for
images), early-stopped on real val rows."""

from __future__ import annotations

import numpy as np
import torch

from augflow.config import ExtractorConfig
from augflow.models.arch import pick_arch, step_budget
from augflow.models.classifier import ClassifierBase, MLPClassifier, classification_loss
from augflow.models.fitting import FitResult, FitSettings, fit


def make_extractor(cfg: ExtractorConfig, n_features: int, n_classes: int, image_shape=None):
    """An MLP for tables and small images, a small CNN for larger images."""
    if pick_arch(cfg.arch, image_shape, "cnn", "extractor.arch") == "cnn":
        from augflow.models.conv import CNNClassifier
        return CNNClassifier(tuple(image_shape), n_classes, cfg.conv_channels, cfg.hidden_dims[-1])
    return MLPClassifier(n_features, n_classes, cfg.hidden_dims)


def fit_extractor(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                  n_classes: int, cfg: ExtractorConfig, seed: int,
                  image_shape=None, device: torch.device | None = None
                  ) -> tuple[ClassifierBase, FitResult]:
    """The fitted extractor (on `device`; None: the CPU) and its FitResult."""
    torch.manual_seed(seed)
    model = make_extractor(cfg, x.shape[1], n_classes, image_shape)
    settings = FitSettings(lr=cfg.lr, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs,
                           patience=cfg.patience, patience_steps=cfg.patience_steps,
                           seed=seed, weight_decay=cfg.weight_decay,
                           name="extractor", device=device, epoch_rows=cfg.epoch_rows,
                           max_steps=step_budget(cfg.max_steps, pick_arch(
                               cfg.arch, image_shape, "cnn", "extractor.arch"), "cnn"),
                           val_rows=cfg.val_rows)
    result = fit(model, classification_loss, (torch.from_numpy(x), torch.from_numpy(y)),
                 (torch.from_numpy(x_val), torch.from_numpy(y_val)), settings)
    return model.eval(), result
