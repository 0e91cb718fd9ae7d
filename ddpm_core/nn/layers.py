"""Building blocks of the DDPM U-Net (Ho et al. 2020, App. B; official code ``diffusion_tf/models/unet.py``).

Every block works on images of shape (B, C, H, W) in either memory format (contiguous or channels_last) and under
``torch.autocast``. Initialisation follows the official code: weights ~ variance scaling ("fan_avg", uniform), i.e.
Xavier-uniform, biases zero, and the last layer of each residual branch (and the network output) scaled by 1e-10
so that every block starts close to the identity.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["timestep_embedding", "default_init_", "ResBlock", "AttnBlock", "Downsample", "Upsample", "batch_labels"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of the timestep (Sec. 3.3 and App. B; Vaswani et al. 2017, as in the official code).

    With ``half = dim // 2`` and frequencies ``w_i = max_period ** (-i / (half - 1))``, i = 0..half-1, returns
    ``[sin(t w_0), ..., sin(t w_{half-1}), cos(t w_0), ..., cos(t w_{half-1})]`` (a zero column is appended when
    ``dim`` is odd). ``t`` is embedded as given (the paper's t = 1..T in this package).

    Args:
        t: (B,) timesteps, integer or float.
        dim: embedding width, at least 4.
    Returns:
        (B, dim) float32 tensor.
    """
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    if dim < 4:
        raise ValueError(f"dim must be >= 4, got {dim}")
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / (half - 1)
    freqs = torch.exp(exponent)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


def default_init_(layer: nn.Module, scale: float = 1.0) -> nn.Module:
    """Official-code initialisation of a Linear/Conv layer: variance scaling with ``scale`` (1e-10 when 0), mode
    fan_avg, uniform distribution (= Xavier uniform with gain sqrt(scale)); bias zero. Returns the layer."""
    scale = 1e-10 if scale == 0 else scale
    nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(scale))
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def _conv(c_in: int, c_out: int, k: int = 3, stride: int = 1, padding: int = 1, scale: float = 1.0) -> nn.Conv2d:
    return default_init_(nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding), scale)


