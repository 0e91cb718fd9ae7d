"""Training configuration: one plain dataclass, JSON round-trippable, and the named presets.

``cifar10`` is the paper's recipe (Ho et al. 2020, Sec. 4 and App. B, plus the official code's warmup and gradient
clipping); ``celebahq256`` / ``lsun256`` are the 256x256 recipes; ``digits`` and ``toy2d`` are small recipes that
train on a laptop CPU in minutes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from ..data import DATASET_NAMES, TOY_NAMES
from ..diffusion import PARAMETERIZATIONS, VARIANCES
from ..likelihood import DECODERS
from ..objectives import OBJECTIVES
from ..nn import NETWORKS as MODEL_PRESETS
from ..schedules import SCHEDULES

__all__ = ["LOSSES", "RUNTIME_FIELDS", "FIELD_HELP", "FIELD_CHOICES", "TrainConfig", "PRESETS", "get_preset",
           "config_hash"]

LOSSES = OBJECTIVES  # "simple" (Eq. 14), "vlb" (Eq. 5), "hybrid": see ddpm_core.loss
# Fields that change how a run is executed or reported, not what it computes: they may differ between a
# checkpoint and the run that resumes it, and they are left out of the cache key of ``train_or_load``.
RUNTIME_FIELDS = ("device", "bf16", "channels_last", "compile", "num_workers", "data_dir", "log_every",
                  "sample_every", "sample_steps", "ckpt_every", "keep_every", "n_samples", "progress")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved, as JSON, inside every checkpoint).

    Each field is documented in ``FIELD_HELP`` (listed below); the ``ddpm train`` command line is generated from
    the fields, their types, ``FIELD_HELP`` and ``FIELD_CHOICES``. Runtime fields (``RUNTIME_FIELDS``) may change
    when a run is resumed and do not enter the cache key.
    """

    name: str = "custom"
    model: str = "cifar10"
    model_overrides: dict = field(default_factory=dict)
    data: str = "cifar10"
    data_dir: Optional[str] = None
    image_size: Optional[int] = None
    flip: bool = False
    toy_size: int = 65536

    schedule: str = "linear"
    T: int = 1000
    beta_1: float = 1e-4
    beta_T: float = 0.02
    parameterization: str = "eps"
    loss: str = "simple"
    variance: str = "beta"
    clip_denoised: bool = True
    decoder: str = "discretized"

    steps: int = 800_000
    batch_size: int = 128
    lr: float = 2e-4
    adam_betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int = 5000
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    ema_warmup: bool = False
    seed: int = 0
    label_dropout: float = 0.0

    device: str = "auto"
    bf16: bool = True
    channels_last: bool = True
    compile: bool = False
    num_workers: int = 0
    log_every: int = 100
    sample_every: int = 10_000
    sample_steps: int = 0
    ckpt_every: int = 5000
    keep_every: int = 0
    n_samples: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (type, finiteness, range) and normalise numbers (ints given for floats become floats,
        ``adam_betas`` a tuple); raise ValueError / TypeError naming the field and what is allowed. Runs on
        construction and on :meth:`replace`, so every way of building a config (code, JSON, the command line's
        options and ``--set``) is checked in this one place."""
        def kind(v: Any) -> str:
            return f"{v!r} ({type(v).__name__})"

        for name in ("name", "model", "data", "schedule", "parameterization", "loss", "variance", "decoder",
                     "device"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"{name} must be a string, got {kind(getattr(self, name))}")
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise TypeError(f"data_dir must be None or a path string, got {kind(self.data_dir)}")
        if not isinstance(self.model_overrides, dict):
            raise TypeError(f"model_overrides must be a dict of network settings, got {kind(self.model_overrides)}")
        self.model_overrides = dict(self.model_overrides)
        choices = {"model": tuple(MODEL_PRESETS), "data": DATASET_NAMES, "schedule": tuple(SCHEDULES),
                   "parameterization": PARAMETERIZATIONS, "loss": LOSSES, "variance": VARIANCES, "decoder": DECODERS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed; choose one of {list(allowed)}")
        for name in ("flip", "clip_denoised", "ema_warmup", "bf16", "channels_last", "compile", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {kind(getattr(self, name))}")
        ints = {"T": 1, "steps": 0, "batch_size": 1, "warmup_steps": 0, "seed": 0, "toy_size": 1, "num_workers": 0,
                "log_every": 1, "sample_every": 0, "sample_steps": 0, "ckpt_every": 0, "keep_every": 0, "n_samples": 1}
        for name, lo in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {kind(v)}")
        if self.image_size is not None and (isinstance(self.image_size, bool) or not isinstance(self.image_size, int)
                                            or self.image_size < 1):
            raise ValueError(f"image_size must be None or an int >= 1, got {kind(self.image_size)}")
        if self.sample_steps > self.T:
            raise ValueError(f"sample_steps must be at most T = {self.T} (0 = all T steps), got {self.sample_steps}")

        def number(name: str, v: Any, lo: float, hi: float, lo_open: bool, hi_open: bool, what: str) -> float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            if ok:
                v = float(v)
                ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
            if not ok:
                raise ValueError(f"{name} must be a finite number {what}, got {kind(v)}")
            return v

        inf = math.inf
        self.lr = number("lr", self.lr, 0, inf, True, True, "> 0")
        self.adam_eps = number("adam_eps", self.adam_eps, 0, inf, True, True, "> 0")
        self.weight_decay = number("weight_decay", self.weight_decay, 0, inf, False, True, ">= 0")
        self.grad_clip = number("grad_clip", self.grad_clip, 0, inf, False, True, ">= 0 (0 = no clipping)")
        self.ema_decay = number("ema_decay", self.ema_decay, 0, 1, False, True, "in [0, 1)")
        self.label_dropout = number("label_dropout", self.label_dropout, 0, 1, False, False, "in [0, 1]")
        if self.label_dropout > 0 and not self.num_classes:
            raise ValueError(f"label_dropout={self.label_dropout} needs a class-conditional network: set "
                             "model_overrides={'num_classes': K} (K > 0)")
        self.beta_1 = number("beta_1", self.beta_1, 0, 1, True, True, "in (0, 1)")
        self.beta_T = number("beta_T", self.beta_T, 0, 1, True, True, "in (0, 1)")
        if self.beta_T < self.beta_1:
            raise ValueError(f"beta_T must be >= beta_1, got beta_1={self.beta_1}, beta_T={self.beta_T}")
        betas = self.adam_betas
        if not isinstance(betas, (list, tuple)) or len(betas) != 2:
            raise ValueError(f"adam_betas must be two numbers in [0, 1), got {kind(betas)}")
        self.adam_betas = tuple(number("adam_betas", b, 0, 1, False, True, "in [0, 1)") for b in betas)
        if self.flip and self.data in TOY_NAMES:
            raise ValueError(f"flip=True applies to images, not to the 2-D toy data={self.data!r}")

    @property
    def num_classes(self) -> int:
        """K of a class-conditional network (``model_overrides["num_classes"]``), 0 for an unconditional one."""
        k = self.model_overrides.get("num_classes", 0)
        return k if isinstance(k, int) and not isinstance(k, bool) else 0

    @property
    def is_toy(self) -> bool:
        """True for 2-D point data (scatter plots instead of image grids)."""
        return self.data in TOY_NAMES

    def to_dict(self) -> dict[str, Any]:
        """A plain dict of JSON types (tuples become lists)."""
        return json.loads(self.to_json())

    def to_json(self, indent: Optional[int] = None) -> str:
        return json.dumps(dataclasses.asdict(self), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_json(cls, s: str) -> "TrainConfig":
        return cls.from_dict(json.loads(s))

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (validated); unknown names raise ValueError."""
        d = dataclasses.asdict(self)
        unknown = sorted(set(changes) - set(d))
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; allowed: {sorted(d)}")
        d.update(changes)
        return TrainConfig(**d)


