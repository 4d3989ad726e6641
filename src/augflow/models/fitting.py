"""A plain mini-batch loop with early stopping on a validation loss, shared by every model we fit.

It can hand its whole state to a callback every few epochs and resume from such a state with
identical results (the RNG states travel with it); it stops with DivergedError on a non-finite
loss. Where the state is stored is the caller's business: this module knows nothing of files."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from collections.abc import Callable

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
    def __init__(self, epoch: int, loss: float, lr: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}: loss={loss} (lr={lr:g})")
        self.epoch, self.loss, self.lr = epoch, loss, lr


def fit(model: nn.Module, loss_fn: LossFn, x_train: torch.Tensor, y_train: torch.Tensor,
        x_val: torch.Tensor, y_val: torch.Tensor, *, lr: float, batch_size: int,
        max_epochs: int, patience: int, seed: int, weight_decay: float = 0.0,
        name: str = "model", resume: dict | None = None,
        on_state: Callable[[dict], None] | None = None, state_every: int = 10) -> FitResult:
    """Train in place; on return `model` holds the weights of the best validation epoch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best_state, best_loss, best_epoch, stale = None, math.inf, 0, 0
    history: list[dict[str, float]] = []
    start = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        best_state, best_loss = resume["best_state"], resume["best_loss"]
        best_epoch, stale, history = resume["best_epoch"], resume["stale"], resume["history"]
        gen.set_state(resume["gen_state"])
        torch.set_rng_state(resume["torch_rng"])
        start = resume["epoch"] + 1
        log.info("%s resumed after epoch %d", name, resume["epoch"])
    n = len(x_train)
    for epoch in range(start, max_epochs + 1):
        if stale >= patience:
            break
        model.train()
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            loss, _ = loss_fn(model, x_train[idx], y_train[idx])
            if not torch.isfinite(loss):
                raise DivergedError(epoch, loss.item(), lr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        model.eval()
        with torch.no_grad():
            val_loss_t, parts = loss_fn(model, x_val, y_val)
        val_loss = val_loss_t.item()
        if not math.isfinite(val_loss):
            raise DivergedError(epoch, val_loss, lr)
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
        if on_state is not None and epoch % state_every == 0:
            on_state({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "best_state": best_state, "best_loss": best_loss, "best_epoch": best_epoch,
                      "stale": stale, "history": history, "gen_state": gen.get_state(),
                      "torch_rng": torch.get_rng_state()})
    if best_state is not None:
        model.load_state_dict(best_state)
    return FitResult(best_epoch=best_epoch, best_val_loss=best_loss, epochs_run=len(history),
                     history=history)


def with_lr_backoff(attempt: Callable[[float], FitResult], lr: float, retries: int,
                    backoff: float, name: str = "model") -> tuple[FitResult, float]:
    """Run attempt(lr); on divergence retry with lr * backoff, up to `retries` more times.
    Returns the result and the learning rate that worked; re-raises the last divergence."""
    for i in range(retries + 1):
        try:
            return attempt(lr), lr
        except DivergedError as err:
            if i == retries:
                raise
            log.warning("%s %s; retrying with lr=%g", name, err, lr * backoff)
            lr *= backoff
    raise AssertionError("unreachable")
