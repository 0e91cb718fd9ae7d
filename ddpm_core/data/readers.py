"""Readers for the official CIFAR-10 and MNIST files (plain numpy, no torchvision), and a checked downloader.

CIFAR-10 ("python version", https://www.cs.toronto.edu/~kriz/cifar.html) is a folder ``cifar-10-batches-py`` of
pickled dicts ``data_batch_1`` .. ``data_batch_5`` and ``test_batch``; each holds ``b"data"``, a uint8 array
(10000, 3072) with the red, green and blue 32 x 32 planes of one image per row, and ``b"labels"``, a list of ints.

MNIST is four idx files (``train-images-idx3-ubyte`` etc., optionally gzipped). An idx file starts with a
big-endian magic number ``0x0000TTNN`` (TT the element type, 0x08 = uint8; NN the number of dimensions), then NN
big-endian int32 sizes, then the data in row-major order: 2051 for the images (uint8, 3-D), 2049 for the labels.

Nothing is downloaded unless ``download=True`` is passed; downloads are checked against the official md5 sums.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import tarfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from ..atomic import atomic_write

__all__ = [
    "CIFAR10_URL", "CIFAR10_MD5", "CIFAR10_FOLDER", "MNIST_URL", "MNIST_MD5",
    "download_url", "read_cifar10", "read_idx", "read_mnist",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
_CIFAR10_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # mirror of http://yann.lecun.com/exdb/mnist/
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLITS = ("train", "test", "all")


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_url(url: str, dest: str | os.PathLike, md5: str, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (skipped when ``dest`` already has the right md5) and verify its md5.

    The file is written atomically (a temporary file renamed onto ``dest``) and only once its checksum matches;
    a mismatch deletes it and raises ``OSError``.
    """
    dest = Path(dest)
    if dest.is_file() and _md5(dest) == md5:
        return dest

    def write(f) -> None:
        h = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                h.update(chunk)
                f.write(chunk)
        if h.hexdigest() != md5:
            raise OSError(f"md5 mismatch for {url}: expected {md5}, got {h.hexdigest()}; the download was deleted")

    return atomic_write(dest, write)


# ----------------------------------------------------------------------------------------------- CIFAR-10

def _cifar10_dir(root: Path) -> Path:
    """``root`` may be the folder that contains ``cifar-10-batches-py`` or that folder itself."""
    if (root / "data_batch_1").is_file() or (root / "test_batch").is_file():
        return root
    return root / CIFAR10_FOLDER


def _download_cifar10(root: Path) -> None:
    archive = download_url(CIFAR10_URL, root / "cifar-10-python.tar.gz", CIFAR10_MD5)
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
        else:  # Python without extraction filters: the archive's md5 was verified above
            tar.extractall(root)


# The only globals a CIFAR-10 batch pickle refers to: numpy's array reconstruction (numpy 1 and 2 module names,
# pickle protocols 2 and 5) and, for files re-pickled by Python 3 with protocol 2, the bytes codec.
_CIFAR_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds (dicts, lists, bytes, str, ints and numpy arrays); any other
    class or function in the file (how a malicious pickle runs code) is refused before it is touched."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch holds only dicts, "
                                         "lists, bytes, ints and numpy arrays")
        with warnings.catch_warnings():  # numpy 2 warns about the numpy.core names that numpy-1 files use
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch and was not loaded: {e}. Re-download the official "
                         f"archive {CIFAR10_URL} (md5 {CIFAR10_MD5})") from e
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError, OverflowError) as e:
        raise ValueError(f"{path} is not a CIFAR-10 batch (unreadable pickle: {type(e).__name__}: {e}). "
                         f"Re-download the official archive {CIFAR10_URL} (md5 {CIFAR10_MD5})") from e
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{path} is not a CIFAR-10 batch: expected a dict with keys b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        got = f"{data.dtype} array {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path} is not a CIFAR-10 batch: b'data' must be a uint8 array of shape (N, 3072), "
                         f"got {got}")
    if (not isinstance(labels, (list, np.ndarray)) or len(labels) != len(data)
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < 10
                       for v in labels)):
        n = len(labels) if isinstance(labels, (list, np.ndarray)) else type(labels).__name__
        raise ValueError(f"{path} is not a CIFAR-10 batch: b'labels' must be a list of {len(data)} ints in 0..9, "
                         f"got {n} entries")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def read_cifar10(root: str | os.PathLike, split: str = "train",
                 download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 from its python pickle batches.

    Returns (images uint8 (N, 3, 32, 32), labels int64 (N,)); N = 50000 (train), 10000 (test), 60000 (all).
    ``root`` is the folder holding ``cifar-10-batches-py/`` (or that folder itself).
    """
    _check_split(split)
    root = Path(root).expanduser()
    names = _CIFAR10_BATCHES["train"] + _CIFAR10_BATCHES["test"] if split == "all" else _CIFAR10_BATCHES[split]
    folder = _cifar10_dir(root)
    missing = [n for n in names if not (folder / n).is_file()]
    if missing and download:
        _download_cifar10(root)
        folder = _cifar10_dir(root)
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 ({split} split) not found: missing {', '.join(missing)} in {folder}. "
            f"Download {CIFAR10_URL} (md5 {CIFAR10_MD5}) and extract it into {root} so that {folder} holds "
            f"data_batch_1 .. data_batch_5 and test_batch, or pass download=True (needs internet).")
    parts = [_read_cifar_batch(folder / n) for n in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# ----------------------------------------------------------------------------------------------- MNIST

def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (gzipped if its name ends in .gz) into a numpy array of its stored shape and type."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file: bad magic number {raw[:4].hex()}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">i4"))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(f"{path}: header announces shape {shape} but the file holds {len(raw) - header} data bytes")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(root: Path, name: str) -> Path | None:
    for folder in (root, root / "MNIST" / "raw"):  # our layout, or torchvision's
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def read_mnist(root: str | os.PathLike, split: str = "train",
               download: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST from its idx files in ``root`` (plain or .gz).

    Returns (images uint8 (N, 1, 28, 28), labels int64 (N,)); N = 60000 (train), 10000 (test), 70000 (all).
    """
    _check_split(split)
    root = Path(root).expanduser()
    splits = ["train", "test"] if split == "all" else [split]
    names = [n for s in splits for n in _MNIST_FILES[s]]
    if download and any(_find_idx(root, n) is None for n in names):
        for n in names:
            if _find_idx(root, n) is None:
                download_url(MNIST_URL + n + ".gz", root / (n + ".gz"), MNIST_MD5[n + ".gz"])
    missing = [n for n in names if _find_idx(root, n) is None]
    if missing:
        raise FileNotFoundError(
            f"MNIST ({split} split) not found: missing {', '.join(missing)} (plain or .gz) in {root}. "
            f"Put the idx files there, e.g. from {MNIST_URL}{missing[0]}.gz, or pass download=True (needs internet).")
    images, labels = [], []
    for s in splits:
        img_name, lab_name = _MNIST_FILES[s]
        x, y = read_idx(_find_idx(root, img_name)), read_idx(_find_idx(root, lab_name))
        if x.ndim != 3 or x.dtype != np.uint8 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"MNIST {s} files must hold uint8 images (N, H, W) and N labels, "
                             f"got {x.shape} {x.dtype} and {y.shape}")
        images.append(x[:, None])
        labels.append(y.astype(np.int64))
    return np.concatenate(images), np.concatenate(labels)
