"""ddpm_core.score_matching against closed forms: Gaussian data, where every objective and posterior mean is known."""
import math

import pytest
import torch

from ddpm_core.mixtures import GaussianMixture, named_mixture
from ddpm_core.score_matching import (denoising_score_matching, divergence, dsm_target, explicit_score_matching,
                                      implicit_score_matching, importance_posterior_mean, langevin,
                                      mixture_posterior_mean, tweedie_posterior_mean, ula_gaussian_variance)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_divergence_of_a_linear_field_is_the_trace():
    A = torch.tensor([[2.0, 0.5, 0.0], [-1.0, 0.3, 4.0], [0.2, 0.0, -0.7]], dtype=torch.float64)
    x = torch.randn(5, 3, generator=_gen(), dtype=torch.float64)
    div = divergence(lambda y: y @ A.T + 1.0, x)
    torch.testing.assert_close(div, torch.full((5,), float(A.trace()), dtype=torch.float64))


def test_divergence_of_a_nonlinear_field_matches_finite_differences():
    def field(y):
        return torch.stack([torch.tanh(y[:, 0] * y[:, 1]), y[:, 0] ** 2 * y[:, 1] ** 3], dim=1)

    x = torch.randn(4, 2, generator=_gen(1), dtype=torch.float64)
    h = 1e-6
    fd = torch.zeros(4, dtype=torch.float64)
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = h
        fd += (field(x + e)[:, i] - field(x - e)[:, i]) / (2 * h)
    torch.testing.assert_close(divergence(field, x), fd, rtol=1e-7, atol=1e-8)


def test_implicit_objective_pointwise_for_a_linear_model():
    # s(x) = -a (x - b): 1/2 ||s||^2 + div s = 1/2 a^2 ||x - b||^2 - a d
    a, b = 1.7, torch.tensor([0.3, -0.2], dtype=torch.float64)
    x = torch.randn(6, 2, generator=_gen(2), dtype=torch.float64)
    got = implicit_score_matching(lambda y: -a * (y - b), x)
    torch.testing.assert_close(got, 0.5 * a**2 * ((x - b) ** 2).sum(1) - 2 * a)


def test_explicit_minus_implicit_is_half_the_fisher_information_for_gaussian_data():
    # p = N(m, v I) in 2-D: E[ESM - ISM] = 1/2 E||grad log p||^2 = d / (2 v), for any model
    m, v, n = torch.tensor([0.5, -1.0], dtype=torch.float64), 0.3, 200_000
    x = m + math.sqrt(v) * torch.randn(n, 2, generator=_gen(3), dtype=torch.float64)
    true = -(x - m) / v
    for model in (lambda y: -2.0 * y, lambda y: torch.sin(y) - y**3 / 3):
        diff = explicit_score_matching(model, x, true) - implicit_score_matching(model, x)
        se = diff.std().item() / math.sqrt(n)
        assert abs(diff.mean().item() - 2 / (2 * v)) < 5 * se


def test_dsm_target_is_the_scaled_noise():
    x0 = torch.randn(8, 3, generator=_gen(4), dtype=torch.float64)
    eps = torch.randn(8, 3, generator=_gen(5), dtype=torch.float64)
    ab = torch.linspace(0.05, 0.95, 8, dtype=torch.float64)
    x_t = ab[:, None].sqrt() * x0 + (1 - ab[:, None]).sqrt() * eps
    torch.testing.assert_close(dsm_target(x_t, x0, ab), -eps / (1 - ab[:, None]).sqrt())


def test_dsm_minus_esm_is_the_vincent_constant_for_gaussian_data():
    # x_0 ~ N(0, s^2): q(x_t) = N(0, ab s^2 + 1 - ab); E[DSM - ESM] = d/2 (1 / (1 - ab) - 1 / (ab s^2 + 1 - ab))
    s2, ab, n, d = 0.25, 0.6, 200_000, 2
    x0 = math.sqrt(s2) * torch.randn(n, d, generator=_gen(6), dtype=torch.float64)
    noise = torch.randn(n, d, generator=_gen(7), dtype=torch.float64)
    x_t = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise
    var_t = ab * s2 + 1 - ab
    const = d / 2 * (1 / (1 - ab) - 1 / var_t)
    for model in (lambda y: -y / var_t, lambda y: torch.tanh(y)):
        diff = denoising_score_matching(model, x0, ab, noise) - explicit_score_matching(model, x_t, -x_t / var_t)
        se = diff.std().item() / math.sqrt(n)
        assert abs(diff.mean().item() - const) < 5 * se


