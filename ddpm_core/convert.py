"""Load the paper's released networks, as published in the diffusers format, into :class:`ddpm_core.nn.UNet`.

The authors' TensorFlow checkpoints were converted to diffusers' ``UNet2DModel`` layout and published on the
Hugging Face hub (``RELEASED_MODELS``). A checkpoint is a ``config.json`` plus a ``diffusion_pytorch_model``
``.safetensors`` (or ``.bin``) file, with an optional ``scheduler_config.json`` beside it or in ``../scheduler``.
This module reads them with safetensors / torch only; diffusers itself is not needed.

Time convention: those networks were trained on the 0-based timestep s = t - 1 (s = 0..T-1), while this package
calls ``model(x_t, t)`` with the paper's t = 1..T. The loader therefore returns the network wrapped in
:class:`ShiftedTime`, which feeds it t - 1, so the result plugs into :class:`ddpm_core.GaussianDiffusion` as is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .nn.unet import UNet, UNetConfig

__all__ = ["DiffusionSettings", "ReleasedModel", "RELEASED_MODELS", "ShiftedTime", "unet_config_from_diffusers",
           "settings_from_scheduler_config", "convert_state_dict", "read_state_dict", "load_diffusers_unet",
           "download_released", "load_released"]


@dataclass(frozen=True)
class DiffusionSettings:
    """The diffusion a released network was trained with: linear betas from ``beta_1`` to ``beta_T`` over ``T``
    steps, eps-prediction, and the reverse variance used for sampling (``"beta"`` = the official "fixedlarge",
    ``"beta_tilde"`` = "fixedsmall"). ``clip_denoised``: clip predicted x_0 to [-1, 1] while sampling."""

    T: int = 1000
    beta_1: float = 1e-4
    beta_T: float = 0.02
    variance: str = "beta"
    clip_denoised: bool = True

    def make_diffusion(self):
        """The matching :class:`ddpm_core.GaussianDiffusion` (linear schedule, eps parameterization)."""
        from .diffusion import GaussianDiffusion
        return GaussianDiffusion.from_settings(schedule="linear", T=self.T, beta_1=self.beta_1, beta_T=self.beta_T,
                                               parameterization="eps", variance=self.variance,
                                               clip_denoised=self.clip_denoised)


# The published UNet2DModel configurations (config.json of each repository, metadata keys left out).
_BLOCKS_32 = dict(down_block_types=["DownBlock2D", "AttnDownBlock2D", "DownBlock2D", "DownBlock2D"],
                  up_block_types=["UpBlock2D", "UpBlock2D", "AttnUpBlock2D", "UpBlock2D"])
_BLOCKS_256 = dict(down_block_types=["DownBlock2D"] * 4 + ["AttnDownBlock2D", "DownBlock2D"],
                   up_block_types=["UpBlock2D", "AttnUpBlock2D"] + ["UpBlock2D"] * 4)
_COMMON = dict(act_fn="silu", attention_head_dim=None, center_input_sample=False, downsample_padding=0,
               flip_sin_to_cos=False, freq_shift=1, in_channels=3, out_channels=3, layers_per_block=2,
               mid_block_scale_factor=1, norm_eps=1e-6, norm_num_groups=32, time_embedding_type="positional")
_CONFIG_32 = dict(_COMMON, block_out_channels=[128, 256, 256, 256], sample_size=32, **_BLOCKS_32)
_CONFIG_256 = dict(_COMMON, block_out_channels=[128, 128, 256, 256, 512, 512], sample_size=256, **_BLOCKS_256)


@dataclass(frozen=True)
class ReleasedModel:
    """A released checkpoint: hub id, training data, our matching preset, its diffusion, its diffusers config."""

    repo_id: str
    dataset: str
    preset: str
    settings: DiffusionSettings
    diffusers_config: dict = field(repr=False, hash=False, compare=False)


# Sampling variance: fixed_large (sigma^2 = beta) for CIFAR-10 (official run_cifar.py, model_var_type="fixedlarge");
# fixed_small (sigma^2 = beta~) for the 256x256 models (their published scheduler_config.json; paper Sec. 3.2).
RELEASED_MODELS: dict[str, ReleasedModel] = {
    m.repo_id: m for m in [
        ReleasedModel("google/ddpm-cifar10-32", "CIFAR-10", "cifar10", DiffusionSettings(variance="beta"), _CONFIG_32),
        ReleasedModel("google/ddpm-celebahq-256", "CelebA-HQ", "celebahq256",
                      DiffusionSettings(variance="beta_tilde"), _CONFIG_256),
        ReleasedModel("google/ddpm-church-256", "LSUN church", "lsun256",
                      DiffusionSettings(variance="beta_tilde"), _CONFIG_256),
        ReleasedModel("google/ddpm-bedroom-256", "LSUN bedroom", "lsun256",
                      DiffusionSettings(variance="beta_tilde"), _CONFIG_256),
        ReleasedModel("google/ddpm-cat-256", "LSUN cat", "lsun256",
                      DiffusionSettings(variance="beta_tilde"), _CONFIG_256),
    ]
}


class ShiftedTime(nn.Module):
    """Adapts a network trained on 0-based timesteps s = t - 1 to the paper's t = 1..T: ``forward(x, t)`` returns
    ``net(x, t - 1)``. ``net`` is the wrapped network (its ``config`` is exposed as ``self.config``)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @property
    def config(self):
        return self.net.config

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); t: (B,) paper timesteps in 1..T. Returns net(x, t - 1), shaped like x."""
        return self.net(x, t - 1)


# Defaults of diffusers' UNet2DModel for the keys this converter reads (a config.json may omit them).
_DIFFUSERS_DEFAULTS = dict(
    sample_size=None, in_channels=3, out_channels=3, center_input_sample=False, time_embedding_type="positional",
    time_embedding_dim=None, freq_shift=0, flip_sin_to_cos=True,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
    mid_block_type="UNetMidBlock2D", up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
    block_out_channels=(224, 448, 672, 896), layers_per_block=2, mid_block_scale_factor=1, downsample_padding=1,
    downsample_type="conv", upsample_type="conv", dropout=0.0, act_fn="silu", attention_head_dim=8,
    norm_num_groups=32, attn_norm_num_groups=None, norm_eps=1e-5, resnet_time_scale_shift="default",
    add_attention=True, class_embed_type=None, num_class_embeds=None,
)

# Settings this architecture implements: (config key, allowed values, what it means here).
_REQUIRED = [
    ("center_input_sample", (False,), "inputs are already in [-1, 1]"),
    ("time_embedding_type", ("positional",), "sinusoidal time embedding"),
    ("flip_sin_to_cos", (False,), "embedding order [sin, cos]"),
    ("freq_shift", (1,), "frequencies max_period ** (-i / (half - 1))"),
    ("act_fn", ("silu", "swish"), "swish activations"),
    ("mid_block_type", ("UNetMidBlock2D",), "ResBlock-attention-ResBlock middle"),
    ("mid_block_scale_factor", (1,), "unscaled residuals"),
    ("downsample_padding", (0,), "TensorFlow SAME padding of the strided convolution"),
    ("downsample_type", ("conv",), "strided-convolution downsampling"),
    ("upsample_type", ("conv",), "nearest-neighbour upsampling + convolution"),
    ("resnet_time_scale_shift", ("default",), "time embedding added, not scale-shift"),
    ("add_attention", (True,), "middle attention"),
    ("class_embed_type", (None,), "unconditional"),
    ("num_class_embeds", (None,), "unconditional"),
]


def unet_config_from_diffusers(config: dict) -> UNetConfig:
    """Map a diffusers ``UNet2DModel`` config (the dict of its config.json) to a :class:`UNetConfig`.

    block_out_channels -> ch = block_out_channels[0], ch_mult = block_out_channels / ch; layers_per_block ->
    num_res_blocks; Attn*Block2D levels -> attn_resolutions; norm_num_groups, norm_eps, attention_head_dim,
    dropout carried over. Raises ValueError for a setting this architecture does not implement.
    """
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise ValueError(f"config describes a {config['_class_name']!r}; only 'UNet2DModel' is supported")
    c = {**_DIFFUSERS_DEFAULTS, **config}
    for key, allowed, meaning in _REQUIRED:
        if c[key] not in allowed:
            raise ValueError(f"unsupported {key}={c[key]!r} (allowed: {list(allowed)}; this U-Net uses {meaning})")
    widths = [int(w) for w in c["block_out_channels"]]
    down, up = list(c["down_block_types"]), list(c["up_block_types"])
    if not widths or len(down) != len(widths) or len(up) != len(widths):
        raise ValueError(f"block_out_channels, down_block_types and up_block_types must have equal lengths, got "
                         f"{len(widths)}, {len(down)}, {len(up)}")
    ch = widths[0]
    if any(w % ch for w in widths):
        raise ValueError(f"every block_out_channels entry must be a multiple of the first, got {widths}")
    if c["time_embedding_dim"] not in (None, 4 * ch):
        raise ValueError(f"unsupported time_embedding_dim={c['time_embedding_dim']} (allowed: None or {4 * ch})")
    if c["attn_norm_num_groups"] not in (None, c["norm_num_groups"]):
        raise ValueError(f"unsupported attn_norm_num_groups={c['attn_norm_num_groups']} "
                         f"(allowed: None or norm_num_groups={c['norm_num_groups']})")
    size = c["sample_size"]
    if isinstance(size, (list, tuple)):
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"only square sample_size is supported, got {size}")
        size = size[0]
    if not isinstance(size, int):
        raise ValueError(f"sample_size must be an integer, got {size!r}")
    attn_levels = []
    for i, kind in enumerate(down):
        mirror = up[len(up) - 1 - i]
        if kind not in ("DownBlock2D", "AttnDownBlock2D") or mirror not in ("UpBlock2D", "AttnUpBlock2D"):
            raise ValueError(f"unsupported block types {kind!r}/{mirror!r} at level {i} (allowed: DownBlock2D, "
                             "AttnDownBlock2D / UpBlock2D, AttnUpBlock2D)")
        if kind.startswith("Attn") != mirror.startswith("Attn"):
            raise ValueError(f"level {i}: {kind} is mirrored by {mirror}; attention must be on both or neither")
        if kind.startswith("Attn"):
            attn_levels.append(i)
    return UNetConfig(
        image_size=size, in_channels=int(c["in_channels"]), out_channels=int(c["out_channels"]), ch=ch,
        ch_mult=tuple(w // ch for w in widths), num_res_blocks=int(c["layers_per_block"]),
        attn_resolutions=tuple(size // 2 ** i for i in attn_levels), dropout=float(c["dropout"]),
        resamp_with_conv=True, num_groups=int(c["norm_num_groups"]), norm_eps=float(c["norm_eps"]),
        attn_head_dim=None if c["attention_head_dim"] is None else int(c["attention_head_dim"]),
    )


def settings_from_scheduler_config(config: dict) -> DiffusionSettings:
    """Map a diffusers ``DDPMScheduler`` config to :class:`DiffusionSettings` (linear betas, eps prediction)."""
    schedule = config.get("beta_schedule", "linear")
    if schedule != "linear" or config.get("trained_betas") is not None:
        raise ValueError(f"unsupported beta_schedule={schedule!r} / trained_betas (allowed: 'linear', None)")
    if config.get("prediction_type", "epsilon") != "epsilon":
        raise ValueError(f"unsupported prediction_type={config['prediction_type']!r} (allowed: 'epsilon')")
    variance_type = config.get("variance_type", "fixed_small")
    variances = {"fixed_large": "beta", "fixed_large_log": "beta", "fixed_small": "beta_tilde",
                 "fixed_small_log": "beta_tilde"}
    if variance_type not in variances:
        raise ValueError(f"unsupported variance_type={variance_type!r} (allowed: {sorted(variances)})")
    return DiffusionSettings(T=int(config.get("num_train_timesteps", 1000)),
                             beta_1=float(config.get("beta_start", 1e-4)), beta_T=float(config.get("beta_end", 0.02)),
                             variance=variances[variance_type], clip_denoised=bool(config.get("clip_sample", True)))


def _attn_source(state: dict, prefix: str) -> dict[str, str]:
    """Names of q, k, v, out in a diffusers attention block: current (to_q ...) or legacy (query ...) naming."""
    if f"{prefix}.query.weight" in state:
        return dict(q="query", k="key", v="value", out="proj_attn")
    return dict(q="to_q", k="to_k", v="to_v", out="to_out.0")


def convert_state_dict(state: dict[str, torch.Tensor], config: UNetConfig) -> dict[str, torch.Tensor]:
    """Rename and reshape a diffusers ``UNet2DModel`` state dict into the state dict of ``UNet(config)``.

    q/k/v projections are concatenated into the fused 1x1 ``qkv`` convolution. Raises ValueError when a needed
    tensor is missing or when tensors are left over (a feature this architecture does not have).
    """
    used: set[str] = set()
    out: dict[str, torch.Tensor] = {}

    def take(src: str) -> torch.Tensor:
        if src not in state:
            raise ValueError(f"checkpoint is missing {src!r}; is it a UNet2DModel of the configured shape?")
        used.add(src)
        return state[src]

    def copy(dst: str, src: str, params=("weight", "bias")) -> None:
        for p in params:
            out[f"{dst}.{p}"] = take(f"{src}.{p}")

    def resblock(dst: str, src: str) -> None:
        for ours, theirs in [("norm1", "norm1"), ("conv1", "conv1"), ("temb_proj", "time_emb_proj"),
                             ("norm2", "norm2"), ("conv2", "conv2")]:
            copy(f"{dst}.{ours}", f"{src}.{theirs}")
        if f"{src}.conv_shortcut.weight" in state:
            copy(f"{dst}.skip", f"{src}.conv_shortcut")

    def attn(dst: str, src: str) -> None:
        names = _attn_source(state, src)
        copy(f"{dst}.norm", f"{src}.group_norm")
        for p in ("weight", "bias"):
            qkv = torch.cat([take(f"{src}.{names[n]}.{p}") for n in "qkv"])
            out[f"{dst}.qkv.{p}"] = qkv.reshape(qkv.shape[0], -1, 1, 1) if p == "weight" else qkv
        w = take(f"{src}.{names['out']}.weight")
        out[f"{dst}.proj_out.weight"] = w.reshape(w.shape[0], -1, 1, 1)
        out[f"{dst}.proj_out.bias"] = take(f"{src}.{names['out']}.bias")

    copy("conv_in", "conv_in")
    copy("time_embed.0", "time_embedding.linear_1")
    copy("time_embed.2", "time_embedding.linear_2")
    levels = len(config.ch_mult)
    for i, res in enumerate(config.resolutions):
        for j in range(config.num_res_blocks):
            resblock(f"down.{i}.res.{j}", f"down_blocks.{i}.resnets.{j}")
            if res in config.attn_resolutions:
                attn(f"down.{i}.attn.{j}", f"down_blocks.{i}.attentions.{j}")
        if i < levels - 1:
            copy(f"down.{i}.resample.conv", f"down_blocks.{i}.downsamplers.0.conv")
    resblock("mid_block1", "mid_block.resnets.0")
    attn("mid_attn", "mid_block.attentions.0")
    resblock("mid_block2", "mid_block.resnets.1")
    for k, i in enumerate(reversed(range(levels))):                  # up_blocks are in forward order too
        for j in range(config.num_res_blocks + 1):
            resblock(f"up.{k}.res.{j}", f"up_blocks.{k}.resnets.{j}")
            if config.resolutions[i] in config.attn_resolutions:
                attn(f"up.{k}.attn.{j}", f"up_blocks.{k}.attentions.{j}")
        if i > 0:
            copy(f"up.{k}.resample.conv", f"up_blocks.{k}.upsamplers.0.conv")
    copy("norm_out", "conv_norm_out")
    copy("conv_out", "conv_out")
    left = sorted(set(state) - used)
    if left:
        raise ValueError(f"checkpoint has {len(left)} tensors this U-Net has no place for, e.g. {left[:5]}")
    return out


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file (via safetensors) or a ``.bin``/``.pt``/``.pth`` file (torch.load with
    weights_only=True), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path), device="cpu")
    if path.suffix in (".bin", ".pt", ".pth"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
        return state
    raise ValueError(f"unsupported weights file {path.name!r} (allowed suffixes: .safetensors, .bin, .pt, .pth)")


_WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


def _locate(path: Path) -> tuple[Path, Path, Path | None]:
    """(weights file, config.json, scheduler_config.json or None) for a weights file, a UNet folder, or a
    pipeline folder with a ``unet/`` subfolder."""
    if path.is_file():
        folder, weights = path.parent, path
    elif path.is_dir():
        folder = path / "unet" if (path / "unet" / "config.json").is_file() else path
        found = [folder / n for n in _WEIGHT_NAMES if (folder / n).is_file()]
        if not found:
            raise FileNotFoundError(f"no weights in {folder} (looked for {', '.join(_WEIGHT_NAMES)})")
        weights = found[0]
    else:
        raise FileNotFoundError(f"checkpoint not found: {path}")
    config = folder / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"config.json not found beside the weights in {folder}")
    schedulers = [folder / "scheduler_config.json", folder / "scheduler" / "scheduler_config.json",
                  folder.parent / "scheduler" / "scheduler_config.json"]
    return weights, config, next((s for s in schedulers if s.is_file()), None)


def load_diffusers_unet(path: str | Path, settings: DiffusionSettings | str | None = None,
                        map_location: str | torch.device = "cpu") -> tuple[ShiftedTime, DiffusionSettings]:
    """Load a diffusers ``UNet2DModel`` checkpoint as a :class:`UNet` wrapped in :class:`ShiftedTime`.

    Args:
        path: the weights file, its folder (config.json beside it), or a pipeline folder with ``unet/``.
        settings: the diffusion to pair it with: a :class:`DiffusionSettings`, a key of ``RELEASED_MODELS``, or
            None to read ``scheduler_config.json`` (beside the weights or in ``../scheduler``) or, failing that,
            to recognise a released repository id in the path.
        map_location: device of the returned model.
    Returns:
        (model, settings): ``model(x_t, t)`` takes the paper's t = 1..T; it is in eval mode.
    """
    weights, config_path, scheduler_path = _locate(Path(path))
    config = unet_config_from_diffusers(json.loads(config_path.read_text()))
    if isinstance(settings, str):
        if settings not in RELEASED_MODELS:
            raise ValueError(f"unknown released model {settings!r}; allowed: {sorted(RELEASED_MODELS)}")
        settings = RELEASED_MODELS[settings].settings
    elif settings is None and scheduler_path is not None:
        settings = settings_from_scheduler_config(json.loads(scheduler_path.read_text()))
    elif settings is None:
        text = str(Path(path).resolve()).replace("--", "/")          # hub cache folders are models--owner--name
        matches = [m for repo, m in RELEASED_MODELS.items() if repo in text]
        if not matches:
            raise ValueError(f"no scheduler_config.json found for {path} and it is not a released model's folder; "
                             "pass settings= (a DiffusionSettings or one of RELEASED_MODELS)")
        settings = matches[0].settings
    if not isinstance(settings, DiffusionSettings):
        raise TypeError(f"settings must be a DiffusionSettings, a RELEASED_MODELS key or None, "
                        f"got {type(settings).__name__}")
    unet = UNet(config)
    state = {k: v.float() for k, v in read_state_dict(weights).items()}
    unet.load_state_dict(convert_state_dict(state, config))
    return ShiftedTime(unet).to(map_location).eval(), settings


def download_released(repo_id: str, cache_dir: str | Path | None = None) -> Path:
    """Download a released checkpoint's config and weights from the Hugging Face hub; returns its local folder.

    Needs the optional ``huggingface_hub`` package and internet access (safetensors weights are preferred; the
    .bin file is fetched only when a repository has no safetensors).
    """
    if repo_id not in RELEASED_MODELS:
        raise ValueError(f"unknown released model {repo_id!r}; allowed: {sorted(RELEASED_MODELS)}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ImportError("download_released needs huggingface_hub: pip install huggingface_hub "
                          "(or the package's 'convert' extra)") from err
    kwargs = dict(repo_id=repo_id, cache_dir=None if cache_dir is None else str(cache_dir))
    try:
        folder = Path(snapshot_download(allow_patterns=["*.json", "*.safetensors"], **kwargs))
        if not any(folder.rglob("diffusion_pytorch_model.safetensors")):
            folder = Path(snapshot_download(allow_patterns=["*.json", "*.bin"], **kwargs))
    except Exception as err:  # offline, unreachable hub, missing repository
        raise RuntimeError(f"could not download {repo_id} from the Hugging Face hub ({type(err).__name__}: {err}). "
                           "Without internet, download the repository elsewhere and pass its folder to "
                           "load_diffusers_unet().") from err
    return folder


def load_released(repo_id: str, cache_dir: str | Path | None = None,
                  map_location: str | torch.device = "cpu") -> tuple[ShiftedTime, DiffusionSettings]:
    """:func:`download_released` then :func:`load_diffusers_unet`, with the settings of ``RELEASED_MODELS``."""
    folder = download_released(repo_id, cache_dir)
    return load_diffusers_unet(folder, settings=repo_id, map_location=map_location)
