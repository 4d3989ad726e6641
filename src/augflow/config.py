"""params.yaml -> typed, validated config. The one loader every stage uses."""

from __future__ import annotations

import re

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from augflow.errors import AugflowError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DASK_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+:\d{1,5}$")


def _dask_address(v: str | None) -> str | None:
    """An existing Dask scheduler: tcp://host:port (or tls://); null starts a local cluster."""
    if v is not None and not _DASK_ADDRESS.match(v):
        raise ValueError(f"{v!r} is not a Dask scheduler address: expected tcp://host:port")
    return v


def _address_needs_dask(runner: str, address: str | None, section: str) -> None:
    if address is not None and runner != "dask":
        raise ValueError(f"{section}.dask_address is set but {section}.runner is {runner!r}: "
                         f"set runner: dask to use the cluster")


BUILTIN_SOURCES = ("digits", "iris", "wine", "breast_cancer")
# The first run's labelled digits per class: where the low-data curve shows augmentation help
# (README); the full 1,437 are one key away (labels_per_class: null), and there it does not.
DEMO_LABELS_PER_CLASS = 10
FILE_SOURCES = ("csv", "parquet", "image_folder", "npz", "torchvision")
# The sets data.source torchvision reads (data.torchvision_dataset), in torchvision's on-disk layout
TORCHVISION_DATASETS = ("mnist", "fashion_mnist", "kmnist", "cifar10")


class ColumnRule(_Strict):
    """A declared rule for one column (data.columns): a numeric range or a categorical set.
    Declared rules are checked strictly on every split and fix the scaling range."""

    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ColumnRule:
        if self.categories is not None and (self.min is not None or self.max is not None):
            raise ValueError("a column is either numeric (min/max) or categorical (categories)")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self


class DataConfig(_Strict):
    source: Literal[BUILTIN_SOURCES + FILE_SOURCES] = "digits"  # type: ignore[valid-type]
    path: str | None = None             # file sources: a file or folder under data/raw/
    label_column: str = "label"         # csv/parquet: the column holding the class
    categorical: tuple[str, ...] = ()   # csv/parquet: columns read as categories (one-hot encoded)
    columns: dict[str, ColumnRule] = {}  # optional declared schema, per column
    image_size: tuple[int, int] | None = None   # image_folder: resize to (height, width)
    image_channels: Literal[1, 3] | None = None  # image_folder: convert to 1 (gray) or 3 (RGB)
    # torchvision: which set lives under data.path (its root folder, in torchvision's layout)
    torchvision_dataset: Literal[TORCHVISION_DATASETS] | None = None  # type: ignore[valid-type]
    # torchvision: fetch missing files with torchvision when online; false never touches the network
    download: bool = True
    test_size: float = Field(0.2, gt=0, lt=0.9)
    val_size: float = Field(0.15, gt=0, lt=0.9)
    # cap train rows per class (the low-data regime; val gets half as many). auto: the embedded
    # digits demo is capped at DEMO_LABELS_PER_CLASS, the job augflow exists for, and every
    # other source keeps all its rows; null: no cap on any source
    labels_per_class: int | Literal["auto"] | None = Field("auto")
    min_rows_per_class: int = Field(2, ge=1)

    @field_validator("labels_per_class")
    @classmethod
    def _cap_at_least_two(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) and v < 2:
            raise ValueError("must be at least 2 (or auto, or null for no cap)")
        return v

    @property
    def train_cap(self) -> int | None:
        """Train rows per class to keep (None: all), labels_per_class with auto resolved."""
        if self.labels_per_class == "auto":
            return DEMO_LABELS_PER_CLASS if self.source == "digits" else None
        return self.labels_per_class

    @model_validator(mode="after")
    def _path_matches_source(self) -> DataConfig:
        if self.source in FILE_SOURCES and not self.path:
            raise ValueError(f"source {self.source!r} reads a file: set data.path")
        if self.source in BUILTIN_SOURCES and self.path:
            raise ValueError(f"source {self.source!r} is built in and reads no file: "
                             "remove data.path or choose csv, parquet, image_folder, npz or "
                             "torchvision")
        if self.source == "torchvision" and self.torchvision_dataset is None:
            raise ValueError("source 'torchvision' needs data.torchvision_dataset: one of "
                             f"{', '.join(TORCHVISION_DATASETS)}")
        if self.source != "torchvision" and self.torchvision_dataset is not None:
            raise ValueError("data.torchvision_dataset is read by source 'torchvision' only: "
                             "remove it or set data.source: torchvision")
        if self.source == "torchvision" and (self.image_size or self.image_channels):
            # the sets have one size each (28x28 gray, 32x32 RGB): a resize would be ignored
            raise ValueError("data.image_size and data.image_channels apply to image_folder; "
                             "a torchvision set is read at its own size")
        if self.image_size is not None and min(self.image_size) < 4:
            raise ValueError("image_size must be at least 4x4")
        return self


