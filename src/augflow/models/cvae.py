"""A conditional VAE for rows scaled to [0, 1]: label-conditioned encoder and decoder."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from augflow.device import module_device
from augflow.models.latent import draw_latents


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


@dataclass
class CVAEOutput:
    recon: torch.Tensor     # decoder mean in [0, 1]
    mu: torch.Tensor
    logvar: torch.Tensor


@dataclass
class LossParts:
    total: torch.Tensor     # recon + beta * kl, mean over the batch
    recon: torch.Tensor
    kl: torch.Tensor


class CVAEBase(nn.Module):
    """What every CVAE architecture shares, given its encode(x, y) -> (mu, logvar) and
    decode_logits(z, y): the decoder mean, the forward pass, sampling, reconstruction error."""

    latent_dim: int
    n_classes: int
    n_features: int

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of the posterior of rows x under labels y; each architecture defines it."""
        raise NotImplementedError

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Decoder logits of latents z under labels y; each architecture defines it."""
        raise NotImplementedError

    def hparams(self) -> dict:
        """What models.factory rebuilds the model from; each architecture defines its own."""
        raise NotImplementedError

    def _onehot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.n_classes).to(torch.float32)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z, y))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> CVAEOutput:
        mu, logvar = self.encode(x, y)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return CVAEOutput(recon=self.decode(z, y), mu=mu, logvar=logvar)

    # sample and reconstruction_error take tensors anywhere and return them on the CPU, for
    # numpy: inputs move to the model's device and results back (no-ops on the CPU).
    @torch.no_grad()
    def sample(self, y: torch.Tensor, temperature: float = 1.0,
               generator: torch.Generator | None = None,
               latents: dict | None = None) -> torch.Tensor:
        """Decoded draws for labels y: latents from the prior, or from a per-class fit."""
        y = y.cpu()
        # drawn on the CPU (a CPU generator's stream, the fit's tensors), then moved
        z = draw_latents(y, self.latent_dim, temperature, generator, latents)
        dev = module_device(self)
        return self.decode(z.to(dev), y.to(dev)).cpu()

    @torch.no_grad()
    def reconstruction_error(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-row mean squared error of the posterior-mean reconstruction under label y."""
        dev = module_device(self)
        x, y = x.to(dev), y.to(dev)
        mu, _ = self.encode(x, y)
        return ((self.decode(mu, y) - x) ** 2).mean(dim=1).cpu()


class CVAE(CVAEBase):
    def __init__(self, n_features: int, n_classes: int, latent_dim: int = 16,
                 hidden_dims: tuple[int, ...] = (256, 128)) -> None:
        super().__init__()
        self.n_features, self.n_classes, self.latent_dim = n_features, n_classes, latent_dim
        self.hidden_dims = tuple(hidden_dims)
        h = list(hidden_dims)
        self.encoder = _mlp([n_features + n_classes] + h)
        self.to_mu = nn.Linear(h[-1], latent_dim)
        self.to_logvar = nn.Linear(h[-1], latent_dim)
        self.decoder = _mlp([latent_dim + n_classes] + h[::-1])
        self.to_logits = nn.Linear(h[0], n_features)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(torch.cat([x, self._onehot(y)], dim=1))
        return self.to_mu(h), self.to_logvar(h).clamp(-12.0, 12.0)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.to_logits(self.decoder(torch.cat([z, self._onehot(y)], dim=1)))

    def hparams(self) -> dict:
        return {"arch": "mlp", "n_features": self.n_features, "n_classes": self.n_classes,
                "latent_dim": self.latent_dim, "hidden_dims": list(self.hidden_dims)}


def cvae_loss(out: CVAEOutput, x: torch.Tensor, beta: float) -> LossParts:
    # Bernoulli likelihood on [0,1] intensities, summed over features, averaged over rows.
    recon = F.binary_cross_entropy(out.recon, x, reduction="none").sum(dim=1).mean()
    kl = (-0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp()).sum(dim=1)).mean()
    return LossParts(total=recon + beta * kl, recon=recon, kl=kl)
