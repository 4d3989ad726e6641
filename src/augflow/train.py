"""Stage train: fit the conditional VAE on real train rows, early-stopped on validation ELBO."""

from __future__ import annotations

import hashlib
import io as _io

import numpy as np
import pandas as pd
import torch

from augflow.config import VAEConfig
from augflow.data.table import read_xy
from augflow.errors import AugflowError
from augflow.io import read_json, write_bytes
from augflow.models.arch import pick_arch
from augflow.models.cvae import CVAE, cvae_loss
from augflow.models.latent import fit_class_latents
from augflow.models.fitting import DivergedError, fit, with_lr_backoff
from augflow.paths import Paths


def make_cvae(cfg: VAEConfig, n_features: int, n_classes: int, image_shape=None):
    """The MLP CVAE for tables and small images, the convolutional one for larger images."""
    if pick_arch(cfg.arch, image_shape, "conv", "vae.arch") == "conv":
        from augflow.models.conv import ConvCVAE
        return ConvCVAE(tuple(image_shape), n_classes, cfg.latent_dim, cfg.conv_channels)
    return CVAE(n_features, n_classes, cfg.latent_dim, cfg.hidden_dims)


def train_cvae(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               n_classes: int, cfg: VAEConfig, seed: int, resume: dict | None = None,
               on_state=None, image_shape=None):
    """Fit on rows already in model space ([0, 1]); on a NaN/inf loss retry with a lower
    learning rate. Returns the model, its FitResult and the learning rate that worked."""
    def loss_fn(m, xb, yb):
        parts = cvae_loss(m(xb, yb), xb, cfg.beta)
        return parts.total, {"recon": parts.recon.item(), "kl": parts.kl.item()}

    holder: dict = {}

    def attempt(lr: float):
        torch.manual_seed(seed)
        holder["model"] = make_cvae(cfg, x.shape[1], n_classes, image_shape)
        state = resume if resume is not None and resume.get("lr") == lr else None
        emit = (lambda st: on_state({**st, "lr": lr})) if on_state else None
        return fit(holder["model"], loss_fn, torch.from_numpy(x), torch.from_numpy(y),
                   torch.from_numpy(x_val), torch.from_numpy(y_val), lr=lr,
                   batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
                   seed=seed, name="cvae", resume=state, on_state=emit,
                   state_every=cfg.resume_every)

    start_lr = resume["lr"] if resume is not None else cfg.lr
    result, lr = with_lr_backoff(attempt, start_lr, cfg.divergence_retries, cfg.lr_backoff, "cvae")
    return holder["model"].eval(), result, lr


def save_checkpoint(path, model, schema: dict, latents: dict | None = None) -> None:
    # Plain tensors and builtins only, so loading works with torch.load(weights_only=True).
    buf = _io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hparams": model.hparams(), "schema": schema,
                "latents": latents}, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(path):
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AugflowError("checkpoint not found", file=str(path), rule="exists") from None
    except Exception as err:
        raise AugflowError(f"cannot load checkpoint ({err})", file=str(path),
                           rule="readable") from None
    from augflow.models.factory import build_cvae

    model = build_cvae(ckpt["hparams"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["schema"], ckpt.get("latents")


def _fingerprint(cfg: VAEConfig, seed: int, *arrays: np.ndarray) -> str:
    h = hashlib.sha256(cfg.model_dump_json().encode() + str(seed).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _load_resume(path, fingerprint: str) -> dict | None:
    """A resumable state from an interrupted run of the same config and data, if any."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:          # a state from a crash mid-write is ignored, never trusted
        return None
    return state if state.get("fingerprint") == fingerprint else None


def with_classic_copies(x: np.ndarray, y: np.ndarray, copies: int, image_shape,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images: the real rows plus `copies` shifted/rotated copies of each, what the VAE trains
    on. Tables (no image shape) or copies=0: the real rows as they are."""
    if not image_shape or copies == 0 or len(x) == 0:
        return x, y
    from augflow.arms import classic_rows

    extra = {int(c): copies * int((y == c).sum()) for c in np.unique(y)}
    return classic_rows(x, y, extra, tuple(image_shape), seed)


def run_train(cfg: VAEConfig, seed: int, paths: Paths) -> dict:
    schema = read_json(paths.schema)
    x_real, y_real = read_xy(paths.split("train"), schema)
    x, y = with_classic_copies(x_real, y_real, cfg.train_copies, schema.get("image_shape"), seed)
    xv, yv = read_xy(paths.split("val"), schema)
    fingerprint = _fingerprint(cfg, seed, x, y, xv, yv)
    resume = _load_resume(paths.train_resume, fingerprint)

    def save_state(state: dict) -> None:
        buf = _io.BytesIO()
        torch.save({**state, "fingerprint": fingerprint}, buf)
        write_bytes(paths.train_resume, buf.getvalue())

    try:
        model, result, lr = train_cvae(x, y, xv, yv, len(schema["classes"]), cfg, seed, resume,
                                       save_state, schema.get("image_shape"))
    except DivergedError as err:
        raise AugflowError(f"{err}; gave up after {cfg.divergence_retries} retries with a "
                           f"lower learning rate", field="vae.lr", rule="finite loss") from None
    latents = fit_class_latents(model, torch.from_numpy(x_real), torch.from_numpy(y_real),
                                len(schema["classes"]))
    save_checkpoint(paths.checkpoint, model, schema, latents)
    paths.train_resume.unlink(missing_ok=True)
    curve = pd.DataFrame(result.history)
    write_bytes(paths.train_curve, curve.to_csv(index=False, float_format="%.6f").encode())
    return {"arch": model.hparams().get("arch", "mlp"), "n_train_rows": int(len(x)),
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run, "lr_used": lr, "resumed": resume is not None,
            "best_val_loss": result.best_val_loss,
            "final_val_recon": result.history[result.best_epoch - 1]["val_recon"],
            "final_val_kl": result.history[result.best_epoch - 1]["val_kl"]}
