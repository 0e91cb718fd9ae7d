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
    checksums    {key: SHA-256 hex digest of that entry's tensors and values} for every other key but "format";
                 verified on load (files written before checksums existed have none and load unverified)

Every way a file can fail to be such a checkpoint (empty, truncated, a raw pickle, keys missing, a config that is
not JSON or does not fit the weights, flipped bytes) raises :class:`CheckpointError` naming the file.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from ..atomic import atomic_copy, atomic_save  # noqa: F401 - re-exported: the one atomic-write implementation
from ..diffusion import GaussianDiffusion
from ..nn import build_model
from .config import TrainConfig

__all__ = ["FORMAT", "CheckpointError", "atomic_save", "read_checkpoint", "build_diffusion", "build_network",
           "load_checkpoint", "resolve_checkpoint", "checkpoint_checksums", "checkpoint_config", "load_weights",
           "model_data_shape"]

FORMAT = "ddpm_core.train/1"
_REQUIRED = ("step", "config", "model", "ema")  # what sampling needs; resuming also needs optimizer, rank_states


class CheckpointError(ValueError):
    """A file is not a usable ddpm_core checkpoint (unreadable, wrong format, corrupted, or for another model)."""


def _feed(h: "hashlib._Hash", obj: Any) -> None:
    """Hash ``obj`` (nested dicts / lists / tuples of tensors and plain values) canonically into ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"V{type(obj).__name__}:{obj!r}".encode())


def checkpoint_checksums(ckpt: dict) -> dict[str, str]:
    """SHA-256 digests of every entry of a checkpoint dict except ``format`` and ``checksums`` (stored in the file
    as ``ckpt["checksums"]``, so that a flipped bit in any weight, optimizer moment or RNG state is detected)."""
    out = {}
    for key in sorted(ckpt):
        if key in ("format", "checksums"):
            continue
        h = hashlib.sha256()
        _feed(h, ckpt[key])
        out[key] = h.hexdigest()
    return out


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (then its ``latest.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "latest.pt"
    if not p.is_file():
        raise FileNotFoundError(f"no checkpoint at {p}")
    return p


def _why_unreadable(p: Path, e: BaseException) -> str:
    size = p.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes); an interrupted copy? Use another checkpoint or retrain"
    if isinstance(e, pickle.UnpicklingError) and "Unsupported operand" in str(e):
        return "it is a raw pickle, not a file written by torch.save"
    if isinstance(e, pickle.UnpicklingError) and "eights only" in str(e):
        return "it holds Python objects other than tensors and plain values, which are never loaded (code could run)"
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return (f"torch.load cannot read it ({size} bytes; truncated, corrupted, or not a torch.save file): "
            f"{type(e).__name__}: {first}".rstrip(": "))


def read_checkpoint(path: str | os.PathLike, map_location: Any = "cpu", verify: bool = True) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` (no code can run) and check it.

    path: a checkpoint file or a run folder (its ``latest.pt``). verify: check the stored ``checksums`` (files
    without them, written by older versions, load unverified); pass False for a file you edited by hand.
    Raises FileNotFoundError when there is no file, :class:`CheckpointError` (a ValueError) naming the file when
    it is not a complete, intact ddpm_core checkpoint.
    """
    p = resolve_checkpoint(path)
    try:
        with warnings.catch_warnings():  # a raw pickle makes torch warn before it fails: the error below says it
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except (PermissionError, IsADirectoryError):
        raise
    except Exception as e:  # torch.load raises many types for a bad file; all mean the same thing here
        raise CheckpointError(f"{p} is not a ddpm_core checkpoint: {_why_unreadable(p, e)}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        got = f"a dict with format {ckpt.get('format')!r}" if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{p} is not a ddpm_core checkpoint: expected a dict with format {FORMAT!r}, "
                              f"got {got}")
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{p} is not a ddpm_core checkpoint: key(s) {missing} missing "
                              f"(present: {sorted(ckpt)})")
    if not isinstance(ckpt["ema"], dict) or "shadow" not in ckpt["ema"]:
        raise CheckpointError(f"{p} is not a ddpm_core checkpoint: 'ema' must be a dict with the key 'shadow'")
    if verify and "checksums" in ckpt:
        stored = ckpt["checksums"]
        now = checkpoint_checksums({k: v for k, v in ckpt.items() if k in stored})
        bad = sorted(k for k in stored if now.get(k) != stored[k])
        if bad or not isinstance(stored, dict):
            raise CheckpointError(f"{p} is corrupted: the checksum of {bad} does not match what was written (a "
                                  "damaged disk or copy?). Use another checkpoint; to load a file you changed on "
                                  "purpose, pass verify=False (--no-verify)")
    return ckpt


