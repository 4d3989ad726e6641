"""Where generation draws latent codes from.

`prior`: z ~ N(0, T^2 I), the textbook VAE sampler. `class_fit`: a Gaussian per class fitted to
the posterior means of that class's train rows (ex-post density estimation), z ~ N(m_c, T^2 S_c).
With a small beta the aggregate posterior drifts from N(0, I) and prior draws land where the
decoder never trained; measured on 28x28 images the prior's draws reconstruct 3x worse than real
validation rows, the class fit's draws do not (README, "Sampling the latent space")."""

from __future__ import annotations

import numpy as np
import torch

from augflow.device import module_device


# Rows per class the latent Gaussian is fitted on at most: a 16-dim mean and covariance are
# settled long before; encoding all 47,600 train images took 22 s of the train stage.
LATENT_FIT_ROWS = 2000


@torch.no_grad()
def fit_class_latents(model, x: torch.Tensor, y: torch.Tensor, n_classes: int,
                      max_per_class: int = LATENT_FIT_ROWS, seed: int = 0) -> dict:
    """Per class: the mean and a Cholesky factor of the (Ledoit-Wolf shrunk) covariance of the
    encoder's posterior means. Shrinkage keeps the factor valid with fewer rows than dims.
    A class with more than `max_per_class` rows is fitted on a seeded random subset of them
    (rows kept in their order; smaller classes use every row, as before)."""
    from sklearn.covariance import LedoitWolf

    yn = y.numpy()
    rng = np.random.default_rng(seed)
    keep = np.ones(len(yn), bool)
    for c in range(n_classes):
        idx = np.flatnonzero(yn == c)
        if len(idx) > max_per_class:
            keep[idx] = False
            keep[rng.choice(idx, size=max_per_class, replace=False)] = True
    if not keep.all():
        x, y = x[torch.from_numpy(keep)], y[torch.from_numpy(keep)]
    dev = module_device(model)
    mu, _ = model.encode(x.to(dev), y.to(dev))
    mu = mu.cpu().double().numpy()
    d = mu.shape[1]
    means = np.zeros((n_classes, d))
    chols = np.tile(np.eye(d), (n_classes, 1, 1))
    for c in range(n_classes):
        rows = mu[y.numpy() == c]
        if len(rows) == 0:
            continue
        means[c] = rows.mean(axis=0)
        if len(rows) >= 2:
            cov = LedoitWolf().fit(rows).covariance_ + 1e-6 * np.eye(d)
            chols[c] = np.linalg.cholesky(cov)
    return {"mean": torch.from_numpy(means).float(), "chol": torch.from_numpy(chols).float()}


def draw_latents(y: torch.Tensor, latent_dim: int, temperature: float,
                 generator: torch.Generator | None = None, fit: dict | None = None
                 ) -> torch.Tensor:
    eps = torch.randn(len(y), latent_dim, generator=generator) * temperature
    if fit is None:
        return eps
    return fit["mean"][y] + torch.einsum("nij,nj->ni", fit["chol"][y], eps)


@torch.no_grad()
def local_variants(model, x: torch.Tensor, y: torch.Tensor, parents: torch.Tensor,
                   scale: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Variants of real rows x[parents]: z = mu(x) + scale * sigma(x) * eps, returned as
    x + decode(z) - decode(mu(x)), the real row plus the decoder's change.

    Why the residual form: at a few labels per class the decoder's output is a blurred version
    of its input (on digits at 5/class, adding the plain reconstructions of each real row cost
    the RBF SVM 5 points of test accuracy); adding only the decoder's change keeps the detail of
    the real row and moves it along directions the VAE learned for its class."""
    dev = module_device(model)
    xp, yp = x[parents].to(dev), y[parents].to(dev)
    mu, logvar = model.encode(xp, yp)
    # drawn on the CPU with the CPU generator, so every device varies a row by the same eps;
    # the result comes back to the CPU for numpy
    eps = torch.randn(mu.shape, generator=generator).to(dev)
    moved = model.decode(mu + scale * torch.exp(0.5 * logvar) * eps, yp)
    return (xp + moved - model.decode(mu, yp)).clamp(0.0, 1.0).cpu()
