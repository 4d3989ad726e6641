"""Stage augment: the augmented training set, in the user's own format, and how much each
source weighs in it.

Rows: the real train rows, classic variants of them (small shifts and rotations; images only)
and the kept synthetic rows; classic rows take the places of the samples the filter rejected
(augment.replace_rejected), so a class gets as many added rows whatever the filter keeps.
Columns: the user's feature columns and units, their label column
and class names, `origin` (real, classic:<train row>, or the synthetic sample_id that traces back
to the generator) and `sample_weight`. The weights give each source a share of the real rows'
total weight (augment.classic_share, augment.synthetic_share) and sum to the number of real rows,
so a classifier's regularisation means what it meant on real data alone. Measured on digits at
5 labels per class: unweighted, the ~30x more synthetic than real rows cost logistic regression
8 points of test accuracy (README, "What the augmented set is").

The shares are checked on validation rows (never test): select=val scales them by each of
augment.scales and keeps the scale with the best mean validation accuracy of the evaluate
classifiers, leaving the configured shares (scale 1) only for a gain above two standard errors
of the paired difference, because a handful of validation rows per class is a noisy judge.
Scale 0 means no amount helped: the added rows stay in the file with weight 0, and evaluate
withholds the champion alias.

For images a second column, sample_weight_count (the count scheme), weighs real and classic
rows 1 each and a kept VAE row augment.synthetic_row_weight; each evaluate classifier is given
the scheme that gets more validation rows right (mix.scheme). Linear models want the shares,
the RBF SVM and the forest the counts on the 28x28 letters (README, "Two weightings")."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import pandas as pd
import torch

from augflow.evaluation.arms import classic_variants
from augflow.evaluation.classifiers import fit_threads_for, fit_weighted, make_classifier
from augflow.evaluation.subsample import follow_parents, real_subset
from augflow.config import AugmentConfig, ClassicConfig
from augflow.data.augmented import (ORIGIN, REAL, WEIGHT, WEIGHT_COUNT, WEIGHTS, origin_kinds,
                                    origin_parents, sample_lineage)
from augflow.data.schema import Schema, frame_xy, read_schema, read_xy
from augflow.data.table import codes_from_names, label_codes, make_table
from augflow.device import resolve_device
from augflow.io import read_parquet, write_bytes, write_parquet
from augflow.paths import Paths
from augflow.runners import run_jobs

K = TypeVar("K")   # the key of a weighting in val_correct (a scale, or a scheme's name)


def mix_weights(origin_kind: np.ndarray, shares: dict[str, float]) -> np.ndarray:
    """Per-row weights: real rows 1, each other source's rows together share[source] x n_real,
    then all scaled to sum to n_real. `origin_kind` holds real, classic or synthetic per row."""
    n_real = int((origin_kind == REAL).sum())
    w = np.ones(len(origin_kind), np.float64)
    for kind, share in shares.items():
        rows = origin_kind == kind
        if rows.any():
            w[rows] = share * n_real / rows.sum()
    total = w.sum()
    return w * (n_real / total) if total > 0 else w


def augment_table(real: pd.DataFrame, extra: list[tuple[pd.DataFrame, np.ndarray]],
                  schema: Schema) -> pd.DataFrame:
    """Real rows then each extra table (rows in the prepared format, origin labels) in the
    user's format, without weights."""
    features, names = schema.features, np.asarray(schema.class_names, dtype=object)
    parts = []
    for df, origin in [(real, np.full(len(real), REAL, dtype=object))] + extra:
        out = df[features].copy().reset_index(drop=True)
        out[schema.label_column] = names[label_codes(df, "")]
        out[ORIGIN] = origin
        parts.append(out)
    return pd.concat(parts, ignore_index=True)


def _classic_table(xr: np.ndarray, yr: np.ndarray, per_class: dict[int, int], schema: Schema,
                   seed: int, classic: ClassicConfig) -> tuple[pd.DataFrame, np.ndarray]:
    assert schema.image_shape is not None   # classic transforms exist for images only
    xc, yc, parents = classic_variants(xr, yr, per_class, schema.image_shape, seed, classic)
    table = make_table(schema.encoder.inverse(xc), yc)
    return table, np.asarray([f"classic:{p}" for p in parents], dtype=object)


