"""Exact log-likelihood through the probability-flow ODE, against closed-form densities."""
import math

import pytest
import torch

from ddpm_core.mixtures import GaussianMixture
from ddpm_core.ode_likelihood import divergence, make_probes, ode_log_likelihood, standard_normal_log_prob
from ddpm_core.oracles import gaussian_eps_oracle
from ddpm_core.schedules import Schedule
from ddpm_core.sde import VPSDE, mixture_score, score_from_eps


def _exact_prior(gm, sde):
    return lambda z: gm.log_prob(z, float(sde.alpha_bar(1.0)))


def test_gaussian_data_exact_score_gives_the_exact_log_likelihood():
    sde = VPSDE()
    gm = GaussianMixture([1.0], [[0.0]], 2.0)
    x0 = torch.linspace(-6, 6, 25, dtype=torch.float64)[:, None]
    r = ode_log_likelihood(sde, mixture_score(gm, sde), x0, s_min=0.0, rtol=1e-6, atol=1e-6,
                           prior_log_prob=_exact_prior(gm, sde))
    exact = -0.5 * (x0[:, 0] / 2) ** 2 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
    assert (r.log_likelihood - exact).abs().max() < 1e-3
    # Song et al.'s N(0, I) prior costs almost nothing here (alpha_bar(1) = 4e-5)
    r2 = ode_log_likelihood(sde, mixture_score(gm, sde), x0, s_min=0.0, rtol=1e-6, atol=1e-6)
    assert (r2.log_likelihood - exact).abs().max() < 1e-3
    torch.testing.assert_close(r2.prior_log_prob, standard_normal_log_prob(r2.z))
    assert r.nfe > 10


def test_one_dim_mixture_with_exact_score():
    gm = GaussianMixture([0.2, 0.5, 0.3], [-2.0, 0.0, 1.5], [0.3, 0.5, 0.2])
    sde = VPSDE()
    x0 = gm.sample(40, torch.Generator().manual_seed(0))
    r = ode_log_likelihood(sde, mixture_score(gm, sde), x0, s_min=0.0, rtol=1e-6, atol=1e-6,
                           prior_log_prob=_exact_prior(gm, sde))
    assert (r.log_likelihood - gm.log_prob(x0)).abs().max() < 1e-3
    # bits/dim is the same number in other units
    torch.testing.assert_close(r.bits_per_dim, -r.log_likelihood / math.log(2.0))


def test_two_dim_mixture_exact_and_hutchinson():
    gm = GaussianMixture([0.4, 0.6], [[-1.0, 1.0], [1.0, -0.5]], [[0.4, 0.3], [0.5, 0.5]])
    sde = VPSDE()
    x0 = gm.sample(30, torch.Generator().manual_seed(1))
    exact = gm.log_prob(x0)
    r = ode_log_likelihood(sde, mixture_score(gm, sde), x0, s_min=0.0, rtol=1e-6, atol=1e-6,
                           prior_log_prob=_exact_prior(gm, sde))
    assert (r.log_likelihood - exact).abs().max() < 1e-3
    h = ode_log_likelihood(sde, mixture_score(gm, sde), x0, s_min=0.0, divergence_method="hutchinson", n_probes=1,
                           rtol=1e-5, atol=1e-5, prior_log_prob=_exact_prior(gm, sde),
                           generator=torch.Generator().manual_seed(2))
    err = h.log_likelihood - exact
    # one fixed probe per example: noisy per example, unbiased on average
    assert err.abs().max() > 1e-3
    assert err.mean().abs() < 4 * err.std() / math.sqrt(err.numel())


def test_eps_model_path_converges_to_the_exact_log_likelihood():
    gm = GaussianMixture([0.3, 0.7], [[-0.5], [0.8]], [0.2, 0.4])
    x0 = torch.linspace(-1, 1.5, 6, dtype=torch.float64)[:, None]
    err = {}
    for T in (100, 1000):
        sched = Schedule.linear(T, 1e-4 * 1000 / T, 0.02 * 1000 / T)  # the same beta(s) at both T
        sde = VPSDE.from_schedule(sched)

        def model(x, t):  # the mixture's exact eps-predictor, differentiable in x
            ab = sched.alpha_bars[t]
            return -(1 - ab)[:, None].sqrt() * gm.score(x, ab)

        for lookup in ("nearest", "interpolate"):
            r = ode_log_likelihood(sde, score_from_eps(model, sched, sde, lookup=lookup), x0, s_min=1e-3,
                                   rtol=1e-5, atol=1e-5, prior_log_prob=_exact_prior(gm, sde))
            err[T, lookup] = (r.log_likelihood - gm.log_prob(x0, float(sde.alpha_bar(1e-3)))).abs().max().item()
    r = ode_log_likelihood(sde, model, x0, parameterization="eps", schedule=sched, s_min=1e-3, rtol=1e-5, atol=1e-5,
                           prior_log_prob=_exact_prior(gm, sde))
    assert (r.log_likelihood - gm.log_prob(x0, float(sde.alpha_bar(1e-3)))).abs().max() <= err[1000, "interpolate"]
    # nearest t: error O(1/T); interpolated in t: much smaller already at T = 100
    # measured: nearest 0.26 (T = 100), 0.013 (T = 1000); interpolated 0.020, 0.00066 nats
    assert err[1000, "nearest"] < 0.05 and err[100, "nearest"] / err[1000, "nearest"] > 3, err
    for T in (100, 1000):
        assert err[T, "interpolate"] < err[T, "nearest"] / 5, err
    assert err[1000, "interpolate"] < 2e-3, err


