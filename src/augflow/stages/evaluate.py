"""Stage evaluate: classifiers trained on each arm, tested on the untouched real test split.

This is the only stage that reads the test split."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from augflow.evaluation.arms import SEED_FREE_ARMS, arm_training_set
from augflow.evaluation.classifiers import (SEED_FREE_CLASSIFIERS, fit_threads_for, fit_weighted,
                                           make_classifier)
from augflow.config import ClassicConfig, EvaluateConfig, FilterConfig
from augflow.checkpoints import load_extractor
from augflow.data.augmented import (ORIGIN, WEIGHTS, added_weight_fraction, origin_parents,
                                    read_augmented, sample_lineage)
from augflow.data.schema import Schema, frame_xy, read_schema, read_xy
from augflow.data.transforms import describe as describe_classic
from augflow.device import resolve_device
from augflow.errors import AugflowError
from augflow.io import read_json, read_parquet, write_bytes, write_json
from augflow.paths import Paths
from augflow.quality.fidelity import KID_NOTE, fidelity_report
from augflow.runners import FitJob, check_dask_cluster, run_jobs
from augflow.evaluation.stats import against_best, arm_and_paired_cis
from augflow.evaluation.verdict import HOW_TO_READ, SAYS, signed_ci, verdict_bullets
from augflow.evaluation.subsample import follow_parents, real_subset

log = logging.getLogger("augflow.evaluate")
# Metrics in metrics/evaluate.json; per-class recall goes to plots/per_class_recall.csv.
HEADLINE_METRICS = ("accuracy", "macro_f1")


class _FitPredict:
    """One job's work: build the arm's training set, fit, predict the test rows. A picklable
    callable, so a Dask worker can run it as well as this process."""

    def __init__(self, data: dict, x_test: np.ndarray, image_shape,
                 device: torch.device | None = None,
                 classic: ClassicConfig = ClassicConfig()) -> None:
        self.data, self.x_test, self.image_shape = data, x_test, image_shape
        self.device, self.classic = device, classic

    def __call__(self, job: FitJob) -> np.ndarray:
        torch.set_num_threads(1)   # also on a Dask worker: small fits, no thread oversubscription
        x, y, w = arm_training_set(job.arm, self.data, self.image_shape, job.seed, self.classic)
        if job.arm == "augmented":
            # the weighting scheme this classifier was given on validation (augment stage)
            w = self.data["augmented_weights"][self.data["scheme"].get(job.classifier, "share")]
        if len(np.unique(y)) < 2:
            return np.full(len(self.x_test), -1)
        model = make_classifier(job.classifier, job.seed, self.device, self.image_shape)
        return fit_weighted(model, x, y, w).predict(self.x_test)


def predictions(clf_name: str, arms: Sequence[str], data: dict, x_test: np.ndarray,
                image_shape, n_seeds: int, base_seed: int, runner: str = "local",
                workers: int = 2, device: torch.device | None = None,
                threads: int = 1, classic: ClassicConfig = ClassicConfig(),
                address: str | None = None) -> dict[str, np.ndarray]:
    """Test-set predictions, shape (n_seeds, n_test), per arm; `device` for the torch classifiers.

    A seed-free classifier on a seed-free arm gives the same predictions under every seed, so
    it is fitted once and its row repeated n_seeds times (logistic regression and the RBF SVM
    on real, augmented, unfiltered, synthetic_only): the same numbers, and at the default 6
    arms x 5 seeds 14 fits instead of 30."""
    once = clf_name in SEED_FREE_CLASSIFIERS
    jobs = [FitJob(clf_name, arm, base_seed + s) for arm in arms
            for s in range(1 if once and arm in SEED_FREE_ARMS else n_seeds)]
    got = run_jobs(jobs, _FitPredict(data, x_test, image_shape, device, classic), runner, workers,
                   progress=f"evaluate {clf_name} fits",
                   threads=fit_threads_for([clf_name], threads), address=address)
    by_arm: dict[str, list[np.ndarray]] = {arm: [] for arm in arms}
    for job, p in zip(jobs, got):
        by_arm[job.arm].append(p)
    return {arm: np.vstack(p * (n_seeds // len(p))) for arm, p in by_arm.items()}


def arm_data(paths: Paths, schema: Schema, scheme: dict[str, str] | None = None
             ) -> tuple[dict, np.ndarray, np.ndarray]:
    """Every arm's source rows in model space, and the test split's. `scheme`: the augment
    stage's weighting scheme per classifier (its metrics' mix.scheme; share when absent).
    data["lineage"] holds each added set's (ids, parent train rows), for the row cap."""
    samples = read_parquet(paths.samples)
    xg, yg = frame_xy(samples, schema, str(paths.samples))
    kept_df = pd.read_parquet(paths.kept)
    kept = frame_xy(kept_df, schema, str(paths.kept)) if len(kept_df) else (xg[:0], yg[:0])
    xa, ya, weights = read_augmented(paths.augmented, schema)
    scheme = dict(scheme or {})
    for clf, name in scheme.items():
        if name not in weights:
            raise AugflowError(f"{clf} was given the {name} weights, which the augmented set "
                               "does not hold; rerun the augment stage", file=str(paths.augmented),
                               field=WEIGHTS[name], rule="required")
    kept_lineage = sample_lineage(kept_df) if len(kept_df) else (np.zeros(0, object),
                                                                  np.zeros(0, np.int64))
    origin = pd.read_parquet(paths.augmented, columns=[ORIGIN])[ORIGIN].astype(str).to_numpy(
        dtype=object)
    generated_lineage = sample_lineage(samples)
    parent_of = dict(zip(*generated_lineage))
    data = {"real": read_xy(paths.split("train"), schema), "kept": kept, "generated": (xg, yg),
            "augmented": (xa, ya, weights["share"]), "augmented_weights": weights,
            "scheme": scheme,
            "lineage": {"generated": generated_lineage, "kept": kept_lineage,
                        "augmented": (origin, origin_parents(origin, parent_of))}}
    xt, yt = read_xy(paths.split("test"), schema)
    return data, xt, yt


