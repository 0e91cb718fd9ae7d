"""Networks of ddpm_core.nn: shapes, parameter counts of the paper's models, the time embedding, gradients, memory
formats, autocast, and errors on bad configurations."""
import math

import pytest
import torch
import torch.nn.functional as F

from ddpm_core.nn import (NETWORKS, MLPConfig, MLPDenoiser, UNet, UNetConfig, build_model, count_parameters,
                          timestep_embedding)
from ddpm_core.nn.layers import Upsample

# Exact parameter counts. cifar10 and the 256x256 models are the paper's (App. B: "35.7M" and "114M"); the
# official TensorFlow model and diffusers' UNet2DModel in the google/ddpm-cifar10-32 layout have 35,746,307 too.
PARAM_COUNTS = {
    "cifar10": 35_746_307,
    "celebahq256": 113_673_219,
    "lsun256": 113_673_219,
    "digits": 701_345,
    "mnist28": 6_469_889,
    "gray32": 8_949_761,
    "toy2d": 183_298,
}


def _meta_model(preset: str, **overrides):
    with torch.device("meta"):
        return build_model(preset, **overrides)


def test_every_preset_has_a_pinned_count():
    assert set(PARAM_COUNTS) == set(NETWORKS)


@pytest.mark.parametrize("preset", sorted(NETWORKS))
def test_parameter_counts(preset):
    assert count_parameters(_meta_model(preset)) == PARAM_COUNTS[preset]


def test_paper_sizes_round_to_published_numbers():
    assert round(PARAM_COUNTS["cifar10"] / 1e6, 1) == 35.7
    assert round(PARAM_COUNTS["celebahq256"] / 1e6) == 114


def test_count_parameters_trainable_only():
    model = build_model("toy2d")
    model.proj_in.weight.requires_grad_(False)
    n = model.proj_in.weight.numel()
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - n


@pytest.mark.parametrize("preset", ["cifar10", "digits", "mnist28", "gray32"])
def test_unet_output_shape(preset):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    c = model.config
    x = torch.randn(1, c.in_channels, c.image_size, c.image_size)
    t = torch.tensor([1000])
    with torch.no_grad():
        out = model(x, t)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_256_preset_structure_at_reduced_size():
    # Same six-level layout, width and resolution reduced so the forward pass is cheap.
    model = build_model("celebahq256", image_size=32, ch=32).eval()
    assert model.config.resolutions == (32, 16, 8, 4, 2, 1)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert model(x, torch.tensor([7])).shape == x.shape


def test_attention_only_at_configured_resolutions():
    model = build_model("cifar10")
    from ddpm_core.nn.layers import AttnBlock
    kinds = [[isinstance(a, AttnBlock) for a in level.attn] for level in model.down]
    assert kinds == [[False, False], [True, True], [False, False], [False, False]]
    kinds_up = [[isinstance(a, AttnBlock) for a in level.attn] for level in model.up]
    assert kinds_up == [[False] * 3, [False] * 3, [True] * 3, [False] * 3]
    assert isinstance(model.mid_attn, AttnBlock)


def test_timestep_embedding_closed_form():
    dim = 8
    t = torch.tensor([1, 500, 1000])
    emb = timestep_embedding(t, dim)
    half = dim // 2
    for row, tv in enumerate(t.tolist()):
        for i in range(half):
            w = 10000 ** (-i / (half - 1))
            assert emb[row, i].item() == pytest.approx(math.sin(tv * w), abs=1e-4)
            assert emb[row, half + i].item() == pytest.approx(math.cos(tv * w), abs=1e-4)
    assert emb.dtype == torch.float32 and emb.shape == (3, dim)
    odd = timestep_embedding(t, 9)
    assert odd.shape == (3, 9) and torch.equal(odd[:, -1], torch.zeros(3)) and torch.equal(odd[:, :8], emb)


def test_timestep_embedding_errors():
    with pytest.raises(ValueError, match="dim"):
        timestep_embedding(torch.tensor([1]), 2)
    with pytest.raises(ValueError, match="shape"):
        timestep_embedding(torch.ones(2, 2), 8)


