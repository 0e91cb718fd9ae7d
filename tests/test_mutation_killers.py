"""Unit tests that kill mutants the maths modules' own tests let survive (see tests/MUTATION.md).

Each test compares with an independent computation (the standard library's erf, a closed form typed from the
paper, a seeded re-draw of the same random numbers) or pins an error message from its start, so that a mutated
formula, a dropped argument or a garbled message makes it fail.
"""
import math

import pytest
import torch

import ddpm_core
from ddpm_core.diffusion import GaussianDiffusion
from ddpm_core.likelihood import rate_distortion, vb_term_bpd
from ddpm_core.losses import discretized_gaussian_bin_probs, discretized_gaussian_log_likelihood, standard_normal_cdf
from ddpm_core.samplers import _check_timesteps, respace, respaced_betas, strided_timesteps
from ddpm_core.schedules import Schedule, cosine_betas, quadratic_betas


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


# ---- losses ----------------------------------------------------------------------------------------------------
def test_standard_normal_cdf_matches_the_standard_library():
    z = [-3.0, -1.0, -0.3, 0.0, 0.7, 2.5]
    got = standard_normal_cdf(torch.tensor(z, dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor([_phi(v) for v in z], dtype=torch.float64), rtol=0, atol=1e-15)
    assert got[2].item() == pytest.approx(0.38208857781104733, abs=1e-15)  # Phi(-0.3), tables


def test_decoder_with_a_non_unit_scale_matches_erf_bin_by_bin():
    # interior, lowest and highest grid values, sigma = 0.02 (log sigma != 0), num_bins = 256
    x = torch.tensor([-1.0, -1.0 + 2 / 255, 3 / 255, 1.0 - 2 / 255, 1.0], dtype=torch.float64)
    mu = torch.tensor([-0.99, -0.98, 0.02, 0.985, 0.97], dtype=torch.float64)
    sigma = 0.02
    ls = torch.full_like(x, math.log(sigma))
    got = discretized_gaussian_log_likelihood(x, mu, ls)
    h = 1 / 255
    want = []
    for xi, mi in zip(x.tolist(), mu.tolist()):
        hi = 1.0 if xi > 1 - h else _phi((xi + h - mi) / sigma)
        lo = 0.0 if xi < -1 + h else _phi((xi - h - mi) / sigma)
        want.append(math.log(hi - lo))
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-10, atol=1e-12)
    probs = discretized_gaussian_bin_probs(mu, ls)
    assert probs.shape == (5, 256)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-9)  # 1e-12 floor per bin
    idx = ((x + 1) * 255 / 2).round().long()
    torch.testing.assert_close(probs[torch.arange(5), idx], got.exp(), rtol=1e-10, atol=1e-14)


def test_decoder_bin_probs_for_a_2d_batch_have_one_row_per_element():
    mu = torch.tensor([[0.0, 0.5], [-0.5, 0.9]])
    ls = torch.full_like(mu, math.log(0.1))
    p = discretized_gaussian_bin_probs(mu, ls, num_bins=5)  # grid -1, -0.5, 0, 0.5, 1
    assert p.shape == (2, 2, 5)
    assert p[0, 0, 2].item() == pytest.approx(_phi(2.5) - _phi(-2.5), abs=1e-6)
    assert p[1, 1, 4].item() == pytest.approx(1 - _phi((0.75 - 0.9) / 0.1), abs=1e-6)


