"""The real servers users review runs in: an `mlflow server` and a Prefect server on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from augflow.paths import STAGES
from conftest import REPO, augflow_here, fails_cleanly, free_port, stage_env, wait_for
from workspace import output_digest as _digest


VALIDATION = "data/reports/validation.json"


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _start(cmd: list[str], env: dict, cwd: Path, log: Path | None = None) -> subprocess.Popen:
    # A busy server (two workers, two clients) writes more access-log lines than a pipe holds:
    # unread, the pipe fills and the server blocks. Such a server logs to a file instead.
    out = open(log, "w") if log is not None else subprocess.PIPE
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


def _prefect_server(tmp_path: Path, extra: dict[str, str],
                    log: Path | None = None) -> tuple[subprocess.Popen, dict[str, str], int]:
    """A real `prefect server start` on a free loopback port with its home under tmp_path; the
    process, the environment its clients use (stage_env + the API URL + `extra`) and the port.
    The caller waits for /api/health inside its try, so its finally stops the server."""
    port = free_port()
    env = stage_env()
    env.update({"PREFECT_HOME": str(tmp_path / "prefect_home"),
                "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", **extra})
    server = _start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                     "--port", str(port)], env, tmp_path, log=log)
    return server, env, port


def test_mlflow_server_serves_the_run_its_children_and_artifacts(pipeline_ws):
    port = free_port()
    db = pipeline_ws / "mlflow" / "mlflow.db"
    proc = _start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                  stage_env(), pipeline_ws)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health", proc)
        exp = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=augflow")
        exp_id = exp["experiment"]["experiment_id"]
        req = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", method="POST",
                                     data=json.dumps({"experiment_ids": [exp_id]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            runs = json.loads(r.read())["runs"]
        parent = next(r for r in runs if r["info"]["run_name"].endswith("pipeline"))
        pid = parent["info"]["run_id"]
        children = [r for r in runs if any(t["key"] == "mlflow.parentRunId" and t["value"] == pid
                                           for t in r["data"].get("tags", []))]
        assert {c["info"]["run_name"] for c in children} >= {"train", "filter", "evaluate"}
        metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
        assert "gain.logreg.accuracy.mean" in metrics
        q = urllib.parse.urlencode({"run_id": pid, "path": "figures"})
        files = _get(f"{base}/api/2.0/mlflow/artifacts/list?{q}")["files"]
        assert "figures/loss_curve.png" in {f["path"] for f in files}
        model = _get(f"{base}/api/2.0/mlflow/registered-models/get?name=augflow-cvae")
        assert model["registered_model"]["name"] == "augflow-cvae"
    finally:
        _stop(proc)


def _pg_rows(url: str, query: str) -> list[tuple]:
    """A query's rows from the test's PostgreSQL database (url: user@host:port/name)."""
    import psycopg2

    with psycopg2.connect(f"postgresql://{url}") as conn, conn.cursor() as cur:
        cur.execute(query)
        return [tuple(r) for r in cur.fetchall()]


def _search_runs(base: str, exp_id: str) -> list[dict]:
    req = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", method="POST",
                                 data=json.dumps({"experiment_ids": [exp_id],
                                                  "max_results": 1000}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read()).get("runs", [])


def test_two_workspaces_track_to_one_mlflow_server_on_postgresql_at_once(pipeline_ws, tmp_path,
                                                                         postgres):
    """Two pipelines (two workspaces, same outputs) run their `track` step at the same moment
    against one `mlflow server` whose store is a real PostgreSQL database (the shared server a
    team runs; SQLite is the embedded default, tested above): both create-or-find the
    experiment, both parents finish with all seven children, nothing is left RUNNING, and one
    model version holds their one VAE."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = postgres("mlflow")
    server = _start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                     f"postgresql://{db}", "--artifacts-destination",
                     str(tmp_path / "server-artifacts"), "--host", "127.0.0.1", "--port",
                     str(port), "--workers", "2"], stage_env(), tmp_path,
                    log=tmp_path / "server.log")
    workspaces = []
    for name in ("ws_a", "ws_b"):
        ws = tmp_path / name
        shutil.copytree(pipeline_ws, ws, ignore=shutil.ignore_patterns("mlflow"), symlinks=True)
        params = yaml.safe_load((ws / "params.yaml").read_text())
        params.setdefault("tracking", {})["uri"] = base
        (ws / "params.yaml").write_text(yaml.safe_dump(params))
        workspaces.append(ws)
    try:
        wait_for(f"{base}/health", server)
        procs = [subprocess.Popen([sys.executable, "-m", "augflow.cli", "track"], cwd=ws,
                                  env=stage_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for ws in workspaces]
        outs = [p.communicate(timeout=480)[0] for p in procs]
        for p, out in zip(procs, outs):
            assert p.returncode == 0, out[-3000:]
        exp = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=augflow")
        runs = _search_runs(base, exp["experiment"]["experiment_id"])
        assert [r["info"]["run_name"] for r in runs if r["info"]["status"] != "FINISHED"] == []
        parents = [r for r in runs if r["info"]["run_name"].endswith("pipeline")]
        assert len(parents) == 2
        for parent in parents:
            pid = parent["info"]["run_id"]
            children = [r["info"]["run_name"] for r in runs
                        if any(t["key"] == "mlflow.parentRunId" and t["value"] == pid
                               for t in r["data"].get("tags", []))]
            assert sorted(children) == sorted(s for s in STAGES if s != "track")
            q = urllib.parse.urlencode({"run_id": pid, "path": "figures"})
            files = _get(f"{base}/api/2.0/mlflow/artifacts/list?{q}")["files"]
            assert "figures/loss_curve.png" in {f["path"] for f in files}
        q = urllib.parse.urlencode({"filter": "name='augflow-cvae'"})
        all_versions = _get(f"{base}/api/2.0/mlflow/model-versions/search?{q}")["model_versions"]
        # the same VAE in both: registered at once, one version remains, and both runs name it
        assert len(all_versions) == 1, all_versions
        # logged from one pipeline's train run (the stage that made it)
        trains = {r["info"]["run_id"] for r in runs if r["info"]["run_name"] == "train"}
        assert all_versions[0]["run_id"] in trains
        named = [{t["key"]: t["value"] for t in p["data"]["tags"]}["model_version"]
                 for p in parents]
        assert named == [all_versions[0]["version"]] * 2
        # and the server keeps them in PostgreSQL: 2 parents + 14 children
        assert _pg_rows(db, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == [(16,)]
    finally:
        _stop(server)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_prefect_scheduler_creates_and_completes_a_run_of_the_served_deployment(
        pipeline_ws, tmp_path, database, request):
    """A real `prefect server start` on loopback and the deployment served with an every-minute
    cron: the server's scheduler (no manual trigger) creates a run, the served runner executes
    it on a copy of a finished workspace (DVC skips every stage: what is tested is the
    scheduling and the run, the stages' work is tested end to end elsewhere), and it completes.
    This is what broke with SQLAlchemy 2.1 (the scheduler logged "Can't evaluate bulk DML
    statement" and created nothing). On SQLite (make serve's default) and on a real PostgreSQL
    (PREFECT_SERVER_DATABASE_CONNECTION_URL, the shared server's database)."""
    ws = tmp_path / "ws"
    shutil.copytree(pipeline_ws, ws, symlinks=True)
    # one output gone: the run must rebuild it (validate), so it provably ran in this workspace
    (ws / VALIDATION).unlink()
    # the scheduler service looks for deployments to schedule every 60 s by default; every
    # 10 s here, so the test waits for the cron minute, not the loop
    extra = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "10"}
    if database == "postgresql":
        url = request.getfixturevalue("postgres")("prefect")
        extra["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = f"postgresql+asyncpg://{url}"
    server, env, port = _prefect_server(tmp_path, extra)
    runner = None
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", server, 180)
        runner = _start([sys.executable, str(REPO / "flows/serve.py"), "--root", str(ws),
                         "--name", "test-every-minute", "--cron", "* * * * *"], env, REPO)
        script = """
import time
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
name = "augflow-pipeline/test-every-minute"
with get_client(sync_client=True) as c:
    for _ in range(120):
        try:
            dep = c.read_deployment_by_name(name); break
        except Exception:
            time.sleep(1)
    print("CRON", [s.schedule.cron for s in dep.schedules], flush=True)
    print("CONCURRENCY", dep.global_concurrency_limit.limit,
          dep.concurrency_options.collision_strategy.value, flush=True)
    deadline = time.time() + 720
    while time.time() < deadline:
        runs = c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])))
        done = [r for r in runs if r.state is not None and r.state.is_final()]
        if done:
            print("RUN auto_scheduled", done[0].auto_scheduled, "STATE",
                  done[0].state.type.value, flush=True)
            break
        time.sleep(3)
"""
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=900)
        assert "CRON ['* * * * *']" in out.stdout, out.stdout + out.stderr
        # one run at a time: a run due while one runs is cancelled by Prefect
        assert "CONCURRENCY 1 CANCEL_NEW" in out.stdout, out.stdout + out.stderr
        assert "RUN auto_scheduled True STATE COMPLETED" in out.stdout, out.stdout + out.stderr
        assert (ws / VALIDATION).is_file()
        if database == "postgresql":   # the run is in PostgreSQL, not in a SQLite file
            done = _pg_rows(url, "SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'")
            assert done[0][0] >= 1
            assert not list((tmp_path / "prefect_home").glob("*.db"))
    finally:
        if runner is not None:
            _stop(runner)
        _stop(server)
    log = server.stdout.read()
    assert "bulk DML" not in log, log[-3000:]


def test_process_work_pool_runs_the_prefect_yaml_deployment(pipeline_ws, tmp_path):
    """prefect.yaml's `nightly-process` deployment on a real process work pool: created, deployed
    with `prefect deploy`, picked up by `prefect worker start`, run to completion (on a copy of
    a finished workspace, so DVC skips the stages and the time goes to the pool and worker)."""
    ws = tmp_path / "ws"
    shutil.copytree(pipeline_ws, ws, symlinks=True)
    # one output gone: the run must rebuild it (validate), so it provably ran in this workspace
    (ws / VALIDATION).unlink()
    shutil.copytree(REPO / "flows", ws / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "prefect.yaml", ws / "prefect.yaml")     # the user's checkout
    server, env, port = _prefect_server(tmp_path, {"AUGFLOW_WORKSPACE": str(ws)})
    worker = None
    prefect = lambda *a: subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *a],
                                        cwd=ws, env=env, capture_output=True, text=True,
                                        timeout=300)
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", server, 180)
        made = prefect("work-pool", "create", "augflow-process", "--type", "process")
        assert made.returncode == 0, made.stdout + made.stderr
        deployed = prefect("deploy", "--name", "nightly-process")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        worker = _start([sys.executable, "-m", "prefect", "worker", "start", "--pool",
                         "augflow-process"], env, ws)
        script = """
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
name = "augflow-pipeline/nightly-process"
with get_client(sync_client=True) as c:
    dep = c.read_deployment_by_name(name)
    print("POOL", dep.work_pool_name, [s.schedule.cron for s in dep.schedules])
    print("CONCURRENCY", dep.global_concurrency_limit.limit,
          dep.concurrency_options.collision_strategy.value)
run = run_deployment(name, timeout=900, poll_interval=2)
print("STATE", run.state.type.value)
"""
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=1000)
        assert "POOL augflow-process ['0 2 * * *']" in out.stdout, out.stdout + out.stderr
        assert "CONCURRENCY 1 CANCEL_NEW" in out.stdout, out.stdout + out.stderr
        assert "STATE COMPLETED" in out.stdout, out.stdout + out.stderr
        assert (ws / VALIDATION).is_file()
    finally:
        if worker is not None:
            _stop(worker)
        _stop(server)



