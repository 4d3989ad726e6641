"""generate_samples: local variants of real rows, or of classic copies of them."""

from __future__ import annotations

import numpy as np
import torch

from augflow.config import ClassicConfig
from augflow.models.cvae import CVAE
from augflow.models.latent import local_variants
from augflow.stages.generate import generate_samples, parents_of


def _model_and_rows():
    torch.manual_seed(0)
    model = CVAE(64, 3, latent_dim=4, hidden_dims=(16,)).eval()
    x = torch.rand(30, 64)
    y = torch.arange(30) % 3
    return model, (x.numpy(), y.numpy())


def test_real_parents_give_the_local_variants_of_the_real_rows():
    model, (x, y) = _model_and_rows()
    got, labels, seeds, parents = generate_samples(model, [0, 1, 2], 12, 1.5, seed=4, real=(x, y))
    gen = torch.Generator().manual_seed(int(seeds[0]))
    first = local_variants(model, torch.from_numpy(x), torch.from_numpy(y),
                           torch.from_numpy(parents_of(y, 0, 12)), 1.5, gen).numpy()
    assert np.array_equal(got[:12], first)          # the same bytes as varying x[parents]
    assert np.array_equal(y[parents], labels)


def test_classic_parents_vary_a_moved_copy_and_keep_the_real_row_as_parent():
    model, (x, y) = _model_and_rows()
    plain = generate_samples(model, [0, 1, 2], 12, 1.5, seed=4, real=(x, y))
    moved = generate_samples(model, [0, 1, 2], 12, 1.5, seed=4, real=(x, y),
                             classic=(ClassicConfig(), (8, 8, 1)))
    assert not np.array_equal(plain[0], moved[0])
    assert moved[0].min() >= 0 and moved[0].max() <= 1
    for a, b in zip(plain[1:], moved[1:]):           # labels, seeds, parents unchanged
        assert np.array_equal(a, b)
    again = generate_samples(model, [0, 1, 2], 12, 1.5, seed=4, real=(x, y),
                             classic=(ClassicConfig(), (8, 8, 1)))
    assert np.array_equal(moved[0], again[0])        # seeded per class
    # with every transform off, a classic parent is the real row
    off = ClassicConfig(rotation=0, translate=0, scale=(1, 1), shear=0, elastic=0)
    same = generate_samples(model, [0, 1, 2], 12, 1.5, seed=4, real=(x, y),
                            classic=(off, (8, 8, 1)))
    np.testing.assert_allclose(same[0], plain[0], atol=1e-5)
