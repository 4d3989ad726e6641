"""MLflow at the edge: one parent run per pipeline execution, a child run per stage, the
figures and reports, and the VAE as a registered model (aliased `champion` when it earns it)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import yaml

from augflow.config import Config
from augflow.data.augmented import mix_summary
from augflow.errors import AugflowError
from augflow.evaluation.verdict import (HOW_TO_READ, promotion_said, run_title, short_answer,
                                       verdict_bullets, verdict_tags)
from augflow.io import read_json, write_json
from augflow.paths import STAGES as STAGE_NAMES
from augflow.paths import Paths

log = logging.getLogger("augflow.track")

STAGES = STAGE_NAMES[:-1]   # each gets a child run; the last, track, is this code


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested dict as dotted keys (MLflow metric names)."""
    out: dict[str, float] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None:
            out[key] = float(v)
        elif isinstance(v, bool):
            out[key] = float(v)
    return out


def stage_metrics(stage: str, metrics: dict) -> dict[str, float]:
    """The metric keys a stage's run gets: all of a small stage's; for filter, augment and
    evaluate (100-250 keys each, 445 columns in the runs table) the few a reviewer compares
    across runs. Every number stays in the stage's metrics JSON, logged as an artifact."""
    if stage == "filter":
        fid = metrics.get("fidelity", {})
        keep = {"kept_fraction": metrics.get("kept_fraction"), "n_kept": metrics.get("n_kept"),
                "n_generated": metrics.get("n_generated"),
                "extractor_val_accuracy": metrics.get("extractor_val_accuracy"),
                "rejected": metrics.get("rejected", {}),
                "kept_vs_train": {k: fid.get("kept_vs_train", {}).get(k)
                                  for k in ("fid", "precision", "recall", "density", "coverage")},
                "val_vs_train": {"fid": fid.get("val_vs_train", {}).get("fid")}}
        return flatten(keep)
    if stage == "augment":
        mix = metrics.get("mix", {})
        keep = {k: mix.get(k) for k in ("scale", "helped_on_val", "val_accuracy_chosen",
                                        "val_accuracy_real", "classic_share", "synthetic_share")}
        return flatten({"mix": keep, "rows": {k: v for k, v in metrics.items()
                                              if isinstance(v, (int, float))}})
    if stage == "evaluate":
        out: dict = {"added_weight_fraction": metrics.get("added_weight_fraction")}
        for clf, r in metrics.get("classifiers", {}).items():
            out[clf] = {"accuracy": {a: v["accuracy"]["mean"] for a, v in r["arms"].items()},
                        "gain": r["gain"]["accuracy"]}
            if r.get("best_baseline") in r.get("gain_vs", {}):
                out[clf]["gain_vs_best"] = r["gain_vs"][r["best_baseline"]]["accuracy"]
        return flatten(out)
    return flatten(metrics)


def flat_params(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)
    return out


