"""A small MLP classifier. As the domain feature extractor its penultimate layer feeds every
fidelity metric; as a downstream model it is one of the evaluated classifiers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from augflow.device import module_device


class ClassifierBase(nn.Module):
    """What every classifier architecture shares, given its features(x) and head: logits,
    batched embeddings (the fidelity metrics' features) and class probabilities."""

    head: nn.Module
    n_features: int
    n_classes: int

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding of rows x that the head reads; each architecture defines its own."""
        raise NotImplementedError

    def hparams(self) -> dict:
        """What models.factory rebuilds the model from; each architecture defines its own."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    # embed and proba take rows anywhere and return them on the CPU, for numpy: each batch
    # moves to the model's device and back (both no-ops on the CPU).
    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        dev = module_device(self)
        # range(0, 0) is empty: an empty input (nothing kept) still gets a (0, dim) result
        return torch.cat([self.features(x[i:i + batch].to(dev)).cpu()
                          for i in range(0, max(len(x), 1), batch)])

    @torch.no_grad()
    def proba(self, x: torch.Tensor, batch: int = 8192) -> torch.Tensor:
        dev = module_device(self)
        return torch.cat([F.softmax(self(x[i:i + batch].to(dev)), dim=1).cpu()
                          for i in range(0, max(len(x), 1), batch)])


class MLPClassifier(ClassifierBase):
    def __init__(self, n_features: int, n_classes: int, hidden_dims: tuple[int, ...] = (128, 64)):
        super().__init__()
        self.n_features, self.n_classes, self.hidden_dims = n_features, n_classes, tuple(hidden_dims)
        layers: list[nn.Module] = []
        prev = n_features
        for h in hidden_dims:
            layers += [nn.Linear(prev, h), nn.ReLU()]
            prev = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(prev, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def hparams(self) -> dict:
        return {"arch": "mlp", "n_features": self.n_features, "n_classes": self.n_classes,
                "hidden_dims": list(self.hidden_dims)}


def classification_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    return loss, {"accuracy": (logits.argmax(1) == y).float().mean().item()}
