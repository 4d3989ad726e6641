"""Where independent jobs run: in this process, or on a Dask cluster through Prefect's
DaskTaskRunner (prefect-dask): a local one started for the stage, or an existing one by its
scheduler's address. The evaluation's fits and the per-class generation both use it,
and both give the same numbers on either runner: every job is seeded by itself, not by where
or when it runs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Sequence

from augflow.errors import AugflowError
from augflow.progress import track


@dataclass(frozen=True)
class FitJob:
    classifier: str
    arm: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.classifier}-{self.arm}-{self.seed}"


@dataclass(frozen=True)
class ClassJob:
    label: int
    seed: int

    @property
    def name(self) -> str:
        return f"class-{self.label}"


def run_jobs(jobs: Sequence[Any], work: Callable[[Any], Any], runner: str = "local",
             workers: int = 2, what: str = "fit-predict", progress: str | None = None,
             threads: int = 1, address: str | None = None) -> list[Any]:
    """work(job) for every job, in order. `progress`: a name to show progress under (local
    runner; on Dask, Prefect's task runs show it). `threads` (local runner): jobs run on this
    many threads at once, for work that releases the GIL (scikit-learn's SVM and forest fits)
    and draws from nothing shared; the results come back in job order all the same.
    `address` (runner dask): an existing cluster's scheduler instead of `workers` local
    processes; check_dask_cluster first for a clear error."""
    if runner == "local":
        if threads > 1 and len(jobs) > 1:
            # BLAS on one thread per job while jobs share the process: two calls into
            # OpenBLAS's one pool at once may split their sums differently from run to run
            # (two logistic fits at once changed a digits prediction). The SMOTE arm's k-NN
            # distances are BLAS products inside SVM and forest jobs; one thread each makes
            # them independent of scheduling. One BLAS thread computes the same products as
            # two here (same output split, digits' evaluate byte-identical).
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
                done = pool.map(work, jobs)
                return list(track(done, progress, total=len(jobs)) if progress else done)
        return [work(j) for j in (track(jobs, progress) if progress else jobs)]
    if runner == "dask" and address is not None:
        return _on_cluster(list(jobs), work, address, what)
    if runner == "dask":
        return _on_dask(list(jobs), work, workers, what)
    raise ValueError(f"unknown runner {runner!r}")


def check_dask_cluster(address: str, key: str, timeout_s: float = 10.0) -> int:
    """Fail with one line naming `key` (params.yaml's dask_address) when the scheduler at
    `address` cannot be reached in `timeout_s`, has no worker, or has a worker that cannot
    import augflow (the jobs are augflow functions: a worker without it fails every task with
    a ModuleNotFoundError deep in a Prefect traceback). Returns the number of workers."""
    from distributed import Client

    def can_import() -> str:
        # defined here, so cloudpickle sends it by value: it runs on a worker without augflow
        try:
            __import__("augflow")
            return ""
        except Exception as err:   # noqa: BLE001 - any failure to import is the answer
            return f"{type(err).__name__}: {err}"

    try:
        with Client(address, timeout=f"{timeout_s}s", set_as_default=False) as client:
            has = client.run(can_import)
    except OSError as err:   # refused, unresolvable, timed out (TimeoutError is an OSError)
        raise AugflowError(f"cannot reach the Dask scheduler at {address} "
                           f"({type(err).__name__}: {err})".replace("\n", " "),
                           file="params.yaml", field=key, rule="reachable Dask scheduler") from None
    if not has:
        raise AugflowError(f"the Dask scheduler at {address} has no workers", file="params.yaml",
                           field=key, rule="a cluster with workers")
    lacking = sorted(w for w, why in has.items() if why)
    if lacking:
        raise AugflowError(f"Dask worker {lacking[0]} cannot import augflow ({has[lacking[0]]}; "
                           f"install it in every worker's environment: pip install -e <repo>)",
                           file="params.yaml", field=key, rule="workers have augflow")
    return len(has)


def _on_cluster(jobs: list[Any], work: Callable[[Any], Any], address: str,
                what: str) -> list[Any]:
    """The jobs on an existing cluster's workers, through a plain Dask client. Not through
    Prefect's DaskTaskRunner: a Prefect task on a worker reports to a Prefect API, and a worker
    on another machine has none to reach, so each worker process tried to start a server of its
    own and timed out (seen with `dvc repro` and a `dask worker --nworkers 2`). A job's error
    is raised here; the scheduler's dashboard shows the tasks."""
    import uuid

    from distributed import Client

    batch = uuid.uuid4().hex[:8]   # two pipelines on one cluster never share a key
    with Client(address, set_as_default=False) as client:
        futures = client.map(work, jobs, key=[f"{what}-{getattr(j, 'name', i)}-{batch}"
                                              for i, j in enumerate(jobs)], pure=False)
        return client.gather(futures)


def _on_dask(jobs: list[Any], work: Callable[[Any], Any], workers: int,
             what: str) -> list[Any]:
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    # task(name=...)(work) is what task(work, name=...) does; prefect's overloads type only this form
    job_task = task(name=what, task_run_name="{job.name}")(work)
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                            "processes": True, "dashboard_address": None})

    # prefect-dask subclasses the bare TaskRunner (TaskRunner[PrefectConcurrentFuture]); the generic
    # is invariant, so flow's TaskRunner[PrefectFuture] hint refuses it though it runs as one
    @flow(name=f"augflow-{what}", task_runner=runner)  # type: ignore[arg-type]
    def run_batch(batch: list[Any]) -> list[Any]:
        return [f.result() for f in job_task.map(batch)]

    return run_batch(jobs)
