"""Downstream classifiers, built by name. Each has fit(x, y) and predict(x) on [0,1]-scaled rows."""

from __future__ import annotations

import numpy as np
import torch

from augflow.errors import AugflowError


class TorchNet:
    """A small torch network with a fixed budget (no early stopping: there is no extra labelled
    data to stop on without touching test). The MLP
    trains `epochs` passes; the CNN (`arch="cnn"`, images only) trains `max_steps` batches
    whatever the arm's size, so every arm gets the same compute: at 50 real rows that is
    hundreds of passes, at 3,000 augmented rows about twenty. `device`: where it trains (None:
    the CPU); the rows stay on the CPU and each batch moves, the shuffle stays on a CPU
    generator."""

    def __init__(self, seed: int, hidden=(128, 64), epochs: int = 60, lr: float = 2e-3,
                 batch_size: int = 64, weight_decay: float = 1e-4,
                 device: torch.device | None = None, arch: str = "mlp",
                 image_shape: tuple[int, int, int] | None = None, max_steps: int | None = None
                 ) -> None:
        self.seed, self.hidden, self.epochs = seed, hidden, epochs
        self.lr, self.batch_size, self.weight_decay = lr, batch_size, weight_decay
        self.device, self.arch, self.image_shape, self.max_steps = device, arch, image_shape, max_steps

    def _build(self, n_features: int, n_classes: int):
        if self.arch == "cnn":
            from augflow.models.conv import CNNClassifier
            assert self.image_shape is not None   # make_classifier refuses a cnn on a table
            return CNNClassifier(self.image_shape, n_classes)
        from augflow.models.classifier import MLPClassifier
        return MLPClassifier(n_features, n_classes, self.hidden)

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
            ) -> TorchNet:
        import torch.nn.functional as F

        self.classes_ = np.unique(y)
        yi = torch.from_numpy(np.searchsorted(self.classes_, y).astype(np.int64))
        xt = torch.from_numpy(np.asarray(x, dtype=np.float32))
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, np.float64)
        wt = torch.from_numpy((w / w.mean()).astype(np.float32))   # mean 1: the lr means the same
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        self.model_ = self._build(x.shape[1], len(self.classes_))
        dev = self.device if self.device is not None else torch.device("cpu")
        self.model_.to(dev)   # before the optimizer: Adam's state follows the weights
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.model_.train()
        steps, epoch = 0, 0
        # (no rows: no batch would ever count a step)
        while len(xt) and ((epoch < self.epochs) if self.max_steps is None
                           else (steps < self.max_steps)):
            order = torch.randperm(len(xt), generator=gen)
            for s in range(0, len(xt), self.batch_size):
                if self.max_steps is not None and steps == self.max_steps:
                    break
                idx = order[s:s + self.batch_size]
                per_row = F.cross_entropy(self.model_(xt[idx].to(dev)), yi[idx].to(dev),
                                          reduction="none")
                loss = (per_row * wt[idx].to(dev)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
            epoch += 1
        self.model_.eval()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        # proba moves the rows to the model's device and returns CPU probabilities
        p = self.model_.proba(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return self.classes_[p.argmax(1).numpy()]


CLASSIFIERS = ("logreg", "svm_rbf", "random_forest", "mlp", "cnn")
# The cnn's fixed budget in batches of 64, the same for every arm: 64,000 rows seen, ~25 s on
# one CPU thread at 28x28 (2.5 s per 100 batches measured here). Set for cost, not tuned on any
# set: at 10 labels per class the real arm sees its rows ~640 times, an augmented arm of ~3,000
# rows ~20 times.
CNN_STEPS = 1000

# Classifiers whose fit ignores the seed: lbfgs logistic regression is deterministic, and
# SVC uses random_state only for probability estimates (off here). The forest and the MLP
# draw with it.
SEED_FREE_CLASSIFIERS = frozenset({"logreg", "svm_rbf"})


# Classifiers whose fits may run side by side on threads with the same numbers: libsvm and the
# forest's trees compute in their own code. Logistic regression is left out: its lbfgs steps
# are BLAS products, and two at once in OpenBLAS's shared thread pool changed one digits
# prediction (logreg, classic arm, 0.868889 -> 0.868333 through the CLI). The torch mlp seeds
# its weights through torch's global generator, which threads would share; so does the cnn.
THREAD_SAFE_CLASSIFIERS = frozenset({"svm_rbf", "random_forest"})


def fit_threads_for(classifiers, threads: int) -> int:
    """How many of these classifiers' fits may run at once on threads: `threads` when every one
    is in THREAD_SAFE_CLASSIFIERS, else one."""
    return threads if set(classifiers) <= THREAD_SAFE_CLASSIFIERS else 1


def fit_weighted(model, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None):
    """model.fit with per-row weights; in a scikit-learn pipeline they go to the final
    estimator (the scaler is fitted on the rows unweighted). Rows of weight 0 are left out
    before the fit: a weight-0 row still moved the pipeline's scaler and the forest's bootstrap
    draws, so "nothing added" cost the RBF SVM 1.2 points on the bench table at 5 labels per
    class. What is left weighing exactly 1 each is fitted unweighted, as the real arm is: the
    forest draws its bootstrap differently when given weights, even all ones."""
    if sample_weight is not None:
        keep = np.asarray(sample_weight) > 0
        if not keep.all():
            x, y, sample_weight = x[keep], y[keep], np.asarray(sample_weight)[keep]
        if np.all(sample_weight == 1):
            sample_weight = None
    if sample_weight is None:
        return model.fit(x, y)
    if hasattr(model, "steps"):
        return model.fit(x, y, **{f"{model.steps[-1][0]}__sample_weight": sample_weight})
    return model.fit(x, y, sample_weight=sample_weight)


def make_classifier(name: str, seed: int, device: torch.device | None = None,
                    image_shape: tuple[int, int, int] | None = None):
    """A fresh classifier by name; `device` reaches the torch ones (mlp, cnn), scikit-learn's
    run on the CPU; `image_shape` (h, w, c) is the data's, which the cnn needs."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.5,
                                                                  random_state=seed))
    if name == "svm_rbf":
        return make_pipeline(StandardScaler(), SVC(C=10.0, gamma="scale", random_state=seed))
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    if name == "mlp":
        return TorchNet(seed, device=device)
    if name == "cnn":
        if image_shape is None:
            raise AugflowError("cnn needs image data; this source is a table", file="params.yaml",
                               field="evaluate.classifiers", rule="cnn needs images")
        h, w, c = image_shape
        return TorchNet(seed, device=device, arch="cnn", image_shape=(h, w, c),
                        max_steps=CNN_STEPS)
    raise AugflowError(f"unknown classifier {name!r}", field="evaluate.classifiers",
                       rule="one of " + ", ".join(CLASSIFIERS))