def cap_fit_rows(data: dict, cap: int | None, seed: int) -> tuple[dict, dict]:
    """The data the classifiers fit on under evaluate.max_real_rows: a stratified subsample of
    the real rows and the added rows made from them (augflow.evaluation.subsample), with how
    many rows that is. Under the cap, the data as it is."""
    xr, yr = data["real"]
    keep = real_subset(yr, cap, seed)
    info = {"max_real_rows": cap, "real_rows": int(len(yr)),
            "real_rows_fitted": int(len(yr) if keep is None else keep.sum())}
    if keep is None:
        info["augmented_rows_fitted"] = int(len(data["augmented"][1]))
        return data, info
    lineage = data["lineage"]
    mask = {k: follow_parents(lineage[k][1], lineage[k][0], keep, seed) for k in lineage}
    xa, ya, wa = data["augmented"]
    m = mask["augmented"]
    out = {**data, "real": (xr[keep], yr[keep]),
           "kept": tuple(a[mask["kept"]] for a in data["kept"]),
           "generated": tuple(a[mask["generated"]] for a in data["generated"]),
           "augmented": (xa[m], ya[m], wa[m]),
           "augmented_weights": {k: w[m] for k, w in data["augmented_weights"].items()}}
    info["augmented_rows_fitted"] = int(m.sum())
    return out, info


def against_baselines(arms: dict[str, dict], gain_vs: dict[str, dict]) -> dict:
    """One classifier's entry of metrics/evaluate.json: every arm's CIs; `gain` (augmented -
    real, paired), `gain_vs` (augmented - each other arm, paired over the same seeds and test
    rows); the best baseline (the other arm with the highest mean accuracy) and whether the
    augmented set beat real and that baseline (better / worse / level by the accuracy CI)."""
    return {"arms": arms, "gain": gain_vs["real"], "gain_vs": gain_vs,
            **against_best({a: v["accuracy"]["mean"] for a, v in arms.items()},
                           {a: g["accuracy"] for a, g in gain_vs.items()})}


