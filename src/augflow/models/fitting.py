"""A plain mini-batch loop with early stopping on a validation loss, shared by every model we fit.

It can hand its whole state to a callback every few epochs and resume from such a state with
identical results (the RNG states travel with it); it stops with DivergedError on a non-finite
loss. Where the state is stored is the caller's business: this module knows nothing of files.

On an accelerator (FitSettings.device) the model moves there and each batch follows it; the
shuffling stays on a CPU generator, so the row order of every epoch is the same on any device.

In a process group (FitSettings.world > 1, torch.distributed initialised by the caller) the model
is wrapped in DistributedDataParallel: every process draws the same epoch order and takes its
share (every world-th row) of each batch, so a step still sees batch_size rows in all and the
step count, budget and early stopping are those of one process. The losses that decide anything
(a batch's finiteness, the validation loss) are averaged over the group first, so every process
makes the same decision and none is left waiting in a collective."""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from dataclasses import dataclass, field
from collections.abc import Callable

import torch
import torch.distributed as dist
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
    # ... and at least this many optimizer steps since the best epoch (0: epochs alone). On a
    # tiny set an epoch is one step, so 15 epochs of patience are 15 steps: the extractor at 5
    # labels per class stopped while its validation loss was still on the plateau of the first
    # few dozen steps, at chance (README, Configuration: extractor)
    patience_steps: int = 0
    # this process's place in a torch.distributed group (rank 0 of 1: no group)
    rank: int = 0
    world: int = 1


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
    best_steps: int = 0       # steps taken at the best epoch


def _restore(resume: dict, model: nn.Module, opt: torch.optim.Optimizer,
             gen: torch.Generator) -> _Progress:
    model.load_state_dict(resume["model"])
    opt.load_state_dict(resume["optimizer"])
    gen.set_state(resume["gen_state"])
    torch.set_rng_state(resume["torch_rng"])
    return _Progress(resume["best_state"], resume["best_loss"], resume["best_epoch"],
                     resume["stale"], resume["history"], resume["epoch"], resume["steps"],
                     resume.get("best_steps", 0))


