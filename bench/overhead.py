"""Orchestration overhead: the default pipeline through `dvc repro -f` and through the Prefect flow,
against the same stages called one after another in one plain Python process.

    python bench/overhead.py [--quick] [--runs N]

The full run takes ~25-30 min (5 modes x 3 runs of a ~2 min pipeline). --quick runs a tiny pipeline
once per mode and still takes ~2-3 min: every mode pays the fixed start-up costs being measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import (REPO, default_params, machine, make_workspace, median, merged, stage_env,
                     table, write_section)

from augflow.paths import STAGES  # the one stage list
# --quick: a tiny pipeline (a barely trained VAE may have every sample rejected; augment and
# evaluate take an empty kept set as it is).
QUICK = {"data": {"labels_per_class": 10}, "vae": {"max_epochs": 10, "patience": 10},
         "generate": {"n_per_class": 10}, "extractor": {"max_epochs": 10, "patience": 10},
         "evaluate": {"classifiers": ["logreg"], "arms": ["real", "augmented"], "n_seeds": 1,
                      "n_bootstrap": 100}}
# What one stage process imports (modules plus the heavy ones its entry function imports lazily).
STAGE_IMPORTS = {"prepare": "augflow.stages.prepare", "validate": "augflow.stages.validate, great_expectations",
                 "train": "augflow.stages.train", "generate": "augflow.stages.generate, augflow.plots",
                 "filter": "augflow.stages.filter, augflow.plots", "augment": "augflow.stages.augment",
                 "evaluate": "augflow.stages.evaluate, augflow.plots",
                 "track": "augflow.stages.track, augflow.plots, mlflow, mlflow.pytorch"}
EMPTY_FLOW = "from prefect import flow\n\n@flow\ndef empty():\n    return 0\n\nempty()\n"


def in_process(ws: Path) -> None:
    """Child mode: every stage via augflow.cli.run_stage in this one process; print the total."""
    from augflow.cli import run_stage
    t0 = time.perf_counter()
    for stage in STAGES:
        run_stage(stage, ws / "params.yaml", ws)
    print(json.dumps({"seconds": time.perf_counter() - t0}))


def import_seconds() -> dict[str, float]:
    """Wall seconds of a fresh `python -c "import augflow.cli, <stage's modules>"`, once per stage."""
    out = {}
    for stage, mods in STAGE_IMPORTS.items():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import augflow.cli, {mods}"], check=True, capture_output=True)
        out[stage] = time.perf_counter() - t0
    return out


def stage_seconds(ws: Path) -> float:
    """Sum of the stages' own timers (run_stage writes one per stage): compute without start-up."""
    return sum(json.loads((ws / f"data/runlog/{s}.timing.json").read_text())["seconds"] for s in STAGES)


