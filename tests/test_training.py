"""The fit loop: divergence is caught with its epoch, retried with a lower lr, and an
interrupted training resumes to exactly the weights of an uninterrupted one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augflow.config import VAEConfig
from augflow.models.cvae import CVAE, cvae_loss
from augflow.models.fitting import DivergedError, FitSettings, fit, with_lr_backoff
from augflow.models.vae_fit import train_cvae


def _data(n=200, d=16, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.int64)
    x = np.clip(rng.normal(0.3 + 0.2 * y[:, None], 0.1, size=(n, d)), 0, 1).astype(np.float32)
    return x, y


def _loss(m, xb, yb):
    parts = cvae_loss(m(xb, yb), xb, 1.0)
    return parts.total, {}


def test_a_nan_loss_stops_training_with_its_epoch():
    x, y = _data()
    calls = {"n": 0}

    def poisoned(m, xb, yb):
        calls["n"] += 1
        loss, parts = _loss(m, xb, yb)
        return (loss * float("nan") if calls["n"] > 9 else loss), parts   # 4 batches + val/epoch

    with pytest.raises(DivergedError) as err:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        fit(CVAE(16, 3, 4, (32,)), poisoned, (xt, yt), (xt, yt),
            FitSettings(lr=1e-3, batch_size=64, max_epochs=10, patience=10, seed=0))
    assert err.value.epoch == 2 and "epoch 2" in str(err.value)


def test_divergence_is_retried_with_a_lower_learning_rate():
    tried = []

    def attempt(lr):
        tried.append(lr)
        if lr > 2e-3:
            raise DivergedError(3, float("inf"), lr)
        return "ok"

    result, lr = with_lr_backoff(attempt, 0.1, retries=3, backoff=0.1)
    assert result == "ok" and tried == pytest.approx([0.1, 0.01, 0.001]) and lr == pytest.approx(1e-3)
    with pytest.raises(DivergedError):
        with_lr_backoff(attempt, 1.0, retries=1, backoff=0.5)


def test_resumed_training_equals_uninterrupted_training():
    x, y = _data()
    cfg = VAEConfig(latent_dim=4, hidden_dims=(32,), max_epochs=30, patience=30, resume_every=10)
    full, full_res, _ = train_cvae(x, y, x, y, 3, cfg, seed=5)

    saved = []

    class Killed(Exception):
        pass

    def save_then_die(state):
        saved.append(state)
        if state["epoch"] == 20:
            raise Killed

    with pytest.raises(Killed):
        train_cvae(x, y, x, y, 3, cfg, seed=5, on_state=save_then_die)
    resumed, res, _ = train_cvae(x, y, x, y, 3, cfg, seed=5, resume=saved[-1])
    assert res.epochs_run == full_res.epochs_run == 30
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
