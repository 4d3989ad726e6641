"""The Dask runner (Prefect's DaskTaskRunner on a local cluster, or an existing cluster by its
scheduler's address) gives the default runner's numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from augflow.errors import AugflowError
from augflow.runners import check_dask_cluster, run_jobs
from augflow.stages.evaluate import predictions
from workspace import free_port, stage_env


def test_dask_runner_gives_the_same_predictions_as_the_local_runner(prefect_server):
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    tr, te = slice(0, 300), slice(1000, 1200)
    weights = np.r_[np.ones(300), np.full(100, 0.25)]        # the augment stage's weighted rows
    count = np.r_[np.ones(300), np.full(100, 0.5)]
    data = {"real": (x[tr], y[tr]), "augmented": (x[:400], y[:400], weights),
            "augmented_weights": {"share": weights, "count": count},
            "scheme": {"random_forest": "count"},     # each classifier's weights (augment stage)
            "kept": (x[300:400], y[300:400]), "generated": (x[300:400], y[300:400])}
    args = (["real", "augmented", "synthetic_only"], data, x[te], (8, 8), 2, 7)
    for clf in ("logreg", "random_forest"):
        local = predictions(clf, *args, runner="local")
        dask = predictions(clf, *args, runner="dask", workers=2)
        assert set(local) == set(dask)
        for arm in local:
            assert local[arm].shape == (2, 200)
            assert np.array_equal(local[arm], dask[arm])


def test_threads_give_the_same_predictions_in_job_order():
    """evaluate.fit_threads: the local runner's fits on two threads give what one gives, for
    every classifier (the torch mlp is kept to one thread inside predictions)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    data = {"real": (x[:200], y[:200]), "augmented": (x[:300], y[:300], np.ones(300)),
            "augmented_weights": {"share": np.ones(300)}, "scheme": {},
            "kept": (x[200:300], y[200:300]), "generated": (x[200:300], y[200:300])}
    args = (["real", "augmented", "smote", "classic"], data, x[1000:1150], (8, 8), 3, 5)
    from augflow.evaluation.classifiers import fit_threads_for
    # logistic regression (BLAS-bound) and the torch mlp are kept to one thread
    assert fit_threads_for(["svm_rbf", "random_forest"], 2) == 2
    assert fit_threads_for(["logreg"], 2) == fit_threads_for(["mlp", "svm_rbf"], 2) == 1
    for clf in ("logreg", "svm_rbf", "random_forest", "mlp"):
        one = predictions(clf, *args, threads=1)
        two = predictions(clf, *args, threads=2)
        for arm in one:
            assert np.array_equal(one[arm], two[arm]), (clf, arm)
        # the seeds differ where the classifier draws with them: order was kept, not shuffled
        if clf == "random_forest":
            assert not np.array_equal(one["real"][0], one["real"][1])


def test_pooled_jobs_run_blas_on_one_thread_and_restore_it():
    """Inside pooled jobs BLAS runs single-threaded (the SMOTE arm's k-NN distances are BLAS
    products inside SVM and forest jobs), so no two jobs split one BLAS pool; afterwards the
    process has its BLAS threads back."""
    from threadpoolctl import threadpool_info

    def blas_threads(_job) -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads(None)
    assert before, "no BLAS library seen: the test would prove nothing"
    pooled = run_jobs([1, 2, 3], blas_threads, threads=2)
    assert all(t == [1] * len(before) for t in pooled)
    assert run_jobs([1], blas_threads, threads=1) == [before]   # one job or one thread: as is
    assert blas_threads(None) == before


def test_per_class_generation_on_dask_gives_the_same_bytes(prefect_server):
    import torch

    from augflow.stages.generate import generate_samples
    from augflow.models.cvae import CVAE
    from augflow.models.latent import fit_class_latents

    torch.manual_seed(0)
    model = CVAE(64, 4, latent_dim=6, hidden_dims=(32,)).eval()
    x = torch.rand(80, 64)
    y = torch.arange(80) % 4
    latents = fit_class_latents(model, x, y, 4)
    real = (x.numpy(), y.numpy())
    for fit, rows in ((None, None), (latents, None), (None, real)):   # prior, class fit, local
        local = generate_samples(model, [0, 1, 2, 3], 25, 1.3, seed=5, latents=fit, real=rows)
        dask = generate_samples(model, [0, 1, 2, 3], 25, 1.3, seed=5, latents=fit,
                                runner="dask", workers=2, real=rows)
        for a, b in zip(local, dask):
            assert a.shape[0] == 100 and np.array_equal(a, b)
    assert not np.array_equal(local[0][:25], local[0][25:50])   # classes differ


