"""A residual MLP denoiser for low-dimensional data (the 2-D toy distributions), called like the U-Net:
``model(x_t, t)`` with x_t of shape (B, dim) and t of shape (B,), returning (B, dim). With ``num_classes = K > 0``
it is class-conditional, ``model(x_t, t, y)``, exactly as the U-Net (see ``ddpm_core.nn.unet``)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import batch_labels, batch_timesteps, check_input, default_init_, timestep_embedding

__all__ = ["MLPConfig", "MLPDenoiser"]


@dataclass
class MLPConfig:
    """Hyper-parameters of :class:`MLPDenoiser`: data dimension, hidden width, number of residual blocks, dropout,
    and the number of classes K (0 = unconditional; K > 0 adds a class embedding with K + 1 rows, the last one
    for "no label")."""

    dim: int = 2
    width: int = 128
    depth: int = 3
    dropout: float = 0.0
    num_classes: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0 (0 = unconditional), got {self.num_classes!r}")
        for name in ("dim", "width", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.width < 4:
            raise ValueError(f"width must be >= 4 (it is also the time-embedding width), got {self.width}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class _MLPBlock(nn.Module):
    """h + W2 swish(W1 swish(LN(h)) + W_t swish(emb)): a pre-norm residual block with the time embedding added."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = default_init_(nn.Linear(width, width))
        self.temb_proj = default_init_(nn.Linear(width, width))
        self.dropout = nn.Dropout(dropout)
        self.fc2 = default_init_(nn.Linear(width, width), scale=0.0)

    def forward(self, h: torch.Tensor, temb_act: torch.Tensor) -> torch.Tensor:
        z = self.fc1(F.silu(self.norm(h))) + self.temb_proj(temb_act)
        return h + self.fc2(self.dropout(F.silu(z)))


class MLPDenoiser(nn.Module):
    """eps_theta(x_t, t) for vectors: sinusoidal t embedding -> MLP, input projection, ``depth`` residual blocks,
    LayerNorm -> swish -> output projection (initialised near zero)."""

    def __init__(self, config: MLPConfig | None = None) -> None:
        super().__init__()
        self.config = c = config if config is not None else MLPConfig()
        if not isinstance(c, MLPConfig):
            raise TypeError(f"config must be an MLPConfig, got {type(c).__name__}")
        self.time_embed = nn.Sequential(default_init_(nn.Linear(c.width, c.width)), nn.SiLU(),
                                        default_init_(nn.Linear(c.width, c.width)))
        self.proj_in = default_init_(nn.Linear(c.dim, c.width))
        self.blocks = nn.ModuleList(_MLPBlock(c.width, c.dropout) for _ in range(c.depth))
        self.norm_out = nn.LayerNorm(c.width)
        self.proj_out = default_init_(nn.Linear(c.width, c.dim), scale=0.0)
        # Created last, so that the other weights are initialised as in the unconditional network.
        self.class_embed = nn.Embedding(c.num_classes + 1, c.width) if c.num_classes > 0 else None

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, dim); t: (B,) or a scalar tensor; y: (B,) int64 labels in 0..num_classes (num_classes = no
        label) or None (no label), only for a conditional network. Returns (B, dim)."""
        check_input(self, x)
        if x.ndim != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must have shape (B, {self.config.dim}), got {tuple(x.shape)}")
        t = batch_timesteps(t, x)
        y = batch_labels(y, x, self.config.num_classes)
        temb = self.time_embed(timestep_embedding(t, self.config.width))
        if self.class_embed is not None:
            temb = temb + self.class_embed(y).to(temb.dtype)
        temb_act = F.silu(temb)
        h = self.proj_in(x)
        for block in self.blocks:
            h = block(h, temb_act)
        return self.proj_out(F.silu(self.norm_out(h)))
