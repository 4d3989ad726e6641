"""augflow.data.torchvision_sets: MNIST, FashionMNIST, KMNIST and CIFAR-10 read from tiny files
this test writes in torchvision's own on-disk layout. Nothing here touches the network: the
tests set data.download false, or put a stand-in torchvision in sys.modules."""

from __future__ import annotations

import ast
import gzip
import importlib.util
import os
import pickle
import struct
import sys
import types
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from augflow.config import TORCHVISION_DATASETS, DataConfig
from augflow.data.raw import pixel_columns
from augflow.data.sources import RAW_DIR, load_source
from augflow.data.torchvision_sets import RULE, SETS, read_idx
from augflow.errors import AugflowError

MNIST_LIKE = ("mnist", "fashion_mnist", "kmnist")
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def _cfg(name: str, path: str = "data/raw/tv", download: bool = False) -> DataConfig:
    return DataConfig(source="torchvision", path=path, torchvision_dataset=name, download=download)


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / RAW_DIR).mkdir(parents=True)
    return tmp_path


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """An IDX file as published: magic 0x0000 08 <ndim> (unsigned bytes), big-endian uint32 sizes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _mnist_files(root: Path, name: str, n_train: int = 6, n_test: int = 4, compress: bool = False,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """train-* then t10k-* under <root>/<Class>/raw/; returns all images (train first) and labels."""
    rng = np.random.default_rng(seed)
    raw = root / SETS[name].folder
    images, labels = [], []
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) * 3 + len(split)) % 10
        _write_idx(raw / f"{split}-images-idx3-ubyte", x, compress)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", y, compress)
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels)


def _cifar_files(root: Path, per_batch: int = 2, bytes_keys: bool = False,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """data_batch_1..5, test_batch and batches.meta under <root>/cifar-10-batches-py/, each a
    pickled dict: data = N x 3072 uint8 (red, green, blue planes, row-major), labels = N ints.
    Returns the images as N x 32 x 32 x 3 (channel-last) and the labels."""
    rng = np.random.default_rng(seed)
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    images, labels = [], []
    for i, name in enumerate([f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]):
        planes = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        y = [(i * per_batch + j) % 10 for j in range(per_batch)]
        batch = {key("batch_label"): f"batch {i}", key("labels"): y,
                 key("data"): planes.reshape(per_batch, 3072),
                 key("filenames"): [f"img_{i}_{j}.png" for j in range(per_batch)]}
        (base / name).write_bytes(pickle.dumps(batch, protocol=2))
        images.append(planes.transpose(0, 2, 3, 1))
        labels += y
    meta = {key("num_cases_per_batch"): per_batch, key("num_vis"): 3072,
            key("label_names"): [n.encode() if bytes_keys else n for n in CIFAR_NAMES]}
    (base / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return np.concatenate(images), np.asarray(labels)


def _py2_batch(data: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled as the published CIFAR files are (Python 2 cPickle, protocol 2): str keys
    and the array's bytes as Python 2 str (BINSTRING), numpy.core's _reconstruct."""
    def s(text: bytes) -> bytes:
        return b"U" + bytes([len(text)]) + text                         # SHORT_BINSTRING
    raw = data.tobytes()
    n, d = data.shape
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") +
             b"\x87R(K\x01K" + bytes([n]) + b"M" + struct.pack("<H", d) + b"\x86" +
             b"cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R" +
             b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb" +
             b"\x89T" + struct.pack("<I", len(raw)) + raw + b"tb")
    items = b"".join(b"K" + bytes([v]) for v in labels)
    return (b"\x80\x02}(" + s(b"data") + array + s(b"labels") + b"](" + items + b"e" + b"u.")


def _error(cfg: DataConfig, root: Path) -> AugflowError:
    with pytest.raises(AugflowError) as info:
        load_source(cfg, root)
    return info.value


# --- the layout and names are torchvision 0.28's ---------------------------------------------