# an optimizer-step budget: a number, auto (a default per architecture) or null (none)
Steps = Annotated[int, Field(ge=1)] | Literal["auto"] | None


class VAEConfig(_Strict):
    latent_dim: int = Field(16, ge=1, le=1024)
    hidden_dims: tuple[int, ...] = (256, 128)
    beta: float = Field(0.1, gt=0)
    lr: float = Field(1e-3, gt=0, le=1)
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(300, ge=1)
    patience: int = Field(20, ge=1)
    divergence_retries: int = Field(2, ge=0, le=10)   # retries after a NaN/inf loss
    lr_backoff: float = Field(0.3, gt=0, lt=1)        # lr multiplier for each retry
    resume_every: int = Field(10, ge=1)               # epochs between resumable states
    # auto: a convolutional CVAE for images of 28x28 and larger, else the MLP CVAE
    arch: Literal["auto", "mlp", "conv"] = "auto"
    conv_channels: tuple[int, ...] = (32, 64)
    # Images: the VAE trains on the real rows plus this many shifted/rotated copies of each
    # (the classic transforms), so it learns deformations 5 labels per class cannot show it.
    # Tables have no such transform and ignore it.
    train_copies: int = Field(10, ge=0, le=100)
    # An epoch is at most epoch_rows rows (a fresh random subset each epoch; null: every row),
    # and copies are only made to fill one: a large set gets fewer or none. Digits (1221 train
    # rows x 11) stays under it and trains as before. max_steps caps the optimizer steps in all
    # (null: max_epochs and patience alone decide; auto: 2000 for the conv VAE, none for the
    # MLP, augflow.models.arch.step_budget). README, "At scale".
    epoch_rows: int | None = Field(16384, ge=1)
    max_steps: Steps = "auto"
    # validation (early stopping) scores at most this many rows, a fixed random subset; null:
    # all. Digits' 216 validation rows are all scored; at 70,000 images 8,400 were each epoch.
    val_rows: int | None = Field(4096, ge=1)
    # the fit in this many processes of a torch.distributed group on this machine (gloo on the
    # CPU, NCCL with one GPU each); each takes its share of every batch. torchrun starts groups
    # that span machines (README, Beyond one machine)
    processes: int = Field(1, ge=1, le=64)


class GenerateConfig(_Strict):
    n_per_class: int = Field(200, ge=1)
    temperature: float = Field(2.0, gt=0, le=5)
    # local: around each real train row (its posterior, scaled by temperature), added to the
    #   real row as the decoder's change, so the row's detail survives;
    # class_fit: z from a Gaussian per class fitted to train posterior means; prior: N(0, T^2 I)
    latent: Literal["local", "class_fit", "prior"] = "local"
    # latent local, images: vary the real row itself (real) or a copy of it moved by the
    # classic transforms (classic), so a VAE row stacks both kinds of change. Not yet
    # measured against real (README); tables ignore it.
    parents: Literal["real", "classic"] = "real"
    # local | dask: one task per class on a Dask cluster (Prefect's DaskTaskRunner)
    runner: Literal["local", "dask"] = "local"
    dask_workers: int = Field(2, ge=1, le=64)   # the local cluster's processes (no address)
    # runner dask: an existing cluster's scheduler, tcp://host:port; null: a local cluster
    dask_address: str | None = None

    _check_address = field_validator("dask_address")(_dask_address)

    @model_validator(mode="after")
    def _address_with_dask(self) -> GenerateConfig:
        _address_needs_dask(self.runner, self.dask_address, "generate")
        return self


