"""Where ``ddpm_core`` keeps data sets and cached artefacts on disk.

* ``cache_dir()``: ``$DDPM_CORE_CACHE`` if set, else ``~/.cache/ddpm_core`` (trained helper models, statistics).
* ``data_home()``: ``$DDPM_CORE_DATA`` if set, else ``cache_dir() / "data"`` (CIFAR-10, MNIST, ...).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "data_home"]


def cache_dir() -> Path:
    """The cache folder: ``$DDPM_CORE_CACHE`` or ``~/.cache/ddpm_core`` (not created here)."""
    env = os.environ.get("DDPM_CORE_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/ddpm_core").expanduser()


def data_home() -> Path:
    """The default root of the data sets: ``$DDPM_CORE_DATA`` or ``cache_dir() / "data"`` (not created here)."""
    env = os.environ.get("DDPM_CORE_DATA")
    return Path(env).expanduser() if env else cache_dir() / "data"
