"""torchvision's sets as a source: MNIST, FashionMNIST, KMNIST or CIFAR-10 from a root folder in
torchvision's own on-disk layout, downloaded by torchvision when files are missing and
data.download allows it.

The files are read here, not through torchvision's dataset classes, for three reasons:
- CIFAR-10: torchvision checks each batch file's md5 against the published files, so it reads
  the complete original set only; a hand-made or test file in the same format is refused.
- torchvision 0.28 from PyPI is a CUDA build; beside the CPU build of torch 2.13 this project
  installs it fails to import ("operator torchvision::nms does not exist"). Reading local files
  must not depend on it (and it takes seconds to import).
- The format is small and documented: IDX files (MNIST family) and python-pickled batches
  (CIFAR-10), and reading them here keeps the bytes -> rows step in one place we test.
torchvision is imported only to download, inside `_download`.

Both of torchvision's splits are read and concatenated (train rows first): prepare draws its own
stratified, seeded train/val/test split from all rows, as for every other source, so
torchvision's fixed test split is not kept apart (README, "Bring your own data")."""

from __future__ import annotations

import codecs
import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from augflow.data.raw import RawData, pixel_columns
from augflow.errors import AugflowError

RULE = "dataset files present"


@dataclass(frozen=True)
class TorchvisionSet:
    torchvision_class: str       # the torchvision.datasets class that downloads it
    folder: str                  # torchvision's folder under the root that holds the files
    files: tuple[str, ...]       # the files read, in order: train split first, then test
    classes: tuple[str, ...] = ()   # MNIST family: torchvision's `.classes`; CIFAR: batches.meta
    meta: str | None = None      # CIFAR: the file holding the class names

    @property
    def idx(self) -> bool:
        return self.meta is None


def _mnist_like(cls: str, classes: tuple[str, ...]) -> TorchvisionSet:
    # MNIST._check_exists in torchvision 0.28: the four uncompressed files in <root>/<Class>/raw/
    files = tuple(f"{split}-{kind}-ubyte" for split in ("train", "t10k")
                  for kind in ("images-idx3", "labels-idx1"))
    return TorchvisionSet(cls, f"{cls}/raw", files, classes)


