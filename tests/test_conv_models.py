"""The convolutional CVAE and classifier: drop-in shapes on flattened channel-last rows, factory
round trips, and that they actually learn (and use the label) on a tiny synthetic image set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augflow.models.classifier import MLPClassifier, classification_loss
from augflow.models.conv import CNNClassifier, ConvCVAE, _to_image, _to_rows
from augflow.models.cvae import CVAE, cvae_loss
from augflow.models.factory import build_classifier, build_cvae
from augflow.models.fitting import FitSettings, fit

torch.set_num_threads(1)

SHAPES = [(8, 8, 1), (28, 28, 1), (32, 32, 3), (30, 30, 1), (9, 13, 3)]
SIDE, SQ, K = 28, 8, 3
CORNERS = [(3, 3), (3, 17), (17, 10)]   # top-left of each class's bright square


def _squares(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n 28x28x1 images: dim noise plus a bright 8x8 square whose place depends on the class
    (jittered by up to 2 px). Returned as flattened rows in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % K
    img = rng.uniform(0.0, 0.1, size=(n, SIDE, SIDE, 1))
    for i, k in enumerate(y):
        r, c = np.array(CORNERS[k]) + rng.integers(-2, 3, size=2)
        img[i, r:r + SQ, c:c + SQ, 0] = rng.uniform(0.8, 1.0)
    return (torch.from_numpy(img.reshape(n, -1).astype(np.float32)),
            torch.from_numpy(y.astype(np.int64)))


def _square_mean(rows: torch.Tensor, k: int) -> torch.Tensor:
    """Mean intensity of each row inside class k's (un-jittered) square."""
    r, c = CORNERS[k]
    return rows.reshape(-1, SIDE, SIDE)[:, r:r + SQ, c:c + SQ].mean(dim=(1, 2))


def _vae_loss(m, xb, yb):
    parts = cvae_loss(m(xb, yb), xb, 1.0)
    return parts.total, {"recon": parts.recon.item(), "kl": parts.kl.item()}


def _train_cvae(seed: int, epochs: int, channels=(16, 32)) -> tuple[ConvCVAE, object]:
    x, y = _squares(60, seed=1)
    xv, yv = _squares(30, seed=2)
    torch.manual_seed(seed)
    model = ConvCVAE((SIDE, SIDE, 1), K, latent_dim=4, channels=channels)
    result = fit(model, _vae_loss, (x, y), (xv, yv),
                 FitSettings(lr=1e-2, batch_size=16, max_epochs=epochs, patience=epochs, seed=seed))
    return model.eval(), result


@pytest.fixture(scope="module")
def trained_cvae():
    xv, yv = _squares(30, seed=2)
    torch.manual_seed(0)
    untrained = ConvCVAE((SIDE, SIDE, 1), K, latent_dim=4, channels=(16, 32)).eval()
    with torch.no_grad():
        initial = _vae_loss(untrained, xv, yv)[0].item()
    model, result = _train_cvae(seed=0, epochs=30)
    return model, result, initial


# ---- shapes and API ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_conv_cvae_shapes_and_range(shape):
    h, w, c = shape
    torch.manual_seed(0)
    m = ConvCVAE(shape, n_classes=4, latent_dim=5)
    n, d = 6, h * w * c
    x, y = torch.rand(n, d), torch.arange(n) % 4
    assert (m.n_features, m.n_classes, m.latent_dim) == (d, 4, 5)

    m.train()
    out = m(x, y)
    assert out.recon.shape == (n, d) and out.mu.shape == out.logvar.shape == (n, 5)
    assert out.recon.min() >= 0 and out.recon.max() <= 1
    cvae_loss(out, x, 1.0).total.backward()   # the loss works unchanged and gradients flow
    assert all(p.grad is not None for p in m.parameters())

    m.eval()
    mu, logvar = m.encode(x, y)
    assert torch.equal(m(x, y).recon, m.decode(mu, y))          # eval forward uses mu
    assert logvar.min() >= -12 and logvar.max() <= 12
    assert m.decode_logits(mu, y).shape == (n, d)
    s1 = m.sample(y, temperature=0.5, generator=torch.Generator().manual_seed(3))
    s2 = m.sample(y, temperature=0.5, generator=torch.Generator().manual_seed(3))
    assert s1.shape == (n, d) and torch.equal(s1, s2) and not s1.requires_grad
    assert 0 <= s1.min() and s1.max() <= 1
    err = m.reconstruction_error(x, y)
    assert err.shape == (n,) and (err >= 0).all()
    assert torch.allclose(err, ((m.decode(mu, y) - x) ** 2).mean(dim=1))