def _torchvision_source(module: str) -> ast.Module:
    spec = importlib.util.find_spec("torchvision")     # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("torchvision is not installed")
    folder = Path(list(spec.submodule_search_locations)[0])
    return ast.parse((folder / "datasets" / f"{module}.py").read_text())


def _class_attrs(tree: ast.Module, cls: str) -> dict[str, object]:
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    out = {}
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name):
            try:
                out[stmt.targets[0].id] = ast.literal_eval(stmt.value)
            except ValueError:
                pass
    return out


def test_the_config_and_the_reader_know_the_same_sets():
    assert tuple(SETS) == TORCHVISION_DATASETS


@pytest.mark.parametrize("name", MNIST_LIKE)
def test_mnist_family_names_and_files_are_torchvisions(name):
    """Class names, folder and file names as torchvision 0.28's mnist.py defines them (read from
    its source: torchvision is slow to import, and its PyPI build does not import beside the CPU
    torch build)."""
    tree = _torchvision_source("mnist")
    spec = SETS[name]
    attrs = _class_attrs(tree, spec.torchvision_class)
    base = _class_attrs(tree, "MNIST")
    assert tuple(attrs.get("classes", base["classes"])) == spec.classes
    resources = attrs.get("resources", base["resources"])
    assert sorted(f.removesuffix(".gz") for f, _ in resources) == sorted(spec.files)
    # raw_folder is <root>/<class name>/raw
    assert 'os.path.join(self.root, self.__class__.__name__, "raw")' in ast.unparse(tree).replace(
        "'", '"')
    assert spec.folder == f"{spec.torchvision_class}/raw"


def test_cifar10_names_and_files_are_torchvisions():
    attrs = _class_attrs(_torchvision_source("cifar"), "CIFAR10")
    spec = SETS["cifar10"]
    assert attrs["base_folder"] == spec.folder
    assert [f for f, _ in attrs["train_list"] + attrs["test_list"]] == list(spec.files)
    assert attrs["meta"]["filename"] == spec.meta and attrs["meta"]["key"] == "label_names"


