"""Training sets of the evaluation arms. All are tested on the same untouched real test split."""

from __future__ import annotations

import numpy as np

from augflow.errors import AugflowError


def smote_rows(x: np.ndarray, y: np.ndarray, extra_per_class: dict[int, int], seed: int):
    """SMOTE (imbalanced-learn) adding extra_per_class[c] rows to class c."""
    from imblearn.over_sampling import SMOTE

    counts = {int(c): int((y == c).sum()) for c in np.unique(y)}
    target = {c: counts[c] + int(extra_per_class.get(c, 0)) for c in counts}
    if all(target[c] == counts[c] for c in counts):
        return x, y
    k = max(1, min(5, min(counts.values()) - 1))
    xs, ys = SMOTE(sampling_strategy=target, k_neighbors=k, random_state=seed).fit_resample(x, y)
    return xs.astype(np.float32), ys.astype(np.int64)


def classic_rows(x: np.ndarray, y: np.ndarray, extra_per_class: dict[int, int],
                 image_shape: tuple[int, int, int], seed: int):
    """Classical image augmentation: random small shifts and rotations of real rows (channel-last
    (h, w, c) images flattened); shifts scale with the image: one pixel per 8."""
    from scipy.ndimage import rotate, shift

    rng = np.random.default_rng(seed)
    h, w = image_shape[:2]
    shape = (h, w, image_shape[2] if len(image_shape) > 2 else 1)
    reach = max(1, min(h, w) // 8)
    new_x, new_y = [], []
    for c, n in sorted(extra_per_class.items()):
        idx = np.flatnonzero(y == c)
        for i in rng.choice(idx, size=n, replace=True):
            img = x[i].reshape(shape)
            img = rotate(img, rng.uniform(-12, 12), axes=(1, 0), reshape=False, order=1,
                         mode="constant")
            img = shift(img, (*rng.integers(-reach, reach + 1, size=2), 0), order=0,
                        mode="constant")
            new_x.append(np.clip(img, 0, 1).ravel())
            new_y.append(c)
    if not new_x:
        return x, y
    return (np.vstack([x, np.asarray(new_x, np.float32)]),
            np.concatenate([y, np.asarray(new_y, np.int64)]))


def arm_training_set(arm: str, data: dict[str, tuple], image_shape: tuple | None,
                     seed: int):
    """(x, y) an arm trains on. `data` holds (x, y) of real, augmented (the augment stage's
    output), kept and generated (synthetic after / before filtering). smote and classic add as
    many rows per class as the augmented arm does."""
    xr, yr = data["real"]
    xk, yk = data["kept"]
    generated = data["generated"]
    extra = {int(c): int((yk == c).sum()) for c in np.unique(yr)}
    if arm == "real":
        return xr, yr
    if arm == "augmented":
        return data["augmented"]
    if arm == "unfiltered":
        return np.vstack([xr, generated[0]]), np.concatenate([yr, generated[1]])
    if arm == "synthetic_only":
        return xk, yk
    if arm == "smote":
        return smote_rows(xr, yr, extra, seed)
    if arm == "classic":
        if image_shape is None:
            raise AugflowError("the classic arm needs image data", field="evaluate.arms",
                               rule="classic requires images")
        return classic_rows(xr, yr, extra, image_shape, seed)
    raise AugflowError(f"unknown arm {arm!r}", field="evaluate.arms", rule="known arm")
