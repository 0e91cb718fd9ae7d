"""Class conditioning and guidance against closed forms: the exact Gaussian-mixture oracle (class posterior, exact
conditional eps), Bayes' rule on scores, and exact reproduction of the unguided samplers at scale 0."""
import json
import math
from pathlib import Path

import pytest
import torch

import ddpm_core as dc
from ddpm_core import GaussianDiffusion, Schedule
from ddpm_core.guidance import (ClassifierFreeGuidance, ClassifierGuidance, bind_labels, cfg_eps,
                                classifier_guided_eps, mixture_classifier, mixture_conditional)
from ddpm_core.mixtures import GaussianMixture, named_mixture
from ddpm_core.nn import MLPConfig, MLPDenoiser, UNet, UNetConfig, build_model
from ddpm_core.train import TrainConfig, Trainer, get_preset
from ddpm_core.train.checkpoint import read_checkpoint
from ddpm_core.train.config import config_hash
from ddpm_core.train.pretrained import find_pretrained

MODELS = Path(__file__).resolve().parent.parent / "book" / "models"
SMALL_UNET = dict(image_size=8, in_channels=1, out_channels=1, ch=16, ch_mult=(1, 2), num_res_blocks=1,
                  attn_resolutions=(4,), dropout=0.0, num_groups=8)


# ---- networks ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["unet", "mlp"])
def test_unconditional_network_is_unchanged_and_conditional_adds_only_the_embedding(kind):
    def build(k):
        torch.manual_seed(0)
        return UNet(UNetConfig(**SMALL_UNET, num_classes=k)) if kind == "unet" else MLPDenoiser(MLPConfig(num_classes=k))
    plain, cond = build(0), build(10)
    assert not any("class_embed" in n for n in plain.state_dict())
    extra = set(cond.state_dict()) - set(plain.state_dict())
    assert extra == {"class_embed.weight"}
    assert cond.class_embed.weight.shape[0] == 11                     # 10 classes + the null label
    for name, v in plain.state_dict().items():                         # the same initial weights otherwise
        torch.testing.assert_close(cond.state_dict()[name], v, rtol=0, atol=0)


def test_labels_change_the_output_and_none_is_the_null_label():
    torch.manual_seed(0)
    net = MLPDenoiser(MLPConfig(num_classes=3))
    torch.nn.init.normal_(net.proj_out.weight)                         # the zero-initialised output would hide y
    x, t = torch.randn(5, 2), torch.tensor([1, 2, 3, 400, 1000])
    null = net(x, t, torch.full((5,), 3))
    torch.testing.assert_close(net(x, t), null, rtol=0, atol=0)
    assert (net(x, t, torch.zeros(5, dtype=torch.long)) - null).abs().max() > 1e-3


@pytest.mark.parametrize("y, err, match", [
    (torch.zeros(4), TypeError, "int64"),
    (torch.tensor([0, 1, 2, 11]), ValueError, "0..10"),
    (torch.tensor([0, 1, 2, -1]), ValueError, "0..10"),
    (torch.zeros(3, dtype=torch.long), ValueError, r"shape \(B,\)"),
    ([0, 1, 2, 3], TypeError, "list"),
])
def test_bad_labels_are_rejected(y, err, match):
    net = UNet(UNetConfig(**SMALL_UNET, num_classes=10))
    with pytest.raises(err, match=match):
        net(torch.randn(4, 1, 8, 8), torch.ones(4, dtype=torch.long), y)


