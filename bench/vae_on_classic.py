"""Can VAE rows add to classic augmentation at all? A screen of ways to put VAE rows beside
classic ones, each against the classic arm with the same number of added rows, all unweighted.

    python bench/vae_on_classic.py --set digits --level 5 --draws 3
    python bench/vae_on_classic.py --set glyphs28 --level 5 --draws 3 --only classic,swap25_vaec

Per draw the chain (prepare .. augment) runs once with the repo's params. A = the added rows per
class the augmented set holds (as the classic arm of `augflow lowdata`; where the filter kept nothing
of a class, n_per_class x (1 + classic_per_kept), with unfiltered samples as its VAE rows). Then
per class:
- classic: A classic rows (params.yaml's recipe), the baseline;
- swapF_<kind>: the first (1-F)A of those classic rows plus F*A rows of <kind>:
  vae (kept local VAE variants), vaec (the same, then moved by a classic transform),
  interp (in-class latent interpolation, x_a + dec(lerp(mu_a, mu_b, t)) - dec(mu_a)),
  interpc (the same, then moved by a classic transform), mix (half vae, half interp),
  style (as interp, but toward a real row of another class encoded with its own label: style
  learned across classes carried onto the class), stylec (the same, then a classic transform),
  stylef (style rows the filter's extractor gives P(class) >= filter.consistency, drawn 3x over),
  stylefc (the same, then a classic transform);
- augmented: the augment stage's set, each classifier with the scheme validation chose.
Paired 95% bootstrap CIs against the classic arm, over (draw, seed) pairs and test rows. The test
split only scores; nothing is chosen on it here. A screen for the README, not a tuner."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

VARIANTS = ["real", "classic", "augmented", "swap25_vae", "swap50_vae", "swap75_vae",
            "swap25_vaec", "swap50_vaec", "swap25_interp", "swap25_interpc", "swap50_mix",
            "swap25_style", "swap50_style", "swap25_stylec", "swap25_stylef", "swap50_stylef",
            "swap25_stylefc", "swap50_stylefc"]


@torch.no_grad()
def interpolations(model, x: np.ndarray, y: np.ndarray, per_class: dict[int, int],
                   rng: np.random.Generator, across: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """per_class[c] rows of class c: a real row a moved toward another real row b of its class
    along the decoder, x_a + dec((1-t) mu_a + t mu_b, c) - dec(mu_a, c), t ~ U(0, 1).
    across: b is a row of another class, encoded with its own label, so mu_b holds b's style
    (what the encoder keeps once it is told the class) and the move carries that style onto a
    row of class c: style learned across classes, as DAGAN's generator (Antoniou et al. 2017)."""
    xs, ys = [], []
    for c, n in sorted(per_class.items()):
        rows = np.flatnonzero(y == c)
        donors = np.flatnonzero(y != c) if across else rows
        if n <= 0 or len(rows) < (1 if across else 2) or len(donors) == 0:
            continue
        a = rng.choice(rows, size=n)
        b = rng.choice(donors, size=n) if across else np.array(
            [rng.choice(rows[rows != i]) for i in a])
        t = torch.from_numpy(rng.uniform(0, 1, size=(n, 1)).astype(np.float32))
        lab = torch.full((n,), c, dtype=torch.int64)
        mu_a, _ = model.encode(torch.from_numpy(x[a]), lab)
        mu_b, _ = model.encode(torch.from_numpy(x[b]), torch.from_numpy(y[b]))
        moved = model.decode((1 - t) * mu_a + t * mu_b, lab) - model.decode(mu_a, lab)
        xs.append((torch.from_numpy(x[a]) + moved).clamp(0, 1).numpy())
        ys.append(np.full(n, c, np.int64))
    return np.vstack(xs).astype(np.float32), np.concatenate(ys)


