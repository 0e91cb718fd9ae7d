"""Checkers for chapter 13, progressive coding: the rate R(t) from the bound's terms, the distortion, and the
importance weights of minimal random coding (Algorithm 3)."""
from __future__ import annotations

import math

import torch

from ._checker import Case, Mistake, check_function

__all__ = ["check_rate", "check_distortion", "check_mrc_probs"]


def _rate(prior, terms):
    terms = terms.double()
    tail = torch.flip(torch.cumsum(torch.flip(terms, [0]), 0), [0])      # tail[i] = sum_{j >= i} terms[j]
    return prior + torch.cat([tail[1:], tail.new_zeros(1)])


def _rate_cases() -> list[Case]:
    g = torch.Generator().manual_seed(13)
    return [
        Case("T = 4, terms (L_0, L_1, L_2, L_3) = (1.0, 0.5, 0.25, 0.125), L_T = 0.01",
             {"prior": 0.01, "terms": torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=torch.float64)}),
        Case("T = 10, random terms", {"prior": 1e-5, "terms": torch.rand(10, generator=g, dtype=torch.float64)}),
        Case("T = 1, only the decoder", {"prior": 0.2, "terms": torch.tensor([0.7], dtype=torch.float64)}),
    ]


def check_rate(student) -> bool:
    """Exercise: ``rate(prior, terms)`` returns R(t) for t = 1..T (entry t - 1), the bits/dim sent once the receiver
    holds x_t: R(t) = L_T + sum_{s=t}^{T-1} L_s, with terms[t - 1] = L_{t-1} (L_0 at t = 1) as in BoundTerms."""
    mistakes = [
        Mistake(lambda prior, terms: prior + torch.cumsum(terms.double(), 0) - terms.double(),
                "the sum runs the wrong way: the receiver gets x_T first, so R(t) sums the terms of the steps "
                "T, ..., t + 1, i.e. entries t .. T-1 (a reverse cumulative sum), and R(T) = L_T."),
        Mistake(lambda prior, terms: prior + torch.flip(torch.cumsum(torch.flip(terms.double(), [0]), 0), [0]),
                "you include step t's own term: holding x_t costs L_T + L_{T-1} + ... + L_t, and terms[t - 1] is "
                "L_{t-1}, the cost of the *next* step (x_{t-1}); so R(T) = L_T and R(1) = L - L_0."),
        Mistake(lambda prior, terms: _rate(0.0, terms),
                "the receiver must get x_T first, at a cost of L_T: add the prior term to every rate."),
    ]
    return check_function("check_rate", student, _rate, _rate_cases(), mistakes=mistakes, rtol=1e-9, atol=1e-12,
                          hint="R(t) = L_T + sum of terms[t:], entry t - 1 for t = 1..T (Eq. eq-prog-rate).")


def _distortion(x0, x0_hat):
    return 127.5 * (x0.double() - x0_hat.double()).pow(2).mean().sqrt()


