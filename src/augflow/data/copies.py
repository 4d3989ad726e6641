"""Classic copies of the real train rows, what the models that learn from a small image set
train on: the VAE (vae.train_copies) and the feature extractor (extractor.train_copies)."""

from __future__ import annotations

import math

import numpy as np

from augflow.config import ClassicConfig


def with_classic_copies(x: np.ndarray, y: np.ndarray, copies: int, image_shape,
                        seed: int, classic: ClassicConfig = ClassicConfig()
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Images: the real rows plus `copies` classic copies of each (params.yaml's `classic`
    transforms, the same that make the classic arm). Tables (no image shape) or copies=0: the
    real rows as they are."""
    if not image_shape or copies == 0 or len(x) == 0:
        return x, y
    from augflow.evaluation.arms import classic_rows

    extra = {int(c): copies * int((y == c).sum()) for c in np.unique(y)}
    return classic_rows(x, y, extra, tuple(image_shape), seed, classic)


def copies_for(copies: int, n_rows: int, epoch_rows: int | None) -> int:
    """How many classic copies of each real row a model trains on: `copies`, but no more than
    it takes to fill one epoch of `epoch_rows`. The copies stand in for rows a small set lacks;
    a large set has them, and 10 copies of 47,600 28x28 images would be 1.6 GB of float32 rows
    that no epoch of 16384 ever reaches."""
    if epoch_rows is None or n_rows == 0:
        return copies
    return min(copies, max(0, math.ceil(epoch_rows / n_rows) - 1))
