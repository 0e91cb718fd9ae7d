"""The optimal reverse variance (Analytic-DPM) against the paper's two closed cases and a direct minimisation."""
import math

import pytest
import torch

from ddpm_core.analytic_variance import (bound_terms_with_variance, estimate_eps_sq_norm, estimate_optimal_variance,
                                         mixture_optimal_variance, mixture_score_sq_norm, model_optimal_variance,
                                         optimal_variance, vb_term_bpd_with_variance)
from ddpm_core.diffusion import GaussianDiffusion
from ddpm_core.likelihood import bits_per_dim, vb_term_bpd
from ddpm_core.mixtures import GaussianMixture
from ddpm_core.oracles import gaussian_eps_oracle
from ddpm_core.schedules import Schedule

SCHED = Schedule.linear(100, 1e-3, 0.2)


def test_point_mass_gives_beta_tilde_and_standard_normal_gives_beta():
    s = SCHED
    point = mixture_optimal_variance(GaussianMixture([1.0], [[0.3, -0.2]], 0.0), s, clip=False)
    normal = mixture_optimal_variance(GaussianMixture([1.0], [[0.0, 0.0]], 1.0), s, clip=False)
    torch.testing.assert_close(point[1:], s.beta_tildes[1:], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(normal[1:], s.betas[1:], rtol=1e-10, atol=1e-14)
    assert point[0] == 0 and normal[0] == 0


def test_quadrature_matches_the_gaussian_closed_form_and_monte_carlo():
    ab = torch.tensor([0.99, 0.5, 0.01], dtype=torch.float64)
    g = GaussianMixture([1.0], [[1.0, -2.0]], [[0.5, 2.0]])
    closed = (1 / (ab[:, None] * g.stds[0] ** 2 + 1 - ab[:, None])).mean(1)  # E||score||^2 / d for one Gaussian
    torch.testing.assert_close(mixture_score_sq_norm(g, ab), closed)
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[0.3, 0.2], [0.4, 0.5]])
    gen = torch.Generator().manual_seed(0)
    for a in ab.tolist():
        x0 = gm.sample(100_000, gen)
        xt = math.sqrt(a) * x0 + math.sqrt(1 - a) * torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        sq = (gm.score(xt, a) ** 2).sum(1) / 2
        quad = mixture_score_sq_norm(gm, torch.tensor([a]))[0]
        assert abs(quad - sq.mean()) < 4 * sq.std() / math.sqrt(sq.numel()), (a, quad, sq.mean())


def test_mixture_variance_lies_between_for_unit_spread_data_and_can_exceed_beta_otherwise():
    s = SCHED
    narrow = GaussianMixture([0.4, 0.6], [[-0.6, 0.3], [0.5, -0.2]], [[0.3, 0.4], [0.2, 0.3]])  # tr Cov < d
    assert narrow.covariance().trace() < 2
    var = mixture_optimal_variance(narrow, s)
    inside = (var[2:] - s.beta_tildes[2:]) / (s.betas[2:] - s.beta_tildes[2:])
    assert (inside > 1e-3).all() and (inside < 1).all(), inside
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[0.3, 0.2], [0.4, 0.5]])  # tr Cov = 3.5 > d
    var = mixture_optimal_variance(gm, s)
    assert (var[1:] >= s.beta_tildes[1:]).all() and (var[1:] > s.betas[1:] * (1 + 1e-6)).any()
    # Independent check: E[L_{t-1}] as a function of sigma^2 is minimised at beta~ + E||mu~ - mu*||^2 / d
    # (the mean of the KL's quadratic term), estimated here by Monte Carlo with the exact eps-predictor.
    diff = GaussianDiffusion(s, variance="beta", clip_denoised=False)
    model = gm.eps_oracle(s)
    gen = torch.Generator().manual_seed(1)
    for step in (2, 10, 50, 90):
        x0 = gm.sample(40_000, gen)
        t = torch.full((x0.shape[0],), step)
        xt = diff.q_sample(x0, t, torch.randn(x0.shape, generator=gen, dtype=torch.float64))
        mu = diff.p_mean_variance(model, xt, t)["mean"]
        true_mean = diff.q_posterior(x0, xt, t)[0]
        sq = ((true_mean - mu) ** 2).mean(1)
        mc = s.beta_tildes[step] + sq.mean()
        assert abs(var[step] - mc) < 4 * sq.std() / math.sqrt(sq.numel()), (step, var[step], mc)


