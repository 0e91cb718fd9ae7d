"""ddpm_core.loss: L_simple, the bound L_vlb and their hybrid as one family; the trainer uses it; bits_per_dim
reports the bound that "vlb" trains (unclipped) unless the caller asks for the clipped one."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule, bits_per_dim, loss
from ddpm_core.likelihood import prior_bpd, vb_term_bpd
from ddpm_core.objectives import OBJECTIVES
from ddpm_core.oracles import gaussian_eps_oracle


def _grid_data(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, d), generator=g).float() / 127.5 - 1


def test_vlb_is_an_unbiased_estimate_of_the_bound():
    d = GaussianDiffusion(Schedule.linear(T=20, beta_1=1e-3, beta_T=0.4), clip_denoised=False)
    model = gaussian_eps_oracle(d.schedule, 0.0, 0.5)
    x0 = _grid_data(1, 6, seed=3).expand(4000, 6).contiguous()
    g = torch.Generator().manual_seed(4)
    est = loss(d, model, x0, objective="vlb", generator=g, reduction="none")
    full = bits_per_dim(d, model, x0[:400], generator=g).total
    assert abs(est.mean().item() - full.mean().item()) < 5 * (est.std().item() / math.sqrt(4000)
                                                              + full.std().item() / math.sqrt(400))


def test_vlb_per_example_is_prior_plus_T_times_the_term_at_t():
    """Written out from Eq. (5): L_T + T * L_{t-1}(x_0, x_t) (L_0 at t = 1), one t per example."""
    d = GaussianDiffusion(Schedule.linear(T=10, beta_1=1e-3, beta_T=0.5))
    model = gaussian_eps_oracle(d.schedule, 0.1, 0.7)
    x0, t = _grid_data(4, 5), torch.tensor([1, 2, 7, 10])
    noise = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    xt = d.q_sample(x0, t, noise)
    term = vb_term_bpd(d, model, x0, xt, t, clip_denoised=False)["term"]
    expected = prior_bpd(d, x0) + 10 * term
    ours = loss(d, model, x0, objective="vlb", t=t, noise=noise, reduction="none")
    torch.testing.assert_close(ours, expected)


def test_hybrid_is_simple_plus_lambda_vlb_on_the_same_draw():
    d = GaussianDiffusion(Schedule.linear(T=10, beta_1=1e-3, beta_T=0.5))
    model = gaussian_eps_oracle(d.schedule, 0.0, 0.5)
    x0, t = _grid_data(6, 4), torch.tensor([1, 3, 5, 7, 9, 10])
    noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    parts = {o: loss(d, model, x0, objective=o, t=t, noise=noise, reduction="none") for o in OBJECTIVES}
    # L_simple written out (Eq. 14): mean over dimensions of (eps - eps_theta(x_t, t))^2
    xt = d.schedule.alpha_bars[t].sqrt()[:, None] * x0 + (1 - d.schedule.alpha_bars[t]).sqrt()[:, None] * noise
    by_hand = ((noise - model(xt.float(), t)) ** 2).mean(1)
    torch.testing.assert_close(parts["simple"], by_hand, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(parts["hybrid"], parts["simple"] + 1e-3 * parts["vlb"])
    w = loss(d, model, x0, objective="hybrid", t=t, noise=noise, reduction="none", vlb_weight=0.5)
    torch.testing.assert_close(w, parts["simple"] + 0.5 * parts["vlb"])


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_every_objective_is_differentiable(objective):
    d = GaussianDiffusion(Schedule.linear(T=10, beta_1=1e-3, beta_T=0.5))
    w = torch.nn.Parameter(torch.tensor(0.3))
    value = loss(d, lambda x, t: w * x, _grid_data(4, 5), objective=objective,
                 generator=torch.Generator().manual_seed(0))
    value.backward()
    assert value.ndim == 0 and w.grad is not None and torch.isfinite(w.grad) and w.grad != 0


def test_bits_per_dim_reports_the_trained_bound_unless_asked_for_the_clipped_one():
    """A model whose x_0 prediction overshoots [-1, 1]: the unclipped bound (what "vlb" optimises) and the bound of
    the clipped reverse process differ by far more than the Monte Carlo error; the default is the trained one."""
    d = GaussianDiffusion(Schedule.linear(T=20, beta_1=1e-3, beta_T=0.4), clip_denoised=True)   # images: clip
    oracle = gaussian_eps_oracle(d.schedule, 0.0, 0.5)
    model = lambda x, t: 0.3 * oracle(x, t)                   # too little noise predicted: x0_hat overshoots
    x0 = _grid_data(1, 6, seed=3).expand(40_000, 6).contiguous()
    trained = loss(d, model, x0, objective="vlb", generator=torch.Generator().manual_seed(4), reduction="none")
    default = bits_per_dim(d, model, x0[:2000], generator=torch.Generator().manual_seed(5)).total
    clipped = bits_per_dim(d, model, x0[:2000], generator=torch.Generator().manual_seed(5), clip_denoised=True).total
    err = trained.std().item() / math.sqrt(40_000) + default.std().item() / math.sqrt(2000)
    gap = clipped.mean().item() - default.mean().item()
    assert abs(trained.mean().item() - default.mean().item()) < 4 * err < abs(gap)
    paired = (clipped - default).std().item() / math.sqrt(2000)      # same x_t draws in both evaluations
    assert abs(gap) > 20 * paired


def test_bad_arguments():
    d = GaussianDiffusion(Schedule.linear(T=5))
    x0, model = torch.zeros(2, 3), lambda x, t: x
    with pytest.raises(ValueError, match="allowed"):
        loss(d, model, x0, objective="l1")
    with pytest.raises(ValueError, match="reduction"):
        loss(d, model, x0, reduction="sum")
    with pytest.raises(ValueError, match="decoder"):
        loss(d, model, x0, objective="vlb", decoder="laplace")
    with pytest.raises(ValueError, match="vlb_weight"):
        loss(d, model, x0, objective="hybrid", vlb_weight=-1.0)
    with pytest.raises(TypeError, match="GaussianDiffusion"):
        loss(model, d, x0)
    with pytest.raises(ValueError, match="same shape"):
        loss(d, model, x0, noise=torch.zeros(2, 4))
    with pytest.raises(TypeError):
        loss(d, model, x0, "vlb")                                # the choice is keyword-only