def promotion_decision(result: dict, cfg: EvaluateConfig, added_weight: float = 1.0) -> dict:
    """Promote when the gain's CI lower bound clears the threshold (for one classifier, or for
    more than half of them with promote_classifier: majority) and the augment stage gave the
    added rows weight (a zero weight means no amount helped on validation: nothing to promote)."""
    names = (list(result["classifiers"]) if cfg.promote_classifier == "majority"
             else [cfg.promote_classifier])
    gains = {c: result["classifiers"][c]["gain"]["accuracy"] for c in names}
    cleared = [c for c, g in gains.items() if g["ci_low"] > cfg.promote_min_gain]
    clears = 2 * len(cleared) > len(names)
    ok = clears and added_weight > 0
    each = "; ".join(f"{c}: {g['mean']:+.4f} (95% CI {g['ci_low']:+.4f} to {g['ci_high']:+.4f})"
                     for c, g in gains.items())
    if cfg.promote_classifier == "majority":
        why = (f"the accuracy gain's CI lower bound clears the threshold "
               f"{cfg.promote_min_gain:+.4f} for {len(cleared)} of {len(names)} classifiers "
               f"({'more' if clears else 'not more'} than half): {each}")
    else:
        why = (f"accuracy gain of {each}; the CI's lower bound "
               f"{'clears' if clears else 'does not clear'} the threshold {cfg.promote_min_gain:+.4f}")
    if added_weight <= 0:
        why += "; no amount of added data helped on validation (added rows weigh 0)"
    return {"promote": bool(ok), "classifier": cfg.promote_classifier, "metric": "accuracy",
            "threshold": cfg.promote_min_gain, "cleared": cleared, "reason": why}


def _panel_notes(result: dict) -> dict[str, str]:
    """Each classifier's panel title: the verdict and paired gain over real and over the best
    baseline, CIs (the words of every other screen)."""
    notes = {}
    for clf, r in result["classifiers"].items():
        g, v = r["gain"]["accuracy"], r.get("verdict", {})
        line = (f"{clf}: augmented {SAYS.get(v.get('vs_real', ''), 'vs')} real "
                f"{g['mean']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]")
        best = r.get("best_baseline")
        if best and best != "real" and best in r.get("gain_vs", {}):
            b = r["gain_vs"][best]["accuracy"]
            line += (f"\n{SAYS.get(v.get('vs_best_baseline', ''), 'vs')} the best baseline, "
                     f"{best} {b['mean']:+.3f} [{b['ci_low']:+.3f}, {b['ci_high']:+.3f}]")
        notes[clf] = line
    return notes


