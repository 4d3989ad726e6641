"""Reruns lose nothing: a stage killed mid-run leaves nothing DVC would accept as done, the next
`dvc repro` completes, and a forced rerun of each stage gives the same bytes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from conftest import REPO, dvc, output_digest, stage_env


@pytest.fixture
def ws(pipeline_ws, tmp_path):
    dst = tmp_path / "ws"
    shutil.copytree(pipeline_ws, dst, symlinks=True)
    return dst


def _lock_hashes(ws) -> dict[str, str]:
    stages = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    return {f"{name}:{o['path']}": o["md5"] for name, st in stages.items()
            for o in st.get("outs", [])}


def _leftover_temp_files(ws) -> list:
    return [p for sub in ("data", "metrics", "plots") for p in (ws / sub).rglob(".*.tmp")]


# Each stage is killed (SIGKILL to DVC and the stage together) after one of its files is fully
# written to its temp path and before the rename; most are killed after earlier outputs of the
# same stage were already published.
CRASH_POINTS = [
    ("prepare", "data/prepared/schema.json"),      # the three splits already in place
    ("validate", "metrics/validate.json"),         # validation.json already in place
    ("train", "plots/train_curve.csv"),            # the checkpoint already in place
    ("generate", "plots/sample_grid.png"),         # the samples already in place
    ("filter", "data/filtered/kept.parquet"),      # extractor and scores already in place
    ("augment", "data/augmented/train.parquet"),
    ("evaluate", "metrics/evaluate.json"),         # reports and plots already in place
    ("track", "data/runlog/tracking.json"),        # inside the MLflow parent run
]


def test_the_crash_points_cover_every_stage():
    """So that, with the forced rerun at each one's end, the whole pipeline is rerun by force."""
    from augflow.paths import STAGES

    assert [stage for stage, _ in CRASH_POINTS] == list(STAGES)


@pytest.mark.parametrize("stage, crash_at", CRASH_POINTS)
def test_every_stage_killed_mid_write_is_not_taken_as_done(ws, stage, crash_at):
    from augflow.io import CRASH_ENV

    good = _lock_hashes(ws)
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item",
                           stage], cwd=ws, env={**stage_env(), CRASH_ENV: crash_at},
                          start_new_session=True, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    assert _leftover_temp_files(ws), "the crash point was not reached"
    status = dvc(ws, "status").stdout
    if stage != "track":   # track has no outputs: DVC keeps the last completed run's entry
        # DVC must not take the killed stage (or anything after it) as up to date ...
        assert "up to date" not in status and f"{stage}:" in status
    # ... and a rerun completes with the same bytes as before (DVC may restore them from its
    # run cache without running the stage) ...
    dvc(ws, "repro")
    assert "up to date" in dvc(ws, "status").stdout
    assert _lock_hashes(ws) == good
    # ... and the next time the stage runs it removes the temp files the kill left behind, and
    # gives the same bytes: over the CRASH_POINTS, every stage is rerun by force on the outputs
    # of the first run, which is what a forced rerun of the whole pipeline does (the test that
    # ran `dvc repro --force` once more on its own was merged into this one).
    dvc(ws, "repro", "--force", "--single-item", stage)
    assert not _leftover_temp_files(ws)
    assert _lock_hashes(ws) == good and len(good) >= 15
    if stage == "track":   # the killed run is closed, not left looking in progress
        statuses = _pipeline_run_statuses(ws / "mlflow/mlflow.db")
        assert "RUNNING" not in statuses and statuses.count("KILLED") == 1, statuses
    for p in ("data/filtered/kept.parquet", "data/augmented/train.parquet"):
        assert len(pd.read_parquet(ws / p)) > 0


def test_a_stage_killed_at_an_arbitrary_moment_is_not_taken_as_done(ws):
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "--single-item",
                             "train"], cwd=ws, env=stage_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    assert proc.poll() is None, "the stage finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    status = dvc(ws, "status").stdout
    assert "up to date" not in status and "train:" in status
    dvc(ws, "repro")
    assert "up to date" in dvc(ws, "status").stdout


