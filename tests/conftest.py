"""Shared fixtures: a tiny pipeline config, and workspaces that hold a copy of the DAG."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

torch.set_num_threads(1)   # as the CLI does: small models, no spinning against other processes

REPO = Path(__file__).resolve().parents[1]

def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


DEFAULT_PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
# The repo's params.yaml made small: dvc.yaml names params keys, so every key must be present.
TINY = merged(DEFAULT_PARAMS, {
    "seed": 0,
    "data": {"labels_per_class": 40},
    "vae": {"max_epochs": 40, "patience": 10, "beta": 0.1},
    "generate": {"n_per_class": 30},
    "extractor": {"max_epochs": 40, "patience": 8},
    "evaluate": {"classifiers": ["logreg", "random_forest"], "n_seeds": 2, "n_bootstrap": 200,
                 "arms": ["real", "augmented", "synthetic_only", "smote"]},
})


def stage_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def make_workspace(path: Path, params: dict | None = None) -> Path:
    """A git + DVC workspace with this repo's dvc.yaml and a (tiny) params.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", path / "dvc.yaml")
    # dvc.yaml names code paths as deps; the stages import the installed package.
    shutil.copytree(REPO / "src", path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (path / "params.yaml").write_text(yaml.safe_dump(params if params is not None else TINY))
    (path / "data" / "raw").mkdir(parents=True, exist_ok=True)   # the prepare stage's file input
    (path / "data" / "raw" / ".gitkeep").touch()
    run = lambda *cmd: subprocess.run(cmd, cwd=path, check=True, capture_output=True, env=stage_env())
    run("git", "init", "-q")
    run("git", "config", "user.email", "test@example.invalid")
    run("git", "config", "user.name", "augflow tests")
    run(sys.executable, "-m", "dvc", "init", "-q")
    shutil.copytree(REPO / ".dvc" / "plots", path / ".dvc" / "plots")   # the plot templates
    return path


def dvc(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, capture_output=True,
                          text=True, env=stage_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def augflow(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "augflow.cli", *args], cwd=ws,
                          capture_output=True, text=True, env=stage_env())


@pytest.fixture(scope="session")
def prefect_server():
    """One ephemeral Prefect API for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def pipeline_ws(tmp_path_factory, prefect_server) -> Path:
    """A workspace where the tiny pipeline ran once through the Prefect flow."""
    sys.path.insert(0, str(REPO))
    from flows.pipeline import augflow_pipeline

    ws = make_workspace(tmp_path_factory.mktemp("pipeline"))
    augflow_pipeline(root=str(ws))
    return ws


# Fixtures that run (part of) the pipeline, a server or a training loop; and whole modules of
# end-to-end subprocess runs. Tests using them are marked `slow`: `pytest -m "not slow"` is the
# fast loop while editing; the README's test command runs everything.
_SLOW_FIXTURES = {"pipeline_ws", "prefect_server", "wine_ws", "image_ws", "csv_ws", "png_ws",
                  "filtered", "trained", "trained_cvae", "ws"}
_SLOW_MODULES = {"test_servers", "test_reruns", "test_failures", "test_bad_input", "test_own_data"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (_SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or item.module.__name__ in _SLOW_MODULES):
            item.add_marker(pytest.mark.slow)
