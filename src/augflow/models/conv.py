"""Convolutional drop-ins for image data: a conditional VAE and a classifier.

Both take and return the same flattened rows as their MLP counterparts (an (h, w, c) image in
[0, 1] flattened channel-last, i.e. `img.reshape(h * w * c)`) and reshape to (n, c, h, w)
internally, so every caller can use either architecture."""

from __future__ import annotations

import torch
from torch import nn

from augflow.models.classifier import ClassifierBase
from augflow.models.cvae import CVAEBase


def _check_shape(image_shape: tuple[int, int, int], n_down: int) -> tuple[int, int, int]:
    h, w, c = (int(v) for v in image_shape)
    if c not in (1, 3):
        raise ValueError(f"image_shape {tuple(image_shape)}: channels must be 1 or 3")
    if min(h, w) < 2 ** n_down:
        raise ValueError(f"image_shape {tuple(image_shape)} too small for {n_down} "
                         f"stride-2 stages (need h, w >= {2 ** n_down})")
    return h, w, c


def _to_image(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """(n, h*w*c) channel-last rows -> (n, c, h, w)."""
    h, w, c = shape
    return x.reshape(len(x), h, w, c).permute(0, 3, 1, 2)


def _to_rows(img: torch.Tensor) -> torch.Tensor:
    """(n, c, h, w) -> (n, h*w*c) channel-last rows."""
    return img.permute(0, 2, 3, 1).reshape(len(img), -1)


class ConvCVAE(CVAEBase):
    """Conditional VAE with a strided-conv encoder and a transposed-conv decoder.

    The label enters the encoder as n_classes constant one-hot channels stacked on the image,
    and the decoder concatenated to z. Each encoder stage (4x4 conv, stride 2, padding 1) maps
    a side s to floor(s / 2); the matching decoder stage (4x4 transposed conv) maps it back to
    2 * s + output_padding with output_padding = s_in % 2, so the decoder reproduces the encoder's
    sizes exactly for any h, w (odd or even) and no crop or interpolation is needed."""

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int, latent_dim: int = 16,
                 channels: tuple[int, ...] = (32, 64)) -> None:
        super().__init__()
        self.image_shape = _check_shape(image_shape, len(channels))
        h, w, c = self.image_shape
        self.n_features, self.n_classes, self.latent_dim = h * w * c, n_classes, latent_dim
        self.channels = tuple(int(ch) for ch in channels)

        sizes = [(h, w)]    # spatial size entering each encoder stage, then the bottleneck
        enc: list[nn.Module] = []
        prev = c + n_classes
        for ch in self.channels:
            enc += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), nn.ReLU()]
            prev = ch
            sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self._bottleneck = (self.channels[-1], *sizes[-1])
        flat = self.channels[-1] * sizes[-1][0] * sizes[-1][1]
        self.to_mu = nn.Linear(flat, latent_dim)
        self.to_logvar = nn.Linear(flat, latent_dim)

        self.from_z = nn.Sequential(nn.Linear(latent_dim + n_classes, flat), nn.ReLU())
        dec: list[nn.Module] = []
        # channels run back down (64 -> 32 -> 32 for (32, 64)); the last stage keeps channels[0]
        outs = list(self.channels[-2::-1]) + [self.channels[0]]
        for i, ch in enumerate(outs):
            target = sizes[-2 - i]
            pad = (target[0] % 2, target[1] % 2)
            dec += [nn.ConvTranspose2d(prev, ch, 4, stride=2, padding=1, output_padding=pad),
                    nn.ReLU()]
            prev = ch
        self.decoder = nn.Sequential(*dec)
        self.to_logits = nn.Conv2d(prev, c, 3, padding=1)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        img = _to_image(x, self.image_shape)
        h, w, _ = self.image_shape
        labels = self._onehot(y)[:, :, None, None].expand(-1, -1, h, w)
        feat = self.encoder(torch.cat([img, labels], dim=1))
        return self.to_mu(feat), self.to_logvar(feat).clamp(-12.0, 12.0)

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        feat = self.from_z(torch.cat([z, self._onehot(y)], dim=1))
        img = self.to_logits(self.decoder(feat.reshape(len(z), *self._bottleneck)))
        return _to_rows(img)

    def hparams(self) -> dict:
        return {"arch": "conv", "n_features": self.n_features, "n_classes": self.n_classes,
                "latent_dim": self.latent_dim, "image_shape": list(self.image_shape),
                "channels": list(self.channels)}


class CNNClassifier(ClassifierBase):
    """(3x3 conv + ReLU + 2x2 max-pool) blocks, adaptive average pooling to a fixed grid so the
    head's size does not depend on h, w, then a ReLU embedding layer (the `features` the fidelity
    metrics use) and a linear head."""

    POOL_GRID = 3   # side of the fixed grid after adaptive pooling

    def __init__(self, image_shape: tuple[int, int, int], n_classes: int,
                 channels: tuple[int, ...] = (16, 32), embed_dim: int = 64) -> None:
        super().__init__()
        self.image_shape = _check_shape(image_shape, len(channels))
        h, w, c = self.image_shape
        self.n_features, self.n_classes = h * w * c, n_classes
        self.channels, self.embed_dim = tuple(int(ch) for ch in channels), int(embed_dim)
        layers: list[nn.Module] = []
        prev = c
        for ch in self.channels:
            layers += [nn.Conv2d(prev, ch, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            prev = ch
        g = self.POOL_GRID
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(g), nn.Flatten(),
                                  nn.Linear(prev * g * g, self.embed_dim), nn.ReLU())
        self.head = nn.Linear(self.embed_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(_to_image(x, self.image_shape))

    def hparams(self) -> dict:
        return {"arch": "cnn", "n_features": self.n_features, "n_classes": self.n_classes,
                "image_shape": list(self.image_shape), "channels": list(self.channels),
                "embed_dim": self.embed_dim}
