"""The whole pipeline on a tiny config, through the Prefect flow, DVC and MLflow for real."""

from __future__ import annotations

import json
import re
import urllib.parse
import shutil
import time

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, augflow, dvc

from augflow.paths import STAGES as STAGE_ORDER


def test_flow_and_dvc_yaml_name_the_same_stages_in_order():
    import sys
    sys.path.insert(0, str(REPO))
    from flows.pipeline import STAGES

    dag = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert tuple(dag["stages"]) == STAGES == STAGE_ORDER
    from augflow.cli import STAGES as CLI_STAGES
    assert tuple(CLI_STAGES) == STAGES


def test_the_summarys_mlflow_link_follows_the_tracking_uri(monkeypatch):
    import sys
    sys.path.insert(0, str(REPO))
    from flows.pipeline import mlflow_run_link

    assert (mlflow_run_link("http://mlflow.example:8080/", "3", "abc")
            == "http://mlflow.example:8080/#/experiments/3/runs/abc?workflowType=machine_learning")
    monkeypatch.setenv("MLFLOW_PORT", "5055")
    local = mlflow_run_link("sqlite:///mlflow/mlflow.db", "1", "abc")
    assert local == ("`make ui`, then http://127.0.0.1:5055/#/experiments/1/runs/abc"
                     "?workflowType=machine_learning")


def test_flow_run_produces_every_output(pipeline_ws):
    ws = pipeline_ws
    for split in ("train", "val", "test"):
        df = pd.read_parquet(ws / f"data/prepared/{split}.parquet")
        assert "label" in df.columns and len(df) > 0
    train = pd.read_parquet(ws / "data/prepared/train.parquet")
    assert train["label"].value_counts().max() <= 40          # labels_per_class cap honoured
    samples = pd.read_parquet(ws / "data/synthetic/samples.parquet")
    assert samples["sample_id"].is_unique and len(samples) == 30 * 10
    assert {"generator", "gen_model", "gen_seed"} <= set(samples.columns)
    scores = pd.read_parquet(ws / "data/filtered/scores.parquet")
    assert len(scores) == len(samples) and scores["kept"].dtype == bool
    assert set(scores["sample_id"]) == set(samples["sample_id"])
    assert (scores.loc[scores["kept"], "reject_reason"] == "").all()
    assert (scores.loc[~scores["kept"], "reject_reason"] != "").all()
    kept = pd.read_parquet(ws / "data/filtered/kept.parquet")
    augmented = pd.read_parquet(ws / "data/augmented/train.parquet")
    assert len(kept) == scores["kept"].sum()
    # real rows, classic (shifted/rotated) rows, the kept rows
    origin = augmented["origin"].astype(str)
    assert (origin == "real").sum() == len(train)
    # classic rows: classic_per_kept (2) per kept VAE row, 3 per rejected sample, so every
    # class gets 3 x generate.n_per_class added rows whatever the filter kept
    added = augmented.loc[origin != "real", "label"].value_counts()
    assert (added == 3 * 30).all() and len(added) == train["label"].nunique()
    assert origin.str.startswith("classic:").sum() == 3 * 30 * len(added) - len(kept)
    assert set(origin[~origin.str.startswith("classic:") & (origin != "real")]) == set(kept["sample_id"])
    assert augmented["sample_weight"].sum() == pytest.approx(len(train))
    assert (samples["gen_parent"] >= 0).all()                  # local: each varies a real row
    mix = json.loads((ws / "metrics/augment.json").read_text())["mix"]
    assert mix["select"] == "val" and "1" in mix["val_accuracy"]
    # images: each classifier's scheme, and the count column it may point to
    assert set(mix["scheme"]) == {"logreg", "random_forest"}
    assert set(mix["scheme"].values()) <= {"share", "count"}
    assert "sample_weight_count" in augmented.columns
    assert (ws / "data/reports/augment.md").is_file()
    ev = json.loads((ws / "metrics/evaluate.json").read_text())
    assert ev["n_seeds"] == 2
    for clf in ("logreg", "random_forest"):
        arms = ev["classifiers"][clf]["arms"]
        assert set(arms) == {"real", "augmented", "synthetic_only", "smote"}
        acc = arms["real"]["accuracy"]
        assert 0.7 < acc["mean"] <= 1.0 and acc["ci_low"] <= acc["mean"] <= acc["ci_high"]
    assert (ws / "data/reports/validation.json").is_file()
    assert (ws / "data/reports/data_docs/index.html").is_file()


