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


@dataclass(frozen=True)
class FitSettings:
    lr: float
    batch_size: int
    max_epochs: int
    patience: int             # epochs without a better validation loss before stopping
    seed: int
    weight_decay: float = 0.0
    name: str = "model"       # for the log lines
    state_every: int = 10     # epochs between on_state calls


@dataclass
class _Progress:
    """What a resumed fit must get back exactly: the best weights so far and the RNG streams."""
    best_state: dict | None = None
    best_loss: float = math.inf
    best_epoch: int = 0
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    last_epoch: int = 0


def _restore(resume: dict, model: nn.Module, opt: torch.optim.Optimizer,
             gen: torch.Generator) -> _Progress:
    model.load_state_dict(resume["model"])
    opt.load_state_dict(resume["optimizer"])
    gen.set_state(resume["gen_state"])
    torch.set_rng_state(resume["torch_rng"])
    return _Progress(resume["best_state"], resume["best_loss"], resume["best_epoch"],
                     resume["stale"], resume["history"], resume["epoch"])


def _train_epoch(model: nn.Module, loss_fn: LossFn, opt: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor, order: torch.Tensor, batch_size: int, epoch: int,
                 lr: float) -> float:
    """One pass over the rows in `order`; returns the mean training loss."""
    model.train()
    total, seen = 0.0, 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        loss, _ = loss_fn(model, x[idx], y[idx])
        if not torch.isfinite(loss):
            raise DivergedError(epoch, loss.item(), lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / seen


def fit(model: nn.Module, loss_fn: LossFn, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], settings: FitSettings, resume: dict | None = None,
        on_state: Callable[[dict], None] | None = None) -> FitResult:
    """Train in place; on return `model` holds the weights of the best validation epoch.
    `resume`: a state from `on_state`, to continue an interrupted fit with identical results."""
    st = settings
    torch.manual_seed(st.seed)
    gen = torch.Generator().manual_seed(st.seed)
    opt = torch.optim.Adam(model.parameters(), lr=st.lr, weight_decay=st.weight_decay)
    pr = _Progress()
    if resume is not None:
        pr = _restore(resume, model, opt, gen)
        log.info("%s resumed after epoch %d", st.name, pr.last_epoch)
    (x_train, y_train), (x_val, y_val) = train, val
    for epoch in range(pr.last_epoch + 1, st.max_epochs + 1):
        if pr.stale >= st.patience:
            break
        order = torch.randperm(len(x_train), generator=gen)
        train_loss = _train_epoch(model, loss_fn, opt, x_train, y_train, order, st.batch_size,
                                  epoch, st.lr)
        model.eval()
        with torch.no_grad():
            val_loss_t, parts = loss_fn(model, x_val, y_val)
        val_loss = val_loss_t.item()
        if not math.isfinite(val_loss):
            raise DivergedError(epoch, val_loss, st.lr)
        pr.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                           **{f"val_{k}": v for k, v in parts.items()}})
        if val_loss < pr.best_loss - 1e-6:
            pr.best_loss, pr.best_epoch, pr.stale = val_loss, epoch, 0
            pr.best_state = copy.deepcopy(model.state_dict())
        else:
            pr.stale += 1
        if epoch % 25 == 0 or epoch == 1:
            log.info("%s epoch %d train=%.4f val=%.4f best=%.4f@%d", st.name, epoch,
                     train_loss, val_loss, pr.best_loss, pr.best_epoch)
        if on_state is not None and epoch % st.state_every == 0:
            on_state({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "best_state": pr.best_state, "best_loss": pr.best_loss,
                      "best_epoch": pr.best_epoch, "stale": pr.stale, "history": pr.history,
                      "gen_state": gen.get_state(), "torch_rng": torch.get_rng_state()})
    if pr.best_state is not None:
        model.load_state_dict(pr.best_state)
    return FitResult(best_epoch=pr.best_epoch, best_val_loss=pr.best_loss,
                     epochs_run=len(pr.history), history=pr.history)


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
