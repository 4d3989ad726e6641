"""Training-loop throughput: our VAE training (augflow.models.vae_fit.train_cvae = models.fitting.fit with
CVAE and cvae_loss) against a bare hand-written PyTorch loop of the same model, batch size and data.

    python bench/train_loop.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time

from _common import default_params, machine, median, table, write_section  # first: sets OMP env

import numpy as np
import torch
import torch.nn.functional as F
from augflow.config import DataConfig, VAEConfig
from augflow.models.cvae import CVAE
from augflow.models.vae_fit import train_cvae


def digits_split():
    """The pipeline's own train/val split of digits, scaled /16 (what `augflow train` fits on)."""
    from augflow.data.sources import load_source
    from augflow.stages.prepare import split_dataset
    raw = load_source(DataConfig())
    x, y = raw.frame.to_numpy(np.float32), raw.labels.astype(np.int64)
    idx = split_dataset(y, DataConfig(), seed=0)
    scale = lambda i: (x[i] / 16.0).astype(np.float32)
    return scale(idx["train"]), y[idx["train"]], scale(idx["val"]), y[idx["val"]]


def synthetic_split(n: int, d: int = 64, seed: int = 0):
    """n train rows in [0, 1] with 10 labels, and a val set sized like the pipeline's (15/85)."""
    rng = np.random.default_rng(seed)
    n_val = int(n * 0.15 / 0.85)
    x = rng.random((n + n_val, d), dtype=np.float32)
    y = rng.integers(0, 10, n + n_val)
    return x[:n], y[:n], x[n:], y[n:]


def ours(x, y, xv, yv, cfg: VAEConfig) -> float:
    t0 = time.perf_counter()
    train_cvae(x, y, xv, yv, 10, cfg, seed=0)
    return time.perf_counter() - t0


