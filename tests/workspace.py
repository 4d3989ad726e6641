"""Workspace helpers shared by the tests (through conftest.py) and the benchmarks (through
bench/_common.py): a temp git + DVC workspace holding this repo's DAG, the environment its stages
run in, running a stage or dvc in it, and a digest of what it has produced. No numpy or torch
here: the benchmarks set their thread environment before those load."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# What a workspace's stages produce; runlog (timings, locks), data_docs and the validation page
# (run stamps) change on every run by design, so they are not part of the digest.
OUTPUT_DIRS = ("data", "metrics", "plots")


def merged(base: dict, over: dict) -> dict:
    """`base` with `over`'s keys replaced, recursively for nested dicts."""
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
    """A git + DVC workspace with this repo's dvc.yaml, src/ (the stages' code deps), its plot
    templates and `params` as params.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", path / "dvc.yaml")
    # dvc.yaml names code paths as deps; the stages import the installed package.
    shutil.copytree(REPO / "src", path / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (path / "params.yaml").write_text(yaml.safe_dump(params))
    (path / "data" / "raw").mkdir(parents=True, exist_ok=True)   # the prepare stage's file input
    (path / "data" / "raw" / ".gitkeep").touch()
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "tests@example.invalid"],
                ["git", "config", "user.name", "augflow tests"],
                [sys.executable, "-m", "dvc", "init", "-q"]):
        subprocess.run(cmd, cwd=path, check=True, capture_output=True, env=stage_env())
    shutil.copytree(REPO / ".dvc" / "plots", path / ".dvc" / "plots")   # the plot templates
    return path


def dvc(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ws, capture_output=True,
                          text=True, env=stage_env())
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def augflow(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "augflow.cli", *args], cwd=ws,
                          capture_output=True, text=True, env=stage_env())


def augflow_here(ws: Path, *args: str) -> subprocess.CompletedProcess:
    """`augflow *args` run in this process, in `ws`: the same `main()` the console script runs,
    its exit code and what it printed, without the ~3 s a new interpreter spends importing torch,
    pandas and sklearn again. An exception main() does not turn into a message propagates to the
    test (a subprocess would print it as a traceback)."""
    from augflow.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(ws), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(["augflow", *args], code, out.getvalue(), err.getvalue())


def output_digest(ws: Path) -> dict[str, str]:
    """md5 of every file the stages produced in `ws`, by workspace-relative path."""
    out = {}
    for sub in OUTPUT_DIRS:
        for f in sorted((ws / sub).rglob("*")) if (ws / sub).is_dir() else []:
            if (f.is_file() and not f.is_symlink() and not {"runlog", "data_docs"} & set(f.parts)
                    and f.name != "validation.html"):
                out[f.relative_to(ws).as_posix()] = hashlib.md5(f.read_bytes()).hexdigest()
    return out


def fails_cleanly(ws: Path, stage: str, *needles: str, touched: tuple[str, ...] = (),
                  new_process: bool = False) -> str:
    """Run `augflow <stage>` in `ws` and check the bad-input contract: exit 2, no traceback,
    every needle in the message, and every output except `touched` byte-identical. Returns
    stderr for further checks. In this process by default; `new_process=True` runs the console
    entry point in a new interpreter as a user does (a few tests do: the process's exit status)."""
    before = output_digest(ws)
    proc = augflow(ws, stage) if new_process else augflow_here(ws, stage)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr
    after = output_digest(ws)
    changed = [k for k in set(before) - set(touched) if after.get(k) != before[k]]
    assert changed == [], f"changed by a failed run: {changed}"
    return proc.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    """Until `url` answers; fails when the server process `proc` exits first or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else "(its output is in its log file)"
            raise AssertionError(f"server exited early: {out[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"server at {url} did not come up in {seconds} s")