def test_model_depends_on_t():
    torch.manual_seed(0)
    model = build_model("digits", dropout=0.0).eval()
    for p in model.parameters():                     # leave the near-zero output initialisation
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        a, b = model(x, torch.tensor([1])), model(x, torch.tensor([900]))
    assert (a - b).abs().max() > 1e-3


@pytest.mark.parametrize("preset", ["digits", "toy2d"])
def test_gradient_reaches_every_parameter(preset):
    torch.manual_seed(0)
    model = build_model(preset)
    shape = (4, 2) if preset == "toy2d" else (4, 1, 8, 8)
    x = torch.randn(shape)
    loss = (model(x, torch.tensor([1, 10, 100, 1000])) - x).pow(2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_upsample_equals_nearest_then_conv():
    torch.manual_seed(0)
    up = Upsample(8)
    torch.nn.init.normal_(up.conv.weight)
    torch.nn.init.normal_(up.conv.bias)
    x = torch.randn(2, 8, 5, 4)
    ref = up.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
    torch.testing.assert_close(up(x), ref, atol=1e-4, rtol=1e-4)


def test_downsample_without_conv_is_average_pool():
    model = build_model("digits", resamp_with_conv=False)
    x = torch.randn(1, 32, 8, 8)
    torch.testing.assert_close(model.down[0].resample(x), F.avg_pool2d(x, 2))
    assert model.up[0].resample(x).shape == (1, 32, 16, 16)


@pytest.mark.parametrize("head_dim", [None, 16])
def test_channels_last_matches_contiguous(head_dim):
    torch.manual_seed(0)
    model = build_model("digits", attn_head_dim=head_dim).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(3, 1, 8, 8), torch.tensor([1, 2, 3])
    with torch.no_grad():
        ref = model(x, t)
        model_cl = model.to(memory_format=torch.channels_last)
        out = model_cl(x.to(memory_format=torch.channels_last), t)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


def test_autocast_bfloat16_runs():
    torch.manual_seed(0)
    model = build_model("digits").eval()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 50])
    with torch.no_grad():
        ref = model(x, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x, t)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() <= 0.05 * ref.abs().max() + 1e-6


def test_scalar_t_is_broadcast():
    model = build_model("digits").eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.tensor(3)), model(x, torch.tensor([3, 3])))


@pytest.mark.parametrize("kwargs, match", [
    (dict(image_size=30), "divisible"),
    (dict(attn_resolutions=(12,)), "attn_resolutions"),
    (dict(ch=100), "num_groups"),
    (dict(dropout=1.0), "dropout"),
    (dict(ch_mult=()), "ch_mult"),
    (dict(num_res_blocks=0), "num_res_blocks"),
    (dict(attn_head_dim=48), "attn_head_dim"),
])
def test_bad_unet_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNetConfig(**kwargs)


def test_unknown_preset_lists_the_allowed_names():
    with pytest.raises(ValueError) as err:
        build_model("imagenet")
    for name in NETWORKS:
        assert name in str(err.value)


def test_unknown_override():
    with pytest.raises(ValueError, match="chanels"):
        build_model("digits", chanels=3)


def test_bad_inputs_to_forward():
    model = build_model("digits")
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(2, 3, 8, 8), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="divisible"):
        model(torch.randn(2, 1, 7, 7), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="t must have shape"):
        model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError):
        model(torch.randn(2, 1, 8, 8), 5)
    with pytest.raises(TypeError):
        UNet({"ch": 32})


def test_mlp_denoiser():
    torch.manual_seed(0)
    model = MLPDenoiser(MLPConfig(dim=2, width=32, depth=2))
    x = torch.randn(5, 2)
    out = model(x, torch.arange(1, 6))
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    assert isinstance(build_model("toy2d"), MLPDenoiser)
    with pytest.raises(ValueError, match="shape"):
        model(torch.randn(5, 3), torch.arange(1, 6))
    with pytest.raises(ValueError, match="width"):
        MLPConfig(width=2)
