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


def _killed_and_resumed(cfg: VAEConfig, kill_at: int):
    """(uninterrupted fit, its result, the fit killed after the state of epoch `kill_at` and
    resumed from it, its result)."""
    x, y = _data()
    full, full_res, _ = train_cvae(x, y, x, y, 3, cfg, seed=5)
    saved = []

    class Killed(Exception):
        pass

    def save_then_die(state):
        saved.append(state)
        if state["epoch"] == kill_at:
            raise Killed

    with pytest.raises(Killed):
        train_cvae(x, y, x, y, 3, cfg, seed=5, on_state=save_then_die)
    resumed, res, _ = train_cvae(x, y, x, y, 3, cfg, seed=5, resume=saved[-1])
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    return full_res, res


def test_resumed_training_equals_uninterrupted_training():
    cfg = VAEConfig(latent_dim=4, hidden_dims=(32,), max_epochs=30, patience=30, resume_every=10)
    full_res, res = _killed_and_resumed(cfg, kill_at=20)
    assert res.epochs_run == full_res.epochs_run == 30


def _fit_counting(x, y, **settings):
    """fit() on a small CVAE, counting the rows each training batch holds (the validation
    pass is the one call with every row)."""
    seen: list[int] = []

    def counting(m, xb, yb):
        if m.training:
            seen.append(len(xb))
        return _loss(m, xb, yb)

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(0)
    model = CVAE(16, 3, 4, (32,))
    res = fit(model, counting, (xt, yt), (xt, yt),
              FitSettings(lr=1e-3, batch_size=32, seed=0, **settings))
    return model, res, seen


def test_epoch_rows_cuts_each_epoch_and_leaves_a_smaller_set_as_it_was():
    x, y = _data(n=200)
    _, res, seen = _fit_counting(x, y, max_epochs=4, patience=4, epoch_rows=70)
    assert res.epochs_run == 4 and sum(seen) == 4 * 70 and res.steps == 4 * 3   # 32 + 32 + 6
    # at or above the set's size, the same draws, batches and weights as no cap at all
    a, res_a, _ = _fit_counting(x, y, max_epochs=3, patience=3, epoch_rows=200)
    b, res_b, _ = _fit_counting(x, y, max_epochs=3, patience=3)
    assert res_a.history == res_b.history
    for wa, wb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(wa, wb)


def test_max_steps_stops_mid_epoch_and_still_scores_validation():
    x, y = _data(n=200)   # 7 batches of 32 per epoch
    _, res, seen = _fit_counting(x, y, max_epochs=50, patience=50, max_steps=10)
    assert res.steps == 10 and len(seen) == 10 and res.epochs_run == 2
    assert len(res.history) == 2 and sum(seen) == 200 + 3 * 32   # the cut epoch: 3 batches


def test_a_step_budget_resumes_to_the_same_weights():
    cfg = VAEConfig(latent_dim=4, hidden_dims=(32,), max_epochs=30, patience=30, resume_every=5,
                    batch_size=64, max_steps=35, epoch_rows=150)   # 3 steps an epoch: 12 epochs
    full_res, res = _killed_and_resumed(cfg, kill_at=10)
    assert res.steps == full_res.steps == 35 and res.epochs_run == full_res.epochs_run == 12


def test_copies_fill_one_epoch_and_no_more():
    from augflow.data.copies import copies_for

    assert copies_for(10, 1221, 16384) == 10     # digits: 13,431 rows an epoch, as before
    assert copies_for(10, 6800, 16384) == 2      # 10k images: 20,400 rows
    assert copies_for(10, 47600, 16384) == 0     # MNIST's size: the real rows fill it
    assert copies_for(10, 47600, None) == 10 and copies_for(3, 0, 16384) == 3


