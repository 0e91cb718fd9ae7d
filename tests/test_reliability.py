"""Nothing unsafe on load, nothing lost on write, every failure named.

Every case of the reliability probe (tests/reliability_probe.py: bad options and files through ``main()``, bad
arguments to the package, damaged checkpoints and data files, failed and interrupted writes) must end in a clear
error (one line, no traceback, naming the file or option) or, for the interrupted writes, in a clean recovery.
The tests below check the mechanisms behind them against independent evidence (bytes on disk, a marker file a
malicious pickle would create, the line count of metrics.jsonl).
"""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import reliability_probe as probe  # noqa: E402

from ddpm_core.atomic import atomic_save, atomic_write, atomic_write_text, remove_orphan_tmp  # noqa: E402
from ddpm_core.cli import main  # noqa: E402
from ddpm_core.data.readers import read_cifar10  # noqa: E402
from ddpm_core.train import NonFiniteLossError, TrainConfig, Trainer, get_preset, load_checkpoint  # noqa: E402
from ddpm_core.train.checkpoint import (CheckpointError, checkpoint_checksums, model_data_shape,  # noqa: E402
                                        read_checkpoint)

pytestmark = pytest.mark.usefixtures("one_thread")
BOOK_MODELS = sorted((Path(__file__).resolve().parents[1] / "book" / "models").glob("*.pt"))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    torch.manual_seed(0)
    return probe.Context(tmp_path_factory.mktemp("probe"))


_CASES = probe.build_cases(None)


@pytest.mark.parametrize("index", range(len(_CASES)), ids=[c.id for c in _CASES])
def test_probe_case_is_handled_clearly(ctx, index):
    case = probe.build_cases(ctx)[index]
    outcome = probe.classify(case, ctx)
    assert outcome.kind == "clear", f"{case.id}: {outcome.kind}: {outcome.detail}"


def tiny_toy(**kw) -> TrainConfig:
    base = dict(steps=4, batch_size=16, log_every=1, sample_every=0, ckpt_every=2, toy_size=128, T=20,
                beta_T=0.2, progress=False, device="cpu", model_overrides={"width": 16, "depth": 1})
    return get_preset("toy2d", **{**base, **kw})


# ---------------------------------------------------------------------------------------- CIFAR-10 pickles

def _write_batches(folder: Path, first: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(first if i == 0 else pickle.dumps(probe._cifar_batch(), protocol=2))


def test_malicious_cifar_batch_runs_no_code(tmp_path):
    marker = tmp_path / "marker"
    evil = pickle.dumps({b"data": probe._Evil(marker), b"labels": [0]}, protocol=2)
    _write_batches(tmp_path / "c", evil)
    with pytest.raises(ValueError, match="data_batch_1.*refusing to load posix.system"):
        read_cifar10(tmp_path / "c", "train")
    assert not marker.exists()
    pickle.loads(evil)  # the file really would have run the command: the check above can fail
    assert marker.exists()


@pytest.mark.parametrize("protocol,numpy1", [(2, False), (2, True), (4, False), (5, False)])
def test_real_format_cifar_batch_reads(tmp_path, protocol, numpy1):
    """Batches as the official files hold them (a dict of bytes keys, a uint8 array, lists of ints and bytes),
    pickled with protocol 2 (the official files'), 4 and 5, and with numpy 1's module names."""
    batch = probe._cifar_batch(6)
    raw = pickle.dumps(batch, protocol=protocol)
    if numpy1:
        assert b"numpy._core.multiarray" in raw
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    _write_batches(tmp_path / "c", raw)
    images, labels = read_cifar10(tmp_path / "c", "train")
    assert images.shape == (6 + 4 * 4, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[:6].reshape(6, -1), batch[b"data"])
    assert labels[:6].tolist() == batch[b"labels"]


# ---------------------------------------------------------------------------------------- atomic writes

def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def half(f):
        f.write(b"new but")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="could not write .*out.bin.*previous file is unchanged"):
        atomic_write(path, half)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
    atomic_write_text(path, "new")
    assert path.read_text() == "new"


def test_orphan_temporary_files_are_removed_only_when_they_match(tmp_path):
    for name in (".latest.pt.x1.tmp", ".metrics.jsonl.y.tmp", "keep.tmp", "latest.pt"):
        (tmp_path / name).write_bytes(b"x")
    removed = remove_orphan_tmp(tmp_path)
    assert sorted(p.name for p in removed) == [".latest.pt.x1.tmp", ".metrics.jsonl.y.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp", "latest.pt"]


def test_sample_writes_through_the_atomic_helper(ctx, tmp_path, monkeypatch):
    """``ddpm sample --out x.pt`` and ``--out x.png`` go through atomic_write (a crash cannot leave half a file)."""
    import ddpm_core.atomic as atomic
    seen = []
    real = atomic.atomic_write
    monkeypatch.setattr(atomic, "atomic_write", lambda p, w: seen.append(Path(p).name) or real(p, w))
    import ddpm_core.viz as viz
    monkeypatch.setattr(viz, "atomic_write", atomic.atomic_write)
    for name in ("s.pt", "s.png"):
        assert main(["sample", "--ckpt", str(ctx.ckpt), "-n", "8", "--out", str(tmp_path / name),
                     "--no-progress"]) == 0
    assert seen == ["s.pt", "s.png"]
    assert torch.load(tmp_path / "s.pt").shape == (8, 2)