def test_our_idx_files_read_the_same_through_torchvisions_own_reader(tmp_path):
    """torchvision's read_sn3_pascalvincent_tensor, taken from its source and run on a file this
    test writes, gives the same array as augflow's reader: the files are in its format."""
    tree = _torchvision_source("mnist")
    wanted = {"get_int", "SN3_PASCALVINCENT_TYPEMAP", "read_sn3_pascalvincent_tensor"}
    body = [n for n in tree.body if (isinstance(n, ast.FunctionDef) and n.name in wanted) or
            (isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") in wanted)]
    import codecs

    import torch
    scope: dict = {"torch": torch, "np": np, "sys": sys, "codecs": codecs}
    exec(compile(ast.Module(body=body, type_ignores=[]), "torchvision/datasets/mnist.py", "exec"),
         scope)
    x = np.random.default_rng(1).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "images", x)
    _write_idx(tmp_path / "labels", np.array([4, 0, 9]))
    theirs = scope["read_sn3_pascalvincent_tensor"](str(tmp_path / "images")).numpy()
    assert np.array_equal(theirs, x) and np.array_equal(read_idx(tmp_path / "images", 3), x)
    assert scope["read_sn3_pascalvincent_tensor"](str(tmp_path / "labels")).tolist() == [4, 0, 9]


# --- reading ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MNIST_LIKE)
def test_an_mnist_like_set_reads_both_splits_as_28x28_gray_rows(tmp_path, name):
    root = _workspace(tmp_path)
    images, labels = _mnist_files(root / "data/raw/tv", name)
    raw = load_source(_cfg(name), root)
    assert raw.kind == "image" and raw.origin == f"torchvision:{name}" and raw.label_column == "label"
    assert raw.image_shape == (28, 28, 1) and raw.pixel_range == (0.0, 255.0)
    assert list(raw.frame.columns) == pixel_columns(28, 28, 1)
    assert raw.frame.dtypes.eq(np.float32).all()
    assert np.array_equal(raw.frame.to_numpy(), images.reshape(10, -1).astype(np.float32))
    assert raw.labels.tolist() == [SETS[name].classes[i] for i in labels]   # train rows, then test
    raw_dir = (root / "data/raw/tv" / SETS[name].folder).resolve()
    assert raw.row_files[0] == f"{raw_dir}/train-images-idx3-ubyte [index 0]"
    assert raw.row_files[6] == f"{raw_dir}/t10k-images-idx3-ubyte [index 0]"


def test_the_published_gz_files_are_read_as_well(tmp_path):
    root = _workspace(tmp_path)
    images, labels = _mnist_files(root / "data/raw/tv", "kmnist", compress=True)
    raw = load_source(_cfg("kmnist"), root)
    assert np.array_equal(raw.frame.to_numpy(), images.reshape(len(images), -1))
    assert raw.labels.tolist() == [SETS["kmnist"].classes[i] for i in labels]
    assert raw.labels[:3].tolist() == ["ha", "re", "ki"]     # train labels 5, 8, 1


def test_cifar10_reads_both_splits_as_32x32_rgb_rows_channel_last(tmp_path):
    root = _workspace(tmp_path)
    images, labels = _cifar_files(root / "data/raw/tv")
    raw = load_source(_cfg("cifar10"), root)
    assert raw.kind == "image" and raw.origin == "torchvision:cifar10"
    assert raw.image_shape == (32, 32, 3) and raw.pixel_range == (0.0, 255.0)
    assert raw.frame.shape == (12, 3072) and list(raw.frame.columns) == pixel_columns(32, 32, 3)
    assert np.array_equal(raw.frame.to_numpy(), images.reshape(12, -1).astype(np.float32))
    assert raw.labels.tolist() == [CIFAR_NAMES[i] for i in labels]
    # pixel (0, 0): red, green, blue from the three planes of the file's first row
    base = root / "data/raw/tv/cifar-10-batches-py"
    first = pickle.loads((base / "data_batch_1").read_bytes())["data"][0]
    assert raw.frame.iloc[0, :3].tolist() == [first[0], first[1024], first[2048]]
    assert raw.row_files[-1] == f"{base.resolve()}/test_batch [index 1]"


def test_cifar10_batches_with_bytes_keys_read_the_same(tmp_path):
    root = _workspace(tmp_path)
    images, labels = _cifar_files(root / "data/raw/tv", bytes_keys=True)
    raw = load_source(_cfg("cifar10"), root)
    assert np.array_equal(raw.frame.to_numpy(), images.reshape(len(images), -1))
    assert raw.labels.tolist() == [CIFAR_NAMES[i] for i in labels]


def test_cifar10_batches_pickled_by_python_2_as_published_are_read(tmp_path):
    root = _workspace(tmp_path)
    _cifar_files(root / "data/raw/tv")
    data = np.random.default_rng(3).integers(0, 256, size=(3, 3072), dtype=np.uint8)
    py2 = _py2_batch(data, [7, 0, 3])
    assert pickle.loads(py2, encoding="latin1")["labels"] == [7, 0, 3]   # as torchvision reads it
    (root / "data/raw/tv/cifar-10-batches-py/test_batch").write_bytes(py2)
    raw = load_source(_cfg("cifar10"), root)
    last = data.reshape(3, 3, 32, 32).transpose(0, 2, 3, 1).reshape(3, -1)
    assert np.array_equal(raw.frame.to_numpy()[-3:], last)
    assert raw.labels[-3:].tolist() == ["horse", "airplane", "cat"]


def test_a_cifar_batch_that_would_run_code_is_refused_without_running_it(tmp_path):
    root = _workspace(tmp_path)
    _cifar_files(root / "data/raw/tv")
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    batch = root / "data/raw/tv/cifar-10-batches-py/data_batch_3"
    batch.write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    err = _error(_cfg("cifar10"), root)
    assert (err.file, err.rule) == (str(batch.resolve()), "cifar batch")
    assert "posix.mkdir is not allowed" in str(err) and not marker.exists()


def test_a_tiny_set_goes_through_prepare_with_its_class_names(tmp_path):
    from augflow.data.schema import Schema
    from augflow.paths import Paths
    from augflow.stages.prepare import run_prepare

    root = _workspace(tmp_path)
    _mnist_files(root / "data/raw/tv", "fashion_mnist", n_train=100, n_test=40)
    metrics = run_prepare(_cfg("fashion_mnist"), 0, Paths(root))
    assert metrics["n_classes"] == 10 and metrics["n_features"] == 784
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_test"] == 140
    import json
    schema = Schema.from_dict(json.loads((root / "data/prepared/schema.json").read_text()))
    assert schema.origin == "torchvision:fashion_mnist" and schema.image_shape == (28, 28, 1)
    assert schema.class_names == sorted(SETS["fashion_mnist"].classes)


# --- missing files: never downloaded in tests ------------------------------------------------

@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_files_with_download_off_say_where_to_put_them(tmp_path, name):
    root = _workspace(tmp_path)
    err = _error(_cfg(name), root)          # data/raw/tv does not even exist
    where = (root / "data/raw/tv").resolve()
    assert (err.file, err.field, err.rule) == (str(where), "data.path", RULE)
    assert "data.download is false" in str(err)
    assert f"put torchvision's files at {where / SETS[name].folder}/ holding" in str(err)
    assert not (root / "data/raw/tv").exists()      # nothing was created


def test_one_missing_file_is_named(tmp_path):
    root = _workspace(tmp_path)
    _mnist_files(root / "data/raw/tv", "mnist")
    gone = root / "data/raw/tv/MNIST/raw/t10k-labels-idx1-ubyte"
    gone.unlink()
    err = _error(_cfg("mnist"), root)
    assert f"MNIST files not found ({gone.resolve()})" in str(err) and err.rule == RULE


def _stand_in_torchvision(monkeypatch, cls_name: str, init) -> list:
    """A module pair torchvision / torchvision.datasets whose dataset class runs `init`:
    the tests see what augflow asks of torchvision without a download (or a real import)."""
    calls: list = []

    def __init__(self, root, train=True, download=False):
        calls.append((root, train, download))
        init(Path(root))

    datasets = types.ModuleType("torchvision.datasets")
    setattr(datasets, cls_name, type(cls_name, (), {"__init__": __init__}))
    tv = types.ModuleType("torchvision")
    tv.datasets = datasets  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    return calls


# What torchvision 0.28 raises offline: MNIST collects each mirror's URLError into a
# RuntimeError; CIFAR10's download_url lets the URLError through.
OFFLINE = {
    "mnist": RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirror, got:\n"
                          "<urlopen error [Errno -3] Temporary failure in name resolution>"),
    "cifar10": URLError("[Errno -3] Temporary failure in name resolution"),
}


