"""Stage train: fit the conditional VAE on real train rows, early-stopped on validation ELBO."""

from __future__ import annotations

import io as _io

import numpy as np
import pandas as pd
import torch

from augflow.config import VAEConfig
from augflow.data.table import split_xy
from augflow.io import read_json, read_parquet, write_bytes
from augflow.models.cvae import CVAE, cvae_loss
from augflow.models.fitting import fit
from augflow.paths import Paths
from augflow.scaling import RangeScaler


def train_cvae(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
               n_classes: int, cfg: VAEConfig, seed: int):
    """Fit on rows already scaled to [0, 1]. Returns the model and its FitResult."""
    torch.manual_seed(seed)
    model = CVAE(x.shape[1], n_classes, cfg.latent_dim, cfg.hidden_dims)

    def loss_fn(m, xb, yb):
        parts = cvae_loss(m(xb, yb), xb, cfg.beta)
        return parts.total, {"recon": parts.recon.item(), "kl": parts.kl.item()}

    result = fit(model, loss_fn, torch.from_numpy(x), torch.from_numpy(y),
                 torch.from_numpy(x_val), torch.from_numpy(y_val), lr=cfg.lr,
                 batch_size=cfg.batch_size, max_epochs=cfg.max_epochs, patience=cfg.patience,
                 seed=seed, name="cvae")
    return model.eval(), result


def save_checkpoint(path, model: CVAE, schema: dict) -> None:
    # Plain tensors and builtins only, so loading works with torch.load(weights_only=True).
    buf = _io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "hparams": model.hparams(), "schema": schema}, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(path) -> tuple[CVAE, dict]:
    from augflow.errors import AugflowError

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AugflowError("checkpoint not found", file=str(path), rule="exists") from None
    except Exception as err:
        raise AugflowError(f"cannot load checkpoint ({err})", file=str(path),
                           rule="readable") from None
    h = ckpt["hparams"]
    model = CVAE(h["n_features"], h["n_classes"], h["latent_dim"], tuple(h["hidden_dims"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["schema"]


def run_train(cfg: VAEConfig, seed: int, paths: Paths) -> dict:
    schema = read_json(paths.schema)
    scaler = RangeScaler.from_schema(schema)
    feats = schema["features"]
    x, y = split_xy(read_parquet(paths.split("train")), feats, str(paths.split("train")))
    xv, yv = split_xy(read_parquet(paths.split("val")), feats, str(paths.split("val")))
    model, result = train_cvae(scaler.transform(x), y, scaler.transform(xv), yv,
                               len(schema["classes"]), cfg, seed)
    save_checkpoint(paths.checkpoint, model, schema)
    curve = pd.DataFrame(result.history)
    write_bytes(paths.train_curve, curve.to_csv(index=False, float_format="%.6f").encode())
    return {"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "best_val_loss": result.best_val_loss,
            "final_val_recon": result.history[result.best_epoch - 1]["val_recon"],
            "final_val_kl": result.history[result.best_epoch - 1]["val_kl"]}
