"""One command per stage; dvc.yaml calls these. Errors exit non-zero with a one-paragraph message."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from collections.abc import Callable

from augflow.config import Config, load_config
from augflow.errors import AugflowError
from augflow.io import write_json
from augflow.paths import STAGES as STAGE_NAMES
from augflow.paths import Paths


def _prepare(cfg: Config, p: Paths) -> dict:
    from augflow.stages.prepare import run_prepare
    return run_prepare(cfg.data, cfg.seed, p)


def _validate(cfg: Config, p: Paths) -> dict:
    from augflow.stages.validate import run_validate
    return run_validate(cfg.data.min_rows_per_class, p)


def _train(cfg: Config, p: Paths) -> dict | None:
    from augflow.stages.train import run_train
    return run_train(cfg.vae, cfg.seed, p, cfg.device, cfg.classic)


def _generate(cfg: Config, p: Paths) -> dict:
    from augflow.stages.generate import run_generate
    return run_generate(cfg.generate, cfg.seed, p, cfg.device, cfg.classic)


def _filter(cfg: Config, p: Paths) -> dict:
    from augflow.stages.filter import run_filter
    return run_filter(cfg.filter, cfg.extractor, cfg.seed, p, cfg.device, cfg.classic)


def _augment(cfg: Config, p: Paths) -> dict:
    from augflow.stages.augment import run_augment
    return run_augment(cfg.augment, list(cfg.evaluate.classifiers), cfg.seed, p, cfg.device,
                       cfg.evaluate.max_real_rows, cfg.evaluate.fit_threads, cfg.classic,
                       cfg.generate.n_per_class)


def _evaluate(cfg: Config, p: Paths) -> dict:
    from augflow.stages.evaluate import run_evaluate
    return run_evaluate(cfg.evaluate, cfg.filter, cfg.seed, p, cfg.device, cfg.classic)


def _track(cfg: Config, p: Paths) -> dict:
    from augflow.stages.track import run_track
    return run_track(cfg, p)


# Each stage's entry, in the order of augflow.paths.STAGES (a missing one fails at import).
_ENTRIES: dict[str, Callable[[Config, Paths], dict | None]] = {
    "prepare": _prepare, "validate": _validate, "train": _train, "generate": _generate,
    "filter": _filter, "augment": _augment, "evaluate": _evaluate, "track": _track,
}
STAGES = {name: _ENTRIES[name] for name in STAGE_NAMES}
# The stage whose entry writes its own metrics file: track's is its MLflow state, written as
# soon as the parent run exists so a retry after a crash closes the same run.
_OWN_METRICS = {"track"}


def _pin_torch_threads() -> None:
    """Our models are small: one intra-op thread is as fast as two and does not spin against a
    neighbour process (a Dask worker, a second stage), and a fixed count keeps float reductions,
    and so the outputs, the same on machines with other core counts. AUGFLOW_TORCH_THREADS overrides."""
    import torch

    torch.set_num_threads(int(os.environ.get("AUGFLOW_TORCH_THREADS", "1")))


def run_stage(stage: str, params: str | Path = "params.yaml", root: str | Path = ".") -> dict:
    _pin_torch_threads()
    paths = Paths(Path(root))
    cfg = load_config(params)
    t0, started = time.perf_counter(), time.time()
    metrics = STAGES[stage](cfg, paths)
    if metrics is None:   # a member of torchrun's group other than rank 0: rank 0 records
        return {}
    if stage not in _OWN_METRICS:
        write_json(paths.metrics(stage), metrics)
    # wall-clock start and end too: the track stage gives each MLflow stage run its real span
    write_json(paths.timing(stage), {"stage": stage, "seconds": time.perf_counter() - t0,
                                     "started": started, "ended": time.time()})
    return metrics


def _lowdata(args) -> int:
    from augflow.evaluation.classifiers import CLASSIFIERS
    from augflow.lowdata import default_lowdata_classifiers, run_lowdata

    _pin_torch_threads()
    try:
        levels = [None if v.strip() == "all" else int(v) for v in args.levels.split(",")]
    except ValueError:
        raise AugflowError(f"{args.levels!r} is not a comma-separated list of labels per class "
                           "(whole numbers or all)", field="--levels", rule="integers or all") from None
    if any(lv is not None and lv < 1 for lv in levels):
        raise AugflowError("labels per class must be at least 1", field="--levels", rule=">= 1")
    for name, value in (("--draws", args.draws), ("--seeds", args.seeds)):
        if value < 1:
            raise AugflowError(f"{value}: nothing would be measured", field=name, rule=">= 1")
    cfg = load_config(args.params)
    classifiers = (default_lowdata_classifiers(cfg, Path(args.root))
                   if args.classifiers.strip() == "auto"
                   else [c.strip() for c in args.classifiers.split(",")])
    for c in classifiers:   # an unknown name fails here, before hours of work
        if c not in CLASSIFIERS:
            raise AugflowError(f"unknown classifier {c!r}", field="--classifiers",
                               rule="one of " + ", ".join(CLASSIFIERS))
    arms = [a.strip() for a in args.arms.split(",")]
    if "real" not in arms or "augmented" not in arms:
        raise AugflowError("--arms must include real and augmented", field="--arms", rule="required arms")
    run_lowdata(cfg, levels, args.draws, args.seeds, classifiers, arms,
                Path(args.root) / args.out, Path(args.root))
    print((Path(args.root) / args.out / "lowdata.md").read_text())
    return 0


def _relocate_mlflow(args) -> int:
    from augflow.stages.track import relocate_local_store

    old = relocate_local_store(load_config(args.params), Path(args.root).resolve())
    print(f"MLflow artifacts: moved from {old}" if old else "MLflow artifacts: in place")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="augflow", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="the pipeline's config")
    parser.add_argument("--root", default=".", help="workspace root holding data/ and metrics/")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in STAGES:
        sub.add_parser(name, help=f"run the {name} stage")
    sub.add_parser("check-params", help="validate params.yaml and exit")
    sub.add_parser("relocate-mlflow", help="point the local MLflow store's artifacts at this "
                                           "checkout (after moving or copying it)")
    low = sub.add_parser("lowdata", help="the gain vs labels per class curve (slow; not a DVC stage)")
    low.add_argument("--levels", default="5,10,20,50,all", help="labels per class, comma-separated")
    low.add_argument("--draws", type=int, default=3, help="re-draws of the labelled subset per level")
    low.add_argument("--seeds", type=int, default=2, help="classifier seeds per draw")
    low.add_argument("--classifiers", default="auto",
                     help="comma-separated; auto: evaluate.classifiers, plus cnn for images")
    low.add_argument("--arms", default="real,augmented,unfiltered,smote,classic")
    low.add_argument("--out", default="results/lowdata", help="where the JSON, PNG and table go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    for noisy in ("great_expectations", "matplotlib", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "check-params":
            load_config(args.params)
            print(f"{args.params}: ok")
            return 0
        if args.command == "lowdata":
            return _lowdata(args)
        if args.command == "relocate-mlflow":
            return _relocate_mlflow(args)
        metrics = run_stage(args.command, args.params, args.root)
    except AugflowError as err:
        rule = f" [rule: {err.rule}]" if err.rule else ""
        print(f"augflow {args.command}: error: {err}{rule}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    print(f"augflow {args.command}: done {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