# The documentation of every TrainConfig field: the source of the class's docstring and of ``ddpm train --help``.
FIELD_HELP: dict[str, str] = {
    # what is trained
    "name": "label of the run (a preset's name)",
    "model": "the network, a key of ddpm_core.nn.NETWORKS",
    "model_overrides": "fields of the network's config to replace, e.g. {\"dropout\": 0.0}",
    "data": "data set name (cifar10, mnist, digits, folder or a 2-D toy)",
    "data_dir": "folder holding the data set's files (default $DDPM_CORE_DATA/<data>)",
    "image_size": "resize images to this side",
    "flip": "random horizontal flips of the training images",
    "toy_size": "points drawn for a 2-D toy data set",
    # diffusion (Sec. 2-4)
    "schedule": "variance schedule beta_1..beta_T (linear is the paper's, Sec. 4)",
    "T": "number of diffusion steps T",
    "beta_1": "first beta of the schedule (unused by cosine)",
    "beta_T": "last beta of the schedule (unused by cosine)",
    "parameterization": "what the network predicts: eps (Eq. 11), x0 or mean",
    "loss": "objective: simple = L_simple (Eq. 14), vlb = the true bound L (Eq. 5), hybrid = simple + 0.001 vlb",
    "variance": "sampling variance sigma_t^2: beta or beta_tilde (Sec. 3.2)",
    "clip_denoised": "clip x_0 predictions to [-1, 1] while sampling",
    "decoder": "L_0 of the bound: discretized (Eq. 13, 8-bit images) or gaussian (continuous data)",
    # optimisation (App. B)
    "steps": "total optimizer steps",
    "batch_size": "global batch size (split evenly over processes)",
    "lr": "Adam learning rate",
    "adam_betas": "Adam's beta_1 and beta_2",
    "adam_eps": "Adam's epsilon",
    "weight_decay": "Adam's weight decay",
    "warmup_steps": "linear learning-rate warmup steps",
    "grad_clip": "global gradient-norm clip (0 = off)",
    "ema_decay": "EMA decay of the weights used for sampling",
    "ema_warmup": "use min(decay, (1 + n) / (10 + n)) at EMA update n (for short runs)",
    "seed": "seed of weights, data order and noise",
    "label_dropout": "probability of replacing a label by the null label K while training a class-conditional "
                     "network (model_overrides num_classes=K): classifier-free guidance's p_uncond",
    # runtime
    "device": "auto (CUDA if available, else CPU), cpu, cuda, cuda:1, ...",
    "bf16": "bfloat16 autocast on CUDA (CPUs train in float32)",
    "channels_last": "channels_last memory format on CUDA",
    "compile": "torch.compile the network",
    "num_workers": "data loader worker processes",
    "log_every": "steps between metrics lines",
    "sample_every": "steps between sample grids (also one at the end; 0 = none)",
    "sample_steps": "steps of the sampler for those grids (0 = all T, Algorithm 2; fewer = strided)",
    "ckpt_every": "steps between checkpoints (0 = only at the end)",
    "keep_every": "also keep ckpt_<step>.pt every N steps (0 = only latest.pt)",
    "n_samples": "images in each sample grid (points in the scatter plot)",
    "progress": "show a progress bar",
}

