"""Per-sample scores, thresholds relative to real validation rows, and keep/reject decisions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from augflow.config import FilterConfig, Threshold
from augflow.errors import AugflowError
from augflow.models.classifier import ClassifierBase
from augflow.models.cvae import CVAEBase
from augflow.quality.fidelity import fid
from augflow.quality.knn import ball_stats, knn_distances, kth_radii

# (criterion, score column, the side that is kept). Order decides the reported reject_reason.
CRITERIA = (
    ("reconstruction", "recon_error", "<="),
    ("consistency", "consistency", ">="),
    ("manifold", "manifold_ratio", "<="),
    ("near_copy", "copy_distance", ">"),
)
SCORE_COLUMNS = tuple(c for _, c, _ in CRITERIA)


@dataclass
class Reference:
    """What the scores are measured against: real train rows (scaled) and their features."""
    x_train: np.ndarray
    y_train: np.ndarray
    f_train: np.ndarray
    radii: np.ndarray        # k-NN radius of each train row in feature space


def build_reference(x_train, y_train, extractor: ClassifierBase, k: int, chunk: int,
                    progress: str | None = None) -> Reference:
    f = extractor.embed(torch.from_numpy(x_train)).numpy()
    return Reference(x_train, y_train, f, kth_radii(f, k, chunk, progress=progress))


def score_rows(x: np.ndarray, y: np.ndarray, vae: CVAEBase, extractor: ClassifierBase,
               ref: Reference, chunk: int, progress: str | None = None) -> pd.DataFrame:
    """The four per-sample scores of scaled rows x conditioned on labels y. `progress`: a
    name to show the two chunked k-NN passes (the long part on many rows) under."""
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    feats = extractor.embed(xt).numpy()
    probs = extractor.proba(xt).numpy()
    manifold_ratio, _ = ball_stats(feats, ref.f_train, ref.radii, chunk,
                                   progress=progress and f"{progress} manifold")
    copy_distance = knn_distances(x, ref.x_train, 1, chunk=chunk,
                                  progress=progress and f"{progress} nearest train row")
    return pd.DataFrame({
        "recon_error": vae.reconstruction_error(xt, yt).numpy().astype(np.float64),
        "consistency": probs[np.arange(len(y)), y].astype(np.float64),
        "manifold_ratio": manifold_ratio.astype(np.float64),
        "copy_distance": copy_distance[:, 0].astype(np.float64),
    })


def resolve_threshold(spec: Threshold, real_scores: np.ndarray) -> float:
    if spec.kind == "absolute":
        return float(spec.value)
    return float(np.quantile(real_scores, spec.value))


def passes(scores: np.ndarray, threshold: float, side: str) -> np.ndarray:
    return {"<=": scores <= threshold, ">=": scores >= threshold, ">": scores > threshold}[side]


def class_gate(f_fake: np.ndarray, y_fake: np.ndarray, f_val: np.ndarray, y_val: np.ndarray,
               ref: Reference, max_ratio: float) -> dict[int, dict]:
    """Per class: synthetic-vs-train FID over the real val-vs-train FID of the same class.
    Callers pass the rows that passed the per-sample criteria: the gate judges what would be kept."""
    out: dict[int, dict] = {}
    for c in sorted(set(y_fake.tolist())):
        real_c = ref.f_train[ref.y_train == c]
        fake_c, val_c = f_fake[y_fake == c], f_val[y_val == c]
        if len(real_c) < 3 or len(fake_c) < 3 or len(val_c) < 3:
            out[int(c)] = {"fid": None, "floor": None, "ratio": None, "passed": True}
            continue
        syn, floor = fid(fake_c, real_c), fid(val_c, real_c)
        ratio = syn / max(floor, 1e-12)
        out[int(c)] = {"fid": syn, "floor": floor, "ratio": ratio, "passed": ratio <= max_ratio}
    return out


def per_sample_reasons(scores: pd.DataFrame, val_scores: pd.DataFrame,
                       cfg: FilterConfig) -> tuple[np.ndarray, dict[str, float]]:
    """The first failing criterion of each row ('' when it passes all), and the thresholds."""
    thresholds: dict[str, float] = {}
    reason = np.full(len(scores), "", dtype=object)
    for name, col, side in CRITERIA:
        thr = resolve_threshold(getattr(cfg, name), val_scores[col].to_numpy())
        thresholds[name] = thr
        fail = ~passes(scores[col].to_numpy(), thr, side) & (reason == "")
        reason[fail] = name
    return reason, thresholds


def apply_class_gate(scores: pd.DataFrame, reason: np.ndarray, labels: np.ndarray,
                     gate: dict[int, dict], cfg: FilterConfig) -> pd.DataFrame:
    """Drop (or fail on) classes over the FID limit; add `kept` and `reject_reason`."""
    dropped = [c for c, g in gate.items() if not g["passed"]]
    if dropped and cfg.fid_gate.action == "fail":
        worst = max(dropped, key=lambda c: gate[c]["ratio"])
        raise AugflowError(
            f"class {worst} synthetic FID is {gate[worst]['ratio']:.2f}x the real floor "
            f"(limit {cfg.fid_gate.max_ratio}); classes over the limit: {dropped}",
            field="filter.fid_gate", rule="max_ratio")
    reason = reason.copy()
    reason[np.isin(labels, dropped) & (reason == "")] = "class_gate"
    out = scores.copy()
    out["kept"] = reason == ""
    out["reject_reason"] = reason.astype(str)
    return out
