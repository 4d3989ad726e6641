"""Where each stage reads and writes, relative to the workspace root. dvc.yaml names the same files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The pipeline's stages in order: the one list the cli, the flow, tracking, tests and bench read.
# dvc.yaml declares the same stages (tests/test_pipeline_e2e.py holds the two together).
STAGES = ("prepare", "validate", "train", "generate", "filter", "augment", "evaluate", "track")


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")

    def _p(self, rel: str) -> Path:
        return self.root / rel

    @property
    def params(self) -> Path: return self._p("params.yaml")
    def split(self, name: str) -> Path: return self._p(f"data/prepared/{name}.parquet")
    @property
    def schema(self) -> Path: return self._p("data/prepared/schema.json")
    @property
    def validation(self) -> Path: return self._p("data/reports/validation.json")
    @property
    def data_docs(self) -> Path: return self._p("data/reports/data_docs")
    @property
    def validation_page(self) -> Path: return self._p("data/reports/validation.html")
    @property
    def validation_runs(self) -> Path: return self._p("data/runlog/validation_runs.jsonl")
    @property
    def checkpoint(self) -> Path: return self._p("data/models/cvae.pt")
    @property
    def train_resume(self) -> Path: return self._p("data/models/cvae.resume.pt")
    @property
    def train_curve(self) -> Path: return self._p("plots/train_curve.csv")
    @property
    def train_curve_png(self) -> Path: return self._p("plots/train_curve.png")
    @property
    def samples(self) -> Path: return self._p("data/synthetic/samples.parquet")
    @property
    def sample_grid(self) -> Path: return self._p("plots/sample_grid.png")
    @property
    def kept(self) -> Path: return self._p("data/filtered/kept.parquet")
    @property
    def scores(self) -> Path: return self._p("data/filtered/scores.parquet")
    @property
    def extractor(self) -> Path: return self._p("data/filtered/extractor.pt")
    @property
    def filter_fidelity(self) -> Path: return self._p("data/filtered/fidelity.json")
    @property
    def filter_report(self) -> Path: return self._p("data/filtered/report.md")
    @property
    def filter_hist(self) -> Path: return self._p("plots/filter_scores.png")
    @property
    def augmented(self) -> Path: return self._p("data/augmented/train.parquet")
    @property
    def augment_report(self) -> Path: return self._p("data/reports/augment.md")
    @property
    def evaluate_report(self) -> Path: return self._p("data/reports/evaluate.md")
    @property
    def evaluate_arms_csv(self) -> Path: return self._p("plots/evaluate_arms.csv")
    @property
    def per_class_recall_csv(self) -> Path: return self._p("plots/per_class_recall.csv")
    @property
    def fidelity_vs_test(self) -> Path: return self._p("data/reports/fidelity_vs_test.json")
    @property
    def evaluate_plot(self) -> Path: return self._p("plots/evaluate_arms.png")
    @property
    def tracking_state(self) -> Path: return self._p("data/runlog/tracking.json")
    def metrics(self, stage: str) -> Path: return self._p(f"metrics/{stage}.json")
    def timing(self, stage: str) -> Path: return self._p(f"data/runlog/{stage}.timing.json")
