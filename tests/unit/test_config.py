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
