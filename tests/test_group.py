"""The VAE fit in a torch.distributed group of 2 CPU processes (vae.processes: 2, gloo): the
step count of one process, the same weights on every run, a killed group resumes to the
uninterrupted weights, a NaN on one process stops every process, and the pipeline trains that
way and records one loss curve."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from augflow.config import VAEConfig
from augflow.models.cvae import CVAE, cvae_loss
from augflow.models.fitting import DivergedError, FitSettings, fit
from augflow.models.group import join_group, train_cvae_processes
from augflow.models.vae_fit import train_cvae
from test_training import _data as _rows
from workspace import dvc

CFG = VAEConfig(hidden_dims=(32,), latent_dim=4, max_epochs=30, patience=5, resume_every=10)


def _data(n=400):
    return _rows(n)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_two_processes_take_the_steps_of_one_and_give_the_same_weights_twice():
    x, y = _data()
    one, one_res, _ = train_cvae(x, y, x, y, 3, CFG, seed=3)
    two, two_res, lr = train_cvae_processes(x, y, x, y, 3, CFG, 3, processes=2)
    again, _, _ = train_cvae_processes(x, y, x, y, 3, CFG, 3, processes=2)
    # each process takes half of every batch of 64: the group steps as one process does
    assert two_res.steps == one_res.steps and two_res.epochs_run == one_res.epochs_run
    assert lr == CFG.lr and len(two_res.history) == two_res.epochs_run   # one curve, not two
    assert _same(two, again)
    assert not _same(one, two)              # the noise differs: a group is not one process
    # the same model, as well fitted: within 2% of the single process's best validation loss
    assert abs(two_res.best_val_loss - one_res.best_val_loss) < 0.02 * one_res.best_val_loss
    assert two.sample(torch.arange(3)).shape == (3, 16)


class _SaveThenDie:
    """An on_state that crosses into the group's rank 0: keeps each state, dies at `kill_at`."""

    def __init__(self, path: Path, kill_at: int) -> None:
        self.path, self.kill_at = path, kill_at

    def __call__(self, state: dict) -> None:
        torch.save(state, self.path)
        if state["epoch"] == self.kill_at:
            raise RuntimeError("killed")


def test_a_group_killed_mid_fit_resumes_to_the_uninterrupted_weights(tmp_path):
    x, y = _data()
    full, full_res, _ = train_cvae_processes(x, y, x, y, 3, CFG, 3, processes=2)
    state = tmp_path / "state.pt"
    with pytest.raises(Exception, match="killed"):   # rank 0 died; the join stopped rank 1
        train_cvae_processes(x, y, x, y, 3, CFG, 3, processes=2,
                             on_state=_SaveThenDie(state, kill_at=10))
    saved = torch.load(state, weights_only=True)
    assert saved["epoch"] == 10 and len(saved["torch_rng_ranks"]) == 2
    resumed, res, _ = train_cvae_processes(x, y, x, y, 3, CFG, 3, processes=2, resume=saved)
    assert _same(full, resumed)
    assert res.history == full_res.history and res.steps == full_res.steps


def _poisoned_member(rank: int, world: int, init: str, out) -> None:
    """A group member whose loss turns NaN on rank 1 alone, from its 10th batch."""
    join_group(rank, world, torch.device("cpu"), init)
    x, y = (torch.from_numpy(a) for a in _data(200))
    calls = {"n": 0}

    def loss(m, xb, yb):
        calls["n"] += 1
        total = cvae_loss(m(xb, yb), xb, 1.0).total
        return (total * float("nan") if rank == 1 and calls["n"] > 9 else total), {}

    try:
        fit(CVAE(16, 3, 4, (32,)), loss, (x, y), (x, y),
            FitSettings(lr=1e-3, batch_size=64, max_epochs=10, patience=10, seed=0,
                        rank=rank, world=world))
        out.put((rank, None))
    except DivergedError as err:
        out.put((rank, err.epoch))
    finally:
        torch.distributed.destroy_process_group()


def test_a_nan_on_one_process_stops_every_process_at_the_same_step():
    """Otherwise the healthy process would wait in its next collective for one that left."""
    import torch.multiprocessing as mp

    from augflow.models.group import _free_port

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = mp.start_processes(_poisoned_member, args=(2, f"tcp://127.0.0.1:{_free_port()}", out),
                               nprocs=2, join=False, start_method="spawn")
    got = dict(out.get(timeout=120) for _ in range(2))
    while not procs.join(timeout=60):
        pass
    # 4 batches and a validation pass an epoch: rank 1's 10th loss is in epoch 2
    assert got == {0: 2, 1: 2}


@pytest.mark.slow
def test_the_pipeline_trains_in_two_processes_and_records_one_curve(pipeline_ws, tmp_path):
    """vae.processes: 2 in a finished workspace: dvc repro retrains in a group of two, every
    later stage runs on its checkpoint, and MLflow gets the loss curve once."""
    from mlflow import MlflowClient

    ws = tmp_path / "ws"
    shutil.copytree(pipeline_ws, ws, symlinks=True)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["vae"]["processes"] = 2
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    out = dvc(ws, "repro").stdout
    assert "Running stage 'train'" in out and "Running stage 'track'" in out
    assert "up to date" in dvc(ws, "status").stdout
    train = json.loads((ws / "metrics/train.json").read_text())
    assert train["processes"] == 2 and not train["resumed"]
    curve = pd.read_csv(ws / "plots/train_curve.csv")
    assert list(curve["epoch"]) == list(range(1, train["epochs_run"] + 1))
    assert not (ws / "data/models/cvae.resume.pt").exists()
    client = MlflowClient(f"sqlite:///{ws / 'mlflow/mlflow.db'}")
    exp = client.get_experiment_by_name("augflow").experiment_id
    child = client.search_runs([exp], "tags.stage = 'train'",
                               order_by=["attributes.start_time DESC"])[0]
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])
    assert parent.data.params["vae.processes"] == "2"
    history = client.get_metric_history(child.info.run_id, "curve.val_loss")
    assert sorted(m.step for m in history) == list(range(1, train["epochs_run"] + 1))


@pytest.mark.slow
def test_torchrun_runs_the_train_stage_as_a_group_and_rank_0_alone_records(pipeline_ws,
                                                                            tmp_path):
    """`torchrun --standalone --nproc-per-node 2 -m augflow.cli train`: both processes fit as
    one group; one checkpoint, one metrics file, one curve, and DVC takes the result."""
    import subprocess
    import sys

    from augflow.checkpoints import load_cvae
    from workspace import stage_env

    ws = tmp_path / "ws"
    shutil.copytree(pipeline_ws, ws, symlinks=True)
    (ws / "data/models/cvae.pt").unlink()
    torchrun = Path(sys.executable).parent / "torchrun"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2",
                           "-m", "augflow.cli", "train"], cwd=ws, env=stage_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("'processes': 2") == 1          # rank 0's summary, once
    train = json.loads((ws / "metrics/train.json").read_text())
    assert train["processes"] == 2
    curve = pd.read_csv(ws / "plots/train_curve.csv")
    assert list(curve["epoch"]) == list(range(1, train["epochs_run"] + 1))
    model = load_cvae(ws / "data/models/cvae.pt")[0]
    assert model.sample(torch.arange(3)).shape[0] == 3
    dvc(ws, "commit", "-f", "train")
    assert "up to date" in dvc(ws, "status", "train").stdout
