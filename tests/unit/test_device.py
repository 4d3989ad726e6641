"""augflow.device: what `device` picks on which machine, the error for an absent accelerator,
and that the CPU path trains the same weights as before the setting existed.

This machine has no GPU: the choice is tested through the injectable availability flags, and
the CUDA/MPS training path itself is not run here."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from augflow.config import Config, VAEConfig, config_from_dict
from augflow.device import module_device, resolve_device, state_on_cpu
from augflow.errors import AugflowError
from augflow.evaluation.classifiers import TorchNet
from augflow.models.classifier import MLPClassifier
from augflow.models.vae_fit import train_cvae


@pytest.mark.parametrize("cuda, mps, picked", [
    (True, True, "cuda"),     # CUDA first
    (True, False, "cuda"),
    (False, True, "mps"),     # then MPS
    (False, False, "cpu"),    # then the CPU
])
def test_auto_prefers_cuda_then_mps_then_cpu(cuda, mps, picked):
    assert resolve_device("auto", cuda_available=cuda, mps_available=mps) == torch.device(picked)


@pytest.mark.parametrize("setting", ["cpu", "cuda", "mps"])
def test_an_explicit_device_is_taken_when_present(setting):
    assert resolve_device(setting, cuda_available=True, mps_available=True) == torch.device(setting)


@pytest.mark.parametrize("setting", ["cuda", "mps"])
def test_an_absent_accelerator_is_an_error_naming_the_key_not_a_silent_cpu_run(setting):
    with pytest.raises(AugflowError) as err:
        resolve_device(setting, cuda_available=False, mps_available=False)
    assert (err.value.file, err.value.field, err.value.rule) == ("params.yaml", "device",
                                                                  "available device")
    assert setting in str(err.value) and "params.yaml: device:" in str(err.value)


def test_the_availability_flags_default_to_torchs_own_checks():
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == torch.device("cpu")


def test_the_config_key_defaults_to_auto_and_is_strict():
    assert Config().device == "auto"
    assert config_from_dict({"device": "cpu"}).device == "cpu"
    with pytest.raises(AugflowError, match="device"):
        config_from_dict({"device": "tpu"})
    with pytest.raises(AugflowError, match="unknown device"):
        resolve_device("tpu")


def _rows(n=120, d=12, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n).astype(np.int64)
    x = np.clip(rng.normal(0.3 + 0.2 * y[:, None], 0.1, size=(n, d)), 0, 1).astype(np.float32)
    return x, y


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_cpu_fit_with_device_cpu_equals_one_without_a_device():
    x, y = _rows()
    cfg = VAEConfig(latent_dim=4, hidden_dims=(16,), max_epochs=6, patience=6, batch_size=32)
    plain, plain_res, _ = train_cvae(x, y, x, y, 3, cfg, seed=3)
    on_cpu, cpu_res, _ = train_cvae(x, y, x, y, 3, cfg, seed=3, device=torch.device("cpu"))
    assert _same_weights(plain, on_cpu)
    assert plain_res.history == cpu_res.history
    assert module_device(on_cpu) == torch.device("cpu")


def test_the_torch_classifier_on_device_cpu_predicts_as_without_one():
    x, y = _rows(seed=1)
    a = TorchNet(seed=2, hidden=(16,), epochs=3).fit(x, y)
    b = TorchNet(seed=2, hidden=(16,), epochs=3, device=torch.device("cpu")).fit(x, y)
    assert _same_weights(a.model_, b.model_)
    assert np.array_equal(a.predict(x), b.predict(x))


def test_state_on_cpu_changes_nothing_on_the_cpu_and_keeps_the_metadata():
    """Checkpoints are written from it: on the CPU it must be the state_dict itself, tensors and
    `_metadata` (load_state_dict's module versions) alike, or the file's bytes would change."""
    state = MLPClassifier(5, 2, (4,)).state_dict()
    before = copy.copy(state)
    meta = state._metadata   # type: ignore[attr-defined]
    out = state_on_cpu(state)
    assert out is state and out._metadata is meta   # type: ignore[attr-defined]
    assert all(out[k] is before[k] for k in before)
