"""Exact k-NN geometry in bounded memory: every distance matrix is built one block at a time.

A block is at most `chunk` x `chunk` float32 distances, so peak memory does not grow with the
number of rows (60k x 60k at chunk=2048 holds 16 MiB of distances at a time). On many rows
these loops are the long part of scoring: given a `progress` name they show one step per
block of query rows."""

from __future__ import annotations

import numpy as np
import torch

from augflow.progress import track


def _blocks(n: int, chunk: int):
    for s in range(0, n, chunk):
        yield s, min(s + chunk, n)


def _query_blocks(n: int, chunk: int, progress: str | None):
    blocks = list(_blocks(n, chunk))
    return track(blocks, progress) if progress else blocks


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float32))


@torch.no_grad()
def knn_distances(query: np.ndarray, ref: np.ndarray, k: int, *, exclude_self: bool = False,
                  chunk: int = 2048, progress: str | None = None) -> np.ndarray:
    """Sorted distances from each query row to its k nearest ref rows, shape (n_query, k).
    With exclude_self (query is ref) a row is not its own neighbour."""
    q, r = _t(query), _t(ref)
    kk = k + 1 if exclude_self else k
    out = np.empty((len(q), k), dtype=np.float32)
    for qs, qe in _query_blocks(len(q), chunk, progress):
        best = torch.full((qe - qs, 0), float("inf"))
        for rs, re in _blocks(len(r), chunk):
            d = torch.cdist(q[qs:qe], r[rs:re])
            lo, hi = max(qs, rs), min(qe, re)
            if exclude_self and lo < hi:
                ii = torch.arange(lo, hi)
                d[ii - qs, ii - rs] = float("inf")
            best = torch.cat([best, d], dim=1).topk(min(kk, best.shape[1] + d.shape[1]),
                                                    dim=1, largest=False).values
        out[qs:qe] = best[:, :k].numpy()
    return out


def kth_radii(x: np.ndarray, k: int, chunk: int = 2048, progress: str | None = None) -> np.ndarray:
    """Each row's distance to its k-th nearest other row: the radius of its k-NN ball."""
    return knn_distances(x, x, k, exclude_self=True, chunk=chunk, progress=progress)[:, -1]


@torch.no_grad()
def ball_stats(query: np.ndarray, ref: np.ndarray, radii: np.ndarray,
               chunk: int = 2048, progress: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: the smallest d(query, ref_i) / radius_i (<= 1 means inside some ball)
    and how many ref balls contain it."""
    q, r, rad = _t(query), _t(ref), _t(radii).clamp_min(1e-12)
    ratio = np.empty(len(q), dtype=np.float32)
    count = np.zeros(len(q), dtype=np.int64)
    for qs, qe in _query_blocks(len(q), chunk, progress):
        best = torch.full((qe - qs,), float("inf"))
        cnt = torch.zeros(qe - qs, dtype=torch.int64)
        for rs, re in _blocks(len(r), chunk):
            d = torch.cdist(q[qs:qe], r[rs:re])
            best = torch.minimum(best, (d / rad[rs:re]).min(dim=1).values)
            cnt += (d <= rad[rs:re]).sum(dim=1)
        ratio[qs:qe], count[qs:qe] = best.numpy(), cnt.numpy()
    return ratio, count
