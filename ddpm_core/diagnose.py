"""``diagnose``: a check-up of a DDPM model, its diffusion and its data, with findings in plain words.

It measures what gives the classic mistakes away (book chapter "When DDPM goes wrong"):

* the data's range and scale (DDPM's prior N(0, I) and the x_0 clipping assume data in [-1, 1]);
* the prior term L_T = KL(q(x_T | x_0) || N(0, I)) of Eq. (5) in bits/dim (large: T too small or data too large);
* L_simple (Eq. 14) per bucket of t against the *Gaussian baseline*: the loss of the exact eps-predictor for a
  Gaussian with the data's mean and covariance, in closed form (:func:`gaussian_baseline_loss`). A trained network
  should beat it at every t; one that does not has not learned (too high a learning rate, wrong data scale, ...);
* the scale of the network's output per t (an eps-predictor's output has standard deviation <= 1);
* non-finite parameters, outputs or gradients; float16 parameters (overflow above 65504);
* train/eval mode (dropout active at sampling: two calls on the same input differ);
* optionally, samples the reader drew: non-finite values, their scale and spread against the data's.

Time index: the paper's t = 1..T.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from .diffusion import GaussianDiffusion
from .likelihood import prior_bpd
from .objectives import loss as _objective
from .schedules import Schedule

__all__ = ["Finding", "Diagnosis", "diagnose", "gaussian_baseline_loss", "gaussian_full_eps_oracle",
           "data_mean_cov"]

# thresholds (documented in the findings' text)
PRIOR_BPD_LIMIT = 1e-3        # L_T above this (bits/dim): x_T is visibly not N(0, I)
OUTPUT_STD_LIMIT = 2.0        # an eps-predictor's output std should stay near or below 1
STOCHASTIC_LIMIT = 1e-6       # relative difference of two forward passes on the same input
BASELINE_MARGIN = 0.05        # loss above the Gaussian baseline by more than this (and 4 standard errors) is flagged
SAMPLE_STD_RATIO = (0.5, 2.0)  # sample std / data std outside this range is flagged
NN_RATIO = (0.5, 2.0)         # median nearest-neighbour distance among samples / among as many data points


@dataclass
class Finding:
    """One finding: ``code`` (a stable identifier, e.g. ``"data_range_01"``), ``severity`` ("error", "warning" or
    "info") and ``message`` (plain words: what was measured, what it means, the fix)."""

    code: str
    severity: str
    message: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.message}"


@dataclass
class Diagnosis:
    """What :func:`diagnose` measured. Tensors are float64 on the CPU; per-bucket quantities have shape (n_buckets,)
    and bucket ``i`` covers t in ``buckets[i][0]..buckets[i][1]`` (inclusive)."""

    data_min: float
    data_max: float
    data_mean: float
    data_std: float
    prior_bpd: float
    buckets: list[tuple[int, int]]
    loss: torch.Tensor
    baseline: torch.Tensor
    output_std: torch.Tensor
    training_mode: bool
    stochastic_forward: float
    nonfinite_params: list[str]
    nonfinite_grads: list[str]
    half_params: list[str]
    samples: Optional[dict] = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def codes(self) -> set[str]:
        """The codes of all findings."""
        return {f.code for f in self.findings}

    @property
    def ok(self) -> bool:
        """True when there is no warning or error."""
        return all(f.severity == "info" for f in self.findings)

    def table(self) -> str:
        """The per-t-bucket table: loss, Gaussian baseline, output std."""
        lines = [f"{'t':>11}  {'loss':>8}  {'Gaussian':>8}  {'out std':>8}"]
        for (lo, hi), l, b, s in zip(self.buckets, self.loss.tolist(), self.baseline.tolist(),
                                     self.output_std.tolist()):
            lines.append(f"{lo:>5}..{hi:<5}  {l:8.3f}  {b:8.3f}  {s:8.3f}")
        return "\n".join(lines)

    def __str__(self) -> str:
        head = (f"data: range [{self.data_min:.3g}, {self.data_max:.3g}], mean {self.data_mean:.3g}, "
                f"std {self.data_std:.3g}; prior term L_T = {self.prior_bpd:.3g} bits/dim; "
                f"model in {'training' if self.training_mode else 'eval'} mode")
        body = [str(f) for f in self.findings] or ["[ok] no problem found"]
        return "\n".join([head, self.table(), *body])


def data_mean_cov(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of ``data`` (N, ...) flattened to (N, D), in float64."""
    x = data.reshape(data.shape[0], -1).double()
    if x.shape[0] < 2:
        raise ValueError(f"data must hold at least 2 examples, got {x.shape[0]}")
    mean = x.mean(0)
    xc = x - mean
    return mean, xc.T @ xc / (x.shape[0] - 1)