def test_a_second_run_in_the_same_workspace_fails_clearly_and_touches_nothing(ws):
    from flows.pipeline import WorkspaceBusy, augflow_pipeline, workspace_lock

    before = (ws / "dvc.lock").read_bytes(), (ws / "metrics/evaluate.json").read_bytes()
    with workspace_lock(ws, 0):            # the "first" run
        with pytest.raises(WorkspaceBusy, match="another augflow pipeline run"):
            augflow_pipeline(root=str(ws), force=True)
    assert ((ws / "dvc.lock").read_bytes(), (ws / "metrics/evaluate.json").read_bytes()) == before


def test_outputs_round_trip_through_the_default_local_remote(ws, tmp_path):
    """The repo's default remote is a directory beside the checkout; the same kind of remote
    here, in a temp dir: push everything, lose the workspace's data, pull it back."""
    dvc(ws, "remote", "add", "-d", "--force", "localstore", str(tmp_path / "store"))
    dvc(ws, "push")
    shutil.rmtree(ws / "data" / "models")
    (ws / "data/synthetic/samples.parquet").unlink()
    assert "up to date" not in dvc(ws, "status").stdout
    dvc(ws, "pull")
    assert "up to date" in dvc(ws, "status").stdout


def test_track_waits_out_a_locked_mlflow_store(ws):
    """Another connection holds the SQLite store's exclusive lock for 26 s, longer than the 20 s
    busy timeout MLflow sets: track retries with backoff and completes; nothing left running."""
    import sqlite3
    import threading

    import mlflow

    db = ws / "mlflow/mlflow.db"
    before = _finished_pipeline_runs(db)
    locked = threading.Event()

    def hold():
        con = sqlite3.connect(db, timeout=30)
        con.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(26)
        con.rollback()
        con.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(30)
    proc = subprocess.run([sys.executable, "-m", "augflow.cli", "track"], cwd=ws,
                          env=stage_env(), capture_output=True, text=True)
    holder.join()
    assert proc.returncode == 0, proc.stderr
    assert "MLflow store locked (attempt 1); retrying" in proc.stderr
    assert _finished_pipeline_runs(db) == before + 1
    client = mlflow.MlflowClient(f"sqlite:///{db}")
    running = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                 "attributes.status = 'RUNNING'")
    assert not running


def _pipeline_run_statuses(db) -> list[str]:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT status FROM runs WHERE name LIKE '%pipeline'")]
    finally:
        con.close()


def _finished_pipeline_runs(db) -> int:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT COUNT(*) FROM runs WHERE name LIKE '%pipeline' AND "
                           "status = 'FINISHED'").fetchone()[0]
    finally:
        con.close()


def test_a_full_disk_while_a_stage_writes_fails_clearly_keeps_the_outputs_and_recovers(ws):
    """The disk fills while `generate` writes its samples. Simulated with a file-size limit
    (RLIMIT_FSIZE: every write past it fails with EFBIG, the same path as ENOSPC, and it needs
    no root or tmpfs mount): one line naming the file and the rule, a non-zero exit, every
    output of the stage still the last good bytes, no temp file left, and the next run (space
    back) recovers."""
    import resource

    samples = ws / "data/synthetic/samples.parquet"
    good = _lock_hashes(ws)
    before = {p: p.read_bytes() for p in (samples, ws / "metrics/generate.json",
                                          ws / "plots/sample_grid.png")}
    limit = samples.stat().st_size // 2

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "augflow.cli", "generate"], cwd=ws,
                          env=stage_env(), capture_output=True, text=True, preexec_fn=small_disk)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("augflow generate: error: ") and "Traceback" not in proc.stderr
    assert "data/synthetic/samples.parquet: could not write: File too large" in last
    assert last.endswith("[rule: disk space]")
    assert {p: p.read_bytes() for p in before} == before
    assert not _leftover_temp_files(ws)
    assert "up to date" in dvc(ws, "status").stdout
    dvc(ws, "repro", "--force", "--single-item", "generate")
    assert _lock_hashes(ws) == good