def test_decoder_argument_checks():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match=r"^shapes must match"):
        discretized_gaussian_log_likelihood(torch.zeros(4), x, x)
    with pytest.raises(ValueError, match=r"^shapes must match"):
        discretized_gaussian_log_likelihood(x, x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"^shapes must match"):
        discretized_gaussian_bin_probs(torch.zeros(4), x)
    with pytest.raises(ValueError, match=r"^shapes must match"):
        discretized_gaussian_bin_probs(x, torch.zeros(4))
    with pytest.raises(ValueError, match=r"^num_bins must be an int >= 2, got 1"):
        discretized_gaussian_log_likelihood(x, x, x, num_bins=1)
    assert discretized_gaussian_log_likelihood(torch.tensor([-1.0, 1.0]), torch.zeros(2), torch.zeros(2),
                                               num_bins=2).exp().sum().item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"^x must lie in \[-1, 1\] \(data scaled"):
        discretized_gaussian_log_likelihood(torch.tensor([1.01]), torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError, match=r"^x must lie in \[-1, 1\] \(data scaled"):
        discretized_gaussian_log_likelihood(torch.tensor([-1.5]), torch.zeros(1), torch.zeros(1))
    # the bounds themselves (and float rounding within 1e-6) are allowed
    edge = torch.tensor([-1.0 - 5e-7, 1.0 + 5e-7], dtype=torch.float64)
    assert torch.isfinite(discretized_gaussian_log_likelihood(edge, torch.zeros(2, dtype=torch.float64),
                                                              torch.zeros(2, dtype=torch.float64))).all()


# ---- schedules -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("s", [0.0, 0.008, 0.3])
def test_cosine_alpha_bar_is_the_closed_form(s):
    T = 20
    sched = Schedule(cosine_betas(T, s=s))
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    want = [f(t) / f(0) for t in range(T)]  # t = T is clipped by max_beta
    torch.testing.assert_close(sched.alpha_bars[:T], torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-14)
    assert cosine_betas(T, s=s)[-1].item() == pytest.approx(0.999)


def test_cosine_betas_argument_ranges():
    assert cosine_betas(10, max_beta=0.5).max().item() == pytest.approx(0.5)
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"^s must lie in \[0, 1\), got"):
            cosine_betas(10, s=bad)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"^max_beta must lie in \(0, 1\), got"):
            cosine_betas(10, max_beta=bad)


def test_named_constructors_keep_their_names_and_arguments():
    c = Schedule.cosine(T=10, s=0.2)
    assert c.name == "cosine"
    torch.testing.assert_close(c.betas[1:], cosine_betas(10, s=0.2))
    q = Schedule.quadratic(T=10, beta_1=1e-3, beta_T=0.1)
    assert q.name == "quadratic"
    torch.testing.assert_close(q.betas[1:], torch.linspace(1e-3 ** 0.5, 0.1 ** 0.5, 10, dtype=torch.float64) ** 2)
    assert q.betas[1].item() == pytest.approx(1e-3) and q.betas[-1].item() == pytest.approx(0.1)
    assert quadratic_betas(4, 0.01, 0.09).tolist() == pytest.approx([0.01, (0.1 + 0.2 / 3) ** 2,
                                                                      (0.1 + 0.4 / 3) ** 2, 0.09])
    n = Schedule.from_name("linear", T=7, beta_1=0.01, beta_T=0.05)
    assert n.name == "linear" and n.T == 7 and n.betas[-1].item() == pytest.approx(0.05)
    assert "quadratic" in repr(q) and "T=10" in repr(q)


# ---- forward process and L_simple ------------------------------------------------------------------------------
def _toy(T=10, **kw):
    return GaussianDiffusion(Schedule.linear(T=T, beta_1=0.01, beta_T=0.3), **kw)


def test_q_step_sample_is_eq_2_with_the_given_noise():
    d = _toy()
    x, z = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    t = torch.tensor([1, 2, 5, 9, 10])
    b = d.schedule.betas[t].unsqueeze(1)
    torch.testing.assert_close(d.q_step_sample(x, t, z), (1 - b).sqrt() * x + b.sqrt() * z)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    drawn = torch.randn(5, 3, generator=g2, dtype=torch.float64)
    torch.testing.assert_close(d.q_step_sample(x, t, generator=g1), (1 - b).sqrt() * x + b.sqrt() * drawn)
    with pytest.raises(ValueError, match=r"^x_prev contains NaN"):
        d.q_step_sample(torch.full((1, 2), float("nan")), 1)
    with pytest.raises(ValueError, match=r"^noise must have the same shape"):
        d.q_step_sample(torch.zeros(1, 2), 1, torch.zeros(1, 3))


