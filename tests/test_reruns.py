"""Reruns lose nothing: a forced rerun gives the same bytes, and a stage killed mid-run
leaves nothing DVC would accept as done; the next `dvc repro` completes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from conftest import dvc, stage_env


@pytest.fixture
def ws(pipeline_ws, tmp_path):
    dst = tmp_path / "ws"
    shutil.copytree(pipeline_ws, dst, symlinks=True)
    return dst


def _lock_hashes(ws) -> dict[str, str]:
    stages = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    return {f"{name}:{o['path']}": o["md5"] for name, st in stages.items()
            for o in st.get("outs", [])}


def test_forced_rerun_gives_identical_outputs(ws):
    first = _lock_hashes(ws)
    dvc(ws, "repro", "--force")
    second = _lock_hashes(ws)
    assert first == second
    assert len(first) >= 15


@pytest.mark.parametrize("stage, delay", [("train", 1.5), ("filter", 2.0), ("evaluate", 2.5)])
def test_a_stage_killed_mid_run_is_not_taken_as_done(ws, stage, delay):
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "--single-item",
                             stage], cwd=ws, env=stage_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    assert proc.poll() is None, "the stage finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # DVC must not consider the killed stage (or anything after it) up to date ...
    status = dvc(ws, "status").stdout
    assert "up to date" not in status and f"{stage}:" in status
    # ... and a plain rerun completes, leaving valid outputs and a clean status.
    dvc(ws, "repro")
    assert "up to date" in dvc(ws, "status").stdout
    for p in ("data/filtered/kept.parquet", "data/augmented/train.parquet"):
        assert len(pd.read_parquet(ws / p)) > 0


def test_a_second_run_in_the_same_workspace_fails_clearly_and_touches_nothing(ws):
    from flows.pipeline import WorkspaceBusy, augflow_pipeline, workspace_lock

    before = (ws / "dvc.lock").read_bytes(), (ws / "metrics/evaluate.json").read_bytes()
    with workspace_lock(ws, 0):            # the "first" run
        with pytest.raises(WorkspaceBusy, match="another augflow pipeline run"):
            augflow_pipeline(root=str(ws), force=True)
    assert ((ws / "dvc.lock").read_bytes(), (ws / "metrics/evaluate.json").read_bytes()) == before


def test_outputs_round_trip_through_the_default_local_remote(ws, tmp_path):
    """The repo's default remote is a directory beside the checkout; the same kind of remote
    here, in a temp dir: push everything, lose the workspace's data, pull it back."""
    dvc(ws, "remote", "add", "-d", "--force", "localstore", str(tmp_path / "store"))
    dvc(ws, "push")
    shutil.rmtree(ws / "data" / "models")
    (ws / "data/synthetic/samples.parquet").unlink()
    assert "up to date" not in dvc(ws, "status").stdout
    dvc(ws, "pull")
    assert "up to date" in dvc(ws, "status").stdout