def run_evaluate(cfg: EvaluateConfig, filter_cfg: FilterConfig, seed: int, paths: Paths,
                 device: str = "auto", classic: ClassicConfig = ClassicConfig()) -> dict:
    """Every classifier x arm x seed, fitted on the arm's rows and scored on the real test
    split, with bootstrap CIs of each arm and of the gain over real; the promotion decision;
    fidelity of the kept samples against test. Returns the metrics (metrics/evaluate.json).
    `device` (params.yaml's): where the torch classifiers (mlp, cnn) and the extractor run."""
    from augflow.plots import arms_png

    dev = resolve_device(device)
    if cfg.runner == "dask" and cfg.dask_address is not None:
        check_dask_cluster(cfg.dask_address, "evaluate.dask_address")   # before any work
    schema = read_schema(paths.schema)
    augment = read_json(paths.metrics("augment")) if paths.metrics("augment").is_file() else {}
    scheme = augment.get("mix", {}).get("scheme", {})
    data, xt_s, yt = arm_data(paths, schema, scheme)
    fit_data, rows = cap_fit_rows(data, cfg.max_real_rows, seed)
    # At scale the test split is scored on a fixed stratified subsample, drawn before any fit:
    # an RBF SVM's prediction costs as much as its fit there, and thousands of test rows
    # already give CIs narrower than the seeds' spread.
    scored = real_subset(yt, cfg.max_test_rows, seed + 1)
    rows.update(max_test_rows=cfg.max_test_rows, test_rows=int(len(yt)),
                test_rows_scored=int(len(yt) if scored is None else scored.sum()))
    if scored is not None:
        xt_s, yt = xt_s[scored], yt[scored]
    image_shape = schema.image_shape
    arms = [a for a in cfg.arms if a != "classic" or image_shape is not None]
    classes = np.asarray(schema.classes)

    result: dict = {"n_seeds": cfg.n_seeds, "n_test": int(len(yt)), "rows": rows,
                    "classifiers": {}}
    table_rows: list[dict] = []
    recall_rows: list[dict] = []
    for clf in cfg.classifiers:
        log.info("evaluating %s on arms %s x %d seeds", clf, arms, cfg.n_seeds)
        preds = predictions(clf, arms, fit_data, xt_s, image_shape, cfg.n_seeds, seed, cfg.runner,
                            cfg.dask_workers, dev, cfg.fit_threads, classic, cfg.dask_address)
        arm_ci, gain_vs = arm_and_paired_cis(yt, preds, classes, cfg.n_bootstrap, seed)
        headline = lambda d: {m: v for m, v in d.items() if m in HEADLINE_METRICS}
        result["classifiers"][clf] = against_baselines(
            {a: headline(v) for a, v in arm_ci.items()},
            {a: headline(v) for a, v in gain_vs.items()})
        for arm in arms:
            table_rows.append({"classifier": clf, "arm": arm, **arm_ci[arm]["accuracy"]})
            recall_rows += [{"classifier": clf, "arm": arm, "class": m.rsplit("_", 1)[1], **v}
                            for m, v in arm_ci[arm].items() if m.startswith("recall_class_")]
    if image_shape is not None:
        result["classic_transforms"] = describe_classic(classic)
    result["added_weight_fraction"] = added_weight_fraction(paths.augmented)
    result["scheme"] = {c: scheme.get(c, "share") for c in cfg.classifiers}
    result["promotion"] = promotion_decision(result, cfg, result["added_weight_fraction"])
    # the generated and kept sets whole (a few thousand rows at most), real train as fitted
    result["fidelity_vs_test"], per_class = fidelity_vs_test(
        paths, {**data, "real": fit_data["real"]}, xt_s, yt, filter_cfg, seed, dev)
    write_json(paths.fidelity_vs_test, per_class)
    table = pd.DataFrame(table_rows)
    write_bytes(paths.evaluate_arms_csv, table.to_csv(index=False, float_format="%.6f").encode())
    write_bytes(paths.evaluate_plot, arms_png(table, "accuracy", _panel_notes(result)))
    write_bytes(paths.per_class_recall_csv,
                pd.DataFrame(recall_rows).to_csv(index=False, float_format="%.6f").encode())
    write_bytes(paths.evaluate_report, evaluate_report_md(result).encode())
    return result


def fidelity_vs_test(paths: Paths, data: dict, xt: np.ndarray, yt: np.ndarray,
                     cfg: FilterConfig, seed: int,
                     device: torch.device | None = None) -> tuple[dict, dict]:
    """FID and friends against the test split: the only honest reference for the kept samples.
    Returns the overall numbers and the full per-class reports."""
    ext = load_extractor(paths.extractor)
    if device is not None:
        ext.to(device)   # embed moves each batch there and the features back
    emb = lambda x: ext.embed(torch.from_numpy(x)).numpy()
    ft = emb(xt)
    out, full = {}, {}
    radii: dict = {}   # the test side's k-NN radii, once for the three reports
    for name, key in (("generated", "generated"), ("kept", "kept"), ("real_train", "real")):
        x, y = data[key]
        full[name] = fidelity_report(ft, yt, emb(x), y, cfg.knn_k, cfg.chunk_rows, seed, radii)
        out[name] = {m: v for m, v in (full[name]["overall"] or {}).items() if not m.startswith("n_")}
    g, k = out["generated"].get("fid"), out["kept"].get("fid")
    if g and k is not None:
        out["kept_vs_generated_fid_change"] = (k - g) / g
    return out, full


def _ci(d: dict) -> str:
    return f"{d['mean']:.4f} [{d['ci_low']:.4f}, {d['ci_high']:.4f}]"