def test_a_detaching_model_is_refused():
    sde = VPSDE()
    gm = GaussianMixture([1.0], [[0.0]], 1.0)
    sched = Schedule.linear(100)
    with pytest.raises(ValueError, match="detaches"):
        ode_log_likelihood(sde, gm.eps_oracle(sched), torch.zeros(2, 1, dtype=torch.float64),
                           parameterization="eps", schedule=sched)


def test_hutchinson_is_unbiased_for_the_divergence():
    A = torch.tensor([[1.0, 2.0, 0.0], [-0.5, 0.3, 1.0], [0.2, 0.0, -2.0]], dtype=torch.float64)
    fn = lambda x: torch.tanh(x @ A.T) + x**2  # noqa: E731
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = divergence(fn, x)
    # independent: the Jacobian's trace from torch.autograd.functional.jacobian
    jac = torch.stack([torch.autograd.functional.jacobian(lambda y: fn(y[None])[0], xi) for xi in x])
    torch.testing.assert_close(exact, jac.diagonal(dim1=1, dim2=2).sum(1))
    for kind in ("rademacher", "gaussian"):
        P = 4000
        z = make_probes(tuple(x.shape), P, kind, torch.Generator().manual_seed(1), torch.float64)
        per_probe = torch.stack([divergence(fn, x, method="hutchinson", probes=z[i:i + 1]) for i in range(0, 400)])
        mean_all = divergence(fn, x, method="hutchinson", probes=z)
        se = per_probe.std(0) / math.sqrt(P)
        assert ((mean_all - exact).abs() < 4 * se).all(), (kind, mean_all, exact, se)
        assert (per_probe.std(0) > 0).all()


def test_bad_input():
    sde = VPSDE()
    score = lambda x, s: -x  # noqa: E731
    x0 = torch.zeros(3, 1)
    with pytest.raises(ValueError, match="divergence_method"):
        ode_log_likelihood(sde, score, x0, divergence_method="trace")
    with pytest.raises(ValueError, match="s_min"):
        ode_log_likelihood(sde, score, x0, s_min=-0.1)
    with pytest.raises(ValueError, match="rtol"):
        ode_log_likelihood(sde, score, x0, rtol=0.0)
    with pytest.raises(TypeError, match="x0"):
        ode_log_likelihood(sde, score, [0.0])
    with pytest.raises(TypeError, match="VPSDE"):
        ode_log_likelihood(None, score, x0)
    with pytest.raises(ValueError, match="probes"):
        divergence(lambda x: x, x0, method="hutchinson")
    with pytest.raises(ValueError, match="method"):
        divergence(lambda x: x, x0, method="fd")
    with pytest.raises(ValueError, match="shape"):
        divergence(lambda x: x.sum(1), x0)
    with pytest.raises(ValueError, match="probe kind"):
        make_probes((2, 1), 3, "uniform")


def test_image_shaped_data_with_hutchinson_and_float32():
    # per-pixel N(0.5, 0.7^2) "images" (B, 1, 4, 4): exact log density known; one Rademacher probe per image (the
    # Jacobian is a multiple of I here, so z^T J z is exact: this checks shapes and dtypes; unbiasedness is tested
    # above)
    sde = VPSDE()
    m, sd = 0.5, 0.7

    def score(x, s):
        ab = sde.alpha_bar(s).to(x)[:, None, None, None]
        return -(x - ab.sqrt() * m) / (ab * sd**2 + 1 - ab)

    def prior(z):  # the exact q_1 (N(0, I) would cost ~ sqrt(alpha_bar(1)) m sum(z) ~ 0.01 nats here)
        ab = float(sde.alpha_bar(1.0))
        v = ab * sd**2 + 1 - ab
        return (-0.5 * (z - math.sqrt(ab) * m) ** 2 / v - 0.5 * math.log(2 * math.pi * v)).sum((1, 2, 3))

    gen = torch.Generator().manual_seed(5)
    x0 = m + sd * torch.randn(64, 1, 4, 4, generator=gen)
    exact = (-0.5 * ((x0 - m) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)).sum((1, 2, 3))
    r = ode_log_likelihood(sde, score, x0, divergence_method="hutchinson", s_min=0.0, rtol=1e-4, atol=1e-4,
                           prior_log_prob=prior, generator=gen)
    assert r.log_likelihood.dtype == torch.float32 and r.z.shape == x0.shape
    err = (r.log_likelihood - exact).double()
    assert err.mean().abs() < 4 * err.std() / math.sqrt(err.numel()) + 0.01, (err.mean(), err.std())
    rx = ode_log_likelihood(sde, score, x0[:4], s_min=0.0, rtol=1e-4, atol=1e-4, prior_log_prob=prior)  # exact div.
    assert (rx.log_likelihood - exact[:4]).abs().max() < 5e-3  # float32, rtol 1e-4: measured 1.8e-3