@pytest.mark.parametrize("shape", SHAPES)
def test_cnn_classifier_shapes(shape):
    h, w, c = shape
    torch.manual_seed(0)
    m = CNNClassifier(shape, n_classes=4, embed_dim=24).eval()
    n, d = 7, h * w * c
    x = torch.rand(n, d)
    assert (m.n_features, m.n_classes) == (d, 4)
    assert m(x).shape == (n, 4) and m.features(x).shape == (n, 24)
    assert (m.features(x) >= 0).all()                           # post-ReLU embedding
    assert torch.allclose(m.embed(x, batch=3), m.features(x), atol=1e-6)
    p = m.proba(x, batch=2)
    assert p.shape == (n, 4) and torch.allclose(p.sum(1), torch.ones(n), atol=1e-6)
    loss, parts = classification_loss(m, x, torch.arange(n) % 4)
    assert loss.ndim == 0 and 0 <= parts["accuracy"] <= 1


def test_rows_are_channel_last():
    img = np.random.default_rng(0).random((2, 5, 9, 3)).astype(np.float32)   # (n, h, w, c)
    rows = torch.from_numpy(img.reshape(2, -1))
    chw = _to_image(rows, (5, 9, 3))
    assert torch.equal(chw, torch.from_numpy(img.transpose(0, 3, 1, 2)))
    assert torch.equal(_to_rows(chw), rows)


def test_too_small_or_bad_images_are_rejected():
    with pytest.raises(ValueError):
        ConvCVAE((8, 8, 1), 2, channels=(8, 8, 8, 8))           # 8 -> 4 -> 2 -> 1 -> 0
    with pytest.raises(ValueError):
        CNNClassifier((8, 8, 2), 2)


# ---- factory ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: ConvCVAE((30, 30, 1), 3, latent_dim=6, channels=(8, 16)),
    lambda: ConvCVAE((9, 13, 3), 2, latent_dim=3, channels=(4, 8, 8)),
    lambda: CVAE(20, 3, 4, (16, 8)),
])
def test_build_cvae_round_trip(make):
    torch.manual_seed(0)
    a = make().eval()
    torch.manual_seed(1)
    b = build_cvae(a.hparams()).eval()
    assert type(b) is type(a) and b.hparams() == a.hparams()
    x, y = torch.rand(5, a.n_features), torch.arange(5) % a.n_classes
    assert not torch.equal(a(x, y).recon, b(x, y).recon)          # different init before loading
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x, y).recon, b(x, y).recon)
    g = lambda: torch.Generator().manual_seed(0)
    assert torch.equal(a.sample(y, generator=g()), b.sample(y, generator=g()))


@pytest.mark.parametrize("make", [
    lambda: CNNClassifier((28, 28, 1), 10),
    lambda: CNNClassifier((9, 13, 3), 2, channels=(4, 8, 8), embed_dim=12),
    lambda: MLPClassifier(20, 3, (16,)),
])
def test_build_classifier_round_trip(make):
    torch.manual_seed(0)
    a = make().eval()
    torch.manual_seed(1)
    b = build_classifier(a.hparams()).eval()
    assert type(b) is type(a) and b.hparams() == a.hparams()
    x = torch.rand(5, a.n_features)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x)) and torch.equal(a.embed(x), b.embed(x))


def test_factory_reads_legacy_hparams_and_rejects_unknown_arch():
    legacy_cvae = {"n_features": 20, "n_classes": 3, "latent_dim": 4, "hidden_dims": [16, 8]}
    legacy_clf = {"n_features": 20, "n_classes": 3, "hidden_dims": [16]}
    assert isinstance(build_cvae(legacy_cvae), CVAE)
    assert isinstance(build_classifier(legacy_clf), MLPClassifier)
    assert CVAE(20, 3).hparams()["arch"] == "mlp" and MLPClassifier(20, 3).hparams()["arch"] == "mlp"
    with pytest.raises(ValueError):
        build_cvae({**legacy_cvae, "arch": "transformer"})
    with pytest.raises(ValueError):
        build_classifier({**legacy_clf, "arch": "conv"})          # a CVAE arch is not a classifier
    with pytest.raises(ValueError):                              # n_features disagrees with shape
        build_cvae({**ConvCVAE((8, 8, 1), 2).hparams(), "n_features": 65})


# ---- learning ---------------------------------------------------------------------------------

def test_conv_cvae_loss_decreases(trained_cvae):
    model, result, initial = trained_cvae
    losses = [h["val_loss"] for h in result.history]
    assert result.best_val_loss < 0.5 * initial, (initial, losses)
    assert result.best_val_loss < losses[0]
    # reconstructions beat the best label-blind constant image (the data mean) by a margin
    xv, yv = _squares(30, seed=2)
    assert model.reconstruction_error(xv, yv).mean() < 0.7 * ((xv - xv.mean(0)) ** 2).mean()


