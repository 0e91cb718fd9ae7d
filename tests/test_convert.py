"""The converter from diffusers checkpoints: our U-Net with converted weights must compute what diffusers'
UNet2DModel computes, for every released configuration, and the loader must fail clearly on bad input."""
import dataclasses
import json
import sys

import pytest
import torch

from ddpm_core import GaussianDiffusion, loss
from ddpm_core.convert import (RELEASED_MODELS, DiffusionSettings, ShiftedTime, convert_state_dict,
                               download_released, load_diffusers_unet, read_state_dict,
                               settings_from_scheduler_config, unet_config_from_diffusers)
from ddpm_core.nn import NETWORKS, UNet

diffusers = pytest.importorskip("diffusers")

CIFAR = "google/ddpm-cifar10-32"
T_PAPER = torch.tensor([1, 2, 500, 1000])          # the package's t; diffusers gets t - 1


def _small_256_config(config: dict) -> dict:
    """The 256x256 layout (six levels, attention at the fifth) at 32x32 and a quarter of the width."""
    return dict(config, sample_size=32, block_out_channels=[w // 4 for w in config["block_out_channels"]])


# The released repositories share two configurations (all 256x256 models have the same one): test each once.
DISTINCT = sorted({json.dumps(m.diffusers_config, sort_keys=True): repo
                   for repo, m in RELEASED_MODELS.items()}.values())


def test_released_configurations():
    assert len(DISTINCT) == 2
    configs = {json.dumps(m.diffusers_config, sort_keys=True) for m in RELEASED_MODELS.values()}
    assert configs == {json.dumps(RELEASED_MODELS[r].diffusers_config, sort_keys=True) for r in DISTINCT}


def _random_diffusers_unet(config: dict, seed: int = 0):
    torch.manual_seed(seed)
    model = diffusers.UNet2DModel(**config).eval()
    with torch.no_grad():                            # move norms off (1, 0) so their mapping is tested too
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _scheduler_config(variance_type: str) -> dict:
    return {"_class_name": "DDPMScheduler", "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
            "num_train_timesteps": 1000, "clip_sample": True, "trained_betas": None, "variance_type": variance_type}


def _assert_same_outputs(theirs, ours, size: int, channels: int = 3) -> None:
    torch.manual_seed(1)
    x = torch.randn(len(T_PAPER), channels, size, size)
    with torch.no_grad():
        expected = theirs(x, T_PAPER - 1).sample
        got = ours(x, T_PAPER)
    scale = expected.abs().max().item()
    assert scale > 0.1
    torch.testing.assert_close(got, expected, atol=1e-4 * scale, rtol=0)


@pytest.mark.parametrize("repo_id", DISTINCT)
def test_converted_model_matches_diffusers(repo_id, tmp_path):
    released = RELEASED_MODELS[repo_id]
    config = released.diffusers_config
    if config["sample_size"] == 256:
        config = _small_256_config(config)
    theirs = _random_diffusers_unet(config)
    theirs.save_pretrained(tmp_path)                 # config.json + diffusion_pytorch_model.safetensors
    (tmp_path / "scheduler_config.json").write_text(json.dumps(_scheduler_config(
        "fixed_large" if released.settings.variance == "beta" else "fixed_small")))
    ours, settings = load_diffusers_unet(tmp_path)
    assert isinstance(ours, ShiftedTime) and isinstance(ours.net, UNet) and not ours.training
    assert settings == released.settings
    _assert_same_outputs(theirs, ours, config["sample_size"])


@pytest.mark.parametrize("repo_id", sorted(RELEASED_MODELS))
def test_full_size_key_mapping(repo_id):
    """At full size (on the meta device, no memory), every converted tensor lands on a parameter of ours with the
    same shape, and the configuration maps to our preset of the same name."""
    released = RELEASED_MODELS[repo_id]
    config = unet_config_from_diffusers(released.diffusers_config)
    assert config == dataclasses.replace(NETWORKS[released.preset], dropout=0.0)   # configs carry no dropout
    with torch.device("meta"):
        theirs = diffusers.UNet2DModel(**released.diffusers_config)
        ours = UNet(config)
    converted = convert_state_dict(theirs.state_dict(), config)
    expected = {k: v.shape for k, v in ours.state_dict().items()}
    assert {k: v.shape for k, v in converted.items()} == expected
    assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in ours.parameters())


def test_released_settings():
    assert RELEASED_MODELS[CIFAR].settings == DiffusionSettings(1000, 1e-4, 0.02, "beta", True)
    for repo_id, model in RELEASED_MODELS.items():
        if repo_id != CIFAR:
            assert model.settings.variance == "beta_tilde"
            assert model.diffusers_config["sample_size"] == 256
    assert settings_from_scheduler_config(_scheduler_config("fixed_large")).variance == "beta"
    assert settings_from_scheduler_config(_scheduler_config("fixed_small")).variance == "beta_tilde"
    with pytest.raises(ValueError, match="variance_type"):
        settings_from_scheduler_config(_scheduler_config("learned_range"))
    with pytest.raises(ValueError, match="beta_schedule"):
        settings_from_scheduler_config(dict(_scheduler_config("fixed_small"), beta_schedule="squaredcos_cap_v2"))


def test_multi_head_attention_and_legacy_names_and_bin_file(tmp_path):
    """attention_head_dim = 8 (diffusers' default when a config omits it) gives multi-head attention; old
    checkpoints name the attention tensors query/key/value/proj_attn; weights may come as a .bin file."""
    config = dict(_small_256_config(RELEASED_MODELS["google/ddpm-cat-256"].diffusers_config))
    del config["attention_head_dim"]
    theirs = _random_diffusers_unet(config, seed=3)
    legacy = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    state = {}
    for k, v in theirs.state_dict().items():
        for new, old in legacy.items():
            k = k.replace(f".{new}.", f".{old}.")
        state[k] = v
    folder = tmp_path / "unet"
    folder.mkdir()
    torch.save(state, folder / "diffusion_pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(config))
    ours, settings = load_diffusers_unet(tmp_path, settings=DiffusionSettings(variance="beta_tilde"))
    assert ours.config.attn_head_dim == 8
    _assert_same_outputs(theirs, ours, 32)


def test_loader_plugs_into_gaussian_diffusion(tmp_path):
    config = dict(RELEASED_MODELS[CIFAR].diffusers_config, sample_size=16, block_out_channels=[32, 64, 64, 64])
    _random_diffusers_unet(config).save_pretrained(tmp_path / "models--google--ddpm-cifar10-32" / "snap")
    model, settings = load_diffusers_unet(tmp_path / "models--google--ddpm-cifar10-32" / "snap")
    assert settings == RELEASED_MODELS[CIFAR].settings   # recognised from the hub-cache folder name
    diffusion = settings.make_diffusion()
    assert isinstance(diffusion, GaussianDiffusion) and diffusion.variance == "beta"
    value = loss(diffusion, model, torch.rand(2, 3, 16, 16) * 2 - 1, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(value)


def test_shifted_time_feeds_zero_based_steps():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x, t):
            seen.append(t.clone())
            return x

    ShiftedTime(Probe())(torch.zeros(3, 1), torch.tensor([1, 2, 1000]))
    assert seen[0].tolist() == [0, 1, 999]


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_diffusers_unet(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no weights"):
        load_diffusers_unet(tmp_path)
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_diffusers_unet(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "absent.safetensors")
    (tmp_path / "weights.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="suffix"):
        read_state_dict(tmp_path / "weights.npz")


def test_no_settings_found(tmp_path):
    config = dict(RELEASED_MODELS[CIFAR].diffusers_config, block_out_channels=[32, 32, 32, 32])
    _random_diffusers_unet(config).save_pretrained(tmp_path / "mine")
    with pytest.raises(ValueError, match="settings="):
        load_diffusers_unet(tmp_path / "mine")
    with pytest.raises(ValueError, match="unknown released model"):
        load_diffusers_unet(tmp_path / "mine", settings="google/ddpm-imagenet-64")
    model, settings = load_diffusers_unet(tmp_path / "mine", settings=CIFAR)
    assert settings.variance == "beta"


@pytest.mark.parametrize("change, match", [
    (dict(flip_sin_to_cos=True), "flip_sin_to_cos"),
    (dict(resnet_time_scale_shift="scale_shift"), "resnet_time_scale_shift"),
    (dict(downsample_padding=1), "downsample_padding"),
    (dict(up_block_types=["UpBlock2D"] * 4), "attention must be on both"),
    (dict(down_block_types=["CrossAttnDownBlock2D"] + ["DownBlock2D"] * 3), "unsupported block types"),
    (dict(block_out_channels=[128, 192, 256, 256]), "multiple"),
    (dict(_class_name="UNet2DConditionModel"), "UNet2DModel"),
    (dict(num_class_embeds=10), "num_class_embeds"),
])
def test_unsupported_configs(change, match):
    with pytest.raises(ValueError, match=match):
        unet_config_from_diffusers(dict(RELEASED_MODELS[CIFAR].diffusers_config, **change))


def test_incompatible_state_dicts():
    config = unet_config_from_diffusers(RELEASED_MODELS[CIFAR].diffusers_config)
    with torch.device("meta"):
        state = diffusers.UNet2DModel(**RELEASED_MODELS[CIFAR].diffusers_config).state_dict()
    with pytest.raises(ValueError, match="no place"):
        convert_state_dict({**state, "class_embedding.weight": torch.zeros(1)}, config)
    del state["conv_in.bias"]
    with pytest.raises(ValueError, match="missing 'conv_in.bias'"):
        convert_state_dict(state, config)


def test_download_released_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown released model"):
        download_released("google/ddpm-imagenet-64")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)        # as if not installed
    with pytest.raises(ImportError, match="pip install huggingface_hub"):
        download_released(CIFAR, tmp_path)


def test_download_released_offline(monkeypatch, tmp_path):
    hub = pytest.importorskip("huggingface_hub")

    def offline(**kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(hub, "snapshot_download", offline)
    with pytest.raises(RuntimeError, match="could not download google/ddpm-cifar10-32"):
        download_released(CIFAR, tmp_path)