# ---------------------------------------------------------------------------------------- training runs

def test_resume_drops_metrics_lines_past_the_checkpoint_and_cleans_orphans(tmp_path):
    run = tmp_path / "run"
    Trainer(tiny_toy(), out_dir=str(run)).fit()
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [1, 2, 3, 4]
    # killed after logging steps 5 and 6 (and half of step 7) while the checkpoint is at step 4, mid-save
    metrics.write_text("\n".join(lines + [lines[-1].replace('"step": 4', f'"step": {s}') for s in (5, 6)])
                       + '\n{"step": 7, "lo')
    (run / ".latest.pt.abc.tmp").write_bytes(b"\0" * 100)
    trainer = Trainer(tiny_toy(steps=6), out_dir=str(run), resume=True)
    assert trainer.step == 4 and not list(run.glob(".*.tmp"))
    assert [json.loads(x)["step"] for x in metrics.read_text().splitlines()] == [1, 2, 3, 4]
    trainer.fit()
    assert [json.loads(x)["step"] for x in metrics.read_text().splitlines()] == [1, 2, 3, 4, 5, 6]


def test_unwritable_run_folder_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    steps = []
    monkeypatch.setattr(Trainer, "train_step", lambda self: steps.append(1))
    with pytest.raises(PermissionError, match="cannot write to the run folder"):
        Trainer(tiny_toy(), out_dir=str(blocker / "run")).fit()
    assert steps == []


def test_non_finite_weights_are_never_saved(tmp_path):
    trainer = Trainer(tiny_toy(), out_dir=str(tmp_path / "run"))
    trainer.fit(2)
    before = (tmp_path / "run" / "latest.pt").read_bytes()
    with torch.no_grad():
        next(trainer.model.parameters())[0, 0] = float("inf")
    with pytest.raises(NonFiniteLossError, match="weights became non-finite"):
        trainer.save()
    assert (tmp_path / "run" / "latest.pt").read_bytes() == before


# ---------------------------------------------------------------------------------------- checkpoints

def test_checksums_detect_a_flipped_byte_on_disk(ctx, tmp_path):
    """Flip one bit of an EMA weight's exponent in the file's bytes (not through torch): the load must fail,
    naming the file; verify=False (--no-verify) still loads the edited file."""
    ckpt = torch.load(ctx.ckpt, weights_only=True)
    assert ckpt["checksums"] == checkpoint_checksums(ckpt)
    w = ckpt["ema"]["shadow"]["proj_in.weight"].contiguous()
    raw = bytearray(ctx.ckpt.read_bytes())
    needle = w.numpy().tobytes()
    at = raw.find(needle)
    assert at >= 0 and raw.find(needle, at + 1) < 0
    raw[at + 3] ^= 0x20  # the top byte of the first float32 (little-endian): an exponent bit
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"flipped\.pt is corrupted: the checksum of \['ema'\]"):
        load_checkpoint(bad)
    model, _, _ = load_checkpoint(bad, verify=False)
    assert model.proj_in.weight[0, 0] != w[0, 0]
    assert main(["sample", "--ckpt", str(bad), "-n", "4", "--out", str(tmp_path / "s.pt"), "--no-progress",
                 "--no-verify"]) == 0


@pytest.mark.skipif(not BOOK_MODELS, reason="no shipped models in this checkout")
@pytest.mark.parametrize("path", BOOK_MODELS, ids=[p.name for p in BOOK_MODELS])
def test_shipped_models_without_checksums_still_load(path):
    assert "checksums" not in torch.load(path, weights_only=True)
    model, diffusion, config = load_checkpoint(path)
    assert diffusion.T == config.T
    # The book ships 8x8 digit U-Nets and small MLPs for the 1-D and 2-D mixtures of Part III: the shape the
    # sampler reads from the checkpoint must be that of the data set it was trained on.
    data_shapes = {"digits": (1, 8, 8), "gaussian_mixture_1d": (1,), "gaussian_mixture": (2,)}
    assert model_data_shape(model, config) == data_shapes[config.data]
    shape = (2, *data_shapes[config.data])
    x = model(torch.zeros(shape), torch.tensor([1, config.T]))
    assert x.shape == shape and torch.isfinite(x).all()


def test_read_checkpoint_names_the_file_for_every_bad_file(tmp_path):
    for name, data in [("empty.pt", b""), ("text.pt", b"hello"), ("raw.pt", pickle.dumps([1, 2]))]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError, match=f"{name} is not a ddpm_core checkpoint"):
            read_checkpoint(tmp_path / name)


# ---------------------------------------------------------------------------------------- the command line

def test_debug_shows_the_traceback(ctx, capsys):
    argv = ["sample", "--ckpt", str(ctx.root / "missing.pt")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    with pytest.raises(FileNotFoundError):
        main([*argv, "--debug"])


def test_atomic_save_is_the_checkpoint_writer():
    """One helper: the checkpoint module re-exports the atomic module's function (no second implementation)."""
    from ddpm_core.train import checkpoint
    assert checkpoint.atomic_save is atomic_save