def val_correct(x, y, weightings: dict[K, np.ndarray], xv, yv, classifiers: list[str],
                seed: int, device: torch.device | None = None, threads: int = 1,
                image_shape=None) -> dict[K, dict[str, np.ndarray]]:
    """Per weighting (key -> per-row weights of (x, y)) and classifier of `evaluate`: which
    validation rows it gets right. Every fit is one job; `threads` of them run at once."""
    def fit(job: tuple[K, str]) -> np.ndarray:
        return fit_weighted(make_classifier(job[1], seed, device, image_shape), x, y,
                            weightings[job[0]]).predict(xv) == yv

    hits: dict[K, dict[str, np.ndarray]] = {k: {} for k in weightings}
    # the thread-safe classifiers' fits side by side, the others one at a time
    for pooled in (True, False):
        jobs = [(k, name) for k in weightings for name in classifiers
                if (fit_threads_for([name], 2) > 1) == pooled]
        for (k, name), h in zip(jobs, run_jobs(jobs, fit, threads=threads if pooled else 1)):
            hits[k][name] = h
    return hits


def count_weights(origin_kind: np.ndarray, synthetic_row_weight: float,
                  added: bool = True) -> np.ndarray:
    """The count scheme's per-row weights: real and classic rows 1 each, a kept VAE row
    `synthetic_row_weight`; with `added` False every added row weighs 0 (nothing helped).
    A classic row is a real row moved by a label-preserving shift or rotation, so it counts
    as one; VAE rows are less sure, so they count less. On the 28x28 letters at 10 labels per
    class the SVM and the forest gained 18 and 7 points of test accuracy from this over the
    share scheme; logistic regression lost 11 to 19 on digits (README)."""
    w = np.ones(len(origin_kind), np.float64)
    w[origin_kind == "synthetic"] = synthetic_row_weight
    if not added:
        w[origin_kind != REAL] = 0.0
    return w


def choose_schemes(share_hits: dict[str, np.ndarray], count_hits: dict[str, np.ndarray]
                   ) -> dict[str, str]:
    """Per classifier: count when it gets more validation rows right with the count weights
    than with the share weights, else share. A plain majority, not the two-standard-error rule
    of the scale: both schemes add the same rows, and where they differ on test they differed
    by 7 to 19 points, which 20-50 validation rows see; where they were level either is fine."""
    return {c: "count" if count_hits[c].sum() > share_hits[c].sum() else "share"
            for c in share_hits}


