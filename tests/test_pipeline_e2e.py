"""The whole pipeline on a tiny config, through the Prefect flow, DVC and MLflow for real."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, dvc

STAGE_ORDER = ("prepare", "validate", "train", "generate", "filter", "augment", "evaluate", "track")


def test_flow_and_dvc_yaml_name_the_same_stages_in_order():
    import sys
    sys.path.insert(0, str(REPO))
    from flows.pipeline import STAGES

    dag = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert tuple(dag["stages"]) == STAGES == STAGE_ORDER
    from augflow.cli import STAGES as CLI_STAGES
    assert tuple(CLI_STAGES) == STAGES


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
    # real rows, classic (shifted/rotated) rows as many as kept per class, the kept rows
    origin = augmented["origin"].astype(str)
    assert (origin == "real").sum() == len(train)
    assert origin.str.startswith("classic:").sum() == len(kept)
    assert set(origin[~origin.str.startswith("classic:") & (origin != "real")]) == set(kept["sample_id"])
    assert augmented["sample_weight"].sum() == pytest.approx(len(train))
    assert (samples["gen_parent"] >= 0).all()                  # local: each varies a real row
    mix = json.loads((ws / "metrics/augment.json").read_text())["mix"]
    assert mix["select"] == "val" and "1" in mix["val_accuracy"]
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
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.info.run_name == "pipeline"]
    assert len(parents) == 1
    parent = parents[0]
    children = {r.info.run_name for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert children == set(STAGE_ORDER) - {"track"}
    assert "prefect_flow_run_id" in parent.data.tags
    assert parent.data.params["vae.beta"] == "0.1"
    assert any(k.startswith("gain.logreg.accuracy") for k in parent.data.metrics)
    assert "mix.scale" in parent.data.metrics and "mix" in parent.data.tags
    assert not any(k.startswith("dvc.deps.") for k in parent.data.tags)   # one artifact instead
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


def test_prefect_recorded_the_run_and_its_report_artifacts(pipeline_ws):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs()
        assert any(r.state.is_completed() for r in runs)
        keys = ["augflow-run-summary", "augflow-filter-report", "augflow-evaluation-report",
                "augflow-validation-summary", "augflow-filter-rejections",
                "augflow-augment-report"]
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
        # each stage's task takes the previous one's result: the run graph draws the DAG
        tasks = [t for t in client.read_task_runs() if t.name.startswith("dvc-repro-evaluate")]
        assert tasks and tasks[0].task_inputs.get("after"), tasks
    by_key = {a.key: a for a in arts}
    assert set(keys) <= set(by_key)
    assert "Kept **" in by_key["augflow-filter-report"].data
    assert "Gain (augmented - real)" in by_key["augflow-evaluation-report"].data
    assert "| evaluate | ran |" in by_key["augflow-run-summary"].data
    assert "Mix (chosen by val)" in by_key["augflow-run-summary"].data
    assert "MLflow: experiment" in by_key["augflow-run-summary"].data
    assert all(a.description for a in arts), [a.key for a in arts if not a.description]