def test_an_unreachable_tracking_server_stops_track_in_one_line_and_a_rerun_records_it(
        pipeline_ws, tmp_path):
    """The fault catalogue's MLflow entry: tracking.uri names a server that is down. track
    retries a bounded number of times, then stops with one line naming tracking.uri; no
    output of any stage changes. Once the server is up, rerunning track records the run."""
    ws = tmp_path / "ws"
    shutil.copytree(pipeline_ws, ws, symlinks=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["tracking"].update(uri=base, lock_retries=2, lock_wait_s=0.2)
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    err = fails_cleanly(ws, "track", "params.yaml: tracking.uri", f"cannot reach the MLflow "
                        f"tracking server at {base} after 2 retries", "augflow track",
                        "rule: reachable tracking server")
    assert len(err.strip().splitlines()) == 1, err
    server = _start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                     f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
                     str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
                     "--workers", "1"], stage_env(), tmp_path, log=tmp_path / "server.log")
    try:
        wait_for(f"{base}/health", server)
        proc = augflow_here(ws, "track")
        assert proc.returncode == 0, proc.stderr[-2000:]
        exp = _get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=augflow")
        runs = _search_runs(base, exp["experiment"]["experiment_id"])
        assert [r["info"]["run_name"].endswith("pipeline") for r in runs].count(True) == 1
        assert len(runs) == 1 + len(STAGES) - 1      # the parent and a child per stage
    finally:
        _stop(server)


