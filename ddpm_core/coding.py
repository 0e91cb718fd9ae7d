"""Sending and receiving x_0 with the reverse process: the paper's Algorithms 3 and 4, made concrete.

Ho et al. (2020, Sec. 4.3) read the bound L of Eq. (5) as the code length of a progressive codec: the sender
transmits x_T ~ q(x_T | x_0) using p(x_T), then each x_{t-1} ~ q(x_{t-1} | x_t, x_0) using p_theta(x_{t-1} | x_t)
(Algorithm 3), and the receiver runs the same chain (Algorithm 4). Sending a *sample* of q with a distribution p that
both sides know, at a cost of about KL(q || p), needs a relative-entropy coder. This module uses minimal random coding
(Havasi, Peharz & Hernandez-Lobato 2019), the importance-sampling scheme the paper points to:

    both sides draw the same N candidates c_1..c_N ~ p from a generator seeded with a shared ``seed``;
    the sender picks index k with probability proportional to q(c_k) / p(c_k) (its own, private randomness)
    and transmits k in log2 N bits; the receiver regenerates the candidates and takes c_k.

The chosen candidate is distributed approximately as q when log N exceeds KL(q || p) by a margin (Chatterjee &
Diaconis 2018; Havasi et al. 2019), so a step costs log2 N bits and is faithful only if log2 N >~ KL in bits. The
coder here uses one N for every step, so it sends T log2 N bits per example; :attr:`Transmission.kl_bits` holds the
KL of each step, the quantity whose sum is the bound's rate (``rate_distortion``). Each batch element is coded
independently (one index per example and step). Meant for low-dimensional data (a few coordinates): the number of
candidates needed grows like exp(KL), which is why the paper presents the codec as a thought experiment for images.

Time index: the paper's t = 1..T. Row k of every (T, ...) array describes x_t with t = T - k (x_T first, x_1 last);
x_0 itself is not sent by this module (for 8-bit data it would be entropy coded with the decoder, costing L_0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .diffusion import GaussianDiffusion, Model

__all__ = ["Message", "Transmission", "Reception", "send", "receive"]


@dataclass(frozen=True)
class Message:
    """What travels from sender to receiver (besides the shared model and seed).

    indices:        (T, B) int64 in 0..N-1; row k is the index that sends x_t, t = T - k.
    num_candidates: N, the candidates per step; each index costs log2 N bits.
    seed:           the seed of the shared generator that both sides draw the candidates from.
    shape:          (B, ...), the shape of x_0 (and of every x_t).
    """

    indices: torch.Tensor
    num_candidates: int
    seed: int
    shape: tuple

    @property
    def bits_per_step(self) -> float:
        """log2 N: the cost of one index."""
        return math.log2(self.num_candidates)

    @property
    def total_bits(self) -> float:
        """Bits sent per example: T log2 N (x_T, ..., x_1)."""
        return self.indices.shape[0] * self.bits_per_step


@dataclass
class Transmission:
    """The sender's side of Algorithm 3.

    message: the :class:`Message` to transmit.

    states: (T, B, ...) the x_T, ..., x_1 the sender sent (row k: t = T - k).

    kl_bits: (T, B) KL(q || p) in bits (summed over the dimensions of one example) of the step that sent row k:
    KL(q(x_T | x_0) || p(x_T)) = L_T for row 0, KL(q(x_t | x_{t+1}, x_0) || p_theta(x_t | x_{t+1})) = L_t for the
    others, evaluated at the x_{t+1} actually sent.
    """

    message: Message
    states: torch.Tensor
    kl_bits: torch.Tensor


@dataclass
class Reception:
    """The receiver's side of Algorithm 4.

    t:       (T,) the t of each row: T, T-1, ..., 1.
    states:  (T, B, ...) the x_T, ..., x_1 the receiver reconstructed (equal to the sender's).
    pred_x0: (T, B, ...) the receiver's running estimate x0_hat(x_t) (the model's x_0 prediction, Eq. 15).
    """

    t: torch.Tensor
    states: torch.Tensor
    pred_x0: torch.Tensor


def _check_common(diffusion: GaussianDiffusion, model: Model, num_candidates: int, seed: int) -> None:
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a ddpm_core GaussianDiffusion, got {type(diffusion).__name__}")
    if not callable(model):
        raise TypeError(f"model must be callable as model(x_t, t), got {type(model).__name__}")
    if isinstance(num_candidates, bool) or not isinstance(num_candidates, int):
        raise TypeError(f"num_candidates must be an int >= 2, got {type(num_candidates).__name__}")
    if num_candidates < 2:
        raise ValueError(f"num_candidates must be >= 2 (an index among N candidates costs log2 N bits), "
                         f"got {num_candidates}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _log_normal(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, var) summed over every dimension after the first two (candidates, batch). float64."""
    x, mean, var = x.double(), mean.double(), var.double()
    lp = -0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var))
    return lp.flatten(2).sum(-1)


