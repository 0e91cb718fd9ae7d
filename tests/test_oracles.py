"""The Gaussian oracle and the SymPy moment helper against independent computations."""
import pytest
import sympy as sp
import torch

from ddpm_core.oracles import gaussian_eps_oracle
from ddpm_core.schedules import Schedule
from ddpm_core.symbolic import gaussian_expectation


def test_oracle_is_the_posterior_mean_of_eps_by_monte_carlo():
    # Draw (x0, eps) jointly, bin x_t finely around one value and average eps there: E[eps | x_t] by simulation.
    sched = Schedule.linear()
    m, s, t = 0.3, 0.5, 300
    g = torch.Generator().manual_seed(0)
    ab = sched.alpha_bars[t]
    x0 = m + s * torch.randn(4_000_000, generator=g, dtype=torch.float64)
    eps = torch.randn(4_000_000, generator=g, dtype=torch.float64)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    for centre in (-0.5, 0.2, 0.9):
        sel = (xt - centre).abs() < 0.01
        mc = eps[sel].mean()
        exact = gaussian_eps_oracle(sched, m, s)(torch.tensor([centre], dtype=torch.float64),
                                                   torch.tensor([t]))[0]
        assert abs(mc - exact) < 5 * eps[sel].std() / sel.sum().sqrt() + 0.003


def test_oracle_special_cases_and_errors():
    sched = Schedule.linear()
    x = torch.randn(5, 2, dtype=torch.float64)
    t = torch.tensor([1, 2, 500, 999, 1000])
    ab = sched.alpha_bars[t][:, None]
    torch.testing.assert_close(gaussian_eps_oracle(sched)(x, t), (1 - ab).sqrt() * x)       # N(0, I): sqrt(1-ab) x
    torch.testing.assert_close(gaussian_eps_oracle(sched, 0.7, 0.0)(x, t),                   # point mass: exact eps
                               (x - ab.sqrt() * 0.7) / (1 - ab).sqrt())
    with pytest.raises(ValueError, match="std"):
        gaussian_eps_oracle(sched, 0.0, -1.0)
    with pytest.raises(ValueError, match="t must lie"):
        gaussian_eps_oracle(sched)(x, torch.tensor([0, 1, 2, 3, 4]))


def test_gaussian_expectation_moments():
    u, v, a = sp.symbols("u v a", real=True)
    assert gaussian_expectation(u**4, (u,)) == 3
    assert gaussian_expectation(u**6 * v**2, (u, v)) == 15
    assert gaussian_expectation((a + u) ** 2, (u,)) == sp.expand(a**2 + 1)
    assert gaussian_expectation(u**3 + u * v, (u, v)) == 0
    with pytest.raises(ValueError, match="polynomial"):
        gaussian_expectation(sp.exp(u), (u,))
