"""ddpm_core.diagnose: the Gaussian baseline against Monte Carlo, each planted mistake reported, no false alarm."""
import pytest
import torch
from torch import nn

import ddpm_core
from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.diagnose import diagnose, gaussian_baseline_loss, gaussian_full_eps_oracle, data_mean_cov
from ddpm_core.oracles import gaussian_eps_oracle

SCHED = Schedule.linear(T=100, beta_1=1e-4, beta_T=0.2)


def gaussian_data(n=2000, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.tensor([[1.0, 0.0], [0.8, 0.4]])
    return scale * (torch.randn(n, 2, generator=g) @ a.T) + torch.tensor([0.3, -0.2])


class Wrap(nn.Module):
    """An nn.Module around the exact Gaussian eps-predictor, with optional dropout (a healthy model by construction)."""

    def __init__(self, oracle, dropout=0.0):
        super().__init__()
        self.oracle, self.scale, self.drop = oracle, nn.Parameter(torch.ones(())), nn.Dropout(dropout)

    def forward(self, x, t):
        return self.drop(self.scale * self.oracle(x, t))


def healthy(data, dropout=0.0):
    mean, cov = data_mean_cov(data)
    return Wrap(gaussian_full_eps_oracle(SCHED, mean, cov), dropout).eval()


def test_baseline_matches_monte_carlo_of_the_full_oracle():
    data = gaussian_data(200_000)
    mean, cov = data_mean_cov(data)
    oracle = gaussian_full_eps_oracle(SCHED, mean, cov)
    base = gaussian_baseline_loss(SCHED, cov)
    g = torch.Generator().manual_seed(1)
    for t in (1, 10, 40, 100):
        x0 = data[:100_000].double()
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        ab = SCHED.alpha_bars[t]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        mse = float(((oracle(xt, torch.full((len(xt),), t)) - eps) ** 2).mean())
        assert mse == pytest.approx(float(base[t]), rel=0.02, abs=2e-4)


def test_full_oracle_reduces_to_the_isotropic_oracle():
    iso = gaussian_eps_oracle(SCHED, mean=0.5, std=0.7)
    full = gaussian_full_eps_oracle(SCHED, torch.full((3,), 0.5), 0.49 * torch.eye(3, dtype=torch.float64))
    x, t = torch.randn(5, 3, dtype=torch.float64), torch.tensor([1, 2, 50, 99, 100])
    torch.testing.assert_close(full(x, t), iso(x, t), rtol=1e-10, atol=1e-12)
    # and the baseline of N(m, s^2 I) is ab s^2 / (ab s^2 + 1 - ab)
    ab = SCHED.alpha_bars
    torch.testing.assert_close(gaussian_baseline_loss(SCHED, 0.49 * torch.eye(3, dtype=torch.float64))[1:], (ab * 0.49 / (ab * 0.49 + 1 - ab))[1:])


def test_healthy_setup_has_no_finding():
    data = gaussian_data()
    model = healthy(data)
    diff = GaussianDiffusion(SCHED, clip_denoised=False)
    samples = ddpm_core.sample(model, diff, (1000, 2), generator=torch.Generator().manual_seed(2), progress=False)
    r = diagnose(model, diff, data, samples=samples, verbose=False)
    assert r.findings == [], [str(f) for f in r.findings]
    assert r.ok and (r.loss <= r.baseline + 0.05).all()


def test_printed_report(capsys):
    data = gaussian_data()
    diagnose(healthy(data), GaussianDiffusion(SCHED, clip_denoised=False), data)
    out = capsys.readouterr().out
    assert "no problem found" in out and "Gaussian" in out


def images(levels):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (300, 1, 4, 4), generator=g).float() * levels


@pytest.mark.parametrize("data, code", [
    (images(1.0), "data_range_255"),
    (images(1 / 255), "data_range_01"),
    (gaussian_data(scale=20.0), "data_scale"),
    (0.01 * gaussian_data(), "data_scale"),
])
def test_data_range_and_scale(data, code):
    diff = GaussianDiffusion(SCHED, clip_denoised=False)
    r = diagnose(lambda x, t: torch.zeros_like(x), diff, data, verbose=False, check_gradients=False)
    assert code in r.codes


def test_large_data_gives_a_large_prior_term():
    r = diagnose(lambda x, t: torch.zeros_like(x), GaussianDiffusion(SCHED), images(1.0), verbose=False)
    assert "prior_mismatch" in r.codes and r.prior_bpd > 0.1


def test_too_few_steps_gives_a_large_prior_term():
    data = gaussian_data()
    short = Schedule.linear(T=10, beta_1=1e-4, beta_T=0.2)
    diff = GaussianDiffusion(short, clip_denoised=False)
    mean, cov = data_mean_cov(data)
    r = diagnose(gaussian_full_eps_oracle(short, mean, cov), diff, data, verbose=False)
    assert r.codes == {"prior_mismatch"}


