"""Chapter 11 checkers: the reference solutions pass, agree with the package's samplers, and plausible wrong answers
fail with the hint aimed at them."""
import pytest
import torch

import ddpm_core
from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.exercises import ExerciseFailed, check_ddim_step, check_respaced_betas
from ddpm_core.samplers import respaced_betas, strided_timesteps


def respaced_solution(alpha_bars, timesteps):
    ab = alpha_bars[list(timesteps)]
    ab_prev = torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    return 1 - ab / ab_prev


def ddim_solution(x_t, eps_hat, ab_t, ab_s, eta, noise):
    x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps_hat) / ab_t**0.5
    sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    return ab_s**0.5 * x0_hat + (1 - ab_s - sigma2) ** 0.5 * eps_hat + sigma2**0.5 * noise


def test_solutions_pass(capsys):
    assert check_respaced_betas(respaced_solution)
    assert check_ddim_step(ddim_solution)
    out = capsys.readouterr().out
    assert "check_respaced_betas: correct on all 4 cases." in out and "check_ddim_step: correct on all 5 cases." in out


def test_respaced_reference_is_the_package():
    for sched in (Schedule.linear(), Schedule.cosine()):
        for ts in (strided_timesteps(1000, 10), strided_timesteps(1000, 37, "quadratic"), [1000]):
            torch.testing.assert_close(respaced_solution(sched.alpha_bars, ts), respaced_betas(sched, ts),
                                       rtol=1e-12, atol=0)


def test_ddim_step_reference_is_the_package():
    """Two steps tau = (s, t) of ddim_sample, replayed with the same noise through the reference step."""
    sched = Schedule.linear()
    diffusion = GaussianDiffusion(sched, clip_denoised=False)

    def model(x, t):
        return 0.4 * x + 1e-3 * t.to(x.dtype)[:, None]

    s, t, eta = 300, 700, 0.7
    x_T = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = ddpm_core.sample(model, diffusion, x_T.shape, sampler="ddim", timesteps=[s, t], eta=eta, x_start=x_T,
                      generator=torch.Generator().manual_seed(1), progress=False)
    gen = torch.Generator().manual_seed(1)
    ab = sched.alpha_bars
    x = x_T
    for t_val, s_val in ((t, s), (s, 0)):
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        eps = model(x, torch.full((5,), t_val))
        x = ddim_solution(x, eps, float(ab[t_val]), float(ab[s_val]), eta, noise)
    torch.testing.assert_close(got, x, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("wrong, hint", [
    (lambda alpha_bars, timesteps: 1 - alpha_bars[list(timesteps)] / alpha_bars[[t - 1 for t in timesteps]],
     "original beta_{tau_i}"),
    (lambda alpha_bars, timesteps: respaced_solution(alpha_bars, [t - 1 for t in timesteps]), "alpha_bar_{tau_i - 1}"),
    (lambda alpha_bars, timesteps: 1 - 1 / (1 - respaced_solution(alpha_bars, timesteps)), "upside down"),
    (lambda alpha_bars, timesteps: torch.zeros(len(timesteps), dtype=torch.float64), "alpha_bar_{tau_0} = 1"),
])
def test_wrong_respaced_betas_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_respaced_betas(wrong)
    assert hint in err.value.hint


def _wrong_step(x_t, eps_hat, ab_t, ab_s, eta, noise, kind):
    x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps_hat) / ab_t**0.5
    sigma2 = eta**2 * (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    if kind == "eta twice":
        sigma = eta * sigma2**0.5
        return ab_s**0.5 * x0_hat + (1 - ab_s - sigma**2) ** 0.5 * eps_hat + sigma * noise
    if kind == "no sqrt":
        return ab_s**0.5 * x0_hat + (1 - ab_s - sigma2) * eps_hat + sigma2**0.5 * noise
    return ab_s**0.5 * x0_hat + (1 - ab_s) ** 0.5 * eps_hat + sigma2**0.5 * noise


@pytest.mark.parametrize("kind, hint", [("eta twice", "eta is applied twice"), ("no sqrt", "square root"),
                                        ("no sigma", "total stays 1 - ab_s")])
def test_wrong_ddim_steps_get_their_hint(kind, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_ddim_step(lambda **kw: _wrong_step(**kw, kind=kind))
    assert hint in err.value.hint
