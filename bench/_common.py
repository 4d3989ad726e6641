"""Helpers shared by the benchmarks: machine description, temp workspaces, BENCHMARKS.md sections."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

# Another job often keeps a core busy on this shared 2-core machine. With the OpenMP default wait
# policy, torch's 2 threads then spin at every barrier until the descheduled one runs again, and
# small-batch training slows 30-150x (measured: bench/train_loop.py). Benchmark processes and their
# children wait passively instead unless the caller sets OMP_WAIT_POLICY. Import _common before torch.
# (BENCH_OMP_DEFAULT=1 keeps the OpenMP default, for the one row that shows the slowdown.)
if os.environ.pop("BENCH_OMP_DEFAULT", None) is None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
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


def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def default_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def stage_env(**extra: str) -> dict[str, str]:
    """The environment for dvc / the flow: the venv's python first on PATH (dvc.yaml's `python`)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def make_workspace(path: Path, params: dict) -> Path:
    """A git + DVC workspace holding this repo's dvc.yaml, src/ (the stages' code deps) and params."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", path / "dvc.yaml")
    shutil.copytree(REPO / "src", path / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    (path / "data" / "raw").mkdir(parents=True, exist_ok=True)   # the prepare stage's file input
    (path / "data" / "raw" / ".gitkeep").touch()
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "bench@example.invalid"],
                ["git", "config", "user.name", "augflow bench"], [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=path, check=True, capture_output=True, env=stage_env())
    return path
