"""Issue 17's budget: every stage's time and the peak memory at MNIST's scale, on 28x28 images
this script makes itself.

    python bench/mnist_scale.py --sizes 1000,10000,70000 [--over '{"vae": {...}}']
    python bench/mnist_scale.py --results runs.jsonl   # the section from saved result lines

The set: scikit-learn's 8x8 digits, each drawn again as a 28x28 grey image (upscaled 2.5x to
20x20, then a random affine warp: rotation +-12 degrees, scale 0.9-1.1, shear +-0.15, shift
+-2 px, and pixel noise), as many as asked, written as an npz (source npz, X uint8 (n, 28, 28)).
It is for timing: 70,000 warps of 1,797 digits say little about quality at scale.
Each size runs in a fresh subprocess: every stage via augflow.cli.run_stage (what dvc.yaml's
commands call) in a temp workspace with the repo's params.yaml, data.source npz, and `--over`
merged in. Seconds per stage are wall clock, one run each; memory is the child's peak RSS
(ru_maxrss). The stage modules, Great Expectations and MLflow are imported before timing."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (default_params, machine, merged, table, timed_stages,  # first: OMP env
                     write_section)

import numpy as np
import yaml

from augflow.paths import STAGES


def make_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 uint8 images of the ten digits, each a warped copy of a random 8x8 digit."""
    from scipy.ndimage import affine_transform, zoom
    from sklearn.datasets import load_digits

    d = load_digits()
    base = np.stack([zoom(im / 16.0, 2.5, order=1) for im in d.images])   # (1797, 20, 20)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), n)
    out = np.empty((n, 28, 28), np.uint8)
    centre = np.array([13.5, 13.5])
    for i, j in enumerate(pick):
        canvas = np.zeros((28, 28))
        canvas[4:24, 4:24] = base[j]
        a = np.deg2rad(rng.uniform(-12, 12))
        s = rng.uniform(0.9, 1.1)
        sh = rng.uniform(-0.15, 0.15)
        m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ [[1, sh], [0, 1]] / s
        off = centre - m @ centre + rng.uniform(-2, 2, 2)
        im = affine_transform(canvas, m, offset=off, order=1) + rng.normal(0, 0.03, (28, 28))
        out[i] = np.clip(im * 255, 0, 255).astype(np.uint8)
    return out, d.target[pick].astype(np.int64)


def child(size: int, over: dict) -> dict:
    params = merged(default_params(), {"data": {"source": "npz", "path": "data/raw/set.npz"}})
    params = merged(params, over)
    with tempfile.TemporaryDirectory(prefix="augflow-bench-scale-") as ws:
        ws = Path(ws)
        (ws / "data" / "raw").mkdir(parents=True)
        x, y = make_images(size)
        np.savez(ws / "data" / "raw" / "set.npz", X=x, y=y)
        (ws / "params.yaml").write_text(yaml.safe_dump(params))
        # a line per stage on stderr, so a run stopped by hand still shows what it reached
        return timed_stages(ws, lambda stage, s: print(json.dumps({stage: s}), file=sys.stderr,
                                                            flush=True))


def section(results: list[dict], over: str, command: str) -> str:
    rows = []
    for r in results:
        sec = r["seconds"]
        n_train = f"{r['n_train']:,}" if "n_train" in r else "-"   # none if prepare failed
        rows.append([f"{r['size']:,}", n_train, r.get("epochs", "-"),
                     r.get("kept", "-"),
                     *(f"{sec[s]:.0f}" if s in sec else ("stopped" if "error" in r else "-")
                       for s in STAGES),
                     ("at least " if "error" in r else "") + f"{sum(sec.values()) / 60:.1f}",
                     f"{max(r['rss_gib'].values()):.2f}" if r["rss_gib"] else "-"])
    errors = [f"- {r['size']:,} images: {r['error']}" for r in results if "error" in r]
    # saved lines from runs with different --over (--results): a column says which was which
    overs = [r.get("over", over) for r in results]
    extra = [] if len(set(overs)) == 1 else ["--over"]
    if extra:
        for row, o in zip(rows, overs):
            row.append(f"`{o}`")
        over = "per row"
    return f"""## 6. Towards MNIST's scale: time per stage as the image set grows (`bench/mnist_scale.py`)

Command: `{command}`
Machine: {results[0].get("machine", machine())}

28x28 grey digits the bench draws itself (scikit-learn's 8x8 digits upscaled and warped at
random), source npz; the repo's params.yaml with `--over` merged in: `{over}`. Every stage via
`augflow.cli.run_stage` (one torch thread, as under `dvc repro`), one run per size in a fresh
process; seconds are wall clock, memory the process's peak RSS. Target (issue 17): 70,000
images in 20 minutes and 8 GiB.

{table(["images", "train rows", "VAE epochs", "kept / generated", *STAGES, "total min",
        "peak GiB", *extra], rows)}
{chr(10).join(errors)}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,70000")
    ap.add_argument("--over", default="{}", help="JSON merged into params.yaml")
    ap.add_argument("--results", help="write the section from these saved result lines")
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.disable(logging.INFO)
    if args.size:
        print(json.dumps(child(args.size, json.loads(args.over))))
        return 0
    command = "python bench/mnist_scale.py " + " ".join(
        f"--{k} '{v}'" for k, v in (("sizes", args.sizes), ("over", args.over)))
    results = []
    if args.results:
        for line in Path(args.results).read_text().splitlines():
            results.append(json.loads(line))
        command = " ; ".join(dict.fromkeys(r["command"] for r in results))
        args.over = results[0]["over"]
    else:
        for size in (int(s) for s in args.sizes.split(",")):
            proc = subprocess.run([sys.executable, __file__, "--size", str(size), "--over",
                                   args.over], stdout=subprocess.PIPE, text=True)
            r = {"size": size, "command": command, "over": args.over, "machine": machine(),
                 **json.loads(proc.stdout.strip().splitlines()[-1])}
            results.append(r)
            print(json.dumps(r), flush=True)
    write_section("scale", section(results, args.over, command), quick=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