def _distortion_cases() -> list[Case]:
    g = torch.Generator().manual_seed(131)
    x0 = torch.rand(6, 1, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    hat = (x0 + 0.1 * torch.randn(x0.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    far = torch.zeros_like(x0)
    far[:3] = x0[:3]                                        # three perfect guesses, three zero guesses
    return [Case("six digits with small errors", {"x0": x0, "x0_hat": hat}),
            Case("half the batch perfect, half guessed as 0", {"x0": x0, "x0_hat": far}),
            Case("one pixel off by one level (2/255)", {"x0": torch.zeros(1, 1, 1, 1, dtype=torch.float64),
                                                        "x0_hat": torch.full((1, 1, 1, 1), 2 / 255,
                                                                             dtype=torch.float64)})]


def check_distortion(student) -> bool:
    """Exercise: ``distortion(x0, x0_hat)`` returns the root mean squared error over all pixels of the batch on the
    0..255 scale, for data in [-1, 1] (Eq. eq-prog-distortion)."""
    mistakes = [
        Mistake(lambda x0, x0_hat: 255 * (x0 - x0_hat).pow(2).mean().sqrt(),
                "the data range [-1, 1] has width 2: one unit is 127.5 grey levels, not 255."),
        Mistake(lambda x0, x0_hat: 127.5 ** 2 * (x0 - x0_hat).pow(2).mean(),
                "that is a mean squared error: take the square root (the paper reports an RMSE)."),
        Mistake(lambda x0, x0_hat: 127.5 * (x0 - x0_hat).pow(2).flatten(1).mean(1).sqrt().mean(),
                "you averaged the RMSE of each image; the distortion is the square root of the mean squared error "
                "over the whole batch (average first, then the square root)."),
        Mistake(lambda x0, x0_hat: 127.5 * (x0 - x0_hat).abs().mean(),
                "that is a mean absolute error: square, average, then take the square root."),
    ]
    return check_function("check_distortion", student, _distortion, _distortion_cases(), mistakes=mistakes,
                          rtol=1e-9, atol=1e-9,
                          hint="D = 127.5 * sqrt(mean over all pixels of (x0 - x0_hat)^2).")


def _log_normal(x, mean, var):
    return (-0.5 * ((x - mean) ** 2 / var + torch.log(2 * math.pi * var))).flatten(1).sum(1)


def _mrc(candidates, q_mean, q_var, p_mean, p_var, flip=False, std_for_var=False, normalise=True):
    c = candidates.double()
    qv, pv = torch.as_tensor(q_var, dtype=torch.float64), torch.as_tensor(p_var, dtype=torch.float64)
    if std_for_var:
        qv, pv = qv.sqrt(), pv.sqrt()
    lq, lp = _log_normal(c, q_mean, qv), _log_normal(c, p_mean, pv)
    log_w = lp - lq if flip else lq - lp
    return torch.softmax(log_w, 0) if normalise else log_w.exp()


def _mrc_cases() -> list[Case]:
    g = torch.Generator().manual_seed(132)
    p_mean, p_var = torch.tensor([0.2, -0.1], dtype=torch.float64), 0.04
    cand = p_mean + math.sqrt(p_var) * torch.randn(16, 2, generator=g, dtype=torch.float64)
    cases = [Case("16 candidates in 2-D, q narrower than p",
                  {"candidates": cand, "q_mean": torch.tensor([0.3, -0.05], dtype=torch.float64), "q_var": 0.01,
                   "p_mean": p_mean, "p_var": p_var})]
    cand1 = 0.5 * torch.randn(8, 1, generator=g, dtype=torch.float64)
    cases.append(Case("8 candidates in 1-D, q wider than p",
                      {"candidates": cand1, "q_mean": torch.tensor([0.1], dtype=torch.float64), "q_var": 0.5,
                       "p_mean": torch.tensor([0.0], dtype=torch.float64), "p_var": 0.25}))
    return cases


def check_mrc_probs(student) -> bool:
    """Exercise: ``mrc_probs(candidates, q_mean, q_var, p_mean, p_var)`` returns the probabilities (N,) with which the
    sender of minimal random coding picks each of the N candidates (N, ...) drawn from p = N(p_mean, p_var I):
    proportional to q(c) / p(c) with q = N(q_mean, q_var I), normalised to sum to one."""
    mistakes = [
        Mistake(lambda **kw: _mrc(**kw, flip=True),
                "the weights are q(c) / p(c), not p(c) / q(c): candidates are drawn from p, and the weights must "
                "turn them into draws of q."),
        Mistake(lambda **kw: _mrc(**kw, std_for_var=True),
                "q_var and p_var are variances: the exponent is -(c - mean)^2 / (2 var), not / (2 std)."),
        Mistake(lambda **kw: _mrc(**kw, normalise=False),
                "the weights q(c) / p(c) are right but not normalised: divide by their sum (a softmax of the log "
                "weights over the candidates) so that they are probabilities."),
    ]
    return check_function("check_mrc_probs", student, _mrc, _mrc_cases(), mistakes=mistakes, rtol=1e-7, atol=1e-10,
                          hint="log w = log N(c; q_mean, q_var) - log N(c; p_mean, p_var), summed over the "
                               "coordinates of each candidate; probabilities = softmax over the candidates.")