class ExtractorConfig(_Strict):
    hidden_dims: tuple[int, ...] = (128, 64)
    lr: float = Field(1e-3, gt=0, le=1)
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(200, ge=1)
    patience: int = Field(15, ge=1)
    # ... and at least this many steps since the best epoch: at 5 labels per class an epoch is
    # one step, and 15 steps left the extractor at chance on the letters (README)
    patience_steps: int = Field(1000, ge=0)
    # images: the extractor also trains on this many classic copies of each real train row (the
    # `classic` recipe, as vae.train_copies); a classifier of 50 images is a poor judge of samples
    train_copies: int = Field(10, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    # auto: a small CNN for images of 28x28 and larger, else an MLP
    arch: Literal["auto", "mlp", "cnn"] = "auto"
    conv_channels: tuple[int, ...] = (16, 32)
    epoch_rows: int | None = Field(16384, ge=1)   # as vae.epoch_rows and vae.max_steps
    max_steps: Steps = "auto"   # auto: 2000 for the CNN
    val_rows: int | None = Field(4096, ge=1)      # as vae.val_rows


class Threshold(_Strict):
    """A cut-off either relative to real validation data (a quantile of the same score) or absolute."""

    kind: Literal["quantile", "absolute"]
    value: float

    @model_validator(mode="after")
    def _quantile_in_range(self) -> Threshold:
        if self.kind == "quantile" and not 0.0 <= self.value <= 1.0:
            raise ValueError("a quantile threshold's value must be in [0, 1]")
        return self


class FidGate(_Strict):
    # A class whose synthetic-vs-train FID exceeds max_ratio times the real val-vs-train FID
    # of the same class is dropped whole (action=drop) or stops the stage (action=fail).
    max_ratio: float = Field(4.0, gt=0)
    action: Literal["drop", "fail"] = "drop"


class FilterConfig(_Strict):
    reconstruction: Threshold = Threshold(kind="quantile", value=0.95)
    consistency: Threshold = Threshold(kind="absolute", value=0.5)
    manifold: Threshold = Threshold(kind="quantile", value=0.95)
    # 0: exact copies only; local samples vary a real row by design (params.yaml says more)
    near_copy: Threshold = Threshold(kind="absolute", value=0.0)
    knn_k: int = Field(5, ge=1, le=100)
    fid_gate: FidGate = FidGate()
    chunk_rows: int = Field(2048, ge=16)


class ClassicConfig(_Strict):
    """The classic image transforms (augflow.data.transforms): what torchvision.transforms'
    RandomAffine and ElasticTransform give any image user for free. They make the classic arm,
    the classic rows of the augmented set and the VAE's training copies alike. Sizes are
    fractions of the image side, so one setting means the same at 8x8 and at 32x32. The
    defaults are a practitioner's usual MNIST recipe (rotation 15, translation 0.1, scale
    0.9-1.1, shear 10) with Simard et al.'s elastic setting (sigma 4 px, ~1.7 px rms at 28x28),
    not values tuned on any of augflow's sets."""

    rotation: float = Field(15.0, ge=0, le=180)            # degrees, uniform in [-r, r]
    translate: float = Field(0.1, ge=0, le=0.5)            # per axis, fraction of the side
    scale: tuple[float, float] = (0.9, 1.1)                # zoom, uniform in [lo, hi]
    shear: float = Field(10.0, ge=0, lt=90)                # degrees, uniform in [-s, s]
    elastic: float = Field(0.06, ge=0, le=0.5)             # rms displacement / side; 0: off
    elastic_smoothness: float = Field(0.14, gt=0, le=1)    # the field's Gaussian sigma / side
    # what fills pixels moved in from outside the image: zero (dark background: digits,
    # letters) | reflect (textures, photos) | nearest
    border: Literal["zero", "reflect", "nearest"] = "zero"

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 4:
            raise ValueError("must be [lo, hi] with 0 < lo <= hi <= 4")
        return v


class AugmentConfig(_Strict):
    """How much each source weighs in the augmented set, as a share of the real rows' weight:
    with share s, a source's rows together weigh s x (number of real rows); each real row
    weighs 1. `classic` (shifted/rotated real rows, images only) and `synthetic` (kept VAE
    rows) are the defaults; select: val scales both by each of `scales` and keeps the scale
    with the best mean validation accuracy of the evaluate classifiers, moving off 1 only for
    a gain larger than two standard errors of the paired difference. A chosen scale 0 means no amount
    helped on validation: synthetic rows then weigh 0 and the VAE is not promoted. For images,
    `schemes` adds count weights (real and classic rows 1, a VAE row synthetic_row_weight),
    given per classifier when they beat the shares on validation."""

    classic_share: float = Field(0.5, ge=0, le=10)
    synthetic_share: float = Field(0.25, ge=0, le=10)
    # None: classic_per_kept x the kept synthetic rows of the class, plus (replace_rejected)
    # 1 + classic_per_kept classic rows for each generated row of the class the filter rejected
    classic_per_class: int | None = Field(None, ge=0)
    classic_per_kept: float = Field(2.0, ge=0, le=20)
    replace_rejected: bool = True
    select: Literal["val", "fixed"] = "val"
    scales: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)
    # select=val, when no scale beats it on validation by two standard errors: shares (scale 1,
    # the configured shares) | none (scale 0: nothing added) | auto (images: shares; tables:
    # none, so a table gets added rows only when validation shows they help)
    fallback: Literal["auto", "shares", "none"] = "auto"
    # the weightings each classifier may be given (images; chosen per classifier on validation
    # when both): share -> the sample_weight column; count -> sample_weight_count: real and
    # classic rows weigh 1 each, a kept VAE row synthetic_row_weight. [count] alone: every
    # classifier gets count on images (validation decides only whether anything is added);
    # tables have no count weights and use share whatever this says
    schemes: tuple[Literal["share", "count"], ...] = ("share", "count")
    synthetic_row_weight: float = Field(0.25, gt=0, le=1)

    @model_validator(mode="after")
    def _scales_hold_one(self) -> AugmentConfig:
        if 1.0 not in self.scales or any(v < 0 for v in self.scales):
            raise ValueError("scales must be non-negative and include 1.0 (the shares as set)")
        if self.fallback != "shares" and self.select == "val" and 0.0 not in self.scales:
            raise ValueError("scales must include 0.0 unless fallback is shares (auto and none "
                             "fall back to nothing added on a table)")
        if not self.schemes or len(set(self.schemes)) != len(self.schemes):
            raise ValueError("schemes must name share, count or both, each once")
        return self