def git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def dvc_hashes(root: Path) -> dict[str, str]:
    """md5 of every stage dependency and output, as dvc.lock recorded them."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    out = {}
    for stage, body in stages.items():
        for kind in ("deps", "outs"):
            for item in body.get(kind, []):
                if "md5" in item:
                    out[f"dvc.{kind}.{item['path']}"] = item["md5"]
    return out


def inside_workspace(root: Path, rel: str, key: str) -> Path:
    """A relative path from params, resolved; it may not climb out of the workspace."""
    path = (root / rel).resolve()
    if not Path(rel).is_absolute() and not path.is_relative_to(root.resolve()):
        raise AugflowError(f"{rel!r} resolves outside the workspace {root}", file="params.yaml",
                           field=key, rule="inside workspace")
    return path


def _tracking_uri(uri: str, root: Path) -> str:
    # A relative sqlite path is taken relative to the workspace root, wherever we run from.
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        db = inside_workspace(root, uri[len("sqlite:///"):], "tracking.uri")
        db.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{db}"
    return uri


def experiment_id(mlflow, cfg: Config, root: Path) -> str:
    exp = mlflow.get_experiment_by_name(cfg.tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    location = None   # a tracking server keeps artifacts where it was told to
    if not cfg.tracking.uri.startswith(("http://", "https://")):
        art = inside_workspace(root, cfg.tracking.artifact_dir, "tracking.artifact_dir")
        art.mkdir(parents=True, exist_ok=True)
        location = art.as_uri()
    try:
        return mlflow.create_experiment(cfg.tracking.experiment, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        # another pipeline (another workspace, same server) created it a moment ago
        exp = mlflow.get_experiment_by_name(cfg.tracking.experiment)
        if exp is None:
            raise
        return exp.experiment_id


# Where MLflow's SQL store keeps artifact locations (MLflow 3 schema). MLflow always stores them
# as absolute file URIs, so a moved or copied checkout would point every artifact back at the
# old place; `relocate_local_store` rewrites them to the workspace the store now lives in.
_ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                     ("logged_models", "artifact_location"), ("model_versions", "source"),
                     ("model_versions", "storage_location"))


# Where it keeps plain paths of the checkout: the Default experiment's artifact root (MLflow
# makes it from the working directory, as a path, not a URI), the local datasets logged as run
# inputs (a JSON {"uri": "/path"}), and the source file of a logged model or a run.
# (table, column, the key column and key a row must have, or None for every row)
_PATH_COLUMNS = (("experiments", "artifact_location", None), ("runs", "artifact_uri", None),
                 ("logged_models", "artifact_location", None),
                 ("model_versions", "storage_location", None),
                 ("logged_model_tags", "tag_value", ("tag_key", "mlflow.source.name")),
                 ("tags", "value", ("key", "mlflow.source.name")))


def _uri_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def _relocate_plain_paths(con, old: str, new: str) -> None:
    """Rewrite plain paths under the old checkout `old` to `new`: a value that is the old root or
    starts with it and a slash (never a sibling like /old-2), and inside the datasets' JSON."""
    if old == new:
        return
    for table, col, keyed in _PATH_COLUMNS:
        only, key = (f" AND {keyed[0]} = ?", (keyed[1],)) if keyed else ("", ())
        con.execute(f"UPDATE {table} SET {col} = ? || substr({col}, ?) "
                    f"WHERE (substr({col}, 1, ?) = ? OR {col} = ?){only}",
                    (new, len(old) + 1, len(old) + 1, old + "/", old, *key))
    con.execute("UPDATE datasets SET dataset_source = replace(dataset_source, ?, ?) "
                "WHERE instr(dataset_source, ?) > 0",
                (f'"{old}/', f'"{new}/', f'"{old}/'))


def relocate_local_store(cfg: Config, root: Path) -> str | None:
    """If the workspace's local MLflow store (sqlite) records artifacts under another checkout's
    path, point them at this checkout's `tracking.artifact_dir`, and every other stored path of
    that checkout (the Default experiment, dataset sources, source files) at this one. Returns
    the old location when it rewrote anything. A server store (http) or a store outside the
    workspace is left alone."""
    import sqlite3

    uri = cfg.tracking.uri
    if not uri.startswith("sqlite:///"):
        return None
    db = Path(_tracking_uri(uri, root)[len("sqlite:///"):])
    if not db.is_file() or not db.is_relative_to(root.resolve()):
        return None
    new = inside_workspace(root, cfg.tracking.artifact_dir, "tracking.artifact_dir").as_uri()
    suffix = "/" + Path(cfg.tracking.artifact_dir).as_posix().strip("/")
    # Half MLflow's own busy timeout: a store another process holds for longer raises
    # "database is locked", and run_track's retry-with-backoff handles it like MLflow's errors.
    con = sqlite3.connect(db, timeout=10)
    try:
        with con:
            olds = {row[0] for row in con.execute(
                "SELECT artifact_location FROM experiments WHERE artifact_location LIKE 'file://%'")}
            # only this workspace's own artifact root, seen from another path
            olds = {o for o in olds if o != new and o.endswith(suffix)}
            for old in olds:
                for table, col in _ARTIFACT_COLUMNS:
                    con.execute(f"UPDATE {table} SET {col} = ? || substr({col}, ?) "
                                f"WHERE substr({col}, 1, ?) = ?",
                                (new, len(old) + 1, len(old), old))
                _relocate_plain_paths(con, _uri_path(old[:-len(suffix)]), str(root.resolve()))
    finally:
        con.close()
    return sorted(olds)[0] if olds else None


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def close_abandoned_runs(client, exp_id: str) -> list[str]:
    """A track killed mid-run (kill -9, power loss) leaves its runs RUNNING in MLflow. Runs
    started on this host by a process that no longer exists are closed as KILLED, so the UI
    never shows a dead run as in progress. Runs of live processes are left alone."""
    host = socket.gethostname()
    stale = [r for r in client.search_runs([exp_id], "attributes.status = 'RUNNING'")
             if r.data.tags.get("augflow.host") == host
             and not _alive(r.data.tags.get("augflow.pid"))]
    for r in stale:
        client.set_terminated(r.info.run_id, "KILLED")
    if stale:
        log.warning("closed %d runs left RUNNING by a killed track: %s", len(stale),
                    [r.info.run_id for r in stale])
    return [r.info.run_id for r in stale]


