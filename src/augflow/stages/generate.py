"""Stage generate: N samples per class from the VAE, with per-sample provenance. Latents come
from around each real train row (local, the default), a per-class fit, or the prior."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from augflow.config import ClassicConfig, GenerateConfig
from augflow.checkpoints import load_cvae
from augflow.data.schema import read_xy
from augflow.data.table import LABEL, make_table
from augflow.data.transforms import classic_transform
from augflow.device import resolve_device
from augflow.errors import AugflowError
from augflow.models.latent import local_variants
from augflow.io import write_bytes, write_parquet
from augflow.paths import Paths
from augflow.runners import ClassJob, check_dask_cluster, run_jobs


class _GenerateClass:
    """One class's samples: a picklable callable, so a Dask worker can run it as well as this
    process. Each class draws from its own generator, seeded by the class alone."""

    def __init__(self, model, n_per_class: int, temperature: float, latents: dict | None,
                 real: tuple[np.ndarray, np.ndarray] | None = None,
                 classic: tuple[ClassicConfig, tuple[int, ...]] | None = None):
        self.model, self.n, self.temperature, self.latents = model, n_per_class, temperature, latents
        self.real, self.classic = real, classic

    def __call__(self, job: ClassJob) -> np.ndarray:
        torch.set_num_threads(1)   # as the CLI: the same bytes on a Dask worker
        gen = torch.Generator().manual_seed(job.seed)
        if self.real is not None:
            x, y = self.real
            parents = parents_of(y, job.label, self.n)
            xp = x[parents]
            if self.classic is not None:   # generate.parents=classic: vary a moved copy
                cfg, shape = self.classic
                xp = classic_transform(xp, shape, cfg, np.random.default_rng(job.seed))
            return local_variants(self.model, torch.from_numpy(xp), torch.from_numpy(y[parents]),
                                  torch.arange(len(xp)), self.temperature, gen).numpy()
        labels = torch.full((self.n,), job.label, dtype=torch.int64)
        return self.model.sample(labels, self.temperature, gen, self.latents).numpy()


def parents_of(y: np.ndarray, label: int, n: int) -> np.ndarray:
    """The real rows a class's n local samples vary: its rows in turn, so each gets its share."""
    rows = np.flatnonzero(y == label)
    return rows[np.arange(n) % len(rows)] if len(rows) else np.zeros(0, np.int64)


def generate_samples(model, classes: list[int], n_per_class: int, temperature: float,
                     seed: int, latents: dict | None = None, runner: str = "local",
                     workers: int = 2, real: tuple[np.ndarray, np.ndarray] | None = None,
                     classic: tuple[ClassicConfig, tuple[int, ...]] | None = None,
                     address: str | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Model-space samples, their labels, the seed each class was drawn with and the real row
    each varies (-1 when none). `real`: the train rows to sample around (generate.latent=local);
    else `latents`, a per-class latent fit (class_fit), or None for the prior. `classic`
    (params.yaml's classic and the image shape): each real row is first moved by a classic
    transform, then varied (generate.parents=classic); its parent stays the real row.
    runner: local, or dask (one task per class on a Dask cluster, local or the one at
    `address`; the same bytes)."""
    if real is not None:   # a class without train rows has nothing to vary
        classes = [c for c in classes if (real[1] == c).any()]
    # one stream per class: a class regenerates alone, on any worker
    jobs = [ClassJob(int(c), seed * 1000 + int(c)) for c in classes]
    xs = run_jobs(jobs, _GenerateClass(model, n_per_class, temperature, latents, real, classic),
                  runner, workers, what="generate-class", progress="generate classes",
                  address=address)
    ys = [np.full(n_per_class, j.label, dtype=np.int64) for j in jobs]
    seeds = [np.full(n_per_class, j.seed, dtype=np.int64) for j in jobs]
    parents = [parents_of(real[1], j.label, n_per_class) if real is not None
               else np.full(n_per_class, -1, dtype=np.int64) for j in jobs]
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(seeds),
            np.concatenate(parents).astype(np.int64))


def run_generate(cfg: GenerateConfig, seed: int, paths: Paths, device: str = "auto",
                 classic: ClassicConfig = ClassicConfig()) -> dict:
    """generate.n_per_class samples per class from the trained CVAE, back in the user's columns
    and units, each with a sample_id and the seed, model and real row it came from. `device`:
    params.yaml's; the latent draws stay on the CPU generators, the decoding runs there."""
    from augflow.plots import sample_grid_png, table_samples_png

    dev = resolve_device(device)
    if cfg.runner == "dask" and cfg.dask_address is not None:
        check_dask_cluster(cfg.dask_address, "generate.dask_address")   # before any work
    model, schema, latents = load_cvae(paths.checkpoint)
    model.to(dev)
    if cfg.latent == "class_fit" and latents is None:
        raise AugflowError("the checkpoint holds no per-class latent fit (it predates "
                           "generate.latent=class_fit); rerun the train stage",
                           file=str(paths.checkpoint), field="generate.latent", rule="class_fit")
    model_version = hashlib.sha256(paths.checkpoint.read_bytes()).hexdigest()[:12]
    real = read_xy(paths.split("train"), schema) if cfg.latent == "local" else None
    u, y, seeds, parents = generate_samples(
        model, schema.classes, cfg.n_per_class, cfg.temperature, seed,
        latents if cfg.latent == "class_fit" else None, cfg.runner, cfg.dask_workers, real,
        (classic, tuple(schema.image_shape))
        if cfg.parents == "classic" and schema.image_shape else None, cfg.dask_address)
    # Back to the user's columns and units: valid categories, numbers inside the fitted ranges.
    encoder = schema.encoder
    df = make_table(encoder.inverse(u), y)
    within = df.groupby(LABEL).cumcount().to_numpy()
    df["sample_id"] = [f"cvae-{model_version}-{c}-{i:06d}" for c, i in zip(y, within)]
    df["generator"] = "cvae"
    df["gen_model"] = model_version
    df["gen_seed"] = seeds
    df["gen_index"] = within.astype(np.int64)
    df["gen_parent"] = parents   # row of train.parquet the sample varies; -1: drawn from a fit
    write_parquet(paths.samples, df)
    if schema.image_shape:
        assert schema.pixel_range is not None   # prepare sets it for every image source
        x = df[schema.features].to_numpy(np.float32)
        figure = sample_grid_png(x, y, schema.image_shape, schema.pixel_range,
                                 names=schema.class_names)
    else:
        figure = table_samples_png(df, y, encoder.numeric, list(encoder.categories),
                                   schema.class_names)
    write_bytes(paths.sample_grid, figure)
    return {"n_generated": int(len(df)), "n_classes": schema.n_classes,
            "model_version": model_version}