def test_dvc_sees_the_flow_run_as_complete(pipeline_ws):
    assert "up to date" in dvc(pipeline_ws, "status").stdout
    out = dvc(pipeline_ws, "repro").stdout
    assert "Data and pipelines are up to date" in out
    shown = dvc(pipeline_ws, "metrics", "show").stdout
    assert "classifiers.logreg.gain.accuracy.mean" in shown


def test_mlflow_holds_the_run_with_figures_and_a_loadable_model(pipeline_ws):
    import mlflow
    from mlflow import MlflowClient

    ws = pipeline_ws
    mlflow.set_tracking_uri(f"sqlite:///{ws / 'mlflow/mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("augflow")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"   # not the GenAI UI
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.info.run_name.endswith("pipeline")]
    assert len(parents) == 1
    parent = parents[0]
    # the runs table's first column gives the answer (tiny pipeline: logreg, random_forest)
    # the answer first (counts over the 2 classifiers of the tiny config), the kind last
    assert re.fullmatch(r"[0-2]/2 beat real( \(\d worse\))?, [0-2]/2 beat the "
                        r"best baseline( \(\d worse\))? \| pipeline", parent.info.run_name), \
        parent.info.run_name
    children = {r.info.run_name for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert children == set(STAGE_ORDER) - {"track"}
    assert "prefect_flow_run_id" in parent.data.tags
    assert parent.data.params["vae.beta"] == "0.1"
    assert any(k.startswith("gain.logreg.accuracy") for k in parent.data.metrics)
    assert "mix.scale" in parent.data.metrics and "mix" in parent.data.tags
    assert {"mix.count_scheme.logreg", "mix.count_scheme.random_forest"} <= set(parent.data.metrics)
    assert {"kept_fraction", "fid_kept_vs_train", "promoted"} <= set(parent.data.metrics)
    assert not any(k.startswith("dvc.deps.") for k in parent.data.tags)   # one artifact instead
    # the splits as dataset inputs, each schema naming every column with its type
    logged = {d.dataset.name: json.loads(d.dataset.schema)["mlflow_colspec"]
              for d in parent.inputs.dataset_inputs}
    assert set(logged) == {"train", "val", "test"}
    train = pd.read_parquet(ws / "data/prepared/train.parquet")
    assert [c["name"] for c in logged["train"]] == list(train.columns)
    assert {c["type"] for c in logged["train"]} <= {"double", "float", "long", "integer", "string"}
    hashes = client.download_artifacts(parent.info.run_id, "dvc/hashes.json")
    assert "dvc.outs.data/augmented/train.parquet" in json.loads(open(hashes).read())
    train_run = next(r for r in runs if r.info.run_name == "train")
    # each stage run spans its real run, not the time spent logging it
    timing = json.loads((ws / "data/runlog/train.timing.json").read_text())
    span = (train_run.info.end_time - train_run.info.start_time) / 1000
    assert abs(span - timing["seconds"]) < 1.0, (span, timing)
    assert parent.info.start_time <= min(r.info.start_time for r in runs)
    history = client.get_metric_history(train_run.info.run_id, "curve.val_loss")
    epochs = json.loads((ws / "metrics/train.json").read_text())["epochs_run"]
    assert [m.step for m in history] == list(range(1, epochs + 1))
    aug_run = next(r for r in runs if r.info.run_name == "augment")
    assert "mix.synthetic_share" in aug_run.data.metrics
    assert "reports/augment.md" in {f.path for f in client.list_artifacts(aug_run.info.run_id, "reports")}
    figures = {f.path for f in client.list_artifacts(parent.info.run_id, "figures")}
    assert "figures/loss_curve.png" in figures
    gen_run = next(r for r in runs if r.info.run_name == "generate")
    assert "figures/sample_grid.png" in {f.path for f in client.list_artifacts(gen_run.info.run_id, "figures")}

    version = client.get_latest_versions("augflow-cvae")[0]
    model = mlflow.pytorch.load_model(f"models:/augflow-cvae/{version.version}")
    x = model.sample(torch.arange(10), generator=torch.Generator().manual_seed(0))
    assert x.shape == (10, 64) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert version.tags["promotion"]
    assert "promoted" in version.description.lower() and "CI" in version.description
    sig = mlflow.models.get_model_info(f"models:/augflow-cvae/{version.version}").signature
    assert [i.name for i in sig.inputs.inputs] == ["x", "y"]
    # a runs table a person can read: the full numbers are in each stage's JSON artifact
    keys = set().union(*(r.data.metrics for r in runs))
    assert len(keys) < 150, len(keys)
    # the VAE is logged from the train stage's run, and MLflow credits it that run's metrics
    # (its losses), not every gain and FID of the pipeline
    models = client.search_logged_models(experiment_ids=[exp.experiment_id])
    assert len(models) == 1 and models[0].source_run_id == train_run.info.run_id
    credited = {m.key for m in models[0].metrics or []}
    assert "best_val_loss" in credited
    assert not any(k.startswith(("gain", "kept", "mix", "fid")) for k in credited), credited


def test_data_docs_name_the_run_and_each_data_asset(pipeline_ws):
    pages = list((pipeline_ws / "data/reports/data_docs/validations").rglob("*.html"))
    assert len(pages) >= 8
    text = "\n".join(p.read_text() for p in pages)
    assert "__none__" not in text and "Data asset: None" not in text
    assert "Data asset: train" in text and "augflow-validate-" in text


def test_dvc_plots_draw_each_file_once_with_its_spec(pipeline_ws):
    """`dvc plots show`: one chart per data file (no second default chart from a stage's
    `plots:`), the arms and per-class recall split by classifier on one shared axis, each PNG
    listed once, and every label a reader needs."""
    out = json.loads(dvc(pipeline_ws, "plots", "show", "--json").stdout)["data"]
    assert sorted(out) == sorted(["plots/train_curve.csv", "plots/evaluate_arms.csv",
                                  "plots/per_class_recall.csv", "plots/sample_grid.png",
                                  "plots/filter_scores.png", "plots/evaluate_arms.png",
                                  "plots/train_curve.png"])   # the curve offline
    assert all(len(v) == 1 for v in out.values())
    arms = out["plots/evaluate_arms.csv"][0]["content"]
    assert arms["facet"]["row"]["field"] == "classifier"
    layers = arms["spec"]["layer"]
    assert layers[0]["encoding"]["y"]["field"] == "arm"
    assert layers[0]["encoding"]["x"]["field"] == "ci_low" and layers[1]["encoding"]["x"]["field"] == "mean"
    assert {r["classifier"] for r in arms["data"]["values"]} == {"logreg", "random_forest"}
    recall = out["plots/per_class_recall.csv"][0]["content"]
    assert recall["facet"]["row"]["field"] == "classifier"
    assert recall["spec"]["encoding"]["color"]["field"] == "arm"
    curve = out["plots/train_curve.csv"][0]["content"]
    assert '"title": "negative ELBO (beta-weighted), per row"' in json.dumps(curve)  # not "y"


def test_a_moved_checkout_keeps_its_mlflow_artifacts_and_reused_stages_keep_no_old_span(
        pipeline_ws, tmp_path):
    """MLflow stores artifact locations as absolute paths: after moving the checkout, `augflow
    relocate-mlflow` (which `make ui` and every `track` run first) points them at the new place.
    A second track over unchanged outputs marks every stage as reused instead of stretching the
    new parent back over the first run's stage times."""
    import mlflow
    from mlflow import MlflowClient

    first = tmp_path / "first"
    shutil.copytree(pipeline_ws, first, symlinks=True)
    said = augflow(first, "relocate-mlflow").stdout
    assert said.startswith("MLflow artifacts: moved from"), said
    built = urllib.parse.unquote(urllib.parse.urlparse(said.split()[-1]).path)
    built = built.removesuffix("/mlflow/artifacts")       # where the workspace was built
    moved = tmp_path / "moved"
    first.rename(moved)
    mlflow.set_tracking_uri(f"sqlite:///{moved / 'mlflow/mlflow.db'}")
    client = MlflowClient()
    parent = next(r for r in client.search_runs([client.get_experiment_by_name("augflow")
                                                 .experiment_id]) if r.info.run_name.endswith("pipeline"))
    with pytest.raises(Exception):       # the artifacts are recorded under the old path
        client.download_artifacts(parent.info.run_id, "figures/loss_curve.png", str(tmp_path))
    proc = augflow(moved, "relocate-mlflow")
    assert proc.returncode == 0 and str(first) in proc.stdout, proc.stdout + proc.stderr
    assert augflow(moved, "relocate-mlflow").stdout.strip() == "MLflow artifacts: in place"
    # no stored path names the old checkout: artifacts, the Default experiment, the datasets'
    # sources, source files (a LIKE over every column of every table of MLflow's store)
    import sqlite3
    con = sqlite3.connect(moved / "mlflow/mlflow.db")
    left = []
    for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for col in [c[1] for c in con.execute(f"PRAGMA table_info({table})").fetchall()]:
            hits = con.execute(f"SELECT count(*) FROM {table} WHERE CAST({col} AS TEXT) LIKE ? "
                               f"OR CAST({col} AS TEXT) LIKE ?",
                               (f"%{first}/%", f"%{built}/%")).fetchone()[0]
            left += [f"{table}.{col}: {hits}"] if hits else []
    assert left == [], left
    sources = [r[0] for r in con.execute("SELECT dataset_source FROM datasets").fetchall()]
    assert sources and all(f'"{moved}/data/' in s for s in sources), sources
    con.close()
    png = client.download_artifacts(parent.info.run_id, "figures/loss_curve.png", str(tmp_path))
    assert open(png, "rb").read(4) == b"\x89PNG"
    model = mlflow.pytorch.load_model("models:/augflow-cvae/1")
    assert model.sample(torch.arange(3)).shape == (3, 64)

    began = time.time()
    proc = augflow(moved, "track")
    assert proc.returncode == 0, proc.stderr[-2000:]
    exp_id = client.get_experiment_by_name("augflow").experiment_id
    runs = client.search_runs([exp_id], order_by=["attributes.start_time DESC"])
    second = next(r for r in runs if r.info.run_name.endswith("pipeline")
                  and r.info.run_id != parent.info.run_id)
    assert second.info.start_time >= began * 1000 - 1000          # not the first run's stage times
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == second.info.run_id]
    assert len(children) == 7
    assert all("reused by DVC" in c.data.tags.get("reused", "") for c in children)
    assert all("reused_stages" not in c.data.tags for c in children)
    assert second.data.tags["reused_stages"].startswith("7 of 7: prepare, validate")
    note = second.data.tags["mlflow.note.content"]          # the run's Description
    # the answer first (one verdict line per classifier), then the promotion decision
    lines = note.splitlines()
    assert lines[0].startswith("- **logreg**: augmented") and "best baseline" in lines[0]
    assert any("romoted" in line for line in lines[:4])
    assert "- logreg: 0." in note and "Reused by DVC" in note and "|" not in note
    # the answer as tags too (above the fold on the run page): the paired CI, then the verdict
    ev = json.loads((moved / "metrics/evaluate.json").read_text())["classifiers"]["logreg"]
    g = ev["gain"]["accuracy"]
    assert second.data.tags["vs_real.logreg"] == (
        f"{g['mean']:+.3f} [{g['ci_low']:+.3f},{g['ci_high']:+.3f}] {ev['verdict']['vs_real']}")
    assert (ev["best_baseline"] == "real"
            or second.data.tags["vs_best.logreg"].endswith(ev["verdict"]["vs_best_baseline"]))
    assert all("duration_s" not in c.data.metrics for c in children)
    assert second.info.artifact_uri.startswith((moved / "mlflow/artifacts").as_uri())
    # the same VAE tracked again: no second model version, the parent names the first
    versions = client.search_model_versions("name='augflow-cvae'")
    assert [str(v.version) for v in versions] == ["1"], [v.version for v in versions]
    assert second.data.tags["model_version"] == "1"
    assert versions[0].tags["dvc.cvae_md5"] == second.data.tags["dvc.cvae_md5"]
    # a different VAE (retrained with another beta) gets a version of its own
    params = yaml.safe_load((moved / "params.yaml").read_text())
    params["vae"]["beta"] = 0.2
    (moved / "params.yaml").write_text(yaml.safe_dump(params))
    dvc(moved, "repro", "--single-item", "train")
    proc = augflow(moved, "track")
    assert proc.returncode == 0, proc.stderr[-2000:]
    versions = client.search_model_versions("name='augflow-cvae'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    third = client.search_runs([exp_id], order_by=["attributes.start_time DESC"],
                               filter_string="tags.model_version = '2'")
    assert [r.info.run_name.endswith("pipeline") for r in third] == [True]


