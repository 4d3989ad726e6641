"""`augflow lowdata`: the low-data curve's JSON carries, per classifier and level, the paired
gain over every arm (gain_vs) and, per draw, how much of the VAE's output the filter kept."""

from __future__ import annotations

import json

import pytest
import yaml

from augflow.cli import main
from conftest import TINY, merged


@pytest.mark.slow
def test_lowdata_json_carries_gain_vs_every_arm_and_the_kept_share_per_draw(tmp_path):
    params = merged(TINY, {"extractor": {"patience_steps": 0}})   # the tiny fit, not 1000 steps
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "data" / "raw").mkdir(parents=True)
    out = tmp_path / "curve"
    rc = main(["--params", str(tmp_path / "params.yaml"), "--root", str(tmp_path), "lowdata",
               "--levels", "5", "--draws", "2", "--seeds", "1", "--classifiers", "logreg",
               "--arms", "real,augmented,classic", "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "lowdata.json").read_text())
    entry = result["classifiers"]["logreg"]["5"]
    assert set(entry["gain_vs"]) == {"real", "classic"}
    for g in entry["gain_vs"].values():
        assert g["ci_low"] <= g["mean"] <= g["ci_high"]
    # the gain over an arm is augmented minus that arm, paired: its mean is the means' difference
    arms = entry["arms"]
    assert entry["gain_vs"]["classic"]["mean"] == pytest.approx(
        arms["augmented"]["mean"] - arms["classic"]["mean"], abs=1e-9)
    assert entry["gain"] == entry["gain_vs"]["real"]
    kept = result["kept_fraction"]["5"]
    assert len(kept) == 2 and all(0.0 <= k <= 1.0 for k in kept)
    assert "the filter kept, per draw: 5/class: " in (out / "lowdata.md").read_text()
