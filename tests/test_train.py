"""The training engine: configs and presets, EMA, warmup, exact resume, checkpoints, non-finite losses, caching."""
from __future__ import annotations

import json
import os

import pytest
import torch

from ddpm_core.nn import NETWORKS
from ddpm_core.train import (EMA, PRESETS, NonFiniteLossError, TrainConfig, Trainer, atomic_save, config_hash,
                             get_preset, load_checkpoint, read_checkpoint, run_dir_for, train_or_load)
from ddpm_core.atomic import _umask
from ddpm_core.viz import make_grid, save_image_grid, save_scatter

TINY_MLP = {"width": 32, "depth": 2, "dropout": 0.1}
TINY_UNET = {"ch": 8, "num_groups": 4, "num_res_blocks": 1, "dropout": 0.1}


def tiny_toy(**kw) -> TrainConfig:
    base = dict(steps=8, batch_size=32, toy_size=512, warmup_steps=3, log_every=4, sample_every=0, ckpt_every=0,
                progress=False, model_overrides=TINY_MLP)
    return get_preset("toy2d", **{**base, **kw})


def tiny_digits(**kw) -> TrainConfig:
    base = dict(steps=4, batch_size=16, warmup_steps=2, log_every=2, sample_every=0, ckpt_every=0, progress=False,
                flip=True, model_overrides=TINY_UNET)
    return get_preset("digits", **{**base, **kw})


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest (conftest.py)


def params(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---- configuration -----------------------------------------------------------------------------------------
def test_presets_round_trip_through_json():
    for name, cfg in PRESETS.items():
        again = TrainConfig.from_json(cfg.to_json())
        assert again == cfg, name
        assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()


def test_cifar10_preset_is_the_papers_recipe():
    c = get_preset("cifar10")
    assert (c.model, c.data, c.flip) == ("cifar10", "cifar10", True)
    assert (c.lr, c.batch_size, c.warmup_steps, c.grad_clip, c.ema_decay, c.steps) == (2e-4, 128, 5000, 1.0,
                                                                                        0.9999, 800_000)
    assert (c.loss, c.parameterization, c.variance, c.schedule, c.T, c.beta_1, c.beta_T) == (
        "simple", "eps", "beta", "linear", 1000, 1e-4, 0.02)
    assert NETWORKS[c.model].dropout == 0.1 and "dropout" not in c.model_overrides
    for name in ("celebahq256", "lsun256"):
        c = get_preset(name)
        assert (c.lr, c.batch_size, c.variance) == (2e-5, 64, "beta_tilde")
        assert NETWORKS[c.model].dropout == 0.0 and "dropout" not in c.model_overrides
    assert get_preset("toy2d").clip_denoised is False


def test_bad_config_values_name_the_field():
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        get_preset("nope")
    with pytest.raises(ValueError, match="loss"):
        get_preset("toy2d", loss="l1")
    with pytest.raises(ValueError, match="batch_size"):
        get_preset("toy2d", batch_size=0)
    with pytest.raises(ValueError, match="ema_decay"):
        get_preset("toy2d", ema_decay=1.0)
    with pytest.raises(ValueError, match=r"unknown TrainConfig field\(s\) \['lrate'\]"):
        get_preset("toy2d", lrate=1.0)
    with pytest.raises(ValueError, match="flip"):
        get_preset("toy2d", flip=True)


def test_config_hash_ignores_runtime_settings_only():
    c = get_preset("digits")
    assert config_hash(c) == config_hash(c.replace(device="cpu", progress=False, log_every=7, compile=True))
    assert config_hash(c) != config_hash(c.replace(lr=c.lr * 2))
    assert config_hash(c) != config_hash(c.replace(model_overrides={"dropout": 0.3}))


# ---- pieces of the loop ------------------------------------------------------------------------------------
def test_linear_warmup_then_constant():
    tr = Trainer(tiny_toy(lr=1e-3, warmup_steps=4))
    assert [tr.lr_at(s) for s in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])
    assert Trainer(tiny_toy(lr=1e-3, warmup_steps=0)).lr_at(0) == 1e-3


def test_ema_is_an_exponential_average():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    ema = EMA(net, decay=0.9)
    theta0 = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.shadow.weight, 0.9 * theta0 + 0.1 * (theta0 + 1.0))
    warm = EMA(net, decay=0.999, warmup=True)
    assert [warm.current_decay()] == [pytest.approx(0.1)]          # (1 + 0) / (10 + 0)
    for _ in range(10_000):
        warm.num_updates += 1
    assert warm.current_decay() == 0.999