def test_monte_carlo_estimate_from_an_eps_model():
    s = SCHED
    coef = s.betas[1:] ** 2 / (s.alphas[1:] * (1 - s.alpha_bars[1:]))  # d sigma*^2 / d(-Gamma)
    gen = torch.Generator().manual_seed(2)
    n, d = 4000, 3
    se = math.sqrt(2 / (n * d))  # standard error of ||eps||^2 / d averaged over n examples
    x_point = torch.zeros(n, d, dtype=torch.float64) + 0.4
    gamma = estimate_eps_sq_norm(gaussian_eps_oracle(s, 0.4, 0.0), s, x_point, generator=gen, batch_t=25)
    assert (gamma[1:] - 1).abs().max() < 5 * se  # the point mass's eps-predictor returns the true noise
    v = model_optimal_variance(gaussian_eps_oracle(s, 0.4, 0.0), s, x_point, generator=gen)
    assert ((v[1:] - s.beta_tildes[1:]).abs() <= 5 * se * coef).all()
    x_norm = torch.randn(n, d, generator=gen, dtype=torch.float64)
    v = model_optimal_variance(gaussian_eps_oracle(s, 0.0, 1.0), s, x_norm, generator=gen)
    assert ((v[1:] - s.betas[1:]).abs() <= 5 * se * coef).all()


def test_clipping_bounds():
    s = SCHED
    coef = s.betas[1:] ** 2 / (s.alphas[1:] * (1 - s.alpha_bars[1:]))
    v = optimal_variance(s, eps_sq_norm=torch.full((s.T + 1,), 3.0))  # Gamma > 1 is impossible: clipped to beta~
    torch.testing.assert_close(v[1:], s.beta_tildes[1:])
    v = optimal_variance(s, eps_sq_norm=torch.full((s.T + 1,), -0.0))  # Gamma = 0: the largest possible value
    torch.testing.assert_close(v[1:], s.beta_tildes[1:] + coef)
    # data in [-1, 1]: Cov(x_0 | x_t) <= 1, so sigma*^2 <= beta~ + coef_x0^2; x_0 = +-1 fair coin attains it at t = T
    v = optimal_variance(s, eps_sq_norm=torch.zeros(s.T + 1), data_range=(-1.0, 1.0))
    torch.testing.assert_close(v[1:], torch.minimum(s.beta_tildes[1:] + s.posterior_coef_x0[1:] ** 2,
                                                    s.beta_tildes[1:] + coef))
    coin = mixture_optimal_variance(GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], 0.0), s)
    assert (coin[1:] <= v[1:] * (1 + 1e-9)).all()
    assert coin[s.T] > s.beta_tildes[s.T] + 0.99 * s.posterior_coef_x0[s.T] ** 2


def test_bound_terms_with_a_variance_table_match_the_diffusions_own_terms():
    s = SCHED
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[0.3, 0.2], [0.4, 0.5]])
    gen = torch.Generator().manual_seed(3)
    x0 = gm.sample(64, gen)
    t = torch.randint(1, s.T + 1, (64,), generator=gen)
    t[:4] = 1
    for name in ("beta", "beta_tilde"):
        diff = GaussianDiffusion(s, variance=name, clip_denoised=False)
        xt = diff.q_sample(x0, t, torch.randn(x0.shape, generator=gen, dtype=torch.float64))
        ours = vb_term_bpd_with_variance(diff, gm.eps_oracle(s), x0, xt, t, diff.model_variances)
        ref = vb_term_bpd(diff, gm.eps_oracle(s), x0, xt, t, clip_denoised=False, decoder="gaussian")["term"]
        torch.testing.assert_close(ours, ref)
    # the optimal table lowers every KL term (t >= 2) below both fixed choices, on average
    diff = GaussianDiffusion(s, variance="beta", clip_denoised=False)
    x0 = gm.sample(2000, gen)
    terms = {}
    for name, table in (("beta", s.betas), ("beta_tilde", s.beta_tildes.clamp(min=s.beta_tildes[2])),
                        ("optimal", mixture_optimal_variance(gm, s))):
        terms[name] = bound_terms_with_variance(diff, gm.eps_oracle(s), x0, table,
                                                generator=torch.Generator().manual_seed(4))
    assert terms["optimal"][2:].sum() < terms["beta"][2:].sum()
    assert terms["optimal"][2:].sum() < terms["beta_tilde"][2:].sum()
    assert terms["optimal"][0] == terms["beta"][0]  # L_T does not depend on the reverse variance


