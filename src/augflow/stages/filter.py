"""Stage filter: score every synthetic sample, keep the good ones, report set-level fidelity."""

from __future__ import annotations

import pandas as pd
import torch

from augflow.config import ClassicConfig, ExtractorConfig, FilterConfig
from augflow.checkpoints import load_cvae, save_extractor
from augflow.data.copies import copies_for, with_classic_copies
from augflow.data.schema import read_schema, read_xy
from augflow.device import resolve_device
from augflow.data.table import LABEL, SAMPLE_ID
from augflow.io import write_bytes, write_json, write_parquet
from augflow.paths import Paths
from augflow.quality.extractor import fit_extractor
from augflow.quality.fidelity import KID_NOTE, fidelity_report
from augflow.quality.sample_filter import (CRITERIA, apply_class_gate, build_reference,
                                           class_gate, per_sample_reasons, score_rows)
from augflow.data.synthetic import read_synthetic


def run_filter(cfg: FilterConfig, ext_cfg: ExtractorConfig, seed: int, paths: Paths,
               device: str = "auto", classic: ClassicConfig = ClassicConfig()) -> dict:
    """Fit the feature extractor on real train rows (images: and extractor.train_copies classic
    copies of each, the `classic` recipe), score each synthetic sample, keep those inside
    thresholds set on real validation rows and the per-class FID gate, and report set-level
    fidelity of generated, kept and validation rows against real train. `device` (params.yaml's):
    where the extractor trains and embeds and the VAE reconstructs."""
    from augflow.plots import score_histograms_png

    dev = resolve_device(device)
    schema = read_schema(paths.schema)
    xtr, ytr = read_xy(paths.split("train"), schema)
    xva, yva = read_xy(paths.split("val"), schema)
    syn, xsy, ysy = read_synthetic(paths.samples, schema)

    vae, _, _ = load_cvae(paths.checkpoint)
    vae.to(dev)
    # the copies only teach the extractor; every score and radius below is against real rows
    copies = copies_for(ext_cfg.train_copies, len(xtr), ext_cfg.epoch_rows)
    xfit, yfit = with_classic_copies(xtr, ytr, copies, schema.image_shape, seed, classic)
    extractor, ext_fit = fit_extractor(xfit, yfit, xva, yva, schema.n_classes, ext_cfg, seed,
                                       schema.image_shape, dev)
    save_extractor(paths.extractor, extractor)
    ref = build_reference(xtr, ytr, extractor, cfg.knn_k, cfg.chunk_rows, progress="filter: train radii")
    scores = score_rows(xsy, ysy, vae, extractor, ref, cfg.chunk_rows, progress="filter: synthetic")
    val_scores = score_rows(xva, yva, vae, extractor, ref, cfg.chunk_rows, progress="filter: val")
    f_syn = extractor.embed(torch.from_numpy(xsy)).numpy()
    f_val = extractor.embed(torch.from_numpy(xva)).numpy()
    reason, thresholds = per_sample_reasons(scores, val_scores, cfg)
    passing = reason == ""
    gate = class_gate(f_syn[passing], ysy[passing], f_val, yva, ref, cfg.fid_gate.max_ratio)
    decided = apply_class_gate(scores, reason, ysy, gate, cfg)

    table = pd.concat([syn[[SAMPLE_ID, LABEL]].reset_index(drop=True), decided], axis=1)
    write_parquet(paths.scores, table)
    kept_mask = table["kept"].to_numpy()
    write_parquet(paths.kept, syn[kept_mask].reset_index(drop=True))

    # one real side for the three reports: its k-NN radii are computed once, and the overall
    # ones are the reference's own (the same features, the same k)
    radii: dict = {("all", cfg.knn_k): ref.radii}
    fidelity = {
        "generated_vs_train": fidelity_report(ref.f_train, ytr, f_syn, ysy, cfg.knn_k,
                                              cfg.chunk_rows, seed, radii),
        "kept_vs_train": fidelity_report(ref.f_train, ytr, f_syn[kept_mask], ysy[kept_mask],
                                         cfg.knn_k, cfg.chunk_rows, seed, radii),
        "val_vs_train": fidelity_report(ref.f_train, ytr, f_val, yva, cfg.knn_k, cfg.chunk_rows,
                                        seed, radii),
    }
    write_json(paths.filter_fidelity, {"fidelity": fidelity, "class_gate": gate})
    sides = {name: side for name, _, side in CRITERIA}
    hist = score_histograms_png(table, {col: (thresholds[name], sides[name])
                                        for name, col, _ in CRITERIA})
    write_bytes(paths.filter_hist, hist)

    metrics = filter_metrics(table, thresholds, fidelity, gate,
                             ext_fit.history[ext_fit.best_epoch - 1])
    metrics["extractor_arch"] = extractor.hparams().get("arch", "mlp")
    metrics["extractor_train_copies"] = copies if schema.image_shape else 0
    metrics["extractor_steps"] = ext_fit.steps
    write_bytes(paths.filter_report, filter_report_md(metrics, fidelity).encode())
    return metrics


