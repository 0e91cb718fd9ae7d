"""Classic DDPM mistakes, injected into ``ddpm_core`` one at a time to show which checks catch them.

The table :data:`MISTAKES` is the single place that says what is wrong and where: each entry names a target by
dotted path (a module-level function, or a method of a class) and a factory ``wrong(original) -> replacement``
that builds the wrong version, usually by wrapping the correct one so the entry stays short and survives
refactoring of everything but the target itself. When the package is restructured, retarget an entry by editing
its ``target``; a target that no longer exists makes :func:`apply` fail loudly (:class:`MistakeTargetError`).

How the mistake gets in:

* environment variable ``DDPM_CORE_MISTAKE=<name>`` plus ``import ddpm_mistakes; ddpm_mistakes.apply_from_env()``
  (the first cell that ``tools/inject_mistakes.py`` puts in front of a chapter, run in the notebook's kernel);
* as a pytest plugin: ``DDPM_CORE_MISTAKE=<name> pytest -p ddpm_mistakes ...`` with ``tools/`` on ``sys.path``
  (the plugin applies the mistake before the test modules are imported, so ``from ddpm_core.x import f`` in a
  test module already binds the wrong ``f``).

A module-level function is replaced in every loaded ``ddpm_core`` module that holds it (``from .losses import
normal_kl`` binds a second name), so all callers see the mistake; methods are replaced on their class.
"""
from __future__ import annotations

import importlib
import inspect
import math
import os
import sys
from dataclasses import dataclass
from typing import Callable

ENV_VAR = "DDPM_CORE_MISTAKE"
PACKAGE = "ddpm_core"


class MistakeTargetError(RuntimeError):
    """A mistake's target no longer exists in ``ddpm_core`` (retarget the entry in :data:`MISTAKES`)."""


@dataclass(frozen=True)
class Mistake:
    name: str
    target: str  # dotted path: "ddpm_core.module.function" or "ddpm_core.module.Class.method"
    wrong: Callable[[Callable], Callable]  # original -> wrong replacement
    description: str  # one line, Markdown, for the book's table


# ---- the wrong implementations ------------------------------------------------------------------------------
def _schedule_override(**compute):
    """Wrap Schedule.__post_init__: run the correct one, then overwrite some fields with wrong values."""
    def factory(orig):
        def __post_init__(self):
            orig(self)
            new = {k: f(self) for k, f in compute.items()}
            for k, v in new.items():
                object.__setattr__(self, k, v)
        return __post_init__
    return factory


def _alpha_bar_shifted(s):
    import torch
    return torch.cat([torch.ones(1, dtype=s.alpha_bars.dtype), s.alpha_bars[:-1]])  # alpha_bar_{t-1} at index t


def _log_betas(s):
    import torch
    out = torch.log(s.betas.clamp(min=1e-300))
    out[0] = float("-inf")
    return out


def _q_sample_no_sqrt(orig):
    def q_sample(self, x0, t, noise=None, generator=None):
        from ddpm_core.diffusion import randn
        if noise is None:
            noise = randn(x0.shape, generator, x0.device, x0.dtype)
        orig(self, x0, t, noise)  # the original's argument checks
        t = self._t(t, x0, allow_zero=True)
        ab = self._g("alpha_bars", t, x0)
        return ab * x0 + (1.0 - ab) * noise  # should be sqrt(ab) x0 + sqrt(1 - ab) eps
    return q_sample


def _kl_wrong_sign(orig):
    def normal_kl(mean1, logvar1, mean2, logvar2):
        # the correct KL has 0.5 (logvar2 - logvar1); adding (logvar1 - logvar2) flips that term's sign
        return orig(mean1, logvar1, mean2, logvar2) + (logvar1 - logvar2)
    return normal_kl


def _x0_from_eps_swapped(orig):
    def predict_x0_from_eps(self, xt, t, eps):
        t = self._t(t, xt)
        ab = self._g("alpha_bars", t, xt)
        return (xt - ab.sqrt() * eps) / (1.0 - ab).sqrt()  # sqrt(ab) and sqrt(1 - ab) swapped
    return predict_x0_from_eps


def _loss_simple_weighted(orig):
    def _simple(diffusion, model, x0, t, noise, xt):
        per_example = orig(diffusion, model, x0, t, noise, xt)
        s = diffusion.schedule
        # the true bound's weight of Eq. (12), beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)): L_simple drops it
        lam = s.betas ** 2 / (2 * diffusion.model_variances.clamp(min=1e-300) * s.alphas
                              * (1 - s.alpha_bars).clamp(min=1e-300))
        return per_example * lam[t.cpu()].to(per_example)
    return _simple


