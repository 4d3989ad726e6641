"""The low-data curve: the augmentation gain as labels per class shrink, with CIs.

For each level and each draw of the labelled subset the whole chain runs again (prepare with a
new subset, train, generate, filter, augment), then the classifiers are scored on the same
untouched test split. CIs bootstrap over (draw, classifier seed) pairs and test rows."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from augflow.config import Config
from augflow.data.schema import read_schema
from augflow.device import resolve_device
from augflow.io import write_bytes, write_json
from augflow.paths import Paths
from augflow.progress import Progress
from augflow.evaluation.stats import against_best, arm_and_paired_cis
from augflow.evaluation.verdict import signed_ci

log = logging.getLogger("augflow.lowdata")


@contextmanager
def draw_workspace(raw: Path, prefix: str = "augflow-lowdata-", keep: bool = False
                   ) -> Iterator[Paths]:
    """A fresh temp workspace for one draw of the chain, whose data/raw is a link to `raw`
    (the user's files, read in place, never copied). Removed afterwards unless `keep`
    (the benches keep theirs to rescore a draw without re-running the chain)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        (root / "data").mkdir()
        (root / "data" / "raw").symlink_to(raw.resolve(), target_is_directory=True)
        yield Paths(root)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _chain(cfg: Config, paths: Paths, subset_seed: int, classifiers: list[str]) -> dict:
    """Every stage up to augment on a fresh labelled subset; returns augment's metrics, plus the
    filter's `kept_fraction`. The mix is chosen on validation for `classifiers`, the ones this
    curve scores (as evaluate's own list does in the pipeline)."""
    from augflow.stages.augment import run_augment
    from augflow.stages.filter import run_filter
    from augflow.stages.generate import run_generate
    from augflow.stages.prepare import run_prepare
    from augflow.stages.train import run_train

    run_prepare(cfg.data, cfg.seed, paths, subset_seed=subset_seed)
    run_train(cfg.vae, cfg.seed, paths, cfg.device, cfg.classic)
    run_generate(cfg.generate, cfg.seed, paths, cfg.device, cfg.classic)
    kept = run_filter(cfg.filter, cfg.extractor, cfg.seed, paths, cfg.device,
                      cfg.classic)["kept_fraction"]
    return {**run_augment(cfg.augment, classifiers, cfg.seed, paths, cfg.device,
                          cfg.evaluate.max_real_rows, cfg.evaluate.fit_threads, cfg.classic,
                          cfg.generate.n_per_class),
            "kept_fraction": kept}


def _arm_data(paths: Paths, scheme: dict[str, str]
              ) -> tuple[dict, np.ndarray, np.ndarray, tuple | None]:
    from augflow.stages.evaluate import arm_data

    schema = read_schema(paths.schema)
    data, xt, yt = arm_data(paths, schema, scheme)
    return data, xt, yt, schema.image_shape


def _run_level(cfg: Config, level: int | None, n_draws: int, n_seeds: int,
               classifiers: list[str], arms: list[str], source_root: Path, device: torch.device,
               result: dict, bar: Progress) -> None:
    """Every draw of one level: the chain, the classifiers' test predictions, then the level's
    CIs into `result`. One progress step per draw."""
    from augflow.stages.evaluate import predictions

    data_cfg = cfg.data.model_copy(update={"labels_per_class": level})
    level_cfg = cfg.model_copy(update={"data": data_cfg})
    preds: dict[str, dict[str, list]] = {c: {a: [] for a in arms} for c in classifiers}
    y_test = None
    scales, count, kept = [], [], []
    for d in range(n_draws):
        bar.update(0, info=f"labels_per_class={level} draw {d + 1}/{n_draws}")
        with draw_workspace(source_root / "data" / "raw") as paths:
            chained = _chain(level_cfg, paths, 1000 * (d + 1) + cfg.seed, classifiers)
            mix = chained["mix"]
            kept.append(round(chained["kept_fraction"], 4))
            scales.append(mix["scale"])
            count.append(sorted(c for c, m in mix["scheme"].items() if m == "count"))
            data, x_test, y_test, shape = _arm_data(paths, mix["scheme"])
            for clf in classifiers:
                p = predictions(clf, arms, data, x_test, shape, n_seeds, cfg.seed + 17 * d,
                                device=device, classic=cfg.classic)
                for a in arms:
                    preds[clf][a].append(p[a])
        bar.update()
    key = "all" if level is None else str(level)
    result["levels"].append(key)
    result["mix_scale"][key] = scales
    result["count_scheme"][key] = count
    # how much of the VAE's output the filter kept, per draw: 0 on the letters' first draw
    # once made that draw's augmented set the real rows alone (README)
    result["kept_fraction"][key] = kept
    # set by every draw (n_draws=0 would fail at np.vstack below in any case)
    assert y_test is not None
    classes = np.unique(y_test)
    for clf in classifiers:
        stacked = {a: np.vstack(v) for a, v in preds[clf].items()}
        arm_ci, gain_vs = arm_and_paired_cis(y_test, stacked, classes,
                                             cfg.evaluate.n_bootstrap, cfg.seed)
        entry = result["classifiers"].setdefault(clf, {})
        acc_vs = {a: g["accuracy"] for a, g in gain_vs.items()}
        entry[key] = {"arms": {a: arm_ci[a]["accuracy"] for a in arms},
                      "gain": acc_vs["real"], "gain_vs": acc_vs,
                      **against_best({a: arm_ci[a]["accuracy"]["mean"] for a in arms}, acc_vs)}


def default_lowdata_classifiers(cfg: Config, source_root: Path = Path(".")) -> list[str]:
    """evaluate.classifiers, plus the cnn when the data are images: the classifier image users
    train is the one the curve must answer for. Whether they are images is the prepared
    schema's say (an npz or a torchvision set may be either), so prepare runs once here."""
    from augflow.stages.prepare import run_prepare

    names: list[str] = list(cfg.evaluate.classifiers)
    with draw_workspace(source_root / "data" / "raw") as paths:
        run_prepare(cfg.data, cfg.seed, paths)
        image = read_schema(paths.schema).image_shape is not None
    return names + ["cnn"] if image and "cnn" not in names else names


def run_lowdata(cfg: Config, levels: list[int | None], n_draws: int, n_seeds: int,
                classifiers: list[str], arms: list[str], out_dir: Path,
                source_root: Path = Path(".")) -> dict:
    """source_root: the workspace whose data/raw/ holds the user's files (file sources)."""
    from augflow.plots import lowdata_png

    result: dict = {"levels": [], "n_draws": n_draws, "n_seeds": n_seeds, "classifiers": {},
                    "mix_scale": {}, "count_scheme": {}, "kept_fraction": {}}
    device = resolve_device(cfg.device)
    # one step per (level, draw): each is a whole chain of stages, minutes on the defaults
    with Progress("lowdata", len(levels) * n_draws, logger=log) as bar:
        for level in levels:
            _run_level(cfg, level, n_draws, n_seeds, classifiers, arms, source_root, device,
                       result, bar)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "lowdata.json", result)
    write_bytes(out_dir / "lowdata.png", lowdata_png(result))
    write_bytes(out_dir / "lowdata.md", lowdata_markdown(result).encode())
    return result