def test_tweedie_with_the_gaussian_marginal_score_is_gaussian_conditioning():
    m, s2 = 0.4, 0.5
    x_t = torch.randn(10, 1, generator=_gen(8), dtype=torch.float64)
    for ab in (0.01, 0.5, 0.99):
        var_t = ab * s2 + 1 - ab
        score = -(x_t - math.sqrt(ab) * m) / var_t
        expected = m + math.sqrt(ab) * s2 / var_t * (x_t - math.sqrt(ab) * m)
        torch.testing.assert_close(tweedie_posterior_mean(x_t, score, ab), expected)


def test_tweedie_with_the_mixture_score_equals_the_component_posterior_mean():
    mix = named_mixture("gaussian_mixture")
    x_t = 1.5 * torch.randn(64, 2, generator=_gen(9), dtype=torch.float64)
    for ab in (0.02, 0.3, 0.9, 0.999):
        torch.testing.assert_close(tweedie_posterior_mean(x_t, mix.score(x_t, ab), ab),
                                   mixture_posterior_mean(mix, x_t, ab), rtol=1e-9, atol=1e-9)


def test_mixture_posterior_mean_of_a_point_mass_is_the_point():
    mix = GaussianMixture([1.0], [[0.7, -0.3]], 0.0)
    x_t = torch.randn(5, 2, generator=_gen(10), dtype=torch.float64)
    torch.testing.assert_close(mixture_posterior_mean(mix, x_t, 0.4), mix.means.expand(5, 2))


def test_importance_posterior_mean_agrees_within_its_standard_error():
    mix = named_mixture("gaussian_mixture")
    x0 = mix.sample(100_000, _gen(11))
    x_t = torch.tensor([[0.0, 0.0], [0.8, -0.3], [-0.5, 0.9]], dtype=torch.float64)
    ab = 0.5
    mean, se = importance_posterior_mean(x_t, ab, x0)
    exact = mixture_posterior_mean(mix, x_t, ab)
    assert ((mean - exact).abs() < 5 * se).all()
    assert (se < 0.01).all()


def test_langevin_reaches_the_biased_stationary_variance():
    v, delta, n = 0.5, 0.2, 40_000
    x = langevin(lambda y: -(y - 1.0) / v, torch.zeros(n, 1, dtype=torch.float64), delta, 300, generator=_gen(12))
    predicted = ula_gaussian_variance(v, delta)            # v / (1 - 0.1) = 0.5556
    assert abs(x.mean().item() - 1.0) < 5 * math.sqrt(predicted / n)
    assert abs(x.var().item() / predicted - 1) < 5 * math.sqrt(2 / n)
    assert x.var().item() / v - 1 > 0.05                    # the bias is visible


def test_ula_gaussian_variance_is_the_fixed_point():
    v, delta = 0.04, 0.01
    V = ula_gaussian_variance(v, delta)
    assert V == pytest.approx((1 - delta / (2 * v)) ** 2 * V + delta, rel=1e-12)
    assert ula_gaussian_variance(1.0, 1e-8) == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize("call, match", [
    (lambda: divergence(lambda y: y, torch.zeros(3)), "shape \\(B, d\\)"),
    (lambda: divergence(lambda y: y[:, :1], torch.zeros(3, 2)), "x's shape"),
    (lambda: implicit_score_matching("not a function", torch.zeros(3, 2)), "callable"),
    (lambda: dsm_target(torch.zeros(2, 2), torch.zeros(2, 2), 1.0), "strictly between 0 and 1"),
    (lambda: tweedie_posterior_mean(torch.zeros(2, 2), torch.zeros(2, 3), 0.5), "x_t's shape"),
    (lambda: mixture_posterior_mean("mixture", torch.zeros(2, 2), 0.5), "GaussianMixture"),
    (lambda: importance_posterior_mean(torch.zeros(2, 2), 0.0, torch.zeros(5, 2)), "alpha_bar"),
    (lambda: langevin(lambda y: y, torch.zeros(2, 2), -0.1, 3), "step_size"),
    (lambda: langevin(lambda y: y, torch.zeros(2, 2), 0.1, 2.5), "n_steps"),
    (lambda: ula_gaussian_variance(0.1, 0.5), "stable"),
    (lambda: explicit_score_matching(lambda y: y, torch.zeros(2, 2), torch.zeros(2, 1)), "true_score"),
])
def test_bad_input_is_rejected_with_a_clear_message(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