class EvaluateConfig(_Strict):
    classifiers: tuple[Literal["logreg", "svm_rbf", "random_forest", "mlp", "cnn"], ...] = (
        "logreg", "svm_rbf", "random_forest")
    arms: tuple[Literal["real", "augmented", "unfiltered", "synthetic_only", "smote",
                        "classic"], ...] = ("real", "augmented", "unfiltered", "synthetic_only",
                                            "smote", "classic")
    n_seeds: int = Field(5, ge=1, le=100)
    n_bootstrap: int = Field(1000, ge=100)
    # majority: promoted when the gain clears promote_min_gain for more than half of the
    # classifiers; or one classifier's name: promoted on that one alone
    promote_classifier: str = "majority"
    promote_min_gain: float = Field(0.0, ge=-1, le=1)
    runner: Literal["local", "dask"] = "local"   # dask: fits on a Dask cluster (prefect-dask)
    dask_workers: int = Field(2, ge=1, le=64)   # the local cluster's processes (no address)
    # runner dask: an existing cluster's scheduler, tcp://host:port; null: a local cluster
    dask_address: str | None = None

    _check_address = field_validator("dask_address")(_dask_address)
    # runner local: the scikit-learn fits run on this many threads at once (their fits release
    # the GIL); the numbers do not depend on it. Logistic regression (BLAS) and the torch mlp
    # fit one at a time (evaluation.classifiers.THREAD_SAFE_CLASSIFIERS).
    fit_threads: int = Field(2, ge=1, le=64)
    # More real train rows than this: augment's validation choice and every evaluate fit use a
    # stratified subsample of this many, with the added rows made from them
    # (augflow.evaluation.subsample); None: every row. The RBF SVM is quadratic in rows.
    max_real_rows: int | None = Field(2000, ge=20)
    # More test rows than this: the classifiers are scored on a fixed stratified subsample of
    # this many (drawn before any fit); None: every row. Predicting costs an RBF SVM as much as
    # fitting at 70,000 images; 4000 rows leave a 95% CI of about +-0.01 on an accuracy.
    max_test_rows: int | None = Field(4000, ge=20)

    @model_validator(mode="after")
    def _known_promotion_classifier(self) -> EvaluateConfig:
        if self.promote_classifier != "majority" and self.promote_classifier not in self.classifiers:
            raise ValueError(f"promote_classifier {self.promote_classifier!r} is neither "
                             f"'majority' nor one of classifiers {list(self.classifiers)}")
        if "real" not in self.arms or "augmented" not in self.arms:
            raise ValueError("arms must include 'real' and 'augmented' (the gain compares them)")
        _address_needs_dask(self.runner, self.dask_address, "evaluate")
        return self


