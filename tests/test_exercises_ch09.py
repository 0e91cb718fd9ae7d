"""Chapter 9 checkers: the reference solutions pass, agree with the package, and plausible wrong answers fail with
the hint aimed at them."""
import pytest
import torch

import ddpm_core
from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.exercises import ExerciseFailed, check_algorithm1_loss, check_ema_update
from ddpm_core.exercises.ch09 import _FixedNet, _loss_cases
from ddpm_core.train import EMA


def loss_solution(model, x0, t, noise, alpha_bars):
    ab = alpha_bars[t].to(x0.dtype)[:, None]
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return ((noise - model(x_t, t)) ** 2).mean()


def ema_solution(shadow, params, decay):
    return decay * shadow + (1 - decay) * params


def test_solutions_pass(capsys):
    assert check_algorithm1_loss(loss_solution)
    assert check_ema_update(ema_solution)
    out = capsys.readouterr().out
    assert "check_algorithm1_loss: correct on all 3 cases." in out and "check_ema_update: correct on all 4 cases." in out


def test_loss_reference_is_the_package_loss_simple():
    for case in _loss_cases():
        kw = case.kwargs
        T = len(kw["alpha_bars"]) - 1
        sched = Schedule.linear() if T == 1000 else Schedule.linear(100, 1e-3, 0.2)
        diffusion = GaussianDiffusion(sched)
        expected = ddpm_core.loss(diffusion, kw["model"], kw["x0"], t=kw["t"], noise=kw["noise"])
        torch.testing.assert_close(loss_solution(**kw), expected, rtol=1e-6, atol=0)


def test_ema_reference_is_the_package_ema():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.9)
    before = [p.detach().clone() for p in ema.shadow.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    ema.update(net)
    for b, p, new in zip(before, net.parameters(), ema.shadow.parameters()):
        torch.testing.assert_close(new, ema_solution(b, p.detach(), 0.9))


@pytest.mark.parametrize("wrong, hint", [
    (lambda model, x0, t, noise, alpha_bars: ((x0 - model(alpha_bars[t][:, None].float().sqrt() * x0
                                                          + (1 - alpha_bars[t][:, None].float()).sqrt() * noise, t))
                                              ** 2).mean(), "target is the noise"),
    (lambda model, x0, t, noise, alpha_bars: ((noise - model(alpha_bars[t - 1][:, None].float().sqrt() * x0
                                   + (1 - alpha_bars[t - 1][:, None].float()).sqrt() * noise, t)) ** 2).mean(),
     "alpha_bar_{t-1}"),
    (lambda model, x0, t, noise, alpha_bars: ((noise - model(alpha_bars[t][:, None].float() * x0
                                                             + (1 - alpha_bars[t][:, None].float()) * noise, t))
                                              ** 2).mean(), "square roots"),
    (lambda model, x0, t, noise, alpha_bars: ((noise - model(alpha_bars[t][:, None].float().sqrt() * x0
                                                             + (1 - alpha_bars[t][:, None].float()).sqrt() * noise, t))
                                              ** 2).sum(1).mean(), "averages over the coordinates"),
    (lambda model, x0, t, noise, alpha_bars: torch.tensor(1.0), "Algorithm 1, line 5"),
])
def test_wrong_losses_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_algorithm1_loss(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda shadow, params, decay: (1 - decay) * shadow + decay * params, "wrong way round"),
    (lambda shadow, params, decay: decay * shadow + params, "sum to one"),
    (lambda shadow, params, decay: params, "current weights"),
    (lambda shadow, params, decay: shadow.mul_(decay).add_((1 - decay) * params), "in place"),
])
def test_wrong_ema_updates_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed) as err:
        check_ema_update(wrong)
    assert hint in err.value.hint


def test_fixed_net_depends_on_t():
    net, x = _FixedNet(), torch.zeros(2, 2)
    assert not torch.equal(net(x, torch.tensor([1, 1])), net(x, torch.tensor([2, 2])))