def verdict_lines(result: dict) -> list[str]:
    """The answer first: per classifier, the augmented set against real and against the best
    baseline, with the paired CIs behind each word."""
    lines = ["## Did augmentation help?", ""]
    if result.get("added_weight_fraction", 1.0) <= 0:
        lines += ["No amount of added data helped on validation: the added rows weigh 0, so the "
                  "augmented arm is the real data (augment report).", ""]
    return lines + verdict_bullets(result["classifiers"]) + ["", HOW_TO_READ, ""]


def evaluate_report_md(result: dict) -> str:
    lines = ["# Evaluation report", "",
             f"{result['n_seeds']} seeds per arm; {result['n_test']} untouched real test rows. "
             "Mean with 95% bootstrap CI over seeds and test rows.", ""]
    rows = result.get("rows", {})
    if rows.get("test_rows_scored", 0) < rows.get("test_rows", 0):
        lines[-2] += (f" The test rows are a stratified {rows['test_rows_scored']} of the "
                      f"{rows['test_rows']} untouched real test rows (evaluate.max_test_rows), "
                      "drawn before any fit.")
    if rows.get("real_rows_fitted", 0) < rows.get("real_rows", 0):
        lines += [f"**Measured as if you had {rows['real_rows_fitted']} labelled rows**: every "
                  f"classifier fits on a stratified {rows['real_rows_fitted']} of the "
                  f"{rows['real_rows']} real train rows and the {rows['augmented_rows_fitted']} "
                  "augmented rows made from them (evaluate.max_real_rows, README \"At scale\"). "
                  "With all the rows the gain is likely smaller.", ""]
    lines += verdict_lines(result)
    if "classic_transforms" in result:
        lines += [f"The classic arm (and the augmented set's classic rows): "
                  f"{result['classic_transforms']} (params.yaml `classic`).", ""]
    for clf, r in result["classifiers"].items():
        weights = {"share": "`sample_weight`", "count": "`sample_weight_count`"}[
            result.get("scheme", {}).get(clf, "share")]
        lines += [f"## {clf}", "", f"The augmented arm trains with {weights} (chosen on "
                                   "validation, augment report).", "",
                  "| arm | accuracy | macro-F1 |", "| --- | --- | --- |"]
        for arm, m in r["arms"].items():
            lines.append(f"| {arm} | {_ci(m['accuracy'])} | {_ci(m['macro_f1'])} |")
        g = r["gain"]["accuracy"]
        verdict = ("nothing was added: no amount helped on validation"
                   if result.get("added_weight_fraction", 1.0) <= 0 else
                   ("augmentation helped" if g["ci_low"] > 0 else
                   "augmentation hurt" if g["ci_high"] < 0 else
                   "no clear effect: the CI of the gain includes zero"))
        lines += ["", f"Gain (augmented - real), paired: accuracy {_ci(g)}, macro-F1 "
                      f"{_ci(r['gain']['macro_f1'])}. **{verdict}.**", "",
                  "Paired gain of the augmented set over each arm (same seeds and test rows):", "",
                  "| augmented - | accuracy | macro-F1 |", "| --- | --- | --- |"]
        for arm, gv in r.get("gain_vs", {}).items():
            lines.append(f"| {arm} | {signed_ci(gv['accuracy'])} | {signed_ci(gv['macro_f1'])} |")
        lines.append("")
    p = result["promotion"]
    lines += ["## Promotion", "", f"{'Promote' if p['promote'] else 'Do not promote'}: {p['reason']}.", ""]
    fv = result["fidelity_vs_test"]
    lines += ["## Fidelity against the test split", "", "| set | FID | KID | precision | recall | density | coverage |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("real_train", "generated", "kept"):
        o = fv[name]
        if o:
            lines.append(f"| {name} | {o['fid']:.3f} | {o['kid']:.4f} | {o['precision']:.3f} | "
                         f"{o['recall']:.3f} | {o['density']:.3f} | {o['coverage']:.3f} |")
    lines += ["", KID_NOTE]
    if "kept_vs_generated_fid_change" in fv:
        lines += ["", f"Filtering changed FID vs test by {100 * fv['kept_vs_generated_fid_change']:+.1f}%."]
    return "\n".join(lines) + "\n"