def is_store_locked(err: BaseException | None) -> bool:
    """A SQLite 'database is locked' anywhere in the exception chain (MLflow wraps it)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if "database is locked" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


# MLflow's own client retries an unreachable server 7 times with backoff (minutes); a server
# that dies during track should fail it in well under a minute, with track's own message.
MLFLOW_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def wait_for_tracking_server(uri: str, retries: int, wait_s: float) -> None:
    """A tracking server (an http(s) tracking.uri) must answer its /health before track
    starts a run: tried `retries` more times, after wait_s, 2 wait_s, ... Then one line naming
    tracking.uri. Nothing is written before this, so the earlier stages' outputs stay as they
    are, and rerunning track once the server is up records the pipeline."""
    import urllib.error
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                if resp.status == 200:
                    return
                last = RuntimeError(f"HTTP {resp.status}")
        except (OSError, urllib.error.URLError) as err:   # refused, timed out, unresolvable
            last = err
        if attempt < retries:
            wait = wait_s * 2 ** attempt
            log.warning("MLflow tracking server %s not answering (%s); retrying in %.1f s",
                        uri, last, wait)
            time.sleep(wait)
    raise AugflowError(f"cannot reach the MLflow tracking server at {uri} after {retries} "
                       f"retries ({last}); every earlier stage's output is kept: start the "
                       f"server, then run `augflow track` (or dvc repro) again",
                       file="params.yaml", field="tracking.uri", rule="reachable tracking server")


def run_track(cfg: Config, paths: Paths) -> dict:
    """_track_once, retried with backoff while the MLflow store is locked. A run cut short by
    the lock is closed as FAILED (when the store lets us), so the UI does not show it running.
    A tracking server must answer first (wait_for_tracking_server, the same retries)."""
    for key, value in MLFLOW_HTTP_ENV.items():
        os.environ.setdefault(key, value)
    wait_for_tracking_server(cfg.tracking.uri, cfg.tracking.lock_retries, cfg.tracking.lock_wait_s)
    import mlflow

    for attempt in range(cfg.tracking.lock_retries + 1):
        try:
            return _track_once(cfg, paths)
        except Exception as err:
            if not is_store_locked(err):
                raise
            while mlflow.active_run() is not None:
                try:
                    mlflow.end_run("FAILED")
                except Exception:
                    break
            if attempt == cfg.tracking.lock_retries:
                raise AugflowError(f"the MLflow store stayed locked through "
                                   f"{cfg.tracking.lock_retries} retries ({str(err)[:200]})",
                                   file=cfg.tracking.uri, field="tracking.lock_retries",
                                   rule="store writable") from None
            wait = cfg.tracking.lock_wait_s * 2 ** attempt
            log.warning("MLflow store locked (attempt %d); retrying in %.1f s", attempt + 1, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _track_once(cfg: Config, paths: Paths) -> dict:
    import mlflow
    from mlflow import MlflowClient

    from augflow.plots import loss_curve_png

    root = paths.root.resolve()
    moved_from = relocate_local_store(cfg, root)
    if moved_from:
        log.info("the MLflow store's artifacts were recorded under %s; now under this workspace",
                 moved_from)
    mlflow.set_tracking_uri(_tracking_uri(cfg.tracking.uri, root))
    exp_id = experiment_id(mlflow, cfg, root)
    # Without this tag MLflow 3 opens the experiment in its GenAI UI (traces, judges, prompts);
    # set on every run, so an experiment made before it was set gets it too.
    MlflowClient().set_experiment_tag(exp_id, "mlflow.experimentKind", "custom_model_development")
    closed = close_abandoned_runs(MlflowClient(), exp_id)
    hashes = dvc_hashes(root)
    # A handful of tags a reviewer reads; every DVC md5 goes to the parent as dvc/hashes.json.
    tags = {"git_commit": git_commit(root),
            "dvc.augmented_md5": hashes.get("dvc.outs.data/augmented/train.parquet", ""),
            "dvc.cvae_md5": hashes.get("dvc.outs.data/models/cvae.pt", ""),
            "augflow.host": socket.gethostname(), "augflow.pid": str(os.getpid())}
    if os.environ.get("AUGFLOW_FLOW_RUN_ID"):
        tags["prefect_flow_run_id"] = os.environ["AUGFLOW_FLOW_RUN_ID"]
    evaluation = read_json(paths.metrics("evaluate"))
    # MLflow stamps a run with the time it is logged; each stage ran earlier (its last real run)
    timings = {stage: read_json(paths.timing(stage)) for stage in STAGES
               if paths.timing(stage).is_file()}
    reused = reused_stages(timings, _previous_track_start(paths))
    # A stage DVC reused ran in an earlier pipeline: its old span would stretch this parent
    # over days and put it out of order, so only the stages that ran now keep their spans.
    spans = {stage: None if stage in reused else _span(timings.get(stage, {})) for stage in STAGES}
    starts = [sp[0] for sp in spans.values() if sp]
    mix = (read_json(paths.metrics("augment"))["mix"] if paths.metrics("augment").is_file()
           else None)
    parent_tags = {**tags, "mlflow.note.content": run_description(evaluation, reused, mix)}
    if reused:
        parent_tags["reused_stages"] = f"{len(reused)} of {len(STAGES)}: " + ", ".join(reused)
    created = MlflowClient().create_run(exp_id, start_time=min(starts) if starts else None,
                                        run_name=run_title(evaluation["classifiers"]),
                                        tags=parent_tags)
    with mlflow.start_run(run_id=created.info.run_id) as parent:
        # The runlog names the run in progress; the end of the run overwrites it.
        write_json(paths.tracking_state, {"run_id": parent.info.run_id, "experiment_id": exp_id,
                                          "status": "RUNNING"})
        mlflow.log_params(flat_params(cfg.model_dump(mode="json")))
        mlflow.log_dict(hashes, "dvc/hashes.json")
        ended, child_ids = _log_stage_runs(mlflow, exp_id, parent.info.run_id, tags, spans,
                                           reused, timings, paths)
        _log_summary(mlflow, paths, evaluation, mix)
        # train's own PNG (it knows the classic copies its title names); drawn here only for a
        # workspace from before train wrote one
        png = (paths.train_curve_png.read_bytes() if paths.train_curve_png.is_file()
               else loss_curve_png(pd.read_csv(paths.train_curve)))
        mlflow.log_image(_png_image(png), "figures/loss_curve.png")
        version = _register_model(mlflow, cfg, paths, evaluation, tags["dvc.cvae_md5"],
                                  child_ids["train"])
        run_id = parent.info.run_id
    for child_id, end in ended.items():
        MlflowClient().set_terminated(child_id, "FINISHED", end_time=end)
    state = {"run_id": run_id, "experiment_id": exp_id, "model_version": version,
             "status": "FINISHED", "closed_abandoned_runs": len(closed),
             "champion": bool(evaluation["promotion"]["promote"])}
    write_json(paths.tracking_state, state)
    return state


def _log_stage_runs(mlflow, exp_id: str, parent_id: str, tags: dict, spans: dict,
                    reused: dict[str, str], timings: dict[str, dict], paths: Paths
                    ) -> tuple[dict[str, int], dict[str, str]]:
    """One child run per stage: its metrics, artifacts and real span (none for reused stages).
    Returns child run id -> end time, set once the parent closes (MLflow ends children then),
    and each stage's child run id."""
    from mlflow import MlflowClient

    ended: dict[str, int] = {}
    ids: dict[str, str] = {}
    for stage in STAGES:
        span = spans[stage]
        child_tags = {"stage": stage, "mlflow.parentRunId": parent_id, **tags}
        if stage in reused:
            child_tags["reused"] = reused[stage]
        child = MlflowClient().create_run(
            exp_id, start_time=span[0] if span else None, run_name=stage, tags=child_tags)
        ids[stage] = child.info.run_id
        if span:
            ended[child.info.run_id] = span[1]
        with mlflow.start_run(run_id=child.info.run_id, nested=True):
            m = paths.metrics(stage)
            if m.is_file():
                mlflow.log_metrics(stage_metrics(stage, read_json(m)))
                mlflow.log_artifact(str(m))
            if stage in timings and stage not in reused:
                mlflow.log_metric("duration_s", timings[stage]["seconds"])
            if stage == "train" and paths.train_curve.is_file():
                log_curve(MlflowClient(), child.info.run_id,
                          pd.read_csv(paths.train_curve))
            _log_stage_artifacts(mlflow, stage, paths)
    return ended, ids


