"""Issue 17's overhead at MNIST's scale: `dvc repro` and the Prefect flow on the 28x28 set of
bench/mnist_scale.py, against the stages' own timers in the same run.

    python bench/scale_overhead.py [--size 70000] [--modes dvc,prefect] [--over JSON]

Each mode gets its own fresh git + DVC workspace (tests/workspace.make_workspace) with the same
npz and params, and runs once, the modes one after another: at this size one run of a mode is
~15 min, so there are no repeats (bench/overhead.py has the repeated digits numbers). "stage
timers" is the sum of the seconds `run_stage` records per stage inside the stage processes; the
ratio wall / timers is the orchestration's cost (start-up, imports, DVC hashing, Prefect). The
in-process run of bench/overhead.py costs its timers plus ~5 s, so wall / timers is within a
percent of the "vs one process" ratio there. Peak memory is the largest RSS of any process the
mode started (RUSAGE_CHILDREN: the stage processes under dvc and the flow)."""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, default_params, machine, make_workspace, merged, stage_env, table, write_section

import numpy as np

from augflow.paths import STAGES
from mnist_scale import make_images

TARGETS = {"dvc": 1.15, "prefect": 1.3}


def stage_timers(ws: Path) -> dict[str, float]:
    return {s: json.loads((ws / f"data/runlog/{s}.timing.json").read_text())["seconds"] for s in STAGES}


def run_mode(mode: str, tmp: Path, params: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """One run of `mode` in a fresh workspace in its own child process (so its peak RSS is its own)."""
    ws = make_workspace(tmp / mode, params)
    np.savez(ws / "data" / "raw" / "set.npz", X=x, y=y)
    env = stage_env(PREFECT_HOME=str(tmp / f"prefect-{mode}"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    cmd = ([sys.executable, "-m", "dvc", "repro"] if mode == "dvc" else
           [sys.executable, str(REPO / "flows/pipeline.py"), "--root", str(ws)])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ws, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{mode}: {' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    timers = stage_timers(ws)
    return {"mode": mode, "wall": wall, "timers": timers,
            "peak_gib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20}


def section(size: int, results: list[dict], command: str, over: str, n_train: int | None) -> str:
    label = {"dvc": "`dvc repro`", "prefect": "`python flows/pipeline.py --root WS`"}
    rows = []
    for r in results:
        t = sum(r["timers"].values())
        ratio = r["wall"] / t
        verdict = "met" if ratio <= TARGETS[r["mode"]] else "**missed**"
        rows.append([label[r["mode"]], f"{r['wall'] / 60:.1f}", f"{t / 60:.1f}", f"{r['wall'] - t:.0f}",
                     f"{ratio:.3f}x", f"<= {TARGETS[r['mode']]}x: {verdict}", f"{r['peak_gib']:.2f}"])
    per_stage = [[s, *(f"{r['timers'][s]:.0f}" for r in results)] for s in STAGES]
    return f"""### 6b. Orchestration at this scale (`bench/scale_overhead.py`)

Command: `{command}`
Machine: {machine()}

{size:,} images of section 6's set{f" ({n_train:,} train rows)" if n_train else ""}, the repo's params.yaml with
data.source npz and `{over}` merged in; each mode in its own fresh git + DVC workspace, one
run each, one after the other. "stage timers" is the compute the stages record themselves
(`data/runlog/*.timing.json`); wall - timers is what DVC and Prefect add (process start-up and
imports per stage, hashing the outputs, the flow's temporary API server and task states).
On digits (section 1) the same ratios are 1.186x and 1.333x.

{table(["mode", "wall min", "stage timers min", "wall - timers s", "wall / timers", "target",
        "peak GiB (any process)"], rows)}

Stage timers, seconds per run:

{table(["stage", *(label[r["mode"]] for r in results)], per_stage)}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=70000)
    ap.add_argument("--modes", default="dvc,prefect")
    ap.add_argument("--over", default="{}", help="JSON merged into params.yaml")
    ap.add_argument("--quick", action="store_true", help="print the section, do not write it")
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    params = merged(merged(default_params(), {"data": {"source": "npz", "path": "data/raw/set.npz"}}),
                    json.loads(args.over))
    if args.mode:   # child: one mode, so RUSAGE_CHILDREN is this mode's alone
        x, y = make_images(args.size)
        print(json.dumps(run_mode(args.mode, Path(args.tmp), params, x, y)))
        return 0
    command = f"python bench/scale_overhead.py --size {args.size} --modes {args.modes} --over '{args.over}'"
    results = []
    with tempfile.TemporaryDirectory(prefix="augflow-bench-orch-") as tmp:
        for mode in args.modes.split(","):
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--tmp", tmp, "--size",
                                  str(args.size), "--over", args.over], stdout=subprocess.PIPE, text=True,
                                 check=True)
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
        runlog = Path(tmp) / args.modes.split(",")[0] / "metrics" / "prepare.json"
        n_train = json.loads(runlog.read_text()).get("n_train") if runlog.is_file() else None
    body = section(args.size, results, command, args.over, n_train)
    if args.quick:
        print(body)
    else:   # appended inside section 6's markers would be rewritten by mnist_scale; own markers
        write_section("scale_overhead", body, quick=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
