"""Fast samplers: DDIM with every step and eta = 1 is Algorithm 2 with beta~; respacing keeps alpha-bar."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.samplers import ddim_sample, respace, respaced_betas, strided_timesteps
from conftest import gaussian_oracle


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


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_eta1_all_steps_is_algorithm2_with_beta_tilde(clip):
    d = GaussianDiffusion(Schedule.linear(T=50, beta_1=1e-3, beta_T=0.2), variance="beta_tilde", clip_denoised=clip)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Tanh(), torch.nn.Linear(32, 3))
    model = lambda x, t: net(torch.cat([x, t.float().unsqueeze(1) / 50], 1))
    with torch.no_grad():
        a = d.sample(model, (6, 3), generator=torch.Generator().manual_seed(1), progress=False)
        b = ddim_sample(d, model, (6, 3), num_steps=50, eta=1.0, generator=torch.Generator().manual_seed(1),
                        progress=False)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_ddim_is_deterministic_with_eta0_and_converges_with_more_steps():
    m, s = 0.3, 0.2
    d = GaussianDiffusion(Schedule.linear(), clip_denoised=False)
    model = gaussian_oracle(d, m, s)
    xT = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(0))
    x1 = ddim_sample(d, model, xT.shape, num_steps=50, eta=0.0, x_start=xT, progress=False)
    x2 = ddim_sample(d, model, xT.shape, num_steps=50, eta=0.0, x_start=xT, progress=False,
                     generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(x1, x2)  # no noise is used when eta = 0
    # for Gaussian data the eta = 0 map is affine in x_T and monotone
    order = torch.argsort(xT[:, 0])
    assert torch.all(x1[order, 0][1:] >= x1[order, 0][:-1] - 1e-6)
    # the deterministic map shrinks the spread when steps are few; the error falls as steps grow
    errs = {}
    for n in [10, 50, 250]:
        x = ddim_sample(d, model, xT.shape, num_steps=n, x_start=xT, progress=False)
        assert abs(x.mean().item() - m) < 0.01
        errs[n] = abs(x.std().item() - s)
    assert errs[10] > errs[50] > errs[250] and errs[250] < 0.03 * s
    # quadratic spacing (steps packed near t = 1) is better at the same budget
    xq = ddim_sample(d, model, xT.shape, timesteps=strided_timesteps(1000, 50, "quadratic"), x_start=xT,
                     progress=False)
    assert abs(xq.std().item() - s) < errs[50]


def test_respaced_process_keeps_alpha_bar_and_matches_ddim_eta1():
    d = GaussianDiffusion(Schedule.linear(), variance="beta_tilde", clip_denoised=False)
    ts = strided_timesteps(1000, 25)
    b = respaced_betas(d.schedule, ts)
    sched = Schedule(b)
    torch.testing.assert_close(sched.alpha_bars[1:], d.schedule.alpha_bars[ts])
    # all steps: respacing is the identity
    torch.testing.assert_close(respaced_betas(d.schedule, range(1, 1001)), d.schedule.betas[1:])
    model = gaussian_oracle(d, 0.1, 0.5)
    rd, rm = respace(d, model, ts)
    a = rd.sample(rm, (5, 2), generator=torch.Generator().manual_seed(3), progress=False)
    c = ddim_sample(d, model, (5, 2), timesteps=ts, eta=1.0, generator=torch.Generator().manual_seed(3),
                    progress=False)
    torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


def test_strided_ancestral_sampling_with_few_steps_reproduces_gaussian_data():
    m, s = -0.2, 0.4
    d = GaussianDiffusion(Schedule.linear(), variance="beta", clip_denoised=False)
    rd, rm = respace(d, gaussian_oracle(d, m, s), strided_timesteps(1000, 100))
    x = rd.sample(rm, (20_000, 1), generator=torch.Generator().manual_seed(4), progress=False)
    assert abs(x.mean().item() - m) < 5 * s / math.sqrt(20_000) + 0.01
    assert abs(x.std().item() - s) < 0.05 * s


def test_bad_arguments():
    d = GaussianDiffusion(Schedule.linear(T=10))
    model = lambda x, t: torch.zeros_like(x)
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(d, model, (2, 2), eta=-1.0, progress=False)
    with pytest.raises(ValueError, match="increasing"):
        ddim_sample(d, model, (2, 2), timesteps=[5, 3], progress=False)
    with pytest.raises(ValueError, match="increasing"):
        respaced_betas(d.schedule, [0, 4])