def test_sample_t_draws_uniform_timesteps_with_the_generator():
    d = _toy(T=7)
    t = d.sample_t(4000, torch.Generator().manual_seed(5))
    assert t.dtype == torch.long and t.shape == (4000,)
    assert torch.equal(t, torch.randint(1, 8, (4000,), generator=torch.Generator().manual_seed(5)))
    assert int(t.min()) == 1 and int(t.max()) == 7


def test_loss_simple_draws_t_then_noise_from_the_generator():
    d = _toy(clip_denoised=False)
    x0 = torch.randn(6, 2)
    model = lambda x, t: 0.5 * x + 0.1 * t.float().unsqueeze(1)
    got = ddpm_core.loss(d, model, x0, generator=torch.Generator().manual_seed(11), reduction="none")
    g = torch.Generator().manual_seed(11)
    t = torch.randint(1, d.T + 1, (6,), generator=g)
    eps = torch.randn(6, 2, generator=g)
    ab = d.schedule.alpha_bars[t].float().unsqueeze(1)
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    torch.testing.assert_close(got, ((model(xt, t) - eps) ** 2).mean(1))
    assert got.shape == (6,)


def test_loss_simple_argument_checks():
    d = _toy()
    x0, model = torch.zeros(2, 3), (lambda x, t: torch.zeros_like(x))
    with pytest.raises(ValueError, match=r"^reduction must be 'mean' or 'none', got 'sum'"):
        ddpm_core.loss(d, model, x0, reduction="sum")
    with pytest.raises(ValueError, match=r"^x0 contains NaN"):
        ddpm_core.loss(d, model, torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match=r"^noise must have the same shape as x, \(2, 3\); got \(2, 2\)"):
        ddpm_core.loss(d, model, x0, noise=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^model output must be shaped like x_0 \(2, 3\), got torch.Size\(\[2, 1\]\)"):
        ddpm_core.loss(d, lambda x, t: torch.zeros(2, 1), x0)
    with pytest.raises(ValueError, match=r"^model output must be shaped like x_0 \(2, 3\), got list"):
        ddpm_core.loss(d, lambda x, t: [0.0], x0)


# ---- the bound -------------------------------------------------------------------------------------------------
def test_loss_vlb_is_reproducible_with_a_generator_and_never_clips():
    # clip_denoised=True on the diffusion, a model whose x_0 prediction leaves [-1, 1]: loss_vlb must not clip
    d = _toy(parameterization="x0", clip_denoised=True)
    x0 = torch.tensor([[0.2, -0.4], [0.6, 0.0], [-1.0, 1.0]])
    model = lambda x, t: 3.0 * x
    g1 = torch.Generator().manual_seed(2)
    got = ddpm_core.loss(d, model, x0, objective="vlb", generator=g1, reduction="none", decoder="gaussian")
    g2 = torch.Generator().manual_seed(2)
    t = torch.randint(1, d.T + 1, (3,), generator=g2)
    xt = d.q_sample(x0, t, generator=g2)
    term = vb_term_bpd(d, model, x0, xt, t, clip_denoised=False, decoder="gaussian")["term"]
    clipped = vb_term_bpd(d, model, x0, xt, t, clip_denoised=True, decoder="gaussian")["term"]
    from ddpm_core.likelihood import prior_bpd
    torch.testing.assert_close(got, prior_bpd(d, x0) + d.T * term)
    assert not torch.allclose(term, clipped)
    with pytest.raises(ValueError, match=r"^reduction must be 'mean' or 'none', got 'sum'"):
        ddpm_core.loss(d, model, x0, objective="vlb", reduction="sum")


def test_rate_distortion_reads_the_curve_at_t_and_keeps_float64():
    terms = torch.tensor([[0.5, 0.25, 0.125]], dtype=torch.float32)
    x0_mse = torch.tensor([[0.01, 0.04, 0.09]], dtype=torch.float32)
    rd = rate_distortion(torch.tensor([1e-7], dtype=torch.float32), terms, x0_mse, data_range=0.5)
    assert rd.rate.dtype == torch.float64 and rd.distortion.dtype == torch.float64
    assert rd.total == pytest.approx(0.875 + 1e-7, abs=1e-12)
    assert rd.rate[-1].item() == pytest.approx(float(torch.tensor(1e-7)), rel=1e-12, abs=0)  # the float32 prior, exactly
    assert rd.at(1) == pytest.approx((0.375 + 1e-7, 0.1 * 0.25))
    assert rd.at(3) == pytest.approx((1e-7, 0.3 * 0.25), rel=1e-6)
    assert rd.at(2) == pytest.approx((0.125 + 1e-7, 0.2 * 0.25), rel=1e-6)
    for bad in (0, 4, True, 1.0):
        with pytest.raises(ValueError, match=r"^t must be an int in 1..3, got"):
            rd.at(bad)
    one = rate_distortion(0.0, torch.tensor([0.5]), torch.tensor([0.04]))
    assert one.total == pytest.approx(0.5) and one.at(1) == pytest.approx((0.0, 0.2 * 127.5))
    for bad in (0, -1.0, True, "255"):
        with pytest.raises(ValueError, match=r"^data_range must be a positive number, got"):
            rate_distortion(0.0, terms, x0_mse, data_range=bad)
    with pytest.raises(ValueError, match=r"^prior must hold at least one value$"):
        rate_distortion(torch.zeros(0), terms, x0_mse)
    with pytest.raises(ValueError, match=r"^x0_mse must be non-negative \(it is a squared error\)$"):
        rate_distortion(0.0, terms, -x0_mse)
    with pytest.raises(ValueError, match=r"^terms must have shape \(B, T\) or \(T,\), got \(1, 0\)"):
        rate_distortion(0.0, torch.zeros(1, 0), torch.zeros(1, 0))


# ---- samplers --------------------------------------------------------------------------------------------------
def test_strided_timesteps_exact_values():
    assert strided_timesteps(1000, 1) == [1000]
    assert strided_timesteps(1000, 2) == [1, 1000]
    assert strided_timesteps(10, 4) == [1, 4, 7, 10]
    assert strided_timesteps(10, 4, "quadratic") == [1, 2, 5, 10]  # 1 + 9 u^2, u = 0, 1/3, 2/3, 1
    assert strided_timesteps(101, 5, "quadratic") == [1, 7, 26, 57, 101]
    # rounding merges neighbours near t = 1; the missing ones are filled in from the smallest t up
    assert strided_timesteps(10, 8, "quadratic") == [1, 2, 3, 4, 5, 6, 8, 10]
    assert strided_timesteps(5, 5, "quadratic") == [1, 2, 3, 4, 5]
    for bad in (0, 11, 2.0, True):
        with pytest.raises(ValueError, match=r"^num_steps must be an int in 1..T=10, got"):
            strided_timesteps(10, bad)


def test_check_timesteps_rejects_steps_beyond_T():
    assert _check_timesteps([1, 3, 10], 10) == [1, 3, 10]
    with pytest.raises(ValueError, match=r"^timesteps must be a strictly increasing sequence of ints in 1..10, "
                                         r"got \[1, 2, 3, 4, 5, 6, 7, 8\]\.\.\.$"):
        _check_timesteps([1, 2, 3, 4, 5, 6, 7, 8, 11], 10)
    with pytest.raises(ValueError, match="strictly increasing"):
        _check_timesteps([2, 11], 10)


def test_respace_keeps_every_setting_and_maps_steps_to_the_original_t():
    d = _toy(T=10, parameterization="x0", variance="beta_tilde", clip_denoised=False)
    rd, rmodel = respace(d, lambda x, t: x * 0 + t.to(x.dtype).unsqueeze(1), [2, 5, 10])
    assert (rd.parameterization, rd.variance, rd.clip_denoised) == ("x0", "beta_tilde", False)
    assert rd.schedule.name == "linear-respaced" and rd.T == 3
    assert respaced_betas(d.schedule, [2, 5, 10]).dtype == torch.float64
    out = rmodel(torch.zeros(3, 1), torch.tensor([1, 2, 3]))
    assert out.squeeze(1).tolist() == [2.0, 5.0, 10.0]
    assert "table" not in rmodel.state_dict()
    assert rmodel.table.dtype == torch.long and rmodel.table.tolist() == [0, 2, 5, 10]


def test_loss_vlb_and_bits_per_dim_forward_every_argument_to_the_bound_terms():
    # 0.1 tested GaussianDiffusion.loss_vlb / .bits_per_dim, pass-throughs that 0.2 removed: the same arguments now
    # go to ddpm_core.loss(objective="vlb") and ddpm_core.bits_per_dim, compared with the terms computed by hand.
    from ddpm_core.likelihood import prior_bpd
    d = _toy(T=6, parameterization="eps", clip_denoised=False)
    x0 = torch.tensor([[-1.0, 1 / 255], [0.2, 1.0]])
    model = lambda x, t: 0.1 * x
    t = torch.tensor([1, 4])
    for decoder in ("discretized", "gaussian"):
        a = ddpm_core.loss(d, model, x0, objective="vlb", t=t, generator=torch.Generator().manual_seed(0),
                           reduction="none", decoder=decoder)
        xt = d.q_sample(x0, t, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)))
        want = prior_bpd(d, x0) + d.T * vb_term_bpd(d, model, x0, xt, t, clip_denoised=False, decoder=decoder)["term"]
        torch.testing.assert_close(a, want)
        assert a.shape == (2,)
        r = ddpm_core.bits_per_dim(d, model, x0, generator=torch.Generator().manual_seed(1), decoder=decoder)
        g = torch.Generator().manual_seed(1)
        for t_val in range(d.T, 0, -1):  # one x_t per t, drawn from T down to 1
            tt = torch.full((2,), t_val)
            xt = d.q_sample(x0, tt, torch.randn(x0.shape, generator=g))
            term = vb_term_bpd(d, model, x0, xt, tt, clip_denoised=False, decoder=decoder)["term"]
            torch.testing.assert_close(r.terms[:, t_val - 1], term.double())
    gauss = ddpm_core.loss(d, model, x0, objective="vlb", t=torch.tensor([1, 1]),
                           generator=torch.Generator().manual_seed(0), decoder="gaussian")
    disc = ddpm_core.loss(d, model, x0, objective="vlb", t=torch.tensor([1, 1]),
                          generator=torch.Generator().manual_seed(0))
    assert gauss.item() != pytest.approx(disc.item(), rel=1e-3)
    mean = ddpm_core.loss(d, model, x0, objective="vlb", t=t, generator=torch.Generator().manual_seed(0),
                          decoder="gaussian")
    assert mean.ndim == 0
    assert repr(d).startswith("GaussianDiffusion(Schedule(name='linear', T=6") and "parameterization='eps'" in repr(d)