def filter_metrics(table: pd.DataFrame, thresholds: dict, fidelity: dict, gate: dict,
                   ext_best: dict) -> dict:
    reasons = table["reject_reason"].value_counts().to_dict()
    per_class = {}
    for c, g in table.groupby(LABEL):
        per_class[str(int(c))] = {"generated": int(len(g)), "kept": int(g["kept"].sum()),
                                  **{f"rejected_{n}": int((g["reject_reason"] == n).sum())
                                     for n, _, _ in CRITERIA + (("class_gate", "", ""),)}}
    overall = {k: {m: v for m, v in (fidelity[k]["overall"] or {}).items() if not m.startswith("n_")}
               for k in fidelity}
    return {
        "n_generated": int(len(table)), "n_kept": int(table["kept"].sum()),
        "kept_fraction": float(table["kept"].mean()),
        "rejected": {n: int(reasons.get(n, 0)) for n, _, _ in CRITERIA + (("class_gate", "", ""),)},
        "thresholds": thresholds,
        "classes_dropped": [c for c, g in gate.items() if not g["passed"]],
        "per_class": per_class,
        "fidelity": overall,
        "extractor_val_accuracy": ext_best["val_accuracy"],
    }


def filter_report_md(m: dict, fidelity: dict) -> str:
    lines = ["# Filter report", "",
             f"Kept **{m['n_kept']} of {m['n_generated']}** generated samples "
             f"({100 * m['kept_fraction']:.1f}%).", "",
             "| criterion | threshold | rejected (first failing) |", "| --- | --- | --- |"]
    for name, _, side in CRITERIA:
        lines.append(f"| {name} | keep {side} {m['thresholds'][name]:.4g} | {m['rejected'][name]} |")
    lines.append(f"| class_gate | FID ratio | {m['rejected']['class_gate']} "
                 f"(classes dropped: {m['classes_dropped'] or 'none'}) |")
    lines += ["", "## Per class", "", "| class | generated | kept |", "| --- | --- | --- |"]
    lines += [f"| {c} | {v['generated']} | {v['kept']} |" for c, v in m["per_class"].items()]
    lines += ["", "## Fidelity against real train (extractor features)", "",
              "| set | FID | KID | precision | recall | density | coverage |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, rep in fidelity.items():
        o = rep["overall"]
        if o:
            lines.append(f"| {name} | {o['fid']:.3f} | {o['kid']:.4f} | {o['precision']:.3f} | "
                         f"{o['recall']:.3f} | {o['density']:.3f} | {o['coverage']:.3f} |")
    lines += ["", KID_NOTE]
    g, k = fidelity["generated_vs_train"]["overall"], fidelity["kept_vs_train"]["overall"]
    if g and k and g["fid"] > 0:
        lines += ["", f"Filtering changed FID vs train from {g['fid']:.3f} to {k['fid']:.3f} "
                      f"({100 * (k['fid'] - g['fid']) / g['fid']:+.1f}%)."]
    return "\n".join(lines) + "\n"
