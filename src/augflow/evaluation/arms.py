"""Training sets of the evaluation arms. All are tested on the same untouched real test split."""

from __future__ import annotations

import numpy as np

from augflow.config import ClassicConfig
from augflow.errors import AugflowError


# Arms whose rows do not depend on the seed (smote and classic draw theirs with it).
SEED_FREE_ARMS = frozenset({"real", "augmented", "unfiltered", "synthetic_only"})


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


def classic_variants(x: np.ndarray, y: np.ndarray, extra_per_class: dict[int, int],
                     image_shape: tuple[int, ...], seed: int,
                     cfg: ClassicConfig = ClassicConfig()
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Classical image augmentation: extra_per_class[c] real rows of class c, drawn with
    replacement, each moved by a random affine map and elastic field (augflow.data.transforms,
    params.yaml's `classic`). Rows are channel-last (h, w, c) images flattened. Returns the new
    rows, their labels and the index of the real row each was made from."""
    from augflow.data.transforms import classic_transform

    rng = np.random.default_rng(seed)
    parents = [rng.choice(np.flatnonzero(y == c), size=n, replace=True)
               for c, n in sorted(extra_per_class.items()) if n > 0 and (y == c).any()]
    if not parents:
        return x[:0], y[:0], np.zeros(0, np.int64)
    idx = np.concatenate(parents).astype(np.int64)
    return classic_transform(x[idx], image_shape, cfg, rng), y[idx].astype(np.int64), idx


def classic_rows(x: np.ndarray, y: np.ndarray, extra_per_class: dict[int, int],
                 image_shape: tuple[int, ...], seed: int, cfg: ClassicConfig = ClassicConfig()):
    """The real rows plus extra_per_class[c] classic variants of class c."""
    xc, yc, _ = classic_variants(x, y, extra_per_class, image_shape, seed, cfg)
    return np.vstack([x, xc]), np.concatenate([y, yc])


def arm_training_set(arm: str, data: dict[str, tuple], image_shape: tuple | None,
                     seed: int, classic: ClassicConfig = ClassicConfig()
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, y, sample weights or None) an arm trains on. `data` holds (x, y) of real, kept and
    generated (synthetic after / before filtering) and (x, y, w) of augmented (the augment
    stage's output, weighted). smote and classic add as many rows per class as the augmented
    set does, unweighted: the way those baselines are used."""
    xr, yr = data["real"]
    xk, yk = data["kept"]
    xa, ya, wa = data["augmented"]
    generated = data["generated"]
    n_real = {int(c): int((yr == c).sum()) for c in np.unique(yr)}
    extra = {c: int((ya == c).sum()) - n for c, n in n_real.items()}
    if arm == "real":
        return xr, yr, None
    if arm == "augmented":
        return xa, ya, wa
    if arm == "unfiltered":
        return np.vstack([xr, generated[0]]), np.concatenate([yr, generated[1]]), None
    if arm == "synthetic_only":
        return xk, yk, None
    if arm == "smote":
        return (*smote_rows(xr, yr, extra, seed), None)
    if arm == "classic":
        if image_shape is None:
            raise AugflowError("the classic arm needs image data", field="evaluate.arms",
                               rule="classic requires images")
        return (*classic_rows(xr, yr, extra, image_shape, seed, classic), None)
    raise AugflowError(f"unknown arm {arm!r}", field="evaluate.arms", rule="known arm")