@pytest.mark.parametrize("eta", [0.5, 2.0])
def test_ddim_noise_scale_is_eta_times_the_posterior_std_by_monte_carlo(eta):
    # Song et al. (2021), Eq. (16): sigma_{t->s}(eta) = eta sqrt((1 - ab_s)/(1 - ab_t)) sqrt(1 - ab_t/ab_s).
    # With an x0-model that returns its input, the step 10 -> 1 from a fixed x_10 is deterministic except for
    # sigma z, and the last step 1 -> 0 returns x0_hat(x_1) = x_1: the spread of the output is sigma itself.
    d = _toy(T=10, parameterization="x0", clip_denoised=False)
    ab1, ab10 = d.schedule.alpha_bars[1].item(), d.schedule.alpha_bars[10].item()
    sigma = eta * math.sqrt((1 - ab1) / (1 - ab10) * (1 - ab10 / ab1))
    n = 20000
    x = ddpm_core.sample(lambda x, t: x, d, (n, 1), sampler="ddim", timesteps=[1, 10], eta=eta,
                         x_start=torch.full((n, 1), 0.5), generator=torch.Generator().manual_seed(0))
    sd = x.std().item()
    if eta <= 1:
        assert abs(sd / sigma - 1) < 0.03  # standard error of a sample sd: 1/sqrt(2n) = 0.5 %
    else:  # sigma^2 > 1 - ab_s: the eps_hat coefficient is clipped at 0 and the noise term is still sigma z
        assert sigma ** 2 > 1 - ab1 and abs(sd / sigma - 1) < 0.03