@pytest.mark.parametrize("name", list(OFFLINE))
def test_offline_the_download_error_says_offline_and_where_to_put_the_files(tmp_path, monkeypatch,
                                                                            name):
    def offline(root):
        raise OFFLINE[name]

    calls = _stand_in_torchvision(monkeypatch, SETS[name].torchvision_class, offline)
    root = _workspace(tmp_path)
    err = _error(_cfg(name, download=True), root)
    where = (root / "data/raw/tv").resolve()
    assert calls == [(str(where), True, True)]
    assert (err.file, err.field, err.rule) == (str(where), "data.path", RULE)
    assert "is this machine offline?" in str(err) and "Temporary failure in name resolution" in str(err)
    assert f"{where}/{SETS[name].folder}/ holding {SETS[name].files[0]}" in str(err)
    assert "\n" not in str(err)


def test_online_torchvision_downloads_into_the_root_and_augflow_reads_it(tmp_path, monkeypatch):
    written = {}

    def download(root):
        written["images"], written["labels"] = _cifar_files(root)

    calls = _stand_in_torchvision(monkeypatch, "CIFAR10", download)
    root = _workspace(tmp_path)
    raw = load_source(_cfg("cifar10", download=True), root)
    assert calls == [(str((root / "data/raw/tv").resolve()), True, True)]
    assert np.array_equal(raw.frame.to_numpy(), written["images"].reshape(12, -1))
    # present files are read as they are: no second call
    load_source(_cfg("cifar10", download=True), root)
    assert len(calls) == 1