def bare(x, y, xv, yv, cfg: VAEConfig, validate: bool = False) -> float:
    """The minimum: shuffle, forward, loss, backward, step. No bookkeeping; with `validate`, one
    forward pass over the val rows per epoch (the part of `fit` that early stopping needs)."""
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = CVAE(x.shape[1], 10, cfg.latent_dim, cfg.hidden_dims).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(0)
    for _ in range(cfg.max_epochs):
        order = torch.randperm(len(xt), generator=gen)
        for s in range(0, len(xt), cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            xb = xt[idx]
            out = model(xb, yt[idx])
            recon = F.binary_cross_entropy(out.recon, xb, reduction="none").sum(1).mean()
            kl = (-0.5 * (1 + out.logvar - out.mu.pow(2) - out.logvar.exp()).sum(1)).mean()
            loss = recon + cfg.beta * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if validate:
            model.eval()
            with torch.no_grad():
                model(torch.from_numpy(xv), torch.from_numpy(yv))
            model.train()
    return time.perf_counter() - t0


VARIANTS = {"ours": ours, "bare": bare, "bare+val": lambda *a: bare(*a, validate=True)}


def compare(data, cfg: VAEConfig, repeats: int) -> dict[str, list[float]]:
    warm = cfg.model_copy(update={"max_epochs": 1, "patience": 1})
    for fn in VARIANTS.values():   # untimed warm-up: first-call allocations, lazy inits
        fn(*data, warm)
    times = {k: [] for k in VARIANTS}
    names = list(VARIANTS)
    for r in range(repeats):   # interleaved, rotating which goes first each repeat
        for k in names[r % 3:] + names[:r % 3]:
            times[k].append(VARIANTS[k](*data, cfg))
    return times


def ratio(times: dict, a: str = "ours", b: str = "bare") -> float:
    """Median over repeats of the within-repeat throughput ratio a/b (robust to load drifting)."""
    return median([tb / ta for ta, tb in zip(times[a], times[b])])


def thread_rows(sets, repeats: int, vae: dict, default_threads: int) -> list[list]:
    """Samples/s of each training-loop variant per data set, at the default thread count and
    at 1 thread; `ours` relative to the bare loop is the target column."""
    rows = []
    for threads in (default_threads, 1):
        torch.set_num_threads(threads)
        for name, data, epochs in sets:
            cfg = VAEConfig(**{**vae, "max_epochs": epochs, "patience": epochs})
            times = compare(data, cfg, repeats)
            n = len(data[0]) * epochs
            sps = {k: n / median(v) for k, v in times.items()}
            r = ratio(times)
            rows.append([name, threads, len(data[0]), len(data[2]), epochs, f"{sps['ours']:,.0f}",
                         f"{sps['bare']:,.0f}", f"{sps['bare+val']:,.0f}", f"**{r:.3f}x**",
                         f"{ratio(times, 'ours', 'bare+val'):.3f}x", "met" if r >= 0.9 else "missed",
                         " / ".join(":".join(f"{times[k][i]:.2f}" for k in VARIANTS) for i in range(repeats))])
            print(rows[-1], flush=True)
    torch.set_num_threads(default_threads)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--omp-default-epochs", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.getLogger("augflow.fit").setLevel(logging.WARNING)
    vae = dict(default_params()["vae"])
    if args.omp_default_epochs:   # child mode: digits once, OpenMP's default wait policy
        e = args.omp_default_epochs
        return print(json.dumps(compare(digits_split(), VAEConfig(**{**vae, "max_epochs": e, "patience": e}), 1)))
    t_start = time.perf_counter()
    repeats = 1 if args.quick else args.repeats
    # (name, data, epochs): fixed epoch counts, patience >= epochs so early stopping never fires.
    sets = [("digits train (pipeline split)", digits_split(), 2 if args.quick else 20),
            (f"synthetic {2_000 if args.quick else 20_000} x 64", synthetic_split(2_000 if args.quick else 20_000),
             1 if args.quick else 3)]
    default_threads = torch.get_num_threads()
    rows = thread_rows(sets, repeats, vae, default_threads)
    # The same digits comparison once more in a child with OpenMP's default (spinning) wait policy.
    e = 2 if args.quick else 5
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, __file__, "--omp-default-epochs", str(e)], capture_output=True,
                         text=True, check=True, env={**env, "BENCH_OMP_DEFAULT": "1"})
    times = json.loads(out.stdout.strip().splitlines()[-1])
    sps = {k: len(sets[0][1][0]) * e / v[0] for k, v in times.items()}
    rows.append([sets[0][0] + ", **OMP_WAIT_POLICY unset** (1 repeat)", default_threads, len(sets[0][1][0]),
                 len(sets[0][1][2]), e, *(f"{sps[k]:,.0f}" for k in VARIANTS), f"{ratio(times):.3f}x",
                 f"{ratio(times, 'ours', 'bare+val'):.3f}x", "-", ":".join(f"{times[k][0]:.2f}" for k in VARIANTS)])
    print(rows[-1], flush=True)
    body = f"""## 2. Training loop throughput (`bench/train_loop.py`)

Command: `python bench/train_loop.py`{' --quick' if args.quick else ''}  
Machine: {machine()}  
Model: the CVAE of `params.yaml` (latent {vae['latent_dim']}, hidden {vae['hidden_dims']}, beta {vae['beta']}),
Adam lr {vae['lr']}, batch {vae['batch_size']}, fixed epochs (patience = epochs, so no early stop).
"ours" is `augflow.models.vae_fit.train_cvae` (`fit` + `CVAE` + `cvae_loss`, per-epoch validation pass and
best-state copy included); "bare" is a hand-written loop of the same model, loss, batches and
shuffling with nothing else; "bare+val" adds the one forward pass over the val rows per epoch that
early stopping needs. samples/s = train rows x epochs / wall seconds, median of {repeats} repeats,
the three interleaved in one process on the same cores (after one untimed warm-up epoch each);
"ours / bare" is the median of the within-repeat ratios. Rows with 1 thread repeat the
measurement with `torch.set_num_threads(1)`. All rows but the last run with
`OMP_WAIT_POLICY=PASSIVE` (set by `bench/_common.py`); the last row repeats the digits case in a
child process with the OpenMP default, to show what spinning threads cost on a busy machine.

{table(["data", "torch threads", "train rows", "val rows", "epochs", "ours samples/s", "bare samples/s", "bare+val samples/s", "ours / bare", "ours / bare+val", "target >= 0.9x", "seconds per repeat (ours:bare:bare+val)"], rows)}

What limits it: per-batch work is tiny (64 rows through a 2-layer MLP), so both loops are bound by
PyTorch's per-op dispatch, and a second thread buys little or loses (compare the 1-thread rows);
on a busy machine the OpenMP default wait policy can make 2 threads far slower still. What `fit`
adds over the bare loop is mostly the per-epoch validation pass that early stopping needs ("ours /
bare+val" is close to 1); the rest (per batch a `torch.isfinite` check and three `.item()` calls,
two of them for train-loss parts that `fit` discards; per improving epoch a `deepcopy` of the state
dict) is small.
Total benchmark time: {(time.perf_counter() - t_start) / 60:.1f} min.
"""
    write_section("train_loop", body, args.quick)


if __name__ == "__main__":
    main()
