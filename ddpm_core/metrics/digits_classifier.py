"""A small CNN trained on the scikit-learn digits, whose penultimate features give a digits FID ("FD_digits").

No Inception weights are needed: the classifier trains in seconds on a CPU from the digits training split
(:func:`ddpm_core.data.load_digits`), deterministically from its seed, and is cached on disk under
``cache_dir() / "digits_classifier"`` (``$DDPM_CORE_CACHE``), keyed by a hash of its configuration.

    fd = digits_fid(samples)               # samples (N, 1, 8, 8) in [-1, 1]; compared to the held-out test split

FD_digits is the Frechet distance of Gaussians fitted to these features; like FID it is only comparable between
runs that use the same extractor (same configuration) and the same reference set.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..atomic import atomic_save
from ..data import cache_dir, load_digits
from .distances import feature_statistics, frechet_distance
from .features import extract_features

__all__ = ["DigitsClassifierConfig", "DigitsCNN", "train_digits_classifier", "digits_feature_extractor",
           "digits_reference_statistics", "digits_fid", "classify_digits"]

_VERSION = 1  # bump when the architecture or the training loop changes (invalidates the cache)


@dataclass(frozen=True)
class DigitsClassifierConfig:
    """Architecture and training recipe of the digits feature network (all of it goes into the cache key)."""

    width: int = 16          # channels of the first conv layer (the second has 2 * width)
    feature_dim: int = 64    # penultimate (feature) dimension used for FD_digits
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    max_shift: int = 1       # random translations of up to this many pixels during training
    seed: int = 0


class DigitsCNN(nn.Module):
    """(B, 1, 8, 8) in [-1, 1] -> logits (B, 10); ``features`` gives the penultimate ReLU activations (B, F)."""

    def __init__(self, width: int = 16, feature_dim: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 8x8 -> 4x4
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),                                   # 4x4 -> 2x2
            nn.Flatten(),
            nn.Linear(2 * w * 4, feature_dim), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 8, 8):
            raise ValueError(f"digit images must have shape (B, 1, 8, 8), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class DigitsFeatureExtractor(nn.Module):
    """The trained classifier's feature map as a module (eval mode, no gradients): (B, 1, 8, 8) -> (B, F)."""

    def __init__(self, net: DigitsCNN, config: DigitsClassifierConfig, test_accuracy: float) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.config, self.test_accuracy = config, test_accuracy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)