def _check_cov(cov: torch.Tensor) -> torch.Tensor:
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be a square (D, D) matrix, got shape {tuple(cov.shape)}")
    return (cov + cov.T) / 2


def gaussian_baseline_loss(schedule: Schedule, cov: torch.Tensor) -> torch.Tensor:
    """Per-dimension L_simple (Eq. 14) of the exact eps-predictor for x_0 ~ N(m, cov), for every t: shape (T + 1,),
    float64, entry 0 padding (= 0).

    With x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps, E[eps | x_t] = sqrt(1 - ab) (ab cov + (1 - ab) I)^{-1} (x_t - sqrt(ab) m)
    and the remaining error is (1/D) sum_i ab l_i / (ab l_i + 1 - ab) over the eigenvalues l_i of ``cov``. It does
    not depend on m. This is the loss of a model that knows only the data's mean and covariance.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    lam = torch.linalg.eigvalsh(_check_cov(cov)).clamp(min=0.0)
    ab = schedule.alpha_bars[:, None]
    out = (ab * lam / (ab * lam + 1.0 - ab).clamp(min=1e-300)).mean(1)
    out[0] = 0.0
    return out


def gaussian_full_eps_oracle(schedule: Schedule, mean: torch.Tensor, cov: torch.Tensor
                             ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The exact eps-predictor ``model(x_t, t)`` for x_0 ~ N(mean, cov) (full covariance; data of shape (B, ...) is
    flattened to (B, D)): E[eps | x_t] = sqrt(1 - ab_t) (ab_t cov + (1 - ab_t) I)^{-1} (x_t - sqrt(ab_t) mean)."""
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a ddpm_core Schedule, got {type(schedule).__name__}")
    cov = _check_cov(cov)
    mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
    if mean.numel() != cov.shape[0]:
        raise ValueError(f"mean has {mean.numel()} entries but cov is {tuple(cov.shape)}")
    lam, vecs = torch.linalg.eigh(cov)
    lam = lam.clamp(min=0.0)

    def model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = schedule.check_t(t)
        x = x_t.reshape(x_t.shape[0], -1).double().cpu()
        if x.shape[1] != mean.numel():
            raise ValueError(f"x_t has {x.shape[1]} dimensions per example, the Gaussian {mean.numel()}")
        ab = schedule.alpha_bars[t.cpu()][:, None]
        z = (x - ab.sqrt() * mean) @ vecs                       # coordinates in the eigenbasis
        z = (1 - ab).sqrt() * z / (ab * lam + 1 - ab)
        return (z @ vecs.T).reshape(x_t.shape).to(device=x_t.device, dtype=x_t.dtype)

    return model


def _nn_median(x: torch.Tensor) -> torch.Tensor:
    """Median distance from each row of x (M, D) to its nearest other row."""
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    return d.min(1).values.median()


def _buckets(T: int, n: int) -> list[tuple[int, int]]:
    n = max(1, min(n, T))
    edges = [round(i * T / n) for i in range(n + 1)]
    return [(edges[i] + 1, edges[i + 1]) for i in range(n)]


def _first_param(model: nn.Module) -> Optional[torch.Tensor]:
    return next(iter(model.parameters()), None) if isinstance(model, nn.Module) else None


