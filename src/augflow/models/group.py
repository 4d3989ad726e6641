"""Fitting the VAE in a torch.distributed process group (vae.processes > 1, or under torchrun).

Two ways in:
- `train_cvae_processes`: N processes on this machine, started here with torch.multiprocessing
  (spawn), joined over a loopback TCP rendezvous. The caller gets the fitted model back in its
  own process, as from train_cvae.
- `torchrun_group` + train_cvae(rank=, world=): a process torchrun started (one of a group that
  may span machines); torch.distributed is initialised from torchrun's environment.

Gloo on the CPU, NCCL on CUDA with one GPU per process (local rank r takes cuda:r). Each process
takes its share of every batch (augflow.models.fitting). Arrays in, a fitted module out; no
files: the resume state goes to the caller's on_state, which must pickle (it crosses into the
spawned processes) and is called by rank 0 only."""

from __future__ import annotations

import io
import logging
import os
import queue
import socket
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from augflow.config import VAEConfig
from augflow.device import state_on_cpu
from augflow.errors import AugflowError
from augflow.models.fitting import DivergedError, FitResult
from augflow.models.vae_fit import make_cvae, train_cvae


def torchrun_group() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when torchrun started this process in a group of two or
    more; None otherwise (a plain process, or torchrun with one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or "1")
    if world <= 1 or "RANK" not in os.environ:
        return None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def group_device(device: torch.device, local_rank: int) -> torch.device:
    """One GPU per process: local rank r trains on cuda:r; the CPU is shared."""
    return torch.device("cuda", local_rank) if device.type == "cuda" else device


def join_group(rank: int, world: int, device: torch.device, init_method: str = "env://") -> None:
    """torch.distributed for this process: NCCL between GPUs, gloo otherwise."""
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _member(rank: int, world: int, init_method: str, job: dict[str, Any], out: Any) -> None:
    """One spawned process of the group. Rank 0 sends the fitted weights (as torch.save bytes:
    a tensor sent through the queue would be shared memory that dies with this process) or the
    divergence back to the parent."""
    torch.set_num_threads(job["threads"])
    if rank == 0:   # rank 0 reports progress for the group, in the stage's log format
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    dev = group_device(job["device"], rank)
    join_group(rank, world, dev, init_method)
    # each process reads its own copy of the resume state: sent as tensors it would be one
    # shared-memory copy, and the optimizers of both processes would step the same moments
    resume = (torch.load(io.BytesIO(job["resume"]), map_location="cpu", weights_only=True)
              if job["resume"] is not None else None)
    try:
        model, result, lr = train_cvae(job["x"], job["y"], job["x_val"], job["y_val"],
                                       job["n_classes"], job["cfg"], job["seed"], resume,
                                       job["on_state"] if rank == 0 else None,
                                       job["image_shape"], dev, rank=rank, world=world)
        if rank == 0:
            buf = io.BytesIO()
            torch.save(state_on_cpu(model.state_dict()), buf)
            out.put(("ok", buf.getvalue(), result, lr))
    except DivergedError as err:   # every process raised it at the same step
        if rank == 0:
            out.put(("diverged", err.epoch, err.loss, err.lr))
    finally:
        dist.destroy_process_group()


def train_cvae_processes(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                         n_classes: int, cfg: VAEConfig, seed: int, processes: int,
                         resume: dict | None = None, on_state=None, image_shape=None,
                         device: torch.device | None = None
                         ) -> tuple[torch.nn.Module, FitResult, float]:
    """train_cvae in `processes` processes of one group on this machine; the model (on the
    CPU), its FitResult and the learning rate that worked, as train_cvae returns them. A
    process that fails stops the others (torch.multiprocessing's join) and raises here."""
    import torch.multiprocessing as mp

    dev = device if device is not None else torch.device("cpu")
    if dev.type == "cuda" and torch.cuda.device_count() < processes:
        raise AugflowError(f"{processes} processes on CUDA need {processes} GPUs (one each); "
                           f"this machine has {torch.cuda.device_count()}",
                           file="params.yaml", field="vae.processes", rule="one GPU per process")
    sent = None
    if resume is not None:
        buf = io.BytesIO()
        torch.save(resume, buf)
        sent = buf.getvalue()
    job = {"x": x, "y": y, "x_val": x_val, "y_val": y_val, "n_classes": n_classes, "cfg": cfg,
           "seed": seed, "resume": sent, "on_state": on_state, "image_shape": image_shape,
           "device": dev, "threads": torch.get_num_threads()}
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    init = f"tcp://127.0.0.1:{_free_port()}"
    procs = mp.start_processes(_member, args=(processes, init, job, out), nprocs=processes,
                               join=False, start_method="spawn")
    got = None
    while got is None:
        try:
            got = out.get(timeout=1.0)
        except queue.Empty:
            if procs.join(timeout=0):   # all ended, none with a result (raises if one failed)
                break
    while not procs.join():
        pass
    if got is None:
        raise RuntimeError("the training processes ended without a result")
    if got[0] == "diverged":
        raise DivergedError(*got[1:])
    model = make_cvae(cfg, x.shape[1], n_classes, image_shape)
    model.load_state_dict(torch.load(io.BytesIO(got[1]), map_location="cpu", weights_only=True))
    return model.eval(), got[2], got[3]
