"""Figures as PNG bytes. Callers decide where they go (DVC plots, MLflow artifacts)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # No software/date metadata: the same figure gives the same bytes on a rerun.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def sample_grid_png(x: np.ndarray, y: np.ndarray, image_shape: tuple[int, int, int],
                    value_range: tuple[float, float], per_class: int = 10, names=None) -> bytes:
    classes = sorted(set(int(c) for c in y))
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.6, len(classes) * 0.6))
    axes = np.atleast_2d(axes)
    for r, c in enumerate(classes):
        rows = x[y == c][:per_class]
        for k in range(per_class):
            ax = axes[r, k]
            ax.axis("off")
            if k < len(rows) and image_shape[-1] == 1:
                ax.imshow(rows[k].reshape(image_shape[:2]), cmap="gray_r", vmin=value_range[0],
                          vmax=value_range[1], interpolation="nearest")
            elif k < len(rows):   # RGB, channel-last rows
                lo, hi = value_range
                ax.imshow(np.clip((rows[k].reshape(image_shape) - lo) / (hi - lo), 0, 1),
                          interpolation="nearest")
        axes[r, 0].text(-0.35, 0.5, str(names[c] if names else c), transform=axes[r, 0].transAxes, fontsize=8,
                        ha="right", va="center")
    fig.suptitle("generated samples, one row per class", fontsize=8)
    return _png(fig)


def table_samples_png(df: pd.DataFrame, y: np.ndarray, numeric: list[str],
                      categorical: list[str], names: list, max_panels: int = 8) -> bytes:
    """Generated table rows in the user's units: per feature, one box per class (numeric) or
    the category shares per class (categorical). The first `max_panels` features."""
    cols = [c for c in df.columns if c in numeric or c in categorical][:max_panels]
    classes = sorted(set(int(c) for c in y))
    ncol = min(4, len(cols))
    nrow = -(-len(cols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 2.4 * nrow), squeeze=False)
    labels = [str(names[c]) for c in classes]
    for ax, col in zip(axes.ravel(), cols):
        if col in numeric:
            ax.boxplot([df[col].to_numpy()[y == c] for c in classes], showfliers=False)
            ax.set_xticks(range(1, len(classes) + 1), labels, fontsize=7, rotation=30)
        else:
            shares = pd.crosstab(y, df[col], normalize="index").reindex(classes)
            bottom = np.zeros(len(classes))
            for cat in shares.columns:
                ax.bar(range(len(classes)), shares[cat], bottom=bottom, label=str(cat))
                bottom += shares[cat].to_numpy()
            ax.set_xticks(range(len(classes)), labels, fontsize=7, rotation=30)
            ax.legend(fontsize=6)
        ax.set_title(col, fontsize=8)
    for ax in axes.ravel()[len(cols):]:
        ax.axis("off")
    fig.suptitle("generated rows per class (user units)", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def loss_curve_png(curve: pd.DataFrame, copies: int = 0) -> bytes:
    """The VAE's loss per epoch (what `dvc plots show` draws from the CSV with Vega, which needs
    scripts from a CDN: this PNG is the same curve offline). `copies`: the classic copies of
    each real row the VAE trained on, which the title names: they are most of the train rows and
    harder to reconstruct than real ones, so validation (real rows only) sits below train (on
    digits at 10 per class: copies 22.0, real train rows 17.5, validation 19.2 at the best epoch)."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(curve["epoch"], curve["train_loss"], label="train")
    ax.plot(curve["epoch"], curve["val_loss"], label="validation")
    best = curve["val_loss"].idxmin()
    ax.axvline(curve.loc[best, "epoch"], color="grey", ls="--", lw=0.8,
               label=f"best epoch {int(curve.loc[best, 'epoch'])}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO (beta-weighted)")
    title = "CVAE loss per epoch"
    if copies:
        title += (f"\ntrain: real rows + {copies} classic copies of each (harder to reconstruct);"
                  "\nvalidation: real rows only")
    ax.set_title(title, fontsize=8)
    ax.legend()
    fig.tight_layout()
    return _png(fig)


