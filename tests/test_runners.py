"""The Dask runner (Prefect's DaskTaskRunner on a local cluster) gives the default runner's numbers."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

from augflow.evaluate import predictions


def test_dask_runner_gives_the_same_predictions_as_the_local_runner(prefect_server):
    x, y = load_digits(return_X_y=True)
    x = (x / 16).astype(np.float32)
    tr, te = slice(0, 300), slice(1000, 1200)
    data = {"real": (x[tr], y[tr]), "augmented": (x[tr], y[tr]),
            "kept": (x[300:400], y[300:400]), "generated": (x[300:400], y[300:400])}
    args = (["real", "synthetic_only"], data, x[te], (8, 8), 2, 7)
    for clf in ("logreg", "random_forest"):
        local = predictions(clf, *args, runner="local")
        dask = predictions(clf, *args, runner="dask", workers=2)
        assert set(local) == set(dask)
        for arm in local:
            assert local[arm].shape == (2, 200)
            assert np.array_equal(local[arm], dask[arm])
