"""The config module: its defaults are the repo's params.yaml, and it stays strict."""

from __future__ import annotations

import pytest
import yaml

from augflow.config import Config, config_from_dict, load_config
from augflow.errors import AugflowError
from conftest import REPO


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
            out += _diff(a[key], b[key], f"{prefix}{key}.")
        elif a.get(key) != b.get(key):
            out.append(f"{prefix}{key}: default {a.get(key)!r}, params.yaml {b.get(key)!r}")
    return out


def test_the_config_defaults_are_the_repos_params():
    """A key left out of a user's params.yaml means what the repo's params.yaml says."""
    defaults = Config().model_dump(mode="json")
    params = load_config(REPO / "params.yaml").model_dump(mode="json")
    assert _diff(defaults, params) == []


def test_an_unknown_key_is_refused_and_the_config_is_frozen():
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["vae"]["lattent_dim"] = 4
    with pytest.raises(AugflowError, match="lattent_dim"):
        config_from_dict(raw)
    cfg = load_config(REPO / "params.yaml")
    with pytest.raises(Exception):
        cfg.vae.beta = 2.0


def _data(**data) -> dict:
    return {"data": {"source": "torchvision", "path": "data/raw/tv", **data}}


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "kmnist", "cifar10"])
def test_the_torchvision_source_names_its_set_and_may_turn_downloads_off(name):
    cfg = config_from_dict(_data(torchvision_dataset=name, download=False)).data
    assert (cfg.source, cfg.path, cfg.torchvision_dataset, cfg.download) == (
        "torchvision", "data/raw/tv", name, False)
    assert config_from_dict(_data(torchvision_dataset=name)).data.download is True   # the default


@pytest.mark.parametrize("data, says", [
    ({}, "data: Value error, source 'torchvision' needs data.torchvision_dataset: one of mnist, "
         "fashion_mnist, kmnist, cifar10"),
    ({"torchvision_dataset": "svhn"}, "data.torchvision_dataset: Input should be 'mnist', "
                                      "'fashion_mnist', 'kmnist' or 'cifar10'"),
    ({"torchvision_dataset": "mnist", "path": None}, "source 'torchvision' reads a file: set data.path"),
    ({"torchvision_dataset": "mnist", "image_size": [14, 14]}, "a torchvision set is read at its own size"),
    ({"torchvision_dataset": "mnist", "download": "sometimes"}, "data.download: Input should be a valid boolean"),
    ({"source": "digits", "path": None, "torchvision_dataset": "mnist"},
     "data.torchvision_dataset is read by source 'torchvision' only"),
])
def test_a_wrong_torchvision_setting_is_one_line_naming_the_key(data, says):
    with pytest.raises(AugflowError) as info:
        config_from_dict(_data(**data))
    assert str(info.value).startswith("params.yaml: data") and says in str(info.value)
    assert "\n" not in str(info.value)