def test_bad_input():
    s = SCHED
    with pytest.raises(ValueError, match="exactly one"):
        optimal_variance(s)
    with pytest.raises(ValueError, match="shape"):
        optimal_variance(s, eps_sq_norm=torch.ones(s.T))
    with pytest.raises(ValueError, match=">= 0"):
        optimal_variance(s, score_sq_norm=-torch.ones(s.T + 1))
    with pytest.raises(TypeError, match="tensor"):
        optimal_variance(s, eps_sq_norm=[1.0] * (s.T + 1))
    with pytest.raises(TypeError, match="Schedule"):
        optimal_variance("linear", eps_sq_norm=torch.ones(3))
    with pytest.raises(ValueError, match="dim <= 3"):
        mixture_score_sq_norm(GaussianMixture([1.0], [[0.0] * 4], 1.0), torch.tensor([0.5]))
    with pytest.raises(TypeError, match="GaussianMixture"):
        mixture_score_sq_norm("gm", torch.tensor([0.5]))
    diff = GaussianDiffusion(s)
    x = torch.zeros(2, 2, dtype=torch.float64)
    t = torch.ones(2, dtype=torch.long)
    with pytest.raises(ValueError, match="variances"):
        vb_term_bpd_with_variance(diff, lambda x, t: x, x, x, t, torch.ones(s.T))
    with pytest.raises(ValueError, match="> 0"):
        vb_term_bpd_with_variance(diff, lambda x, t: x, x, x, t, torch.zeros(s.T + 1))
    with pytest.raises(ValueError, match="decoder"):
        vb_term_bpd_with_variance(diff, lambda x, t: x, x, x, t, s.betas, decoder="laplace")
    with pytest.raises(ValueError, match="batch_t"):
        estimate_eps_sq_norm(lambda x, t: x, s, x, batch_t=0)


def test_diffusion_accepts_a_variance_table_and_the_named_tables_reproduce_the_named_variances():
    s = SCHED
    gm = GaussianMixture([0.3, 0.7], [[-0.5, 0.2], [0.4, -0.3]], [[0.2, 0.3], [0.3, 0.2]])
    model = gm.eps_oracle(s)
    x0 = gm.sample(32, torch.Generator().manual_seed(5))
    for name in ("beta", "beta_tilde"):
        named = GaussianDiffusion(s, variance=name, clip_denoised=False)
        tabled = GaussianDiffusion(s, variance=named.model_variances, clip_denoised=False)
        assert torch.equal(tabled.model_log_variances[1:], named.model_log_variances[1:])
        ref = bits_per_dim(named, model, x0, decoder="gaussian", generator=torch.Generator().manual_seed(6))
        for diffusion, variance in ((tabled, None), (named, named.model_variances),
                                    (GaussianDiffusion(s, variance="beta" if name == "beta_tilde" else "beta_tilde",
                                                       clip_denoised=False), name)):
            got = bits_per_dim(diffusion, model, x0, decoder="gaussian", variance=variance,
                               generator=torch.Generator().manual_seed(6))
            assert torch.equal(got.terms, ref.terms) and torch.equal(got.total, ref.total), (name, variance)
    assert "table" in repr(tabled) and isinstance(tabled.variance, torch.Tensor)


def test_bits_per_dim_with_a_table_agrees_with_bound_terms_with_variance():
    s = SCHED
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 0.5], [1.5, -1.0]], [[0.3, 0.2], [0.4, 0.5]])
    model = gm.eps_oracle(s)
    table = mixture_optimal_variance(gm, s)
    table[1] = s.beta_tildes[2]
    base = GaussianDiffusion(s, variance="beta", clip_denoised=False)
    tabled = GaussianDiffusion(s, variance=table, clip_denoised=False)
    gen = torch.Generator().manual_seed(7)
    x0 = gm.sample(64, gen)
    t = torch.randint(1, s.T + 1, (64,), generator=gen)
    t[:4] = 1
    xt = base.q_sample(x0, t, torch.randn(x0.shape, generator=gen, dtype=torch.float64))
    torch.testing.assert_close(vb_term_bpd(tabled, model, x0, xt, t, decoder="gaussian")["term"],
                               vb_term_bpd_with_variance(base, model, x0, xt, t, table))
    # whole bounds on independent noise agree within their Monte Carlo error
    x0 = gm.sample(3000, gen)
    ours = bits_per_dim(base, model, x0, decoder="gaussian", variance=table, generator=gen)
    other = bound_terms_with_variance(base, model, x0, table, generator=gen)
    se = ours.total.std() / math.sqrt(x0.shape[0])
    assert abs(ours.total.mean() - other.sum()) < 5 * math.sqrt(2) * se, (ours.total.mean(), other.sum(), se)


