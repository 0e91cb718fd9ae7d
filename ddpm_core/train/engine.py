"""The training loop (Algorithm 1 with the paper's App. B recipe): Adam with linear warmup, global-norm gradient
clipping, an EMA of the weights, bf16 autocast and channels_last on GPUs, optional ``torch.compile``,
DistributedDataParallel under ``torchrun``, and checkpoints that resume bit for bit.

    trainer = Trainer(get_preset("digits"), out_dir="runs/digits")
    trainer.fit()                      # writes latest.pt, metrics.jsonl, samples/step_*.png

Randomness. The initial weights come from ``seed`` (the same on every rank). The timesteps t and noise epsilon of
each step are drawn for the whole *global* batch from one generator seeded identically on every rank, and each
rank keeps the rows of its own examples (the loader deals example i of a global batch to rank i mod world_size).
Training on W processes is therefore the same computation as training on one with the same global batch, up to
float summation order and dropout masks (dropout draws from torch's RNG, seeded per rank). All of this state is
in the checkpoint.
"""
from __future__ import annotations

import contextlib
import json
import math
import time
import warnings
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from ..atomic import atomic_append_text, atomic_copy, atomic_save, atomic_write_text, check_writable, remove_orphan_tmp
from ..data import fetch_batch, infinite_loader, make_dataset
from ..data.loader import mix_seed
from ..objectives import loss as objective_loss
from ..samplers import sample as draw_samples
from . import distributed
from .checkpoint import (FORMAT, CheckpointError, build_diffusion, build_network, checkpoint_checksums,
                         checkpoint_config, load_weights, model_data_shape, read_checkpoint)
from .config import RUNTIME_FIELDS, TrainConfig
from .ema import EMA

__all__ = ["NonFiniteLossError", "Trainer", "resolve_device"]


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite; training stopped without writing a checkpoint."""


def resolve_device(spec: str = "auto") -> torch.device:
    """"auto" -> CUDA if available, else CPU; otherwise ``torch.device(spec)`` (checked to exist)."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as e:
        raise ValueError(f"device={spec!r} is not a valid torch device (try 'auto', 'cpu', 'cuda', 'cuda:1')") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={spec!r} requested but CUDA is not available")
    return device


def _check_resumable(saved: TrainConfig, config: TrainConfig) -> None:
    """Everything except runtime settings and the step budget must match to continue a run exactly."""
    a, b = saved.to_dict(), config.to_dict()
    diff = sorted(k for k in a if k not in RUNTIME_FIELDS and k != "steps" and a[k] != b.get(k))
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a[k]!r} vs now {b.get(k)!r}" for k in diff)
        raise ValueError(f"cannot resume: the configuration differs from the checkpoint's in {detail}")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the lines of ``metrics.jsonl`` up to ``step`` (the checkpoint a run resumes from, 0 for a fresh start):
    the lines a killed run wrote after its last checkpoint are written again by the resumed run."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    keep = []
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:  # half a line from an interrupted write
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] <= step:
            keep.append(line)
    if len(keep) != len(lines):
        atomic_write_text(path, "".join(line + "\n" for line in keep))


