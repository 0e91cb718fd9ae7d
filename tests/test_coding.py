"""Algorithms 3 and 4 with minimal random coding (ddpm_core.coding): the receiver rebuilds exactly what the sender
sent, the message costs log2 N bits per step, and with enough candidates the coded chain follows q(x_{1:T} | x_0)."""
import math

import pytest
import torch

from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.likelihood import vb_term_bpd
from ddpm_core.coding import Message, receive, send
from ddpm_core.oracles import gaussian_eps_oracle

MEAN, STD = 0.5, 1.0


@pytest.fixture(scope="module")
def toy():
    """2-D Gaussian data, a short schedule, and the exact eps-predictor for it."""
    schedule = Schedule.linear(20, 0.02, 0.3)
    diffusion = GaussianDiffusion(schedule, variance="beta_tilde", clip_denoised=False)
    model = gaussian_eps_oracle(schedule, MEAN, STD)
    x0 = MEAN + STD * torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return diffusion, model, x0


@pytest.fixture(scope="module")
def coded(toy):
    diffusion, model, x0 = toy
    tr = send(diffusion, model, x0, 256, seed=3, generator=torch.Generator().manual_seed(5))
    return tr, receive(diffusion, model, tr.message, dtype=torch.float64)


def test_receiver_rebuilds_every_step_exactly(toy, coded):
    diffusion, _, x0 = toy
    tr, rc = coded
    assert tr.states.shape == rc.states.shape == (diffusion.T, *x0.shape)
    for k in range(diffusion.T):                      # x_T, ..., x_1: bit for bit
        assert torch.equal(rc.states[k], tr.states[k]), f"step {k} (t = {diffusion.T - k}) differs"
    assert rc.t.tolist() == list(range(diffusion.T, 0, -1))


def test_receiver_rebuilds_float32_batches(toy):
    diffusion, model, x0 = toy
    x32 = x0.float()[:8]
    tr = send(diffusion, model, x32, 16, seed=11, generator=torch.Generator().manual_seed(0))
    rc = receive(diffusion, model, tr.message)        # default dtype float32 = the sender's
    assert rc.states.dtype == torch.float32 and torch.equal(rc.states, tr.states)


def test_message_costs_log2_n_bits_per_step(toy, coded):
    diffusion, _, x0 = toy
    msg = coded[0].message
    assert msg.indices.shape == (diffusion.T, x0.shape[0]) and msg.indices.dtype == torch.long
    assert int(msg.indices.min()) >= 0 and int(msg.indices.max()) < 256
    assert msg.bits_per_step == 8.0 and msg.total_bits == diffusion.T * 8.0
    # the indices are not all the same: the message carries information about x_0
    assert len(set(msg.indices[-1].tolist())) > 10


def test_shared_seed_is_needed(toy, coded):
    diffusion, model, _ = toy
    msg = coded[0].message
    other = Message(msg.indices, msg.num_candidates, msg.seed + 1, msg.shape)
    rc = receive(diffusion, model, other, dtype=torch.float64)
    assert not torch.equal(rc.states[-1], coded[0].states[-1])


def test_estimate_of_x0_improves_as_t_decreases(toy, coded):
    diffusion, _, x0 = toy
    mse = (coded[1].pred_x0 - x0).pow(2).mean((1, 2))          # row k: x0_hat(x_t), t = T - k
    T = diffusion.T
    assert mse[-1] < 0.1 * mse[T // 2] and mse[T // 2] < mse[0]
    assert mse[-1] < 0.05 * STD ** 2


def test_faithful_coding_pays_the_bound_terms(toy, coded):
    """With log2 N above every step's KL, the coded x_{t+1} are draws of q, so the KL of each step along the coded
    chain matches the bound's term computed from independent forward draws (vb_term_bpd, Monte Carlo)."""
    diffusion, model, x0 = toy
    tr = coded[0]
    D, T = x0[0].numel(), diffusion.T
    g = torch.Generator().manual_seed(7)
    big = x0.repeat(16, 1)
    for k in range(1, T):                                        # row k sends x_t, t = T - k, with L_t
        t = T - k
        x_next = diffusion.q_sample(big, t + 1, generator=g)
        term = vb_term_bpd(diffusion, model, big, x_next, torch.full((len(big),), t + 1))["term"]
        expected = term.mean().item() * D                        # bits per example
        got = tr.kl_bits[k].mean().item()
        assert abs(got - expected) < 0.25 * expected + 0.05, (t, got, expected)
    per_step = tr.kl_bits.mean(1)
    assert per_step.max().item() < tr.message.bits_per_step      # rate >= KL at every step


def test_too_few_candidates_lose_the_chain(toy, coded):
    """One bit per step is below the KL of the last steps: the coded chain leaves q and its KLs explode."""
    diffusion, model, x0 = toy
    poor = send(diffusion, model, x0, 2, seed=3, generator=torch.Generator().manual_seed(5))
    good = coded[0]
    assert poor.kl_bits.mean(1).sum() > 3 * good.kl_bits.mean(1).sum()
    rc = receive(diffusion, model, poor.message, dtype=torch.float64)
    assert (rc.pred_x0[-1] - x0).pow(2).mean() > 5 * (coded[1].pred_x0[-1] - x0).pow(2).mean()


def test_bad_inputs(toy, coded):
    diffusion, model, x0 = toy
    msg = coded[0].message
    with pytest.raises(ValueError, match="num_candidates"):
        send(diffusion, model, x0, 1, seed=0)
    with pytest.raises(TypeError, match="num_candidates"):
        send(diffusion, model, x0, 4.0, seed=0)
    with pytest.raises(ValueError, match="seed"):
        send(diffusion, model, x0, 4, seed=-1)
    with pytest.raises(TypeError, match="x0"):
        send(diffusion, model, x0.long(), 4, seed=0)
    with pytest.raises(ValueError, match="finite"):
        send(diffusion, model, torch.full_like(x0, float("nan")), 4, seed=0)
    with pytest.raises(ValueError, match="shape"):
        send(diffusion, model, x0[0], 4, seed=0)
    with pytest.raises(TypeError, match="diffusion"):
        send("ddpm", model, x0, 4, seed=0)
    with pytest.raises(TypeError, match="message"):
        receive(diffusion, model, msg.indices)
    with pytest.raises(ValueError, match="0..255"):
        receive(diffusion, model, Message(msg.indices + 1, 256, msg.seed, msg.shape))
    with pytest.raises(ValueError, match="shape"):
        receive(GaussianDiffusion(Schedule.linear(10, 0.02, 0.3)), model, msg)
    with pytest.raises(TypeError, match="integer"):
        receive(diffusion, model, Message(msg.indices.double(), 256, msg.seed, msg.shape))
