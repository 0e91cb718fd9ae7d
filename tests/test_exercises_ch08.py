"""Chapter 8 checkers: the reference solutions pass; plausible wrong answers fail with the hint aimed at them."""
import pytest
import torch

import ddpm_core
from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.exercises import ExerciseFailed, check_ancestral_step, check_final_variance


def ancestral_step(x_t, t, eps, z, schedule, variance):
    b, a, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
    sigma2 = b if variance == "beta" else schedule.beta_tildes[t]
    mean = (x_t - b / (1 - ab).sqrt() * eps) / a.sqrt()
    return mean + sigma2.sqrt() * z if t > 1 else mean


def final_variance(alphas, sigma2):
    u = torch.tensor(1.0, dtype=torch.float64)
    for t in range(len(alphas) - 1, 0, -1):
        u = alphas[t] * u + (sigma2[t] if t > 1 else 0.0)
    return u


def test_solutions_pass(capsys):
    assert check_ancestral_step(ancestral_step)
    assert check_final_variance(final_variance)
    assert capsys.readouterr().out.count("correct on all") == 2


def test_the_package_step_passes():
    def package_step(x_t, t, eps, z, schedule, variance):
        d = GaussianDiffusion(schedule, variance=variance, clip_denoised=False)
        return d.p_sample(lambda x, tt: eps, x_t, torch.full((x_t.shape[0],), t), noise=z)["sample"]

    assert check_ancestral_step(package_step)


def test_final_variance_matches_sampling():
    sched = Schedule.linear(T=50, beta_1=2e-3, beta_T=0.4)
    d = GaussianDiffusion(sched, variance="beta_tilde", clip_denoised=False)
    model = lambda x, t: (1 - sched.alpha_bars[t]).sqrt()[:, None] * x  # noqa: E731 - eps* for N(0, I) data
    x = ddpm_core.sample(model, d, (200_000, 1), generator=torch.Generator().manual_seed(0), progress=False)
    exact = final_variance(sched.alphas, sched.beta_tildes).item()
    assert abs(x.double().var().item() - exact) < 0.01


@pytest.mark.parametrize("wrong, hint", [
    (lambda x_t, t, eps, z, schedule, variance: ancestral_step(x_t, t, eps, z, schedule, variance)
     + (((schedule.betas[t] if variance == "beta" else schedule.beta_tildes[t]).sqrt() * z) if t == 1 else 0.0),
     "z = 0 at t = 1"),
    (lambda x_t, t, eps, z, schedule, variance: ancestral_step(
        x_t, t, eps, z, schedule, "beta_tilde" if variance == "beta" else "beta"), "other variance"),
    (lambda x_t, t, eps, z, schedule, variance: (x_t - schedule.betas[t] / (1 - schedule.alpha_bars[t]) * eps)
     / schedule.alphas[t].sqrt() + (schedule.betas[t] if variance == "beta" else schedule.beta_tildes[t]).sqrt()
     * z * (t > 1), "keep the square root"),
    (lambda x_t, t, eps, z, schedule, variance: (x_t - schedule.betas[t] / (1 - schedule.alpha_bars[t]).sqrt() * eps)
     / schedule.alphas[t].sqrt() + (schedule.betas[t] if variance == "beta" else schedule.beta_tildes[t])
     * z * (t > 1), "standard deviation"),
])
def test_step_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_ancestral_step(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda alphas, sigma2: final_variance(alphas, sigma2) + sigma2[1], "z = 0 at t = 1"),
    (lambda alphas, sigma2: final_variance(alphas.sqrt(), sigma2), "not sqrt(alpha_t)"),
    (lambda alphas, sigma2: final_variance(alphas, sigma2.sqrt()), "not sigma_t"),
    (lambda alphas, sigma2: 0.5 * alphas[1], "Var x_{t-1}"),
])
def test_final_variance_wrong_answers_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_final_variance(wrong)
    assert hint in err.value.hint