@pytest.mark.parametrize("decoder", ["discretized", "gaussian"])
def test_l0_term_is_the_decoder_in_bits_from_erf(decoder):
    # L_0 = -log2 p(x_0 | x_1), averaged over dimensions, with mean mu_theta(x_1, 1) and std sigma_1 (Eq. 13)
    d = _toy(T=5, clip_denoised=False)
    x0 = torch.tensor([[-1.0, 1 / 255, 1.0], [51 / 255, -101 / 255, 0.6 - 0.6 % (2 / 255) - 1 / 255]],
                      dtype=torch.float64)
    xt = x0 + 0.05
    t = torch.tensor([1, 1])
    model = lambda x, t: 0.3 * x
    out = d.p_mean_variance(model, xt, t)
    sigma = math.exp(0.5 * d.model_log_variances[1].item())
    got = vb_term_bpd(d, model, x0, xt, t, decoder=decoder)["term"]
    h = 1 / 255
    want = []
    for row_x, row_mu in zip(x0.tolist(), out["mean"].tolist()):
        bits = []
        for xi, mi in zip(row_x, row_mu):
            if decoder == "discretized":
                hi = 1.0 if xi > 1 - h else _phi((xi + h - mi) / sigma)
                lo = 0.0 if xi < -1 + h else _phi((xi - h - mi) / sigma)
                p = hi - lo
            else:
                p = math.exp(-0.5 * ((xi - mi) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
            bits.append(-math.log2(p))
        want.append(sum(bits) / len(bits))
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-9)
    assert got.dtype == torch.float64
    with pytest.raises(ValueError, match=r"^unknown decoder 'x'; allowed: \['discretized', 'gaussian'\]$"):
        vb_term_bpd(d, model, x0, xt, t, decoder="x")


def test_mixed_timesteps_put_the_decoder_only_where_t_is_1():
    d = _toy(T=5, clip_denoised=False)
    x0 = torch.tensor([[0.2], [0.2]])
    xt = torch.tensor([[0.3], [0.3]])
    model = lambda x, t: 0.3 * x
    mixed = vb_term_bpd(d, model, x0, xt, torch.tensor([1, 3]))["term"]
    alone1 = vb_term_bpd(d, model, x0[:1], xt[:1], torch.tensor([1]))["term"]
    alone3 = vb_term_bpd(d, model, x0[1:], xt[1:], torch.tensor([3]))["term"]
    torch.testing.assert_close(mixed, torch.cat([alone1, alone3]))
    assert alone1.item() != pytest.approx(alone3.item(), rel=1e-3)


def test_normal_kl_names_the_argument_that_is_not_a_tensor():
    from ddpm_core.losses import normal_kl
    z = torch.zeros(2)
    for i, name in enumerate(["mean1", "logvar1", "mean2", "logvar2"]):
        args = [z, z, z, z]
        args[i] = 0.5
        with pytest.raises(TypeError, match=rf"^{name} must be a torch.Tensor, got float$"):
            normal_kl(*args)


def test_schedule_repr_shows_the_end_points():
    s = Schedule.linear(T=4, beta_1=0.01, beta_T=0.04)
    ab = (0.99 * 0.98 * 0.97 * 0.96)
    assert repr(s) == f"Schedule(name='linear', T=4, beta_1=0.01, beta_T=0.04, alpha_bar_T={ab:.3g})"


def test_forward_and_posterior_argument_checks():
    d = _toy(T=5)
    x, nan = torch.zeros(2, 3), torch.full((2, 3), float("nan"))
    mean, var = d.q_mean_variance(x + 0.5, 0)  # t = 0 is allowed: q(x_0 | x_0) is a point mass
    assert torch.equal(mean, x + 0.5) and torch.equal(var, torch.zeros(2, 1))
    with pytest.raises(ValueError, match=r"^x0 contains NaN"):
        d.q_mean_variance(nan, 1)
    with pytest.raises(ValueError, match=r"^x0 contains NaN"):
        d.q_posterior(nan, x, 1)
    with pytest.raises(ValueError, match=r"^xt contains NaN"):
        d.q_posterior(x, nan, 1)
    with pytest.raises(ValueError, match=r"^xt must have the same shape as x, \(2, 3\); got \(2, 2\)"):
        d.q_posterior(x, torch.zeros(2, 2), 1)
    with pytest.raises(ValueError, match=r"^xt contains NaN"):
        d.p_mean_variance(lambda x, t: x, nan, 1)


def test_p_sample_forwards_clip_denoised_and_keeps_the_dtype():
    d = _toy(T=5, parameterization="x0", clip_denoised=True)
    xt = torch.full((3, 2), 0.5, dtype=torch.float64)
    model = lambda x, t: 4.0 * x  # x0_hat = 2, outside [-1, 1]
    z = torch.zeros_like(xt)
    clipped = d.p_sample(model, xt, 3, noise=z)["sample"]
    free = d.p_sample(model, xt, 3, clip_denoised=False, noise=z)["sample"]
    c0, ct = d.schedule.posterior_coef_x0[3].item(), d.schedule.posterior_coef_xt[3].item()
    torch.testing.assert_close(clipped, torch.full_like(xt, c0 * 1.0 + ct * 0.5))
    torch.testing.assert_close(free, torch.full_like(xt, c0 * 2.0 + ct * 0.5))
    drawn = d.p_sample(model, xt, torch.tensor([3, 1, 2]), generator=torch.Generator().manual_seed(0))["sample"]
    assert drawn.dtype == torch.float64
    torch.testing.assert_close(drawn[1], torch.ones(2, dtype=torch.float64))  # t = 1: the clipped x0_hat, no noise


def test_default_arguments_are_the_papers():
    q = quadratic_betas()
    assert q.shape == (1000,) and q[0].item() == pytest.approx(1e-4) and q[-1].item() == pytest.approx(0.02)
    sq = Schedule.quadratic()
    assert sq.T == 1000 and sq.betas[1].item() == pytest.approx(1e-4) and sq.betas[-1].item() == pytest.approx(0.02)
    c = Schedule.cosine()
    torch.testing.assert_close(c.betas[1:], cosine_betas(1000, s=0.008))
    assert cosine_betas().shape == (1000,)
    assert Schedule.from_name("cosine").T == 1000


def test_q_sample_and_model_output_argument_checks():
    d = _toy(T=5)
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"^x0 contains NaN"):
        d.q_sample(torch.full((2, 3), float("nan")), 1)
    with pytest.raises(ValueError, match=r"^noise must have the same shape as x, \(2, 3\); got \(3,\)"):
        d.q_sample(x, 1, torch.zeros(3))
    with pytest.raises(ValueError, match=r"^model output must be a tensor shaped like x_t \(2, 3\), got list$"):
        d.p_mean_variance(lambda x, t: [1.0], x, 1)
    with pytest.raises(ValueError, match=r"^model output must be a tensor shaped like x_t \(2, 3\), "
                                         r"got torch.Size\(\[2\]\)$"):
        d.p_mean_variance(lambda x, t: torch.zeros(2), x, 1)