# rows the MLflow dataset schema of a split is inferred from (_log_summary)
SCHEMA_ROWS = 500


def _log_summary(mlflow, paths: Paths, evaluation: dict, mix: dict | None) -> None:
    """On the parent: the splits as inputs, the gains, the headline metrics and the mix."""
    # the same function as mlflow.data.from_pandas, which mlflow sets at import (mypy cannot see it)
    from mlflow.data.pandas_dataset import from_pandas

    from mlflow.models import infer_signature

    for split in ("train", "val", "test"):
        df = pd.read_parquet(paths.split(split))
        ds = from_pandas(df, source=str(paths.split(split).resolve()), name=split)
        # MLflow infers the dataset's schema from every row, value by value: 12 s for 8,400
        # images x 784 columns, about a minute for 47,600. The columns' types are the same in the first rows (the splits
        # are written with one dtype per column), so the schema is filled in from those;
        # `schema` is a cached property, read once from the instance.
        ds.__dict__["schema"] = infer_signature(df.head(SCHEMA_ROWS)).inputs
        mlflow.log_input(ds, context="evaluation" if split == "test" else "training")
    mlflow.log_metrics(flatten({k: evaluation["classifiers"][k]["gain"]
                                for k in evaluation["classifiers"]}, "gain."))
    # beside the gain over real, the gain over each classifier's best baseline (accuracy; every
    # arm's paired gain is in the evaluate.json artifact), and which arm that was
    vs_best = {k: {"accuracy": r["gain_vs"][r["best_baseline"]]["accuracy"]}
               for k, r in evaluation["classifiers"].items() if "gain_vs" in r}
    mlflow.log_metrics(flatten(vs_best, "gain_vs_best."))
    mlflow.set_tags({**verdict_tags(evaluation["classifiers"]),
                     **{f"best_baseline.{k}": r["best_baseline"]
                        for k, r in evaluation["classifiers"].items() if "best_baseline" in r}})
    # The headline a reviewer scans in the runs table: what the filter kept, how close the
    # kept set is to the real one, and the promotion decision (gains and mix beside them).
    if paths.metrics("filter").is_file():
        filt = read_json(paths.metrics("filter"))
        kept_fid = filt.get("fidelity", {}).get("kept_vs_train", {}).get("fid")
        mlflow.log_metrics({"kept_fraction": filt["kept_fraction"],
                            **({"fid_kept_vs_train": kept_fid} if kept_fid is not None else {})})
    mlflow.log_metric("promoted", float(bool(evaluation["promotion"]["promote"])))
    if mix is not None:   # the mix decision, on the parent too
        mlflow.log_metrics({"mix.scale": mix["scale"], "mix.classic_share": mix["classic_share"],
                            "mix.synthetic_share": mix["synthetic_share"],
                            "mix.helped_on_val": float(mix["helped_on_val"])})
        mlflow.log_metrics({f"mix.count_scheme.{c}": float(s == "count")
                            for c, s in mix.get("scheme", {}).items()})
        mlflow.set_tag("mix", mix_summary(mix))