def test_a_manual_dvc_repro_while_the_flow_is_between_stages_touches_nothing(ws, monkeypatch):
    """The flow holds DVC's repo lock between its stages: a user's `dvc repro` (or `--force`,
    or `dvc checkout`) started after `train` and before `generate` stops at once with DVC's
    lock message, removes and rebuilds nothing, and the flow then finishes its run."""
    import flows.pipeline as fp

    params = yaml.safe_load((ws / "params.yaml").read_text())
    # only track is stale (a plain `dvc repro` has work to do), so the flow's own work is short
    params["tracking"]["lock_wait_s"] = 2.5
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    seen = {}

    def manual_repro(stage, root):
        if stage != "train":
            return
        before = output_digest(ws)
        for args in (("repro",), ("repro", "--force"), ("checkout", "--force")):
            seen[args] = dvc(ws, *args, check=False)
        seen["unchanged"] = output_digest(ws) == before

    monkeypatch.setattr(fp, "BETWEEN_STAGES_HOOK", manual_repro)
    state = fp.augflow_pipeline(root=str(ws), return_state=True)
    results = state.result()
    for args in (("repro",), ("repro", "--force"), ("checkout", "--force")):
        proc = seen[args]
        assert proc.returncode != 0 and "Unable to acquire lock" in proc.stderr, args
    assert seen["unchanged"]
    ran = [r["stage"] for r in results if not r["skipped"]]
    assert ran == ["track"]                           # the flow, not the manual run, did it
    assert "up to date" in dvc(ws, "status").stdout
    # in Prefect, the stages DVC skipped say so in their state
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    names = {t.name.removeprefix("dvc-repro-"): t.state for t in tasks}
    assert names["train"].name == "Skipped" and "unchanged" in names["train"].message
    assert names["track"].name == "Completed"


def test_params_edited_between_stages_stop_the_run_before_the_next_stage(ws, monkeypatch):
    """The fault catalogue's params entry: params.yaml edited while the flow is between two
    stages. The run stops before the next stage, saying so; no stage ran on the new params
    beside outputs of the old ones; the next run finishes on the new params."""
    import flows.pipeline as fp

    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["tracking"]["lock_wait_s"] = 2.5      # only track stale: the flow's own work is short

    def edit(stage, root):
        if stage == "train":
            changed = dict(params, evaluate=dict(params["evaluate"], n_bootstrap=300))
            (ws / "params.yaml").write_text(yaml.safe_dump(changed))

    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    before = output_digest(ws)
    monkeypatch.setattr(fp, "BETWEEN_STAGES_HOOK", edit)
    with pytest.raises(fp.ParamsChanged, match="params.yaml changed during this run "
                       r"\(after prepare, validate, train\); stopped before generate"):
        fp.augflow_pipeline(root=str(ws))
    assert output_digest(ws) == before                 # nothing ran after the edit
    monkeypatch.setattr(fp, "BETWEEN_STAGES_HOOK", None)
    results = fp.augflow_pipeline(root=str(ws))        # the new params: evaluate and track rerun
    assert [r["stage"] for r in results if not r["skipped"]] == ["evaluate", "track"]
    assert "up to date" in dvc(ws, "status").stdout