def _edges_not_extended(orig):
    def _bin_edges_log_probs(x, means, log_scales, num_bins):
        import torch
        from ddpm_core.losses import standard_normal_cdf
        half = 1.0 / (num_bins - 1)
        inv_std = torch.exp(-log_scales)
        centered = x - means
        cdf_plus = standard_normal_cdf(inv_std * (centered + half))
        cdf_min = standard_normal_cdf(inv_std * (centered - half))
        return torch.log((cdf_plus - cdf_min).clamp(min=1e-12))  # every bin finite, also the two edge bins
    return _bin_edges_log_probs


def _ddim_eta_twice(orig):
    sig = inspect.signature(orig)

    def _ddim_step(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        eta = bound.arguments["eta"]
        if isinstance(eta, (int, float)) and eta >= 0:  # ddpm_core.sample has already rejected bad values
            bound.arguments["eta"] = eta ** 2  # sigma = eta * eta * sqrt(...): eta applied twice
        return orig(*bound.args, **bound.kwargs)
    return _ddim_step


def _time_embedding_shifted(orig):
    def timestep_embedding(t, dim, max_period=10000.0):
        return orig(t - 1, dim, max_period)  # the network sees t - 1 (a 0-based index) instead of the paper's t
    return timestep_embedding


def _sampler_variance_as_std(orig):
    def p_sample(self, model, xt, t, generator=None, clip_denoised=None, noise=None):
        import torch
        from ddpm_core.diffusion import randn
        t = self._t(t, xt)
        if noise is None:
            noise = randn(xt.shape, generator, xt.device, xt.dtype)
        out = orig(self, model, xt, t, generator, clip_denoised, noise=torch.zeros_like(xt))
        nonzero = (t > 1).to(xt.dtype).reshape(-1, *([1] * (xt.ndim - 1)))
        out["sample"] = out["mean"] + nonzero * out["variance"] * noise  # sigma_t^2 z instead of sigma_t z
        return out
    return p_sample


def _noise_at_last_step(orig):
    def p_sample(self, model, xt, t, generator=None, clip_denoised=None, noise=None):
        import torch
        from ddpm_core.diffusion import randn
        t = self._t(t, xt)
        if noise is None:
            noise = randn(xt.shape, generator, xt.device, xt.dtype)
        out = orig(self, model, xt, t, generator, clip_denoised, noise=torch.zeros_like(xt))
        out["sample"] = out["mean"] + torch.exp(0.5 * out["log_variance"]) * noise  # z != 0 also at t = 1
        return out
    return p_sample


def _bound_in_nats(orig):
    def vb_term_bpd(*args, **kwargs):
        out = orig(*args, **kwargs)
        out["term"] = out["term"] * math.log(2.0)  # forgot the division by ln 2: nats reported as bits
        return out
    return vb_term_bpd


MISTAKES: tuple[Mistake, ...] = (
    Mistake("alpha_bar_off_by_one", "ddpm_core.schedules.Schedule.__post_init__",
            _schedule_override(alpha_bars=_alpha_bar_shifted),
            "alpha_bar off by one step: `alpha_bars[t]` holds alpha_bar_{t-1} (the product stops one step early)"),
    Mistake("beta_for_beta_tilde", "ddpm_core.schedules.Schedule.__post_init__",
            _schedule_override(beta_tildes=lambda s: s.betas.clone(), log_beta_tildes_clipped=_log_betas),
            "beta_t where beta~_t belongs: the posterior variance of Eq. (7) set to beta_t"),
    Mistake("q_sample_missing_sqrt", "ddpm_core.diffusion.GaussianDiffusion.q_sample", _q_sample_no_sqrt,
            "missing square roots in q(x_t | x_0): x_t = alpha_bar_t x_0 + (1 - alpha_bar_t) eps (Eq. 4)"),
    Mistake("kl_wrong_sign", "ddpm_core.losses.normal_kl", _kl_wrong_sign,
            "wrong sign in the Gaussian KL: log sigma_1^2 - log sigma_2^2 instead of log sigma_2^2 - log sigma_1^2"),
    Mistake("x0_from_eps_swapped", "ddpm_core.diffusion.GaussianDiffusion.predict_x0_from_eps", _x0_from_eps_swapped,
            "x_0 from eps with sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t) swapped"),
    Mistake("posterior_coefs_swapped", "ddpm_core.schedules.Schedule.__post_init__",
            _schedule_override(posterior_coef_x0=lambda s: s.posterior_coef_xt.clone(),
                               posterior_coef_xt=lambda s: s.posterior_coef_x0.clone()),
            "posterior mean coefficients of x_0 and x_t swapped (Eq. 7)"),
    Mistake("lsimple_wrong_weight", "ddpm_core.objectives._simple", _loss_simple_weighted,
            "L_simple weighted by the true bound's lambda_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - alpha_bar_t)) "
            "instead of 1 (Eq. 12 vs Eq. 14)"),
    Mistake("decoder_edges_finite", "ddpm_core.losses._bin_edges_log_probs", _edges_not_extended,
            "the decoder's edge bins not extended to -inf / +inf (Eq. 13): the probabilities no longer sum to one"),
    Mistake("ddim_eta_twice", "ddpm_core.samplers._ddim_step", _ddim_eta_twice,
            "DDIM's sigma with eta applied twice: sigma = eta^2 sqrt(...) (Song et al. 2021, Eq. 16)"),
    Mistake("time_embedding_t_minus_1", "ddpm_core.nn.layers.timestep_embedding", _time_embedding_shifted,
            "the network's time embedding fed t - 1 instead of the paper's t"),
    Mistake("sampler_variance_as_std", "ddpm_core.diffusion.GaussianDiffusion.p_sample", _sampler_variance_as_std,
            "Algorithm 2 adds sigma_t^2 z instead of sigma_t z (variance used as the standard deviation)"),
    Mistake("noise_at_last_step", "ddpm_core.diffusion.GaussianDiffusion.p_sample", _noise_at_last_step,
            "Algorithm 2 adds noise at t = 1 too (z should be 0 at the last step)"),
    Mistake("bound_in_nats", "ddpm_core.likelihood.vb_term_bpd", _bound_in_nats,
            "the bound's terms L_{t-1} and L_0 reported in nats instead of bits (missing / ln 2)"),
)

BY_NAME = {m.name: m for m in MISTAKES}
assert len(BY_NAME) == len(MISTAKES), "mistake names must be unique"


# ---- applying a mistake ------------------------------------------------------------------------------------------
def resolve(target: str):
    """Resolve a dotted path to (owner, attribute name, current value); raise MistakeTargetError if it is gone."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        rest = parts[i:]
        try:
            for p in rest[:-1]:
                owner = getattr(owner, p)
            if rest[-1] not in vars(owner):
                raise AttributeError(rest[-1])
            return owner, rest[-1], vars(owner)[rest[-1]]
        except AttributeError as e:
            raise MistakeTargetError(f"mistake target {target!r} does not exist any more ({e}); "
                                     f"retarget it in tools/ddpm_mistakes.py") from None
    raise MistakeTargetError(f"mistake target {target!r}: no importable module in its path")


def apply(name: str) -> Mistake:
    """Inject the mistake ``name`` into the running interpreter's ``ddpm_core``. Returns the entry."""
    if name not in BY_NAME:
        raise ValueError(f"unknown mistake {name!r}; allowed: {sorted(BY_NAME)}")
    m = BY_NAME[name]
    importlib.import_module(PACKAGE)  # load the whole package first so every alias of the target exists
    owner, attr, original = resolve(m.target)
    wrong = m.wrong(original)
    if isinstance(owner, type):
        setattr(owner, attr, wrong)
    else:
        replaced = 0
        for mod_name, mod in list(sys.modules.items()):
            if mod is None or not (mod_name == PACKAGE or mod_name.startswith(PACKAGE + ".")):
                continue
            for k, v in list(vars(mod).items()):
                if v is original:
                    setattr(mod, k, wrong)
                    replaced += 1
        assert replaced >= 1
    os.environ[ENV_VAR] = name  # child processes (DataLoader workers, subprocess tests) inherit it
    return m


def apply_from_env() -> Mistake | None:
    """Apply the mistake named by ``$DDPM_CORE_MISTAKE`` if it is set (and not empty)."""
    name = os.environ.get(ENV_VAR, "").strip()
    return apply(name) if name else None


# ---- pytest plugin (-p ddpm_mistakes) ----------------------------------------------------------------------------
def pytest_configure(config):  # noqa: D401 - pytest hook
    m = apply_from_env()
    if m is not None:
        config._ddpm_mistake = m.name


def pytest_report_header(config):
    name = getattr(config, "_ddpm_mistake", None)
    return f"ddpm_core mistake injected: {name}" if name else None