# What the logged CVAE needs to load: the list MLflow infers by importing the model in a child
# process, which took 7 of the track stage's 14 s on the tiny test pipeline; given, it is read
# from the installed versions instead (local tags like +cpu dropped, as MLflow does).
MODEL_REQUIREMENTS = ("mlflow", "augflow", "cloudpickle", "numpy", "pandas", "torch")


def model_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in MODEL_REQUIREMENTS]


# The model-version tag holding the VAE checkpoint's DVC md5: a version per distinct VAE.
CVAE_MD5_TAG = "dvc.cvae_md5"


def version_of(client, name: str, cvae_md5: str) -> str | None:
    """The registered model's lowest version holding the VAE with this md5, if any."""
    found = [int(v.version) for v in client.search_model_versions(f"name='{name}'")
             if v.tags.get(CVAE_MD5_TAG) == cvae_md5]
    return str(min(found)) if found else None


def _register_model(mlflow, cfg: Config, paths: Paths, evaluation: dict, cvae_md5: str,
                    train_run_id: str) -> str:
    """The CVAE's registered model version, with the promotion verdict (evaluation's
    promotion); the champion alias moves to it only when promoted. Returns the version.

    One version per distinct VAE: when a version already holds a checkpoint with this md5 (a
    forced re-track, a rerun that changed only evaluate, another workspace with the same VAE),
    that version is reused and given this run's verdict. Two pipelines registering the same
    VAE at one moment both see none and both register; each then keeps the lowest version with
    the md5 and the other deletes its own, so one remains."""
    import mlflow.pytorch
    from mlflow import MlflowClient

    from augflow.checkpoints import load_cvae

    promotion = evaluation["promotion"]
    name = cfg.tracking.registered_model
    client = MlflowClient()
    version = version_of(client, name, cvae_md5) if cvae_md5 else None
    if version is None:
        model, _, _ = load_cvae(paths.checkpoint)
        # Logged from the train stage's run, which made it: MLflow 3 credits every metric of
        # the run that logs a model to that model, and from the parent that was every gain,
        # FID and mix number of the pipeline; from train it is the VAE's own losses.
        with mlflow.start_run(run_id=train_run_id, nested=True):
            info = mlflow.pytorch.log_model(model, name="cvae", serialization_format="pickle",
                                            signature=cvae_signature(model.n_features),
                                            pip_requirements=model_requirements())
        # registered with its md5 tag in one call, so a concurrent pipeline's check sees it
        mine = mlflow.register_model(info.model_uri, name,
                                     tags={CVAE_MD5_TAG: cvae_md5} if cvae_md5 else None).version
        version = str(mine)
        first = version_of(client, name, cvae_md5) if cvae_md5 else version
        if first is not None and first != version:
            client.delete_model_version(name, version)
            version = first
    else:
        log.info("model version %s already holds this VAE (md5 %s): reused", version, cvae_md5)
    # The versions table cuts a tag to ~20 characters: the verdict goes first.
    verdict = ("champion" if promotion["promote"] else "not promoted") + ": " + promotion["reason"]
    client.set_model_version_tag(name, version, "promotion", verdict)
    client.update_registered_model(name, description=(
        "Conditional VAE that generates labelled synthetic rows for augflow's augmented "
        "training set. One version per distinct VAE (the checkpoint's DVC md5 is the version's "
        f"`{CVAE_MD5_TAG}` tag; a later run with the same VAE gives that version its verdict). "
        "The `champion` alias marks the latest version whose augmented set beat real data "
        "alone on the untouched test split (the version description says why or why not)."))
    client.update_model_version(name, version,
                                description=model_description(promotion, evaluation))
    if promotion["promote"]:
        client.set_registered_model_alias(name, "champion", version)
    mlflow.set_tag("promotion", verdict)
    mlflow.set_tag("model_version", version)
    return version


