"""Scaling of the quality checks: time and peak memory of (a) the per-sample filter's k-NN work and
(b) set-level fidelity (prdc + fid + kid), n generated rows against 60k real rows, random Gaussian
float32 data; and FID's speed and accuracy against a scipy.linalg.sqrtm reference.

    python bench/scaling.py [--quick]

Each (a)/(b) configuration runs in a fresh subprocess; its memory is the process's peak RSS
(getrusage ru_maxrss) minus the same process's peak right after imports.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _common import machine, median, table, write_section  # first: sets OMP env

import numpy as np

CHUNK, K = 2048, 5   # params.yaml's filter.chunk_rows and filter.knn_k


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def one(kind: str, n_gen: int, n_real: int, d: int) -> dict:
    """Child mode: one configuration; returns seconds (total and per part) and memory."""
    import torch  # noqa: F401  (imported before the baseline, like the library itself)
    from augflow.quality.fidelity import fid, kid, prdc
    from augflow.quality.knn import ball_stats, knn_distances, kth_radii
    base = peak_mib()
    rng = np.random.default_rng(0)
    real = rng.standard_normal((n_real, d), dtype=np.float32)
    gen = rng.standard_normal((n_gen, d), dtype=np.float32) + np.float32(0.1)
    parts = {}

    def timed(name, fn, *a):
        t0 = time.perf_counter()
        out = fn(*a)
        parts[name] = time.perf_counter() - t0
        return out

    if kind == "filter":   # what augflow.quality.sample_filter does per reference and sample set
        radii = timed("kth_radii(real)", kth_radii, real, K, CHUNK)
        timed("ball_stats(gen, real)", ball_stats, gen, real, radii, CHUNK)
        timed("knn_distances(gen, real, 1)", lambda: knn_distances(gen, real, 1, chunk=CHUNK))
    else:
        timed("prdc", prdc, real, gen, K, CHUNK)
        timed("fid", fid, real, gen)
        timed("kid", kid, real, gen)
    return {"seconds": sum(parts.values()), "parts": parts, "peak_mib": peak_mib() - base,
            "input_mib": (real.nbytes + gen.nbytes) / 2**20}


def run_child(kind, n_gen, n_real, d, timeout) -> dict | None:
    cmd = [sys.executable, __file__, "--one", kind, str(n_gen), str(n_real), str(d)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fid_reference(mu1, s1, mu2, s2) -> float:
    from scipy.linalg import sqrtm
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm(s1 @ s2).real))


def random_spd(rng, d):
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 1e-3 * np.eye(d)


def fid_rows(dims, quick: bool) -> list[list]:
    """Ours vs the sqrtm reference, timed alternately; with the default BLAS threads and with 1."""
    from threadpoolctl import threadpool_limits
    from augflow.quality.fidelity import frechet_distance
    rows = []
    for threads in (None, 1):
        with threadpool_limits(threads):
            for d in dims:
                rng = np.random.default_rng(d)
                args = rng.standard_normal(d), random_spd(rng, d), rng.standard_normal(d), random_spd(rng, d)
                t_ours, t_ref = [], []
                for _ in range(3 if quick else {64: 25, 512: 7}.get(d, 3)):
                    t0 = time.perf_counter(); ours = frechet_distance(*args); t_ours.append(time.perf_counter() - t0)
                    t0 = time.perf_counter(); ref = fid_reference(*args); t_ref.append(time.perf_counter() - t0)
                rel = abs(ours - ref) / abs(ref)
                speed = median(t_ref) / median(t_ours)
                misses = [m for m, bad in (("speed", speed < 10), ("error", rel > 1e-6)) if bad]
                rows.append([d, threads or "default", len(t_ours), f"{median(t_ours):.4f}", f"{median(t_ref):.4f}",
                             f"**{speed:.1f}x**", f"{rel:.1e}", f"missed ({', '.join(misses)})" if misses else "met"])
                print(rows[-1], flush=True)
    return rows


def knn_rows(args, n_real: int) -> list[list]:
    """One table row per (work, dim, generated rows): each measured in a fresh child process,
    or, past the timeout, extrapolated linearly from the two smaller sizes and labelled so."""
    gens = (1_000, 5_000) if args.quick else (1_000, 10_000, 60_000)
    dims = (64,) if args.quick else (64, 784)
    rows, measured = [], {}
    for kind in ("filter", "fidelity"):
        for d in dims:
            for n in gens:
                r = run_child(kind, n, n_real, d, args.timeout)
                measured[kind, d, n] = r
                if r is None:   # linear in n_gen from the two smaller sizes: labelled extrapolation
                    # (a lower bound for fidelity, whose kth_radii(gen) pass grows as n_gen^2)
                    (n1, n2), (t1, t2) = gens[:2], (measured[kind, d, g]["seconds"] for g in gens[:2])
                    est = t1 + (t2 - t1) * (n - n1) / (n2 - n1)
                    cells = [f"> {args.timeout:.0f} (timed out); **extrapolated ~{est:.0f}**", "-", "-", "-"]
                    ok = "missed"
                else:
                    ok = "met" if (n < n_real or (r["seconds"] <= 120 and r["peak_mib"] <= 2048)) else "missed"
                    cells = [f"{r['seconds']:.1f}", f"{r['peak_mib']:.0f}", f"{r['input_mib']:.0f}",
                             ", ".join(f"{k} {v:.1f}" for k, v in r["parts"].items())]
                target = ok if n == n_real else ""
                rows.append([kind, d, f"{n:,}", f"{n_real:,}", *cells, target])
                print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=float, default=2400, help="seconds per configuration")
    ap.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        kind, n_gen, n_real, d = args.one
        print(json.dumps(one(kind, int(n_gen), int(n_real), int(d))))
        return
    t_start = time.perf_counter()
    n_real = 5_000 if args.quick else 60_000
    rows = knn_rows(args, n_real)
    frows = fid_rows((64, 256) if args.quick else (64, 512, 2048), args.quick)
    body = f"""## 3. Scaling of the quality checks (`bench/scaling.py`)