def _random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (padding with the background value -1)."""
    if max_shift == 0:
        return x
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    dx = torch.randint(0, 2 * s + 1, (len(x),), generator=g)
    dy = torch.randint(0, 2 * s + 1, (len(x),), generator=g)
    rows = (dy[:, None] + torch.arange(8))[:, :, None]            # (B, 8, 1)
    cols = (dx[:, None] + torch.arange(8))[:, None, :]            # (B, 1, 8)
    batch = torch.arange(len(x))[:, None, None]
    return padded[batch, 0, rows, cols][:, None]


@torch.no_grad()
def _accuracy(net: DigitsCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    return float((net(x).argmax(1) == y).double().mean())


def train_digits_classifier(config: DigitsClassifierConfig = DigitsClassifierConfig()) -> tuple[DigitsCNN, float]:
    """Train the CNN on the digits training split; returns (network, test-split accuracy).

    Cross-entropy, AdamW with a one-cycle learning-rate schedule, random shifts of up to ``config.max_shift``
    pixels. A single CPU thread is used (faster for a network this small).

    Deterministic for a given config on a given machine: initialisation and batches come from ``config.seed``
    (torch's global RNG is left untouched).
    """
    x_train, y_train = load_digits("train").tensors
    x_test, y_test = load_digits("test").tensors
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the net is tiny: extra threads only add synchronisation cost
    try:
        with torch.enable_grad():  # callers may be evaluating under torch.no_grad()
            net = _train(config, x_train, y_train)
    finally:
        torch.set_num_threads(threads)
    return net, _accuracy(net, x_test, y_test)


def _train(config: DigitsClassifierConfig, x_train: torch.Tensor, y_train: torch.Tensor) -> DigitsCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = DigitsCNN(config.width, config.feature_dim, config.dropout)
        g = torch.Generator().manual_seed(config.seed)
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        steps = config.epochs * -(-len(x_train) // config.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps)
        for _ in range(config.epochs):
            net.train()
            perm = torch.randperm(len(x_train), generator=g)
            for start in range(0, len(perm), config.batch_size):
                idx = perm[start:start + config.batch_size]
                loss = F.cross_entropy(net(_random_shift(x_train[idx], config.max_shift, g)), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    return net.eval()


def _cache_path(config: DigitsClassifierConfig) -> str:
    key = json.dumps({"version": _VERSION, **asdict(config)}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return os.path.join(cache_dir(), "digits_classifier", f"digits_cnn_{digest}.pt")


_EXTRACTORS: dict[str, DigitsFeatureExtractor] = {}


def digits_feature_extractor(config: DigitsClassifierConfig = DigitsClassifierConfig()) -> DigitsFeatureExtractor:
    """The digits feature network for ``config``: loaded from the disk cache, or trained (seconds) and cached.

    The returned module maps (B, 1, 8, 8) images in [-1, 1] to (B, config.feature_dim) features and carries
    ``test_accuracy``, the classifier's accuracy on the held-out test split.
    """
    path = _cache_path(config)
    if path in _EXTRACTORS:
        return _EXTRACTORS[path]
    if os.path.isfile(path):
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the global RNG alone
            net = DigitsCNN(config.width, config.feature_dim, config.dropout)
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["state_dict"])
        accuracy = float(saved["test_accuracy"])
    else:
        net, accuracy = train_digits_classifier(config)
        try:
            atomic_save({"state_dict": net.state_dict(), "test_accuracy": accuracy,  # concurrent readers never
                         "config": asdict(config), "version": _VERSION}, path)  # see a partial file
        except OSError as err:  # e.g. a read-only home: keep the trained network for this process only
            warnings.warn(f"could not cache the digits classifier at {path}: {err}", stacklevel=2)
    extractor = DigitsFeatureExtractor(net, config, accuracy)
    _EXTRACTORS[path] = extractor
    return extractor


_REFERENCE_STATS: dict[tuple[str, str], tuple] = {}


def digits_reference_statistics(split: str = "test", config: DigitsClassifierConfig = DigitsClassifierConfig()
                                ) -> tuple:
    """(mu, sigma) of the features of a real digits split ("train", "test" or "all"), memoised."""
    key = (_cache_path(config), split)
    if key not in _REFERENCE_STATS:
        images = load_digits(split).tensors[0]
        _REFERENCE_STATS[key] = feature_statistics(extract_features(digits_feature_extractor(config), images))
    return _REFERENCE_STATS[key]


def digits_fid(samples: torch.Tensor, reference: str | torch.Tensor = "test",
               config: DigitsClassifierConfig = DigitsClassifierConfig()) -> float:
    """FD_digits: Frechet distance between the digits-CNN features of ``samples`` and of a reference set.

    samples: (N, 1, 8, 8) in [-1, 1], N >= 2 (use a few hundred or more; the estimate is biased upwards for small
    N). reference: a split name of the real digits ("test", the default, is never seen by the classifier;
    "train"; "all") or a tensor of images shaped like ``samples``.
    """
    if samples.ndim != 4 or samples.shape[1:] != (1, 8, 8):
        raise ValueError(f"samples must have shape (N, 1, 8, 8), got {tuple(samples.shape)}")
    extractor = digits_feature_extractor(config)
    mu1, sigma1 = feature_statistics(extract_features(extractor, samples))
    if isinstance(reference, str):
        if reference not in ("train", "test", "all"):
            raise ValueError(f"reference must be 'train', 'test', 'all' or a tensor of images, got {reference!r}")
        mu2, sigma2 = digits_reference_statistics(reference, config)
    else:
        mu2, sigma2 = feature_statistics(extract_features(extractor, reference))
    return frechet_distance(mu1, sigma1, mu2, sigma2)


@torch.no_grad()
def classify_digits(images: torch.Tensor, config: DigitsClassifierConfig = DigitsClassifierConfig()) -> torch.Tensor:
    """The digits classifier's labels (N,) int64 in 0..9 for images (N, 1, 8, 8) in [-1, 1] (e.g. to check whether a
    reconstruction from x_t keeps the class of the digit it started from)."""
    if not isinstance(images, torch.Tensor) or not images.dtype.is_floating_point:
        raise TypeError("images must be a floating-point tensor of shape (N, 1, 8, 8) in [-1, 1]")
    if images.ndim != 4 or images.shape[1:] != (1, 8, 8):
        raise ValueError(f"images must have shape (N, 1, 8, 8), got {tuple(images.shape)}")
    net = digits_feature_extractor(config).net
    return net(images.detach().float().cpu()).argmax(1)
