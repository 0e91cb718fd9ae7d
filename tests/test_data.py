"""Tests of ddpm_core.data: toys, digits, CIFAR-10 / MNIST readers on tiny fake files, image folders, flips and
the resumable sharded loader."""
from __future__ import annotations

import gzip
import hashlib
import math
import pickle
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from ddpm_core.data.toys import MIXTURE_TOYS
from ddpm_core.data import (DATASET_NAMES, TOY_NAMES, ArrayImageDataset, RandomHorizontalFlip, download_url,
                            fetch_batch, infinite_loader, load_digits, make_dataset, quantize_digits, read_cifar10,
                            read_idx, read_mnist, sample_toy)
from ddpm_core.data import readers


def test_import_stays_light():
    code = ("import sys, ddpm_core.data, ddpm_core.metrics; "
            "heavy = {'sklearn', 'PIL', 'scipy', 'matplotlib', 'torchvision'} & set(sys.modules); "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# ------------------------------------------------------------------------------------------------ toys

@pytest.mark.parametrize("name", [n for n in TOY_NAMES if n not in MIXTURE_TOYS])
def test_toy_shape_scale_and_determinism(name):
    """The 2-D shapes are normalised analytically (the Gaussian mixtures are not: see tests/test_mixtures.py)."""
    x = sample_toy(name, 100_000, generator=torch.Generator().manual_seed(0))
    assert x.shape == (100_000, 2) and x.dtype == torch.float32
    # analytic normalisation: population mean 0, mean coordinate variance 1 (std error ~0.005 here)
    assert x.double().mean(0).abs().max() < 0.03
    assert abs(x.double().var(0).mean().item() - 1) < 0.03
    same = sample_toy(name, 100_000, generator=torch.Generator().manual_seed(0))
    other = sample_toy(name, 100_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(x, same) and not torch.equal(x, other)


def test_toy_geometry():
    g = torch.Generator().manual_seed(0)
    # checkerboard: every point on a square whose column + row index is even (board [-2, 2]^2 scaled sqrt(3)/2)
    board = sample_toy("checkerboard", 5000, generator=g).double() / (math.sqrt(3) / 2)
    assert board.abs().max() <= 2 + 1e-5
    assert ((torch.floor(board[:, 0]) + torch.floor(board[:, 1])) % 2 == 0).all()
    # eight Gaussians: every point close to one of the 8 centres, and all 8 modes used about equally
    x = sample_toy("eight_gaussians", 8000, generator=g).double()
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = math.sqrt(2 * 0.99) * torch.stack([angles.cos(), angles.sin()], 1)
    d, k = torch.cdist(x, centres).min(1)
    assert d.max() < 0.6 and torch.bincount(k, minlength=8).min() > 850
    # two moons: undo the scaling; every point lies within noise of the unit circle around (0, 0) or (1, 1/2)
    scale = math.sqrt((0.75 + 0.5625 - 1 / math.pi) / 2 + 0.01)
    moons = sample_toy("two_moons", 4000, generator=g).double() * scale + torch.tensor([0.5, 0.25])
    gap = torch.minimum((moons.norm(dim=1) - 1).abs(), ((moons - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs())
    assert gap.max() < 0.5 and gap.mean() < 0.1


def test_toy_bad_input():
    with pytest.raises(ValueError, match="swiss_roll.*two_moons.*eight_gaussians.*checkerboard"):
        sample_toy("spiral", 10)
    with pytest.raises(ValueError, match="n must be >= 1"):
        sample_toy("swiss_roll", 0)
    with pytest.raises(TypeError, match="n must be an int"):
        sample_toy("swiss_roll", 2.5)


# ------------------------------------------------------------------------------------------------ digits

def test_quantize_digits_mapping():
    v = torch.arange(17.0)
    q = quantize_digits(v)
    assert q.dtype == torch.uint8
    assert q.tolist() == [round(i * 255 / 16) for i in range(17)]
    assert q[0] == 0 and q[1] == 16 and q[8] == 128 and q[16] == 255
    with pytest.raises(ValueError, match="values must lie in"):
        quantize_digits(torch.tensor([17.0]))


def test_load_digits_splits():
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    full = load_digits("all")
    train, test = load_digits("train"), load_digits("test")
    x, y = full.tensors
    assert x.shape == (1797, 1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert len(train) == 1437 and len(test) == 360
    assert x.min() == -1 and x.max() == 1
    levels = (x + 1) * 127.5
    assert torch.allclose(levels, levels.round(), atol=1e-4)  # values sit exactly on the 8-bit grid
    expected = np.round(bunch.images * 255 / 16)[:, None]
    assert np.allclose(levels.numpy(), expected, atol=1e-4)
    assert torch.equal(y, torch.as_tensor(bunch.target))
    # train and test are a partition of the images (as a multiset), with their labels
    key = lambda ds: Counter((img.numpy().tobytes(), int(lab)) for img, lab in zip(*ds.tensors))  # noqa: E731
    assert key(train) + key(test) == key(full)
    assert torch.equal(load_digits("test").tensors[0], test.tensors[0])  # deterministic
    assert len(set(test.tensors[1].tolist())) == 10
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("validation")


# ------------------------------------------------------------------------------------------------ CIFAR-10

def _write_cifar(folder: Path, per_batch: int = 4, n_test: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fake cifar-10-batches-py in the official format; returns all rows (train then test) and labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n).tolist()
        batch = {b"batch_label": name.encode(), b"labels": lab, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        rows.append(data)
        labels += lab
    return np.concatenate(rows), np.array(labels)


def test_read_cifar10_layout_and_splits(tmp_path):
    rows, labels = _write_cifar(tmp_path / "cifar-10-batches-py")
    x, y = read_cifar10(tmp_path, "train")
    assert x.shape == (20, 3, 32, 32) and x.dtype == np.uint8 and y.dtype == np.int64
    # each row is the R, G, B planes in turn, row-major
    c, h, w = 1, 5, 7
    assert x[3, c, h, w] == rows[3, c * 1024 + h * 32 + w]
    assert np.array_equal(x.reshape(20, -1), rows[:20]) and np.array_equal(y, labels[:20])
    xt, yt = read_cifar10(tmp_path / "cifar-10-batches-py", "test")  # the batch folder itself also works
    assert xt.shape == (3, 3, 32, 32) and np.array_equal(yt, labels[20:])
    xa, _ = read_cifar10(tmp_path, "all")
    assert xa.shape[0] == 23


def test_make_dataset_cifar10_values_and_flip(tmp_path):
    rows, labels = _write_cifar(tmp_path / "cifar-10-batches-py")
    ds = make_dataset("cifar10", root=tmp_path, split="train")
    x, y = ds[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and int(y) == labels[5]
    assert torch.allclose(x, torch.as_tensor(rows[5].reshape(3, 32, 32), dtype=torch.float32) / 127.5 - 1)
    assert -1 <= x.min() and x.max() <= 1
    small = make_dataset("cifar10", root=tmp_path, split="test", image_size=16)
    assert small[0][0].shape == (3, 16, 16)
    flipped = make_dataset("cifar10", root=tmp_path, split="train", flip=True, seed=1)
    loader = infinite_loader(flipped, batch_size=20, seed=0)
    xb, yb = next(loader)
    base = torch.stack([ds[i][0] for i in range(20)])
    for img in xb:  # every image is one of the originals, either as is or mirrored left-right
        same = (base == img).flatten(1).all(1).any()
        mirrored = (base.flip(-1) == img).flatten(1).all(1).any()
        assert bool(same) != bool(mirrored)


def test_cifar10_missing_file_message(tmp_path):
    _write_cifar(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError) as err:
        read_cifar10(tmp_path, "train")
    msg = str(err.value)
    assert "data_batch_3" in msg and "cifar-10-python.tar.gz" in msg and str(tmp_path) in msg
    assert "download=True" in msg
    read_cifar10(tmp_path, "test")  # the other split is still there
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        make_dataset("cifar10", root=tmp_path / "nowhere")


def test_cifar10_bad_pickle(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar(folder)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"images": np.zeros((1, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match="b'labels'"):
        read_cifar10(tmp_path, "test")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_download_from_mirror(tmp_path, monkeypatch):
    src = tmp_path / "src"
    rows, _ = _write_cifar(src / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    monkeypatch.setattr(readers, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(readers, "CIFAR10_MD5", _md5(archive))
    dest = tmp_path / "data"
    with pytest.raises(FileNotFoundError):
        read_cifar10(dest, "train")  # nothing is fetched without download=True
    x, _ = read_cifar10(dest, "train", download=True)
    assert np.array_equal(x.reshape(20, -1), rows[:20])
    assert (dest / "cifar-10-batches-py" / "test_batch").is_file()


# ------------------------------------------------------------------------------------------------ MNIST

def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">i4").tobytes()
    return header + arr.astype(np.uint8).tobytes()


def _write_mnist(folder: Path, gz_train: bool = True, gz_test: bool = False, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n, gz in (("train", "train", 6, gz_train), ("test", "t10k", 4, gz_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            name = f"{prefix}-{kind}"
            data = _idx_bytes(arr)
            if gz:
                with gzip.open(folder / (name + ".gz"), "wb") as f:
                    f.write(data)
            else:
                (folder / name).write_bytes(data)
        out[split] = (images, labels)
    return out


def test_idx_magic_numbers():
    img = _idx_bytes(np.zeros((2, 28, 28), np.uint8))
    lab = _idx_bytes(np.zeros(2, np.uint8))
    assert int.from_bytes(img[:4], "big") == 2051 and int.from_bytes(lab[:4], "big") == 2049


def test_read_mnist_gz_and_plain(tmp_path):
    truth = _write_mnist(tmp_path, gz_train=True, gz_test=False)
    x, y = read_mnist(tmp_path, "train")
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert np.array_equal(x[:, 0], truth["train"][0]) and np.array_equal(y, truth["train"][1])
    xt, yt = read_mnist(tmp_path, "test")
    assert np.array_equal(xt[:, 0], truth["test"][0]) and np.array_equal(yt, truth["test"][1])
    xa, ya = read_mnist(tmp_path, "all")
    assert xa.shape == (10, 1, 28, 28) and np.array_equal(ya[6:], truth["test"][1])
    ds = make_dataset("mnist", root=tmp_path, split="test", image_size=32)
    img, lab = ds[2]
    assert img.shape == (1, 32, 32) and int(lab) == truth["test"][1][2] and -1 <= img.min() and img.max() <= 1
    native = make_dataset("mnist", root=tmp_path, split="test")[2][0]
    assert torch.allclose(native, torch.as_tensor(truth["test"][0][2], dtype=torch.float32)[None] / 127.5 - 1)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short-idx"
    short.write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="shape"):
        read_idx(short)
    arr = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    ints = tmp_path / "ints-idx"
    ints.write_bytes(bytes([0, 0, 0x0C, 3]) + np.array(arr.shape, ">i4").tobytes() + arr.tobytes())
    assert np.array_equal(read_idx(ints), np.arange(24).reshape(2, 3, 4))


def test_mnist_missing_file_message(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError) as err:
        read_mnist(tmp_path, "test")
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and str(tmp_path) in msg and readers.MNIST_URL in msg
    read_mnist(tmp_path, "train")


def test_mnist_download_checks_md5(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    truth = _write_mnist(mirror, gz_train=True, gz_test=True)
    md5 = {p.name: _md5(p) for p in mirror.iterdir()}
    monkeypatch.setattr(readers, "MNIST_URL", mirror.as_uri() + "/")
    monkeypatch.setattr(readers, "MNIST_MD5", md5)
    x, y = read_mnist(tmp_path / "data", "train", download=True)
    assert np.array_equal(x[:, 0], truth["train"][0]) and np.array_equal(y, truth["train"][1])
    # a corrupted mirror is refused and leaves nothing behind
    bad = dict(md5, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    monkeypatch.setattr(readers, "MNIST_MD5", bad)
    with pytest.raises(OSError, match="md5 mismatch"):
        read_mnist(tmp_path / "data", "test", download=True)
    assert not list((tmp_path / "data").glob("t10k-images*"))


def test_download_url_skips_good_file(tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"hello")
    dest = download_url(src.as_uri(), tmp_path / "out" / "a.bin", hashlib.md5(b"hello").hexdigest())
    assert dest.read_bytes() == b"hello"
    src.write_bytes(b"changed")  # an intact local copy is not fetched again
    assert download_url(src.as_uri(), dest, hashlib.md5(b"hello").hexdigest()).read_bytes() == b"hello"


# ------------------------------------------------------------------------------------------------ folders

def test_image_folder_crop_resize_rgb(tmp_path):
    from PIL import Image

    folder = tmp_path / "faces" / "train"
    (folder / "sub").mkdir(parents=True)
    wide = np.zeros((40, 60, 3), np.uint8)  # 60 wide, 40 high: centre crop keeps columns 10..49
    wide[:, :10] = (255, 0, 0)
    wide[:, 50:] = (255, 0, 0)
    wide[:, 10:50] = (0, 0, 255)
    Image.fromarray(wide).save(folder / "a.png")
    Image.fromarray(np.full((20, 20), 200, np.uint8), mode="L").save(folder / "sub" / "b.png")
    (folder / "notes.txt").write_text("not an image")
    ds = make_dataset("folder", root=tmp_path / "faces", split="train", image_size=16)
    assert len(ds) == 2
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and int(y) == -1
    assert torch.allclose(x[2], torch.ones(16, 16)) and torch.allclose(x[0], -torch.ones(16, 16))  # all blue
    grey, _ = ds[1]
    assert torch.allclose(grey, torch.full((3, 16, 16), 200 / 127.5 - 1), atol=1e-6)
    xb, yb = next(infinite_loader(make_dataset("folder", root=folder, image_size=8, flip=True), batch_size=3))
    assert xb.shape == (3, 3, 8, 8) and yb.tolist() == [-1, -1, -1]


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image files"):
        make_dataset("folder", root=tmp_path / "empty", image_size=8)
    with pytest.raises(ValueError, match="image_size"):
        make_dataset("folder", root=tmp_path / "empty")
    with pytest.raises(ValueError, match="cifar10.*swiss_roll"):
        make_dataset("imagenet")
    with pytest.raises(ValueError, match="flip=True applies to images only"):
        make_dataset("two_moons", flip=True)
    assert set(TOY_NAMES) < set(DATASET_NAMES)


def test_array_dataset_resize_keeps_levels():
    levels = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8)
    ds = ArrayImageDataset(levels, None, image_size=20)
    x, y = ds[1]
    assert x.shape == (3, 20, 20) and int(y) == -1
    assert torch.allclose(x, torch.full_like(x, 77 / 127.5 - 1))
    with pytest.raises(ValueError, match="uint8"):
        ArrayImageDataset(torch.zeros(2, 3, 8, 8))


# ------------------------------------------------------------------------------------------------ flip

def test_flip_is_a_mirror_and_deterministic():
    base = make_dataset("digits", split="test")
    flipped = RandomHorizontalFlip(base, p=0.5, seed=7)
    idx = torch.arange(len(base))
    x0, _ = base.get_batch(idx)
    xa, _ = flipped.get_batch(idx, torch.zeros_like(idx))
    xb, _ = flipped.get_batch(idx, torch.zeros_like(idx))
    xc, _ = flipped.get_batch(idx, torch.ones_like(idx))
    assert torch.equal(xa, xb)  # same (seed, epoch): same flips
    is_mirror = (xa == x0.flip(-1)).flatten(1).all(1)
    is_same = (xa == x0).flatten(1).all(1)
    assert (is_mirror | is_same).all()
    asymmetric = ~(x0 == x0.flip(-1)).flatten(1).all(1)
    n_flipped = int((is_mirror & asymmetric).sum())
    n = int(asymmetric.sum())
    assert abs(n_flipped - n / 2) < 4 * math.sqrt(n / 4)  # binomial(n, 1/2)
    assert not torch.equal(xa, xc)  # a new epoch draws new flips
    perm = torch.randperm(len(base), generator=torch.Generator().manual_seed(0))[:50]
    xp, _ = flipped.get_batch(perm, torch.zeros_like(perm))
    assert torch.equal(xp, xa[perm])  # the flip of an item does not depend on the batch it is fetched in
    assert torch.equal(fetch_batch(flipped, idx, 1)[0], xc)  # one epoch for the whole batch
    assert torch.equal(fetch_batch(flipped, idx)[0], xa)  # default: epoch 0
    one, _ = flipped[3]
    assert torch.equal(one, x0[3]) or torch.equal(one, x0[3].flip(-1))
    assert torch.equal(RandomHorizontalFlip(base, p=1.0).get_batch(idx, idx * 0)[0], x0.flip(-1))


# ------------------------------------------------------------------------------------------------ loader

def _stream(loader, n_batches):
    return [next(loader) for _ in range(n_batches)]


@pytest.mark.parametrize("n,world_size,batch_size", [(23, 3, 4), (24, 4, 5), (10, 1, 3)])
def test_loader_shards_cover_each_index_once_per_epoch(n, world_size, batch_size):
    ds = torch.utils.data.TensorDataset(torch.arange(n), torch.arange(n))
    for epoch in range(3):
        seen = []
        for rank in range(world_size):
            shard_len = len(range(rank, n, world_size))
            loader = infinite_loader(ds, batch_size, seed=5, rank=rank, world_size=world_size)
            flat = torch.cat([b[0] for b in _stream(loader, (shard_len * (epoch + 1)) // batch_size + 2)])
            seen.append(flat[epoch * shard_len:(epoch + 1) * shard_len])
        seen = torch.cat(seen)
        assert sorted(seen.tolist()) == list(range(n)), f"epoch {epoch}"
    a = torch.cat([b[0] for b in _stream(infinite_loader(ds, n, seed=5), 2)])
    assert not torch.equal(a[:n], a[n:])  # epochs are reshuffled
    b = torch.cat([b[0] for b in _stream(infinite_loader(ds, n, seed=6), 2)])
    assert not torch.equal(a, b)  # the seed matters


def test_loader_resume_gives_identical_stream():
    ds = make_dataset("digits", split="test", flip=True, seed=3)  # 360 items: batches straddle epochs
    loader = infinite_loader(ds, 64, seed=11, rank=1, world_size=2)
    _stream(loader, 7)
    state = loader.state_dict()
    expected = _stream(loader, 6)
    resumed = infinite_loader(ds, 64, seed=11, rank=1, world_size=2)
    resumed.load_state_dict(state)
    got = _stream(resumed, 6)
    for (xa, ya), (xb, yb) in zip(expected, got):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # 7 batches of 64 from a shard of 180: 448 = 2 * 180 + 88
    assert (state["epoch"], state["position"]) == (2, 88)
    with pytest.raises(ValueError, match="seed"):
        infinite_loader(ds, 64, seed=12, rank=1, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="rank"):
        infinite_loader(ds, 64, seed=11, rank=3, world_size=2)


def test_loader_workers_match_main_process():
    ds = make_dataset("digits", split="test", flip=True, seed=0)
    plain = _stream(infinite_loader(ds, 50, seed=2), 9)
    workers = infinite_loader(ds, 50, seed=2, num_workers=2)
    got = _stream(workers, 5)
    state = workers.state_dict()
    assert state["epoch"] == 0 and state["position"] == 250  # prefetched batches are not counted
    workers.load_state_dict(state)
    got += _stream(workers, 4)
    for (xa, ya), (xb, yb) in zip(plain, got):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_toy_dataset_batches():
    ds = make_dataset("swiss_roll", toy_size=1000)
    x, y = next(infinite_loader(ds, 128))
    assert x.shape == (128, 2) and (y == -1).all()
    test = make_dataset("swiss_roll", split="test", toy_size=1000)
    assert not torch.equal(ds.tensors[0], test.tensors[0])
    assert torch.equal(ds.tensors[0], make_dataset("swiss_roll", toy_size=1000).tensors[0])
