"""The augflow pipeline as a Prefect flow. Each task runs one DVC stage, so DVC stays the
authority on caching and lineage, and a flow run leaves `dvc status` clean.

Run it:  python flows/pipeline.py [--root DIR] [--force]"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.states import Completed

from augflow.data.augmented import mix_summary
from augflow.evaluation.verdict import (HOW_TO_READ, promotion_said, short_answer,
                                       verdict_bullets)
from augflow.paths import STAGES  # one list; a test holds it to dvc.yaml


class StageInputError(RuntimeError):
    """The stage rejected its input or params: retrying cannot help."""


class StageCrashed(RuntimeError):
    """The stage failed for another reason (killed, out of memory, a lock): worth a retry."""


class WorkspaceBusy(RuntimeError):
    """Another pipeline run holds this workspace."""


class ParamsChanged(RuntimeError):
    """params.yaml changed while the run was between stages."""


def _params_digest(root: str) -> str:
    return hashlib.sha256((Path(root) / "params.yaml").read_bytes()).hexdigest()


@contextmanager
def workspace_lock(root: Path, wait_seconds: float):
    """One pipeline run per workspace: a second one waits up to `wait_seconds`, then fails
    with a clear message instead of interleaving its stages with the first one's."""
    path = root / ".augflow.lock"
    with open(path, "a+") as fh:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceBusy(f"another augflow pipeline run is using {root} (lock "
                                        f"{path}); waited {wait_seconds:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Open handles on DVC's repo lock (.dvc/tmp/lock) held by flow runs in this process, by root.
_DVC_LOCKS: dict[str, object] = {}
# Test seam: called with (stage, root) after each stage while the flow holds the workspace.
BETWEEN_STAGES_HOOK = None


@contextmanager
def dvc_repo_lock(root: Path):
    """Hold DVC's own repo lock for the whole flow run (the same `flock` on .dvc/tmp/lock that
    DVC's zc.lockfile takes); `run_stage` hands it to its `dvc repro` child and takes it back.
    So a manual `dvc repro` (or checkout, gc, ...) started while the flow is between two stages
    stops at once with DVC's "Unable to acquire lock", before it removes or rebuilds an output
    under the flow. One started in the instant of a hand-over gets the lock instead: it runs
    that stage itself and the flow's child waits and finds it up to date."""
    path = root / ".dvc" / "tmp" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        _flock_waiting(fh, f"{path} (a DVC command is running in {root})")
        _DVC_LOCKS[str(root)] = fh
        try:
            yield
        finally:
            _DVC_LOCKS.pop(str(root), None)
            fcntl.flock(fh, fcntl.LOCK_UN)


def _flock_waiting(fh, what: str) -> None:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for the lock {what}", file=sys.stderr)
        fcntl.flock(fh, fcntl.LOCK_EX)


@contextmanager
def _dvc_lock_handed_over(root: str):
    fh = _DVC_LOCKS.get(root)
    if fh is None:            # run_stage outside a flow run: DVC locks for itself
        yield
        return
    fcntl.flock(fh, fcntl.LOCK_UN)
    try:
        yield
    finally:
        _flock_waiting(fh, f"{root}/.dvc/tmp/lock (a DVC command started during a hand-over)")


def _retry_unless_input_error(task, task_run, state) -> bool:
    exc = state.result(raise_on_failure=False)
    return not isinstance(exc, StageInputError)


def _stage_env() -> dict[str, str]:
    env = dict(os.environ)
    # dvc.yaml calls `python -m augflow.cli`: make that the interpreter running this flow.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    try:
        from prefect.runtime import flow_run
        if flow_run.id:
            env["AUGFLOW_FLOW_RUN_ID"] = str(flow_run.id)
    except Exception:  # outside a flow run there is no id to record
        pass
    return env


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_object(root: str, md5: str) -> Path:
    return Path(root) / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def corrupt_outputs(root: str, stage: str) -> list[tuple[str, str, str]]:
    """(path, md5 dvc.lock records, md5 of the file) for each output of `stage` in the
    workspace whose bytes are not the recorded ones (every augflow output is a single file)."""
    import yaml

    lock = yaml.safe_load((Path(root) / "dvc.lock").read_text()) or {}
    bad = []
    for out in lock.get("stages", {}).get(stage, {}).get("outs", []):
        path = Path(root) / out["path"]
        if path.is_file() and "md5" in out and (actual := _md5(path)) != out["md5"]:
            bad.append((out["path"], out["md5"], actual))
    return bad


def _run_group(cmd: list[str], root: str) -> subprocess.CompletedProcess:
    """`dvc repro` and the stage it starts, in a process group of their own. When this run is
    stopped (SIGTERM: Prefect's engine raises TerminationSignal here; Ctrl-C; a cancel), the
    whole group is stopped with it: killing only dvc would leave the stage running on,
    writing outputs under the next run. Its atomic writes keep every finished file whole, and
    DVC records nothing for it, so the next run redoes it."""
    proc = subprocess.Popen(cmd, cwd=root, env=_stage_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate()
    except BaseException:
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@task(task_run_name="dvc-repro-{stage}", retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=_retry_unless_input_error)
def run_stage(stage: str, root: str, force: bool = False, after: dict | None = None) -> dict:
    """`after`: the previous stage's result. Unused here, but passing it draws the DAG's edge
    in Prefect's run graph (Prefect links tasks through their inputs)."""
    logger = get_run_logger()
    cmd = [sys.executable, "-m", "dvc", "repro", "--single-item", stage]
    if force:
        cmd.append("--force")
    with _dvc_lock_handed_over(root):
        proc = _run_group(cmd, root)
    out = (proc.stdout + proc.stderr).strip()
    skipped = "didn't change, skipping" in out
    if proc.returncode == 0 and (bad := corrupt_outputs(root, stage)):
        # DVC restored (or kept) a file whose bytes are not the ones dvc.lock records: a cache
        # object rotted on disk. DVC trusts a cache file whose size and mtime are unchanged, so
        # it would hand these bytes to every later stage. Drop them and rebuild the stage.
        for path, expected, actual in bad:
            logger.warning("%s: its bytes (md5 %s) are not the ones dvc.lock records (%s): the "
                           "DVC cache object %s is corrupt; removed, rebuilding %s", path,
                           actual, expected, _cache_object(root, expected), stage)
            for f in (Path(root) / path, _cache_object(root, expected)):
                if f.exists() and _md5(f) != expected:
                    f.chmod(0o644)
                    f.unlink()
        with _dvc_lock_handed_over(root):
            proc = _run_group(cmd + ["--force"] if not force else cmd, root)
        out = (proc.stdout + proc.stderr).strip()
        skipped = False
        if proc.returncode == 0 and (still := corrupt_outputs(root, stage)):
            raise StageInputError(f"stage {stage}: {still[0][0]} does not match dvc.lock after "
                                  f"a rebuild (md5 {still[0][2]}, recorded {still[0][1]})")
    logger.info("stage %s %s", stage, "up to date (skipped)" if skipped else "ran")
    if proc.returncode != 0:
        tail = "\n".join(out.splitlines()[-25:])
        # Only a stage command that died (killed, out of memory, a crash) is worth a retry;
        # rejected input or a DVC config problem (e.g. a param missing) fails the same way again.
        # dvc itself killed by a signal (negative code) is a crash too, whatever it printed.
        crashed = proc.returncode < 0 or ("failed to run:" in out
                                          and f"augflow {stage}: error:" not in out)
        if not crashed and "Unable to acquire lock" not in out:
            raise StageInputError(f"stage {stage} rejected its input or config (dvc exit "
                                  f"{proc.returncode}):\n{tail}")
        raise StageCrashed(f"stage {stage} failed (dvc exit {proc.returncode}):\n{tail}")
    metrics_file = Path(root) / "metrics" / f"{stage}.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    result = {"stage": stage, "skipped": skipped, "metrics": metrics}
    if skipped:
        # a state of its own in the Prefect UI: a plain "Completed" read as "it ran"
        return Completed(name="Skipped", data=result,   # type: ignore[return-value]
                         message=f"DVC: {stage}'s deps, params and outputs are unchanged; "
                                 f"not rerun (its outputs are the last run's)")
    return result


def mlflow_run_link(tracking_uri: str, experiment_id, run_id) -> str:
    """Where a reviewer opens the run: the tracking server itself when the configured URI is
    one, else the UI `make ui` serves over the local store (on $MLFLOW_PORT, default 5000)."""
    # workflowType: MLflow 3.17 opens its GenAI UI unless the link (or the sidebar's toggle,
    # remembered per browser) asks for the model-training one; the experiment tag does not
    page = f"#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/{page}"
    return f"`make ui`, then http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}/{page}"


def summary_markdown(results: list[dict], tracking: dict | None = None,
                     tracking_uri: str = "") -> str:
    """The run's summary artifact; `tracking`: data/runlog/tracking.json, linking the MLflow run
    at `tracking_uri` (params.yaml's tracking.uri). The answer first (a verdict per classifier,
    the promotion, where the run is in MLflow), then the numbers, then what each stage did: the
    page opens on what a reviewer came for."""
    lines = ["# augflow pipeline run"]
    ev = next((r["metrics"] for r in results if r["stage"] == "evaluate"), {})
    if ev.get("classifiers"):
        lines += ["", "## Did augmentation help?", ""]
        lines += verdict_bullets(ev["classifiers"])
        lines += ["", f"Promotion: **{promotion_said(ev['promotion'])}**: "
                      f"{ev['promotion']['reason']}"]
    if tracking:
        link = mlflow_run_link(tracking_uri, tracking.get("experiment_id"), tracking.get("run_id"))
        lines += ["", f"MLflow: experiment {tracking.get('experiment_id')}, run "
                      f"`{tracking.get('run_id')}` ({link})"]
    if ev.get("classifiers"):
        lines += ["", HOW_TO_READ, "", "| classifier | real acc | augmented acc | gain [95% CI] |",
                  "| --- | --- | --- | --- |"]
        for clf, r in ev["classifiers"].items():
            g = r["gain"]["accuracy"]
            lines.append(f"| {clf} | {r['arms']['real']['accuracy']['mean']:.4f} | "
                         f"{r['arms']['augmented']['accuracy']['mean']:.4f} | "
                         f"{g['mean']:+.4f} [{g['ci_low']:+.4f}, {g['ci_high']:+.4f}] |")
    flt = next((r["metrics"] for r in results if r["stage"] == "filter"), {})
    if "kept_fraction" in flt:
        fid = flt.get("fidelity", {}).get("kept_vs_train", {}).get("fid")
        lines += ["", f"Filter: kept {flt['n_kept']} of {flt['n_generated']} generated rows "
                      f"({flt['kept_fraction']:.1%})"
                      + (f"; FID of the kept rows vs train {fid:.3f}." if fid is not None else ".")]
    mix = next((r["metrics"].get("mix") for r in results if r["stage"] == "augment"), None)
    if mix:
        lines += ["", f"Mix: {mix_summary(mix)}."]
    lines += ["", "## Stages", "", "| stage | status |", "| --- | --- |"]
    lines += [f"| {r['stage']} | {'up to date (skipped)' if r['skipped'] else 'ran'} |"
              for r in results]
    return "\n".join(lines) + "\n"


def answer_text(root: Path, tracking_uri: str = "") -> str:
    """What the terminal shows when a run ends: the verdict per classifier, the promotion and
    where to look in MLflow (the run summary's lines, without the markdown)."""
    ev_path = root / "metrics/evaluate.json"
    if not ev_path.is_file():
        return ""
    ev = json.loads(ev_path.read_text())
    lines = ["Did augmentation help? (test accuracy of the augmented set, paired gains with "
             "95% CIs)"]
    lines += [b.replace("**", "") for b in verdict_bullets(ev["classifiers"])]
    lines.append(f"Promotion: {promotion_said(ev['promotion'])}: {ev['promotion']['reason']}")
    runlog = root / "data/runlog/tracking.json"
    if runlog.is_file():
        t = json.loads(runlog.read_text())
        link = mlflow_run_link(tracking_uri, t.get("experiment_id"), t.get("run_id"))
        lines.append(f"MLflow: {link.replace('`', '')}")
    return "\n".join(lines)


@flow(name="augflow-pipeline", log_prints=True)
def augflow_pipeline(root: str = ".", force: bool = False, wait_for_lock_s: float = 0.0) -> Any:
    """Run every stage of dvc.yaml in order; a failing stage stops the run. Returns each stage's
    result (as the final state's data: called as a function, the list)."""
    root = str(Path(root).resolve())
    with workspace_lock(Path(root), wait_for_lock_s), dvc_repo_lock(Path(root)):
        results: list[dict] = []
        # Each stage's `dvc repro` reads params.yaml when it starts: an edit between two stages
        # would build the later stages on other params than the earlier ones. The run checks
        # that params.yaml is the one it started with before each stage, and stops otherwise.
        params_at_start = _params_digest(root)
        for stage in STAGES:
            if _params_digest(root) != params_at_start:
                done = ", ".join(r["stage"] for r in results)
                raise ParamsChanged(
                    f"{root}/params.yaml changed during this run (after {done}); stopped "
                    f"before {stage} so no stage uses other params than the ones before it. "
                    f"Run again: DVC reruns what the new params touch")
            # the task's final state, then its result: a skipped stage's state is its own
            # ("Skipped"), which a direct call would hand back instead of the result
            state = run_stage(stage, root, force, after=results[-1] if results else None,
                              return_state=True)
            results.append(state.result())
            if BETWEEN_STAGES_HOOK is not None:
                BETWEEN_STAGES_HOOK(stage, root)
    runlog = Path(root) / "data/runlog/tracking.json"
    tracking = json.loads(runlog.read_text()) if runlog.is_file() else None
    from augflow.config import load_config

    tracking_uri = load_config(Path(root) / "params.yaml").tracking.uri
    create_markdown_artifact(summary_markdown(results, tracking, tracking_uri),
                             key="augflow-run-summary",
                             description="stages run and the evaluation's verdict")
    reports = {
        "augflow-filter-report": (Path(root) / "data/filtered/report.md",
                                  "what the per-sample filter kept and rejected, and why"),
        "augflow-augment-report": (Path(root) / "data/reports/augment.md",
                                   "the mix: rows and weight per source, chosen on validation"),
        "augflow-evaluation-report": (Path(root) / "data/reports/evaluate.md",
                                      "test accuracy per arm, the gain's CI, promotion"),
    }
    for key, (path, description) in reports.items():
        if path.is_file():
            create_markdown_artifact(path.read_text(), key=key, description=description)
    validation = Path(root) / "data/reports/validation.json"
    if validation.is_file():
        checks = json.loads(validation.read_text())["checks"]
        create_table_artifact([{"check": name, "expectations": c["evaluated"],
                                "failed": len(c["failed"]), "success": c["success"]}
                               for name, c in checks.items()], key="augflow-validation-summary",
                              description="Great Expectations checks on the splits")
    filt = next(r["metrics"] for r in results if r["stage"] == "filter")
    if filt.get("rejected"):
        create_table_artifact([{"criterion": k, "rejected": v} for k, v in filt["rejected"].items()],
                              key="augflow-filter-rejections",
                              description="synthetic samples rejected, by first failing criterion")
    # the run's final state carries the answer, and so do its tags: Prefect's flow-run page
    # shows the tags beside the run's name (the state message only under Details)
    ev = next((r["metrics"] for r in results if r["stage"] == "evaluate"), {})
    said = short_answer(ev.get("classifiers", {}))
    if said:
        promoted = "promoted" if ev["promotion"]["promote"] else "not promoted"
        _tag_flow_run(said.split(", ") + [promoted])
        return Completed(message=f"{said}; {promoted}", data=results)
    return results


def _tag_flow_run(tags: list[str]) -> None:
    """Add `tags` to this flow run's own (a deployment's tags stay)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        client.update_flow_run(run.id, tags=list(run.tags) + [t for t in tags
                                                              if t not in run.tags])


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the augflow pipeline as a Prefect flow.")
    parser.add_argument("--root", default=".", help="workspace holding dvc.yaml and params.yaml")
    parser.add_argument("--force", action="store_true", help="rerun every stage")
    parser.add_argument("--wait-for-lock", type=float, default=0.0, metavar="SECONDS",
                        help="wait this long for another run in the same workspace to finish")
    args = parser.parse_args()
    try:
        augflow_pipeline(root=args.root, force=args.force, wait_for_lock_s=args.wait_for_lock)
    except (StageInputError, StageCrashed, WorkspaceBusy, ParamsChanged) as err:
        print(f"augflow pipeline failed: {err}", file=sys.stderr)
        sys.exit(2)
    from augflow.config import load_config

    root = Path(args.root).resolve()
    print("\n" + answer_text(root, load_config(root / "params.yaml").tracking.uri))


if __name__ == "__main__":
    main()
