"""The VP-SDE view of a schedule and its two reverse processes, against independent computations."""
import math

import pytest
import torch

from ddpm_core.mixtures import GaussianMixture
from ddpm_core.oracles import gaussian_eps_oracle
from ddpm_core.schedules import Schedule
from ddpm_core.sde import (VPSDE, forward_sde_sample, mixture_score, probability_flow_sample, reverse_sde_sample,
                            reverse_sde_step, score_from_eps)


def test_linear_schedule_maps_to_song_et_al_constants():
    sde = VPSDE.from_schedule(Schedule.linear())
    assert (sde.beta_min, sde.beta_max, sde.T) == pytest.approx((0.1, 20.0, 1000))


def test_int_beta_is_the_integral_of_beta_and_beta_the_log_derivative_of_alpha_bar():
    sde = VPSDE(0.1, 20.0)
    s = torch.linspace(0, 1, 100_001, dtype=torch.float64)
    cum = torch.cumulative_trapezoid(sde.beta(s), s)
    torch.testing.assert_close(cum, sde.int_beta(s[1:]), rtol=0, atol=1e-9)
    u = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(sde.alpha_bar(u).log().sum(), u)
    torch.testing.assert_close(-g, sde.beta(u.detach()))
    ab = sde.alpha_bar(u.detach())
    torch.testing.assert_close(sde.snr(u.detach()), ab / (1 - ab))
    torch.testing.assert_close(sde.marginal_std(u.detach()) ** 2, 1 - ab)


def test_alpha_bar_matches_the_discrete_chain_to_order_one_over_T():
    errors = {}
    for T in (100, 1000, 10000):
        sched = Schedule.linear(T, 1e-4 * 1000 / T, 0.02 * 1000 / T)  # the same beta(s) at every T
        sde = VPSDE.from_schedule(sched)
        assert sde.beta_max == pytest.approx(20.0) and sde.beta_min == pytest.approx(0.1)
        t = torch.arange(T + 1)
        errors[T] = (sde.alpha_bar(t.double() / T) - sched.alpha_bars).abs().max().item()
    assert errors[1000] < 2e-3
    # O(1/T): ten times more steps, about ten times smaller error
    for a, b in ((100, 1000), (1000, 10000)):
        assert 7 < errors[a] / errors[b] < 13, errors


