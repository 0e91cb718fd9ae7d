"""Networks for eps_theta(x_t, t): the paper's U-Net (App. B), small presets of it, and an MLP for 2-D data.

Every network is called as ``model(x_t, t)`` with t the paper's timestep (1..T), shape (B,), and returns a tensor
shaped like x_t. A network built with ``num_classes=K > 0`` is class-conditional: ``model(x_t, t, y)`` with labels y
(B,) in 0..K, K being the null label (see ``ddpm_core.guidance``).
"""
from .layers import timestep_embedding
from .mlp import MLPConfig, MLPDenoiser
from .presets import NETWORKS, build_model, count_parameters
from .unet import UNet, UNetConfig

__all__ = ["UNet", "UNetConfig", "MLPDenoiser", "MLPConfig", "NETWORKS", "build_model", "count_parameters",
           "timestep_embedding"]