class ResBlock(nn.Module):
    """Wide ResNet block with the time embedding added after the first convolution (App. B).

    h = conv1(swish(GN(x))) + W_t swish(emb);  out = skip(x) + conv2(dropout(swish(GN(h)))),
    where skip is a 1x1 convolution ("NiN shortcut") when the channel count changes, else the identity.
    """

    def __init__(self, c_in: int, c_out: int, temb_dim: int, dropout: float = 0.0, num_groups: int = 32,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(num_groups, c_in, eps=eps)
        self.conv1 = _conv(c_in, c_out)
        self.temb_proj = default_init_(nn.Linear(temb_dim, c_out))
        self.norm2 = nn.GroupNorm(num_groups, c_out, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv(c_out, c_out, scale=0.0)
        self.skip = _conv(c_in, c_out, k=1, padding=0) if c_in != c_out else None

    def forward(self, x: torch.Tensor, temb_act: torch.Tensor) -> torch.Tensor:
        """x: (B, c_in, H, W); temb_act: (B, temb_dim) = swish(time embedding). Returns (B, c_out, H, W)."""
        # The in-place additions write into fresh convolution outputs, which no backward pass needs.
        h = self.conv1(F.silu(self.norm1(x)))
        h += self.temb_proj(temb_act)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        h += x if self.skip is None else self.skip(x)
        return h


class AttnBlock(nn.Module):
    """Self-attention over the H*W positions with a residual connection (App. B: "self-attention at 16x16").

    q, k, v are 1x1 projections of GN(x) (one fused 3C-channel projection); attention is computed by
    ``scaled_dot_product_attention`` with scale 1/sqrt(head_dim). ``head_dim=None`` gives one head over all
    C channels, as in the paper.
    """

    def __init__(self, channels: int, head_dim: int | None = None, num_groups: int = 32, eps: float = 1e-6) -> None:
        super().__init__()
        head_dim = channels if head_dim is None else head_dim
        if channels % head_dim:
            raise ValueError(f"head_dim={head_dim} must divide the channel count {channels}")
        self.heads = channels // head_dim
        self.norm = nn.GroupNorm(num_groups, channels, eps=eps)
        self.qkv = _conv(channels, 3 * channels, k=1, padding=0)
        self.proj_out = _conv(channels, channels, k=1, padding=0, scale=0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x))
        if qkv.is_contiguous(memory_format=torch.channels_last) and not qkv.is_contiguous():
            # (B, H, W, 3C) in memory: tokens are rows; split channels into (3, heads, head_dim).
            qkv = qkv.permute(0, 2, 3, 1).reshape(B, H * W, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            q, k, v = qkv.unbind(0)                                  # each (B, heads, HW, head_dim)
            out = F.scaled_dot_product_attention(q, k, v)             # (B, heads, HW, head_dim)
            out = out.transpose(1, 2).reshape(B, H, W, C).permute(0, 3, 1, 2)   # channels_last view of (B, C, H, W)
        else:
            qkv = qkv.reshape(B, 3, self.heads, C // self.heads, H * W).transpose(-1, -2)
            q, k, v = qkv.unbind(1)                                  # each (B, heads, HW, head_dim)
            out = F.scaled_dot_product_attention(q, k, v)
            out = out.transpose(-1, -2).reshape(B, C, H, W)
        out = self.proj_out(out)
        out += x
        return out


class Downsample(nn.Module):
    """Halve H and W: 3x3 convolution with stride 2 and TensorFlow "SAME" padding (one row/column of zeros at the
    bottom/right), as in the official code; or 2x2 average pooling when ``with_conv`` is False."""

    def __init__(self, channels: int, with_conv: bool = True) -> None:
        super().__init__()
        self.conv = _conv(channels, channels, stride=2, padding=0) if with_conv else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.avg_pool2d(x, 2)
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double H and W by nearest-neighbour interpolation, followed by a 3x3 convolution when ``with_conv``.

    The two steps are computed together as one transposed convolution with stride 2 and a 4x4 kernel built from
    the 3x3 one (each output phase sees a 2x2 footprint on the input): the same function with 16/36 of the
    multiply-adds and no upsampled intermediate. The parameter is the ordinary 3x3 ``conv.weight``.
    """

    def __init__(self, channels: int, with_conv: bool = True) -> None:
        super().__init__()
        self.conv = _conv(channels, channels) if with_conv else None
        # Per axis, nearest-neighbour x2 followed by taps (w0, w1, w2) equals the stride-2 transposed taps
        # (w2, w1 + w2, w0 + w1, w0): out[2i] = w0 x[i-1] + (w1 + w2) x[i], out[2i+1] = (w0 + w1) x[i] + w2 x[i+1].
        taps = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        self.register_buffer("taps", taps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv is None:
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        w = self.conv.weight                                         # (C_out, C_in, 3, 3)
        taps = self.taps.to(w.dtype)
        kernel = torch.einsum("mk,oikl,nl->iomn", taps, w, taps)     # (C_in, C_out, 4, 4)
        return F.conv_transpose2d(x, kernel, self.conv.bias, stride=2, padding=1)


def batch_timesteps(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Check a network's timestep argument against its input x (B, ...): a tensor of shape (B,) or a scalar
    tensor (broadcast to (B,)); returned on x's device."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"t must be a torch.Tensor of shape (B,), got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_complex():
        raise TypeError(f"t must hold timesteps (integers >= 0), got dtype {t.dtype}")
    if t.device.type == "cpu" and t.numel():  # value checks read the data back: only where that costs nothing
        if t.dtype.is_floating_point and not (torch.isfinite(t).all() and (t == t.round()).all()):
            raise ValueError(f"t must hold whole timesteps (the paper's t = 1..T), got {t.flatten()[:4].tolist()}")
        if (t < 0).any():
            raise ValueError(f"t must be >= 0 (the paper's t = 1..T), got min {t.min().item()}")
    t = t.to(x.device)
    if t.ndim == 0:
        t = t.expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"t must have shape (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
    return t


def batch_labels(y: torch.Tensor | None, x: torch.Tensor, num_classes: int) -> torch.Tensor | None:
    """Check a network's class-label argument against its input x (B, ...) and return it on x's device.

    ``num_classes = 0`` (an unconditional network): y must be None, and None is returned. ``num_classes = K > 0``:
    y is an int64 tensor of shape (B,) with values in 0..K, where K is the "no label" token (the null condition
    of classifier-free guidance, Ho & Salimans 2022); ``y=None`` means the null label for every example.
    """
    if num_classes == 0:
        if y is not None:
            raise ValueError("y was given but this network is unconditional (num_classes=0); build it with "
                             "num_classes=K > 0 to condition on class labels")
        return None
    if y is None:
        return torch.full((x.shape[0],), num_classes, dtype=torch.int64, device=x.device)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be None or an int64 torch.Tensor of shape (B,), got {type(y).__name__}")
    if y.dtype != torch.int64:
        raise TypeError(f"y must hold int64 class labels (0..{num_classes - 1}, {num_classes} = no label), "
                        f"got dtype {y.dtype}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape (B,) = ({x.shape[0]},), got {tuple(y.shape)}")
    if y.device.type == "cpu" and y.numel() and ((y < 0).any() or (y > num_classes).any()):
        raise ValueError(f"y must hold labels in 0..{num_classes} ({num_classes} = no label), got min "
                         f"{y.min().item()}, max {y.max().item()}")
    return y.to(x.device)


def check_input(module: torch.nn.Module, x: torch.Tensor) -> None:
    """A network's input must be a tensor with the dtype and device of its weights (under autocast any float
    dtype is accepted): a clear error instead of torch's matmul / device message."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    p = next(module.parameters(), None)
    if p is None:
        return
    if x.device != p.device:
        raise ValueError(f"x is on device {x.device} but the network's weights are on {p.device}; move one of "
                         "them (x.to(device) or model.to(device))")
    if x.dtype != p.dtype and not (x.dtype.is_floating_point and torch.is_autocast_enabled(x.device.type)):
        raise TypeError(f"x has dtype {x.dtype} but the network's weights are {p.dtype}; convert the input "
                        f"(x.to({p.dtype})) or the network (model.to({x.dtype}))")