def test_auto_step_budget_binds_the_conv_models_and_not_the_mlp(monkeypatch):
    """max_steps: auto gives the conv VAE and the CNN extractor arch.CONV_AUTO_STEPS steps and
    the MLP none; a number or null is taken as set."""
    from augflow.config import ExtractorConfig
    from augflow.models import arch
    from augflow.models.arch import CONV_AUTO_STEPS, step_budget
    from augflow.quality.extractor import fit_extractor

    assert step_budget("auto", "conv", "conv") == CONV_AUTO_STEPS == 2000
    assert step_budget("auto", "mlp", "conv") is None
    assert step_budget(7, "mlp", "conv") == 7 and step_budget(None, "cnn", "cnn") is None
    monkeypatch.setattr(arch, "CONV_AUTO_STEPS", 5)   # the wiring, in seconds instead of minutes
    rng = np.random.default_rng(0)
    x = rng.random((96, 28 * 28)).astype(np.float32)
    y = np.arange(96) % 2
    shape = (28, 28, 1)
    base = dict(max_epochs=20, patience=20, batch_size=32)   # 3 steps an epoch, 60 without a cap
    _, res, _ = train_cvae(x, y, x, y, 2, VAEConfig(**base, latent_dim=2, conv_channels=(4, 8),
                                                    train_copies=0), 0, image_shape=shape)
    assert res.steps == 5
    _, res = fit_extractor(x, y, x, y, 2, ExtractorConfig(**base, conv_channels=(4, 8)), 0,
                           image_shape=shape)
    assert res.steps == 5
    _, res, _ = train_cvae(x[:, :16], y, x[:, :16], y, 2,
                           VAEConfig(max_epochs=4, patience=4, batch_size=32, latent_dim=2,
                                     hidden_dims=(8,)), 0)
    assert res.steps == 12                                    # the MLP: every epoch, no cap


def test_val_rows_scores_a_fixed_subset_and_leaves_training_as_it_was():
    x, y = _data(n=200)
    scored: list[int] = []

    def watching(m, xb, yb):
        if not m.training:
            scored.append(len(xb))
        return _loss(m, xb, yb)

    def run(**settings):
        scored.clear()
        torch.manual_seed(0)
        model = CVAE(16, 3, 4, (32,))
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        res = fit(model, watching, (xt, yt), (xt, yt),
                  FitSettings(lr=1e-3, batch_size=32, seed=0, max_epochs=3, patience=3,
                              **settings))
        return model, res, list(scored)

    whole, res_whole, n_whole = run()
    same, res_same, _ = run(val_rows=200)            # at the set's size: as before
    assert res_same.history == res_whole.history and n_whole == [200] * 3
    cut, res_cut, n_cut = run(val_rows=50)
    assert n_cut == [50] * 3                          # every epoch the same 50 rows
    assert [h["train_loss"] for h in res_cut.history] == [h["train_loss"]
                                                            for h in res_whole.history]
    assert res_cut.history[0]["val_loss"] != res_whole.history[0]["val_loss"]


def test_class_latents_fit_on_at_most_max_per_class_rows_per_class():
    from augflow.models.latent import fit_class_latents

    torch.manual_seed(0)
    model = CVAE(16, 3, 4, (32,)).eval()
    x, y = (torch.from_numpy(a) for a in _data(n=300))
    full = fit_class_latents(model, x, y, 3)
    assert all(torch.equal(full[k], fit_class_latents(model, x, y, 3, max_per_class=300)[k])
               for k in full)
    a = fit_class_latents(model, x, y, 3, max_per_class=20, seed=1)
    b = fit_class_latents(model, x, y, 3, max_per_class=20, seed=1)
    assert all(torch.equal(a[k], b[k]) for k in a)   # one seed, one subset
    assert not torch.equal(a["mean"], full["mean"])
    # the subset's mean is the mean of 20 of the class's codes: close to the full one
    assert (a["mean"] - full["mean"]).abs().max() < 0.5


def test_patience_in_steps_keeps_a_tiny_fit_going_past_a_few_stale_epochs():
    """At 5 labels per class an epoch is one step: 15 epochs of patience stopped the extractor
    within a few dozen steps. patience_steps makes the fit wait that many steps past its best."""
    from augflow.models.classifier import MLPClassifier, classification_loss

    x, y = map(torch.from_numpy, _data(n=30, d=8, k=3))
    y_val = (y + 1) % 3          # validation disagrees with train: its loss soon only grows
    runs = {}
    for steps in (0, 20):
        torch.manual_seed(0)
        model = MLPClassifier(8, 3, (16,))
        runs[steps] = fit(model, classification_loss, (x, y), (x, y_val),
                          FitSettings(lr=1e-2, batch_size=64, max_epochs=500, patience=3,
                                      patience_steps=steps, seed=0))
    for steps, res in runs.items():
        assert res.steps == res.epochs_run               # one step an epoch
        assert res.epochs_run < 500                       # patience ended it, not the cap
        # it stops the first epoch both rules allow: 3 stale epochs and `steps` stale steps
        assert res.epochs_run - res.best_epoch == max(3, steps)