def test_clipping_unbounded_data_is_reported():
    data = gaussian_data()
    r = diagnose(healthy(data), GaussianDiffusion(SCHED, clip_denoised=True), data, verbose=False)
    assert "clip_cuts_data" in r.codes


def test_untrained_model_is_worse_than_the_gaussian_baseline():
    data = gaussian_data()
    r = diagnose(lambda x, t: torch.zeros_like(x), GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert "worse_than_gaussian" in r.codes


def test_exploded_output_scale():
    data = gaussian_data()
    r = diagnose(lambda x, t: 10 * x, GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert {"output_scale", "worse_than_gaussian"} <= r.codes


def test_dropout_in_training_mode():
    data = gaussian_data()
    model = healthy(data, dropout=0.2).train()
    r = diagnose(model, GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert "train_mode" in r.codes and r.stochastic_forward > 0.1
    assert model.training  # the mode is left as it was
    assert "train_mode" not in diagnose(model.eval(), GaussianDiffusion(SCHED, clip_denoised=False), data,
                                        verbose=False).codes


def test_nonfinite_parameters():
    data = gaussian_data()
    model = healthy(data)
    with torch.no_grad():
        model.scale.fill_(float("nan"))
    r = diagnose(model, GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert {"nonfinite_params", "nonfinite_output"} <= r.codes


class SqrtAtZero(nn.Module):
    """Finite output, infinite gradient: d sqrt(p) / dp at p = 0."""

    def __init__(self, oracle):
        super().__init__()
        self.oracle, self.p = oracle, nn.Parameter(torch.zeros(()))

    def forward(self, x, t):
        return self.oracle(x, t) + self.p.sqrt()


def test_nonfinite_gradients():
    data = gaussian_data()
    mean, cov = data_mean_cov(data)
    model = SqrtAtZero(gaussian_full_eps_oracle(SCHED, mean, cov)).eval()
    r = diagnose(model, GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert r.codes == {"nonfinite_grads"} and r.nonfinite_grads == ["p"]
    assert model.p.grad is None  # .grad untouched


def test_float16_parameters():
    data = gaussian_data()
    lin = nn.Linear(2, 2).half().eval()
    r = diagnose(_Half(lin).eval(),
                 GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert "float16" in r.codes


class _Half(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, x, t):
        return self.lin(x)


@pytest.mark.parametrize("transform, code", [
    (lambda s: torch.where(torch.arange(len(s))[:, None] < 10, torch.full_like(s, float("nan")), s), "nonfinite_samples"),
    (lambda s: 5 * s, "sample_scale"),
    (lambda s: s.round(decimals=0), "sample_spread"),
])
def test_bad_samples(transform, code):
    data = gaussian_data()
    model = healthy(data)
    diff = GaussianDiffusion(SCHED, clip_denoised=False)
    samples = ddpm_core.sample(model, diff, (1000, 2), generator=torch.Generator().manual_seed(2), progress=False)
    r = diagnose(model, diff, data, samples=transform(samples), verbose=False)
    assert code in r.codes


def test_bad_arguments():
    data = gaussian_data()
    with pytest.raises(TypeError, match="diffusion"):
        diagnose(lambda x, t: x, SCHED, data)
    with pytest.raises(ValueError, match="data"):
        diagnose(lambda x, t: x, GaussianDiffusion(SCHED), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="n_buckets"):
        diagnose(lambda x, t: x, GaussianDiffusion(SCHED), data, n_buckets=0)
    with pytest.raises(ValueError, match="cov"):
        gaussian_baseline_loss(SCHED, torch.ones(3))


def test_blurred_samples_of_clustered_data():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    data = centres[torch.randint(0, 4, (2000,), generator=g)] + 0.05 * torch.randn(2000, 2, generator=g)
    fresh = centres[torch.randint(0, 4, (1000,), generator=g)] + 0.05 * torch.randn(1000, 2, generator=g)
    diff = GaussianDiffusion(SCHED, clip_denoised=False)
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731 - the model is not what is checked here
    good = diagnose(zero, diff, data, samples=fresh, verbose=False)
    assert "sample_spread" not in good.codes and 0.7 < good.samples["nn_ratio"] < 1.4
    blurred = diagnose(zero, diff, data, samples=fresh + 0.2 * torch.randn(1000, 2, generator=g), verbose=False)
    assert "sample_spread" in blurred.codes


def test_a_model_that_cannot_be_called_is_reported():
    from ddpm_core.nn import MLPConfig, MLPDenoiser
    data = gaussian_data()
    model = MLPDenoiser(MLPConfig(dim=2, width=16, depth=1)).half().eval()   # float32 time embedding meets float16
    r = diagnose(model, GaussianDiffusion(SCHED, clip_denoised=False), data, verbose=False)
    assert {"float16", "model_call_failed"} <= r.codes
