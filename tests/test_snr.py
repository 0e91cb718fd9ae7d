"""The bound in SNR form (ddpm_core.snr) against independent computations: the package's Gaussian-KL bound terms,
closed forms for Gaussian data, and the schedules' own constants."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.likelihood import vb_term_bpd
from ddpm_core.mixtures import GaussianMixture, named_mixture
from ddpm_core.snr import (LogSNRSchedule, bound_weights, continuous_diffusion_loss, cosine_log_snr_schedule,
                           denoiser_as_eps_model, discrete_diffusion_loss, eps_model_denoiser,
                           gaussian_diffusion_loss, interpolated_log_snr_schedule, loglinear_log_snr_schedule,
                           mixture_denoiser, schedule_from_alpha_bars, snr_bound_term, x0_mse)


def test_schedule_from_alpha_bars_inverts_eq4():
    for sched in (Schedule.linear(), Schedule.cosine(200)):
        back = schedule_from_alpha_bars(sched.alpha_bars[1:])
        torch.testing.assert_close(back.betas, sched.betas, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="decreasing"):
        schedule_from_alpha_bars(torch.tensor([0.9, 0.95], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        schedule_from_alpha_bars(torch.tensor([1.0, 0.5], dtype=torch.float64))
    with pytest.raises(TypeError, match="alpha_bars"):
        schedule_from_alpha_bars([0.9, 0.5])


def test_cosine_schedule_is_cos_squared_of_a_linear_phase_with_the_given_ends():
    cs = cosine_log_snr_schedule(9999.0, 4e-5)
    assert cs.snr_max == pytest.approx(9999.0, rel=1e-12) and cs.snr_min == pytest.approx(4e-5, rel=1e-12)
    phi0, phi1 = math.atan(9999.0 ** -0.5), math.atan(4e-5 ** -0.5)
    for s in (0.0, 0.1, 0.5, 0.93, 1.0):
        assert cs.alpha_bar(s).item() == pytest.approx(math.cos(phi0 + s * (phi1 - phi0)) ** 2, rel=1e-12)
    s = torch.tensor([0.05, 0.4, 0.8], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(cs.log_snr_fn(s).sum(), s)
    torch.testing.assert_close(cs.dlog_snr(s.detach()), g)
    assert (cs.dlog_snr(torch.linspace(0, 1, 11, dtype=torch.float64)) < 0).all()
    with pytest.raises(ValueError, match="snr_max must be > snr_min"):
        cosine_log_snr_schedule(1.0, 2.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cs.log_snr(1.5)


def test_loglinear_schedule_is_linear_in_log_snr():
    cs = loglinear_log_snr_schedule(100.0, 0.01)
    torch.testing.assert_close(cs.log_snr(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)),
                               torch.tensor([math.log(100), 0.0, math.log(0.01)], dtype=torch.float64))
    assert cs.dlog_snr(0.3).item() == pytest.approx(-2 * math.log(100))


def test_interpolated_schedule_gives_back_the_schedule_and_its_respacings():
    sched = Schedule.linear()
    cs = interpolated_log_snr_schedule(sched)
    torch.testing.assert_close(cs.discretize(1000).alpha_bars, sched.alpha_bars, rtol=1e-12, atol=0)
    # (T - 1) / (T' - 1) = 111: the respaced schedule keeps alpha_bar at t = 1, 112, ..., 1000
    torch.testing.assert_close(cs.discretize(10).alpha_bars[1:], sched.alpha_bars[1::111], rtol=1e-12, atol=0)
    # the derivative is the slope of each segment: a finite difference inside one segment
    s, h = torch.tensor([0.25 + 0.3 / 999], dtype=torch.float64), 1e-7
    fd = (cs.log_snr(s + h) - cs.log_snr(s - h)) / (2 * h)
    torch.testing.assert_close(cs.dlog_snr(s), fd, rtol=1e-6, atol=0)
    assert cs.snr_max == pytest.approx(sched.snr[1].item()) and cs.snr_min == pytest.approx(sched.snr[-1].item())
    with pytest.raises(TypeError, match="Schedule"):
        interpolated_log_snr_schedule("linear")
    with pytest.raises(ValueError, match="T must be an int >= 2"):
        cs.discretize(1)


@pytest.mark.parametrize("make", [lambda: Schedule.linear(), lambda: cosine_log_snr_schedule(9999.0, 4e-5).discretize(50)])
def test_snr_form_equals_the_packages_gaussian_kl_term(make):
    sched = make()
    mix = named_mixture("gaussian_mixture")
    diffusion = GaussianDiffusion(sched, variance="beta_tilde", clip_denoised=False)
    g = torch.Generator().manual_seed(0)
    x0 = mix.sample(16, g)
    denoise = mixture_denoiser(mix)
    model = denoiser_as_eps_model(denoise, sched)
    for t_val in (2, 3, sched.T // 2, sched.T):
        t = torch.full((16,), t_val)
        xt = diffusion.q_sample(x0, t, torch.randn(16, 2, generator=g, dtype=torch.float64))
        kl_nats = vb_term_bpd(diffusion, model, x0, xt, t, decoder="gaussian")["term"] * math.log(2) * 2
        snr_form = snr_bound_term(sched.snr[t_val - 1], sched.snr[t_val], x0, denoise(xt, sched.snr[t].log()))
        torch.testing.assert_close(kl_nats, snr_form, rtol=1e-9, atol=1e-12)
    # the oracle as an eps-model is the mixture's own exact eps-oracle
    t = torch.full((16,), 7)
    torch.testing.assert_close(model(x0, t), mix.eps_oracle(sched)(x0, t), rtol=1e-10, atol=1e-12)


def test_bound_weights_are_eq12_with_beta_tilde():
    s = Schedule.linear(100)
    w_eps, w_x0 = bound_weights(s, "eps"), bound_weights(s, "x0")
    t = torch.arange(2, 101)
    eq12 = s.betas[t] ** 2 / (2 * s.beta_tildes[t] * s.alphas[t] * (1 - s.alpha_bars[t]))
    torch.testing.assert_close(w_eps[2:], eq12, rtol=1e-9, atol=0)
    torch.testing.assert_close(w_x0[2:], w_eps[2:] * s.snr[2:], rtol=1e-9, atol=0)
    assert torch.isnan(w_eps[:2]).all()
    with pytest.raises(ValueError, match="on must be"):
        bound_weights(s, "mean")


def test_mixture_denoiser_is_the_gaussian_posterior_mean():
    m, sd = 0.3, 0.5
    denoise = mixture_denoiser(GaussianMixture([1.0], [[m]], [[sd]]))
    x = torch.linspace(-2, 2, 5, dtype=torch.float64)[:, None]
    lam = torch.tensor([-3.0, -1.0, 0.0, 2.0, 6.0], dtype=torch.float64)
    ab = torch.sigmoid(lam)[:, None]
    expected = m + sd**2 * ab.sqrt() / (ab * sd**2 + 1 - ab) * (x - ab.sqrt() * m)
    torch.testing.assert_close(denoise(x, lam), expected)


def test_eps_model_denoiser_at_integer_t_and_between():
    sched = Schedule.linear(50)
    lam_t = sched.snr.log()

    def model(x, t):  # eps = lambda_t in every coordinate: the interpolation must return lambda itself
        return lam_t[t].to(x.dtype)[:, None].expand_as(x).clone()

    denoise = eps_model_denoiser(model, sched)
    x = torch.ones(3, 2, dtype=torch.float64)
    for lam in (lam_t[[1, 17, 50]], torch.tensor([lam_t[4] * 0.3 + lam_t[5] * 0.7, lam_t[30] * 0.5 + lam_t[31] * 0.5,
                                                   lam_t[49] * 0.9 + lam_t[50] * 0.1], dtype=torch.float64)):
        ab = torch.sigmoid(lam)[:, None]
        torch.testing.assert_close(denoise(x, lam), (x - (1 - ab).sqrt() * lam[:, None]) / ab.sqrt())
    with pytest.raises(ValueError, match="range of the model's schedule"):
        denoise(x, torch.full((3,), float(lam_t[1]) + 1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        denoise(x, lam_t[1:3])


def _gaussian_mse(variance, v, dim):
    return dim * variance / (1 + variance * v)


def test_continuous_estimator_matches_the_closed_form_for_gaussian_data():
    variance, dim = 0.25, 2
    data = GaussianMixture([1.0], [[0.3, -0.2]], [[0.5, 0.5]])
    denoise = mixture_denoiser(data)
    lin = interpolated_log_snr_schedule(Schedule.linear())
    exact = gaussian_diffusion_loss(variance, lin.snr_max, lin.snr_min, dim)
    g = torch.Generator().manual_seed(2)
    x0 = data.sample(200_000, g)
    for cs in (lin, cosine_log_snr_schedule(lin.snr_max, lin.snr_min),
               loglinear_log_snr_schedule(lin.snr_max, lin.snr_min)):
        v = continuous_diffusion_loss(denoise, x0, cs, g)
        se = v.std().item() / math.sqrt(len(v))
        assert abs(v.mean().item() - exact) < 4 * se, (cs.name, v.mean().item(), exact, se)
    # the closed form is the integral of the Gaussian mmse over v (trapezoid in log v)
    lam = torch.linspace(math.log(lin.snr_min), math.log(lin.snr_max), 200_001, dtype=torch.float64)
    quad = 0.5 * torch.trapezoid(_gaussian_mse(variance, lam.exp(), dim) * lam.exp(), lam).item()
    assert quad == pytest.approx(exact, rel=1e-8)


def test_discrete_loss_matches_the_exact_discrete_sum_for_gaussian_data():
    variance = 0.25
    data = GaussianMixture([1.0], [[0.3]], [[0.5]])
    sched = cosine_log_snr_schedule(9999.0, 4e-5).discretize(10)
    snr = sched.snr
    exact = sum(0.5 * (snr[t - 1] - snr[t]).item() * _gaussian_mse(variance, snr[t].item(), 1) for t in range(2, 11))
    g = torch.Generator().manual_seed(3)
    v = discrete_diffusion_loss(mixture_denoiser(data), data.sample(100_000, g), sched, g)
    se = v.std().item() / math.sqrt(len(v))
    assert abs(v.mean().item() - exact) < 4 * se, (v.mean().item(), exact, se)
    # the x0-error curve at one lambda: mean over examples is the Gaussian mmse
    err = x0_mse(mixture_denoiser(data), data.sample(100_000, g), torch.tensor([0.0, 3.0], dtype=torch.float64), g)
    assert err.shape == (2, 100_000)
    for row, v_ in zip(err, (1.0, math.exp(3.0))):
        assert abs(row.mean().item() - _gaussian_mse(variance, v_, 1)) < 4 * row.std().item() / math.sqrt(100_000)


def test_bad_input():
    lin = interpolated_log_snr_schedule(Schedule.linear(20))
    denoise = mixture_denoiser(named_mixture("gaussian_mixture"))
    with pytest.raises(TypeError, match="LogSNRSchedule"):
        continuous_diffusion_loss(denoise, torch.zeros(3, 2), Schedule.linear(20))
    with pytest.raises(TypeError, match="x0"):
        discrete_diffusion_loss(denoise, torch.zeros(3, dtype=torch.long), Schedule.linear(20))
    with pytest.raises(ValueError, match="same shape"):
        snr_bound_term(2.0, 1.0, torch.zeros(3, 2), torch.zeros(3, 1))
    with pytest.raises(TypeError, match="GaussianMixture"):
        mixture_denoiser("gaussian_mixture")
    with pytest.raises(ValueError, match="variance > 0"):
        gaussian_diffusion_loss(-1.0, 10.0, 1.0)
    assert isinstance(lin, LogSNRSchedule) and "linear" in repr(lin)