# ---- an existing Dask cluster by address (evaluate.dask_address, generate.dask_address) ----

def _start(cmd: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env or stage_env())


def _stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="module")
def dask_cluster():
    """A real `dask scheduler` and a `dask worker --nworkers 2` on loopback, as a user runs them."""
    from distributed import Client

    dask_cli = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = _start([dask_cli, "scheduler", "--host", "127.0.0.1", "--port",
                        address.rsplit(":", 1)[1], "--no-dashboard"])
    worker = _start([dask_cli, "worker", address, "--nworkers", "2", "--nthreads", "1",
                     "--no-dashboard"])
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        _stop(worker, scheduler)


def _executed(address: str) -> int:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return sum(client.run(lambda dask_worker: dask_worker.state.executed_count).values())


@pytest.mark.slow
def test_an_existing_cluster_by_address_gives_the_local_runners_bytes(prefect_server,
                                                                      dask_cluster):
    """The evaluation's fits and the per-class generation on the cluster at the address: the
    same predictions and samples as in this process, and the cluster's workers ran the jobs."""
    import torch

    from augflow.models.cvae import CVAE
    from augflow.stages.generate import generate_samples

    before = _executed(dask_cluster)
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    w = np.r_[np.ones(200), np.full(100, 0.25)]
    data = {"real": (x[:200], y[:200]), "augmented": (x[:300], y[:300], w),
            "augmented_weights": {"share": w, "count": w}, "scheme": {},
            "kept": (x[200:300], y[200:300]), "generated": (x[200:300], y[200:300])}
    args = (["real", "augmented"], data, x[1000:1200], (8, 8), 2, 7)
    local = predictions("random_forest", *args)
    remote = predictions("random_forest", *args, runner="dask", address=dask_cluster)
    for arm in local:
        assert np.array_equal(local[arm], remote[arm])
    torch.manual_seed(0)
    model = CVAE(64, 4, latent_dim=6, hidden_dims=(32,)).eval()
    real = (torch.rand(40, 64).numpy(), (np.arange(40) % 4).astype(np.int64))
    a = generate_samples(model, [0, 1, 2, 3], 10, 1.3, seed=5, real=real)
    b = generate_samples(model, [0, 1, 2, 3], 10, 1.3, seed=5, real=real, runner="dask",
                         address=dask_cluster)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert _executed(dask_cluster) - before >= 4 + 4   # 2 arms x 2 seeds of fits, 4 classes


def test_an_unreachable_scheduler_is_one_line_naming_the_key():
    address = f"tcp://127.0.0.1:{free_port()}"   # nothing listens there
    with pytest.raises(AugflowError) as info:
        check_dask_cluster(address, "evaluate.dask_address", timeout_s=2)
    err = info.value
    assert (err.file, err.field, err.rule) == ("params.yaml", "evaluate.dask_address",
                                               "reachable Dask scheduler")
    assert address in str(err) and "\n" not in str(err)


@pytest.mark.slow
def test_a_worker_without_augflow_is_named(dask_cluster, tmp_path):
    """A worker whose environment cannot import augflow (here: a stand-in package that fails to
    import shadows it) is named before any job is sent."""
    fake = tmp_path / "shadow" / "augflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('augflow is not installed here')\n")
    address = f"tcp://127.0.0.1:{free_port()}"
    dask_cli = str(Path(sys.executable).parent / "dask")
    scheduler = _start([dask_cli, "scheduler", "--host", "127.0.0.1", "--port",
                        address.rsplit(":", 1)[1], "--no-dashboard"])
    worker = _start([dask_cli, "worker", address, "--nworkers", "1", "--no-dashboard"],
                    env=stage_env(PYTHONPATH=str(fake.parent)))
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(1, timeout=120)
        with pytest.raises(AugflowError) as info:
            check_dask_cluster(address, "generate.dask_address")
        assert info.value.field == "generate.dask_address"
        assert "cannot import augflow" in str(info.value)
        assert check_dask_cluster(dask_cluster, "generate.dask_address") == 2   # a good one
    finally:
        _stop(worker, scheduler)
