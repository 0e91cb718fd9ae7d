"""The DDPM U-Net (Ho et al. 2020, App. B), a port of the official ``diffusion_tf/models/unet.py``.

A PixelCNN++-like backbone: ``len(ch_mult)`` resolution levels, each with ``num_res_blocks`` wide ResNet blocks of
``ch * ch_mult[i]`` channels (self-attention after each block at the resolutions in ``attn_resolutions``), a
downsampling step between levels, a middle of ResBlock-Attention-ResBlock, and a mirrored decoder whose levels have
``num_res_blocks + 1`` blocks, each fed the concatenation of the running activation and one stored encoder
activation (all activations of the encoder, including the input convolution's and the downsamplers', are reused
exactly once). The timestep enters through a sinusoidal embedding of width ``ch`` followed by an MLP to ``4 ch``.

Call convention: ``model(x_t, t)`` with x_t of shape (B, C, H, W) and t of shape (B,); the network embeds the
number it is given as is (the package passes the paper's t = 1..T).

Class conditioning (not in the paper): with ``num_classes = K > 0`` a learned embedding of the label y in 0..K
(K = "no label", the null condition of classifier-free guidance; Ho & Salimans 2022) is added to the time
embedding, and the network is called as ``model(x_t, t, y)``. ``num_classes = 0`` (the default) builds exactly the
unconditional network, with the same parameters.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import batch_labels, batch_timesteps, check_input, AttnBlock, Downsample, ResBlock, Upsample, default_init_, timestep_embedding

__all__ = ["UNetConfig", "UNet"]


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`UNet` (names as in the official code).

    image_size: side of the (square) training images; sets which levels get attention.
    ch: base channel count; level i has ``ch * ch_mult[i]`` channels. The time embedding has ``4 * ch``.
    attn_resolutions: spatial sides at which self-attention follows each ResBlock (the paper: (16,)).
    resamp_with_conv: strided/following 3x3 convolutions in down/upsampling (else average pool / plain nearest).
    num_groups, norm_eps: GroupNorm groups and epsilon (TensorFlow's group_norm: 32 and 1e-6).
    attn_head_dim: channels per attention head; None = a single head over all channels (the paper).
    num_classes: K > 0 adds a class embedding (K + 1 rows, the last for "no label"); 0 = unconditional.
    """

    image_size: int = 32
    in_channels: int = 3
    out_channels: int = 3
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)
    num_res_blocks: int = 2
    attn_resolutions: tuple[int, ...] = (16,)
    dropout: float = 0.1
    resamp_with_conv: bool = True
    num_groups: int = 32
    norm_eps: float = 1e-6
    attn_head_dim: int | None = None
    num_classes: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0 (0 = unconditional), got {self.num_classes!r}")
        self.ch_mult = tuple(int(m) for m in self.ch_mult)
        self.attn_resolutions = tuple(int(r) for r in self.attn_resolutions)
        for name in ("image_size", "in_channels", "out_channels", "ch", "num_res_blocks", "num_groups"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.ch_mult or min(self.ch_mult) < 1:
            raise ValueError(f"ch_mult must be a non-empty tuple of positive integers, got {self.ch_mult}")
        factor = 2 ** (len(self.ch_mult) - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size={self.image_size} must be divisible by 2**(len(ch_mult) - 1) = {factor} "
                             f"for ch_mult={self.ch_mult}")
        widths = sorted({self.ch * m for m in self.ch_mult} | {self.ch})
        if any(w % self.num_groups for w in widths):
            raise ValueError(f"num_groups={self.num_groups} must divide every channel count {widths} "
                             f"(ch={self.ch}, ch_mult={self.ch_mult})")
        allowed = self.resolutions
        if not set(self.attn_resolutions) <= set(allowed):
            raise ValueError(f"attn_resolutions={self.attn_resolutions} must be among the level resolutions "
                             f"{allowed} of image_size={self.image_size}, ch_mult={self.ch_mult}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.attn_head_dim is not None:
            attn_widths = {self.ch * m for m, r in zip(self.ch_mult, allowed) if r in self.attn_resolutions}
            attn_widths.add(self.ch * self.ch_mult[-1])                      # the middle attention
            if self.attn_head_dim < 1 or any(w % self.attn_head_dim for w in attn_widths):
                raise ValueError(f"attn_head_dim={self.attn_head_dim} must divide the attention widths "
                                 f"{sorted(attn_widths)}")

    @property
    def resolutions(self) -> tuple[int, ...]:
        """Spatial side of each level for ``image_size`` inputs, e.g. (32, 16, 8, 4) for CIFAR-10."""
        return tuple(self.image_size // 2 ** i for i in range(len(self.ch_mult)))


class _Level(nn.Module):
    """One resolution of the encoder or decoder: ResBlocks, each followed by attention or nothing, then a resampler."""

    def __init__(self, res: list[ResBlock], attn: list[nn.Module], resample: nn.Module | None) -> None:
        super().__init__()
        self.res = nn.ModuleList(res)
        self.attn = nn.ModuleList(attn)
        self.resample = resample


class UNet(nn.Module):
    """The noise-prediction network eps_theta(x_t, t) of Ho et al. (2020), App. B. See the module docstring."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, got {type(config).__name__}")
        self.config = c = config
        temb_dim = 4 * c.ch
        block = dict(temb_dim=temb_dim, dropout=c.dropout, num_groups=c.num_groups, eps=c.norm_eps)
        attn = dict(head_dim=c.attn_head_dim, num_groups=c.num_groups, eps=c.norm_eps)
        n_levels = len(c.ch_mult)

        self.time_embed = nn.Sequential(default_init_(nn.Linear(c.ch, temb_dim)), nn.SiLU(),
                                        default_init_(nn.Linear(temb_dim, temb_dim)))
        self.conv_in = default_init_(nn.Conv2d(c.in_channels, c.ch, 3, padding=1))

        skip_widths = [c.ch]                                  # channels of every stored encoder activation
        width = c.ch
        self.down = nn.ModuleList()
        for i, (mult, res) in enumerate(zip(c.ch_mult, c.resolutions)):
            blocks, attns = [], []
            for _ in range(c.num_res_blocks):
                blocks.append(ResBlock(width, c.ch * mult, **block))
                width = c.ch * mult
                attns.append(AttnBlock(width, **attn) if res in c.attn_resolutions else nn.Identity())
                skip_widths.append(width)
            down = Downsample(width, c.resamp_with_conv) if i < n_levels - 1 else None
            if down is not None:
                skip_widths.append(width)
            self.down.append(_Level(blocks, attns, down))

        self.mid_block1 = ResBlock(width, width, **block)
        self.mid_attn = AttnBlock(width, **attn)
        self.mid_block2 = ResBlock(width, width, **block)

        self.up = nn.ModuleList()                             # in forward order: lowest resolution first
        for i in reversed(range(n_levels)):
            blocks, attns = [], []
            for _ in range(c.num_res_blocks + 1):
                blocks.append(ResBlock(width + skip_widths.pop(), c.ch * c.ch_mult[i], **block))
                width = c.ch * c.ch_mult[i]
                attns.append(AttnBlock(width, **attn) if c.resolutions[i] in c.attn_resolutions else nn.Identity())
            self.up.append(_Level(blocks, attns, Upsample(width, c.resamp_with_conv) if i > 0 else None))
        assert not skip_widths

        self.norm_out = nn.GroupNorm(c.num_groups, width, eps=c.norm_eps)
        self.conv_out = default_init_(nn.Conv2d(width, c.out_channels, 3, padding=1), scale=0.0)
        # Created last, so that the other weights are initialised as in the unconditional network.
        self.class_embed = nn.Embedding(c.num_classes + 1, temb_dim) if c.num_classes > 0 else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """eps_theta(x_t, t[, y]). x: (B, in_channels, H, W), H and W divisible by 2**(len(ch_mult)-1); t: (B,) or
        a scalar tensor (broadcast); y: (B,) int64 labels in 0..num_classes (num_classes = no label) or None (no
        label for every example); only for a conditional network. Returns (B, out_channels, H, W)."""
        check_input(self, x)
        c = self.config
        if x.ndim != 4 or x.shape[1] != c.in_channels:
            raise ValueError(f"x must have shape (B, {c.in_channels}, H, W), got {tuple(x.shape)}")
        factor = 2 ** (len(c.ch_mult) - 1)
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"x's height and width must be divisible by {factor}, got {tuple(x.shape[2:])}")
        t = batch_timesteps(t, x)
        y = batch_labels(y, x, c.num_classes)

        temb = self.time_embed(timestep_embedding(t, c.ch))
        if self.class_embed is not None:
            temb = temb + self.class_embed(y).to(temb.dtype)
        temb_act = F.silu(temb)                               # every ResBlock applies swish before its projection

        h = self.conv_in(x)
        hs = [h]
        for level in self.down:
            for block, attn in zip(level.res, level.attn):
                h = attn(block(h, temb_act))
                hs.append(h)
            if level.resample is not None:
                h = level.resample(h)
                hs.append(h)

        h = self.mid_block2(self.mid_attn(self.mid_block1(h, temb_act)), temb_act)

        for level in self.up:
            for block, attn in zip(level.res, level.attn):
                h = attn(block(torch.cat([h, hs.pop()], dim=1), temb_act))
            if level.resample is not None:
                h = level.resample(h)

        return self.conv_out(F.silu(self.norm_out(h)))