def checkpoint_config(ckpt: dict, path: str | os.PathLike = "checkpoint") -> TrainConfig:
    """The :class:`TrainConfig` stored in a checkpoint dict; :class:`CheckpointError` naming ``path`` if it is
    not valid JSON or not a valid configuration."""
    try:
        return TrainConfig.from_json(ckpt["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path} is not a ddpm_core checkpoint: its config is not a valid TrainConfig "
                              f"JSON string ({type(e).__name__}: {e})") from e


def load_weights(model: nn.Module, state: Any, path: str | os.PathLike, config: TrainConfig, what: str) -> None:
    """``model.load_state_dict(state)`` with a :class:`CheckpointError` naming the file and the model when the
    weights do not fit."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a ddpm_core checkpoint: {what} is a {type(state).__name__}, not a "
                              "state_dict")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in state.items()
              if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape]
    if missing or unexpected or shapes:
        detail = "; ".join(x for x in (
            f"{len(missing)} tensor(s) missing, e.g. {missing[0]}" if missing else "",
            f"{len(unexpected)} unexpected, e.g. {unexpected[0]}" if unexpected else "",
            f"{len(shapes)} of another shape, e.g. {shapes[0]}" if shapes else "") if x)
        raise CheckpointError(f"{path}: its {what} were written for another model than the one its config builds "
                              f"(model {config.model!r} with overrides {config.model_overrides}): {detail}")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its {what} do not fit model {config.model!r}: {e}") from e


def model_data_shape(model: nn.Module, config: TrainConfig) -> tuple[int, ...]:
    """The shape of one example (without the batch dimension) that ``model``, built from ``config``, takes:
    ``(dim,)`` for the 2-D toys' MLP, ``(channels, side, side)`` for a U-Net (side: ``config.image_size`` or the
    network's own)."""
    c = getattr(model, "config", None)
    if hasattr(c, "dim"):
        return (int(c.dim),)
    if c is None or not hasattr(c, "in_channels"):
        raise TypeError(f"cannot tell the input shape of a {type(model).__name__}")
    side = config.image_size or c.image_size
    return (int(c.in_channels), int(side), int(side))


def build_diffusion(config: TrainConfig) -> GaussianDiffusion:
    """The :class:`GaussianDiffusion` a config trains and samples with."""
    return GaussianDiffusion.from_settings(schedule=config.schedule, T=config.T, beta_1=config.beta_1,
                                           beta_T=config.beta_T, parameterization=config.parameterization,
                                           variance=config.variance, clip_denoised=config.clip_denoised)


def build_network(config: TrainConfig) -> nn.Module:
    """The network of ``config.model`` with ``config.model_overrides`` (freshly initialised from the global RNG)."""
    return build_model(config.model, **config.model_overrides)


def load_checkpoint(path: str | os.PathLike, device: Any = "cpu", ema: bool = True,
                    variance: Optional[str] = None, verify: bool = True
                    ) -> tuple[nn.Module, GaussianDiffusion, TrainConfig]:
    """Load a trained model for sampling: ``(network in eval mode, diffusion, config)``.

    path: a checkpoint file or a run folder (its ``latest.pt``). ema: use the EMA weights (what the paper samples
    with) rather than the raw ones. variance: override the sampling variance ("beta" / "beta_tilde"). verify:
    check the stored checksums (see :func:`read_checkpoint`).
    """
    ckpt = read_checkpoint(path, verify=verify)
    p = resolve_checkpoint(path)
    config = checkpoint_config(ckpt, p)
    if variance is not None:
        config = config.replace(variance=variance)
    with torch.random.fork_rng(devices=[]):  # the throw-away initialisation must not move the caller's RNG
        model = build_network(config)
    load_weights(model, ckpt["ema"]["shadow"] if ema else ckpt["model"], p, config,
                 "EMA weights" if ema else "weights")
    return model.to(device).eval(), build_diffusion(config), config