def test_p_mean_variance_clips_both_sides_and_casts_the_model_output():
    d = _toy(T=5, parameterization="x0", clip_denoised=True)
    xt = torch.tensor([[0.5, -0.5]], dtype=torch.float64)
    out = d.p_mean_variance(lambda x, t: (4.0 * x).float(), xt, 2)
    assert out["model_output"].dtype == torch.float64
    torch.testing.assert_close(out["pred_x0"], torch.tensor([[1.0, -1.0]], dtype=torch.float64))


def test_prior_and_rate_keep_their_precision():
    from ddpm_core.likelihood import prior_bpd
    d = _toy(T=5)
    x32 = torch.tensor([[0.5, -0.25]])
    p = prior_bpd(d, x32)
    assert p.dtype == torch.float32
    # computed in float64: KL(N(sqrt(ab) x, 1 - ab) || N(0, 1)) per dimension, in bits
    ab = d.schedule.alpha_bars[5].item()
    kl = [0.5 * (-math.log(1 - ab) + (1 - ab) + ab * v * v - 1) for v in (0.5, -0.25)]
    assert p.item() == pytest.approx(sum(kl) / 2 / math.log(2), rel=1e-6)
    rd = rate_distortion(1e-7, torch.tensor([0.5, 0.25]), torch.tensor([0.0, 0.0]))
    assert rd.rate[-1].item() == pytest.approx(1e-7, rel=1e-12, abs=0)  # a Python float prior is read in float64


