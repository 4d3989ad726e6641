"""The classic transforms: each part does what its parameter says, and nothing when it is off."""

from __future__ import annotations

import numpy as np
import pytest

from augflow.config import ClassicConfig, config_from_dict
from augflow.data.transforms import classic_transform, describe
from augflow.errors import AugflowError

OFF = dict(rotation=0, translate=0, scale=(1, 1), shear=0, elastic=0)


def _bar(h: int = 16, w: int = 16) -> np.ndarray:
    """One grey image: a vertical bar right of centre, as a flattened (h, w, 1) row."""
    img = np.zeros((h, w), np.float32)
    img[3:13, 10:12] = 1.0
    return img.reshape(1, -1)


def _centroid(row: np.ndarray, h: int = 16, w: int = 16) -> np.ndarray:
    img = row.reshape(h, w)
    rows, cols = np.mgrid[:h, :w]
    return np.array([(img * rows).sum(), (img * cols).sum()]) / img.sum()


def test_everything_off_is_the_identity():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(5, 8 * 8 * 3)).astype(np.float32)
    out = classic_transform(x, (8, 8, 3), ClassicConfig(**OFF), np.random.default_rng(1))
    np.testing.assert_allclose(out, x, atol=1e-6)


def test_rotation_turns_the_image_about_its_centre():
    x = _bar()
    out = classic_transform(np.repeat(x, 50, 0), (16, 16, 1),
                            ClassicConfig(**{**OFF, "rotation": 90}), np.random.default_rng(0))
    centre = np.array([7.5, 7.5])
    r0 = np.linalg.norm(_centroid(x[0]) - centre)
    radii = [np.linalg.norm(_centroid(o) - centre) for o in out]
    # rotation keeps the distance to the centre; the bar lands at many different angles
    np.testing.assert_allclose(radii, r0, atol=0.35)
    angles = [np.arctan2(*(_centroid(o) - centre)) for o in out]
    assert np.ptp(angles) > 2.0


def test_translation_moves_by_at_most_its_fraction_of_the_side():
    x = _bar()
    out = classic_transform(np.repeat(x, 200, 0), (16, 16, 1),
                            ClassicConfig(**{**OFF, "translate": 0.125}), np.random.default_rng(0))
    moved = np.array([_centroid(o) for o in out if o.sum() > 0.99 * x.sum()]) - _centroid(x[0])
    assert np.abs(moved).max() <= 2.0 + 1e-6       # 0.125 x 16 px
    assert np.abs(moved).max() > 1.5               # and it does move that far
    assert abs(moved[:, 0].mean()) < 0.3           # both ways


def test_scale_zooms_about_the_centre():
    x = np.zeros((1, 16 * 16), np.float32)
    x.reshape(16, 16)[5:11, 5:11] = 1.0            # a centred square of 36 pixels
    big = classic_transform(x, (16, 16, 1), ClassicConfig(**{**OFF, "scale": (1.5, 1.5)}),
                            np.random.default_rng(0))
    small = classic_transform(x, (16, 16, 1), ClassicConfig(**{**OFF, "scale": (0.5, 0.5)}),
                              np.random.default_rng(0))
    assert big.sum() == pytest.approx(36 * 1.5 ** 2, rel=0.1)
    assert small.sum() == pytest.approx(36 * 0.5 ** 2, rel=0.2)
    np.testing.assert_allclose(_centroid(big[0]), [7.5, 7.5], atol=0.05)


def test_shear_slants_a_vertical_bar():
    x = _bar()
    out = classic_transform(np.repeat(x, 40, 0), (16, 16, 1),
                            ClassicConfig(**{**OFF, "shear": 30}), np.random.default_rng(0))
    img = out.reshape(-1, 16, 16)
    # column centroid of the bar's top rows minus its bottom rows: 0 for the upright bar
    cols = np.arange(16)
    slant = [(im[4] * cols).sum() / im[4].sum() - (im[11] * cols).sum() / im[11].sum()
             for im in img if im[4].sum() > 0 and im[11].sum() > 0]
    assert max(abs(s) for s in slant) > 2.0
    assert min(slant) < 0 < max(slant)             # both directions


def test_elastic_field_moves_pixels_by_its_rms_fraction_and_is_smooth():
    rng = np.random.default_rng(0)
    # a horizontal ramp: the column value reads off the horizontal displacement pixel by pixel
    ramp = np.tile(np.linspace(0, 1, 32, dtype=np.float32), (32, 1)).reshape(1, -1)
    cfg = ClassicConfig(**{**OFF, "elastic": 0.05, "border": "nearest"})
    out = classic_transform(np.repeat(ramp, 20, 0), (32, 32, 1), cfg, rng).reshape(-1, 32, 32)
    shift_px = (out - ramp.reshape(32, 32)) * 31          # displacement along columns, in px
    inner = shift_px[:, 4:-4, 4:-4]                        # away from the clamped border
    rms = float(np.sqrt((inner ** 2).mean()))
    assert 0.05 * 32 * 0.6 < rms < 0.05 * 32 * 1.4         # about 1.6 px
    # smooth: neighbours move alike (a field of sigma 0.14 x 32 = 4.5 px)
    assert np.abs(np.diff(inner, axis=2)).mean() < 0.25 * rms


def test_seeded_rows_are_independent_of_the_chunking(monkeypatch):
    import augflow.data.transforms as t

    rng = np.random.default_rng(3)
    x = rng.uniform(size=(7, 8 * 8)).astype(np.float32)
    whole = classic_transform(x, (8, 8, 1), ClassicConfig(), np.random.default_rng(9))
    again = classic_transform(x, (8, 8, 1), ClassicConfig(), np.random.default_rng(9))
    assert np.array_equal(whole, again)
    assert whole.dtype == np.float32 and whole.min() >= 0 and whole.max() <= 1
    other = classic_transform(x, (8, 8, 1), ClassicConfig(), np.random.default_rng(10))
    assert not np.array_equal(whole, other)
    monkeypatch.setattr(t, "CHUNK", 3)     # chunks change the draw order, never the shape
    assert classic_transform(x, (8, 8, 1), ClassicConfig(), np.random.default_rng(9)).shape == x.shape


def test_border_reflect_fills_from_the_image_and_zero_with_black():
    x = np.ones((1, 8 * 8 * 3), np.float32)
    shifted = dict(OFF, translate=0.4)
    zero = classic_transform(np.repeat(x, 10, 0), (8, 8, 3), ClassicConfig(**shifted),
                             np.random.default_rng(0))
    refl = classic_transform(np.repeat(x, 10, 0), (8, 8, 3),
                             ClassicConfig(**shifted, border="reflect"), np.random.default_rng(0))
    assert zero.min() == 0.0
    np.testing.assert_allclose(refl, 1.0, atol=1e-6)


def test_classic_keys_are_checked_and_described():
    with pytest.raises(AugflowError, match="classic.scale"):
        config_from_dict({"classic": {"scale": [1.2, 0.8]}})
    with pytest.raises(AugflowError, match="classic.shearing: unknown key"):
        config_from_dict({"classic": {"shearing": 5}})
    with pytest.raises(AugflowError, match="classic.elastic"):
        config_from_dict({"classic": {"elastic": -0.1}})
    text = describe(ClassicConfig())
    assert "rotation ±15°" in text and "elastic distortion 6% of the side" in text
    assert "no elastic distortion" in describe(ClassicConfig(elastic=0))