def score_histograms_png(scores: pd.DataFrame, thresholds: dict[str, tuple[float, str]]) -> bytes:
    """One panel per score; the threshold is a vertical line, the kept side named in the title."""
    names = list(thresholds)
    # two columns: legible at the ~650 px an artifact viewer gives a figure
    cols = min(2, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows + 0.4), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names):
        value, keep_side = thresholds[name]
        data = scores[name].to_numpy(dtype=float)
        data = data[np.isfinite(data)]
        ax.hist(data, bins=40, color="tab:blue", alpha=0.8)
        # log counts: a score most samples share (consistency near 1) is one tall bin, and the
        # few rows near the threshold, which are the point of the figure, would be invisible
        ax.set_yscale("log")
        ax.set_ylabel("samples (log scale)", fontsize=7)
        ax.axvline(value, color="red", lw=1.2)
        ax.set_title(f"{name}\nkeep {keep_side} {value:.3g}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle("Filter scores of the generated samples; red line: threshold", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def arms_png(table: pd.DataFrame, metric: str, notes: dict[str, str] | None = None) -> bytes:
    """Mean and 95% CI of `metric` per arm, one panel per classifier, a dashed line at the real
    arm's mean (what every other arm is compared with) and the augmented arm in its own colour.
    `notes`: a line per classifier for its panel title (the gain over real, say)."""
    clfs = list(dict.fromkeys(table["classifier"]))
    # one row per classifier, one shared accuracy axis: panels compare at a glance
    fig, axes = plt.subplots(len(clfs), 1, figsize=(7.0, 2.2 * len(clfs) + 1.4), squeeze=False,
                             sharex=True, sharey=True)
    for ax, clf in zip(axes[:, 0], clfs):
        t = table[table["classifier"] == clf].reset_index(drop=True)
        pos = np.arange(len(t))
        err = np.vstack([t["mean"] - t["ci_low"], t["ci_high"] - t["mean"]])
        colours = ["tab:red" if a == "augmented" else "tab:blue" for a in t["arm"]]
        for i in pos:
            ax.errorbar(pos[i], t["mean"][i], yerr=err[:, i:i + 1], fmt="o", capsize=3,
                        color=colours[i])
        real = t.loc[t["arm"] == "real", "mean"]
        if len(real):
            ax.axhline(float(real.iloc[0]), color="grey", ls="--", lw=0.8)
            ax.text(len(t) - 0.5, float(real.iloc[0]), " real", fontsize=7, va="center",
                    color="grey")
        ax.set_xticks(pos, t["arm"], rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(f"test {metric}", fontsize=8)
        ax.set_title((notes or {}).get(clf, clf), fontsize=8, loc="left")
        ax.grid(axis="y", alpha=0.3)
    axes[-1, 0].set_xlabel("arm (the rows the classifier was trained on)", fontsize=8)
    # the bars are each arm's own CI and overlap even where the paired gain (same seeds, same
    # test rows) clears zero: the figure says which one decides
    fig.suptitle(f"Test {metric} per arm: means over seeds, bars each arm's 95% bootstrap CI, "
                 "dashed line: real rows alone.\nThe verdict is the paired gain in each panel's "
                 "title (same seeds and test rows),\nnot whether the bars overlap", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def lowdata_png(result: dict) -> bytes:
    """Gain (augmented - real) with its 95% CI against labels per class, one line per classifier."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    levels = result["levels"]
    pos = np.arange(len(levels))
    for i, (clf, per_level) in enumerate(result["classifiers"].items()):
        g = [per_level[l]["gain"] for l in levels]
        mean = np.array([x["mean"] for x in g])
        err = np.vstack([mean - [x["ci_low"] for x in g], [x["ci_high"] for x in g] - mean])
        offset = 0.08 * (i - (len(result["classifiers"]) - 1) / 2)   # side by side, centred
        ax.errorbar(pos + offset, mean, yerr=err, fmt="o-", capsize=3, label=clf)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(pos, levels)
    # Half a level of margin each side: with one level, matplotlib's autoscale spread the
    # classifiers' small offsets across the whole axis, as if each sat at its own level.
    ax.set_xlim(-0.5, len(levels) - 0.5)
    ax.set_xlabel("labelled rows per class")
    ax.set_ylabel("accuracy gain (augmented - real)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)