@contextlib.contextmanager
def prefect_server(env: dict):
    """A long-running Prefect API server (what PREFECT_API_URL would point at in production)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url + "/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("the Prefect server did not start in 120 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)   # the group we started, by its id
        proc.wait(timeout=60)


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall


def measure(tmp: Path, params: dict, runs: int, quick: bool) -> tuple[dict, dict]:
    """Wall seconds per mode and run, and the stages' own timers per workspace mode and run."""
    env = stage_env(PREFECT_HOME=str(tmp / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    srv_env = {**env, "PREFECT_HOME": str(tmp / "prefect-srv")}
    (tmp / "empty_flow.py").write_text(EMPTY_FLOW)
    modes = ("inproc", "dvc", "prefect") if quick else ("inproc", "dvc", "prefect", "prefect_srv")
    ws = {m: make_workspace(tmp / m, params) for m in modes}
    flow = [sys.executable, str(REPO / "flows/pipeline.py"), "--force", "--root"]
    cmds = {
        "inproc": [sys.executable, __file__, "--in-process", str(ws["inproc"])],
        "dvc": [sys.executable, "-m", "dvc", "repro", "-f"],
        "prefect": flow + [str(ws["prefect"])],
    }
    if not quick:   # two explanatory rows, skipped by the smoke check
        cmds["empty_flow"] = [sys.executable, str(tmp / "empty_flow.py")]
        cmds["prefect_srv"] = flow + [str(ws["prefect_srv"])]
    wall = {m: [] for m in cmds}
    compute = {m: [] for m in ws}
    with (contextlib.nullcontext() if quick else prefect_server(srv_env)) as api_url:
        srv_env["PREFECT_API_URL"] = api_url or ""
        for r in range(runs):   # interleaved, so drift in machine load hits every mode alike
            for mode, cmd in cmds.items():
                wall[mode].append(timed(cmd, ws.get(mode, tmp), srv_env if mode == "prefect_srv" else env))
                if mode in ws:
                    compute[mode].append(stage_seconds(ws[mode]))
                print(f"run {r + 1}/{runs} {mode}: {wall[mode][-1]:.1f} s", flush=True)
    return wall, compute


def overhead_rows(wall: dict, compute: dict, base: float, label: dict) -> list[list]:
    """Per mode: median wall seconds, the runs, stage compute, overhead, the ratio to all stages
    in one process, and the verdict against the targets."""
    target = {"dvc": 1.15, "prefect": 1.3}
    rows = []
    for mode in wall:
        w = median(wall[mode])
        c = median(compute[mode]) if mode in compute else None
        verdict = "" if mode not in target else (
            f"<= {target[mode]}x: **{'met' if w / base <= target[mode] else 'missed'}**")
        rows.append([label[mode], f"{w:.1f}", " / ".join(f"{x:.1f}" for x in wall[mode]),
                     f"{c:.1f}" if c is not None else "-",
                     f"{w - c:.1f}" if c is not None else "-",
                     f"{w / base:.3f}x" if mode != "empty_flow" else "-", verdict])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny params, one run each")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--in-process", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.in_process:
        return in_process(args.in_process)
    runs = 1 if args.quick else args.runs
    params = merged(default_params(), QUICK) if args.quick else default_params()
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="augflow-bench-overhead-") as tmp:
        wall, compute = measure(Path(tmp), params, runs, args.quick)
    imports = import_seconds()
    base = median(wall["inproc"])
    label = {"inproc": "all stages in one Python process (`run_stage` x 8)",
             "dvc": "`dvc repro -f`",
             "prefect": "`python flows/pipeline.py --root WS --force`",
             "empty_flow": "an empty Prefect flow (temporary server start + stop only)",
             "prefect_srv": "the same flow against an already running Prefect server (`PREFECT_API_URL`)"}
    rows = overhead_rows(wall, compute, base, label)
    dvc_r, pf_r = median(wall["dvc"]) / base, median(wall["prefect"]) / base
    d_extra = median(wall["dvc"]) - base
    p_extra = median(wall["prefect"]) - base
    params_note = "tiny params (`--quick`)" if args.quick else "the repo's default `params.yaml`"
    body = f"""## 1. Orchestration overhead (`bench/overhead.py`)

Command: `python bench/overhead.py`{' --quick' if args.quick else ''}  
Machine: {machine()}  
Pipeline: {params_note}, each mode in its own temporary git + DVC workspace (a copy of `dvc.yaml`,
`params.yaml`, `src/`); median of {runs} run(s) per mode, the modes interleaved run by run.
"stage timers" is the sum of the seconds `run_stage` records per stage (`data/runlog/*.timing.json`),
i.e. the compute inside each stage, without process start-up and imports.

{table(["mode", "wall s (median)", "runs", "stage timers s", "wall - timers s", "vs one process", "target"], rows)}

Ratios: dvc repro **{dvc_r:.3f}x** (target <= 1.15x, {'met' if dvc_r <= 1.15 else 'missed'}), Prefect flow
**{pf_r:.3f}x** (target <= 1.3x, {'met' if pf_r <= 1.3 else 'missed'}); in seconds, +{d_extra:.1f} s and +{p_extra:.1f} s
over one process.

What limits it: fixed per-run and per-stage start-up, not compute (the stages' own timers agree
across modes). Under DVC each stage is a fresh `python -m augflow.cli` process, and importing what
a stage needs costs {", ".join(f"{k} {v:.1f} s" for k, v in imports.items())} (a fresh
`python -c "import augflow.cli, ..."` each, {sum(imports.values()):.1f} s in all; pandas, scikit-learn,
torch, matplotlib and MLflow are re-imported by several stages), which is nearly all of the
"wall - timers" gap; DVC's own start and hashing are small on these file sizes. The flow adds the
temporary Prefect API server (the empty flow row) and, per stage, a `dvc repro --single-item`
process plus task-state round-trips to the API; the last row shows what a running server saves.
What would close it: fewer, lighter stage processes (e.g. `augment`, 0.04 s of compute, costs a
whole process start; torch/MLflow/matplotlib imported only where used), and for the flow a
long-running Prefect server (`PREFECT_API_URL`) instead of a temporary one per run. The fixed cost
does not grow with data, so the ratios fall as the pipeline's compute grows.
Total benchmark time: {(time.perf_counter() - t_start) / 60:.1f} min.
"""
    write_section("overhead", body, args.quick)


if __name__ == "__main__":
    main()