def test_a_download_that_writes_nothing_is_an_error(tmp_path, monkeypatch):
    _stand_in_torchvision(monkeypatch, "KMNIST", lambda root: None)
    root = _workspace(tmp_path)
    err = _error(_cfg("kmnist", download=True), root)
    assert err.rule == RULE and "torchvision's download did not write them" in str(err)


def test_a_torchvision_that_cannot_be_imported_is_reported(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)      # import raises ImportError
    root = _workspace(tmp_path)
    err = _error(_cfg("mnist", download=True), root)
    assert err.rule == RULE and "torchvision, which downloads them, cannot be imported" in str(err)


def test_download_false_never_imports_torchvision(tmp_path, monkeypatch):
    _stand_in_torchvision(monkeypatch, "MNIST", lambda root: pytest.fail("downloaded"))
    _error(_cfg("mnist"), _workspace(tmp_path))


# --- bad files -------------------------------------------------------------------------------

def test_a_root_that_is_a_file_is_refused(tmp_path):
    root = _workspace(tmp_path)
    (root / "data/raw/tv").write_text("not a folder")
    err = _error(_cfg("mnist"), root)
    assert (err.field, err.rule) == ("data.path", "folder")


def test_a_path_outside_data_raw_is_refused(tmp_path):
    err = _error(_cfg("mnist", path="data/other"), _workspace(tmp_path))
    assert err.rule == "inside data/raw/"


def _broken_mnist(tmp_path: Path, name: str, content) -> tuple[Path, AugflowError]:
    """A tiny MNIST root with one file replaced by content(old bytes); the error prepare gives."""
    root = _workspace(tmp_path)
    _mnist_files(root / "data/raw/tv", "mnist")
    bad = root / "data/raw/tv/MNIST/raw" / name
    if callable(content):
        bad.write_bytes(content(bad.read_bytes()))
    else:
        _write_idx(bad, content)
    return bad, _error(_cfg("mnist"), root)


@pytest.mark.parametrize("name, content, rule, says", [
    ("train-images-idx3-ubyte", lambda old: b"<html>not found</html>", "idx format",
     "header 3c68746d, expected 00000803"),
    ("t10k-images-idx3-ubyte", lambda old: old[:-100], "idx size",
     "4x28x28 (3136 bytes) but the file holds 3036"),
    ("train-labels-idx1-ubyte", np.array([1, 2, 3]), "one label per image",
     "3 labels for the 6 images of train-images-idx3-ubyte"),
    ("train-labels-idx1-ubyte", np.array([1, 2, 3, 4, 10, 5]), "known class",
     "label 10 at index 4 is not a class index 0..9"),
])
def test_a_broken_mnist_file_is_named_with_its_rule(tmp_path, name, content, rule, says):
    bad, err = _broken_mnist(tmp_path, name, content)
    assert (err.file, err.rule) == (str(bad.resolve()), rule)
    assert says in str(err)


def test_a_cifar_batch_of_the_wrong_shape_is_named(tmp_path):
    root = _workspace(tmp_path)
    _cifar_files(root / "data/raw/tv")
    batch = root / "data/raw/tv/cifar-10-batches-py/data_batch_2"
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 1024), np.uint8), "labels": [0, 1]}))
    err = _error(_cfg("cifar10"), root)
    assert (err.file, err.field, err.rule) == (str(batch.resolve()), "data", "cifar batch")
    batch.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}))
    assert _error(_cfg("cifar10"), root).field == "labels"
    batch.write_bytes(b"garbage")
    assert "cannot read as a CIFAR python batch" in str(_error(_cfg("cifar10"), root))
