"""ddpm_core.sample: Algorithm 2, strided and DDIM through one entry. DDIM with every step and eta = 1 is Algorithm 2
with beta~; respacing keeps alpha-bar; the loop equals the paper's step-by-step algorithm; shared noise."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule, sample
from ddpm_core.oracles import gaussian_eps_oracle
from ddpm_core.samplers import SampleResult, respace, respaced_betas, strided_timesteps


def _tiny_net(T: int, dim: int = 3):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(dim + 1, 32), torch.nn.Tanh(), torch.nn.Linear(32, dim))
    return lambda x, t: net(torch.cat([x, t.float().unsqueeze(1) / T], 1))


def test_strided_timesteps():
    assert strided_timesteps(1000, 1000) == list(range(1, 1001))
    ts = strided_timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 1 and ts[-1] == 1000 and ts == sorted(set(ts))
    q = strided_timesteps(1000, 20, "quadratic")
    assert len(q) == 20 and q[1] - q[0] < q[-1] - q[-2]
    assert len(strided_timesteps(10, 9)) == 9
    with pytest.raises(ValueError, match="num_steps"):
        strided_timesteps(100, 0)
    with pytest.raises(ValueError, match="spacing"):
        strided_timesteps(100, 5, "log")


def test_sample_is_the_step_by_step_algorithm2():
    """The loop of the paper's Algorithm 2 written out with p_sample (x_T first, then one z per step)."""
    d = GaussianDiffusion(Schedule.linear(T=20, beta_1=1e-3, beta_T=0.2), clip_denoised=False)
    model = _tiny_net(20)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(4, 3, generator=g)
    with torch.no_grad():
        for t in range(20, 0, -1):
            z = torch.randn(4, 3, generator=g)
            mean = d.p_mean_variance(model, x, t)["mean"]
            sigma = d.model_variances[t].sqrt().float() if t > 1 else 0.0
            x = mean + sigma * z
    ours = sample(model, d, (4, 3), generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(ours, x, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_eta1_all_steps_is_algorithm2_with_beta_tilde(clip):
    d = GaussianDiffusion(Schedule.linear(T=50, beta_1=1e-3, beta_T=0.2), variance="beta_tilde", clip_denoised=clip)
    model = _tiny_net(50)
    with torch.no_grad():
        a = sample(model, d, (6, 3), generator=torch.Generator().manual_seed(1))
        b = sample(model, d, (6, 3), sampler="ddim", steps=50, eta=1.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ddim_is_deterministic_with_eta0_and_converges_with_more_steps():
    m, s = 0.3, 0.2
    d = GaussianDiffusion(Schedule.linear(), clip_denoised=False)
    model = gaussian_eps_oracle(d.schedule, m, s)
    xT = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0))
    x1 = sample(model, d, xT.shape, sampler="ddim", steps=50, x_start=xT)
    x2 = sample(model, d, xT.shape, sampler="ddim", steps=50, x_start=xT, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(x1, x2)  # no noise is used when eta = 0
    # for Gaussian data the eta = 0 map is affine in x_T and monotone
    order = torch.argsort(xT[:, 0])
    assert torch.all(x1[order, 0][1:] >= x1[order, 0][:-1] - 1e-6)
    # the deterministic map shrinks the spread when steps are few; the error falls as steps grow
    errs = {}
    for n in [10, 50, 250]:
        x = sample(model, d, xT.shape, sampler="ddim", steps=n, x_start=xT)
        assert abs(x.mean().item() - m) < 0.01
        errs[n] = abs(x.std().item() - s)
    assert errs[10] > errs[50] > errs[250] and errs[250] < 0.03 * s
    # quadratic spacing (steps packed near t = 1) is better at the same budget
    xq = sample(model, d, xT.shape, sampler="ddim", timesteps=strided_timesteps(1000, 50, "quadratic"), x_start=xT)
    assert abs(xq.std().item() - s) < errs[50]


def test_respaced_process_keeps_alpha_bar_and_strided_sampling_matches_ddim_eta1():
    d = GaussianDiffusion(Schedule.linear(), variance="beta_tilde", clip_denoised=False)
    ts = strided_timesteps(1000, 25)
    b = respaced_betas(d.schedule, ts)
    sched = Schedule(b)
    torch.testing.assert_close(sched.alpha_bars[1:], d.schedule.alpha_bars[ts])
    # all steps: respacing is the identity
    torch.testing.assert_close(respaced_betas(d.schedule, range(1, 1001)), d.schedule.betas[1:])
    model = gaussian_eps_oracle(d.schedule, 0.1, 0.5)
    a = sample(model, d, (5, 2), timesteps=ts, generator=torch.Generator().manual_seed(3))
    c = sample(model, d, (5, 2), sampler="ddim", timesteps=ts, eta=1.0, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)
    # and it is Algorithm 2 on the respaced process
    rd, rm = respace(d, model, ts)
    r = sample(rm, rd, (5, 2), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, r)


def test_strided_ancestral_sampling_with_few_steps_reproduces_gaussian_data():
    m, s = -0.2, 0.4
    d = GaussianDiffusion(Schedule.linear(), variance="beta", clip_denoised=False)
    x = sample(gaussian_eps_oracle(d.schedule, m, s), d, (20_000, 1), steps=100,
               generator=torch.Generator().manual_seed(4))
    assert abs(x.mean().item() - m) < 5 * s / math.sqrt(20_000) + 0.01
    assert abs(x.std().item() - s) < 0.05 * s


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_progressive_output_on_a_strided_grid(sampler):
    d = GaussianDiffusion(Schedule.linear(T=100, beta_1=1e-3, beta_T=0.2), clip_denoised=False)
    model = _tiny_net(100)
    ts = strided_timesteps(100, 10)
    eta = 1.0 if sampler == "ddim" else 0.0
    plain = sample(model, d, (3, 3), sampler=sampler, steps=10, eta=eta, generator=torch.Generator().manual_seed(2))
    res = sample(model, d, (3, 3), sampler=sampler, steps=10, eta=eta, record=[ts[-1], ts[3], 1],
                 generator=torch.Generator().manual_seed(2))
    assert isinstance(res, SampleResult) and res.steps == [ts[-1], ts[3], 1]
    torch.testing.assert_close(res.x0, plain)
    assert res.xt.shape == res.pred_x0.shape == (3, 3, 3)
    # at the first recorded step x_t is the start; the last x0 prediction (t = 1) is the clean output's mean
    torch.testing.assert_close(res.xt[0], torch.randn(3, 3, generator=torch.Generator().manual_seed(2)))
    with pytest.raises(ValueError, match="visited"):
        sample(model, d, (3, 3), steps=10, record=[ts[3] + 1])


def test_share_noise_gives_groups_the_same_reverse_noise():
    """Chapter 13's interpolation: one z per group, expanded over the group; x_start differs within a group."""
    d = GaussianDiffusion(Schedule.linear(T=30, beta_1=1e-3, beta_T=0.3), clip_denoised=False)
    model = _tiny_net(30, dim=2)
    P, k = 2, 3
    x_start = torch.randn(P * k, 2, generator=torch.Generator().manual_seed(0))
    ours = sample(model, d, (P * k, 2), x_start=x_start, t_start=20, share_noise=k,
                  generator=torch.Generator().manual_seed(5))
    g, x = torch.Generator().manual_seed(5), x_start.clone()
    with torch.no_grad():
        for s in range(20, 0, -1):
            z = torch.randn(P, 1, 2, generator=g).expand(P, k, 2).reshape(P * k, 2)
            x = d.p_sample(model, x, s, noise=z)["sample"]
    torch.testing.assert_close(ours, x)
    same_start = sample(model, d, (P * k, 2), x_start=x_start[[0, 0, 0, 3, 3, 3]], t_start=20, share_noise=k)
    torch.testing.assert_close(same_start[:3], same_start[:1].expand(3, 2))   # same start + same noise
    assert not torch.allclose(same_start[0], same_start[3])
    with pytest.raises(ValueError, match="multiple of share_noise"):
        sample(model, d, (4, 2), share_noise=3)


def test_bad_arguments():
    d = GaussianDiffusion(Schedule.linear(T=10))
    model = lambda x, t: torch.zeros_like(x)
    with pytest.raises(ValueError, match="eta"):
        sample(model, d, (2, 2), sampler="ddim", eta=-1.0)
    with pytest.raises(ValueError, match="ddim"):
        sample(model, d, (2, 2), eta=0.5)
    with pytest.raises(ValueError, match="increasing"):
        sample(model, d, (2, 2), sampler="ddim", timesteps=[5, 3])
    with pytest.raises(ValueError, match="not both"):
        sample(model, d, (2, 2), steps=3, timesteps=[1, 5])
    with pytest.raises(ValueError, match="allowed"):
        sample(model, d, (2, 2), sampler="euler")
    with pytest.raises(TypeError, match="sample\\(model, diffusion, shape\\)"):
        sample(d, model, (2, 2))
    with pytest.raises(ValueError, match="t_start"):
        sample(model, d, (2, 2), steps=4, t_start=5)
    with pytest.raises(TypeError):
        sample(model, d, (2, 2), "ddim")                      # arguments after shape are keyword-only
    with pytest.raises(ValueError, match="increasing"):
        respaced_betas(d.schedule, [0, 4])
