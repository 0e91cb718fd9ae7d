"""Training: configurations and presets, the training loop, checkpoints, EMA, multi-process training, and
``train_or_load`` for reusing trained models.

    from ddpm_core.train import get_preset, Trainer, load_checkpoint, train_or_load
    model, diffusion, config = train_or_load(get_preset("digits"))      # trained once, then cached
"""
from .cache import run_dir_for, train_or_load
from .checkpoint import CheckpointError, atomic_save, build_diffusion, build_network, load_checkpoint, read_checkpoint
from .config import LOSSES, PRESETS, RUNTIME_FIELDS, TrainConfig, config_hash, get_preset
from .ema import EMA
from .engine import NonFiniteLossError, Trainer, resolve_device

__all__ = [
    "TrainConfig", "PRESETS", "LOSSES", "RUNTIME_FIELDS", "get_preset", "config_hash",
    "Trainer", "NonFiniteLossError", "resolve_device", "EMA",
    "atomic_save", "CheckpointError", "read_checkpoint", "load_checkpoint", "build_diffusion", "build_network",
    "train_or_load", "run_dir_for",
]
