"""Issue 32's table, end to end: a CSV the defaults never saw (4 classes, a log-normal and a
power-law column, a rounded score, an integer count, a near-constant flag, three categorical
columns; tests/owndata.py's skewed_frame) through `dvc repro` with the repo's default params at
each labels-per-class level. Prints, per level and seed, whether every stage ran, the time and
the verdict line of the evaluate report.

    python bench/skewed_table.py --levels 5,10,20 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (thread policy; tests/ on the path)
from _common import default_params, make_workspace, merged, stage_env
from owndata import SKEWED_PARAMS_DATA, skewed_frame


def run(level: int, seed: int, root: Path) -> dict:
    ws = make_workspace(root / f"ws-{level}-{seed}", merged(default_params(), {
        "data": dict(SKEWED_PARAMS_DATA, labels_per_class=level)}))
    skewed_frame(seed).to_csv(ws / "data/raw/skewed.csv", index=False)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=ws, capture_output=True,
                          text=True, env=stage_env())
    out = {"level": level, "seed": seed, "ok": proc.returncode == 0,
           "seconds": round(time.perf_counter() - t0, 1)}
    if proc.returncode:
        out["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return out
    ev = json.loads((ws / "metrics/evaluate.json").read_text())
    out["verdict"] = {clf: {"vs_real": v["verdict"]["vs_real"], "gain": v["gain"]["accuracy"]}
                      for clf, v in ev["classifiers"].items()}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--levels", default="5,10,20")
    ap.add_argument("--seeds", default="0")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="augflow-skewed-") as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            for level in (int(v) for v in args.levels.split(",")):
                results.append(run(level, seed, Path(tmp)))
                print(json.dumps(results[-1]), flush=True)
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