def lowdata_markdown(result: dict) -> str:
    lines = [f"Accuracy on the untouched test split; {result['n_draws']} draws of the "
             f"labelled subset x {result['n_seeds']} classifier seeds per level; mean and 95% "
             "bootstrap CI. Gain = augmented - real (paired). The augmented arm is weighted "
             "(augment.*); the scale of its shares chosen on validation, per draw: " +
             "; ".join(f"{k}/class: {', '.join(f'{v:g}' for v in s)}"
                       for k, s in result.get("mix_scale", {}).items()) + ". Classifiers "
             "given the count weights (real and classic rows 1 each) instead of the shares, "
             "chosen on validation, per draw: " +
             "; ".join(f"{k}/class: " + ", ".join("+".join(d) or "none" for d in s)
                       for k, s in result.get("count_scheme", {}).items())
             + "." + (" Share of the VAE's samples the filter kept, per draw: " +
                      "; ".join(f"{k}/class: {', '.join(f'{v:.2f}' for v in s)}"
                                for k, s in result["kept_fraction"].items()) + "."
                      if result.get("kept_fraction") else ""), ""]
    ci = lambda g: signed_ci(g, 3)
    for clf, per_level in result["classifiers"].items():
        arms = list(next(iter(per_level.values()))["arms"])
        lines += [f"**{clf}**", "", "| labels/class | " + " | ".join(arms) +
                  " | gain over real | best baseline | gain over it |",
                  "| --- " * (len(arms) + 4) + "|"]
        for level, e in per_level.items():
            cells = [f"{e['arms'][a]['mean']:.3f}" for a in arms]
            best = e.get("best_baseline", "real")
            vs_best = e.get("gain_vs", {}).get(best, e["gain"])
            lines.append(f"| {level} | " + " | ".join(cells) + f" | {ci(e['gain'])} | {best} | "
                         f"{ci(vs_best)} |")
        lines.append("")
    return "\n".join(lines)