def _chain(diffusion: GaussianDiffusion, model: Model, shape: tuple, dtype: torch.dtype, device: torch.device,
           seed: int, num_candidates: int, choose: Callable[..., torch.Tensor]) -> tuple:
    """The loop both sides run: draw N candidates of p for x_T, then for each x_t given x_{t+1}; keep the one that
    ``choose(k, t, candidates, p_mean, p_var, x_next)`` returns. Returns (states, pred_x0), each (T, B, ...)."""
    shared = torch.Generator().manual_seed(seed)
    T, B = diffusion.T, shape[0]
    states = torch.empty((T, *shape), dtype=dtype, device=device)
    pred_x0 = torch.empty((T, *shape), dtype=dtype, device=device)
    rows = torch.arange(B, device=device)
    x_next = None
    for k, t in enumerate(range(T, 0, -1)):
        if x_next is None:                                          # x_T: p(x_T) = N(0, I)
            p_mean = torch.zeros(shape, dtype=dtype, device=device)
            p_var = torch.ones((B, *([1] * (len(shape) - 1))), dtype=dtype, device=device)
        else:                                                       # x_t: p_theta(x_t | x_{t+1})
            out = diffusion.p_mean_variance(model, x_next, t + 1)
            p_mean, p_var = out["mean"], out["variance"].to(dtype)
            pred_x0[k - 1] = out["pred_x0"]
        z = torch.randn((num_candidates, *shape), generator=shared, dtype=dtype).to(device)
        candidates = p_mean.unsqueeze(0) + p_var.sqrt().unsqueeze(0) * z
        idx = choose(k, t, candidates, p_mean, p_var, x_next)
        x_next = candidates[idx, rows]
        states[k] = x_next
    pred_x0[T - 1] = diffusion.p_mean_variance(model, x_next, 1)["pred_x0"]
    return states, pred_x0


@torch.no_grad()
def send(diffusion: GaussianDiffusion, model: Model, x0: torch.Tensor, num_candidates: int, seed: int,
         generator: Optional[torch.Generator] = None) -> Transmission:
    """Algorithm 3 with minimal random coding: code x_T, x_{T-1}, ..., x_1 for a batch x_0 of shape (B, ...).

    For every step both sides' candidates come from ``torch.Generator().manual_seed(seed)``; the sender chooses
    among them with importance weights q/p using ``generator`` (its private randomness; default torch's global
    generator). Returns the :class:`Transmission` (message, the states sent, and the KL of every step in bits).
    """
    _check_common(diffusion, model, num_candidates, seed)
    if not isinstance(x0, torch.Tensor) or not x0.dtype.is_floating_point:
        raise TypeError("x0 must be a floating-point tensor of shape (B, ...)")
    if x0.ndim < 2 or x0.shape[0] < 1 or x0.numel() == 0:
        raise ValueError(f"x0 must have shape (B, ...) with B >= 1 and at least one coordinate, "
                         f"got {tuple(x0.shape)}")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 must be finite (no NaN or inf)")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    shape, T, B = tuple(x0.shape), diffusion.T, x0.shape[0]
    ab_T = diffusion.schedule.alpha_bars[T].item()
    indices = torch.empty((T, B), dtype=torch.long)
    kl_bits = torch.empty((T, B), dtype=torch.float64)

    def choose(k, t, candidates, p_mean, p_var, x_next):
        if x_next is None:                                          # q(x_T | x_0), Eq. (4)
            q_mean = math.sqrt(ab_T) * x0
            q_var = torch.full_like(p_var, 1.0 - ab_T)
        else:                                                       # q(x_t | x_{t+1}, x_0), Eq. (6)-(7)
            q_mean, q_var, _ = diffusion.q_posterior(x0, x_next, t + 1)
            q_var = q_var.to(x0.dtype)
        log_w = _log_normal(candidates, q_mean.unsqueeze(0), q_var.unsqueeze(0)) \
            - _log_normal(candidates, p_mean.unsqueeze(0), p_var.unsqueeze(0))          # (N, B)
        probs = torch.softmax(log_w, dim=0).T.contiguous()                               # (B, N)
        idx = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1)
        qm, qv, pm, pv = q_mean.double(), q_var.double(), p_mean.double(), p_var.double()
        kl = 0.5 * (torch.log(pv / qv) + (qv + (qm - pm) ** 2) / pv - 1.0)               # Gaussian KL, per coordinate
        kl_bits[k] = (kl.expand(shape).reshape(B, -1).sum(1) / math.log(2.0)).cpu()
        indices[k] = idx
        return idx.to(x0.device)

    states, _ = _chain(diffusion, model, shape, x0.dtype, x0.device, seed, num_candidates, choose)
    message = Message(indices=indices, num_candidates=num_candidates, seed=seed, shape=shape)
    return Transmission(message=message, states=states, kl_bits=kl_bits)


@torch.no_grad()
def receive(diffusion: GaussianDiffusion, model: Model, message: Message,
            dtype: torch.dtype = torch.float32, device=None) -> Reception:
    """Algorithm 4: rebuild x_T, ..., x_1 from the indices of a :class:`Message` and the shared seed.

    ``dtype`` and ``device`` must be the sender's (the candidates are regenerated bit for bit only then). Returns
    the :class:`Reception`, with the running estimate x0_hat(x_t) after every step.
    """
    if not isinstance(message, Message):
        raise TypeError(f"message must be a ddpm_core.coding.Message, got {type(message).__name__}")
    _check_common(diffusion, model, message.num_candidates, message.seed)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    idx = message.indices
    if not isinstance(idx, torch.Tensor) or idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise TypeError("message.indices must be an integer tensor of shape (T, B)")
    shape = tuple(message.shape)
    if idx.ndim != 2 or idx.shape != (diffusion.T, shape[0]):
        raise ValueError(f"message.indices must have shape (T, B) = ({diffusion.T}, {shape[0]}) for this diffusion "
                         f"and message.shape {shape}, got {tuple(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= message.num_candidates):
        raise ValueError(f"message.indices must lie in 0..{message.num_candidates - 1} (num_candidates "
                         f"{message.num_candidates}), got values in {int(idx.min())}..{int(idx.max())}")
    device = torch.device("cpu") if device is None else torch.device(device)

    def choose(k, t, candidates, p_mean, p_var, x_next):
        return idx[k].to(device=device, dtype=torch.long)

    states, pred_x0 = _chain(diffusion, model, shape, dtype, device, message.seed, message.num_candidates, choose)
    return Reception(t=torch.arange(diffusion.T, 0, -1), states=states, pred_x0=pred_x0)