def diagnose(model: Callable, diffusion: GaussianDiffusion, data: torch.Tensor, *, samples: Optional[torch.Tensor] = None,
             n_buckets: int = 10, n: int = 2048, per_bucket: int = 512, check_gradients: bool = True,
             generator: Optional[torch.Generator] = None, verbose: bool = True) -> Diagnosis:
    """Check ``model`` (called as ``model(x_t, t)``, see
    :meth:`~ddpm_core.diffusion.GaussianDiffusion.p_mean_variance`), ``diffusion`` and the training ``data`` (N, ...)
    exactly as they are passed to training; print the findings (``verbose``) and return a :class:`Diagnosis`.

    Args:
        samples: optional samples (M, ...) the reader drew; compared with the data (non-finite values, std, spread).
        n_buckets: number of equal t ranges for the per-t table.
        n: data examples used (the first ``n``), per_bucket: (x_0, t, eps) draws per bucket for the loss.
        check_gradients: run one backward pass of L_simple and look for non-finite gradients (``.grad`` of the
            parameters is left as it was).
        generator: a CPU ``torch.Generator`` for the draws (default: seeded with 0, so the report is reproducible).
    The model's mode (train/eval) is left unchanged; it is evaluated in the mode it is in, as a sampler would.
    """
    if not isinstance(diffusion, GaussianDiffusion):
        raise TypeError(f"diffusion must be a ddpm_core GaussianDiffusion, got {type(diffusion).__name__}")
    if not isinstance(data, torch.Tensor) or data.ndim < 2 or data.shape[0] < 2:
        raise ValueError("data must be a tensor of shape (N, ...) with N >= 2 examples, got "
                         f"{getattr(data, 'shape', type(data).__name__)}")
    for name, value in (("n_buckets", n_buckets), ("n", n), ("per_bucket", per_bucket)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    p = _first_param(model)
    device = p.device if p is not None else data.device
    findings: list[Finding] = []
    x64 = data.detach().double().cpu()
    finite = torch.isfinite(x64)
    if not finite.all():
        findings.append(Finding("data_nonfinite", "error", f"{int((~finite).sum())} data values are NaN or inf: "
                                "fix the data pipeline before training."))
        x64 = torch.where(finite, x64, torch.zeros_like(x64))
    x_all = x64[:n].to(device=device, dtype=torch.float32)
    dmin, dmax, dmean, dstd = (float(x64.min()), float(x64.max()), float(x64.mean()), float(x64.std()))

    # ---- data range and scale -------------------------------------------------------------------------------
    if dmax > 2.0 and dmin >= 0.0 and dmax <= 255.0:
        findings.append(Finding("data_range_255", "error",
                                f"data lies in [{dmin:.3g}, {dmax:.3g}]: pixel values 0..255, not [-1, 1]. The noise "
                                "N(0, I) is tiny next to them, x_T is far from N(0, I) and clipping cuts every "
                                "sample. Fix: x = x / 127.5 - 1."))
    elif dmin >= 0.0 and dmax <= 1.0:
        findings.append(Finding("data_range_01", "warning",
                                f"data lies in [{dmin:.3g}, {dmax:.3g}] (mean {dmean:.3g}), not [-1, 1]: DDPM's noise "
                                "and its x_0 clipping assume data centred in [-1, 1]. Fix: x = 2 * x - 1."))
    elif dstd > 3.0 or abs(dmean) > 3.0:
        findings.append(Finding("data_scale", "error",
                                f"data has mean {dmean:.3g} and std {dstd:.3g}: far from the unit scale of the noise "
                                "N(0, I). Fix: standardise it (x - mean) / std, or map images to [-1, 1]."))
    elif dstd < 0.1:
        findings.append(Finding("data_scale", "warning",
                                f"data has std {dstd:.3g}: tiny against the noise N(0, I); the signal is drowned "
                                "after a few steps. Fix: standardise it or map images to [-1, 1]."))
    if diffusion.clip_denoised and diffusion.parameterization != "mean" and (dmin < -1.0001 or dmax > 1.0001):
        outside = float(((x64 < -1.0001) | (x64 > 1.0001)).double().mean())
        findings.append(Finding("clip_cuts_data", "warning",
                                f"the diffusion clips x_0 predictions to [-1, 1] but {100 * outside:.3g}% of the data "
                                "values lie outside it: samples cannot reach them. Fix: map the data to [-1, 1], or "
                                "GaussianDiffusion(..., clip_denoised=False) for unbounded data such as 2-D toys."))
    if (not diffusion.clip_denoised and diffusion.parameterization != "mean"
            and dmin >= -1.0001 and dmax <= 1.0001):
        findings.append(Finding("no_clip", "info",
                                "data lies in [-1, 1] but x_0 predictions are not clipped at sampling: early, wild "
                                "x_0 predictions can push samples out of range. Fix: clip_denoised=True."))

    # ---- prior term L_T (Eq. 5) -----------------------------------------------------------------------------
    lt = float(prior_bpd(diffusion, x64[:n].to(torch.float64)).mean())
    ab_T = float(diffusion.schedule.alpha_bars[-1])
    if lt > PRIOR_BPD_LIMIT:
        findings.append(Finding("prior_mismatch", "error",
                                f"the prior term L_T = {lt:.3g} bits/dim (the paper's setup gives ~1e-5): x_T still "
                                f"carries the data (alpha_bar_T = {ab_T:.3g}, data std {dstd:.3g}), but sampling starts "
                                "from N(0, I). Fix: more steps T or larger betas (alpha_bar_T < 1e-4), and data in "
                                "[-1, 1]."))

    # ---- parameters ---------------------------------------------------------------------------------------
    named = list(model.named_parameters()) if isinstance(model, nn.Module) else []
    bad_params = [name for name, q in named if not torch.isfinite(q).all()]
    half = [name for name, q in named if q.dtype == torch.float16]
    if bad_params:
        findings.append(Finding("nonfinite_params", "error",
                                f"{len(bad_params)} parameter tensors hold NaN or inf (first: {bad_params[0]}): "
                                "training diverged (learning rate too high, float16 overflow). Fix: restart from a "
                                "finite checkpoint with a lower learning rate, gradient clipping, bfloat16 or float32."))
    if half:
        findings.append(Finding("float16", "warning",
                                f"{len(half)} parameter tensors are float16, whose largest finite value is "
                                f"{torch.finfo(torch.float16).max:.0f}: a larger activation or summed loss becomes inf, "
                                "then NaN. Fix: keep float32 weights and use autocast with bfloat16 (range "
                                f"{torch.finfo(torch.bfloat16).max:.3g}), or a gradient scaler."))
    training = bool(getattr(model, "training", False))

    # ---- loss, baseline and output scale per t bucket --------------------------------------------------------
    buckets = _buckets(diffusion.T, n_buckets)
    _, cov = data_mean_cov(x64)
    base_t = gaussian_baseline_loss(diffusion.schedule, cov)
    dtype = p.dtype if p is not None and p.dtype.is_floating_point else torch.float32
    loss, base, out_std, stderr = [], [], [], []
    nonfinite_out = 0
    call_failed: Optional[Exception] = None
    try:
        with torch.no_grad():
            for lo, hi in buckets:
                idx = torch.randint(0, x_all.shape[0], (per_bucket,), generator=g)
                x0 = x_all[idx.to(device)].to(torch.float32)
                t = torch.randint(lo, hi + 1, (per_bucket,), generator=g)
                eps = torch.randn(x0.shape, generator=g).to(device)
                xt = diffusion.q_sample(x0, t.to(device), eps)
                out = model(xt.to(dtype), t.to(device)).to(torch.float64)
                ok = torch.isfinite(out)
                nonfinite_out += int((~ok).sum())
                out = torch.where(ok, out, torch.zeros_like(out))
                if diffusion.parameterization == "eps":
                    pred_eps = out
                else:
                    out_f = out.to(torch.float32)
                    ab = diffusion.schedule.gather(diffusion.schedule.alpha_bars, t.to(device), x0)
                    if diffusion.parameterization == "x0":
                        pred_x0 = out_f
                    else:
                        pred_x0 = diffusion.x0_from_mean(xt, t.to(device), out_f)
                    pred_eps = ((xt - ab.sqrt() * pred_x0) / (1 - ab).sqrt()).double()
                err = ((pred_eps - eps.double()) ** 2).reshape(-1)
                loss.append(float(err.mean()))
                stderr.append(float(err.std() / math.sqrt(err.numel())))
                base.append(float(base_t[lo:hi + 1].mean()))
                out_std.append(float(out.std()))
    except Exception as err:  # noqa: BLE001 - a model that cannot be called is itself the finding
        call_failed = err
        findings.append(Finding("model_call_failed", "error",
                                f"calling model(x_t, t) with x_t of dtype {dtype} failed: {type(err).__name__}: "
                                f"{str(err).splitlines()[0] if str(err) else ''}. (A float16 model needs float16 "
                                "inputs everywhere, its time embedding included; prefer bfloat16 autocast.)"))
        loss, base, out_std, stderr = ([float('nan')] * len(buckets) for _ in range(4))
    loss_t, base_tt, std_t = (torch.tensor(v, dtype=torch.float64) for v in (loss, base, out_std))
    if nonfinite_out:
        findings.append(Finding("nonfinite_output", "error",
                                f"the network returned {nonfinite_out} NaN/inf values on ordinary inputs: its "
                                "weights or its arithmetic overflowed (float16?). Fix: see the findings on "
                                "parameters; compute in float32 or bfloat16."))
    # Monte Carlo error of the per-bucket loss: flag only what noise cannot explain
    worse = [i for i in range(len(buckets)) if loss[i] > base[i] + max(BASELINE_MARGIN, 4 * stderr[i])]
    if worse:
        i = max(worse, key=lambda j: loss[j] - base[j])
        lo, hi = buckets[i]
        findings.append(Finding("worse_than_gaussian", "error" if len(worse) > len(buckets) // 2 else "warning",
                                f"in {len(worse)} of {len(buckets)} t ranges the loss is above the Gaussian baseline "
                                f"(worst: t in {lo}..{hi}, loss {loss[i]:.3g} against {base[i]:.3g}): the network "
                                "knows less than the data's mean and covariance. Untrained, or training diverged "
                                "(learning rate too high), or the data scale is off. Fix: lower the learning rate, "
                                "train longer, check the data range."))
    big = [i for i in range(len(buckets)) if out_std[i] > OUTPUT_STD_LIMIT]
    if big and diffusion.parameterization == "eps":
        i = max(big, key=lambda j: out_std[j])
        findings.append(Finding("output_scale", "error",
                                f"the predicted noise has std {out_std[i]:.3g} for t in {buckets[i][0]}..{buckets[i][1]}"
                                "; the true noise has std 1. The network's output has blown up (diverged training "
                                "or inputs on the wrong scale)."))

    # ---- train / eval mode: is the forward pass random? -------------------------------------------------------
    stochastic = 0.0
    with torch.no_grad():
        x0 = x_all[:64].to(torch.float32)
        t = torch.full((x0.shape[0],), max(1, diffusion.T // 2), dtype=torch.long, device=device)
        xt = diffusion.q_sample(x0, t, torch.randn(x0.shape, generator=g).to(device)).to(dtype)
        if call_failed is None:
            a, b = model(xt, t).double(), model(xt, t).double()
            stochastic = float((a - b).norm() / a.norm().clamp(min=1e-12)) if torch.isfinite(a).all() else 0.0
    if training and stochastic > STOCHASTIC_LIMIT:
        findings.append(Finding("train_mode", "error",
                                f"the model is in training mode and two calls on the same input differ by "
                                f"{100 * stochastic:.3g}% (dropout is active): every sampling step adds this extra "
                                "noise. Fix: model.eval() before sampling."))
    elif training:
        findings.append(Finding("train_mode", "info",
                                "the model is in training mode (harmless here: its output is deterministic); "
                                "call model.eval() before sampling anyway."))

    # ---- gradients ------------------------------------------------------------------------------------------
    bad_grads: list[str] = []
    if check_gradients and named and not bad_params and call_failed is None:
        trainable = [(nme, q) for nme, q in named if q.requires_grad]
        if trainable:
            x0 = x_all[:min(256, x_all.shape[0])].to(torch.float32)
            t = torch.randint(1, diffusion.T + 1, (x0.shape[0],), generator=g).to(device)
            eps = torch.randn(x0.shape, generator=g).to(device)
            with torch.enable_grad():
                l_val = _objective(diffusion, lambda x, s: model(x.to(dtype), s), x0, t=t, noise=eps)
                grads = torch.autograd.grad(l_val, [q for _, q in trainable], allow_unused=True)
            bad_grads = [nme for (nme, _), gr in zip(trainable, grads) if gr is not None and not torch.isfinite(gr).all()]
            if bad_grads or not torch.isfinite(l_val.detach()):
                findings.append(Finding("nonfinite_grads", "error",
                                        f"one step of L_simple gives loss {float(l_val.detach()):.3g} and non-finite gradients "
                                        f"in {len(bad_grads)} parameter tensors: the next optimizer step writes NaN "
                                        "into the weights. Fix: float32 or bfloat16 instead of float16, a lower "
                                        "learning rate, gradient clipping."))

    # ---- samples the reader drew ----------------------------------------------------------------------------
    sample_stats = None
    if samples is not None:
        s = samples.reshape(samples.shape[0], -1).double().cpu()
        d = x64.reshape(x64.shape[0], -1)
        if s.shape[1] != d.shape[1]:
            raise ValueError(f"samples have {s.shape[1]} values per example, the data {d.shape[1]}")
        fin = torch.isfinite(s).all(1)
        frac_bad = 1.0 - float(fin.double().mean())
        sample_stats = {"nonfinite_fraction": frac_bad}
        if frac_bad > 0:
            findings.append(Finding("nonfinite_samples", "error",
                                    f"{100 * frac_bad:.3g}% of the samples contain NaN or inf. A step of the sampler "
                                    "divided by zero (t = 0 is not a diffusion step: the paper's loop runs t = T..1) "
                                    "or the network overflowed."))
        s = s[fin]
        if s.shape[0] >= 2:
            ratio = float(s.std(0).mean() / d.std(0).mean().clamp(min=1e-12))
            m = min(1000, s.shape[0], d.shape[0])
            nn_ratio = float(_nn_median(s[:m]) / _nn_median(d[:m]).clamp(min=1e-12))
            out_range = float(((s < dmin - 1e-6) | (s > dmax + 1e-6)).double().mean())
            sample_stats.update(std_ratio=ratio, nn_ratio=nn_ratio, outside_data_range=out_range)
            if not SAMPLE_STD_RATIO[0] <= ratio <= SAMPLE_STD_RATIO[1]:
                findings.append(Finding("sample_scale", "error",
                                        f"the samples' std is {ratio:.3g} times the data's: the reverse process adds "
                                        "too much or too little noise (check sigma_t: it is sqrt(beta_t), not beta_t), "
                                        "or the data scale and the model disagree."))
            if nn_ratio > NN_RATIO[1]:
                findings.append(Finding("sample_spread", "warning",
                                        f"samples lie {nn_ratio:.3g} times farther from their nearest neighbour than "
                                        "data points do: the samples are blurred (extra noise: model in training "
                                        "mode, sigma_t too large, no EMA, too few steps)."))
            elif nn_ratio < NN_RATIO[0]:
                findings.append(Finding("sample_spread", "warning",
                                        f"samples lie {nn_ratio:.3g} times as far from their nearest neighbour as data "
                                        "points do: they collapse onto a few points (too little noise: sigma_t = "
                                        "beta_t instead of sqrt(beta_t)?)."))
            if dmin >= -1.0001 and dmax <= 1.0001 and out_range > 0.01:
                findings.append(Finding("sample_range", "warning",
                                        f"{100 * out_range:.3g}% of the sample values lie outside the data's range "
                                        f"[{dmin:.3g}, {dmax:.3g}] (clip x_0 predictions at sampling: "
                                        "clip_denoised=True)."))

    report = Diagnosis(data_min=dmin, data_max=dmax, data_mean=dmean, data_std=dstd, prior_bpd=lt, buckets=buckets,
                       loss=loss_t, baseline=base_tt, output_std=std_t, training_mode=training,
                       stochastic_forward=stochastic, nonfinite_params=bad_params, nonfinite_grads=bad_grads,
                       half_params=half, samples=sample_stats, findings=findings)
    if verbose:
        print(report)
    return report