class Trainer:
    """Trains ``config`` (a :class:`TrainConfig`) with Algorithm 1 and App. B's recipe; see the module docstring.

    out_dir: run folder for latest.pt, ckpt_<step>.pt, config.json, metrics.jsonl and samples/ (None: nothing is
    written; useful in tests and notebooks). resume: continue from ``out_dir/latest.pt`` when it exists; without
    it an existing latest.pt is an error (so a run is never overwritten by accident).
    """

    def __init__(self, config: TrainConfig, out_dir: Optional[str] = None, resume: bool = False) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = cfg = config
        device = resolve_device(cfg.device)
        self.dist = distributed.setup(device.type)
        if device.type == "cuda" and self.dist.enabled:
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        rank, world = self.dist.rank, self.dist.world_size
        if cfg.batch_size % world:
            raise ValueError(f"batch_size={cfg.batch_size} (global) must be divisible by the number of processes "
                             f"{world}")
        self.local_batch = cfg.batch_size // world
        self.amp = cfg.bf16 and device.type == "cuda"
        self.channels_last = cfg.channels_last and device.type == "cuda" and not cfg.is_toy
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = build_network(cfg).to(device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.diffusion = build_diffusion(cfg)
        self.ema = EMA(self.model, cfg.ema_decay, cfg.ema_warmup) if self.dist.is_main else None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                                          eps=cfg.adam_eps, weight_decay=cfg.weight_decay,
                                          fused=True if device.type == "cuda" else None)
        self.train_model = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP
            self.train_model = DDP(self.model, device_ids=[device.index] if device.type == "cuda" else None,
                                   gradient_as_bucket_view=True)
        if cfg.compile:
            self.train_model = torch.compile(self.train_model)

        dataset = make_dataset(cfg.data, root=cfg.data_dir, split="train", image_size=cfg.image_size,
                               flip=cfg.flip, seed=cfg.seed, toy_size=cfg.toy_size)
        zero = torch.zeros(1, dtype=torch.int64)
        self.data_shape = tuple(fetch_batch(dataset, zero, zero)[0].shape[1:])
        want = model_data_shape(self.model, cfg)
        if self.data_shape != want:
            raise ValueError(f"model and data do not match: model {cfg.model!r} takes examples of shape {want}, "
                             f"data {cfg.data!r} gives {self.data_shape}; choose a model for this data (or set "
                             "image_size)")
        self.loader = infinite_loader(dataset, self.local_batch, seed=cfg.seed, rank=rank, world_size=world,
                                      num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
        torch.manual_seed(mix_seed(cfg.seed, rank, 0xD0))  # dropout masks: one stream per rank
        self.noise_rng = torch.Generator(device=device).manual_seed(mix_seed(cfg.seed, 0xE5))

        self.step = 0
        self.history: list[dict] = []
        self._bad = torch.zeros((), dtype=torch.bool, device=device)
        self._loss_sum = torch.zeros((), device=device)
        self._grad_norm = torch.zeros((), device=device)
        self._n_since_log = 0
        self._checked_step = 0
        self.out_dir = Path(out_dir).expanduser() if out_dir is not None else None
        if self.out_dir is not None:
            latest = self.out_dir / "latest.pt"
            if latest.exists() and not resume:
                raise FileExistsError(f"{latest} exists: resume it (resume=True, --resume) or use another "
                                      "output folder")
            if self.dist.is_main:  # fail now, not at the first save hours later
                check_writable(self.out_dir, "run folder")
                remove_orphan_tmp(self.out_dir)  # left by a process killed while saving
            if latest.exists():
                self.load(latest)
            if self.dist.is_main:
                _truncate_metrics(self.out_dir / "metrics.jsonl", self.step)
                atomic_write_text(self.out_dir / "config.json", cfg.to_json(indent=2) + "\n")

    # ---- one step of Algorithm 1 ----------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step ``step`` (0-based): linear warmup over ``warmup_steps``, then constant."""
        w = self.config.warmup_steps
        return self.config.lr * min(1.0, (step + 1) / w) if w > 0 else self.config.lr

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _draw_t_noise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """t ~ U{1..T} and eps ~ N(0, I) for the global batch; this rank's rows (see the module docstring)."""
        B, r, W = self.config.batch_size, self.dist.rank, self.dist.world_size
        t = torch.randint(1, self.diffusion.T + 1, (B,), generator=self.noise_rng, device=self.device)
        noise = torch.randn((B, *self.data_shape), generator=self.noise_rng, device=self.device)
        if W > 1:
            t, noise = t[r::W].contiguous(), noise[r::W].contiguous()
        if self.channels_last:
            noise = noise.contiguous(memory_format=torch.channels_last)
        return t, noise

    def _train_labels(self, labels: torch.Tensor) -> Optional[torch.Tensor]:
        """The labels a class-conditional network trains with: the batch's, each replaced by the null label K
        with probability ``label_dropout`` (Ho & Salimans 2022, Alg. 1). The coins are drawn for the global batch
        from the noise generator (this rank keeps its rows). None for an unconditional network."""
        K = self.config.num_classes
        if K == 0:
            return None
        B, r, W = self.config.batch_size, self.dist.rank, self.dist.world_size
        drop = torch.rand((B,), generator=self.noise_rng, device=self.device) < self.config.label_dropout
        if W > 1:
            drop = drop[r::W]
        labels = labels.to(self.device, non_blocking=True)
        if labels.device.type == "cpu" and ((labels < 0) | (labels >= K)).any():
            raise ValueError(f"a class-conditional network (num_classes={K}) needs labels in 0..{K - 1}; data "
                             f"{self.config.data!r} gave labels {labels.unique().tolist()[:8]}")
        return torch.where(drop, torch.full_like(labels, K), labels)

    def loss(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor,
             y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The training objective ``config.loss`` on a batch (see :func:`ddpm_core.loss`), a scalar mean over
        examples: L_simple (Eq. 14), the bound L (Eq. 5) in bits/dim, or their hybrid, one t per example; y: the
        labels of a class-conditional network (None for an unconditional one)."""
        return objective_loss(self.diffusion, self.train_model, x0, objective=self.config.loss, t=t, noise=noise,
                              decoder=self.config.decoder, y=y)

    def train_step(self) -> torch.Tensor:
        """One optimizer step; returns the loss (a tensor, not synchronised)."""
        x0, labels = next(self.loader)
        x0 = x0.to(self.device, non_blocking=True)
        if self.channels_last:
            x0 = x0.contiguous(memory_format=torch.channels_last)
        t, noise = self._draw_t_noise()
        y = self._train_labels(labels)
        self.train_model.train()
        with self._autocast():
            loss = self.loss(x0, t, noise, y)
        loss.backward()
        clip = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        self.step += 1
        loss = loss.detach().float()
        self._bad.logical_or_(~(torch.isfinite(loss) & torch.isfinite(grad_norm)))
        self._loss_sum += loss
        self._grad_norm = grad_norm.detach().float()
        self._n_since_log += 1
        return loss

    def check_finite(self) -> None:
        """Raise :class:`NonFiniteLossError` if a loss or gradient norm since the last check was NaN/inf."""
        if distributed.any_true(self._bad, self.dist):
            where = (f"at step {self.step}" if self.step - self._checked_step <= 1
                     else f"between steps {self._checked_step + 1} and {self.step}")
            latest = self.out_dir / "latest.pt" if self.out_dir is not None else None
            kept = (f"; the last checkpoint {latest} was written before and is intact"
                    if latest is not None and latest.exists() else "")
            raise NonFiniteLossError(f"the loss or the gradient norm became non-finite (NaN or inf) {where}; "
                                     f"training stopped{kept}. Try a smaller learning rate (lr={self.config.lr}) "
                                     "or check the data.")
        self._checked_step = self.step

    def check_weights_finite(self, consequence: str) -> None:
        """Raise :class:`NonFiniteLossError` if a weight or EMA weight is NaN or inf (a loss computed before the
        last update can still be finite), saying ``consequence``."""
        modules = [("weights", self.model)] + ([("EMA weights", self.ema.shadow)] if self.ema is not None else [])
        for what, module in modules:
            named = [(n, v) for n, v in module.state_dict().items() if v.is_floating_point()]
            if not named:
                continue
            finite = torch.stack([torch.isfinite(v).all() for _, v in named]).tolist()  # one device sync
            bad = [n for (n, _), ok in zip(named, finite) if not ok]
            if bad:
                raise NonFiniteLossError(f"the {what} became non-finite (NaN or inf) by step {self.step}, e.g. "
                                         f"{bad[0]}; {consequence}. Try a smaller learning rate "
                                         f"(lr={self.config.lr}).")

    # ---- the loop -------------------------------------------------------------------------------------------
    def fit(self, steps: Optional[int] = None) -> list[dict]:
        """Train until step ``steps`` (default ``config.steps``), logging, sampling and checkpointing on the way;
        a checkpoint is always written at the end. Returns the log records of this call."""
        cfg = self.config
        until = cfg.steps if steps is None else int(steps)
        every_step_check = self.device.type == "cpu" and not self.dist.enabled  # checking is free there
        records: list[dict] = []
        bar = tqdm(total=until, initial=self.step, desc=f"train {cfg.name}", unit="step", dynamic_ncols=True,
                   disable=not (cfg.progress and self.dist.is_main))
        timer, steps_timed = time.perf_counter(), 0
        saved_at = sampled_at = -1
        try:
            while self.step < until:
                self.train_step()
                steps_timed += 1
                bar.update(1)
                s = self.step
                log = s % cfg.log_every == 0 or s == until
                ckpt = cfg.ckpt_every > 0 and s % cfg.ckpt_every == 0
                sample = cfg.sample_every > 0 and (s % cfg.sample_every == 0 or s == until)
                if every_step_check or log or ckpt or sample:
                    self.check_finite()
                if log:
                    rec = self._log(time.perf_counter() - timer, steps_timed)
                    records.append(rec)
                    bar.set_postfix(loss=f"{rec['loss']:.4f}", img_s=f"{rec['images_per_s']:.0f}")
                if sample and self.out_dir is not None:
                    self.save_samples()
                    sampled_at = s
                if ckpt and self.out_dir is not None:
                    self.save()
                    saved_at = s
                if log or sample or ckpt:
                    timer, steps_timed = time.perf_counter(), 0
            if records:  # at least one step was taken in this call
                self.check_finite()
                if self.out_dir is not None and cfg.sample_every > 0 and sampled_at != self.step:
                    self.save_samples()
                if self.out_dir is not None and saved_at != self.step:
                    self.save()
        finally:
            bar.close()
        return records

    def _log(self, seconds: float, steps: int) -> dict:
        n = max(self._n_since_log, 1)
        loss = distributed.all_reduce_mean(self._loss_sum / n, self.dist).item()
        rec = {"step": self.step, "loss": loss, "grad_norm": self._grad_norm.item(), "lr": self.lr_at(self.step - 1),
               "images_per_s": steps * self.config.batch_size / max(seconds, 1e-9)}
        self._loss_sum.zero_()
        self._n_since_log = 0
        self.history.append(rec)
        if self.out_dir is not None and self.dist.is_main:
            atomic_append_text(self.out_dir / "metrics.jsonl", json.dumps(rec) + "\n")
        return rec

    # ---- samples --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: Optional[int] = None, seed: Optional[int] = None, progress: bool = False) -> torch.Tensor:
        """Draw ``n`` samples (default ``n_samples``) from the EMA network with Algorithm 2, strided to
        ``sample_steps`` steps if set (main rank only)."""
        if self.ema is None:
            raise RuntimeError("samples are drawn on the main process (rank 0), which holds the EMA weights")
        n = self.config.n_samples if n is None else n
        g = torch.Generator(device=self.device).manual_seed(self.config.seed if seed is None else seed)
        steps = self.config.sample_steps if 0 < self.config.sample_steps < self.diffusion.T else None
        with self._autocast():
            x = draw_samples(self.ema.shadow, self.diffusion, (n, *self.data_shape), steps=steps, generator=g,
                             device=self.device, progress=progress)
        return x.float().cpu()

    def save_samples(self) -> Optional[Path]:
        """Write a PNG of EMA samples to ``out_dir/samples/step_<step>.png`` (a scatter plot for 2-D data)."""
        if not self.dist.is_main or self.out_dir is None:
            return None
        from ..viz import save_image_grid, save_scatter

        self.check_weights_finite("no samples were drawn")
        x = self.sample()
        path = self.out_dir / "samples" / f"step_{self.step:07d}.png"
        if self.config.is_toy:
            ref = fetch_batch(self.loader.dataset, torch.arange(min(2000, self.loader.n)),
                              torch.zeros(1, dtype=torch.int64))[0]
            return save_scatter(x, path, reference=ref, title=f"{self.config.name}, step {self.step}")
        return save_image_grid(x, path)

    # ---- checkpoints ----------------------------------------------------------------------------------------
    def _rank_state(self) -> dict:
        state = {"device_type": self.device.type, "torch_rng": torch.get_rng_state(),
                 "noise_rng": self.noise_rng.get_state(), "loader": self.loader.state_dict()}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def save(self, path: Optional[str] = None) -> Optional[Path]:
        """Write a checkpoint (every rank must call this; rank 0 writes) to ``path`` or ``out_dir/latest.pt``,
        plus ``ckpt_<step>.pt`` every ``keep_every`` steps."""
        self.check_finite()
        rank_states = distributed.all_gather_objects(self._rank_state(), self.dist)
        if not self.dist.is_main:
            return None
        if path is None and self.out_dir is None:
            raise ValueError("save() needs a path when the trainer has no out_dir")
        target = Path(path) if path is not None else self.out_dir / "latest.pt"
        self.check_weights_finite("no checkpoint was written")
        last = self.history[-1] if self.history else {}
        ckpt = {"format": FORMAT, "step": self.step, "config": self.config.to_json(),
                "model": self.model.state_dict(), "ema": self.ema.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rank_states": rank_states,
                "metrics": {k: float(v) for k, v in last.items()}}
        ckpt["checksums"] = checkpoint_checksums(ckpt)
        atomic_save(ckpt, target)
        keep = self.config.keep_every
        if path is None and keep > 0 and self.step % keep == 0:
            atomic_copy(target, target.parent / f"ckpt_{self.step:07d}.pt")
        return target

    def load(self, path: str, verify: bool = True) -> None:
        """Continue from a checkpoint written by :meth:`save` (same configuration up to runtime settings and
        ``steps``, same number of processes). verify: check its checksums (False for a file edited by hand)."""
        ckpt = read_checkpoint(path, map_location="cpu", verify=verify)
        missing = [k for k in ("optimizer", "rank_states") if k not in ckpt]
        if missing:
            raise CheckpointError(f"{path} cannot be resumed: it has no {' and no '.join(missing)} (a slim "
                                  "checkpoint for sampling only); start a new run folder instead")
        saved = checkpoint_config(ckpt, path)
        if saved.model != self.config.model or saved.model_overrides != self.config.model_overrides:
            raise CheckpointError(f"{path} was written for model {saved.model!r} {saved.model_overrides}, this run "
                                  f"builds model {self.config.model!r} {self.config.model_overrides}")
        _check_resumable(saved, self.config)
        states = ckpt["rank_states"]
        if len(states) != self.dist.world_size:
            raise ValueError(f"{path} was written by {len(states)} process(es); resume it with the same number "
                             f"(now {self.dist.world_size})")
        load_weights(self.model, ckpt["model"], path, saved, "weights")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.step = int(ckpt["step"])
        self._checked_step = self.step
        st = states[self.dist.rank]
        self.loader.load_state_dict(st["loader"])
        torch.set_rng_state(st["torch_rng"])
        if st["device_type"] == self.device.type:
            self.noise_rng.set_state(st["noise_rng"])
            if "cuda_rng" in st:
                torch.cuda.set_rng_state(st["cuda_rng"], self.device)
        else:
            warnings.warn(f"{path} was written on {st['device_type']}, resuming on {self.device.type}: the noise "
                          "generator is reseeded, so the run continues correctly but not bit for bit",
                          stacklevel=2)
            self.noise_rng.manual_seed(mix_seed(self.config.seed, 0xE5, self.step))

    def close(self) -> None:
        """Release the process group if this trainer created it."""
        distributed.cleanup(self.dist)
