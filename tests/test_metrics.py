"""Tests of ddpm_core.metrics: Frechet distance against closed forms, KID / MMD / sliced Wasserstein against
brute force and known cases, the digits feature network and FD_digits, and the FID Inception architecture."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ddpm_core.data import load_digits, sample_toy
from ddpm_core.metrics import (FID_WEIGHTS_URL, DigitsClassifierConfig, FIDInceptionV3, RunningStatistics, classify_digits,
                               digits_feature_extractor, digits_fid, extract_features, feature_statistics,
                               fid_from_features, frechet_distance, inception_feature_extractor, inception_score,
                               kid, load_statistics, mmd, save_statistics, sliced_wasserstein,
                               train_digits_classifier)
from ddpm_core.metrics import digits_classifier as dc


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------------ Frechet

def test_frechet_diagonal_closed_form():
    rng = _rng()
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_commuting_covariances_and_torch_inputs():
    rng = _rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.01, 4, size=6), rng.uniform(0.01, 4, size=6)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(torch.tensor(mu1), torch.tensor(s1), torch.tensor(mu2), torch.tensor(s2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_frechet_identical_is_zero_and_one_dimensional_case():
    rng = _rng(2)
    f = rng.normal(size=(500, 8))
    mu, sigma = feature_statistics(f)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9
    assert abs(fid_from_features(f, f)) < 1e-9
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1, rel=1e-12)


def test_frechet_singular_covariances():
    v, w = np.array([1.0, 2.0]), np.array([-3.0, 0.5])  # rank-one covariances v v^T and w w^T
    expected = v @ v + w @ w - 2 * abs(v @ w)
    got = frechet_distance(np.zeros(2), np.outer(v, v), np.zeros(2), np.outer(w, w))
    assert got == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_frechet_matches_scipy_sqrtm_general_case():
    from scipy import linalg

    rng = _rng(3)
    a, b = rng.normal(size=(10, 10)), rng.normal(size=(10, 10))
    s1, s2 = a @ a.T + 0.1 * np.eye(10), b @ b.T
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_from_samples_approaches_population_value():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    y = torch.randn(20000, 3, generator=g, dtype=torch.float64) * 2 + 1  # N(1, 4 I)
    # closed form: |1|^2 * 3 + 3 * (1 - 2)^2 = 6
    assert fid_from_features(x, y) == pytest.approx(6.0, rel=0.05)
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="at least 2 rows"):
        feature_statistics(np.zeros((1, 4)))


def test_running_statistics_and_npz_round_trip(tmp_path):
    rng = _rng(7)
    f = rng.normal(size=(1000, 5)) * 0.1 + 1e3  # a large mean: the running sums must not cancel
    running = RunningStatistics()
    for chunk in np.array_split(f, 7):
        running.update(torch.tensor(chunk))
    mu, sigma = running.statistics()
    mu_ref, sigma_ref = feature_statistics(f)
    assert np.allclose(mu, mu_ref, rtol=1e-12) and np.allclose(sigma, sigma_ref, rtol=1e-8, atol=1e-12)
    save_statistics(tmp_path / "stats.npz", mu, sigma)
    mu2, sigma2 = load_statistics(tmp_path / "stats.npz")
    assert np.array_equal(mu2, mu) and np.array_equal(sigma2, sigma)
    np.savez(tmp_path / "bad.npz", mean=mu)
    with pytest.raises(ValueError, match="'mu' and 'sigma'"):
        load_statistics(tmp_path / "bad.npz")


# ------------------------------------------------------------------------------------------------ KID, MMD

def _mmd2_brute_force(x, y, k):
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_kid_matches_brute_force_unbiased_mmd():
    rng = _rng(4)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + 0.5
    poly = lambda u, v: (u @ v / 3 + 1) ** 3  # noqa: E731
    mean, std = kid(x, y, subsets=1, subset_size=6)  # one subset holding every row: no randomness left
    assert mean == pytest.approx(_mmd2_brute_force(x, y, poly), rel=1e-10) and std == 0.0


def test_kid_same_vs_shifted():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 16, generator=g), torch.randn(2000, 16, generator=g)
    same, same_std = kid(a, b, subsets=10, subset_size=300, generator=g)
    shifted, _ = kid(a, b + 0.5, subsets=10, subset_size=300, generator=g)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 20 * max(abs(same), same_std)
    with pytest.raises(ValueError, match="subset_size"):
        kid(a, b, subset_size=5000)


def test_mmd_brute_force_and_toys():
    rng = _rng(5)
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(7, 2))
    bw = (0.5, 1.0)
    rbf = lambda u, v: sum(math.exp(-np.sum((u - v) ** 2) / (2 * s * s)) for s in bw)  # noqa: E731
    assert mmd(x, y, bandwidths=bw) == pytest.approx(_mmd2_brute_force(x, y, rbf), rel=1e-10)
    assert mmd(x, y, bandwidths=bw, unbiased=False) >= 0
    g = torch.Generator().manual_seed(0)
    for name in ("swiss_roll", "checkerboard"):
        p, q = sample_toy(name, 1000, generator=g), sample_toy(name, 1000, generator=g)
        moved = q + torch.tensor([0.3, 0.0])
        assert abs(mmd(p, q)) < 0.2 * mmd(p, moved)
        assert mmd(p, q, kernel="polynomial") < mmd(p, moved, kernel="polynomial")
    with pytest.raises(ValueError, match="kernel"):
        mmd(x, y, kernel="laplace")


# ------------------------------------------------------------------------------------------------ sliced W

def test_sliced_wasserstein_translation_oracle():
    g = torch.Generator().manual_seed(0)
    x = sample_toy("two_moons", 1000, generator=g)
    c = torch.tensor([0.6, -0.8])
    # translating by c moves every 1-D projection theta.x by theta.c: SW_2^2 = E[(theta.c)^2] = |c|^2 / D
    sw = sliced_wasserstein(x, x + c, n_projections=4000, generator=g)
    assert sw == pytest.approx(math.sqrt(1.0 / 2), rel=0.03)
    assert sliced_wasserstein(x, x, generator=g) == pytest.approx(0.0, abs=1e-12)


def test_sliced_wasserstein_unequal_sizes_matches_scipy_1d():
    from scipy.stats import wasserstein_distance

    rng = _rng(6)
    u, v = rng.normal(size=7), rng.normal(size=4) + 0.3
    # in 1-D every direction is +-1, so the sliced distance is the ordinary W_1
    got = sliced_wasserstein(u[:, None], v[:, None], n_projections=3, p=1)
    assert got == pytest.approx(wasserstein_distance(u, v), rel=1e-10)


def test_sliced_wasserstein_same_toy_vs_shifted():
    g = torch.Generator().manual_seed(1)
    p, q = sample_toy("eight_gaussians", 3000, generator=g), sample_toy("eight_gaussians", 3000, generator=g)
    same = sliced_wasserstein(p, q, generator=torch.Generator().manual_seed(0))
    moved = sliced_wasserstein(p, q + 0.5, generator=torch.Generator().manual_seed(0))
    assert same < 0.25 * moved


def test_inception_score_extremes():
    c = 10
    onehot = torch.eye(c).repeat(30, 1)  # every image confidently classified, classes balanced
    assert inception_score(onehot, splits=3)[0] == pytest.approx(c, rel=1e-9)
    uniform = torch.full((50, c), 1 / c)
    assert inception_score(uniform, splits=5)[0] == pytest.approx(1.0, rel=1e-9)
    with pytest.raises(ValueError, match="softmax"):
        inception_score(torch.randn(10, 3))


# ------------------------------------------------------------------------------------------------ digits FD

@pytest.fixture(scope="session")
def digits_extractor(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DDPM_CORE_CACHE", str(tmp_path_factory.mktemp("ddpm_core_cache")))
        yield digits_feature_extractor()


def test_digits_classifier_accuracy_and_cache(digits_extractor, monkeypatch):
    print(f"digits classifier test accuracy: {digits_extractor.test_accuracy:.4f}")
    assert digits_extractor.test_accuracy > 0.95
    x, y = load_digits("test").tensors
    with torch.no_grad():
        acc = (digits_extractor.net(x).argmax(1) == y).double().mean().item()
    assert acc == pytest.approx(digits_extractor.test_accuracy)
    feats = digits_extractor(x[:5])
    assert feats.shape == (5, DigitsClassifierConfig().feature_dim)
    # the cached file is reused: reloading must not train again
    path = dc._cache_path(DigitsClassifierConfig())
    assert path.startswith(str(dc.cache_dir()))
    monkeypatch.setattr(dc, "_EXTRACTORS", {})
    monkeypatch.setattr(dc, "train_digits_classifier", lambda *a, **k: pytest.fail("retrained despite cache"))
    rng_state = torch.random.get_rng_state()
    again = dc.digits_feature_extractor()
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert again is not digits_extractor and again.test_accuracy == digits_extractor.test_accuracy
    assert torch.equal(again(x[:5]), feats)


def test_classify_digits_labels_held_out_digits(digits_extractor):
    x, y = load_digits("test").tensors
    labels = classify_digits(x)
    assert labels.dtype == torch.int64 and labels.shape == (360,)
    assert (labels == y).double().mean().item() == pytest.approx(digits_extractor.test_accuracy)
    with pytest.raises(ValueError, match=r"shape \(N, 1, 8, 8\)"):
        classify_digits(x[:, 0])
    with pytest.raises(TypeError, match="floating-point"):
        classify_digits(y)


def test_digits_training_is_deterministic():
    cfg = DigitsClassifierConfig(epochs=1)
    state = torch.random.get_rng_state()
    net_a, acc_a = train_digits_classifier(cfg)
    net_b, acc_b = train_digits_classifier(cfg)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    assert acc_a == acc_b
    for (k, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(a, b), k


def test_digits_fid_real_beats_corrupted(digits_extractor):
    g = torch.Generator().manual_seed(0)
    train = load_digits("train").tensors[0]
    real = train[torch.randperm(len(train), generator=g)[:360]]  # real digits the reference has not seen
    kernel = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    blurred = F.conv2d(F.pad(real, (1, 1, 1, 1), mode="replicate"), kernel[None, None])
    shuffled = torch.stack([im.flatten()[torch.randperm(64, generator=g)].view(1, 8, 8) for im in real])
    fd_real, fd_blur, fd_shuffled = digits_fid(real), digits_fid(blurred), digits_fid(shuffled)
    print(f"FD_digits vs test split: real {fd_real:.3f}, blurred {fd_blur:.3f}, pixel-shuffled {fd_shuffled:.3f}")
    assert fd_blur > 5 * fd_real and fd_shuffled > 5 * fd_real
    assert digits_fid(real, reference=real) == pytest.approx(0.0, abs=1e-6)
    assert digits_fid(real, reference="train") < fd_real  # a subset of the reference itself is closer still
    with pytest.raises(ValueError, match="shape"):
        digits_fid(torch.zeros(10, 3, 8, 8))
    with pytest.raises(ValueError, match="reference"):
        digits_fid(real, reference="validation")


# ------------------------------------------------------------------------------------------------ Inception

_TOP_LEVEL = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
              "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
              "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc"]


def _random_inception(seed=0) -> FIDInceptionV3:
    """Random weights scaled so activations neither vanish nor explode (He init, random BN statistics)."""
    torch.manual_seed(seed)
    model = FIDInceptionV3()
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def test_inception_architecture_matches_pytorch_fid_layout():
    model = FIDInceptionV3()
    assert [name for name, _ in model.named_children()] == _TOP_LEVEL
    # torchvision's Inception-v3 has 27,161,264 parameters; without AuxLogits (3,326,696) and with 1008
    # instead of 1000 classes (+8 * 2049) this is 23,850,960: the FID Inception of pytorch-fid
    assert sum(p.numel() for p in model.parameters()) == 23_850_960
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["Conv2d_1a_3x3.conv.weight"] == (32, 3, 3, 3)
    assert shapes["Conv2d_1a_3x3.bn.running_var"] == (32,)
    assert shapes["Mixed_5b.branch_pool.conv.weight"] == (32, 192, 1, 1)
    assert shapes["Mixed_5b.branch5x5_2.conv.weight"] == (64, 48, 5, 5)
    assert shapes["Mixed_6a.branch3x3.conv.weight"] == (384, 288, 3, 3)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["Mixed_7a.branch7x7x3_4.conv.weight"] == (192, 192, 3, 3)
    assert shapes["Mixed_7b.branch3x3dbl_3b.bn.weight"] == (384,)
    assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)
    assert shapes["fc.weight"] == (1008, 2048) and shapes["fc.bias"] == (1008,)
    assert not any("AuxLogits" in k for k in shapes)
    assert len([k for k in shapes if k.endswith(".conv.weight")]) == 94


def test_inception_pool_branches_follow_the_fid_variant():
    torch.manual_seed(0)
    model = FIDInceptionV3().eval()
    seen = {}

    def grab(name):
        return lambda module, args: seen.__setitem__(name, args[0])

    for name in ("Mixed_5b", "Mixed_6b", "Mixed_7b", "Mixed_7c"):
        getattr(model, name).branch_pool.register_forward_pre_hook(grab(name))
    x35, x17, x8 = torch.rand(1, 192, 7, 7), torch.rand(1, 768, 5, 5), torch.rand(1, 1280, 4, 4)
    x8c = torch.rand(1, 2048, 4, 4)
    with torch.no_grad():
        model.Mixed_5b(x35), model.Mixed_6b(x17), model.Mixed_7b(x8), model.Mixed_7c(x8c)
    avg = lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)  # noqa: E731
    assert torch.allclose(seen["Mixed_5b"], avg(x35))
    assert torch.allclose(seen["Mixed_6b"], avg(x17))
    assert torch.allclose(seen["Mixed_7b"], avg(x8))
    assert torch.equal(seen["Mixed_7c"], F.max_pool2d(x8c, 3, 1, 1))
    assert not torch.allclose(seen["Mixed_5b"], F.avg_pool2d(x35, 3, 1, 1))  # zero padding is not averaged in


def test_inception_features_and_weights_round_trip(tmp_path):
    model = _random_inception()
    g = torch.Generator().manual_seed(0)
    big = torch.rand(1, 3, 299, 299, generator=g) * 2 - 1
    small = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        f_big, f_small, f_gray = model(big), model(small), model(small[:, :1])
        f_up = model(F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False))
    assert f_big.shape == (1, 2048) and f_small.shape == (1, 2048) and f_gray.shape == (1, 2048)
    assert torch.isfinite(f_big).all() and f_big.std() > 1e-3 and (f_big >= 0).all()  # averages of ReLUs
    assert torch.allclose(f_up, f_small, atol=1e-5)  # small inputs are resized bilinearly to 299 x 299
    assert not torch.allclose(f_gray, f_small)
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(model.state_dict(), path)
    loaded = inception_feature_extractor(path)
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    with torch.no_grad():
        assert torch.allclose(loaded.logits(small), model.fc(f_small), rtol=1e-5, atol=1e-6)
    # files written by old torch versions have no BatchNorm num_batches_tracked entries: they load too
    old = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    assert torch.equal(extract_features(inception_feature_extractor(tmp_path / "old.pth"), small[:, :1]), f_gray)


def test_inception_missing_or_wrong_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("DDPM_CORE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError) as err:
        inception_feature_extractor()
    msg = str(err.value)
    assert FID_WEIGHTS_URL in msg and str(tmp_path / "cache" / "pt_inception-2015-12-05-6726825d.pth") in msg
    with pytest.raises(FileNotFoundError, match="pt_inception"):
        inception_feature_extractor(tmp_path / "nope.pth")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="not the pytorch-fid FID Inception"):
        inception_feature_extractor(tmp_path / "wrong.pth")