# Class names as torchvision 0.28 defines them (tests/unit/test_torchvision_source.py checks them
# against the installed torchvision's source without importing it).
SETS: dict[str, TorchvisionSet] = {
    "mnist": _mnist_like("MNIST", ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
                                   "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine")),
    "fashion_mnist": _mnist_like("FashionMNIST", ("T-shirt/top", "Trouser", "Pullover", "Dress",
                                                  "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                                                  "Ankle boot")),
    "kmnist": _mnist_like("KMNIST", ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")),
    "cifar10": TorchvisionSet("CIFAR10", "cifar-10-batches-py",
                              tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
                              meta="batches.meta"),
}


def _needed(spec: TorchvisionSet) -> tuple[str, ...]:
    return spec.files + ((spec.meta,) if spec.meta else ())


def _present(path: Path, idx: bool) -> bool:
    # IDX files may also be the compressed originals from the dataset's site (name + .gz)
    return path.is_file() or (idx and path.with_name(path.name + ".gz").is_file())


def missing_files(root: Path, spec: TorchvisionSet) -> list[Path]:
    base = root / spec.folder
    return [base / f for f in _needed(spec) if not _present(base / f, spec.idx)]


def where_to_put(root: Path, spec: TorchvisionSet) -> str:
    if spec.idx:
        return (f"{root / spec.folder}/ holding {', '.join(spec.files)} (or those names + .gz as "
                "published)")
    return (f"{root / spec.folder}/ holding {', '.join(_needed(spec))} (cifar-10-python.tar.gz "
            f"extracted into {root}/)")


def _missing_error(root: Path, spec: TorchvisionSet, missing: list[Path], why: str) -> AugflowError:
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    return AugflowError(f"{spec.torchvision_class} files not found ({missing[0]}{more}); {why}; "
                        f"put torchvision's files at {where_to_put(root, spec)}",
                        file=str(root), field="data.path", rule=RULE)


def _download(root: Path, spec: TorchvisionSet, missing: list[Path]) -> None:
    """Let torchvision fetch the set into `root` (its own layout, its md5 checks). Any failure,
    offline or otherwise, becomes one error that says where the files go."""
    try:
        import torchvision.datasets as tvd
    except Exception as err:   # ImportError, or the RuntimeError of a build for another torch
        raise _missing_error(root, spec, missing, "torchvision, which downloads them, cannot be "
                             f"imported ({type(err).__name__}: {_first_line(err)})") from None
    root.mkdir(parents=True, exist_ok=True)
    try:
        # train=True fetches every file: MNIST's list holds both splits, CIFAR's archive too
        getattr(tvd, spec.torchvision_class)(str(root), train=True, download=True)
    except Exception as err:   # URLError offline; MNIST raises RuntimeError once every mirror failed
        # MNIST's message lists each mirror's error on its own lines: keep them all, on one line
        said = " ".join(str(err).split()[:60])
        raise _missing_error(root, spec, missing, "downloading them failed, is this machine "
                             f"offline? ({type(err).__name__}: {said})") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else ""


def _bytes(path: Path) -> bytes:
    if path.is_file():
        return path.read_bytes()
    try:
        with gzip.open(path.with_name(path.name + ".gz"), "rb") as f:
            return f.read()
    except (OSError, EOFError) as err:
        raise AugflowError(f"cannot decompress ({type(err).__name__}: {_first_line(err)})",
                           file=str(path) + ".gz", rule="gzip") from None


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: magic 0x0000 08 <ndim>, then ndim big-endian uint32 sizes,
    then the bytes in row-major order (the MNIST format, as torchvision's reader takes it)."""
    data = _bytes(path)
    head = 4 + 4 * ndim
    if len(data) < head or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise AugflowError(f"not an IDX file of unsigned bytes with {ndim} dimensions (header "
                           f"{data[:4].hex() or 'empty'}, expected 000008{ndim:02x})",
                           file=str(path), rule="idx format")
    dims = struct.unpack(f">{ndim}I", data[4:head])
    body = np.frombuffer(data, dtype=np.uint8, offset=head)
    if body.size != int(np.prod(dims)):
        raise AugflowError(f"the header says {'x'.join(map(str, dims))} ({int(np.prod(dims))} "
                           f"bytes) but the file holds {body.size}; truncated or corrupt?",
                           file=str(path), rule="idx size")
    return body.reshape(dims)


def _read_mnist_like(base: Path, spec: TorchvisionSet) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images, labels, rows = [], [], []
    for img_name, lab_name in zip(spec.files[::2], spec.files[1::2]):
        x, y = read_idx(base / img_name, 3), read_idx(base / lab_name, 1)
        if len(x) != len(y):
            raise AugflowError(f"{len(y)} labels for the {len(x)} images of {img_name}",
                               file=str(base / lab_name), rule="one label per image")
        _check_labels(y, len(spec.classes), base / lab_name)
        images.append(x[..., None])
        labels.append(y.astype(np.int64))
        rows += [f"{base / img_name} [index {i}]" for i in range(len(x))]
    _check_one_size(images, [base / f for f in spec.files[::2]])
    return np.concatenate(images), np.concatenate(labels), rows


def _check_labels(y: np.ndarray, n_classes: int, path: Path) -> None:
    bad = np.flatnonzero((y < 0) | (y >= n_classes))
    if len(bad):
        raise AugflowError(f"label {int(y[bad[0]])} at index {int(bad[0])} is not a class index "
                           f"0..{n_classes - 1}", file=str(path), rule="known class")


def _check_one_size(images: list[np.ndarray], files: list[Path]) -> None:
    for x, f in zip(images[1:], files[1:]):
        if x.shape[1:] != images[0].shape[1:]:
            raise AugflowError(f"images of {x.shape[1:]} differ from {images[0].shape[1:]} in "
                               f"{files[0]}", file=str(f), rule="one size for all images")


# CIFAR's batches are Python pickles. Only what they hold may be built: dicts, lists and strings
# (no globals needed) and numpy uint8 arrays (these four globals, the set numpy's own array
# pickles use). Any other global is refused, so a crafted file cannot run code.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
            ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
            # Python 3 writes bytes into a protocol-2 pickle as _codecs.encode(text, "latin1")
            ("_codecs", "encode"): codecs.encode}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch") from None


def _unpickle(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            # latin1: the published batches were pickled by Python 2 (as torchvision reads them)
            obj = _ArraysOnly(f, encoding="latin1").load()
    except Exception as err:   # unpickling raises many types on a corrupt file
        raise AugflowError(f"cannot read as a CIFAR python batch ({type(err).__name__}: "
                           f"{_first_line(err)})", file=str(path), rule="cifar batch") from None
    if not isinstance(obj, dict):
        raise AugflowError(f"holds a {type(obj).__name__}, expected a dict", file=str(path),
                           rule="cifar batch")
    # keys are str in the published files (Python 2 str read as latin1), bytes if written so
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _text(v: object) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _read_cifar(base: Path, spec: TorchvisionSet) -> tuple[np.ndarray, np.ndarray, list[str],
                                                           tuple[str, ...]]:
    assert spec.meta is not None
    meta = _unpickle(base / spec.meta)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) < 2:
        raise AugflowError("expected a list 'label_names' of the class names", file=str(base / spec.meta),
                           field="label_names", rule="cifar batch")
    classes = tuple(_text(n) for n in names)
    images, labels, rows = [], [], []
    for name in spec.files:
        path = base / name
        batch = _unpickle(path)
        x, y = batch.get("data"), batch.get("labels")
        # documented format: data is N x 3072 uint8, each row the red, green then blue 32x32
        # plane in row-major order; labels is a list of N class indices
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072:
            shown = f"{x.dtype} {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
            raise AugflowError(f"'data' is {shown}, expected a uint8 array of N x 3072 (3x32x32)",
                               file=str(path), field="data", rule="cifar batch")
        y_arr = np.asarray(y) if isinstance(y, (list, np.ndarray)) else np.empty(0)
        if y_arr.dtype.kind not in "iu" or y_arr.shape != (len(x),):
            raise AugflowError(f"expected 'labels' as {len(x)} class indices, one per row of "
                               "'data'", file=str(path), field="labels", rule="one label per image")
        _check_labels(y_arr, len(classes), path)
        images.append(x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))   # -> channel-last rows
        labels.append(y_arr.astype(np.int64))
        rows += [f"{path} [index {i}]" for i in range(len(x))]
    return np.concatenate(images), np.concatenate(labels), rows, classes


def read_torchvision_set(root: Path, name: str, download: bool) -> RawData:
    """The set `name` under `root` (torchvision's layout), both splits, as image rows with the
    set's class names as labels. Missing files are downloaded with torchvision when `download`
    is true; when that fails (offline) or is off, the error says where the files go."""
    spec = SETS[name]
    if root.exists() and not root.is_dir():
        raise AugflowError("expected a folder (torchvision's root, holding "
                           f"{spec.folder}/)", file=str(root), field="data.path", rule="folder")
    missing = missing_files(root, spec)
    if missing:
        if not download:
            raise _missing_error(root, spec, missing, "data.download is false, so nothing is fetched")
        _download(root, spec, missing)
        missing = missing_files(root, spec)
        if missing:
            raise _missing_error(root, spec, missing, "torchvision's download did not write them")
    base = root / spec.folder
    if spec.idx:
        images, y, rows = _read_mnist_like(base, spec)
        classes = spec.classes
    else:
        images, y, rows, classes = _read_cifar(base, spec)
    n, h, w, c = images.shape
    frame = pd.DataFrame(images.reshape(n, -1).astype(np.float32), columns=pixel_columns(h, w, c))
    return RawData(frame=frame, labels=np.asarray(classes)[y], label_column="label", kind="image",
                   image_shape=(h, w, c), pixel_range=(0.0, 255.0), origin=f"torchvision:{name}",
                   row_files=tuple(rows))