def test_bits_per_dim_optimal_is_the_estimated_table_and_beats_beta_and_beta_tilde():
    s = SCHED
    gm = GaussianMixture([0.5, 0.5], [[-0.5, 0.3], [0.5, -0.3]], [[0.15, 0.2], [0.2, 0.15]])
    model = gm.eps_oracle(s)
    diff = GaussianDiffusion(s, variance="beta", clip_denoised=False)
    x0 = gm.sample(1000, torch.Generator().manual_seed(8))
    got = bits_per_dim(diff, model, x0, decoder="gaussian", variance="optimal",
                       generator=torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    table = estimate_optimal_variance(diff, model, x0, decoder="gaussian", generator=gen)
    assert table[1] >= s.beta_tildes[2] and (table[2:] >= s.beta_tildes[2:]).all()
    again = bits_per_dim(diff, model, x0, decoder="gaussian", variance=table, generator=gen)
    assert torch.equal(got.terms, again.terms)
    # the estimate's Gamma_t = 1 - (sigma^2 - beta~) / coef matches the exact one (quadrature) within 5 standard errors
    exact = mixture_optimal_variance(gm, s, clip=True)
    coef = s.betas[2:] ** 2 / (s.alphas[2:] * (1 - s.alpha_bars[2:]))
    gap = ((table[2:] - exact[2:]) / coef).abs()
    assert gap.max() < 5 * math.sqrt(2 / (x0.shape[0] * 2)), gap.max()
    totals = {v: bits_per_dim(diff, model, x0, decoder="gaussian", variance=v,
                              generator=torch.Generator().manual_seed(10)).terms[:, 1:].sum(1).mean()
              for v in ("beta", "beta_tilde")}
    assert got.terms[:, 1:].sum(1).mean() < min(totals.values()), (got.terms[:, 1:].sum(1).mean(), totals)
    # the x0-parameterization's implied eps gives the same table
    x0_model = lambda x, t: diff.predict_x0_from_eps(x, t, model(x, t))  # noqa: E731
    diff_x0 = GaussianDiffusion(s, parameterization="x0", variance="beta", clip_denoised=False)
    torch.testing.assert_close(estimate_optimal_variance(diff_x0, x0_model, x0, decoder="gaussian",
                                                         generator=torch.Generator().manual_seed(9)), table)


def test_variance_table_bad_input():
    s = SCHED
    with pytest.raises(ValueError, match=r"shape \(T \+ 1,\)"):
        GaussianDiffusion(s, variance=s.betas[1:])
    with pytest.raises(ValueError, match="> 0"):
        GaussianDiffusion(s, variance=torch.zeros(s.T + 1))
    with pytest.raises(TypeError, match="floating"):
        GaussianDiffusion(s, variance=torch.ones(s.T + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="allowed"):
        GaussianDiffusion(s, variance="learned")
    diff = GaussianDiffusion(s, clip_denoised=False)
    x0 = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="optimal"):
        bits_per_dim(diff, lambda x, t: x, x0, decoder="gaussian", variance="fixedlarge")
    with pytest.raises(TypeError, match="variance"):
        bits_per_dim(diff, lambda x, t: x, x0, decoder="gaussian", variance=0.1)
    with pytest.raises(ValueError, match="shape"):
        bits_per_dim(diff, lambda x, t: x, x0, decoder="gaussian", variance=torch.ones(3))
    with pytest.raises(ValueError, match="decoder"):
        estimate_optimal_variance(diff, lambda x, t: x, x0, decoder="laplace")
    with pytest.raises(TypeError, match="GaussianDiffusion"):
        estimate_optimal_variance(s, lambda x, t: x, x0)