Command: `python bench/scaling.py`{' --quick' if args.quick else ''}  
Machine: {machine()}  
Data: random Gaussian float32 (generated rows shifted by 0.1), k = {K}, chunk = {CHUNK} (params.yaml).
(a) "filter" = `kth_radii(real)` + `ball_stats(gen, real, radii)` + `knn_distances(gen, real, 1)`,
the k-NN work of `augflow.quality.sample_filter`; (b) "fidelity" = `prdc` + `fid` + `kid` of
`augflow.quality.fidelity`. One fresh subprocess per row, one run each (the rows are minutes long);
memory = peak RSS minus the same process's peak after imports (it includes the input arrays, column
"inputs"). Target for {n_real:,} x {n_real:,}: within 2048 MiB and 120 s on 2 cores.

{table(["work", "dim", "generated", "real", "seconds", "peak MiB over baseline", "inputs MiB", "seconds per part", "target"], rows)}

FID: `augflow.quality.fidelity.frechet_distance` (float64, eigenvalues of a symmetric form; no
complex `sqrtm`) against the
reference `||mu1-mu2||^2 + tr S1 + tr S2 - 2 tr sqrtm(S1 S2).real` with `scipy.linalg.sqrtm`, random
SPD covariances `A A^T / d + 1e-3 I`; median seconds over the repeats, the two alternating, with
OpenBLAS's default threads and limited to 1 (threadpoolctl). Target: >= 10x faster with relative
error <= 1e-6.

{table(["d", "BLAS threads", "repeats", "ours s", "scipy sqrtm s", "speed-up", "relative error", "target"], frows)}

What limits it: the k-NN work is exact and brute force, so time grows with generated x real x dim:
each 60k x 60k pass is 900 blocks of 2048 x 2048, each one `torch.cdist` (compute-bound at 784-d)
followed by a top-k (`kth_radii`, `knn_distances`) or a divide, min, compare and count
(`ball_stats`, which at 64-d costs more than the distances themselves). The filter makes 3 such
passes, `prdc` 5 (its `kth_radii` of real rows is recomputed by every call, and its `kth_radii` of
generated rows is n^2). In the pipeline only the 1-NN copy distance runs on raw rows; `kth_radii`
and `ball_stats` run on the extractor's 64-d features, so the 64-d rows are the realistic ones for
them. Memory stays bounded by the blocks plus the inputs, except `fid`/`kid`, which copy the inputs
to float64 (and `np.cov` centres another copy). What would close the time target at 784-d: fewer
passes (reuse the real rows' radii instead of recomputing them per call; one fused pass for
`ball_stats`), and an approximate index for the 784-d 1-NN if exactness can be traded. Note that
`augflow.cli.run_stage` pins torch to one thread (`AUGFLOW_TORCH_THREADS`, default 1), so inside the
filter and evaluate stages this work runs on one core, not the two measured here (section 4 shows
the filter's scoring both ways). FID: both methods are O(d^3), so the speed-up is a constant
factor that grows with d; below d = 2048 both take well under a second, and 10x is reached only at
d = 2048 with both BLAS threads.
Total benchmark time: {(time.perf_counter() - t_start) / 60:.1f} min.
"""
    write_section("scaling", body, args.quick)


if __name__ == "__main__":
    main()