class TrackingConfig(_Strict):
    uri: str = "sqlite:///mlflow/mlflow.db"
    artifact_dir: str = "mlflow/artifacts"
    experiment: str = "augflow"
    registered_model: str = "augflow-cvae"
    # A SQLite store is locked while another process writes to it (a second run, `mlflow ui`
    # writing): the whole track step is retried this many times, waiting lock_wait_s, 2x, 4x ...
    lock_retries: int = Field(3, ge=0, le=10)
    lock_wait_s: float = Field(2.0, ge=0, le=60)


class Config(_Strict):
    seed: int = Field(0, ge=0)
    # where the VAE, the feature extractor and the torch classifiers run; auto: CUDA, then MPS,
    # then the CPU (augflow.device). Only the CPU is byte-for-byte reproducible (README).
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    data: DataConfig = DataConfig()
    vae: VAEConfig = VAEConfig()
    generate: GenerateConfig = GenerateConfig()
    extractor: ExtractorConfig = ExtractorConfig()
    filter: FilterConfig = FilterConfig()
    classic: ClassicConfig = ClassicConfig()
    augment: AugmentConfig = AugmentConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    tracking: TrackingConfig = TrackingConfig()


def _describe(err: ValidationError, file: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{file}: {key}: {msg}")
    return "\n".join(lines)


def config_from_dict(raw: dict, file: str = "params.yaml") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise AugflowError(_describe(err, file), file=None, rule="params") from None


def load_config(path: str | Path = "params.yaml") -> Config:
    path = Path(path)
    if not path.is_file():
        raise AugflowError("params file not found", file=str(path), rule="exists")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        # PyYAML's message spans lines and ends with a caret: keep one line, with the position
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(str(getattr(err, "problem", None) or err).split())
        raise AugflowError(f"not valid YAML{where}: {what}", file=str(path), rule="yaml") from None
    if not isinstance(raw, dict):
        raise AugflowError("top level must be a mapping of keys", file=str(path), rule="yaml")
    return config_from_dict(raw, str(path))
