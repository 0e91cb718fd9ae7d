"""Chapter 10 checkers: the reference solutions pass and plausible wrong answers fail with the hint aimed at them."""
import math

import pytest
import torch

from ddpm_core.exercises import ExerciseFailed, check_resblock_params, check_timestep_embedding


def embed_solution(t, dim):
    half = dim // 2
    freqs = 10000.0 ** (-torch.arange(half, dtype=torch.float64) / (half - 1))
    args = t.double()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def params_solution(c_in, c_out, temb_dim):
    n = 2 * c_in + 9 * c_in * c_out + c_out + temb_dim * c_out + c_out + 2 * c_out + 9 * c_out**2 + c_out
    return n + (c_in * c_out + c_out if c_in != c_out else 0)


def test_solutions_pass(capsys):
    assert check_timestep_embedding(embed_solution)
    assert check_resblock_params(params_solution)
    out = capsys.readouterr().out
    assert "check_timestep_embedding: correct on all 3 cases." in out
    assert "check_resblock_params: correct on all 5 cases." in out


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, dim: embed_solution(t - 1, dim), "t - 1"),
    (lambda t, dim: embed_solution(t, dim).roll(dim // 2, dims=1), "swapped"),
    (lambda t, dim: torch.cat([torch.sin(t.double()[:, None] * 10000.0 ** (-torch.arange(dim // 2) / (dim // 2))),
                               torch.cos(t.double()[:, None] * 10000.0 ** (-torch.arange(dim // 2) / (dim // 2)))], 1),
     "divided by h"),
    (lambda t, dim: embed_solution(t, dim).reshape(len(t), 2, dim // 2).transpose(1, 2).reshape(len(t), dim),
     "interleave"),
    (lambda t, dim: embed_solution(t, dim)[:, : dim // 2], "sin(w_i t)"),
])
def test_wrong_embeddings_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="case") as err:
        check_timestep_embedding(wrong)
    assert hint in err.value.hint


@pytest.mark.parametrize("wrong, hint", [
    (lambda c_in, c_out, temb_dim: params_solution(c_in, c_out, temb_dim) - (c_in * c_out + c_out) * (c_in != c_out),
     "skip convolution is missing"),
    (lambda c_in, c_out, temb_dim: params_solution(c_in, c_out, temb_dim) + (c_in * c_out + c_out) * (c_in == c_out),
     "identity"),
    (lambda c_in, c_out, temb_dim: params_solution(c_in, c_out, temb_dim) - 2 * c_in - 2 * c_out, "group norm"),
    (lambda c_in, c_out, temb_dim: 9 * c_in * c_out, "k^2 c_in c_out"),
])
def test_wrong_counts_get_their_hint(wrong, hint):
    with pytest.raises(ExerciseFailed, match="c_in = ") as err:
        check_resblock_params(wrong)
    assert hint in err.value.hint