def _previous_track_start(paths: Paths) -> float | None:
    """When the last successful `track` began (its runlog is written when it ends)."""
    path = paths.timing("track")
    return read_json(path).get("started") if path.is_file() else None


def reused_stages(timings: dict[str, dict], since: float | None) -> dict[str, str]:
    """Stages whose last run ended before the previous tracked pipeline began: DVC reused
    their outputs in this one. Mapped to what the stage's MLflow run says about it."""
    if since is None:
        return {}
    out = {}
    for stage, t in timings.items():
        if "ended" in t and t["ended"] <= since:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t["started"]))
            # the UI cuts a tag to ~40 characters: what matters first
            out[stage] = (f"last ran {when} ({t['seconds']:.0f} s); outputs reused by DVC "
                          "(unchanged inputs)")
    return out


def _span(timing: dict) -> tuple[int, int] | None:
    """(start, end) in ms of a stage's last run, from its runlog; None before any (or from a
    runlog that predates the wall-clock times)."""
    if "started" not in timing:
        return None
    return int(timing["started"] * 1000), int(timing["ended"] * 1000)


def log_curve(client, run_id: str, curve: pd.DataFrame) -> None:
    """Per-epoch losses as stepped metrics, so MLflow's own charts can draw the curve."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    cols = [c for c in ("train_loss", "val_loss", "val_recon", "val_kl") if c in curve.columns]
    metrics = [Metric(f"curve.{c}", float(v), now, int(e))
               for c in cols for e, v in zip(curve["epoch"], curve[c])]
    for i in range(0, len(metrics), 1000):    # MLflow's batch limit
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def _verdict(promotion: dict) -> str:
    return promotion_said(promotion).capitalize()


def run_description(evaluation: dict, reused: dict[str, str], mix: dict | None) -> str:
    """The parent run's Description (markdown): the verdict, the gains, the mix, what was reused."""
    p = evaluation["promotion"]
    # the answer first: MLflow shows the first lines and folds the rest behind "Show more"
    lines = verdict_bullets(evaluation["classifiers"])
    lines += ["", f"**{_verdict(p)}**: {p['reason']}.", "", HOW_TO_READ, "",
              "Test accuracy, real -> augmented:"]
    # a list, not a table: MLflow's Description draws tables without borders or padding, and
    # the cells ran together ("random_forest0.8883", seen in headless Chromium)
    for clf, r in evaluation["classifiers"].items():
        lines.append(f"- {clf}: {r['arms']['real']['accuracy']['mean']:.4f} -> "
                     f"{r['arms']['augmented']['accuracy']['mean']:.4f}")
    if mix is not None:
        lines += ["", f"Mix: {mix_summary(mix)}."]
    if reused:
        lines += ["", f"Reused by DVC (outputs unchanged, not rerun): {', '.join(reused)}."]
    return "\n".join(lines)