def _procs_in(ws) -> list[int]:
    """Processes whose working directory is `ws` (a stage, or dvc running it)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) != os.getpid():
            try:
                if os.readlink(f"/proc/{d}/cwd") == str(ws):
                    out.append(int(d))
            except OSError:
                continue
    return out


def _lock_is_free(path) -> bool:
    import fcntl

    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return True


@pytest.mark.slow
def test_sigterm_to_the_flow_mid_stage_stops_it_cleanly_and_a_rerun_completes(ws, monkeypatch):
    """The fault catalogue's SIGTERM entry: `kill <flow pid>` while train is mid-epoch. The flow
    stops the stage with it (no process left working in the workspace), releases its lock and
    DVC's, changes no other stage's output, and the next run completes."""
    from prefect.settings import PREFECT_API_URL

    import flows.pipeline as fp

    good = output_digest(ws)
    original = (ws / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["vae"].update(max_epochs=5000, patience=5000)     # a train that runs for minutes
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    flow = subprocess.Popen([sys.executable, str(REPO / "flows" / "pipeline.py"), "--root",
                             str(ws)], cwd=ws, env=stage_env(PREFECT_API_URL=PREFECT_API_URL.value()),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (ws / "data/models/cvae.resume.pt").exists():   # train is 10 epochs in
            assert flow.poll() is None, flow.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "train never got going"
            time.sleep(0.5)
        flow.send_signal(signal.SIGTERM)
        out, _ = flow.communicate(timeout=90)
    finally:
        if flow.poll() is None:
            os.killpg(flow.pid, signal.SIGKILL)
    assert flow.returncode != 0, out[-2000:]
    time.sleep(1.0)
    assert _procs_in(ws) == [], "a stage kept running after the flow stopped"
    assert _lock_is_free(ws / ".augflow.lock") and _lock_is_free(ws / ".dvc/tmp/lock")
    # DVC removed train's outputs when it started it; the resume state is train's own
    train_outs = ("data/models/cvae", "plots/train_curve", "metrics/train.json")
    after = output_digest(ws)
    assert {k: v for k, v in after.items() if not k.startswith(train_outs)} == \
        {k: v for k, v in good.items() if not k.startswith(train_outs)}
    assert "train:" in dvc(ws, "status").stdout        # not taken as done
    (ws / "params.yaml").write_text(original)
    fp.augflow_pipeline(root=str(ws))
    assert "up to date" in dvc(ws, "status").stdout
    # the same bytes as before (DVC restores train from its run cache); the 5000-epoch run's
    # resume state stays beside them, and a train of that config would resume from it
    resume = "data/models/cvae.resume.pt"
    assert {k: v for k, v in output_digest(ws).items() if k != resume} == good


@pytest.mark.slow
def test_sigterm_to_a_stage_mid_run_is_a_crash_the_flow_retries(ws):
    """SIGTERM to the stage itself (a preempted job, an operator's kill): DVC reports the stage
    failed, the flow counts it a crash and retries it; train resumes from its last state and
    the run completes with every stage done."""
    import flows.pipeline as fp

    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["vae"].update(max_epochs=150, patience=150)
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    killed = {}

    def kill_train_when_it_has_a_state():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            if (ws / "data/models/cvae.resume.pt").exists():
                for pid in _procs_in(ws):
                    cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                    if b"augflow.cli" in cmd and b"train" in cmd:
                        os.kill(pid, signal.SIGTERM)
                        killed["pid"] = pid
            time.sleep(0.2)

    import threading

    killer = threading.Thread(target=kill_train_when_it_has_a_state, daemon=True)
    killer.start()
    state = fp.augflow_pipeline(root=str(ws), return_state=True)
    killer.join(5)
    assert killed, "train finished before it could be killed"
    assert state.is_completed()
    assert "up to date" in dvc(ws, "status").stdout
    assert json.loads((ws / "metrics/train.json").read_text())["resumed"] is True
    assert not (ws / "data/models/cvae.resume.pt").exists()


def test_a_rotted_dvc_cache_object_is_never_used_silently(ws):
    """The fault catalogue's cache entry: a byte of the cached augmented set flips on disk,
    size and mtime unchanged (what rot looks like). DVC itself trusts such an object: a plain
    `dvc checkout` puts the wrong bytes in place. The flow checks every output against
    dvc.lock after each stage, drops the bad object and rebuilds the stage: same bytes as
    before, a sound cache object, and nothing downstream ran on the rotted file."""
    import hashlib

    import flows.pipeline as fp

    good = output_digest(ws)
    path = "data/augmented/train.parquet"
    lock = yaml.safe_load((ws / "dvc.lock").read_text())
    md5 = next(o["md5"] for o in lock["stages"]["augment"]["outs"] if o["path"] == path)
    obj = ws / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    stat = obj.stat()
    obj.chmod(0o644)
    raw = bytearray(obj.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    obj.write_bytes(bytes(raw))
    os.utime(obj, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (ws / path).unlink()
    dvc(ws, "checkout", path)
    rotted = hashlib.md5((ws / path).read_bytes()).hexdigest()
    assert rotted != md5                          # DVC restored the rotted bytes, silently
    assert fp.corrupt_outputs(str(ws), "augment") == [(path, md5, rotted)]
    results = fp.augflow_pipeline(root=str(ws))
    ran = [r["stage"] for r in results if not r["skipped"]]
    assert ran[0] == "augment", ran               # rebuilt, and nothing before it
    assert hashlib.md5(obj.read_bytes()).hexdigest() == md5
    assert {k: v for k, v in output_digest(ws).items()} == good
    assert "up to date" in dvc(ws, "status").stdout
