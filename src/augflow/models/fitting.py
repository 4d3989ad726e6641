"""A plain mini-batch loop with early stopping on a validation loss, shared by every model we fit."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

log = logging.getLogger("augflow.fit")

# loss_fn(model, x, y) -> (scalar loss to minimise, {name: float} parts for the curve)
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class FitResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)


class DivergedError(RuntimeError):
    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}: loss={loss}")
        self.epoch = epoch


def fit(model: nn.Module, loss_fn: LossFn, x_train: torch.Tensor, y_train: torch.Tensor,
        x_val: torch.Tensor, y_val: torch.Tensor, *, lr: float, batch_size: int,
        max_epochs: int, patience: int, seed: int, weight_decay: float = 0.0,
        name: str = "model") -> FitResult:
    """Train in place; on return `model` holds the weights of the best validation epoch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_loss, best_epoch, stale = None, math.inf, 0, 0
    history: list[dict[str, float]] = []
    n = len(x_train)
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            loss, _ = loss_fn(model, x_train[idx], y_train[idx])
            if not torch.isfinite(loss):
                raise DivergedError(epoch, float(loss))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        model.eval()
        with torch.no_grad():
            val_loss, parts = loss_fn(model, x_val, y_val)
        val_loss = float(val_loss)
        history.append({"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss,
                        **{f"val_{k}": v for k, v in parts.items()}})
        if val_loss < best_loss - 1e-6:
            best_loss, best_epoch, stale = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if epoch % 25 == 0 or epoch == 1:
            log.info("%s epoch %d train=%.4f val=%.4f best=%.4f@%d", name, epoch,
                     total / seen, val_loss, best_loss, best_epoch)
        if stale >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(best_epoch=best_epoch, best_val_loss=best_loss, epochs_run=len(history),
                     history=history)