_TRIGGER = """
import sys, time
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
name = "augflow-pipeline/" + sys.argv[1]
with get_client(sync_client=True) as c:
    for _ in range(120):
        try:
            c.read_deployment_by_name(name); break
        except Exception:
            time.sleep(1)
run = run_deployment(name, timeout=float(sys.argv[2]))
print("STATE", run.state.type.value if run.state else None, flush=True)
"""


def test_the_prefect_server_killed_mid_stage_loses_nothing_and_the_next_run_recovers(
        pipeline_ws, tmp_path):
    """The fault catalogue's Prefect entry: the server dies (SIGKILL) while a served
    deployment's run is in the middle of train. The stage runs on to its end (it makes no API
    call) and DVC records it; the run goes on until its client gives up on the dead server,
    then ends, its running stage stopped with it: no process left in the workspace, no lock
    held, no temp file, and every stage DVC takes as done holds the bytes dvc.lock records.
    The next run picks up where it stopped and completes."""
    import flows.pipeline as fp
    from test_reruns import _lock_is_free, _procs_in

    ws = tmp_path / "ws"
    shutil.copytree(pipeline_ws, ws, symlinks=True)
    good = _digest(ws)
    params = yaml.safe_load((ws / "params.yaml").read_text())
    params["vae"].update(max_epochs=120, patience=120)       # train stale, and long enough
    (ws / "params.yaml").write_text(yaml.safe_dump(params))
    # the killed run's client gives up on the dead server after a few tries
    server, env, port = _prefect_server(tmp_path, {"PREFECT_CLIENT_MAX_RETRIES": "2"},
                                        log=tmp_path / "server.log")
    runner = None
    try:
        wait_for(f"http://127.0.0.1:{port}/api/health", server, 180)
        runner = _start([sys.executable, str(REPO / "flows/serve.py"), "--root", str(ws),
                         "--name", "fault"], env, REPO, log=tmp_path / "runner.log")
        trigger = subprocess.run([sys.executable, "-c", _TRIGGER, "fault", "0"], env=env,
                                 capture_output=True, text=True, timeout=300)
        assert "STATE" in trigger.stdout, trigger.stdout + trigger.stderr
        deadline = time.monotonic() + 300
        while not (ws / "data/models/cvae.resume.pt").exists():   # train is 10 epochs in
            assert time.monotonic() < deadline, (tmp_path / "runner.log").read_text()[-3000:]
            time.sleep(0.2)
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(30)
        deadline = time.monotonic() + 300
        while _procs_in(ws) or not _lock_is_free(ws / ".augflow.lock"):
            assert time.monotonic() < deadline, ("still running after the server died",
                                                 (tmp_path / "runner.log").read_text()[-3000:])
            time.sleep(1)
    finally:
        if runner is not None:
            _stop(runner)
        if server.poll() is None:
            _stop(server)
    assert _lock_is_free(ws / ".dvc/tmp/lock")
    assert not [p for sub in ("data", "metrics", "plots") for p in (ws / sub).rglob(".*.tmp")]
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=ws, env=stage_env(),
                            capture_output=True, text=True).stdout
    # every stage DVC takes as done holds exactly the bytes dvc.lock records; a stage cut
    # short is listed as changed, never taken as done
    done = [st for st in STAGES if f"{st}:" not in status and st != "track"]
    assert "train" in done, status                      # train ran on after the server died
    assert all(fp.corrupt_outputs(str(ws), st) == [] for st in done)
    before_train = ("data/prepared", "data/reports/validation.json", "metrics/prepare.json",
                    "metrics/validate.json")
    after = _digest(ws)
    assert all(after[k] == v for k, v in good.items() if k.startswith(before_train))
    results = fp.augflow_pipeline(root=str(ws))      # the next run (the session's API)
    assert "train" not in [r["stage"] for r in results if not r["skipped"]]
    assert "up to date" in subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=ws,
                                          env=stage_env(), capture_output=True,
                                          text=True).stdout
