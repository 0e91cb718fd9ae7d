"""Checkpoints: atomic writes, loading with ``torch.load(weights_only=True)``, and the model/diffusion they describe.

A checkpoint is a dict of tensors and plain Python values only (no pickled objects), so it loads with
``weights_only=True``::

    format       "ddpm_core.train/1"
    step         number of optimizer steps taken
    config       the full TrainConfig as a JSON string
    model        state_dict of the trained network
    ema          {"shadow": state_dict of the EMA network, "num_updates": int}
    optimizer    Adam's state_dict
    rank_states  one dict per process: {"torch_rng": uint8 tensor, "cuda_rng": uint8 tensor (if CUDA),
                 "noise_rng": uint8 tensor (the generator of t and epsilon), "loader": the loader's state}
    metrics      {"loss": float, ...} at the time of writing
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..diffusion import GaussianDiffusion
from ..nn import build_model
from .config import TrainConfig

__all__ = ["FORMAT", "atomic_save", "read_checkpoint", "build_diffusion", "build_network", "load_checkpoint",
           "resolve_checkpoint"]

FORMAT = "ddpm_core.train/1"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace`` onto ``path``: a reader
    (or a crash) never sees a half-written file, and the previous file stays until the new one is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` atomically (a hard link when possible, else a copy), replacing ``dst``."""
    src, dst = Path(src), Path(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dst


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (then its ``latest.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "latest.pt"
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}")
    return p


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` and check its format."""
    p = resolve_checkpoint(path)
    ckpt = torch.load(p, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{p} is not a ddpm_core training checkpoint (expected format {FORMAT!r})")
    return ckpt


def build_diffusion(config: TrainConfig) -> GaussianDiffusion:
    """The :class:`GaussianDiffusion` a config trains and samples with."""
    return GaussianDiffusion.from_settings(schedule=config.schedule, T=config.T, beta_1=config.beta_1,
                                           beta_T=config.beta_T, parameterization=config.parameterization,
                                           variance=config.variance, clip_denoised=config.clip_denoised)


def build_network(config: TrainConfig) -> nn.Module:
    """The network of ``config.model`` with ``config.model_overrides`` (freshly initialised from the global RNG)."""
    return build_model(config.model, **config.model_overrides)


def load_checkpoint(path: str | os.PathLike, device: Any = "cpu", ema: bool = True,
                    variance: Optional[str] = None) -> tuple[nn.Module, GaussianDiffusion, TrainConfig]:
    """Load a trained model for sampling: ``(network in eval mode, diffusion, config)``.

    path: a checkpoint file or a run folder (its ``latest.pt``). ema: use the EMA weights (what the paper samples
    with) rather than the raw ones. variance: override the sampling variance ("beta" / "beta_tilde").
    """
    ckpt = read_checkpoint(path)
    config = TrainConfig.from_json(ckpt["config"])
    if variance is not None:
        config = config.replace(variance=variance)
    with torch.random.fork_rng(devices=[]):  # the throw-away initialisation must not move the caller's RNG
        model = build_network(config)
    model.load_state_dict(ckpt["ema"]["shadow"] if ema else ckpt["model"])
    return model.to(device).eval(), build_diffusion(config), config
