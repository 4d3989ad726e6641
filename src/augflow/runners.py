"""Where the evaluation's independent fits run: in this process, or on a local Dask cluster
through Prefect's DaskTaskRunner (prefect-dask). Both give the same predictions: every fit
is seeded by its own job, not by where or when it runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class FitJob:
    classifier: str
    arm: str
    seed: int


def run_jobs(jobs: list[FitJob], work: Callable[[FitJob], np.ndarray], runner: str = "local",
             workers: int = 2) -> list[np.ndarray]:
    if runner == "local":
        return [work(j) for j in jobs]
    if runner == "dask":
        return _on_dask(jobs, work, workers)
    raise ValueError(f"unknown runner {runner!r}")


def _on_dask(jobs: list[FitJob], work: Callable[[FitJob], np.ndarray],
             workers: int) -> list[np.ndarray]:
    from prefect import flow, task
    from prefect_dask import DaskTaskRunner

    fit_task = task(work, name="fit-predict", task_run_name="{job.classifier}-{job.arm}-{job.seed}")
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                            "processes": True, "dashboard_address": None})

    @flow(name="augflow-evaluate-fits", task_runner=runner)
    def evaluate_fits(batch: list[FitJob]) -> list[np.ndarray]:
        return [f.result() for f in fit_task.map(batch)]

    return evaluate_fits(jobs)
