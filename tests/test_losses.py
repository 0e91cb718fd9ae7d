"""Gaussian KL and the discretized decoder (Eq. 13) against torch.distributions, Monte Carlo and normalization."""
import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from ddpm_core.losses import (discretized_gaussian_bin_probs, discretized_gaussian_log_likelihood,
                              gaussian_log_likelihood, mean_flat, nats_to_bits_per_dim, normal_kl)


def test_normal_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    m1, m2 = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    lv1, lv2 = torch.randn(50, generator=g, dtype=torch.float64), torch.randn(50, generator=g, dtype=torch.float64)
    ref = kl_divergence(Normal(m1, (0.5 * lv1).exp()), Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), ref, rtol=1e-10, atol=1e-12)
    assert torch.all(normal_kl(m1, lv1, m1, lv1).abs() < 1e-12)


def test_normal_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(1)
    m1, lv1, m2, lv2 = 0.3, math.log(0.5), -0.2, math.log(1.7)
    x = m1 + math.exp(0.5 * lv1) * torch.randn(400_000, generator=g, dtype=torch.float64)
    t = lambda v: torch.tensor(v, dtype=torch.float64)
    mc = (gaussian_log_likelihood(x, t(m1), t(lv1)) - gaussian_log_likelihood(x, t(m2), t(lv2)))
    exact = normal_kl(t(m1), t(lv1), t(m2), t(lv2)).item()
    assert abs(mc.mean().item() - exact) < 4 * mc.std().item() / math.sqrt(x.numel())


def test_gaussian_log_likelihood_matches_torch():
    x, m, lv = torch.tensor([0.3, -1.0]), torch.tensor([0.0, 0.5]), torch.tensor([0.1, -2.0])
    torch.testing.assert_close(gaussian_log_likelihood(x, m, lv), Normal(m, (0.5 * lv).exp()).log_prob(x))


@pytest.mark.parametrize("mean,log_scale", [(0.0, math.log(0.1)), (0.93, math.log(0.02)), (-1.3, 0.5),
                                            (0.2, math.log(1e-3))])
def test_decoder_probabilities_sum_to_one(mean, log_scale):
    m = torch.full((3,), mean, dtype=torch.float64)
    ls = torch.full((3,), log_scale, dtype=torch.float64)
    p = discretized_gaussian_bin_probs(m, ls)
    assert p.shape == (3, 256)
    torch.testing.assert_close(p.sum(-1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-9)


def test_decoder_log_likelihood_is_log_of_bin_probability():
    g = torch.Generator().manual_seed(2)
    k = torch.randint(0, 256, (100,), generator=g)
    x = k.double() / 127.5 - 1.0
    m = torch.randn(100, generator=g, dtype=torch.float64) * 0.5
    ls = torch.full((100,), math.log(0.05), dtype=torch.float64)
    ll = discretized_gaussian_log_likelihood(x, m, ls)
    p = discretized_gaussian_bin_probs(m, ls)
    expected = torch.log(p[torch.arange(100), k].clamp(min=1e-12))
    torch.testing.assert_close(ll, expected, rtol=1e-9, atol=1e-9)
    # edges: the first and last bins extend to infinity
    edge = discretized_gaussian_log_likelihood(torch.tensor([-1.0, 1.0]), torch.tensor([-5.0, 5.0]),
                                               torch.tensor([0.0, 0.0]))
    assert torch.all(edge > -1e-4)  # log Phi(4.004) = -3.1e-5


def test_decoder_bad_input():
    with pytest.raises(ValueError, match="shapes must match"):
        discretized_gaussian_log_likelihood(torch.zeros(3), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        discretized_gaussian_log_likelihood(torch.tensor([1.5]), torch.zeros(1), torch.zeros(1))
    with pytest.raises(TypeError, match="mean1"):
        normal_kl(0.0, torch.zeros(1), torch.zeros(1), torch.zeros(1))


def test_helpers():
    assert mean_flat(torch.arange(6.0).reshape(2, 3)).tolist() == [1.0, 4.0]
    assert nats_to_bits_per_dim(torch.tensor(math.log(2) * 12), 3).item() == pytest.approx(4.0)
