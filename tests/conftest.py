"""Shared fixtures: analytic models for Gaussian data, whose optimal denoiser is known in closed form."""
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def gaussian_oracle(diffusion, m: float, s: float):
    """The optimal eps-predictor for x_0 ~ N(m, s^2 I): E[eps | x_t] = sqrt(1 - ab_t)(x_t - sqrt(ab_t) m) / (ab_t s^2 + 1 - ab_t)."""
    def model(x, t):
        ab = diffusion.schedule.gather("alpha_bars", t, x)
        return (1 - ab).sqrt() * (x - ab.sqrt() * m) / (ab * s * s + 1 - ab)
    return model


@pytest.fixture
def oracle():
    return gaussian_oracle


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for the cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def load_module(name: str, path: Path) -> ModuleType:
    """Import a script that is not part of the package (tools/, book/_ext/) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
