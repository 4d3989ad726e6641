"""Shared fixtures: a tiny pipeline config, and workspaces that hold a copy of the DAG."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from workspace import (REPO, augflow, default_params, dvc, fails_cleanly, merged,  # noqa: F401
                       output_digest, stage_env)
from workspace import make_workspace as _make_workspace

torch.set_num_threads(1)   # as the CLI does: small models, no spinning against other processes

DEFAULT_PARAMS = default_params()
# The repo's params.yaml made small: dvc.yaml names params keys, so every key must be present.
TINY = merged(DEFAULT_PARAMS, {
    "seed": 0,
    "data": {"labels_per_class": 40},
    # 2 classic copies, not 10: the copies' effect is measured in bench/, not here; 10 made
    # train the longest stage of every tiny pipeline the suite runs (4,400 rows an epoch)
    "vae": {"max_epochs": 40, "patience": 10, "beta": 0.1, "train_copies": 2},
    "generate": {"n_per_class": 30},
    "extractor": {"max_epochs": 40, "patience": 8},
    "evaluate": {"classifiers": ["logreg", "random_forest"], "n_seeds": 2, "n_bootstrap": 200,
                 "arms": ["real", "augmented", "synthetic_only", "smote"]},
})


def make_workspace(path: Path, params: dict | None = None) -> Path:
    """A git + DVC workspace with this repo's DAG and the tiny params (or `params`)."""
    return _make_workspace(path, params if params is not None else TINY)


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


# The modules with the longest tests, longest first (pytest --durations on 2 workers). `make
# test` runs 2 xdist workers that steal work from each other (--dist worksteal): started first,
# the long tests overlap each other and the short ones fill the gaps; started last, one worker
# ran the tail alone for minutes. Unlisted modules (the fast ones) keep their order after these.
_LONG_FIRST = ("test_servers", "test_own_data", "test_reruns", "test_pipeline_e2e",
               "test_bad_input", "test_filter_and_leakage", "test_failures", "test_runners")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (_SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or item.module.__name__ in _SLOW_MODULES):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(_LONG_FIRST)}
    items.sort(key=lambda it: rank.get(it.module.__name__, len(rank)))   # stable: order kept within