def test_from_schedule_rejects_non_linear_and_bad_input():
    with pytest.raises(ValueError, match="not linear"):
        VPSDE.from_schedule(Schedule.cosine(100))
    with pytest.raises(TypeError, match="Schedule"):
        VPSDE.from_schedule("linear")
    with pytest.raises(ValueError, match="beta_max"):
        VPSDE(1.0, 0.5)
    with pytest.raises(TypeError, match="beta_min"):
        VPSDE("0.1", 20.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VPSDE().alpha_bar(1.5)
    with pytest.raises(TypeError, match="floating"):
        VPSDE().beta(torch.tensor([1]))


def test_score_from_eps_nearest_and_interpolated_against_the_exact_gaussian_score():
    sched = Schedule.linear(1000)
    sde = VPSDE.from_schedule(sched)
    model = gaussian_eps_oracle(sched, 0.5, 2.0)
    x = torch.randn(8, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    s = torch.full((8,), 0.3, dtype=torch.float64)
    ab = sched.alpha_bars[300]
    near = score_from_eps(model, sched, lookup="nearest")(x, s)
    torch.testing.assert_close(near, -(x - ab.sqrt() * 0.5) / (ab * 4 + 1 - ab))
    # interpolation targets the SDE's own alpha_bar(s) (not alpha_bar_t): compare with the continuous-time score
    for u in (0.0005, 0.3, 0.7531, 1.0):
        s = torch.full((8,), u, dtype=torch.float64)
        a = sde.alpha_bar(u)
        exact = -(x - a.sqrt() * 0.5) / (a * 4 + 1 - a)
        interp = score_from_eps(model, sched, sde)(x, s)
        near = score_from_eps(model, sched, lookup="nearest")(x, s)
        if u < 1 / sched.T:  # before the first step: nothing to interpolate, the t = 1 value as "nearest"
            torch.testing.assert_close(interp, near)
        else:
            assert (interp - exact).abs().max() < 0.1 * (near - exact).abs().max(), u
    with pytest.raises(ValueError, match="sde"):
        score_from_eps(model, sched)
    with pytest.raises(ValueError, match="lookup"):
        score_from_eps(model, sched, sde, lookup="linear")


def _moments_ok(x, mean, var, n_se=5.0, rel_bias=0.02):
    n = x.shape[0]
    m, v = x.mean(0), x.var(0)
    se_m = (var / n).sqrt()
    se_v = var * math.sqrt(2 / (n - 1))
    assert ((m - mean).abs() <= n_se * se_m + rel_bias * var.sqrt()).all(), (m, mean)
    assert ((v - var).abs() <= n_se * se_v + rel_bias * var).all(), (v, var)


@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_both_reverse_processes_carry_noise_to_a_gaussian(sampler):
    m, s = 1.5, 0.5
    sde = VPSDE()
    gm = GaussianMixture([1.0], [[m]], s)
    g = torch.Generator().manual_seed(1)
    xT = torch.randn(20000, 1, generator=g, dtype=torch.float64)
    if sampler == "sde":
        x = reverse_sde_sample(sde, mixture_score(gm, sde), xT, steps=500, generator=g)
    else:
        x = probability_flow_sample(sde, mixture_score(gm, sde), xT, rtol=1e-6, atol=1e-6)
    _moments_ok(x, torch.tensor([m], dtype=torch.float64), torch.tensor([s**2], dtype=torch.float64))


def test_eps_model_gives_the_same_ode_samples_as_its_score():
    sched = Schedule.linear(1000)
    sde = VPSDE.from_schedule(sched)
    xT = torch.randn(2000, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x = probability_flow_sample(sde, gaussian_eps_oracle(sched, -1.0, 0.7), xT, parameterization="eps",
                                schedule=sched, rtol=1e-4, atol=1e-4)
    # nearest-t lookup of a discrete schedule: the distribution is still N(-1, 0.49) to within 2 %
    _moments_ok(x, torch.tensor([-1.0], dtype=torch.float64), torch.tensor([0.49], dtype=torch.float64))
    with pytest.raises(ValueError, match="schedule"):
        probability_flow_sample(sde, gaussian_eps_oracle(sched), xT, parameterization="eps")
    with pytest.raises(ValueError, match="parameterization"):
        reverse_sde_sample(sde, gaussian_eps_oracle(sched), xT, parameterization="x0")


@pytest.mark.parametrize("sampler", ["sde", "ode"])
def test_mixture_component_frequencies_and_moments(sampler):
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[0.3, 0.2], [0.4, 0.5]])
    sde = VPSDE()
    g = torch.Generator().manual_seed(3)
    n = 6000
    xT = torch.randn(n, 2, generator=g, dtype=torch.float64)
    if sampler == "sde":
        x = reverse_sde_sample(sde, mixture_score(gm, sde), xT, steps=400, generator=g)
    else:
        x = probability_flow_sample(sde, mixture_score(gm, sde), xT, rtol=1e-5, atol=1e-5)
    freq = torch.bincount(gm.posterior(x).argmax(1), minlength=2).double() / n
    se = (gm.weights * (1 - gm.weights) / n).sqrt()
    assert ((freq - gm.weights).abs() < 5 * se).all(), freq
    _moments_ok(x, gm.mean(), gm.covariance().diagonal())
    cov = torch.cov(x.T)
    assert abs(cov[0, 1] - gm.covariance()[0, 1]) < 0.06


def test_sampler_bad_input():
    sde = VPSDE()
    score = lambda x, s: -x  # noqa: E731
    with pytest.raises(ValueError, match="steps"):
        reverse_sde_sample(sde, score, torch.zeros(2, 1), steps=0)
    with pytest.raises(ValueError, match="s_min"):
        probability_flow_sample(sde, score, torch.zeros(2, 1), s_min=1.0)
    with pytest.raises(TypeError, match="VPSDE"):
        reverse_sde_sample("vp", score, torch.zeros(2, 1))
    with pytest.raises(TypeError, match="x_T"):
        reverse_sde_sample(sde, score, torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(TypeError, match="GaussianMixture"):
        mixture_score("gm", sde)


def test_to_schedule_is_the_chain_with_beta_t_equal_beta_of_t_over_T():
    sde = VPSDE(0.1, 20.0)
    sched = sde.to_schedule(500)
    t = torch.arange(1, 501, dtype=torch.float64)
    torch.testing.assert_close(sched.betas[1:], (0.1 + t / 500 * 19.9) / 500, rtol=1e-12, atol=0)
    # first order in 1/T: T (alpha_bar_chain - alpha_bar(s)) converges (twice the steps, half the error)
    err = {}
    for T in (250, 500, 1000):
        ch = sde.to_schedule(T)
        err[T] = (ch.alpha_bars - sde.alpha_bar(torch.arange(T + 1, dtype=torch.float64) / T)).abs().max().item()
    assert 1.8 < err[250] / err[500] < 2.2 and 1.8 < err[500] / err[1000] < 2.2, err
    with pytest.raises(ValueError, match="beta_max"):
        sde.to_schedule(20)
    with pytest.raises(ValueError, match="T must"):
        sde.to_schedule(0)


def test_forward_sde_euler_maruyama_has_the_marginal_of_alpha_bar():
    sde = VPSDE()
    g = torch.Generator().manual_seed(4)
    x0 = torch.full((40000, 1), 2.0, dtype=torch.float64)
    times, path = forward_sde_sample(sde, x0, steps=400, s_max=0.6, generator=g, return_path=True)
    assert path.shape == (401, 40000, 1) and torch.equal(path[0], x0) and times[-1] == pytest.approx(0.6)
    for k in (100, 400):  # s = 0.15 and s = 0.6
        ab = sde.alpha_bar(float(times[k]))
        _moments_ok(path[k], 2.0 * ab.sqrt().reshape(1), (1 - ab).reshape(1), rel_bias=0.01)
    with pytest.raises(ValueError, match="s_max"):
        forward_sde_sample(sde, x0, s_max=0.0)
    with pytest.raises(TypeError, match="x_0"):
        forward_sde_sample(sde, torch.zeros(3, dtype=torch.long))


def test_reverse_sde_step_against_its_closed_form_and_the_sampler():
    sde = VPSDE()
    score = lambda x, s: -x  # noqa: E731 - the score of N(0, I)
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)[:, None]
    s = torch.full((5,), 0.5, dtype=torch.float64)
    b = 0.1 + 0.5 * 19.9
    h = 0.01
    # mean: x - (-b x / 2 - b (-x)) h = x (1 - b h / 2)
    torch.testing.assert_close(reverse_sde_step(sde, score, x, s, h), x * (1 - b * h / 2))
    z = torch.ones_like(x)
    torch.testing.assert_close(reverse_sde_step(sde, score, x, s, h, z), x * (1 - b * h / 2) + math.sqrt(b * h))
    # one sampler step is one reverse_sde_step with the generator's first draw
    xT = torch.randn(5, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    one = reverse_sde_sample(sde, score, xT, steps=1, s_min=0.5, generator=torch.Generator().manual_seed(6))
    z = torch.randn(5, 1, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    torch.testing.assert_close(one, reverse_sde_step(sde, score, xT, torch.ones(5, dtype=torch.float64), 0.5, z))
    with pytest.raises(ValueError, match="h must"):
        reverse_sde_step(sde, score, x, s, 0.0)
    with pytest.raises(ValueError, match="noise"):
        reverse_sde_step(sde, score, x, s, h, torch.ones(4, 1))


def test_paths_end_in_the_samples():
    sde = VPSDE()
    gm = GaussianMixture([0.4, 0.6], [[-1.0], [1.0]], 0.3)
    score = mixture_score(gm, sde)
    xT = torch.randn(6, 1, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    x = reverse_sde_sample(sde, score, xT, steps=50, generator=torch.Generator().manual_seed(8))
    times, path = reverse_sde_sample(sde, score, xT, steps=50, generator=torch.Generator().manual_seed(8),
                                     return_path=True)
    assert path.shape == (51, 6, 1) and times.shape == (51,)
    assert torch.equal(path[0], xT) and torch.equal(path[-1], x)
    y = probability_flow_sample(sde, score, xT)
    times, path = probability_flow_sample(sde, score, xT, return_path=True, path_points=11)
    assert path.shape == (11, 6, 1) and torch.equal(path[0], xT)
    torch.testing.assert_close(times[5], torch.tensor((1 + 1e-3) / 2, dtype=torch.float64))
    torch.testing.assert_close(path[-1], y, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="path_points"):
        probability_flow_sample(sde, score, xT, return_path=True, path_points=1)


def test_probability_flow_of_gaussian_data_is_the_exact_affine_map():
    # for N(m, s0^2) data every marginal is Gaussian and the PF-ODE moves x along the quantiles:
    # x(s) = mean(s) + std(s) (x(1) - mean(1)) / std(1), mean(s) = sqrt(ab) m, std(s)^2 = ab s0^2 + 1 - ab
    m, s0 = 0.7, 0.4
    sde = VPSDE()
    gm = GaussianMixture([1.0], [[m]], s0)
    xT = torch.linspace(-3, 3, 13, dtype=torch.float64)[:, None]
    x = probability_flow_sample(sde, mixture_score(gm, sde), xT, s_min=1e-3, rtol=1e-8, atol=1e-8)

    def mean_std(u):
        ab = sde.alpha_bar(u)
        return ab.sqrt() * m, (ab * s0**2 + 1 - ab).sqrt()

    (m1, d1), (m0, d0) = mean_std(1.0), mean_std(1e-3)
    torch.testing.assert_close(x, m0 + d0 * (xT - m1) / d1, rtol=0, atol=1e-6)