def test_respace_keeps_clipping_on_and_bits_per_dim_defaults_to_the_discretized_unclipped_bound():
    d = _toy(T=6, clip_denoised=True)
    assert respace(d, lambda x, t: x, [3, 6])[0].clip_denoised is True
    x0 = torch.tensor([[-1.0, 1 / 255]])
    model = lambda x, t: 3.0 * x  # its x_0 prediction leaves [-1, 1], so clipping changes the terms
    r = ddpm_core.bits_per_dim(d, model, x0, generator=torch.Generator().manual_seed(1))
    s = ddpm_core.bits_per_dim(d, model, x0, generator=torch.Generator().manual_seed(1), decoder="discretized",
                               clip_denoised=False)
    torch.testing.assert_close(r.terms, s.terms)
    gauss = ddpm_core.bits_per_dim(d, model, x0, generator=torch.Generator().manual_seed(1), decoder="gaussian")
    clipped = ddpm_core.bits_per_dim(d, model, x0, generator=torch.Generator().manual_seed(1), clip_denoised=True)
    assert not torch.allclose(r.terms[:, 0], gauss.terms[:, 0])
    assert not torch.allclose(r.terms, clipped.terms)


def test_schedule_padding_entries_and_input_checks():
    s = Schedule([0.1, 0.2, 0.3])  # a plain list is accepted
    torch.testing.assert_close(s.betas, torch.tensor([0.0, 0.1, 0.2, 0.3], dtype=torch.float64))
    assert s.alpha_bars[3].item() == pytest.approx(0.9 * 0.8 * 0.7, rel=1e-15)
    # t = 0: the posterior is the identity (weight 1 on x_0, 0 on x_t), beta~_0 = 0, SNR infinite
    assert s.posterior_coef_x0[0].item() == 1.0 and s.posterior_coef_xt[0].item() == 0.0
    assert s.beta_tildes[0].item() == 0.0 and s.snr[0].item() == math.inf
    assert s.log_beta_tildes_clipped[0].item() == -math.inf
    assert torch.isfinite(s.posterior_coef_x0).all() and torch.isfinite(s.posterior_coef_xt).all()
    with pytest.raises(ValueError, match=r"^every beta_t must lie in \(0, 1\)"):
        Schedule([0.0, 0.1])
    with pytest.raises(ValueError, match=r"^betas must be finite$"):
        Schedule([0.1, float("nan")])
