"""Trained models that ship with the book: slim checkpoints keyed by the hash of their training config.

A full training checkpoint holds the optimizer and RNG states needed to resume; a *pretrained* file keeps only what
sampling and evaluation need (config, step, raw and EMA weights) and is named ``<name>-<config_hash>.pt``, so a
changed config can never pick up a stale model. ``experiments/digits_models.py`` writes them to ``book/models/``
and records the command and machine that trained them; :func:`load_pretrained` finds them there and otherwise
trains (and caches) the model with :func:`ddpm_core.train.train_or_load`.

Where the shipped models are: the ``models_dir`` argument, else the environment variable ``DDPM_CORE_MODELS``. The
package never guesses a folder from where it is installed (a wheel has no ``book/``): the book's chapters pass
``models_dir="models"`` (they run in ``book/``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from .cache import train_or_load
from .checkpoint import atomic_save, load_checkpoint, read_checkpoint
from .config import TrainConfig, config_hash

__all__ = ["MODELS_ENV", "default_models_dir", "pretrained_name", "export_pretrained", "find_pretrained",
           "load_pretrained"]


MODELS_ENV = "DDPM_CORE_MODELS"


def default_models_dir() -> Optional[Path]:
    """The folder named by ``$DDPM_CORE_MODELS``, or None when it is not set."""
    env = os.environ.get(MODELS_ENV)
    return Path(env).expanduser() if env else None


def _models_dir(models_dir: Optional[str | os.PathLike]) -> Optional[Path]:
    if models_dir is None:
        return default_models_dir()
    if not isinstance(models_dir, (str, os.PathLike)):
        raise TypeError(f"models_dir must be a path or None, got {type(models_dir).__name__}")
    path = Path(models_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"models_dir={str(models_dir)!r} is not a folder (the book's shipped models are in "
                                "its book/models folder)")
    return path


def pretrained_name(config: TrainConfig) -> str:
    """``<config.name>-<hash of everything that changes the weights>.pt``."""
    return f"{config.name}-{config_hash(config)}.pt"


def export_pretrained(checkpoint: str | os.PathLike, models_dir: str | os.PathLike) -> Path:
    """Write the slim copy of a training checkpoint (a file or run folder) into ``models_dir``; returns its path."""
    ckpt = read_checkpoint(checkpoint)
    config = TrainConfig.from_json(ckpt["config"])
    slim = {k: ckpt[k] for k in ("format", "step", "config", "model", "ema", "metrics") if k in ckpt}
    target = Path(models_dir) / pretrained_name(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(slim, target)
    return target


def find_pretrained(config: TrainConfig, models_dir: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """The shipped file for ``config`` in ``models_dir`` (default ``$DDPM_CORE_MODELS``) if one exists and was
    trained for at least ``config.steps`` steps; None otherwise (also when no folder is given or set)."""
    folder = _models_dir(models_dir)
    if folder is None:
        return None
    path = folder / pretrained_name(config)
    if path.is_file() and int(read_checkpoint(path)["step"]) >= config.steps:
        return path
    return None


def load_pretrained(config: TrainConfig, models_dir: Optional[str | os.PathLike] = None, device: Any = "cpu",
                    ema: bool = True, train_if_missing: bool = True, cache_dir: Optional[str | os.PathLike] = None):
    """``(model in eval mode, diffusion, config)`` for ``config``.

    The shipped model ``<models_dir>/<name>-<config hash>.pt`` if there is one (``models_dir`` default:
    ``$DDPM_CORE_MODELS``), else the model trained with :func:`train_or_load` (and cached) when
    ``train_if_missing``, else FileNotFoundError saying where it looked.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    path = find_pretrained(config, models_dir)
    if path is not None:
        return load_checkpoint(path, device=device, ema=ema)
    if not train_if_missing:
        folder = _models_dir(models_dir)
        where = (f"in {folder}" if folder is not None else
                 f"because no folder was given: pass models_dir= (the book's book/models) or set ${MODELS_ENV}")
        raise FileNotFoundError(f"no pretrained model {pretrained_name(config)} {where}; train it with "
                                "experiments/digits_models.py or pass train_if_missing=True")
    model, diffusion, cfg = train_or_load(config, cache_dir=cache_dir, device=device)
    if not ema:
        from .cache import run_dir_for
        return load_checkpoint(run_dir_for(config, cache_dir), device=device, ema=False)
    return model, diffusion, cfg