def test_prefect_recorded_the_run_and_its_report_artifacts(pipeline_ws):
    """The flow run that built the workspace, found through the id its MLflow run records (the
    session's Prefect API also holds other tests' runs)."""
    from mlflow import MlflowClient
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId,
                                                ArtifactFilterKey, FlowRunFilter, FlowRunFilterId)

    mlflow_client = MlflowClient(f"sqlite:///{pipeline_ws / 'mlflow/mlflow.db'}")
    exp = mlflow_client.get_experiment_by_name("augflow")
    parent = next(r for r in mlflow_client.search_runs([exp.experiment_id])
                  if r.info.run_name.endswith("pipeline"))
    run_id = parent.data.tags["prefect_flow_run_id"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        final = run.state
        # the flow-run page says the answer beside "Completed": its final state's message
        assert final.is_completed() and " beat real" in final.message, final.message
        assert final.message.endswith(("; not promoted", "; promoted"))
        # ... and the run's tags, drawn beside its name: the message's parts, one tag each
        said, promoted = final.message.split("; ")
        assert set(said.split(", ") + [promoted]) <= set(run.tags), run.tags
        keys = ["augflow-run-summary", "augflow-filter-report", "augflow-evaluation-report",
                "augflow-validation-summary", "augflow-filter-rejections",
                "augflow-augment-report"]
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=keys), flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
        # each stage's task takes the previous one's result: the run graph draws the DAG
        tasks = [t for t in client.read_task_runs(flow_run_filter=FlowRunFilter(
                     id=FlowRunFilterId(any_=[run_id])))
                 if t.name.startswith("dvc-repro-evaluate")]
        assert len(tasks) == 1 and tasks[0].task_inputs.get("after"), tasks
    by_key = {a.key: a for a in arts}
    assert set(keys) <= set(by_key)
    assert "Kept **" in by_key["augflow-filter-report"].data
    assert "Gain (augmented - real)" in by_key["augflow-evaluation-report"].data
    assert "| evaluate | ran |" in by_key["augflow-run-summary"].data
    assert "of the shares chosen by val" in by_key["augflow-run-summary"].data
    assert "MLflow: experiment" in by_key["augflow-run-summary"].data
    assert "Filter: kept " in by_key["augflow-run-summary"].data
    assert "FID of the kept rows vs train" in by_key["augflow-run-summary"].data
    # the page opens on the answer: the verdict heading comes before every number and stage
    summary = by_key["augflow-run-summary"].data
    assert summary.index("## Did augmentation help?") < summary.index("| classifier |") \
        < summary.index("## Stages")
    assert summary.index("Promotion: **") < summary.index("MLflow: experiment")
    assert all(a.description for a in arts), [a.key for a in arts if not a.description]


def test_the_run_ends_with_the_answer_in_the_terminal(pipeline_ws):
    """What `make run` prints last: a verdict line per classifier, the promotion, the MLflow link."""
    import sys

    sys.path.insert(0, str(REPO))
    from flows.pipeline import answer_text

    lines = answer_text(pipeline_ws, "sqlite:///mlflow/mlflow.db").splitlines()
    ev = json.loads((pipeline_ws / "metrics/evaluate.json").read_text())
    assert lines[0].startswith("Did augmentation help?")
    assert [ln.split(":")[0] for ln in lines[1:-2]] == [f"- {c}" for c in ev["classifiers"]]
    assert all(" real (" in ln and "best baseline" in ln and "**" not in ln for ln in lines[1:-2])
    assert lines[-2].startswith(("Promotion: not promoted: ", "Promotion: promoted to champion: "))
    run_id = json.loads((pipeline_ws / "data/runlog/tracking.json").read_text())["run_id"]
    assert lines[-1].startswith("MLflow: make ui, then http://127.0.0.1:") and run_id in lines[-1]
