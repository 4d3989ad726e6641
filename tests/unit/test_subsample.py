"""The row cap of the classifier fits (evaluate.max_real_rows): which rows a capped fit uses."""

from __future__ import annotations

import numpy as np
import pytest

from augflow.data.augmented import origin_parents
from augflow.evaluation.subsample import NO_PARENT, follow_parents, real_subset
from augflow.stages.evaluate import cap_fit_rows


def test_real_subset_is_all_rows_under_the_cap_and_stratified_over_it():
    y = np.repeat(np.arange(4), [100, 300, 50, 550])            # 1000 rows, unbalanced
    assert real_subset(y, 1000, 0) is None and real_subset(y, None, 0) is None
    keep = real_subset(y, 200, 0)
    assert keep.sum() == 200
    assert [int(keep[y == c].sum()) for c in range(4)] == [20, 60, 10, 110]
    assert (real_subset(y, 200, 0) == keep).all()               # one seed, one subsample
    assert (real_subset(y, 200, 1) != keep).any()
    odd = np.repeat(np.arange(3), [333, 333, 334])               # shares that do not round
    assert real_subset(odd, 100, 0).sum() == 100
    rare = np.concatenate([np.zeros(999, int), [1]])            # a class of one row stays
    assert real_subset(rare, 10, 0)[-1] and real_subset(rare, 10, 0).sum() == 11


def test_added_rows_follow_their_parent_and_orphans_are_decided_by_id():
    keep = np.zeros(10, bool)
    keep[[1, 4]] = True
    parents = np.array([1, 2, 4, 4, NO_PARENT])
    ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    assert follow_parents(parents, ids, keep, 0)[:4].tolist() == [True, False, True, True]
    # orphans: about the real rows' rate, and one id gets one answer wherever it appears
    many = np.array([f"cvae-x-{i}" for i in range(4000)], dtype=object)
    orphan = np.full(4000, NO_PARENT)
    first = follow_parents(orphan, many, keep, 3)
    assert first.mean() == pytest.approx(0.2, abs=0.03)
    order = np.random.default_rng(0).permutation(4000)
    assert (follow_parents(orphan[order], many[order], keep, 3) == first[order]).all()


def test_origin_parents_reads_real_classic_and_synthetic_rows():
    origin = np.array(["real", "real", "real", "classic:2", "classic:0", "cvae-1", "cvae-2"],
                      dtype=object)
    got = origin_parents(origin, {"cvae-1": 1, "cvae-2": -1})
    assert got.tolist() == [0, 1, 2, 2, 0, 1, -1]


def _data(n_real: int = 400) -> dict:
    """An evaluate data dict whose one feature is a row's id: real rows 0.., a classic variant
    of every real row (1000 + its parent), a local sample of every other real row (2000 + its
    parent, all kept) and 100 samples drawn from a fit (3000.., every other one kept)."""
    yr = np.arange(n_real) % 4
    local = np.arange(0, n_real, 2)
    gen_ids = np.array([f"s{i}" for i in range(len(local) + 100)], dtype=object)
    gen_parent = np.concatenate([local, np.full(100, NO_PARENT)])
    xg = np.concatenate([2000 + local, 3000 + np.arange(100)])
    yg = np.concatenate([yr[local], np.arange(100) % 4])
    kept = np.concatenate([np.ones(len(local), bool), np.arange(100) % 2 == 0])
    origin = np.concatenate([np.full(n_real, "real", dtype=object),
                             np.array([f"classic:{i}" for i in range(n_real)], dtype=object),
                             gen_ids[kept]])
    xa = np.concatenate([np.arange(n_real), 1000 + np.arange(n_real), xg[kept]])
    ya = np.concatenate([yr, yr, yg[kept]])
    w = {"share": 0.5 * xa, "count": 2.0 * xa}                  # a weight tells its row
    col = lambda v: np.asarray(v, np.float32)[:, None]
    return {"real": (col(np.arange(n_real)), yr), "generated": (col(xg), yg),
            "kept": (col(xg[kept]), yg[kept]), "augmented": (col(xa), ya, w["share"]),
            "augmented_weights": w, "scheme": {},
            "lineage": {"generated": (gen_ids, gen_parent),
                        "kept": (gen_ids[kept], gen_parent[kept]),
                        "augmented": (origin, origin_parents(origin, dict(zip(gen_ids,
                                                                              gen_parent))))}}


def test_capped_fit_data_keeps_real_rows_and_only_what_was_made_from_them():
    data = _data()
    same, info = cap_fit_rows(data, 400, 0)
    assert same is data and info["real_rows_fitted"] == 400
    out, info = cap_fit_rows(data, 100, 0)
    ids = lambda key: set(out[key][0][:, 0].astype(int).tolist())
    real, aug = ids("real"), ids("augmented")
    assert info == {"max_real_rows": 100, "real_rows": 400, "real_rows_fitted": 100,
                    "augmented_rows_fitted": len(aug)}
    assert len(real) == 100 and np.bincount(out["real"][1]).tolist() == [25] * 4
    assert {i for i in aug if i < 1000} == real
    assert {i - 1000 for i in aug if 1000 <= i < 2000} == real        # classic follows
    local = {i for i in aug if 2000 <= i < 3000}
    assert local == {2000 + i for i in real if i % 2 == 0}           # local samples follow
    drawn = {i for i in aug if i >= 3000}
    assert 0 < len(drawn) < 50                                        # orphans: thinned
    # the kept and generated sets thin alike: the same samples in every arm
    assert ids("kept") == local | drawn
    assert ids("kept") <= ids("generated")
    assert {i for i in ids("generated") if i >= 3000 and i % 2 == 0} == drawn
    xa, _, wa = out["augmented"]
    assert (wa == 0.5 * xa[:, 0]).all()                               # weights kept their rows
    assert (out["augmented_weights"]["count"] == 2.0 * xa[:, 0]).all()
