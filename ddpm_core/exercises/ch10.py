"""Checkers for chapter 10, the U-Net: the sinusoidal timestep embedding and the parameter count of a ResNet block."""
from __future__ import annotations

import math

import torch

from ..nn.layers import ResBlock, timestep_embedding
from ..nn.presets import count_parameters
from ._checker import Case, Mistake, check_function

__all__ = ["check_timestep_embedding", "check_resblock_params"]


def _freqs(dim: int, denom_shift: int = 1) -> torch.Tensor:
    half = dim // 2
    return 10000.0 ** (-torch.arange(half, dtype=torch.float64) / (half - denom_shift))


def _emb(t: torch.Tensor, dim: int, shift: int = 0, swap: bool = False, denom_shift: int = 1,
         interleave: bool = False) -> torch.Tensor:
    args = (t.double() - shift)[:, None] * _freqs(dim, denom_shift)[None, :]
    s, c = torch.sin(args), torch.cos(args)
    if swap:
        s, c = c, s
    if interleave:
        return torch.stack([s, c], dim=-1).flatten(1)
    return torch.cat([s, c], dim=1)


def _emb_cases() -> list[Case]:
    g = torch.Generator().manual_seed(10)
    return [
        Case("t = 1, 2, 17, 500, 999, 1000 with dim 128 (the CIFAR-10 network's width)",
             {"t": torch.tensor([1, 2, 17, 500, 999, 1000]), "dim": 128}),
        Case("random t in 1..1000 with dim 32", {"t": torch.randint(1, 1001, (8,), generator=g), "dim": 32}),
        Case("t = 1 and t = T = 1000 with the smallest width, dim 4", {"t": torch.tensor([1, 1000]), "dim": 4}),
    ]


def _emb_reference(t, dim):
    return timestep_embedding(t, dim)


def check_timestep_embedding(student) -> bool:
    """Exercise: ``embed(t, dim)`` returns the (B, dim) sinusoidal embedding of the steps ``t`` (shape (B,), the
    paper's 1..T, used as is) for an even ``dim = 2h``: [sin(w_0 t), ..., sin(w_{h-1} t), cos(w_0 t), ...,
    cos(w_{h-1} t)] with w_i = 10000^(-i/(h-1)), as ``ddpm_core.nn.timestep_embedding`` computes it."""
    mistakes = [
        Mistake(lambda t, dim: _emb(t, dim, shift=1),
                "your embedding is that of t - 1: this package feeds the network the paper's t = 1..T as is (only "
                "the converter for the released, 0-based networks shifts it)."),
        Mistake(lambda t, dim: _emb(t, dim, swap=True),
                "sines and cosines are swapped: the sines come first, then the cosines."),
        Mistake(lambda t, dim: _emb(t, dim, denom_shift=0),
                "the frequencies are 10000^(-i/(h-1)), i = 0..h-1, so that the slowest one is exactly 1/10000; "
                "you divided by h."),
        Mistake(lambda t, dim: _emb(t, dim, interleave=True),
                "you interleave sin and cos (sin w_0 t, cos w_0 t, sin w_1 t, ...): the official code concatenates "
                "all the sines, then all the cosines."),
    ]
    return check_function("check_timestep_embedding", student, _emb_reference, _emb_cases(), mistakes=mistakes,
                          hint="emb(t) = (sin(w_i t) for i < h, cos(w_i t) for i < h), w_i = 10000^(-i/(h-1)).",
                          rtol=0.0, atol=2e-4)


def _params_reference(c_in: int, c_out: int, temb_dim: int) -> int:
    with torch.device("meta"):
        return count_parameters(ResBlock(c_in, c_out, temb_dim))


def _params_formula(c_in, c_out, temb_dim, *, skip="when_needed", biases=True, norms=True) -> int:
    b = 1 if biases else 0
    n = (2 * c_in + 2 * c_out) if norms else 0
    n += 9 * c_in * c_out + b * c_out + temb_dim * c_out + b * c_out + 9 * c_out * c_out + b * c_out
    if skip == "always" or (skip == "when_needed" and c_in != c_out):
        n += c_in * c_out + b * c_out
    return n


def check_resblock_params(student) -> bool:
    """Exercise: ``resblock_params(c_in, c_out, temb_dim)`` returns the number of parameters of
    ``ResBlock(c_in, c_out, temb_dim)``: two group norms, two 3x3 convolutions, the time projection and, when
    c_in != c_out, a 1x1 skip convolution. The checker counts the package's real block (on the meta device)."""
    cases = [Case(f"c_in = {a}, c_out = {b}, temb_dim = {d}", {"c_in": a, "c_out": b, "temb_dim": d})
             for a, b, d in [(128, 256, 512), (256, 256, 512), (512, 256, 512), (32, 96, 128), (64, 64, 256)]]
    mistakes = [
        Mistake(lambda c_in, c_out, temb_dim: _params_formula(c_in, c_out, temb_dim, skip="never"),
                "the 1x1 skip convolution is missing: when c_in != c_out the residual branch's input must be "
                "projected to c_out channels (c_in c_out weights and c_out biases)."),
        Mistake(lambda c_in, c_out, temb_dim: _params_formula(c_in, c_out, temb_dim, skip="always"),
                "when c_in == c_out the skip is the identity and has no parameters."),
        Mistake(lambda c_in, c_out, temb_dim: _params_formula(c_in, c_out, temb_dim, biases=False),
                "every convolution and the time projection also have one bias per output channel."),
        Mistake(lambda c_in, c_out, temb_dim: _params_formula(c_in, c_out, temb_dim, norms=False),
                "each group norm has a scale and an offset per channel (2 c_in for the first, 2 c_out for the "
                "second)."),
    ]
    return check_function("check_resblock_params", student, _params_reference, cases, mistakes=mistakes,
                          hint="a k x k convolution has k^2 c_in c_out weights and c_out biases; a linear map d -> c "
                               "has d c weights and c biases; a group norm over c channels has 2 c parameters.",
                          rtol=0.0, atol=0.5)
