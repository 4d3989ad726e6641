"""Stage train: fit the conditional VAE on real train rows, early-stopped on validation ELBO."""

from __future__ import annotations

import hashlib
import io as _io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from augflow.config import ClassicConfig, VAEConfig
from augflow.checkpoints import save_cvae
from augflow.data.copies import copies_for, with_classic_copies
from augflow.data.schema import read_schema, read_xy
from augflow.device import resolve_device
from augflow.errors import AugflowError
from augflow.io import write_bytes
from augflow.models.latent import fit_class_latents
from augflow.models.fitting import DivergedError
from augflow.models.group import group_device, join_group, torchrun_group, train_cvae_processes
from augflow.models.vae_fit import train_cvae
from augflow.paths import Paths


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


@dataclass(frozen=True)
class _ResumeWriter:
    """Writes the fit's resumable state; a plain object, not a closure, so it pickles into the
    training processes of vae.processes > 1 (rank 0 calls it)."""
    path: Path
    fingerprint: str

    def __call__(self, state: dict) -> None:
        buf = _io.BytesIO()
        torch.save({**state, "fingerprint": self.fingerprint}, buf)
        write_bytes(self.path, buf.getvalue())


def run_train(cfg: VAEConfig, seed: int, paths: Paths, device: str = "auto",
              classic: ClassicConfig = ClassicConfig()) -> dict | None:
    """Fit the CVAE on the train rows (plus classic copies for images), early-stopped on
    validation, resuming an interrupted run of the same config and data; write the checkpoint
    (with the per-class latent fits) and the loss curve. `device`: params.yaml's, resolved
    here; the checkpoint holds CPU tensors whichever device trained it.

    vae.processes > 1: the fit runs in that many processes of a torch.distributed group
    (augflow.models.group). Started by torchrun (`torchrun ... -m augflow.cli train`), this
    process is one member of torchrun's group: every member fits, rank 0 alone writes, and the
    other members return None (nothing to record)."""
    from augflow.plots import loss_curve_png   # matplotlib: only when the curve is drawn

    dev = resolve_device(device)
    schema = read_schema(paths.schema)
    x_real, y_real = read_xy(paths.split("train"), schema)
    copies = copies_for(cfg.train_copies, len(x_real), cfg.epoch_rows)
    x, y = with_classic_copies(x_real, y_real, copies, schema.image_shape, seed, classic)
    xv, yv = read_xy(paths.split("val"), schema)
    fingerprint = _fingerprint(cfg, seed, x, y, xv, yv)
    resume = _load_resume(paths.train_resume, fingerprint)

    save_state = _ResumeWriter(paths.train_resume, fingerprint)
    group = torchrun_group()
    try:
        if group is not None:
            rank, world, local = group
            gdev = group_device(dev, local)
            join_group(rank, world, gdev)
            try:
                model, result, lr = train_cvae(x, y, xv, yv, schema.n_classes, cfg, seed,
                                               resume, save_state if rank == 0 else None,
                                               schema.image_shape, gdev, rank=rank, world=world)
            finally:
                torch.distributed.destroy_process_group()
            if rank != 0:
                return None
        elif cfg.processes > 1:
            model, result, lr = train_cvae_processes(x, y, xv, yv, schema.n_classes, cfg, seed,
                                                     cfg.processes, resume, save_state,
                                                     schema.image_shape, dev)
        else:
            model, result, lr = train_cvae(x, y, xv, yv, schema.n_classes, cfg, seed, resume,
                                           save_state, schema.image_shape, dev)
    except DivergedError as err:
        raise AugflowError(f"{err}; gave up after {cfg.divergence_retries} retries with a "
                           f"lower learning rate", field="vae.lr", rule="finite loss") from None
    latents = fit_class_latents(model, torch.from_numpy(x_real), torch.from_numpy(y_real),
                                schema.n_classes, seed=seed)
    save_cvae(paths.checkpoint, model, schema, latents)
    paths.train_resume.unlink(missing_ok=True)
    curve = pd.DataFrame(result.history)
    write_bytes(paths.train_curve, curve.to_csv(index=False, float_format="%.6f").encode())
    # the same curve as a PNG: dvc plots show draws the CSV with Vega, which offline it cannot
    used_copies = copies if schema.image_shape else 0   # tables get none
    write_bytes(paths.train_curve_png, loss_curve_png(curve, used_copies))
    return {"arch": model.hparams().get("arch", "mlp"), "n_train_rows": int(len(x)),
            "train_copies": used_copies, "steps": result.steps,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run, "lr_used": lr, "resumed": resume is not None,
            "processes": cfg.processes if group is None else group[1],
            "best_val_loss": result.best_val_loss,
            "final_val_recon": result.history[result.best_epoch - 1]["val_recon"],
            "final_val_kl": result.history[result.best_epoch - 1]["val_kl"]}
