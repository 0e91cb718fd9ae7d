"""Schedules: golden values of the paper's constants, closed forms, and bad input."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from ddpm_core.schedules import SCHEDULES, Schedule, cosine_betas, gather, linear_betas, quadratic_betas


def test_linear_schedule_golden_values():
    s = Schedule.linear()
    assert s.T == 1000 and s.betas.dtype == torch.float64 and s.betas.shape == (1001,)
    golden = {  # t: (beta_t, alpha_bar_t, beta~_t)
        1: (1e-4, 0.9999, 0.0),
        2: (0.00011991991991991993, 0.9997800920720721, 5.4531876613021935e-05),
        10: (0.0002792792792792793, 0.9981052047858344, 0.00023818202782345305),
        100: (0.002072072072072072, 0.89701814567496, 0.002034596259490786),
        500: (0.01004004004004004, 0.07858724288177824, 0.01003135541461369),
        1000: (0.02, 4.0358297653756754e-05, 0.01999998352656061),
    }
    for t, (b, ab, bt) in golden.items():
        assert s.betas[t].item() == pytest.approx(b, rel=1e-12)
        assert s.alpha_bars[t].item() == pytest.approx(ab, rel=1e-10)
        assert s.beta_tildes[t].item() == pytest.approx(bt, rel=1e-10, abs=1e-15)
    # the official code clips log beta~ at t = 1 to log beta~_2
    assert s.log_beta_tildes_clipped[1].item() == pytest.approx(math.log(5.4531876613021935e-05), rel=1e-12)


def test_padding_entry_and_derived_constants_agree_with_numpy():
    s = Schedule.linear()
    assert s.betas[0] == 0 and s.alpha_bars[0] == 1 and s.beta_tildes[0] == 0
    b = np.linspace(1e-4, 0.02, 1000)
    ab = np.cumprod(1 - b)
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    np.testing.assert_allclose(s.alpha_bars[1:].numpy(), ab, rtol=1e-12)
    np.testing.assert_allclose(s.beta_tildes[1:].numpy(), (1 - ab_prev) / (1 - ab) * b, rtol=1e-10, atol=1e-18)
    np.testing.assert_allclose(s.posterior_coef_x0[1:].numpy(), np.sqrt(ab_prev) * b / (1 - ab), rtol=1e-10)
    np.testing.assert_allclose(s.posterior_coef_xt[1:].numpy(), np.sqrt(1 - b) * (1 - ab_prev) / (1 - ab), rtol=1e-10)
    np.testing.assert_allclose(s.snr[1:].numpy(), ab / (1 - ab), rtol=1e-10)


def test_cosine_schedule_follows_its_closed_form():
    T, s_ = 1000, 0.008
    sch = Schedule.cosine(T, s_)
    f = lambda t: math.cos((t / T + s_) / (1 + s_) * math.pi / 2) ** 2
    for t in [1, 10, 500, 900]:
        assert sch.alpha_bars[t].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    assert sch.betas[1:].max().item() <= 0.999


def test_quadratic_and_from_name():
    q = quadratic_betas(10, 1e-4, 0.02)
    assert torch.allclose(q.sqrt(), torch.linspace(0.01, 0.02**0.5, 10, dtype=torch.float64))
    for name in SCHEDULES:
        assert Schedule.from_name(name, T=50).T == 50
    with pytest.raises(ValueError, match="allowed"):
        Schedule.from_name("sigmoidal", T=10)


@pytest.mark.parametrize("kwargs", [dict(beta_1=0.0), dict(beta_1=-1e-4), dict(beta_T=1.0), dict(beta_T=1.5),
                                    dict(beta_1=0.02, beta_T=1e-4), dict(beta_1=float("nan"))])
def test_bad_bounds_raise(kwargs):
    with pytest.raises(ValueError, match="beta"):
        linear_betas(T=10, **kwargs)


@pytest.mark.parametrize("T", [0, -5])
def test_bad_T_raises(T):
    with pytest.raises(ValueError, match="T must be >= 1"):
        linear_betas(T)
    with pytest.raises(ValueError, match="T must be >= 1"):
        cosine_betas(T)


def test_T_type_and_betas_values_checked():
    with pytest.raises(TypeError, match="T must be an int"):
        linear_betas(10.0)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        Schedule(torch.tensor([0.1, 1.2]))
    with pytest.raises(ValueError, match="finite"):
        Schedule(torch.tensor([0.1, float("inf")]))
    with pytest.raises(ValueError, match="1-D"):
        Schedule(torch.ones(2, 2) * 0.1)


def test_check_t_and_gather():
    s = Schedule.linear(T=10)
    with pytest.raises(ValueError, match="1..10"):
        s.check_t(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="1..10"):
        s.check_t(torch.tensor([11]))
    with pytest.raises(TypeError, match="integer dtype"):
        s.check_t(torch.tensor([1.0]))
    s.check_t(torch.tensor([0, 10]), allow_zero=True)
    x = torch.zeros(3, 2, 4, 4)
    g = s.gather(s.alpha_bars, torch.tensor([1, 5, 10]), x)
    assert g.shape == (3, 1, 1, 1) and g.dtype == torch.float32
    assert g[1].item() == pytest.approx(float(torch.prod(1 - torch.linspace(1e-4, 0.02, 10, dtype=torch.float64)[:5])),
                                        rel=1e-6)
    assert torch.equal(gather(s.betas, torch.tensor([2, 2, 9]), x).flatten(), s.betas[[2, 2, 9]].float())
    with pytest.raises(ValueError, match="shape"):
        s.gather(s.alpha_bars, torch.tensor([1, 2]), x)
    with pytest.raises(TypeError, match="1-D tensor"):
        gather([0.1, 0.2], torch.tensor([1, 1, 1]), x)


def test_gather_by_name_still_works_during_migration_but_warns():
    s = Schedule.linear(T=10)
    x, t = torch.zeros(3, 2), torch.tensor([1, 5, 10])
    with pytest.warns(DeprecationWarning, match=r"schedule.gather\(schedule.alpha_bars"):
        by_name = s.gather("alpha_bars", t, x)
    assert torch.equal(by_name, s.gather(s.alpha_bars, t, x))
    with pytest.raises(ValueError, match="unknown schedule table"):
        s.gather("T", t, x)


def test_schedule_is_a_frozen_dataclass_of_plain_tensors():
    s = Schedule.linear(T=10)
    s.gather(s.alpha_bars, torch.tensor([1]), torch.zeros(1, 2))
    assert "_device_cache" not in vars(s)                       # no hidden state behind the frozen fields
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.betas = torch.zeros(11)


def test_T_equals_one_is_valid():
    s = Schedule.linear(T=1)
    assert s.T == 1 and torch.isfinite(s.log_beta_tildes_clipped[1])