# Fields with a fixed set of values.
FIELD_CHOICES: dict[str, tuple] = {"model": tuple(MODEL_PRESETS), "data": tuple(DATASET_NAMES),
                                   "schedule": tuple(SCHEDULES), "parameterization": PARAMETERIZATIONS,
                                   "loss": LOSSES, "variance": VARIANCES, "decoder": DECODERS}

TrainConfig.__doc__ = (TrainConfig.__doc__ or "") + "\n    Fields:\n" + "".join(
    f"        {f.name}: {FIELD_HELP.get(f.name, '(undocumented)')}\n" for f in dataclasses.fields(TrainConfig))


# Fields added after models were shipped: left out of the hash while they hold their default, so that the files
# in book/models (named by the hash) are still found.
_HASH_IF_SET = {"label_dropout": 0.0}


def config_hash(config: TrainConfig, length: int = 12) -> str:
    """Hex digest of everything in ``config`` that changes the trained weights (``RUNTIME_FIELDS`` left out, and
    the later fields of ``_HASH_IF_SET`` while they equal their default)."""
    d = {k: v for k, v in config.to_dict().items() if k not in RUNTIME_FIELDS
         and not (k in _HASH_IF_SET and v == _HASH_IF_SET[k])}
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:length]


_PAPER = dict(schedule="linear", T=1000, beta_1=1e-4, beta_T=0.02, parameterization="eps", loss="simple",
              adam_betas=(0.9, 0.999), warmup_steps=5000, grad_clip=1.0, ema_decay=0.9999, flip=True)

