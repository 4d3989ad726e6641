"""Helpers shared by the benchmarks: machine description, temp workspaces, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from pathlib import Path


# Another job often keeps a core busy on this shared 2-core machine. With the OpenMP default wait
# policy, torch's 2 threads then spin at every barrier until the descheduled one runs again, and
# small-batch training slows 30-150x (measured: bench/train_loop.py). Benchmark processes and their
# children wait passively instead unless the caller sets OMP_WAIT_POLICY. Import _common before torch.
# (BENCH_OMP_DEFAULT=1 keeps the OpenMP default, for the one row that shows the slowdown.)
if os.environ.pop("BENCH_OMP_DEFAULT", None) is None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
# The workspace helpers are the tests' own (tests/workspace.py), so a benchmark's workspace is
# built exactly as the tests' is.
sys.path.insert(0, str(REPO / "tests"))
from workspace import default_params, make_workspace, merged, stage_env  # noqa: E402,F401
BENCHMARKS = REPO / "BENCHMARKS.md"
SECTIONS = ("overhead", "train_loop", "scaling", "growth")   # their order in BENCHMARKS.md
HEADER = """# Benchmarks

Numbers from `bench/*.py` (issue 8). Each section is written by one command and rewritten only
by re-running that command. The machine is shared and noisy, so every number is a median of
repeats taken within one run, and comparisons are ratios within that run; none of this is a
timed test. `--quick` runs a tiny version of a benchmark (a smoke check) and prints its section
without touching this file.
"""


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    import torch
    load = " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    git = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = " + uncommitted changes in src/" if git("status", "--porcelain", "src") else ""
    return (f"{cores} cores (`nproc`), {model} (/proc/cpuinfo), torch {torch.__version__} "
            f"with {torch.get_num_threads()} threads, Python {sys.version.split()[0]}; "
            f"load average at the end {load} (1/5/15 min; other jobs share the machine); "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; "
            f"code at commit {git('rev-parse', '--short', 'HEAD')}{dirty}")


def median(xs) -> float:
    return float(statistics.median(xs))


def write_section(name: str, body: str, quick: bool) -> None:
    """Replace this benchmark's section of BENCHMARKS.md (or print it, for --quick)."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if quick:
        print(block)
        return
    text = BENCHMARKS.read_text() if BENCHMARKS.is_file() else (
        HEADER + "".join(f"\n<!-- bench:{s} -->\n<!-- /bench:{s} -->\n" for s in SECTIONS))
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
    BENCHMARKS.write_text(text)
    print(block)
    print(f"\nwrote section '{name}' of {BENCHMARKS}")


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def timed_stages(ws: Path, on_done=None) -> dict:
    """Every stage of the DAG in workspace `ws` via augflow.cli.run_stage (what dvc.yaml's
    commands call), timed; stops at the first failing stage and reports it. Returns seconds and
    the process's peak RSS (GiB) after each stage, the train rows, VAE epochs and kept/generated.
    The stage modules, Great Expectations and MLflow are imported first: imports are not timed."""
    import resource
    import time

    import augflow.stages.augment, augflow.stages.evaluate, augflow.stages.filter, augflow.stages.generate  # noqa: F401,E401
    import augflow.stages.prepare, augflow.stages.track, augflow.stages.train, augflow.stages.validate  # noqa: F401,E401
    import great_expectations, mlflow, mlflow.pytorch  # noqa: F401,E401  (imports are not timed)
    from augflow.cli import run_stage
    from augflow.paths import STAGES

    out: dict = {"seconds": {}, "rss_gib": {}}
    for stage in STAGES:
        t0 = time.perf_counter()
        try:
            m = run_stage(stage, ws / "params.yaml", ws)
        except Exception as err:   # report, don't hide: the run stops at the failing stage
            out["error"] = f"{stage}: {type(err).__name__}: {str(err)[:300]}"
            break
        out["seconds"][stage] = time.perf_counter() - t0
        out["rss_gib"][stage] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        if stage == "prepare":
            out["n_train"] = m["n_train"]
        if stage == "train":
            out["epochs"] = m["epochs_run"]
        if stage == "filter":
            out["kept"] = f"{m['n_kept']}/{m['n_generated']}"
        if on_done is not None:
            on_done(stage, out["seconds"][stage])
    return out
