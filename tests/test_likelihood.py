"""The variational bound L (Eq. 5): the paper's L_T, the decomposition, and Gaussian-data oracles."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule, bits_per_dim, rate_distortion
from ddpm_core.likelihood import prior_bpd, vb_term_bpd
from ddpm_core.oracles import gaussian_eps_oracle


def _grid_data(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, d), generator=g).float() / 127.5 - 1


def test_prior_term_is_about_1e_minus_5_bits_per_dim_for_the_paper_schedule():
    d = GaussianDiffusion(Schedule.linear())
    x0 = _grid_data(256, 3 * 32 * 32)
    lt = prior_bpd(d, x0)
    assert lt.shape == (256,)
    assert 3e-6 < lt.mean().item() < 3e-5  # the paper: "L_T ~ 1e-5 bits/dim"
    # exact value for x_0 = 0: KL(N(0, 1 - ab_T) || N(0, 1)) = (-log(1-ab) + (1-ab) - 1) / 2 nats
    ab = d.schedule.alpha_bars[-1].item()
    exact = 0.5 * (-math.log(1 - ab) + (1 - ab) - 1) / math.log(2)
    assert prior_bpd(d, torch.zeros(1, 5)).item() == pytest.approx(exact, rel=1e-3)  # float64 inside


def test_bound_decomposes_into_its_terms_and_term_at_t1_is_the_decoder():
    d = GaussianDiffusion(Schedule.linear(T=40, beta_1=1e-3, beta_T=0.3))
    x0 = _grid_data(8, 12)
    model = gaussian_eps_oracle(d.schedule, 0.0, 0.6)
    r = bits_per_dim(d, model, x0, progress=False, generator=torch.Generator().manual_seed(0))
    assert r.terms.shape == (8, 40) and r.x0_mse.shape == (8, 40)
    torch.testing.assert_close(r.total, r.prior + r.terms.sum(1))
    assert torch.all(r.terms[:, 1:] >= -1e-9)  # KL terms are non-negative
    # t = 1 is the discretized decoder, a probability: its NLL is positive
    assert torch.all(r.decoder > 0)
    means = r.mean()
    assert means["total"] == pytest.approx(means["prior"] + means["decoder"] + means["diffusion"], rel=1e-9)


def test_vb_term_matches_the_weighted_mse_form_of_eq_12():
    """For t >= 2 and fixed sigma_t^2, L_{t-1} = C + beta_t^2 / (2 sigma^2 alpha_t (1 - ab_t)) ||eps - eps_theta||^2."""
    s = Schedule.linear()
    d = GaussianDiffusion(s, variance="beta_tilde", clip_denoised=False)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 7, generator=g, dtype=torch.float64) * 0.5
    eps = torch.randn(5, 7, generator=g, dtype=torch.float64)
    eps_hat = eps + 0.1 * torch.randn(5, 7, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 10, 100, 500, 1000])
    xt = d.q_sample(x0, t, eps)
    term = vb_term_bpd(d, lambda x, tt: eps_hat, x0, xt, t)["term"]
    b, a, ab = s.betas[t], s.alphas[t], s.alpha_bars[t]
    sig2 = d.model_variances[t]
    weight = b ** 2 / (2 * sig2 * a * (1 - ab))
    post_var = s.beta_tildes[t]
    const = 0.5 * (torch.log(sig2 / post_var) + post_var / sig2 - 1)  # zero when sigma^2 = beta~
    expected = (const + weight * ((eps - eps_hat) ** 2).mean(1)) / math.log(2)
    torch.testing.assert_close(term, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_bound_upper_bounds_exact_nll_of_the_model(variance):
    """With the Gaussian oracle the model p_theta(x_0) is Gaussian in closed form: E[L] >= -log p_theta >= h(data),
    and -log p_theta approaches the data's entropy h as T grows."""
    m, s, n = 0.2, 0.3, 1000
    h = 0.5 * math.log2(2 * math.pi * math.e * s * s)
    x0 = (m + s * torch.randn(n, 4, generator=torch.Generator().manual_seed(1))).double()
    gaps_to_h = []
    for T in [10, 50, 250]:
        d = GaussianDiffusion(Schedule.cosine(T), variance=variance, clip_denoised=False)
        model = gaussian_eps_oracle(d.schedule, m, s)
        mu, v = 0.0, 1.0  # propagate the linear-Gaussian reverse chain exactly: p(x_{t-1}) from p(x_t)
        for t in range(T, 0, -1):
            o = d.p_mean_variance(model, torch.tensor([[0.0], [1.0]], dtype=torch.float64), t)
            B = o["mean"][0, 0].item()
            A = o["mean"][1, 0].item() - B
            mu, v = A * mu + B, A * A * v + o["variance"][0, 0].item()
        nll = (0.5 * math.log(2 * math.pi * v) + (s * s + (m - mu) ** 2) / (2 * v)) / math.log(2)
        r = bits_per_dim(d, model, x0, progress=False, generator=torch.Generator().manual_seed(2), decoder="gaussian")
        L, se = r.total.mean().item(), r.total.std().item() / math.sqrt(n)
        assert nll >= h - 1e-9
        assert L >= nll - 4 * se, (T, L, nll)
        gaps_to_h.append(nll - h)
    assert gaps_to_h[0] > gaps_to_h[1] > gaps_to_h[2] >= 0
    assert gaps_to_h[2] < 0.01