def choose_scale(correct: dict[float, np.ndarray], fallback: float = 1.0) -> float:
    """The fallback scale (1: the configured shares; 0: nothing added) unless another scale
    beats it on validation by more than two standard errors of the paired difference (same
    rows, so row difficulty cancels; with every differing row in its favour that takes at
    least four rows); ties go to the smaller scale."""
    base = correct[fallback]
    gain = {k: float(np.mean(c - base)) for k, c in correct.items()}
    best = max(sorted(correct), key=lambda k: gain[k])
    diff = correct[best] - base
    se = float(np.std(diff, ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.inf
    return best if gain[best] > 2 * se else fallback


def fallback_scale(cfg: AugmentConfig, is_image: bool) -> float:
    """What the validation choice keeps when no scale is shown better: augment.fallback, where
    auto is the configured shares for images (classic rows are label-preserving by
    construction) and nothing for tables, where a generator fitted to a few labelled rows cannot
    add information they lack (bench/table_ceiling.py) and the rule is to do no harm."""
    if cfg.fallback == "auto":
        return 1.0 if is_image else 0.0
    return 1.0 if cfg.fallback == "shares" else 0.0


def classic_count(cfg: AugmentConfig, kept: int, generated: int | None) -> int:
    """Classic rows of a class that has `kept` kept VAE rows of `generated`:
    augment.classic_per_class, else classic_per_kept per kept row, and with replace_rejected
    1 + classic_per_kept for each rejected one, so the class gets (1 + classic_per_kept) x
    generated added rows whatever the filter keeps. Without it a class the filter rejected got
    no classic rows either: on the 28x28 letters at 5 labels per class the filter kept nothing
    in a draw and the augmented set was the real rows alone, below classic augmentation."""
    if cfg.classic_per_class is not None:
        return cfg.classic_per_class
    n = cfg.classic_per_kept * kept
    if cfg.replace_rejected and generated is not None:
        n += (1 + cfg.classic_per_kept) * max(generated - kept, 0)
    return int(round(n))


def _unweighted_table(cfg: AugmentConfig, schema: Schema, paths: Paths, seed: int,
                      classic: ClassicConfig, generated_per_class: int | None = None
                      ) -> pd.DataFrame:
    """Real train rows, then the kept synthetic rows, then (images) classic variants of the
    real rows, in the user's format with their origin; no weights yet."""
    real = read_parquet(paths.split("train"))
    # An empty kept table is legitimate (everything rejected): then only classic rows join.
    kept = pd.read_parquet(paths.kept) if paths.kept.is_file() else real.iloc[:0]
    xr, yr = frame_xy(real, schema, str(paths.split("train")))
    extra = [(kept, kept["sample_id"].astype(str).to_numpy(dtype=object) if len(kept)
              else np.zeros(0, dtype=object))]
    if schema.image_shape and cfg.classic_share > 0:
        yk = label_codes(kept, str(paths.kept)) if len(kept) else np.zeros(0, np.int64)
        per_class = {int(c): classic_count(cfg, int((yk == c).sum()), generated_per_class)
                     for c in np.unique(yr)}
        extra.append(_classic_table(xr, yr, per_class, schema, seed + 101, classic))
    return augment_table(real, extra, schema)


def fit_subset(table: pd.DataFrame, kept: pd.DataFrame, y: np.ndarray, cap: int | None,
               seed: int) -> np.ndarray | None:
    """Which rows of the augmented table the validation choice fits on under
    evaluate.max_real_rows: the same stratified real rows evaluate uses and the added rows made
    from them (augflow.evaluation.subsample); None for all."""
    real = (table[ORIGIN] == REAL).to_numpy()
    keep = real_subset(y[real], cap, seed)
    if keep is None:
        return None
    parent_of = dict(zip(*sample_lineage(kept))) if len(kept) else {}
    origin = table[ORIGIN].astype(str).to_numpy(dtype=object)
    return follow_parents(origin_parents(origin, parent_of), origin, keep, seed)


def _select_on_val(cfg: AugmentConfig, table: pd.DataFrame, kinds: np.ndarray,
                   shares: dict[str, float], schema: Schema, paths: Paths,
                   classifiers: list[str], seed: int, device: torch.device | None = None,
                   max_real_rows: int | None = None, fit_threads: int = 1,
                   count_only: bool = False) -> dict:
    """augment.select=val: the scale of the shares and each classifier's weighting scheme,
    chosen on validation rows, with the validation accuracies behind the choice. Over
    `max_real_rows` real rows the fits use a subsample (fit_subset); the weights follow the
    same formula on it. `count_only` (_count_only, decided on the whole table): every
    classifier gets the count weights, and only adding them or nothing is tried."""
    xa = schema.encoder.transform(table, "augmented")
    ya = codes_from_names(table[schema.label_column].to_numpy(), schema.class_names,
                          "augmented", schema.label_column)
    kept = pd.read_parquet(paths.kept) if paths.kept.is_file() else pd.DataFrame()
    rows = fit_subset(table, kept, ya, max_real_rows, seed)
    if rows is not None:
        xa, ya, kinds = xa[rows], ya[rows], kinds[rows]
    xv, yv = read_xy(paths.split("val"), schema)
    if count_only:   # one weighting for every classifier: the count weights or nothing added
        weights = {0.0: count_weights(kinds, cfg.synthetic_row_weight, added=False),
                   1.0: count_weights(kinds, cfg.synthetic_row_weight)}
    else:
        weights = {float(k): mix_weights(kinds, {s: v * k for s, v in shares.items()})
                   for k in cfg.scales}
    hits = val_correct(xa, ya, weights, xv, yv, classifiers, seed, device, fit_threads,
                       schema.image_shape)
    # the choice is on the mean over classifiers; each one's accuracy is reported too, so a
    # classifier the mix hurts on validation is visible, not averaged away
    correct = {k: np.mean(list(h.values()), axis=0) for k, h in hits.items()}
    scale = choose_scale(correct, fallback_scale(cfg, schema.image_shape is not None))
    schemes = {c: "share" for c in classifiers}
    count_accuracy: dict[str, float] = {}
    if count_only:
        schemes = {c: "count" for c in classifiers}
        count_accuracy = {c: float(h.mean()) for c, h in hits[1.0].items()}
    elif scale > 0 and _count_scheme_applies(cfg, kinds):
        count_hits = val_correct(xa, ya, {"count": count_weights(kinds, cfg.synthetic_row_weight)},
                                 xv, yv, classifiers, seed, device, fit_threads,
                                 schema.image_shape)["count"]
        schemes = choose_schemes(hits[scale], count_hits)
        count_accuracy = {c: float(h.mean()) for c, h in count_hits.items()}
    return {"scale": scale, "n_val": int(len(yv)), "schemes": schemes,
            "scores": {k: float(c.mean()) for k, c in correct.items()},
            "per_classifier": {name: {f"{k:g}": float(h[name].mean()) for k, h in hits.items()}
                               for name in classifiers},
            "count_accuracy": count_accuracy,
            "fit_rows": {"real": int((kinds == REAL).sum()), "all": int(len(ya))}}


def _count_only(cfg: AugmentConfig, kinds: np.ndarray) -> bool:
    """augment.schemes [count] on images: every classifier gets the count weights, and
    validation only decides between them and nothing added (the shares' scales do not apply).
    One weighting for every classifier: chosen per classifier on 20-50 validation rows, the CNN
    took the shares in 3 of 3 digits draws at 5 labels per class and gained 0.7 points over
    the classic arm, where every row at weight 1 (with classic_per_kept 1) gained 3; on the
    28x28 letters the same cost the SVM and the forest 6-9 points, so it is not the default
    (bench/vae_on_classic.py, BENCHMARKS 5c)."""
    return "share" not in cfg.schemes and _count_scheme_applies(cfg, kinds)


def _count_scheme_applies(cfg: AugmentConfig, kinds: np.ndarray) -> bool:
    """The count scheme needs classic rows: it counts them as real. On a table (no classic
    rows) it would weigh the VAE rows ~7x the real ones; unweighted VAE rows cost the SVM 7
    points on the bench table (README), so tables keep the share scheme."""
    return "count" in cfg.schemes and bool((kinds == "classic").any())


def run_augment(cfg: AugmentConfig, classifiers: list[str], seed: int, paths: Paths,
                device: str = "auto", max_real_rows: int | None = None,
                fit_threads: int = 1, classic: ClassicConfig = ClassicConfig(),
                generated_per_class: int | None = None) -> dict:
    """Write the augmented training set (real, classic and kept synthetic rows with their
    origin, sample_weight and, for images, sample_weight_count) and report how the mix was
    chosen. `device` (params.yaml's): where the torch classifiers (mlp, cnn) train on the
    validation choice; `max_real_rows` and `fit_threads` (evaluate's): the row cap of its fits
    and how many run at once; `generated_per_class` (generate.n_per_class): the samples each
    class had before the filter, whose rejected ones classic rows replace
    (augment.replace_rejected; None: none replaced)."""
    dev = resolve_device(device)
    schema = read_schema(paths.schema)
    table = _unweighted_table(cfg, schema, paths, seed, classic, generated_per_class)
    kinds = origin_kinds(table[ORIGIN].to_numpy())
    shares = {"classic": cfg.classic_share, "synthetic": cfg.synthetic_share}
    count_only = _count_only(cfg, kinds)
    fixed = "count" if count_only else "share"   # select: fixed
    picked: dict = {"scale": 1.0, "n_val": 0, "schemes": {c: fixed for c in classifiers},
                    "scores": {}, "per_classifier": {}, "count_accuracy": {}}
    if cfg.select == "val":
        picked = _select_on_val(cfg, table, kinds, shares, schema, paths, classifiers, seed, dev,
                                max_real_rows, fit_threads, count_only)
    scale = picked["scale"]
    chosen = {s: v * scale for s, v in shares.items()}
    weights = {"share": mix_weights(kinds, chosen)}
    if _count_scheme_applies(cfg, kinds):
        weights["count"] = count_weights(kinds, cfg.synthetic_row_weight, added=scale > 0)
    for scheme, w in weights.items():
        table[WEIGHTS[scheme]] = w
    write_parquet(paths.augmented, table)

    counts = {k: int((kinds == k).sum()) for k in (REAL, "classic", "synthetic")}
    added = scale > 0 or sum(shares.values()) == 0
    # every row of one source weighs the same in either scheme: one number per source
    row_weights = {c: {k: float(weights[picked["schemes"][c]][kinds == k][0]) if counts[k]
                       else 0.0 for k in counts} for c in classifiers}
    mix: dict = {"select": cfg.select, "scale": scale, "classic_share": chosen["classic"],
                 "synthetic_share": chosen["synthetic"],
                 "weight_fraction": _weight_fraction(table[WEIGHT], kinds, counts),
                 "val_accuracy": {f"{k:g}": v for k, v in picked["scores"].items()},
                 "val_accuracy_per_classifier": picked["per_classifier"],
                 "val_accuracy_count": picked["count_accuracy"],
                 "n_val": picked["n_val"], "added": bool(added),
                 **val_verdict(picked, classifiers, scale),
                 "scheme": picked["schemes"], "count_only": count_only,
                 "row_weights": row_weights,
                 "synthetic_row_weight": cfg.synthetic_row_weight}
    if "fit_rows" in picked:
        mix["fit_rows"] = picked["fit_rows"]
    if WEIGHT_COUNT in table:
        mix["weight_fraction_count"] = _weight_fraction(table[WEIGHT_COUNT], kinds, counts)
    metrics = {"n_real": counts[REAL], "n_classic": counts["classic"],
               "n_synthetic": counts["synthetic"], "n_total": int(len(table)),
               "synthetic_fraction": counts["synthetic"] / max(len(table), 1), "mix": mix}
    write_bytes(paths.augment_report, augment_report_md(metrics, classifiers).encode())
    return metrics


def val_verdict(picked: dict, classifiers: list[str], scale: float) -> dict:
    """Whether the chosen mix scored above real rows alone on validation: the mean over the
    classifiers of each one's accuracy with the weights it is given (its scheme at the chosen
    scale) against scale 0 (the added rows weigh nothing). helped_on_val is true only then;
    without a scale-0 fit (select fixed, or 0 not in augment.scales) it is false: unshown."""
    per, count = picked["per_classifier"], picked["count_accuracy"]
    if not classifiers or any("0" not in per.get(c, {}) for c in classifiers):
        return {"helped_on_val": False}
    given = [count[c] if picked["schemes"].get(c) == "count" else per[c][f"{scale:g}"]
             for c in classifiers]
    real = [per[c]["0"] for c in classifiers]
    chosen, alone = float(np.mean(given)), float(np.mean(real))
    return {"helped_on_val": bool(scale > 0 and chosen > alone), "val_accuracy_chosen": chosen,
            "val_accuracy_real": alone}


def _weight_fraction(w: pd.Series, kinds: np.ndarray, counts: dict[str, int]) -> dict[str, float]:
    weight_of = {k: float(w[kinds == k].sum()) for k in counts}
    return {k: v / max(sum(weight_of.values()), 1e-12) for k, v in weight_of.items()}


def augment_report_md(m: dict, classifiers: list[str]) -> str:
    mix = m["mix"]
    lines = ["# Augment report", "",
             f"{m['n_real']} real rows, {m['n_classic']} classic (shifted/rotated) rows, "
             f"{m['n_synthetic']} kept synthetic rows.", "",
             "| source | rows | share of the total weight |", "| --- | --- | --- |"]
    for k, n in (("real", m["n_real"]), ("classic", m["n_classic"]),
                 ("synthetic", m["n_synthetic"])):
        lines.append(f"| {k} | {n} | {100 * mix['weight_fraction'][k]:.1f}% |")
    if mix["select"] == "val":
        fit = mix.get("fit_rows", {})
        if fit and fit["real"] < m["n_real"]:
            lines += ["", f"The classifiers below fitted on a stratified {fit['real']} of the "
                          f"{m['n_real']} real rows and the added rows made from them, "
                          f"{fit['all']} rows in all (evaluate.max_real_rows)."]
        lines += ["", f"{'Weights' if mix.get('count_only') else 'Shares'} chosen on "
                      f"{mix['n_val']} validation rows (mean accuracy of "
                      f"{', '.join(classifiers)}; the test split is never read here):", "",
                  ("| added rows (0: real alone, 1: the count weights) | mean | "
                   if mix.get("count_only") else "| scale of the shares | mean | ")
                  + " | ".join(classifiers) + " |",
                  "| --- " * (len(classifiers) + 2) + "|"]
        per = mix["val_accuracy_per_classifier"]
        lines += [f"| {k} | {v:.3f} | " + " | ".join(f"{per[c][k]:.3f}" for c in classifiers)
                  + " |" for k, v in mix["val_accuracy"].items()]
        # each classifier against real rows alone with the weights it was given
        given = {c: (mix["val_accuracy_count"][c] if mix["scheme"].get(c) == "count"
                     else per[c][f"{mix['scale']:g}"]) for c in classifiers}
        worse = [c for c in classifiers if "0" in per[c] and given[c] < per[c]["0"]]
        if worse and mix["scale"] > 0:
            lines += ["", f"On validation the chosen mix is below real rows alone for "
                          f"{', '.join(worse)}: check the evaluation before training those "
                          "on it."]
        if mix.get("count_only"):
            lines += ["", "Chosen: **" + ("the count weights" if mix["scale"] > 0 else
                                          "nothing added") + "** for every classifier "
                          "(augment.schemes: [count]; real and classic rows weigh 1 each, a "
                          f"VAE row {mix['synthetic_row_weight']:g})."]
        else:
            lines += ["", f"Chosen scale: **{mix['scale']:g}** (classic share "
                          f"{mix['classic_share']:g}, synthetic share {mix['synthetic_share']:g})."]
    else:
        lines += ["", "Shares fixed in params.yaml (augment.select: fixed)."]
    if not mix.get("added", mix["helped_on_val"]):
        lines += ["", "**No amount of added data helped on validation**: every added row "
                      "weighs 0, the augmented set trains like the real rows alone, and the VAE "
                      "is not promoted."]
    elif mix["select"] == "val" and not mix["helped_on_val"] and "val_accuracy_real" in mix:
        lines += ["", f"**On validation the chosen mix did not score above real rows alone** "
                      f"({mix['val_accuracy_chosen']:.3f} vs {mix['val_accuracy_real']:.3f}, "
                      "mean over the classifiers with the weights each is given): the configured "
                      "shares stay because no other scale beat them by two standard errors. "
                      "The test evaluation decides whether they help."]
    if mix.get("val_accuracy_count") and not mix.get("count_only"):
        count_acc, per = mix["val_accuracy_count"], mix["val_accuracy_per_classifier"]
        lines += ["", "Weights per classifier, chosen on the same validation rows: `share` is "
                      "the `sample_weight` column (above), `count` is `sample_weight_count` "
                      "(real and classic rows weigh 1 each, a VAE row "
                      f"{mix['synthetic_row_weight']:g}):", "",
                  "| classifier | share | count | given |", "| --- | --- | --- | --- |"]
        at = f"{mix['scale']:g}"
        lines += [f"| {c} | {per[c][at]:.3f} | {count_acc[c]:.3f} | **{mix['scheme'][c]}** |"
                  for c in classifiers]
    lines += ["", "Train your own model with the weights as per-row weights (scikit-learn: "
                  "`fit(X, y, sample_weight=w)`): `sample_weight` for a linear model, and where "
                  "the file has it try `sample_weight_count` for kernel machines, trees and "
                  "networks, choosing on your validation rows (README)."]
    return "\n".join(lines) + "\n"