def test_dequantize_puts_each_value_in_its_own_bin():
    from ddpm_core.ode_likelihood import dequantize
    k = torch.tensor([0, 1, 127, 128, 254, 255] * 50, dtype=torch.float64)
    x = (k / 127.5 - 1).float()[:, None]
    y = dequantize(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    # the decoder's bins (Eq. 13): [x - 1/255, x + 1/255) around each level, i.e. level = round((y + 1) * 127.5)
    assert torch.equal(torch.round((y.double()[:, 0] + 1) * 127.5), k)
    assert y.min() >= -1 - 1 / 255 and y.max() < 1 + 1 / 255
    u = ((y.double() - x.double())[:, 0] * 255 + 1) / 2  # the uniform offsets in [0, 1)
    assert u.min() >= 0 and u.max() < 1
    assert abs(float(u.mean()) - 0.5) < 4 * math.sqrt(1 / 12 / u.numel())
    # 1-bit data: levels -1 and 1, bins [-2, 0) and [0, 2)
    y1 = dequantize(torch.tensor([[-1.0], [1.0]]), bits=1, generator=torch.Generator().manual_seed(1))
    assert -2 <= y1[0, 0] < 0 <= y1[1, 0] < 2
    with pytest.raises(ValueError, match="grid"):
        dequantize(torch.tensor([[0.3]]))
    with pytest.raises(ValueError, match="bits"):
        dequantize(x, bits=0)
    with pytest.raises(TypeError, match="floating"):
        dequantize(torch.tensor([[1]]))


def test_dequantized_bits_per_dim_against_exact_bin_probabilities():
    from ddpm_core.ode_likelihood import dequantize, dequantized_bits_per_dim
    # the uniform density on the union of the 256 bins, [-1 - h, 1 + h]^D with h = 1/255, is the uniform
    # distribution on the 256^D levels: exactly 8 bits/dim
    D, h = 64, 1 / 255
    ll = torch.tensor([-D * math.log(2 + 2 * h)], dtype=torch.float64)
    torch.testing.assert_close(dequantized_bits_per_dim(ll, D), torch.tensor([8.0], dtype=torch.float64))
    # a continuous N(0.1, 0.3^2) in 1-D: Jensen's bound E_u[bpd] >= -log2 P(bin), and close for a smooth density
    m, sd = 0.1, 0.3
    normal = torch.distributions.Normal(torch.tensor(m, dtype=torch.float64), torch.tensor(sd, dtype=torch.float64))
    for k in (100, 140, 170):
        lo, hi = k / 127.5 - 1 - h, k / 127.5 - 1 + h
        exact = -math.log2(float(normal.cdf(torch.tensor(hi)) - normal.cdf(torch.tensor(lo))))
        x = torch.full((20000, 1), k / 127.5 - 1, dtype=torch.float64)
        y = dequantize(x, generator=torch.Generator().manual_seed(k))
        bpd = dequantized_bits_per_dim(normal.log_prob(y[:, 0]), 1)
        assert float(bpd.mean()) >= exact - 3 * float(bpd.std()) / math.sqrt(20000)
        assert abs(float(bpd.mean()) - exact) < 2e-3, (k, float(bpd.mean()), exact)
    with pytest.raises(ValueError, match="dim"):
        dequantized_bits_per_dim(torch.zeros(1), 0)
    with pytest.raises(ValueError, match="bits"):
        dequantized_bits_per_dim(torch.zeros(1), 1, bits=17)


def test_bound_term_ranges_add_up_to_the_bound():
    from ddpm_core import GaussianDiffusion, bits_per_dim
    from ddpm_core.ode_likelihood import bound_term_ranges
    sched = Schedule.linear(50)
    gm = GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], 0.3)
    x = gm.sample(8, torch.Generator().manual_seed(0))
    b = bits_per_dim(GaussianDiffusion(sched, clip_denoised=False), gm.eps_oracle(sched), x, decoder="gaussian",
                     generator=torch.Generator().manual_seed(1))
    parts = bound_term_ranges(b.prior, b.terms, ((2, 5), (6, 50)))
    assert list(parts) == ["L_T", "t=2..5", "t=6..50", "L_0"]
    torch.testing.assert_close(sum(parts.values()), b.total)
    torch.testing.assert_close(parts["L_0"], b.decoder)
    torch.testing.assert_close(parts["t=2..5"], b.terms[:, 1] + b.terms[:, 2] + b.terms[:, 3] + b.terms[:, 4])
    with pytest.raises(ValueError, match="disjoint"):
        bound_term_ranges(b.prior, b.terms, ((2, 10), (10, 20)))
    with pytest.raises(ValueError, match="2 <= first"):
        bound_term_ranges(b.prior, b.terms, ((1, 10),))
    with pytest.raises(ValueError, match="2 <= first"):
        bound_term_ranges(b.prior, b.terms, ((2, 51),))
    with pytest.raises(ValueError, match="shape"):
        bound_term_ranges(b.prior[:3], b.terms)
