"""augflow.evaluation.arms: the training set of each evaluation arm, and the SMOTE and classic
baselines behind two of them."""

from __future__ import annotations

import numpy as np
import pytest

from augflow.errors import AugflowError
from augflow.evaluation.arms import arm_training_set, classic_rows, classic_variants, smote_rows

SHAPE = (8, 8, 1)


def _images(per_class=(6, 4, 5), seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(per_class)), per_class).astype(np.int64)
    x = rng.uniform(0, 1, size=(len(y), int(np.prod(SHAPE)))).astype(np.float32)
    return x, y


def _counts(y) -> dict[int, int]:
    return {int(c): int((y == c).sum()) for c in np.unique(y)}


def test_smote_adds_the_asked_rows_per_class_after_the_real_ones():
    x, y = _images()
    xs, ys = smote_rows(x, y, {0: 3, 1: 6}, seed=0)
    assert _counts(ys) == {0: 9, 1: 10, 2: 5}
    assert xs.dtype == np.float32 and ys.dtype == np.int64
    assert np.array_equal(xs[:len(x)], x) and np.array_equal(ys[:len(y)], y)
    new = xs[len(x):]
    assert new.min() >= 0 and new.max() <= 1              # interpolations between real rows
    # each new row lies between rows of its own class: inside that class's bounding box
    for row, c in zip(new, ys[len(x):]):
        assert (row >= x[y == c].min(0) - 1e-6).all() and (row <= x[y == c].max(0) + 1e-6).all()


def test_smote_is_seeded_and_a_no_op_when_nothing_is_asked():
    x, y = _images()
    a = smote_rows(x, y, {0: 4, 2: 2}, seed=3)
    b = smote_rows(x, y, {0: 4, 2: 2}, seed=3)
    c = smote_rows(x, y, {0: 4, 2: 2}, seed=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    same_x, same_y = smote_rows(x, y, {0: 0}, seed=0)
    assert same_x is x and same_y is y


def test_smote_works_with_a_class_of_two_rows():
    x, y = _images(per_class=(2, 5))
    _, ys = smote_rows(x, y, {0: 3, 1: 1}, seed=0)
    assert _counts(ys) == {0: 5, 1: 6}


def test_classic_variants_count_labels_parents_and_range():
    x, y = _images()
    xc, yc, parents = classic_variants(x, y, {2: 3, 0: 4}, SHAPE, seed=0)
    assert xc.shape == (7, 64) and xc.dtype == np.float32
    assert yc.tolist() == [0] * 4 + [2] * 3                # classes in sorted order
    assert np.array_equal(y[parents], yc)                  # each made from a row of its class
    assert xc.min() >= 0 and xc.max() <= 1
    assert not any(np.array_equal(v, x[p]) for v, p in zip(xc, parents))   # actually moved


def test_classic_variants_are_seeded():
    x, y = _images()
    a = classic_variants(x, y, {0: 3, 1: 2}, SHAPE, seed=5)
    b = classic_variants(x, y, {0: 3, 1: 2}, SHAPE, seed=5)
    c = classic_variants(x, y, {0: 3, 1: 2}, SHAPE, seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_classic_variants_of_rgb_images_and_of_nothing():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(4, 8 * 8 * 3)).astype(np.float32)
    y = np.array([0, 0, 1, 1])
    xc, yc, _ = classic_variants(x, y, {1: 2}, (8, 8, 3), seed=0)
    assert xc.shape == (2, 192) and yc.tolist() == [1, 1]
    # a class without rows, and zero rows asked: empty arrays of the right width
    xe, ye, pe = classic_variants(x, y, {5: 3, 0: 0}, (8, 8, 3), seed=0)
    assert xe.shape == (0, 192) and ye.shape == (0,) and pe.shape == (0,)


def test_classic_rows_are_the_real_rows_then_the_variants():
    x, y = _images()
    xr, yr = classic_rows(x, y, {1: 2}, SHAPE, seed=0)
    assert len(xr) == len(x) + 2 and np.array_equal(xr[:len(x)], x)
    assert _counts(yr) == {0: 6, 1: 6, 2: 5}
    xc, _, _ = classic_variants(x, y, {1: 2}, SHAPE, seed=0)
    assert np.array_equal(xr[len(x):], xc)


def _arm_data():
    xr, yr = _images()
    rng = np.random.default_rng(9)
    xg = rng.uniform(size=(12, 64)).astype(np.float32)
    yg = np.repeat([0, 1, 2], 4)
    keep = np.array([True, False] * 6)
    # augmented: the real rows, then the kept synthetic ones, with weights
    xa, ya = np.vstack([xr, xg[keep]]), np.concatenate([yr, yg[keep]])
    wa = np.concatenate([np.ones(len(yr)), np.full(keep.sum(), 0.25)])
    return {"real": (xr, yr), "kept": (xg[keep], yg[keep]), "generated": (xg, yg),
            "augmented": (xa, ya, wa)}


def test_arm_training_sets_of_the_plain_arms():
    data = _arm_data()
    x, y, w = arm_training_set("real", data, None, 0)
    assert x is data["real"][0] and y is data["real"][1] and w is None
    x, y, w = arm_training_set("augmented", data, None, 0)
    assert x is data["augmented"][0] and w is data["augmented"][2]
    x, y, w = arm_training_set("synthetic_only", data, None, 0)
    assert x is data["kept"][0] and y is data["kept"][1] and w is None
    x, y, w = arm_training_set("unfiltered", data, None, 0)
    assert len(x) == 15 + 12 and w is None
    assert np.array_equal(x[15:], data["generated"][0]) and np.array_equal(y[15:], data["generated"][1])


@pytest.mark.parametrize("arm", ["smote", "classic"])
def test_smote_and_classic_arms_add_as_many_rows_per_class_as_the_augmented_set(arm):
    data = _arm_data()
    x, y, w = arm_training_set(arm, data, SHAPE, 0)
    assert w is None
    assert _counts(y) == _counts(data["augmented"][1]) == {0: 8, 1: 6, 2: 7}
    assert np.array_equal(x[:15], data["real"][0])


def test_the_classic_arm_needs_images_and_an_unknown_arm_is_named():
    data = _arm_data()
    with pytest.raises(AugflowError) as info:
        arm_training_set("classic", data, None, 0)
    assert (info.value.field, info.value.rule) == ("evaluate.arms", "classic requires images")
    with pytest.raises(AugflowError) as info:
        arm_training_set("mixup", data, SHAPE, 0)
    assert (info.value.field, info.value.rule) == ("evaluate.arms", "known arm")
    assert "'mixup'" in str(info.value)