def test_labels_for_an_unconditional_network_and_bad_num_classes_are_rejected():
    with pytest.raises(ValueError, match="unconditional"):
        MLPDenoiser()(torch.randn(2, 2), torch.ones(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="num_classes"):
            UNetConfig(**SMALL_UNET, num_classes=bad)


# ---- shipped models and the configuration hash ---------------------------------------------------------------
def test_every_shipped_model_is_found_by_the_hash_of_its_config():
    files = sorted(MODELS.glob("*.pt"))
    assert files
    for path in files:
        config = TrainConfig.from_dict(json.loads(read_checkpoint(path)["config"])
                                       if isinstance(read_checkpoint(path)["config"], str)
                                       else read_checkpoint(path)["config"])
        assert path.name == f"{config.name}-{config_hash(config)}.pt"
        if config.name in dc.train.PRESETS:
            assert find_pretrained(get_preset(config.name), MODELS) == path


def test_hash_of_existing_presets_is_pinned_and_label_dropout_enters_only_when_set():
    assert config_hash(get_preset("digits")) == "058496ac8475"
    assert config_hash(get_preset("mixture2d")) == "2c7e79ba1ff5"
    cond = get_preset("digits_cond")
    assert config_hash(cond) != config_hash(cond.replace(label_dropout=0.1))
    with pytest.raises(ValueError, match="num_classes"):
        get_preset("digits", label_dropout=0.1)
    with pytest.raises(ValueError, match="label_dropout"):
        get_preset("digits_cond", label_dropout=1.5)


def test_trainer_drops_labels_with_probability_label_dropout():
    cfg = get_preset("mixture2d", model_overrides={"num_classes": 3}, batch_size=4000, progress=False, device="cpu")
    labels = torch.randint(0, 3, (4000,), generator=torch.Generator().manual_seed(0))
    for p in (0.0, 0.2, 1.0):
        tr = Trainer(cfg.replace(label_dropout=p))
        y = tr._train_labels(labels)
        dropped = y == 3
        assert (y[~dropped] == labels[~dropped]).all()
        assert abs(dropped.double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 4000) + 1e-12
    with pytest.raises(ValueError, match="labels in 0..2"):
        tr._train_labels(torch.full((4000,), -1))


def test_conditional_training_step_runs_and_unlabelled_data_is_rejected():
    cfg = get_preset("mixture2d", model_overrides={"num_classes": 3}, label_dropout=0.2, steps=2, batch_size=32,
                     toy_size=256, progress=False, device="cpu")
    Trainer(cfg).fit()
    with pytest.raises(ValueError, match="labels"):
        Trainer(get_preset("toy2d", model_overrides={"num_classes": 3}, steps=1, batch_size=8, toy_size=64,
                           progress=False, device="cpu")).fit()


def test_loss_with_labels_is_the_mse_of_the_conditional_network():
    torch.manual_seed(0)
    net = MLPDenoiser(MLPConfig(num_classes=3))
    torch.nn.init.normal_(net.proj_out.weight)
    diffusion = GaussianDiffusion(Schedule.linear(), clip_denoised=False)
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    t, y = torch.tensor([1, 3, 100, 500, 999, 1000]), torch.tensor([0, 1, 2, 3, 0, 1])
    ab = Schedule.linear().alpha_bars[t].float()[:, None]
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    want = ((net(xt, t, y) - noise) ** 2).mean()
    torch.testing.assert_close(dc.loss(diffusion, net, x0, t=t, noise=noise, y=y), want)
    assert (dc.loss(diffusion, net, x0, t=t, noise=noise) - want).abs() > 1e-4   # y=None is the null label
    with pytest.raises(ValueError, match="y must"):
        dc.loss(diffusion, net, x0, t=t, noise=noise, y=y[:3])


# ---- guidance against the exact mixture ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def exact():
    mix = named_mixture("gaussian_mixture")
    sched = Schedule.linear()
    x = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 1.5
    t = torch.randint(1, 1001, (64,), generator=torch.Generator().manual_seed(4))
    return mix, sched, x, t


@pytest.mark.parametrize("k", [0, 1, 2])
def test_classifier_guidance_at_scale_one_is_the_exact_conditional_eps(exact, k):
    mix, sched, x, t = exact
    guided = ClassifierGuidance(mix.eps_oracle(sched), mixture_classifier(mix, sched), k, 1.0, sched)(x, t)
    torch.testing.assert_close(guided, mixture_conditional(mix, k).eps_oracle(sched)(x, t), rtol=1e-9, atol=1e-9)


def test_classifier_gradient_is_the_difference_of_conditional_and_marginal_scores(exact):
    """Bayes' rule on scores with the closed-form scores: grad log p(y|x_t) = grad log p(x_t|y) - grad log p(x_t)."""
    mix, sched, x, t = exact
    ab = sched.alpha_bars[t]
    for k in range(3):
        grad = ClassifierGuidance(mix.eps_oracle(sched), mixture_classifier(mix, sched), k, 1.0, sched
                                  ).grad_log_prob(x, t)
        comp = mix.means[k] * ab[:, None].sqrt()
        var = ab[:, None] * mix.stds[k] ** 2 + 1 - ab[:, None]
        torch.testing.assert_close(grad, -(x - comp) / var - mix.score(x, ab), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("w", [0.5, 1.0, 3.0])
def test_cfg_at_w_equals_classifier_guidance_at_one_plus_w(exact, w):
    mix, sched, x, t = exact
    for k in range(3):
        cfg = ClassifierFreeGuidance(mixture_conditional(mix, k).eps_oracle(sched), mix.eps_oracle(sched), w)(x, t)
        cg = ClassifierGuidance(mix.eps_oracle(sched), mixture_classifier(mix, sched), k, 1.0 + w, sched)(x, t)
        torch.testing.assert_close(cfg, cg, rtol=1e-9, atol=1e-9)


def test_combination_formulas_and_their_scale_zero():
    g = torch.Generator().manual_seed(0)
    a, b, gr = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    torch.testing.assert_close(cfg_eps(a, b, 2.0), 3 * a - 2 * b)
    assert cfg_eps(a, b, 0.0) is a
    ab = torch.tensor([[0.19], [0.64], [1.0]])
    torch.testing.assert_close(classifier_guided_eps(a, gr, ab, 2.0), a - 2.0 * torch.tensor([[0.9], [0.6], [0.0]]) * gr)
    assert classifier_guided_eps(a, gr, ab, 0.0) is a
    with pytest.raises(ValueError, match="w must be a finite number"):
        cfg_eps(a, b, float("nan"))
    with pytest.raises(ValueError, match="same shape"):
        cfg_eps(a, b[:2], 1.0)
    with pytest.raises(ValueError, match="alpha_bar"):
        classifier_guided_eps(a, gr, ab + 1, 1.0)


def _tiny_conditional():
    torch.manual_seed(0)
    net = MLPDenoiser(MLPConfig(num_classes=3, width=16, depth=1))
    for m in net.modules():                       # the zero-initialised output layers would hide the labels
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, std=0.3)
    return net.eval()


@pytest.mark.parametrize("sampler, steps", [("ancestral", None), ("ancestral", 20), ("ddim", 20)])
def test_scale_zero_reproduces_the_plain_conditional_and_unguided_samplers(sampler, steps):
    net = _tiny_conditional()
    diffusion = GaussianDiffusion(Schedule.linear(T=100), clip_denoised=False)
    y = torch.tensor([0, 1, 2, 1, 0, 2])
    kw = dict(sampler=sampler, steps=steps)
    ref = dc.sample(bind_labels(net, y), diffusion, (6, 2), generator=torch.Generator().manual_seed(5), **kw)
    got = dc.sample(net, diffusion, (6, 2), y=y, guidance_scale=0.0, generator=torch.Generator().manual_seed(5), **kw)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    guided = dc.sample(net, diffusion, (6, 2), y=y, guidance_scale=2.0, generator=torch.Generator().manual_seed(5), **kw)
    assert (guided - ref).abs().max() > 1e-3
    # classifier guidance at s = 0 is the unguided (null-label) model, and never calls the classifier
    def boom(x, t):
        raise AssertionError("called")
    plain = dc.sample(net, diffusion, (6, 2), generator=torch.Generator().manual_seed(5), **kw)
    got = dc.sample(net, diffusion, (6, 2), y=y, classifier=boom, guidance_scale=0.0,
                    generator=torch.Generator().manual_seed(5), **kw)
    torch.testing.assert_close(got, plain, rtol=0, atol=0)


def test_sample_rejects_inconsistent_guidance_arguments():
    net = _tiny_conditional()
    diffusion = GaussianDiffusion(Schedule.linear(T=10), clip_denoised=False)
    with pytest.raises(ValueError, match="needs class labels"):
        dc.sample(net, diffusion, (2, 2), guidance_scale=1.0)
    with pytest.raises(ValueError, match="target classes"):
        dc.sample(net, diffusion, (2, 2), classifier=lambda x, t: x, guidance_scale=1.0)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        dc.sample(net, diffusion, (2, 2), y=torch.tensor([0, 1, 2]), guidance_scale=1.0)
    with pytest.raises(ValueError, match="finite"):
        dc.sample(net, diffusion, (2, 2), y=0, guidance_scale=float("inf"))


def _guided_samples(mix, sched, k, s, n=3000, seed=0):
    diffusion = GaussianDiffusion(sched, clip_denoised=False, variance="beta_tilde")
    return dc.sample(mix.eps_oracle(sched), diffusion, (n, 2), y=k, classifier=mixture_classifier(mix, sched),
                     guidance_scale=s, generator=torch.Generator().manual_seed(seed), device="cpu").double()


def test_guided_samples_match_p_x_given_y_at_scale_one_and_sharpen_beyond():
    mix, sched, k, n = named_mixture("gaussian_mixture"), Schedule.linear(T=1000), 0, 3000
    comp = mixture_conditional(mix, k)
    x1 = _guided_samples(mix, sched, k, 1.0, n)
    se = comp.stds[0] / math.sqrt(n)
    assert ((x1.mean(0) - comp.means[0]).abs() < 4 * se).all()
    var = x1.var(0)
    assert ((var / comp.stds[0] ** 2 - 1).abs() < 4 * math.sqrt(2 / n)).all()
    x4 = _guided_samples(mix, sched, k, 4.0, n)
    assert x4.var(0).sum() < 0.92 * comp.stds[0].pow(2).sum()          # sharper than p(x | y) (SE ~ 3%)
    logp = lambda x: mix.posterior(x, 1.0)[:, k].log().mean()
    assert logp(x4) > logp(x1)                                           # and more confidently class k
