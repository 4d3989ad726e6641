"""Model checkpoints on disk: the CVAE (train -> generate, filter, track) and the feature
extractor (filter -> evaluate). One format and one loader for both, so a missing, truncated or
foreign file gets the same clear error whichever model it was meant to hold.

A checkpoint is a dict of plain tensors and builtins (`state_dict`, the model's `hparams()`,
and for the CVAE the schema and the per-class latent fits), so `torch.load(weights_only=True)`
reads it and `models.factory` rebuilds the module from `hparams` alone. The tensors are saved
from the CPU whatever device the model trained on, so a file loads the same everywhere."""

from __future__ import annotations

import io as _io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch
from torch import nn

from augflow.data.schema import Schema
from augflow.device import state_on_cpu
from augflow.errors import AugflowError
from augflow.io import write_bytes

if TYPE_CHECKING:
    from augflow.models.classifier import ClassifierBase
    from augflow.models.cvae import CVAEBase

# The model class the build function returns, so each loader returns its own family.
M = TypeVar("M", bound=nn.Module)

CVAE = "checkpoint"
EXTRACTOR = "feature extractor"
# Which stage writes each kind: what a broken file's error tells the user to rerun.
_WRITER = {CVAE: "train", EXTRACTOR: "filter"}


def _save(path: str | Path, content: dict) -> None:
    buf = _io.BytesIO()
    torch.save(content, buf)
    write_bytes(path, buf.getvalue())


def _load(path: str | Path, what: str, build: Callable[[dict], M]) -> tuple[M, dict]:
    """(the rebuilt model in eval mode, the checkpoint dict); every failure is one line."""
    rerun = f"rerun the {_WRITER[what]} stage"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AugflowError(f"{what} not found; {rerun}", file=str(path), rule="exists") from None
    except Exception as err:     # truncated or foreign bytes
        raise AugflowError(f"cannot load {what} ({type(err).__name__}); {rerun}", file=str(path),
                           rule="readable") from None
    try:
        model = build(ckpt["hparams"])
        model.load_state_dict(ckpt["state_dict"])
    except Exception as err:     # a readable file of some other shape
        # torch's mismatch report lists every key over many lines: keep its first line, short,
        # so the message stays one line and still ends with what to do
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
        raise AugflowError(f"not a {what} file ({type(err).__name__}: {detail}); {rerun}",
                           file=str(path), rule="readable") from None
    return model.eval(), ckpt


def save_cvae(path: str | Path, model: CVAEBase, schema: Schema, latents: dict | None = None) -> None:
    _save(path, {"state_dict": state_on_cpu(model.state_dict()), "hparams": model.hparams(),
                 "schema": schema.to_dict(), "latents": latents})


def load_cvae(path: str | Path) -> tuple[CVAEBase, Schema, dict | None]:
    """The CVAE, the schema it was trained on, and its per-class latent fits (or None)."""
    from augflow.models.factory import build_cvae

    model, ckpt = _load(path, CVAE, build_cvae)
    return model, Schema.from_dict(ckpt["schema"], str(path)), ckpt.get("latents")


def save_extractor(path: str | Path, model: ClassifierBase) -> None:
    _save(path, {"state_dict": state_on_cpu(model.state_dict()), "hparams": model.hparams()})


def load_extractor(path: str | Path) -> ClassifierBase:
    from augflow.models.factory import build_classifier

    model, _ = _load(path, EXTRACTOR, build_classifier)
    return model
