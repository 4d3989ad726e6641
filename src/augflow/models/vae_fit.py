"""Fitting the conditional VAE: the model for the data's shape, and the early-stopped fit with a
lower learning rate after a NaN/inf loss. Arrays in, a fitted module out; no files."""

from __future__ import annotations

import numpy as np
import torch

from augflow.config import VAEConfig
from augflow.models.arch import pick_arch, step_budget
from augflow.models.cvae import CVAE, cvae_loss
from augflow.models.fitting import FitSettings, fit, with_lr_backoff


def make_cvae(cfg: VAEConfig, n_features: int, n_classes: int, image_shape=None):
    """The MLP CVAE for tables and small images, the convolutional one for larger images."""
    if pick_arch(cfg.arch, image_shape, "conv", "vae.arch") == "conv":
        from augflow.models.conv import ConvCVAE
        return ConvCVAE(tuple(image_shape), n_classes, cfg.latent_dim, cfg.conv_channels)
    return CVAE(n_features, n_classes, cfg.latent_dim, cfg.hidden_dims)


def train_cvae(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               n_classes: int, cfg: VAEConfig, seed: int, resume: dict | None = None,
               on_state=None, image_shape=None, device: torch.device | None = None,
               rank: int = 0, world: int = 1):
    """Fit on rows already in model space ([0, 1]); on a NaN/inf loss retry with a lower
    learning rate. Returns the model (on `device`; None: the CPU), its FitResult and the
    learning rate that worked. `rank`/`world`: this process's place in an initialised
    torch.distributed group (augflow.models.group); every process returns the same model."""
    def loss_fn(m, xb, yb):
        parts = cvae_loss(m(xb, yb), xb, cfg.beta)
        return parts.total, {"recon": parts.recon.item(), "kl": parts.kl.item()}

    holder: dict = {}
    max_steps = step_budget(cfg.max_steps, pick_arch(cfg.arch, image_shape, "conv", "vae.arch"),
                            "conv")

    def attempt(lr: float):
        torch.manual_seed(seed)
        holder["model"] = make_cvae(cfg, x.shape[1], n_classes, image_shape)
        state = resume if resume is not None and resume.get("lr") == lr else None
        emit = (lambda st: on_state({**st, "lr": lr})) if on_state else None
        settings = FitSettings(lr=lr, batch_size=cfg.batch_size, max_epochs=cfg.max_epochs,
                               patience=cfg.patience, seed=seed, name="cvae",
                               state_every=cfg.resume_every, device=device,
                               epoch_rows=cfg.epoch_rows, max_steps=max_steps,
                               val_rows=cfg.val_rows, rank=rank, world=world)
        return fit(holder["model"], loss_fn, (torch.from_numpy(x), torch.from_numpy(y)),
                   (torch.from_numpy(x_val), torch.from_numpy(y_val)), settings, state, emit)

    start_lr = resume["lr"] if resume is not None else cfg.lr
    result, lr = with_lr_backoff(attempt, start_lr, cfg.divergence_retries, cfg.lr_backoff, "cvae")
    return holder["model"].eval(), result, lr
