"""Stage generate: N samples per class from the VAE (latents from the prior or a per-class fit),
with per-sample provenance."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import torch

from augflow.config import GenerateConfig
from augflow.data.table import LABEL, make_table
from augflow.errors import AugflowError
from augflow.io import write_bytes, write_parquet
from augflow.models.latent import draw_latents
from augflow.paths import Paths
from augflow.preprocess import encoder_of


def generate_samples(model, classes: list[int], n_per_class: int, temperature: float,
                     seed: int, latents: dict | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model-space samples, their labels and the seed each class was drawn with. `latents`:
    a per-class latent fit to draw from (generate.latent=class_fit); None draws from the prior."""
    xs, ys, seeds = [], [], []
    for c in classes:
        class_seed = seed * 1000 + int(c)   # one stream per class: a class regenerates alone
        gen = torch.Generator().manual_seed(class_seed)
        y = torch.full((n_per_class,), int(c), dtype=torch.int64)
        z = draw_latents(y, model.latent_dim, temperature, gen, latents)
        with torch.no_grad():
            xs.append(model.decode(z, y).numpy())
        ys.append(y.numpy())
        seeds.append(np.full(n_per_class, class_seed, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(seeds)


def run_generate(cfg: GenerateConfig, seed: int, paths: Paths) -> dict:
    from augflow.plots import sample_grid_png, table_samples_png
    from augflow.train import load_checkpoint

    model, schema, latents = load_checkpoint(paths.checkpoint)
    if cfg.latent == "class_fit" and latents is None:
        raise AugflowError("the checkpoint holds no per-class latent fit (it predates "
                           "generate.latent=class_fit); rerun the train stage",
                           file=str(paths.checkpoint), field="generate.latent", rule="class_fit")
    model_version = hashlib.sha256(paths.checkpoint.read_bytes()).hexdigest()[:12]
    u, y, seeds = generate_samples(model, schema["classes"], cfg.n_per_class, cfg.temperature,
                                   seed, latents if cfg.latent == "class_fit" else None)
    # Back to the user's columns and units: valid categories, numbers inside the fitted ranges.
    df = make_table(encoder_of(schema).inverse(u), y)
    within = df.groupby(LABEL).cumcount().to_numpy()
    df["sample_id"] = [f"cvae-{model_version}-{c}-{i:06d}" for c, i in zip(y, within)]
    df["generator"] = "cvae"
    df["gen_model"] = model_version
    df["gen_seed"] = seeds
    df["gen_index"] = within.astype(np.int64)
    write_parquet(paths.samples, df)
    if schema.get("image_shape"):
        x = df[schema["features"]].to_numpy(np.float32)
        figure = sample_grid_png(x, y, tuple(schema["image_shape"]), schema["pixel_range"],
                                 names=schema["class_names"])
    else:
        enc = encoder_of(schema)
        figure = table_samples_png(df, y, enc.numeric, list(enc.categories),
                                   schema["class_names"])
    write_bytes(paths.sample_grid, figure)
    return {"n_generated": int(len(df)), "n_classes": len(schema["classes"]),
            "model_version": model_version}