def model_description(promotion: dict, evaluation: dict) -> str:
    """What a reviewer reads on the model version page: why it is or is not the champion."""
    said = short_answer(evaluation["classifiers"])
    lines = [f"{_verdict(promotion)}" + (f" ({said})" if said else "") + f": {promotion['reason']}."]
    # each classifier against real and the best baseline, as on every other screen
    lines += [b.replace("**", "") for b in verdict_bullets(evaluation["classifiers"])]
    return "\n".join(lines)


def cvae_signature(n_features: int):
    """forward(x, y): rows scaled to [0, 1] and integer labels -> reconstructions. For sampling,
    load with mlflow.pytorch.load_model and call .sample(labels)."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, n_features), "x"),
                       TensorSpec(np.dtype("int64"), (-1,), "y")]),
        outputs=Schema([TensorSpec(np.dtype("float32"), (-1, n_features), "recon")]))


def _png_image(data: bytes):
    import io

    from PIL import Image

    return Image.open(io.BytesIO(data))


def _log_stage_artifacts(mlflow, stage: str, paths: Paths) -> None:
    files = {
        "validate": [paths.validation],
        "train": [paths.train_curve],
        "generate": [paths.sample_grid],
        "filter": [paths.filter_report, paths.filter_hist, paths.filter_fidelity],
        "augment": [paths.augment_report],
        "evaluate": [paths.evaluate_report, paths.evaluate_plot, paths.evaluate_arms_csv,
                     paths.per_class_recall_csv, paths.fidelity_vs_test],
    }.get(stage, [])
    for f in files:
        if f.is_file():
            mlflow.log_artifact(str(f), artifact_path="figures" if f.suffix == ".png" else "reports")
    if stage == "validate" and paths.data_docs.is_dir():
        mlflow.log_artifacts(str(paths.data_docs), artifact_path="data_docs")