def test_bound_bad_input():
    d = GaussianDiffusion(Schedule.linear(T=5))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        bits_per_dim(d, lambda x, t: x, torch.full((2, 3), 2.0), progress=False)
    with pytest.raises(ValueError, match="allowed"):
        bits_per_dim(d, lambda x, t: x, torch.zeros(2, 3), progress=False, decoder="laplace")
    with pytest.raises(TypeError, match="floating-point"):
        bits_per_dim(d, lambda x, t: x, torch.zeros(2, 3, dtype=torch.long), progress=False)
    with pytest.raises(TypeError, match="clip_denoised"):
        bits_per_dim(d, lambda x, t: x, torch.zeros(2, 3), clip_denoised=None)


def test_rate_distortion_bookkeeping_of_progressive_coding():
    """Sec. 4.3: holding x_T costs L_T; each further x_t costs one KL term; after x_1 only L_0 is left to send."""
    d = GaussianDiffusion(Schedule.linear(T=30, beta_1=1e-3, beta_T=0.3))
    x0 = _grid_data(16, 12)
    r = bits_per_dim(d, gaussian_eps_oracle(d.schedule, 0.0, 0.6), x0, generator=torch.Generator().manual_seed(0))
    rd = r.rate_distortion()
    assert rd.t.tolist() == list(range(1, 31)) and rd.rate.shape == rd.distortion.shape == (30,)
    assert rd.rate[-1].item() == pytest.approx(r.prior.mean().item(), rel=1e-12)            # holding x_T
    assert rd.rate[0].item() + r.decoder.mean().item() == pytest.approx(rd.total, rel=1e-12)  # x_1, then L_0
    assert rd.total == pytest.approx(r.total.mean().item(), rel=1e-12)
    # holding x_t: L_T + L_{T-1} + ... + L_t, i.e. the terms of the steps t+1 .. T
    t = 11
    expected = r.prior.mean() + r.terms[:, t:].sum(1).mean()
    assert rd.at(t)[0] == pytest.approx(expected.item(), rel=1e-12)
    assert torch.all(rd.rate[:-1] >= rd.rate[1:] - 1e-12)  # KL terms are >= 0: the rate only grows as t falls
    # distortion is the data set's RMSE on the 0..255 scale
    assert rd.distortion[t - 1].item() == pytest.approx(127.5 * r.x0_mse[:, t - 1].mean().sqrt().item(), rel=1e-12)
    # batch means in, the same curve out (the form experiment files store)
    rd2 = rate_distortion(r.prior.mean(), r.terms.mean(0), r.x0_mse.mean(0))
    torch.testing.assert_close(rd2.rate, rd.rate)
    torch.testing.assert_close(rd2.distortion, rd.distortion)


def test_rate_distortion_distortion_matches_the_gaussian_posterior_mean_error():
    """For x_0 ~ N(0, s^2 I) the oracle's x0_hat(x_t) = E[x_0 | x_t] has MSE s^2 (1 - ab) / (ab s^2 + 1 - ab)."""
    d = GaussianDiffusion(Schedule.linear(T=50, beta_1=1e-3, beta_T=0.2))
    s = 0.5
    x0 = s * torch.randn(4000, 8, generator=torch.Generator().manual_seed(3))
    r = bits_per_dim(d, gaussian_eps_oracle(d.schedule, 0.0, s), x0, clip_denoised=False, decoder="gaussian",
                     generator=torch.Generator().manual_seed(4))
    rd = r.rate_distortion(data_range=2.0)  # distortion in the data's own units
    ab = d.schedule.alpha_bars[1:]
    exact = (s * s * (1 - ab) / (ab * s * s + 1 - ab)).sqrt()
    torch.testing.assert_close(rd.distortion, exact, rtol=0.02, atol=0)
    assert rd.distortion[-1] > rd.distortion[0]  # less is known about x_0 the earlier the receiver stops


def test_rate_distortion_bad_input():
    with pytest.raises(ValueError, match="x0_mse must have the shape"):
        rate_distortion(0.0, torch.zeros(5), torch.zeros(4))
    with pytest.raises(ValueError, match="terms must have shape"):
        rate_distortion(0.0, torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="non-negative"):
        rate_distortion(0.0, torch.zeros(3), -torch.ones(3))
    with pytest.raises(ValueError, match="data_range"):
        rate_distortion(0.0, torch.zeros(3), torch.zeros(3), data_range=0)
    rd = rate_distortion(0.0, torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="t must be an int in 1..3"):
        rd.at(0)
