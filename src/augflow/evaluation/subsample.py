"""The row cap of the classifier fits (evaluate.max_real_rows): at scale, augment's validation
choice and the evaluation train on a stratified subsample of the real rows and on the added
rows made from them, as if the user had that many labelled rows.

Why a subsample and not every row: the RBF SVM grows quadratically with rows; on ~50,000
rows x 784 one fit takes about 30 minutes on these 2 cores (README, "At scale"), and evaluate
fits it 14 times. Why the added rows follow their parents: a classic row or a local VAE
sample is a variant of one real row, so keeping it without its parent would hand the fit a
variant of a row it does not have. Rows drawn from a per-class fit or the prior have no
parent and are kept at the real rows' rate, by a stable hash of their id. Every source is
thinned at about the same rate, so each source's share of the total weight stays what
augment gave it.

Pure numpy: no files, no stages."""

from __future__ import annotations

import hashlib

import numpy as np

NO_PARENT = -1
# A seed offset of its own: the subsample must not share its stream with a classifier's seed.
_STREAM = 7_919


def _stratified(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A mask keeping n rows in all, each class c its share n x n_c / len(y) (at least one;
    the rounding remainder goes to the classes with the largest fractions), at random."""
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / len(y)
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[:n - take.sum()]] += 1
    take = np.clip(take, 1, counts)
    keep = np.zeros(len(y), bool)
    for c, k in zip(classes, take):
        keep[rng.choice(np.flatnonzero(y == c), size=k, replace=False)] = True
    return keep


def real_subset(y_real: np.ndarray, cap: int | None, seed: int) -> np.ndarray | None:
    """Which real train rows the fits use: None (all of them) at or under the cap, else a
    stratified mask of `cap` rows (more only when a class would otherwise get none), the same
    for one seed."""
    if cap is None or len(y_real) <= cap:
        return None
    return _stratified(y_real, cap, np.random.default_rng(seed + _STREAM))


def _unit(key: str) -> float:
    """A stable uniform number in [0, 1) for a string: the same on every run and process."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64


def follow_parents(parents: np.ndarray, ids: np.ndarray, keep_real: np.ndarray, seed: int
                   ) -> np.ndarray:
    """A mask over added rows: a row with a parent (an index into the real rows) is kept when
    its parent is; a row without one (NO_PARENT) when a stable hash of its id and the seed
    falls under the real rows' rate. The hash, not a random draw, so one sample is kept or
    dropped alike in the kept set, the generated set and the augmented set."""
    parents = np.asarray(parents, np.int64)
    has = parents != NO_PARENT
    keep = np.zeros(len(parents), bool)
    keep[has] = keep_real[parents[has]]
    rate = float(keep_real.mean())
    keep[~has] = [_unit(f"{seed}:{i}") < rate for i in np.asarray(ids)[~has]]
    return keep