@pytest.mark.parametrize("objective", ["vlb", "hybrid"])
def test_every_objective_trains(objective):
    recs = Trainer(tiny_toy(loss=objective, steps=2, log_every=1)).fit()
    assert len(recs) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in recs)


def test_training_lowers_the_loss():
    tr = Trainer(tiny_toy(steps=150, batch_size=128, lr=3e-3, log_every=25, model_overrides={"width": 64}))
    g = torch.Generator().manual_seed(0)
    x0 = next(tr.loader)[0]
    t, noise = torch.randint(1, 1001, (128,), generator=g), torch.randn(128, 2, generator=g)

    def held_out_loss() -> float:
        tr.train_model.eval()
        with torch.no_grad():
            return tr.loss(x0, t, noise).item()

    before = held_out_loss()
    recs = tr.fit()
    assert before > 0.8                       # an untrained eps-predictor: E|eps|^2 / d = 1 (output starts at 0)
    assert held_out_loss() < 0.5 * before
    assert all(r.keys() >= {"step", "loss", "grad_norm", "lr", "images_per_s"} for r in recs)


# ---- checkpoints and exact resume --------------------------------------------------------------------------
@pytest.mark.parametrize("make", [tiny_toy, tiny_digits], ids=["mlp-toy", "unet-digits-flip"])
def test_resume_is_bit_exact(tmp_path, make):
    cfg = make()
    full = Trainer(cfg, out_dir=str(tmp_path / "full"))
    full.fit()

    half = Trainer(cfg, out_dir=str(tmp_path / "half"))
    half.fit(cfg.steps // 2)
    del half
    resumed = Trainer(cfg, out_dir=str(tmp_path / "half"), resume=True)
    assert resumed.step == cfg.steps // 2
    resumed.fit()
    assert_bitwise_equal(params(full.model), params(resumed.model))
    assert_bitwise_equal(params(full.ema.shadow), params(resumed.ema.shadow))
    a = full.optimizer.state_dict()["state"]
    b = resumed.optimizer.state_dict()["state"]
    for k in a:
        assert torch.equal(a[k]["exp_avg_sq"], b[k]["exp_avg_sq"])

    # The test is sensitive to the dropout RNG: resuming with another RNG state gives other weights.
    other = Trainer(cfg, out_dir=str(tmp_path / "other"))
    other.fit(cfg.steps // 2)
    other = Trainer(cfg, out_dir=str(tmp_path / "other"), resume=True)
    torch.manual_seed(12345)
    other.fit()
    assert not torch.equal(torch.cat([p.flatten() for p in other.model.parameters()]),
                           torch.cat([p.flatten() for p in full.model.parameters()]))


def test_checkpoint_loads_with_weights_only(tmp_path):
    cfg = tiny_toy(steps=4, keep_every=2, ckpt_every=2)
    tr = Trainer(cfg, out_dir=str(tmp_path))
    tr.fit()
    raw = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert raw["step"] == 4 and TrainConfig.from_json(raw["config"]) == cfg
    assert set(raw) >= {"model", "ema", "optimizer", "rank_states", "config", "step"}
    (state,) = raw["rank_states"]
    assert state["torch_rng"].dtype == torch.uint8 and state["noise_rng"].dtype == torch.uint8
    assert state["loader"]["position"] == 4 * 32
    assert sorted(p.name for p in tmp_path.glob("ckpt_*.pt")) == ["ckpt_0000002.pt", "ckpt_0000004.pt"]
    assert torch.load(tmp_path / "ckpt_0000002.pt", weights_only=True)["step"] == 2
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.to_dict()
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [4]
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "latest.pt"
    atomic_save({"step": 1}, path)
    with pytest.raises(Exception):
        atomic_save({"step": 2, "bad": lambda: None}, path)  # a lambda cannot be pickled
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]
    if os.name == "posix":                                 # readable like any other file (mkstemp's are private)
        assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_an_existing_run_is_not_overwritten_and_resume_checks_the_config(tmp_path):
    cfg = tiny_toy(steps=2)
    Trainer(cfg, out_dir=str(tmp_path)).fit()
    with pytest.raises(FileExistsError, match="resume"):
        Trainer(cfg, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="lr"):
        Trainer(cfg.replace(lr=0.5), out_dir=str(tmp_path), resume=True)
    longer = Trainer(cfg.replace(steps=4, log_every=1), out_dir=str(tmp_path), resume=True)
    assert longer.step == 2 and longer.fit()[-1]["step"] == 4


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path):
    tr = Trainer(tiny_toy(steps=10, ckpt_every=2), out_dir=str(tmp_path))
    calls = {"n": 0}

    def poison(module, inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] >= 5 else output

    tr.model.register_forward_hook(poison)
    with pytest.raises(NonFiniteLossError, match="non-finite .* at step 5.*intact"):
        tr.fit()
    ckpt = read_checkpoint(tmp_path)
    assert ckpt["step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_huge_learning_rate_is_reported(tmp_path):
    tr = Trainer(tiny_toy(steps=20, lr=1e30, warmup_steps=0, grad_clip=0.0), out_dir=str(tmp_path))
    with pytest.raises(NonFiniteLossError, match="lr=1e\\+30"):
        tr.fit()
    assert not (tmp_path / "latest.pt").exists()


# ---- loading for sampling, and the cache -------------------------------------------------------------------
def test_load_checkpoint_returns_the_ema_network(tmp_path):
    cfg = tiny_toy(steps=3)
    tr = Trainer(cfg, out_dir=str(tmp_path))
    tr.fit()
    state = torch.get_rng_state()
    model, diffusion, config = load_checkpoint(tmp_path, variance="beta_tilde")
    assert torch.equal(state, torch.get_rng_state())
    assert not model.training and config == cfg.replace(variance="beta_tilde")
    assert diffusion.variance == "beta_tilde" and diffusion.clip_denoised is False and diffusion.T == 1000
    assert_bitwise_equal(params(model), params(tr.ema.shadow))
    raw, _, _ = load_checkpoint(tmp_path / "latest.pt", ema=False)
    assert_bitwise_equal(params(raw), params(tr.model))


def test_train_or_load_trains_once_and_keeps_the_callers_rng(tmp_path, monkeypatch):
    cfg = tiny_toy(steps=3)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    model, diffusion, config = train_or_load(cfg, cache_dir=tmp_path)
    assert torch.equal(before, torch.get_rng_state())
    assert config == cfg and (run_dir_for(cfg, tmp_path) / "latest.pt").exists()

    import ddpm_core.train.cache as cache

    class NoTraining:
        def __init__(self, *a, **k):
            raise AssertionError("a finished run must be loaded, not trained again")

    monkeypatch.setattr(cache, "Trainer", NoTraining)
    monkeypatch.setenv("DDPM_CORE_CACHE", str(tmp_path))
    again, _, _ = train_or_load(cfg.replace(progress=True))  # runtime fields do not change the key
    assert_bitwise_equal(params(model), params(again))


# ---- pictures ----------------------------------------------------------------------------------------------
def test_image_grid_layout_and_png(tmp_path):
    from PIL import Image

    x = torch.stack([torch.full((1, 2, 3), v) for v in (-1.0, 0.0, 1.0)])  # three 2x3 grey images
    grid = make_grid(x, nrow=2, padding=1, pad_value=0.0)
    assert grid.shape == (1 + 2 * 3, 1 + 2 * 4, 1) and grid.dtype == torch.uint8
    assert grid[1, 1, 0] == 0 and grid[1, 5, 0] == 128 and grid[4, 1, 0] == 255 and grid[0, 0, 0] == 128
    path = save_image_grid(torch.rand(5, 3, 8, 8) * 2 - 1, tmp_path / "g.png")
    with Image.open(path) as img:
        assert img.mode == "RGB" and img.size == (1 + 3 * 33, 1 + 2 * 33)  # 8x8 shown at 4x, 3 per row


def test_scatter_puts_points_where_they_belong(tmp_path):
    from PIL import Image

    path = save_scatter(torch.tensor([[0.0, 0.0], [2.0, 2.0], [9.0, 0.0]]), tmp_path / "s.png", lim=3.0, size=61)
    with Image.open(path) as img:
        assert img.size == (61, 61)
        assert img.getpixel((30, 30)) == (31, 119, 180)           # the origin is the centre
        assert img.getpixel((50, 10)) == (31, 119, 180)           # (2, 2): right and up
        assert img.getpixel((10, 50)) == (255, 255, 255)          # nothing at (-2, -2); (9, 0) is off the plot
    with pytest.raises(ValueError, match="points"):
        save_scatter(torch.zeros(3, 3), tmp_path / "bad.png")