def _take(x, y, per_class: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The first per_class[c] rows of each class c (rows in their order)."""
    idx = np.concatenate([np.flatnonzero(y == c)[:n] for c, n in sorted(per_class.items())])
    return x[idx], y[idx]


def _fill(need: dict[int, int], first, fallback) -> tuple[np.ndarray, np.ndarray]:
    """need[c] rows of each class c: first's rows of c in turn (repeated if short), or, where
    first holds none of c, fallback's."""
    xs, ys = [], []
    for c, n in sorted(need.items()):
        x, y = first if (first[1] == c).any() else fallback
        rows = np.flatnonzero(y == c)
        take = rows[np.arange(n) % len(rows)]
        xs.append(x[take])
        ys.append(y[take])
    return np.vstack(xs), np.concatenate(ys)


def _interleave(x, y):
    """Rows of each class alternating between the two halves stacked in x, so that the first
    n rows of a class hold both kinds."""
    order = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        k = len(rows) // 2
        a, b = rows[:k], rows[k:2 * k]
        order.append(np.column_stack([a, b]).ravel())
    idx = np.concatenate(order)
    return x[idx], y[idx]


def _sets(paths, scheme: dict, seed: int, only: set[str], n_full: float, classic,
          consistency: float, grid: Path | None = None):
    from augflow.checkpoints import load_cvae, load_extractor
    from augflow.data.schema import read_schema
    from augflow.data.transforms import classic_transform
    from augflow.evaluation.arms import classic_variants
    from augflow.stages.evaluate import arm_data

    schema = read_schema(paths.schema)
    shape = schema.image_shape
    assert shape is not None, "classic rows exist for images only"
    data, xt, yt = arm_data(paths, schema, scheme)
    xr, yr = data["real"]
    xk, yk = data["kept"]
    _, ya, _ = data["augmented"]
    # the added rows per class: the augmented set's, or when the filter kept nothing of a class
    # (then the augmented set adds nothing to it) what it would add with every sample kept
    full = int(round(n_full))
    A = {int(c): int((ya == c).sum() - (yr == c).sum()) or full for c in np.unique(yr)}
    xg, yg = data["generated"]
    xc, yc, _ = classic_variants(xr, yr, A, shape, seed, classic)
    rng = np.random.default_rng(seed + 7)
    model, _, _ = load_cvae(paths.checkpoint)
    model.eval()
    pools = {}
    # enough VAE rows per class for the largest swap: kept rows in turn (repeated if short);
    # a class the filter kept nothing of gets its unfiltered samples (counted in `unkept`)
    need = {c: int(round(0.75 * n)) for c, n in A.items()}
    xv, yv = _fill(need, (xk, yk), (xg, yg))
    unkept = [c for c in need if not (yk == c).any()]
    pools["vae"] = (xv, yv)
    pools["vaec"] = (classic_transform(xv, shape, classic, rng), yv)
    xi, yi = interpolations(model, xr, yr, need, rng)
    pools["interp"] = (xi, yi)
    pools["interpc"] = (classic_transform(xi, shape, classic, rng), yi)
    xs_, ys_ = interpolations(model, xr, yr, need, rng, across=True)
    pools["style"] = (xs_, ys_)
    pools["stylec"] = (classic_transform(xs_, shape, classic, rng), ys_)
    wanted = {v.split("_", 1)[1] for v in VARIANTS if v.startswith("swap") and (not only or v in only)}
    if wanted & {"stylef", "stylefc"}:   # the pools' last draws of rng: the others stay the same
        # the consistency check of the filter stage, on 3x the style rows needed: a style
        # carried across classes can carry the donor's class with it
        xs3, ys3 = interpolations(model, xr, yr, {c: 3 * n for c, n in need.items()}, rng,
                                  across=True)
        p = load_extractor(paths.extractor).proba(torch.from_numpy(xs3)).numpy()
        ok = p[np.arange(len(ys3)), ys3] >= consistency
        # a class none of whose rows passed: unfiltered
        pools["stylef"] = _fill(need, (xs3[ok], ys3[ok]), (xs3, ys3))
        pools["stylefc"] = (classic_transform(pools["stylef"][0], shape, classic, rng),
                            pools["stylef"][1])
        print(f"  stylef: {ok.mean():.0%} of style rows pass consistency >= {consistency:g}; "
              "per class " + " ".join(f"{(ok & (ys3 == c)).sum() / max((ys3 == c).sum(), 1):.0%}"
                                      for c in sorted(need)), flush=True)
    half = {c: n // 2 for c, n in need.items()}   # mix: the first halves of vae and interp
    xv1, yv1 = _take(*pools["vae"], half)
    xi1, yi1 = _take(xi, yi, half)
    pools["mix"] = _interleave(np.vstack([xv1, xi1]), np.concatenate([yv1, yi1]))
    if grid is not None:   # what each kind of row looks like: one PNG per kind, 10 per class
        from augflow.plots import sample_grid_png
        grid.mkdir(parents=True, exist_ok=True)
        for kind, (xk_, yk_) in {"real": (xr, yr), "classic": (xc, yc), **pools}.items():
            (grid / f"{kind}.png").write_bytes(sample_grid_png(xk_, yk_, shape, (0.0, 1.0)))
    out = {"real": (xr, yr, None), "classic": (np.vstack([xr, xc]), np.concatenate([yr, yc]), None)}
    out["augmented"] = ("augmented", None, None)   # per classifier, below
    for v in VARIANTS:
        if not v.startswith("swap") or (only and v not in only):
            continue
        frac, kind = int(v[4:6]) / 100, v.split("_", 1)[1]
        n_add = {c: int(round(frac * n)) for c, n in A.items()}
        x1, y1 = _take(xc, yc, {c: A[c] - n_add[c] for c in A})
        x2, y2 = _take(*pools[kind], n_add)
        out[v] = (np.vstack([xr, x1, x2]), np.concatenate([yr, y1, y2]), None)
    return out, data, xt, yt, shape, A, unkept


def main() -> int:
    from augflow.evaluation.classifiers import fit_weighted, make_classifier
    from augflow.evaluation.stats import arm_and_paired_cis
    from augflow.lowdata import _chain, draw_workspace
    from mix_sweep import source_cfg

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=("digits", "glyphs28", "shapes32"), default="digits")
    ap.add_argument("--level", type=int, default=5)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--classifiers", default="logreg,svm_rbf,random_forest,cnn")
    ap.add_argument("--only", default="", help="comma-separated swap variants (default: all)")
    ap.add_argument("--grid", type=Path, help="write the first draw's rows of each kind as PNGs here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    only = set(filter(None, args.only.split(",")))
    cfg, raw = source_cfg(args.set, "augflow-voc-")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(
        update={"labels_per_class": args.level})})
    clfs = args.classifiers.split(",")
    preds: dict[str, dict[str, list]] = {c: {} for c in clfs}
    yt = None
    for d in range(args.draws):
        t0 = time.time()
        with draw_workspace(raw, "augflow-voc-draw-") as paths:
            mix = _chain(cfg, paths, 1000 * (d + 1) + cfg.seed, clfs)["mix"]
            sets, data, xt, yt, shape, A, unkept = _sets(
                paths, mix["scheme"], 1000 * d + 11, only,
                cfg.generate.n_per_class * (1 + cfg.augment.classic_per_kept), cfg.classic,
                cfg.filter.consistency.value,   # the absolute threshold (the default kind)
                args.grid if d == 0 else None)
        t1 = time.time()
        for clf in clfs:
            for name, (x, y, w) in sets.items():
                if name == "augmented":
                    x, y, _ = data["augmented"]
                    w = data["augmented_weights"][mix["scheme"].get(clf, "share")]
                for s in range(args.seeds):
                    model = fit_weighted(make_classifier(clf, cfg.seed + 17 * d + s, None, shape),
                                         x, y, w)
                    preds[clf].setdefault(name, []).append(model.predict(xt))
        print(f"draw {d + 1}/{args.draws}: chain {t1 - t0:.0f} s, fits {time.time() - t1:.0f} s, "
              f"A per class {min(A.values())}-{max(A.values())}, classes nothing kept of "
              f"{unkept}, scale {mix['scale']:g}, "
              f"schemes {mix['scheme']}", flush=True)
    assert yt is not None
    print(f"\n{args.set}, {args.level} labels/class, {args.draws} draws x {args.seeds} seeds: "
          "test accuracy; gain vs the classic arm (paired 95% CI)")
    for clf, per in preds.items():
        p = {a: np.vstack(v) for a, v in per.items()}
        print(f"{clf}:")
        for a in p:
            arms, gain = arm_and_paired_cis(yt, {"classic": p["classic"], "x": p[a]},
                                            np.unique(yt), 1000, 0, treated="x")
            g = gain["classic"]["accuracy"]
            print(f"  {a:16s} {arms['x']['accuracy']['mean']:.3f}  "
                  f"{g['mean']:+.3f} [{g['ci_low']:+.3f}, {g['ci_high']:+.3f}]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
