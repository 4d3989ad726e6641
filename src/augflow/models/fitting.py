"""A plain mini-batch loop with early stopping on a validation loss, shared by every model we fit.

It can hand its whole state to a callback every few epochs and resume from such a state with
identical results (the RNG states travel with it); it stops with DivergedError on a non-finite
loss. Where the state is stored is the caller's business: this module knows nothing of files.

On an accelerator (FitSettings.device) the model moves there and each batch follows it; the
shuffling stays on a CPU generator, so the row order of every epoch is the same on any device."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from collections.abc import Callable

import torch
from torch import nn

from augflow.device import module_device, state_on_cpu
from augflow.progress import Progress

log = logging.getLogger("augflow.fit")

# loss_fn(model, x, y) -> (scalar loss to minimise, {name: float} parts for the curve)
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class FitResult:
    best_epoch: int
    best_val_loss: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0            # optimizer steps taken


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
    device: torch.device | None = None   # None: where the model already is
    # at most this many rows per epoch (a fresh random subset each time; None: all). On a large
    # set an epoch is then a fixed amount of work, so validation, early stopping and progress
    # come at the same pace whatever the size; sets smaller than this train exactly as before
    epoch_rows: int | None = None
    # at most this many optimizer steps in all (None: no cap): the last epoch is cut short at
    # the budget and still scored on validation. A budget in steps is a budget in time
    max_steps: int | None = None
    # validation scores at most this many rows, a fixed random subset drawn once (None: all);
    # smaller validation sets are scored whole, as before
    val_rows: int | None = None


@dataclass
class _Progress:
    """The loop's bookkeeping, which a resumed fit must get back exactly (the weights, the
    optimizer and the RNG states are restored into their own objects by _restore)."""
    best_state: dict | None = None
    best_loss: float = math.inf
    best_epoch: int = 0
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    last_epoch: int = 0
    steps: int = 0


def _restore(resume: dict, model: nn.Module, opt: torch.optim.Optimizer,
             gen: torch.Generator) -> _Progress:
    model.load_state_dict(resume["model"])
    opt.load_state_dict(resume["optimizer"])
    gen.set_state(resume["gen_state"])
    torch.set_rng_state(resume["torch_rng"])
    return _Progress(resume["best_state"], resume["best_loss"], resume["best_epoch"],
                     resume["stale"], resume["history"], resume["epoch"], resume["steps"])


def _train_epoch(model: nn.Module, loss_fn: LossFn, opt: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor, order: torch.Tensor, batch_size: int, epoch: int,
                 lr: float) -> float:
    """One pass over the rows in `order`; returns the mean training loss. The rows stay where
    they are and each batch moves to the model's device (a no-op on the CPU)."""
    model.train()
    dev = module_device(model)
    total, seen = 0.0, 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        loss, _ = loss_fn(model, x[idx].to(dev), y[idx].to(dev))
        if not torch.isfinite(loss):
            raise DivergedError(epoch, loss.item(), lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / seen


def _epoch(model: nn.Module, loss_fn: LossFn, opt: torch.optim.Optimizer,
           train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
           gen: torch.Generator, st: FitSettings, epoch: int, pr: _Progress) -> None:
    """One epoch: train on a fresh shuffle, score validation, record it in `pr`."""
    order = torch.randperm(len(train[0]), generator=gen)   # on the CPU, whatever the device
    if st.epoch_rows is not None:
        order = order[:st.epoch_rows]   # the same draw as a full pass: small sets are unchanged
    if st.max_steps is not None:
        order = order[:(st.max_steps - pr.steps) * st.batch_size]
    pr.steps += math.ceil(len(order) / st.batch_size)
    train_loss = _train_epoch(model, loss_fn, opt, train[0], train[1], order, st.batch_size,
                              epoch, st.lr)
    model.eval()
    with torch.no_grad():
        val_loss_t, parts = loss_fn(model, val[0], val[1])
    val_loss = val_loss_t.item()
    if not math.isfinite(val_loss):
        raise DivergedError(epoch, val_loss, st.lr)
    pr.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                       **{f"val_{k}": v for k, v in parts.items()}})
    if val_loss < pr.best_loss - 1e-6:
        pr.best_loss, pr.best_epoch, pr.stale = val_loss, epoch, 0
        # kept on the CPU: a device's memory holds one copy of the weights, and a resume
        # state (which carries it) reads back on any machine
        pr.best_state = copy.deepcopy(state_on_cpu(model.state_dict()))
    else:
        pr.stale += 1


def fit(model: nn.Module, loss_fn: LossFn, train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor], settings: FitSettings, resume: dict | None = None,
        on_state: Callable[[dict], None] | None = None) -> FitResult:
    """Train in place; on return `model` holds the weights of the best validation epoch.
    `resume`: a state from `on_state`, to continue an interrupted fit with identical results."""
    st = settings
    torch.manual_seed(st.seed)
    gen = torch.Generator().manual_seed(st.seed)
    if st.device is not None:
        model.to(st.device)   # before the optimizer is built: Adam's state follows the weights
    opt = torch.optim.Adam(model.parameters(), lr=st.lr, weight_decay=st.weight_decay)
    pr = _Progress()
    if resume is not None:
        pr = _restore(resume, model, opt, gen)
        log.info("%s resumed after epoch %d", st.name, pr.last_epoch)
    (x_train, y_train), (x_val, y_val) = train, val
    if st.val_rows is not None and len(x_val) > st.val_rows:
        # its own generator: the training shuffles draw exactly what they drew before
        pick = torch.randperm(len(x_val), generator=torch.Generator().manual_seed(st.seed + 1))
        pick = pick[:st.val_rows].sort().values
        x_val, y_val = x_val[pick], y_val[pick]
    dev = module_device(model)
    # validation is one batch: it moves once, not every epoch
    x_val, y_val = x_val.to(dev), y_val.to(dev)
    # The bar (or, off a terminal, a line every 10% of max_epochs) replaces the old line every
    # 25 epochs; the line carries the same losses.
    with Progress(f"{st.name} epochs", st.max_epochs, done=pr.last_epoch, logger=log) as bar:
        for epoch in range(pr.last_epoch + 1, st.max_epochs + 1):
            if pr.stale >= st.patience or (st.max_steps is not None and pr.steps >= st.max_steps):
                break
            _epoch(model, loss_fn, opt, (x_train, y_train), (x_val, y_val), gen, st, epoch, pr)
            last = pr.history[-1]
            bar.update(info=f"train={last['train_loss']:.4f} val={last['val_loss']:.4f} "
                            f"best={pr.best_loss:.4f}@{pr.best_epoch}")
            if on_state is not None and epoch % st.state_every == 0:
                on_state({"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "best_state": pr.best_state, "best_loss": pr.best_loss,
                          "best_epoch": pr.best_epoch, "stale": pr.stale, "history": pr.history,
                          "steps": pr.steps,
                          "gen_state": gen.get_state(), "torch_rng": torch.get_rng_state()})
    if pr.best_state is not None:
        model.load_state_dict(pr.best_state)
    return FitResult(best_epoch=pr.best_epoch, best_val_loss=pr.best_loss,
                     epochs_run=len(pr.history), history=pr.history, steps=pr.steps)


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
