"""Forward process, posterior, parameterizations and Algorithm 2, checked against closed forms and oracles."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule, loss, sample
from ddpm_core.oracles import gaussian_eps_oracle


def _normal_logpdf(x, mean, var):
    return -0.5 * (math.log(2 * math.pi) + torch.log(var) + (x - mean) ** 2 / var)


@pytest.mark.parametrize("t", [1, 10, 100, 300])
def test_closed_form_matches_iterated_forward_steps(t):
    d = GaussianDiffusion(Schedule.linear())
    g = torch.Generator().manual_seed(t)
    n = 40_000
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    x = x0.clone()
    for s in range(1, t + 1):
        x = d.q_step_sample(x, s, generator=g)
    mean, var = d.q_mean_variance(x0[:1], t)
    se_mean = math.sqrt(var.item() / n)
    assert abs(x.mean().item() - mean.item()) < 5 * se_mean
    se_var = var.item() * math.sqrt(2 / n)
    assert abs(x.var().item() - var.item()) < 5 * se_var
    # and q_sample draws from the same law
    y = d.q_sample(x0, t, generator=g)
    assert abs(y.mean().item() - mean.item()) < 5 * se_mean and abs(y.var().item() - var.item()) < 5 * se_var


def test_q_sample_with_given_noise_and_t_zero():
    d = GaussianDiffusion(Schedule.linear())
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    t = torch.tensor([0, 1, 500, 1000])
    xt = d.q_sample(x0, t, eps)
    ab = d.schedule.alpha_bars[t].float().unsqueeze(1)
    torch.testing.assert_close(xt, ab.sqrt() * x0 + (1 - ab).sqrt() * eps)
    torch.testing.assert_close(xt[0], x0[0])


@pytest.mark.parametrize("t", [2, 5, 300, 1000])
def test_posterior_is_bayes_rule(t):
    """q(x_{t-1}|x_t,x_0) = q(x_t|x_{t-1}) q(x_{t-1}|x_0) / q(x_t|x_0), pointwise on a grid of x_{t-1}."""
    d = GaussianDiffusion(Schedule.linear())
    s = d.schedule
    x0 = torch.tensor([[0.3]], dtype=torch.float64)
    xt = torch.tensor([[-0.4]], dtype=torch.float64)
    mean, var, _ = d.q_posterior(x0, xt, t)
    grid = torch.linspace(-3, 3, 201, dtype=torch.float64)
    a_t, b_t, ab_tm1, ab_t = s.alphas[t], s.betas[t], s.alpha_bars[t - 1], s.alpha_bars[t]
    log_bayes = (_normal_logpdf(xt.item(), a_t.sqrt() * grid, b_t)
                 + _normal_logpdf(grid, ab_tm1.sqrt() * x0.item(), 1 - ab_tm1)
                 - _normal_logpdf(xt.item(), ab_t.sqrt() * x0.item(), 1 - ab_t))
    log_post = _normal_logpdf(grid, mean.reshape(()), var.reshape(()))
    torch.testing.assert_close(log_post, log_bayes, rtol=1e-8, atol=1e-8)


def test_posterior_at_t1_returns_x0():
    d = GaussianDiffusion(Schedule.linear())
    x0, xt = torch.randn(3, 2), torch.randn(3, 2)
    mean, var, logvar = d.q_posterior(x0, xt, 1)
    torch.testing.assert_close(mean, x0)
    assert torch.all(var == 0) and torch.isfinite(logvar).all()


def test_parameterization_conversions_round_trip():
    d = GaussianDiffusion(Schedule.linear())
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 2, 10, 100, 999, 1000])
    xt = d.q_sample(x0, t, eps)
    torch.testing.assert_close(d.predict_x0_from_eps(xt, t, eps), x0)
    torch.testing.assert_close(d.predict_eps_from_x0(xt, t, x0), eps)
    # Eq. (11) equals the posterior mean with x_0 predicted from eps (Eq. 10)
    torch.testing.assert_close(d.mean_from_eps(xt, t, eps), d.q_posterior(x0, xt, t)[0])
    torch.testing.assert_close(d.x0_from_mean(xt, t, d.q_posterior(x0, xt, t)[0]), x0)


def test_three_parameterizations_give_the_same_reverse_step():
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([2, 7, 50, 500, 1000])
    base = GaussianDiffusion(Schedule.linear(), clip_denoised=False)
    xt = base.q_sample(x0, t, eps)
    models = {"eps": lambda x, tt: eps, "x0": lambda x, tt: x0, "mean": lambda x, tt: base.q_posterior(x0, x, tt)[0]}
    means = [GaussianDiffusion(Schedule.linear(), parameterization=p, clip_denoised=False)
             .p_mean_variance(models[p], xt, t)["mean"] for p in models]
    for m in means[1:]:
        torch.testing.assert_close(m, means[0])


def test_model_variance_choices():
    s = Schedule.linear()
    big, small = GaussianDiffusion(s, variance="beta"), GaussianDiffusion(s, variance="beta_tilde")
    x = torch.zeros(3, 1)
    t = torch.tensor([1, 2, 1000])
    vb, _ = big.model_variance(t, x)
    vs, _ = small.model_variance(t, x)
    b2, bt2 = s.betas[2].item(), s.beta_tildes[2].item()
    assert vb[1].item() == pytest.approx(b2, rel=1e-6) and vs[1].item() == pytest.approx(bt2, rel=1e-6)
    # at t = 1 both use beta~_2 (the official code's clipping), a finite, positive decoder variance
    assert vb[0].item() == pytest.approx(bt2, rel=1e-6) and vs[0].item() == pytest.approx(bt2, rel=1e-6)


@pytest.mark.parametrize("variance", ["beta", "beta_tilde"])
def test_algorithm2_with_gaussian_oracle_reproduces_the_data(variance):
    m, s, n = 0.4, 0.5, 20_000
    d = GaussianDiffusion(Schedule.linear(T=250, beta_1=4e-4, beta_T=0.08), variance=variance, clip_denoised=False)
    x = sample(gaussian_eps_oracle(d.schedule, m, s), d, (n, 2), generator=torch.Generator().manual_seed(0))
    assert abs(x.mean().item() - m) < 5 * s / math.sqrt(2 * n) + 0.01
    # sigma^2 = beta~ (optimal for a point mass) comes out slightly narrower than the data; beta nearly exact
    assert abs(x.std().item() - s) < {"beta": 0.02, "beta_tilde": 0.05}[variance] * s


def test_beta_is_exact_for_standard_normal_data_and_beta_tilde_too_narrow():
    """For x_0 ~ N(0, I) the reverse chain with sigma^2 = beta_t is exact; with beta~_t it comes out narrower."""
    n = 20_000
    out = {}
    for variance in ["beta", "beta_tilde"]:
        d = GaussianDiffusion(Schedule.linear(T=20, beta_1=0.01, beta_T=0.5), variance=variance, clip_denoised=False)
        x = sample(gaussian_eps_oracle(d.schedule, 0.0, 1.0), d, (n, 1), generator=torch.Generator().manual_seed(3))
        out[variance] = x.std().item()
    assert abs(out["beta"] - 1.0) < 0.03
    assert out["beta_tilde"] < 0.9


def test_sampling_is_seeded_and_records_progressive_predictions():
    d = GaussianDiffusion(Schedule.linear(T=30, beta_1=1e-3, beta_T=0.3), clip_denoised=False)
    model = gaussian_eps_oracle(d.schedule, 0.2, 0.3)
    a = sample(model, d, (4, 3), generator=torch.Generator().manual_seed(5), progress=False)
    r = sample(model, d, (4, 3), generator=torch.Generator().manual_seed(5), progress=False, record=[30, 10, 1])
    torch.testing.assert_close(a, r.x0)
    assert r.steps == [30, 10, 1] and r.xt.shape == (3, 4, 3) and r.pred_x0.shape == (3, 4, 3)
    # the x0 prediction at t = 1 is the last step's mean (no noise is added at t = 1)
    torch.testing.assert_close(r.pred_x0[-1], r.x0)


def test_sampling_from_an_intermediate_step():
    d = GaussianDiffusion(Schedule.linear(T=20, beta_1=1e-3, beta_T=0.2), clip_denoised=False)
    xs = torch.zeros(3, 2)
    out = sample(lambda x, t: torch.zeros_like(x), d, (3, 2), x_start=xs, t_start=1, progress=False)
    torch.testing.assert_close(out, xs / d.schedule.alphas[1].sqrt().float())


GOLDEN_SAMPLES = [[5.274205684661865, 0.5066013932228088], [-12.479349136352539, -1.6536017656326294],
                  [-5.885330677032471, -2.943483829498291]]


def test_golden_sampling_run_on_tiny_seeded_model():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))

    def model(x, t):
        return net(torch.cat([x, (t.float() / 20).unsqueeze(1)], 1))

    d = GaussianDiffusion(Schedule.linear(20, 1e-3, 0.2), clip_denoised=False)
    with torch.no_grad():
        x = sample(model, d, (3, 2), generator=torch.Generator().manual_seed(0), progress=False)
    torch.testing.assert_close(x, torch.tensor(GOLDEN_SAMPLES), rtol=1e-4, atol=1e-4)


def test_loss_simple_with_oracle_equals_closed_form_minimum():
    m, s = 0.1, 0.4
    d = GaussianDiffusion(Schedule.linear())
    model = gaussian_eps_oracle(d.schedule, m, s)
    g = torch.Generator().manual_seed(2)
    n = 50_000
    for t_val in [1, 50, 300, 1000]:
        x0 = m + s * torch.randn(n, 1, generator=g, dtype=torch.float64)
        t = torch.full((n,), t_val)
        per = loss(d, model, x0, t=t, generator=g, reduction="none")
        ab = d.schedule.alpha_bars[t_val].item()
        expected = 1 - (1 - ab) / (ab * s * s + 1 - ab)  # Var(eps | x_t), the irreducible error
        assert abs(per.mean().item() - expected) < 5 * per.std().item() / math.sqrt(n) + 1e-9


def test_loss_simple_targets_per_parameterization():
    x0 = torch.rand(4, 2) - 0.5
    noise = torch.randn(4, 2)
    t = torch.tensor([3, 30, 300, 900])
    for p in ["eps", "x0", "mean"]:
        d = GaussianDiffusion(Schedule.linear(), parameterization=p)
        xt = d.q_sample(x0, t, noise)
        target = {"eps": noise, "x0": x0, "mean": d.q_posterior(x0, xt, t)[0]}[p]
        perfect = lambda x, tt, target=target: target
        assert loss(d, perfect, x0, t=t, noise=noise).item() < 1e-10


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="allowed"):
        GaussianDiffusion(parameterization="v")
    with pytest.raises(ValueError, match="allowed"):
        GaussianDiffusion(variance="learned")
    with pytest.raises(TypeError, match="Schedule"):
        GaussianDiffusion(schedule=[0.1, 0.2])
    d = GaussianDiffusion(Schedule.linear(T=10))
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="0..10"):
        d.q_sample(x, torch.tensor([1, 11]))
    with pytest.raises(ValueError, match="1..10"):
        d.q_posterior(x, x, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="0..10"):
        d.q_sample(x, torch.tensor([-1, 2]))
    with pytest.raises(ValueError, match="shape"):
        d.q_sample(x, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="same shape"):
        d.q_sample(x, torch.tensor([1, 2]), noise=torch.zeros(2, 4))
    with pytest.raises(ValueError, match="NaN"):
        d.q_sample(torch.tensor([[float("nan")]]), torch.tensor([1]))
    with pytest.raises(TypeError, match="integer dtype"):
        d.q_sample(x, torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="floating-point"):
        d.q_sample(torch.zeros(2, 3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="model output"):
        d.p_mean_variance(lambda x, t: torch.zeros(5), x, 3)
    with pytest.raises(ValueError, match="t_start"):
        sample(lambda x, t: x, d, (2, 3), t_start=11, progress=False)
    with pytest.raises(ValueError, match="record"):
        sample(lambda x, t: x, d, (2, 3), record=[0], progress=False)
