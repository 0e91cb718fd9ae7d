"""Train a configuration once and reuse it: ``train_or_load`` keeps finished runs in a cache folder keyed by a
hash of the configuration (used by the book's chapters, e.g. for the digits model)."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch import nn

from ..data.paths import cache_dir as default_cache_dir
from ..diffusion import GaussianDiffusion
from .checkpoint import load_checkpoint, read_checkpoint
from .config import TrainConfig, config_hash
from .engine import Trainer

__all__ = ["run_dir_for", "train_or_load"]


def run_dir_for(config: TrainConfig, cache_dir: Optional[str | os.PathLike] = None) -> Path:
    """``<cache>/runs/<name>-<hash>``: where :func:`train_or_load` keeps the run of ``config``."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "runs" / f"{config.name}-{config_hash(config)}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX), so that parallel callers train a configuration once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no lock; the atomic checkpoint writes still keep the files consistent
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def train_or_load(config: TrainConfig, cache_dir: Optional[str | os.PathLike] = None, device: str = "cpu",
                  progress: Optional[bool] = None) -> tuple[nn.Module, GaussianDiffusion, TrainConfig]:
    """The EMA network, diffusion and config of ``config`` trained to ``config.steps``: loaded from the cache
    when a finished run exists, otherwise trained (resuming an interrupted run) and stored there first.

    cache_dir: default ``$DDPM_CORE_CACHE`` or ``~/.cache/ddpm_core``. device: where the returned network lives.
    progress: override ``config.progress``. The caller's torch RNG state is left as it was either way, so code
    after this call behaves the same whether the model was trained or loaded.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if progress is not None:
        config = config.replace(progress=bool(progress))
    run = run_dir_for(config, cache_dir)
    latest = run / "latest.pt"
    with _locked(run.parent / f".{run.name}.lock"):
        done = latest.exists() and int(read_checkpoint(latest)["step"]) >= config.steps
        if not done:
            with torch.random.fork_rng():
                trainer = Trainer(config, out_dir=str(run), resume=True)
                try:
                    trainer.fit()
                finally:
                    trainer.close()
    return load_checkpoint(latest, device=device)