def _train_epoch(model: nn.Module, loss_fn: LossFn, opt: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor, order: torch.Tensor, st: FitSettings, epoch: int) -> float:
    """One pass over the rows in `order`; returns the mean training loss. The rows stay where
    they are and each batch moves to the model's device (a no-op on the CPU). In a group,
    `model` is the DistributedDataParallel wrapper and each process takes its share of a batch."""
    model.train()
    dev = module_device(model)
    total, seen = 0.0, 0.0
    for s in range(0, len(order), st.batch_size):
        idx = order[s:s + st.batch_size]
        if st.world > 1:
            if len(idx) < st.world:   # a last batch too small to share: every process skips it
                continue
            idx = idx[st.rank::st.world]
        loss, _ = loss_fn(model, x[idx].to(dev), y[idx].to(dev))
        if st.world > 1:
            # the group's sum and count first: a NaN on one process stops all of them at once
            agg = torch.tensor([loss.item() * len(idx), float(len(idx))], dtype=torch.float64)
            dist.all_reduce(agg)
            batch_sum, batch_n = float(agg[0]), float(agg[1])
        else:
            batch_sum, batch_n = loss.item() * len(idx), len(idx)
        if not math.isfinite(batch_sum):
            raise DivergedError(epoch, batch_sum / batch_n, st.lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += batch_sum
        seen += batch_n
    return total / seen


def _group_mean(loss: torch.Tensor, parts: dict[str, float], st: FitSettings
                ) -> tuple[float, dict[str, float]]:
    """A validation loss and its parts, averaged over the group (each process scored the same
    rows with its own noise), so early stopping decides the same on every process."""
    if st.world == 1:
        return loss.item(), parts
    vals = torch.tensor([loss.item(), *parts.values()], dtype=torch.float64)
    dist.all_reduce(vals)
    vals /= st.world
    return float(vals[0]), dict(zip(parts, (float(v) for v in vals[1:])))


def _epoch(model: nn.Module, net: nn.Module, loss_fn: LossFn, opt: torch.optim.Optimizer,
           train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
           gen: torch.Generator, st: FitSettings, epoch: int, pr: _Progress) -> None:
    """One epoch: train on a fresh shuffle, score validation, record it in `pr`. `net` is what
    trains (the model, or its DistributedDataParallel wrapper in a group)."""
    order = torch.randperm(len(train[0]), generator=gen)   # on the CPU, whatever the device
    if st.epoch_rows is not None:
        order = order[:st.epoch_rows]   # the same draw as a full pass: small sets are unchanged
    if st.max_steps is not None:
        order = order[:(st.max_steps - pr.steps) * st.batch_size]
    pr.steps += math.ceil(len(order) / st.batch_size)
    train_loss = _train_epoch(net, loss_fn, opt, train[0], train[1], order, st, epoch)
    model.eval()
    with torch.no_grad():
        val_loss_t, parts = loss_fn(model, val[0], val[1])
    val_loss, parts = _group_mean(val_loss_t, parts, st)
    if not math.isfinite(val_loss):
        raise DivergedError(epoch, val_loss, st.lr)
    pr.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                       **{f"val_{k}": v for k, v in parts.items()}})
    if val_loss < pr.best_loss - 1e-6:
        pr.best_loss, pr.best_epoch, pr.stale, pr.best_steps = val_loss, epoch, 0, pr.steps
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
    # in a group each process draws its own noise (rank 0 as alone); the epoch order below
    # comes from `gen`, the same on every process
    torch.manual_seed(st.seed + st.rank)
    gen = torch.Generator().manual_seed(st.seed)
    if st.device is not None:
        model.to(st.device)   # before the optimizer is built: Adam's state follows the weights
    opt = torch.optim.Adam(model.parameters(), lr=st.lr, weight_decay=st.weight_decay)
    pr = _Progress()
    if resume is not None:
        pr = _restore(resume, model, opt, gen)
        ranks = resume.get("torch_rng_ranks")
        if st.world > 1 and ranks is not None and len(ranks) == st.world:
            torch.set_rng_state(ranks[st.rank])
        log.info("%s resumed after epoch %d", st.name, pr.last_epoch)
    net = model
    if st.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # after the restore: the wrapper broadcasts rank 0's weights to the group
        dev_ids = [module_device(model)] if module_device(model).type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=dev_ids)
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
    # 25 epochs; the line carries the same losses. In a group, rank 0 reports for all.
    with (Progress(f"{st.name} epochs", st.max_epochs, done=pr.last_epoch, logger=log)
          if st.rank == 0 else contextlib.nullcontext()) as bar:
        for epoch in range(pr.last_epoch + 1, st.max_epochs + 1):
            patience_out = (pr.stale >= st.patience
                            and pr.steps - pr.best_steps >= st.patience_steps)
            if patience_out or (st.max_steps is not None and pr.steps >= st.max_steps):
                break
            _epoch(model, net, loss_fn, opt, (x_train, y_train), (x_val, y_val), gen, st, epoch,
                   pr)
            last = pr.history[-1]
            if bar is not None:
                bar.update(info=f"train={last['train_loss']:.4f} val={last['val_loss']:.4f} "
                                f"best={pr.best_loss:.4f}@{pr.best_epoch}")
            if epoch % st.state_every == 0 and (on_state is not None or st.world > 1):
                _emit_state(on_state, st, epoch, model, opt, gen, pr)
    if pr.best_state is not None:
        model.load_state_dict(pr.best_state)
    return FitResult(best_epoch=pr.best_epoch, best_val_loss=pr.best_loss,
                     epochs_run=len(pr.history), history=pr.history, steps=pr.steps)


def _emit_state(on_state: Callable[[dict], None] | None, st: FitSettings, epoch: int,
                model: nn.Module, opt: torch.optim.Optimizer, gen: torch.Generator,
                pr: _Progress) -> None:
    """Hand the loop's state to on_state. In a group every process takes part (each one's
    noise generator is gathered, so a resume continues each where it was) and only the
    processes given an on_state (rank 0) emit."""
    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "best_state": pr.best_state, "best_loss": pr.best_loss,
             "best_epoch": pr.best_epoch, "stale": pr.stale, "history": pr.history,
             "steps": pr.steps, "best_steps": pr.best_steps, "gen_state": gen.get_state(),
             "torch_rng": torch.get_rng_state()}
    if st.world > 1:
        ranks: list = [None] * st.world
        dist.all_gather_object(ranks, torch.get_rng_state())
        state["torch_rng_ranks"] = ranks
    if on_state is not None:
        on_state(state)


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
