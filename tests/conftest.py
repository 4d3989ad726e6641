"""Shared fixtures: a tiny pipeline config, and workspaces that hold a copy of the DAG."""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from workspace import (REPO, augflow, augflow_here, default_params, dvc,  # noqa: F401
                       fails_cleanly, free_port, merged, output_digest, stage_env, wait_for)
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


# ---- built once per test session, however many xdist workers run it ----
# `make test` runs 2 xdist workers, each a process with its own session fixtures: a workspace
# built in a session fixture was built once per worker (the tiny pipeline: ~100 s each). These
# helpers build such a thing once, in the directory every worker's base temp dir sits in, under a
# file lock: the first worker to ask builds it, a later one waits for it and reuses it.

def _in_xdist_worker() -> bool:
    return "PYTEST_XDIST_WORKER" in os.environ


def _session_dir(tmp_path_factory) -> Path:
    """The directory shared by every worker of this test session (or this process's base temp)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if _in_xdist_worker() else base


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)       # released when the file closes, also on a crash
        yield


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A private copy of `build(dir)`'s result, built once per session. The original is never
    touched after it is built (each worker's tests work on their copy, so no two processes run
    DVC or MLflow in one directory); MLflow's artifact paths in the copy name the original,
    which exists until the session ends, as after any copy of a checkout."""
    shared = _session_dir(tmp_path_factory)
    original, done = shared / f"{name}-built", shared / f"{name}-built.done"
    with _locked(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(original, ignore_errors=True)   # a build that failed in another worker
            build(original)
            done.touch()
    copy = tmp_path_factory.mktemp(name)
    shutil.copytree(original, copy, dirs_exist_ok=True, symlinks=True)
    return copy


def _start_prefect_api(home: Path) -> tuple[subprocess.Popen, str]:
    """An ephemeral Prefect API (the server prefect_test_harness starts: no UI, no services) on
    a free loopback port, with its own SQLite database under `home`."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {**stage_env(), "PREFECT_HOME": str(home), "PREFECT_UI_ENABLED": "0",
           "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}"}
    import prefect
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env, stdout=open(home / "server.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(f"{url}/health", proc, 180)
    except AssertionError:
        proc.kill()
        raise
    return proc, url


PREFECT_PID_FILE = "prefect-api.pid"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One ephemeral Prefect API for the whole session, shared by the xdist workers (it takes
    ~15 s to start; the workspace built once by the first worker keeps its flow run there, for
    every worker's tests to read). Without xdist, prefect_test_harness as before; with it, the
    first worker starts the API and the controller stops it when the session ends."""
    if not _in_xdist_worker():
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=120):
            yield
        return
    import prefect.context
    from prefect.settings import PREFECT_API_URL, temporary_settings

    shared = _session_dir(tmp_path_factory)
    url_file = shared / "prefect-api.url"
    with _locked(shared / "prefect-api.lock"):
        if not url_file.exists():
            proc, url = _start_prefect_api(shared / "prefect-home")
            (shared / PREFECT_PID_FILE).write_text(str(proc.pid))
            url_file.write_text(url)
    with temporary_settings(updates={PREFECT_API_URL: url_file.read_text()}):
        with prefect.context._temporary_global_settings_context(prefect.context.get_settings_context()):
            yield
            _drain_prefect_logs()


def _drain_prefect_logs() -> None:
    """Send the logs and events this worker still holds before it exits (as the harness does)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain():
        try:
            result = APILogWorker.instance().drain()
            if inspect.isawaitable(result):
                await result
        except RuntimeError:            # never started
            pass
        result = EventsWorker.drain_all()
        if inspect.isawaitable(result):
            await result

    run_coro_as_sync(drain())


def pytest_sessionfinish(session):
    """The xdist controller (the process without `workerinput`) stops the shared Prefect API
    once every worker is done."""
    if hasattr(session.config, "workerinput") or not hasattr(session.config, "_tmp_path_factory"):
        return
    pid_file = session.config._tmp_path_factory.getbasetemp() / PREFECT_PID_FILE
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def _build_pipeline(ws: Path) -> None:
    sys.path.insert(0, str(REPO))
    from flows.pipeline import augflow_pipeline

    make_workspace(ws)
    augflow_pipeline(root=str(ws))


@pytest.fixture(scope="session")
def pipeline_ws(tmp_path_factory, prefect_server) -> Path:
    """A workspace where the tiny pipeline ran once through the Prefect flow (this worker's copy)."""
    return built_once(tmp_path_factory, "pipeline", _build_pipeline)


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
_LONG_FIRST = ("test_servers", "test_own_data", "test_reruns", "test_pipeline_e2e", "test_group",
               "test_bad_input", "test_filter_and_leakage", "test_failures", "test_runners")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (_SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or item.module.__name__ in _SLOW_MODULES):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(_LONG_FIRST)}
    items.sort(key=lambda it: rank.get(it.module.__name__, len(rank)))   # stable: order kept within


# ---- a real PostgreSQL server (the shared servers' database; issue 31) ----

def _pg_binary(name: str) -> str:
    """A PostgreSQL server binary: on PATH, or where Debian's `postgresql` puts it."""
    import glob

    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                                                   reverse=True)), None)
    if found is None:   # not a skip: .ci/run installs it, and a missing server must show
        pytest.fail(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return found


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of this test process, on a loopback port, in a fresh data directory
    with trust authentication for user `augflow`; yields `make_db(name) -> URL tail`
    ("augflow@127.0.0.1:PORT/name"), each call a new database. initdb refuses to run as root,
    so as root the server runs as the `postgres` user Debian's package creates; its directory
    is under /tmp, not pytest's base temp (mode 0700, closed to that user)."""
    import tempfile

    initdb, pg_ctl, createdb = (_pg_binary(n) for n in ("initdb", "pg_ctl", "createdb"))
    root = Path(tempfile.mkdtemp(prefix="augflow-pg-"))
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_server:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    run = lambda *cmd: subprocess.run([*as_server, *cmd], check=True, capture_output=True,
                                      text=True, timeout=120)
    run(initdb, "-D", str(data), "-U", "augflow", "-A", "trust", "--no-sync")
    run(pg_ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def make_db(name: str) -> str:
        subprocess.run([createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "augflow", name],
                       check=True, capture_output=True, text=True, timeout=60)
        return f"augflow@127.0.0.1:{port}/{name}"

    try:
        yield make_db
    finally:
        subprocess.run([*as_server, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
