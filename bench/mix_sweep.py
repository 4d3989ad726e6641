"""Which mix pays: test accuracy of fixed (classic_share, synthetic_share) pairs on the same
chain outputs, beside real and the unweighted classic baseline. An ablation for the README, not
a tuner: the pipeline's defaults are chosen on validation rows inside `augment`.

    python bench/mix_sweep.py --set digits --levels 5,10      # ~10 min on 2 cores
    python bench/mix_sweep.py --set glyphs28 --levels 5,10    # ~25 min
    python bench/mix_sweep.py --set glyphs28 --levels 10 --norm both --shares 0.5/0.25,2/0
        # --norm rows: the same weights rescaled to average 1 over all rows ("n" suffix);
        # --set table: the synthetic table of bench/lowdata_sets.py

Per level, 3 draws of the labelled subset; per draw the chain (prepare .. augment) runs once with
the repo's params, then every mix re-weights the same augmented rows. "0/s" has no classic rows'
weight (the VAE alone), "c/0" no synthetic weight (classic rows alone, weighted). Gains are
paired against real, 95% bootstrap CIs over (draw, seed) pairs and test rows."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARES = [(0.5, 0.25), (1, 0.5), (1, 1), (2, 1), (4, 2), (8, 4), (0, 1), (2, 0)]
CLASSIFIERS = ["logreg", "svm_rbf", "random_forest"]


def _with_source(cfg, name: str, raw: Path):
    """cfg pointed at the chosen data set, its files written under `raw` (digits: built in)."""
    from lowdata_sets import write_set

    return cfg.model_copy(update={"data": cfg.data.model_copy(update=write_set(name, raw))})


def source_cfg(name: str, prefix: str):
    """The repo's params pointed at data set `name`, its files written under a new temp dir
    `prefix`*/data/raw; returns (cfg, that data/raw)."""
    from augflow.config import load_config

    src = Path(tempfile.mkdtemp(prefix=prefix))
    (src / "data" / "raw").mkdir(parents=True)
    cfg = load_config(Path(__file__).resolve().parents[1] / "params.yaml")
    return _with_source(cfg, name, src / "data" / "raw"), src / "data" / "raw"


def _draw_arms(paths, shares, norms) -> tuple[dict, np.ndarray, np.ndarray]:
    """One draw's training sets: real, classic (images) and the augmented rows under each
    share pair and weight total; and the test split."""
    from augflow.data.augmented import ORIGIN, origin_kinds
    from augflow.data.schema import read_schema, read_xy
    from augflow.data.table import codes_from_names
    from augflow.evaluation.arms import classic_rows
    from augflow.io import read_parquet
    from augflow.stages.augment import mix_weights

    schema = read_schema(paths.schema)
    table = read_parquet(paths.augmented)
    kinds = origin_kinds(table[ORIGIN].to_numpy())
    xa = schema.encoder.transform(table, "augmented")
    ya = codes_from_names(table[schema.label_column].to_numpy(), schema.class_names,
                          "augmented", schema.label_column)
    xt, yt = read_xy(paths.split("test"), schema)
    xr, yr = read_xy(paths.split("train"), schema)
    extra = {int(c): int((ya == c).sum() - (yr == c).sum()) for c in np.unique(yr)}
    arms = {"real": (xr, yr, None)}
    if schema.image_shape:
        arms["classic"] = classic_rows(xr, yr, extra, schema.image_shape, 0) + (None,)
    for c, s in shares:
        for norm in norms:
            w = mix_weights(kinds, {"classic": c, "synthetic": s})
            if norm == "rows":
                w = w * (len(w) / w.sum())
            arms[f"{c:g}/{s:g}" + ("" if norm == "real" else "n")] = (xa, ya, w)
    return arms, xt, yt


def _print_level(name: str, lpc: int, preds: dict, yt: np.ndarray) -> None:
    from augflow.evaluation.stats import arm_and_gain_cis

    print(f"\n{name}, {lpc} labels/class: test accuracy (gain vs real, 95% CI)", flush=True)
    for clf in CLASSIFIERS:
        p = {a: np.vstack(v) for a, v in preds[clf].items()}
        cells = []
        for a in p:
            if a == "real":
                continue
            arm, gain = arm_and_gain_cis(yt, {"real": p["real"], "augmented": p[a]},
                                         np.unique(yt), 1000, 0)
            g = gain["accuracy"]
            cells.append(f"{a} {arm['augmented']['accuracy']['mean']:.3f} "
                         f"({g['mean']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}])")
        print(f"  {clf}: real {arm['real']['accuracy']['mean']:.3f}; " + "; ".join(cells), flush=True)


def main() -> int:
    from augflow.evaluation.classifiers import fit_weighted, make_classifier
    from augflow.lowdata import _chain, draw_workspace

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("digits", "glyphs28", "table"), default="digits")
    ap.add_argument("--norm", choices=("real", "rows", "both"), default="real",
                    help="weights sum to the real rows (real) or average 1 over all rows (rows)")
    ap.add_argument("--shares", default=None, help="c/s pairs, e.g. 0.5/0.25,2/0")
    ap.add_argument("--levels", default="5,10")
    ap.add_argument("--draws", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg, raw = source_cfg(args.set, "augflow-sweep-")
    shares = ([tuple(float(v) for v in p.split("/")) for p in args.shares.split(",")]
              if args.shares else SHARES)
    norms = ("real", "rows") if args.norm == "both" else (args.norm,)
    for lpc in (int(v) for v in args.levels.split(",")):
        lcfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"labels_per_class": lpc})})
        preds: dict[str, dict[str, list]] = {}
        for d in range(args.draws):
            with draw_workspace(raw, "augflow-sweep-draw-", keep=True) as paths:
                _chain(lcfg, paths, 1000 * (d + 1) + cfg.seed, list(cfg.evaluate.classifiers))
                arms, xt, yt = _draw_arms(paths, shares, norms)
            for name, (x, y, w) in arms.items():
                for clf in CLASSIFIERS:
                    for seed in range(2):
                        model = fit_weighted(make_classifier(clf, seed), x, y, w)
                        preds.setdefault(clf, {}).setdefault(name, []).append(model.predict(xt))
        _print_level(args.set, lpc, preds, yt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
