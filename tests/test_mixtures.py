"""GaussianMixture's closed forms against independent computations: autograd, quadrature, Monte Carlo."""
import math

import pytest
import torch

from ddpm_core.mixtures import GaussianMixture
from ddpm_core.oracles import gaussian_eps_oracle
from ddpm_core.schedules import Schedule


@pytest.fixture
def gm():
    return GaussianMixture([0.3, 0.7], [[-1.0, 0.5], [1.5, -0.2]], [[0.3, 0.2], [0.5, 0.4]])


def test_density_integrates_to_one_and_matches_torch_distributions():
    gm1 = GaussianMixture([0.2, 0.5, 0.3], [-2.0, 0.0, 1.5], [0.3, 0.5, 0.2])
    x = torch.linspace(-12, 12, 200_001, dtype=torch.float64)[:, None]
    for ab in (1.0, 0.6, 0.01):
        p = gm1.log_prob(x, ab).exp()
        assert abs(torch.trapezoid(p, x[:, 0]).item() - 1) < 1e-8
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)),
        torch.distributions.Normal(torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64) * math.sqrt(0.6),
                                   (0.6 * torch.tensor([0.3, 0.5, 0.2], dtype=torch.float64) ** 2 + 0.4).sqrt()))
    xs = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(gm1.log_prob(xs[:, None], 0.6), mix.log_prob(xs))


def test_score_is_the_gradient_of_the_log_density(gm):
    x = torch.randn(7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    ab = torch.tensor([1.0, 0.9, 0.5, 0.2, 0.05, 0.3, 0.99], dtype=torch.float64)
    (grad,) = torch.autograd.grad(gm.log_prob(x, ab).sum(), x)
    torch.testing.assert_close(gm.score(x.detach(), ab), grad)


def test_marginal_by_monte_carlo(gm):
    g = torch.Generator().manual_seed(0)
    ab = 0.4
    x0 = gm.sample(400_000, g)
    xt = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    # mean and covariance of q(x_t) in closed form: sqrt(ab) E[x0], ab Cov[x0] + (1 - ab) I
    torch.testing.assert_close(xt.mean(0), math.sqrt(ab) * gm.mean(), atol=6e-3, rtol=0)
    torch.testing.assert_close(torch.cov(xt.T), ab * gm.covariance() + (1 - ab) * torch.eye(2), atol=1e-2, rtol=0)
    # the probability of a box by the density (grid sum) and by the samples
    grid = torch.stack(torch.meshgrid(torch.linspace(0, 1, 201, dtype=torch.float64),
                                      torch.linspace(-1, 0, 201, dtype=torch.float64), indexing="ij"), -1)
    p_box = gm.log_prob(grid.reshape(-1, 2), ab).exp().reshape(201, 201)
    p_box = torch.trapezoid(torch.trapezoid(p_box, dx=0.005), dx=0.005).item()
    frac = ((xt[:, 0] >= 0) & (xt[:, 0] <= 1) & (xt[:, 1] >= -1) & (xt[:, 1] <= 0)).double().mean().item()
    assert abs(frac - p_box) < 4 * math.sqrt(p_box * (1 - p_box) / xt.shape[0])


def test_eps_oracle_reduces_to_the_gaussian_oracle_and_posterior_sums_to_one(gm):
    sched = Schedule.linear()
    one = GaussianMixture([1.0], [[0.3, 0.3]], 0.5)
    x = torch.randn(4, 2, dtype=torch.float64)
    t = torch.tensor([1, 10, 500, 1000])
    torch.testing.assert_close(one.eps_oracle(sched)(x, t), gaussian_eps_oracle(sched, 0.3, 0.5)(x, t))
    post = gm.posterior(x, 0.5)
    torch.testing.assert_close(post.sum(1), torch.ones(4, dtype=torch.float64))
    assert gm.eps_oracle(sched)(x.float(), t).dtype == torch.float32


def test_bad_input():
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([0.0, 1.0], [0.0, 1.0], 1.0)
    with pytest.raises(ValueError, match="stds"):
        GaussianMixture([1.0, 1.0], [0.0, 1.0], [1.0, 2.0, 3.0])
    gm1 = GaussianMixture([1.0, 1.0], [0.0, 1.0], 0.5)
    with pytest.raises(ValueError, match="shape"):
        gm1.log_prob(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gm1.log_prob(torch.zeros(3, 1), 1.5)
    with pytest.raises(ValueError, match="point-mass"):
        GaussianMixture([1.0], [0.0], 0.0).log_prob(torch.zeros(2, 1), 1.0)


# ---- the book's named mixtures as data sets ------------------------------------------------------------------
def test_named_mixtures_and_their_toy_data_sets():
    from ddpm_core.data import make_dataset, sample_toy
    from ddpm_core.mixtures import MIXTURE_NAMES, named_mixture

    with pytest.raises(ValueError, match="unknown mixture"):
        named_mixture("swiss_roll")
    for name, dim in (("gaussian_mixture", 2), ("gaussian_mixture_1d", 1)):
        assert name in MIXTURE_NAMES
        mix = named_mixture(name)
        x = sample_toy(name, 20000, generator=torch.Generator().manual_seed(1))
        assert x.shape == (20000, dim) and x.dtype == torch.float32
        # the toy's sample moments are the mixture's closed-form moments (within 5 standard errors)
        mean, cov = mix.mean(), mix.covariance()
        se = (torch.diagonal(cov) / x.shape[0]).sqrt()
        assert ((x.double().mean(0) - mean).abs() < 5 * se).all()
        assert torch.equal(x, sample_toy(name, 20000, generator=torch.Generator().manual_seed(1)))
        ds = make_dataset(name, toy_size=4000, seed=3)
        xs, ks = ds.tensors
        assert xs.shape == (4000, dim) and set(ks.unique().tolist()) == set(range(mix.K))
        # each point's label is its component: the exact posterior of the true label beats chance by far
        post = mix.posterior(xs.double())
        assert post[torch.arange(4000), ks].mean() > 0.8
        # label frequencies match the weights within 5 standard errors
        freq = torch.bincount(ks, minlength=mix.K).double() / 4000
        assert ((freq - mix.weights).abs() < 5 * (mix.weights * (1 - mix.weights) / 4000).sqrt()).all()


def test_mixture_presets_train_on_the_mixture_data():
    from ddpm_core.train import get_preset

    assert get_preset("mixture2d").data == "gaussian_mixture"
    cfg = get_preset("mixture1d")
    assert cfg.data == "gaussian_mixture_1d" and cfg.model_overrides["dim"] == 1 and cfg.is_toy