PRESETS: dict[str, TrainConfig] = {
    # The paper's CIFAR-10 run (Table 1, FID 3.17): 35.7M-parameter U-Net with dropout 0.1, Adam 2e-4, batch 128,
    # 800k steps, EMA 0.9999, random flips, sigma_t^2 = beta_t; warmup and clipping from the official code.
    "cifar10": TrainConfig(name="cifar10", model="cifar10", data="cifar10", lr=2e-4, batch_size=128,
                           steps=800_000, variance="beta", **_PAPER),
    # The 256x256 runs (CelebA-HQ 0.5M steps; LSUN Church 1.2M, Cat 1.8M, Bedroom 2.4M, the last without flips):
    # 114M-parameter U-Net, dropout 0, Adam 2e-5, batch 64, sigma_t^2 = beta~_t. Data: a folder of images.
    "celebahq256": TrainConfig(name="celebahq256", model="celebahq256", data="folder", image_size=256, lr=2e-5,
                               batch_size=64, steps=500_000, variance="beta_tilde", sample_every=20_000,
                               n_samples=16, **_PAPER),
    "lsun256": TrainConfig(name="lsun256", model="lsun256", data="folder", image_size=256, lr=2e-5,
                           batch_size=64, steps=1_200_000, variance="beta_tilde", sample_every=20_000,
                           n_samples=16, **_PAPER),
    # scikit-learn's 8x8 digits (1437 training images): recognisable samples after about 5 minutes on 2 CPU cores
    # (1500 steps of ~11 GFLOP each; digits are already legible after ~500 steps). Dropout is off: the run is far
    # too short to overfit, and it learns slightly faster without.
    "digits": TrainConfig(name="digits", model="digits", model_overrides={"dropout": 0.0}, data="digits", lr=2e-3,
                          batch_size=128, steps=1500, warmup_steps=100, grad_clip=1.0, ema_decay=0.999,
                          ema_warmup=True, variance="beta", log_every=50, sample_every=1500, ckpt_every=500,
                          n_samples=64),
    # The digits recipe with class labels (Ho & Salimans 2022): a class embedding (10 digits + the null label) and
    # label dropout p_uncond = 0.2, so that one network gives eps(x_t, t, y) and eps(x_t, t, null) for guidance.
    # Half the width of `digits` (ch=16): about a quarter of its training cost, and cheap enough to sample with
    # guidance (two network calls per step) inside the book's CPU budget.
    "digits_cond": TrainConfig(name="digits_cond", model="digits",
                               model_overrides={"dropout": 0.0, "ch": 16, "num_classes": 10},
                               data="digits", lr=2e-3, batch_size=128, steps=1500, warmup_steps=100, grad_clip=1.0,
                               ema_decay=0.999, ema_warmup=True, variance="beta", label_dropout=0.2, log_every=50,
                               sample_every=0, ckpt_every=500, n_samples=64),
    # A 2-D toy (the swiss roll) with the residual MLP; unbounded data, so no clipping and a Gaussian decoder.
    "toy2d": TrainConfig(name="toy2d", model="toy2d", data="swiss_roll", lr=1e-3, batch_size=256, steps=3000,
                         warmup_steps=100, grad_clip=1.0, ema_decay=0.995, ema_warmup=True, variance="beta",
                         clip_denoised=False, decoder="gaussian", log_every=50, sample_every=1000,
                         ckpt_every=500, n_samples=1000),
    # The ground-truth toys (exact density and score known, ddpm_core.mixtures.named_mixture): the same recipe.
    "mixture2d": TrainConfig(name="mixture2d", model="toy2d", data="gaussian_mixture", lr=1e-3, batch_size=256,
                             steps=4000, warmup_steps=100, grad_clip=1.0, ema_decay=0.995, ema_warmup=True,
                             variance="beta", clip_denoised=False, decoder="gaussian", log_every=50,
                             sample_every=2000, ckpt_every=1000, n_samples=1000),
    # The 2-D mixture with its component as the class label (chapter 21): classifier-free guidance of a trained
    # model against the exact guided scores.
    "mixture2d_cond": TrainConfig(name="mixture2d_cond", model="toy2d", model_overrides={"num_classes": 3},
                                  data="gaussian_mixture", lr=1e-3, batch_size=256, steps=4000, warmup_steps=100,
                                  grad_clip=1.0, ema_decay=0.995, ema_warmup=True, variance="beta",
                                  clip_denoised=False, decoder="gaussian", label_dropout=0.2, log_every=50,
                                  sample_every=0, ckpt_every=1000, n_samples=1000),
    "mixture1d": TrainConfig(name="mixture1d", model="toy2d", model_overrides={"dim": 1}, data="gaussian_mixture_1d",
                             lr=1e-3, batch_size=256, steps=4000, warmup_steps=100, grad_clip=1.0, ema_decay=0.995,
                             ema_warmup=True, variance="beta", clip_denoised=False, decoder="gaussian",
                             log_every=50, sample_every=0, ckpt_every=1000, n_samples=1000),
}


def get_preset(name: str, **overrides: Any) -> TrainConfig:
    """A copy of the preset ``name`` (one of ``PRESETS``) with ``overrides`` applied."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)
