"""Set-level fidelity metrics against references and known cases."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from augflow.quality.fidelity import fid, frechet_distance, kid, prdc
from augflow.quality.knn import ball_stats, knn_distances, kth_radii


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.01 * np.eye(d)


def test_fid_matches_scipy_sqrtm_reference():
    rng = np.random.default_rng(0)
    for d in (4, 16, 64):
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        covmean = scipy.linalg.sqrtm(s1 @ s2).real
        ref = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
        ours = frechet_distance(mu1, s1, mu2, s2)
        assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(1).normal(size=(500, 16))
    assert fid(x, x) < 1e-8


def test_fid_grows_monotonically_with_noise():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 8))
    y = rng.normal(size=(2000, 8))
    noise = rng.normal(size=(2000, 8))
    values = [fid(x, y + s * noise) for s in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_density_coverage_precision_recall_near_one_for_one_distribution():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(1500, 8)), rng.normal(size=(1500, 8))
    m = prdc(real, fake, k=5)
    assert 0.85 < m["density"] < 1.15
    assert m["coverage"] > 0.9 and m["precision"] > 0.9 and m["recall"] > 0.9


def test_prdc_sees_mode_collapse_as_low_recall():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(1000, 4))
    collapsed = 0.1 * rng.normal(size=(1000, 4))
    m = prdc(real, collapsed, k=5)
    assert m["precision"] > 0.9 and m["recall"] < 0.3 and m["coverage"] < 0.5


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    same, shifted = kid(a, b), kid(a, b + 1.0)
    assert abs(same) < 0.05 and shifted > 10 * abs(same)


def test_chunked_knn_equals_brute_force():
    rng = np.random.default_rng(6)
    q, r = rng.normal(size=(300, 5)), rng.normal(size=(470, 5))
    full = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    got = knn_distances(q, r, 3, chunk=64)
    assert np.allclose(got, np.sort(full, axis=1)[:, :3], atol=1e-4)
    self_full = np.sqrt(((r[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(self_full, np.inf)
    assert np.allclose(kth_radii(r, 4, chunk=50), np.sort(self_full, axis=1)[:, 3], atol=1e-4)
    radii = kth_radii(r, 4, chunk=50)
    ratio, count = ball_stats(q, r, radii, chunk=37)
    assert np.allclose(ratio, (full / radii).min(axis=1), rtol=1e-4)
    assert np.array_equal(count, (full <= radii).sum(axis=1))


def test_reports_sharing_a_real_side_reuse_its_radii_and_give_the_same_numbers():
    """The filter's three reports against one train set compute its k-NN radii once: the
    cache changes no number."""
    from augflow.quality.fidelity import fidelity_report

    rng = np.random.default_rng(0)
    real, real_y = rng.normal(size=(300, 6)), np.arange(300) % 3
    radii: dict = {}
    for shift in (0.0, 0.5, 1.0):
        fake = rng.normal(shift, 1, size=(90, 6))
        fake_y = np.arange(90) % 3
        plain = fidelity_report(real, real_y, fake, fake_y, k=5, seed=1)
        cached = fidelity_report(real, real_y, fake, fake_y, k=5, seed=1, radii=radii)
        assert cached == plain
    assert set(radii) == {("all", 5), ("class 0", 5), ("class 1", 5), ("class 2", 5)}