def test_conv_cvae_decoder_uses_the_label(trained_cvae):
    model = trained_cvae[0]
    z = torch.randn(20, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        imgs = [model.decode(z, torch.full((20,), k)) for k in range(K)]
    for k in range(K):
        for j in range(K):
            if j != k:   # under label k the bright square sits in k's place, not j's
                gap = _square_mean(imgs[k], k) - _square_mean(imgs[j], k)
                assert gap.min() > 0.1 and gap.mean() > 0.25, (k, j, gap)
    # and class-conditional samples are recognised as their class by the same criterion
    y = torch.arange(30) % K
    s = model.sample(y, generator=torch.Generator().manual_seed(1))
    pred = torch.stack([_square_mean(s, k) for k in range(K)], dim=1).argmax(1)
    assert (pred == y).float().mean() >= 0.9


def test_cnn_classifier_learns_separable_images():
    x, y = _squares(60, seed=1)
    xv, yv = _squares(30, seed=2)
    xt, yt = _squares(60, seed=3)
    torch.manual_seed(0)
    model = CNNClassifier((SIDE, SIDE, 1), K, channels=(8, 16), embed_dim=32)
    fit(model, classification_loss, (x, y), (xv, yv),
        FitSettings(lr=3e-3, batch_size=16, max_epochs=25, patience=8, seed=0))
    model.eval()
    assert (model.proba(xt).argmax(1) == yt).float().mean() >= 0.95
    # the embedding separates the classes: each test point is nearest its own class centroid
    e, et = model.embed(x), model.embed(xt)
    centroids = torch.stack([e[y == k].mean(0) for k in range(K)])
    assert (torch.cdist(et, centroids).argmin(1) == yt).float().mean() >= 0.95


def test_seeded_training_is_deterministic():
    a, ra = _train_cvae(seed=5, epochs=3, channels=(8, 8))
    b, rb = _train_cvae(seed=5, epochs=3, channels=(8, 8))
    c, _ = _train_cvae(seed=6, epochs=3, channels=(8, 8))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert ra.history == rb.history
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)

    def clf(seed):
        x, y = _squares(60, seed=1)
        torch.manual_seed(seed)
        m = CNNClassifier((SIDE, SIDE, 1), K, channels=(4, 8), embed_dim=8)
        fit(m, classification_loss, (x, y), (x, y),
            FitSettings(lr=3e-3, batch_size=16, max_epochs=2, patience=2, seed=seed))
        return m.state_dict()

    s1, s2 = clf(7), clf(7)
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


@pytest.mark.parametrize("make", [lambda: MLPClassifier(12 * 12 * 3, 3, (16,)),
                                  lambda: CNNClassifier((12, 12, 3), 3, (4, 8))])
def test_embed_and_proba_of_no_rows(make):
    """Nothing kept by the filter is a legal outcome: embedding zero rows gives (0, dim)."""
    model = make().eval()
    emb = model.embed(torch.zeros(0, 12 * 12 * 3))
    assert emb.shape[0] == 0 and emb.shape[1] == model.embed(torch.zeros(2, 432)).shape[1]
    assert model.proba(torch.zeros(0, 432)).shape == (0, 3)


def test_cnn_downstream_classifier_learns_weights_and_is_seeded():
    """evaluate.classifiers' cnn: learns the square images, honours sample_weight (rows of
    weight 0 with flipped labels change nothing learnt), is reproducible by seed, and runs its
    fixed number of batches whatever the number of rows."""
    from augflow.evaluation.classifiers import CNN_STEPS, fit_weighted, make_classifier

    x, y = (t.numpy() for t in _squares(90, seed=5))
    xt, yt = (t.numpy() for t in _squares(60, seed=6))
    model = make_classifier("cnn", 1, image_shape=(SIDE, SIDE, 1))
    assert model.max_steps == CNN_STEPS
    model.max_steps = 150   # the test's own budget; the default is for real images
    fit_weighted(model, x, y)
    assert (model.predict(xt) == yt).mean() > 0.9

    # 90 more rows with wrong labels and weight 0: the same fit as without them only if the
    # weights reach the loss (the batches differ, so compare accuracy, not weights)
    xx, yy = np.concatenate([x, x]), np.concatenate([y, (y + 1) % K])
    w = np.concatenate([np.ones(len(y)), np.zeros(len(y))])
    weighted = make_classifier("cnn", 1, image_shape=(SIDE, SIDE, 1))
    weighted.max_steps = 150
    assert (fit_weighted(weighted, xx, yy, w).predict(xt) == yt).mean() > 0.9

    again = make_classifier("cnn", 1, image_shape=(SIDE, SIDE, 1))
    again.max_steps = 150
    assert np.array_equal(fit_weighted(again, x, y).predict(xt), model.predict(xt))
    for a, b in zip(model.model_.parameters(), again.model_.parameters()):
        assert torch.equal(a, b)

    steps = []
    counted = make_classifier("cnn", 1, image_shape=(SIDE, SIDE, 1))
    counted.max_steps = 7
    counted._build = lambda nf, nc, build=counted._build: _count_steps(build(nf, nc), steps)
    counted.fit(x[:10], y[:10])   # one row-batch per pass: 7 passes of 1 batch
    assert len(steps) == 7


def _count_steps(model, steps: list):
    model.register_forward_hook(lambda *_: steps.append(1))
    return model


def test_cnn_classifier_on_a_table_is_refused_by_name():
    from augflow.errors import AugflowError
    from augflow.evaluation.classifiers import make_classifier

    with pytest.raises(AugflowError, match="params.yaml: evaluate.classifiers: cnn needs image data"):
        make_classifier("cnn", 0, image_shape=None)
