"""The ``ddpm`` command (also ``python -m ddpm_core``): train, sample, evaluate the bound in bits/dim, list presets.

    ddpm train --preset digits --out runs/digits
    ddpm sample --ckpt runs/digits/latest.pt -n 64 --out grid.png
    ddpm bpd --ckpt runs/digits/latest.pt --data digits -n 256
    torchrun --nproc_per_node 8 -m ddpm_core train --preset cifar10 --data-dir ~/data/cifar10 --out runs/cifar10

Every failure is reported as one line, ``ddpm COMMAND: error: ...`` naming the file or option, with a non-zero
exit status; ``--debug`` (anywhere on the line) shows the Python traceback instead, and ``--no-verify`` loads a
checkpoint without checking its checksums (for a file edited by hand).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional, Sequence

__all__ = ["main", "build_parser"]


def _key_value(text: str) -> tuple[str, Any]:
    """Parse KEY=VALUE; VALUE is read as JSON when it parses (numbers, true/false, lists), else kept as text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from .train.config import PRESETS
    from .diffusion import VARIANCES

    parser = argparse.ArgumentParser(prog="ddpm", description="Denoising Diffusion Probabilistic Models "
                                     "(Ho, Jain & Abbeel 2020): train, sample and evaluate.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    tr = sub.add_parser("train", help="train a model from a named preset",
                        description="Train a diffusion model. Start from --preset and override any setting; "
                        "options left out keep the preset's value (see `ddpm presets`). Writes RUN/latest.pt, "
                        "RUN/config.json, RUN/metrics.jsonl and RUN/samples/step_*.png. Multi-GPU: "
                        "torchrun --nproc_per_node N -m ddpm_core train ...")
    tr.add_argument("--preset", choices=sorted(PRESETS), default=None,
                    help="named recipe: cifar10 (the paper's), celebahq256, lsun256, digits, toy2d "
                    "(required unless --resume finds a checkpoint in --out)")
    tr.add_argument("--out", default=None, help="run folder (default: runs/<preset>)")
    tr.add_argument("--resume", action="store_true",
                    help="continue from OUT/latest.pt if it exists (exactly: same batches, noise and RNG state)")
    config_fields = _add_config_flags(tr)
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--set", dest="sets", metavar="KEY=VALUE", type=_key_value, action="append", default=[],
                    help="set any TrainConfig field, e.g. --set ema_warmup=true (repeatable)")
    tr.add_argument("--model-set", dest="model_sets", metavar="KEY=VALUE", type=_key_value, action="append",
                    default=[], help="override a network setting, e.g. --model-set dropout=0.0 (repeatable)")
    tr.set_defaults(func=cmd_train, config_fields=config_fields)

    sa = sub.add_parser("sample", help="draw samples from a checkpoint (Algorithm 2)",
                        description="Draw samples with ancestral sampling (Algorithm 2) from the EMA weights of "
                        "a checkpoint and save them as a PNG grid (a scatter plot for 2-D data) or a .pt tensor.")
    sa.add_argument("--ckpt", required=True, help="checkpoint file or run folder (uses its latest.pt)")
    sa.add_argument("-n", "--num", type=_positive_int, default=64, help="number of samples (default 64)")
    sa.add_argument("--out", default="samples.png", help="output: .png grid or .pt tensor (default samples.png)")
    sa.add_argument("--steps", type=_positive_int, default=None,
                    help="number of sampling steps S (default: all T; fewer: strided ancestral sampling or DDIM "
                    "over S evenly spaced timesteps)")
    sa.add_argument("--sampler", choices=("ancestral", "ddim"), default="ancestral",
                    help="ancestral: Algorithm 2 (default); ddim: DDIM (Song et al. 2021)")
    sa.add_argument("--eta", type=float, default=0.0, help="DDIM noise scale (0 = deterministic, the default)")
    sa.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (default 0)")
    sa.add_argument("--variance", choices=VARIANCES, default=None,
                    help="sampling variance sigma_t^2 (default: the checkpoint's)")
    sa.add_argument("--batch-size", type=_positive_int, default=256, help="samples per network call")
    sa.add_argument("--raw", action="store_true", help="use the raw weights instead of the EMA weights")
    sa.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    sa.add_argument("--no-progress", action="store_true", help="no progress bar")
    sa.set_defaults(func=cmd_sample)

    bp = sub.add_parser("bpd", help="evaluate the bound L (Eq. 5) in bits/dim on data",
                        description="Evaluate the variational bound L = L_T + sum L_{t-1} + L_0 (Eq. 5) term by "
                        "term in bits/dim on N examples (T network calls per batch) and print a summary.")
    bp.add_argument("--ckpt", required=True, help="checkpoint file or run folder")
    bp.add_argument("--data", default=None, help="data set (default: the one the model was trained on)")
    bp.add_argument("--data-dir", default=None, help="folder holding the data set's files")
    bp.add_argument("--split", choices=("train", "test", "all"), default="test", help="data split (default test)")
    bp.add_argument("-n", "--num", type=_positive_int, default=256, help="number of examples (default 256)")
    bp.add_argument("--batch-size", type=_positive_int, default=128, help="examples per batch")
    bp.add_argument("--seed", type=int, default=0, help="seed of the x_t draws")
    bp.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    bp.add_argument("--json", dest="json_out", default=None, help="also write the summary to this JSON file")
    bp.add_argument("--no-progress", action="store_true", help="no progress bar")
    bp.set_defaults(func=cmd_bpd)

    pr = sub.add_parser("presets", help="list the named training presets",
                        description="List the training presets and their main settings.")
    pr.add_argument("--json", action="store_true", help="print every preset's full configuration as JSON")
    pr.set_defaults(func=cmd_presets)
    return parser


# TrainConfig fields that get no flag of their own: set through --preset, --model-set, --no-progress.
_NO_FLAG = ("model_overrides", "progress")


def _add_config_flags(parser: argparse.ArgumentParser) -> tuple[str, ...]:
    """One ``--field-name`` option per TrainConfig field: type from the annotation, help from ``FIELD_HELP``,
    choices from ``FIELD_CHOICES``; every default is None (= keep the preset's value). Returns the field names."""
    import dataclasses
    import typing

    from .train.config import FIELD_CHOICES, FIELD_HELP, TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    names = []
    for f in dataclasses.fields(TrainConfig):
        if f.name in _NO_FLAG:
            continue
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) is typing.Union and len(args) == 1:  # Optional[X]
            kind = args[0]
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = FIELD_HELP.get(f.name, f.name)
        kwargs: dict = {"default": None, "dest": f.name}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is tuple:
            kwargs.update(type=float, nargs=len(default) if isinstance(default, tuple) else "+", metavar="X")
        elif kind in (int, float, str):
            kwargs["type"] = kind
        else:
            raise TypeError(f"TrainConfig.{f.name}: no command-line type for {kind!r}")
        if f.name in FIELD_CHOICES:
            kwargs["choices"] = FIELD_CHOICES[f.name]
        parser.add_argument(flag, help=help_text, **kwargs)
        names.append(f.name)
    return tuple(names)


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .train import Trainer, get_preset, read_checkpoint
    from .train.checkpoint import checkpoint_config

    out = Path(args.out) if args.out else (Path("runs") / args.preset if args.preset else None)
    if out is None:
        parser.error("train needs --preset (or --out with --resume to continue a run)")
    changes = {k: getattr(args, k) for k in args.config_fields if getattr(args, k) is not None}
    if args.no_progress:
        changes["progress"] = False
    changes.update(dict(args.sets))
    try:
        if args.preset is not None:
            config = get_preset(args.preset)
        elif args.resume and (out / "latest.pt").exists():
            latest = out / "latest.pt"
            config = checkpoint_config(read_checkpoint(latest, verify=getattr(args, "verify", True)), latest)
        else:
            parser.error(f"train needs --preset ({out / 'latest.pt'} does not exist to resume from)")
        if args.model_sets:
            changes["model_overrides"] = {**config.model_overrides, **dict(args.model_sets)}
        config = config.replace(**changes)
    except (TypeError, ValueError) as e:
        parser.error(str(e))
    trainer = Trainer(config, out_dir=str(out), resume=args.resume)
    try:
        start, t0 = trainer.step, time.perf_counter()
        records = trainer.fit()
        if trainer.dist.is_main:
            loss = f", final loss {records[-1]['loss']:.4f}" if records else ""
            print(f"trained {config.name}: steps {start} -> {trainer.step} in {time.perf_counter() - t0:.1f} s"
                  f"{loss}; checkpoint {out / 'latest.pt'}")
            grids = sorted((out / "samples").glob("step_*.png"))
            if grids:
                print(f"samples from the EMA weights: {grids[-1]}")
    finally:
        trainer.close()
    return 0


def cmd_sample(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import torch

    from .atomic import atomic_save, check_writable
    from .samplers import sample
    from .train import load_checkpoint, resolve_device
    from .train.checkpoint import model_data_shape
    from .viz import save_image_grid, save_scatter

    out = Path(args.out)
    if out.suffix.lower() not in (".pt", ".png", ".jpg", ".jpeg"):
        parser.error(f"--out must end in .png (a picture) or .pt (the tensor), got {args.out!r}")
    check_writable(out.parent, "folder of --out")  # before the sampling, not after it
    device = resolve_device(args.device)
    model, diffusion, config = load_checkpoint(args.ckpt, device=device, ema=not args.raw, variance=args.variance,
                                               verify=getattr(args, "verify", True))
    shape = model_data_shape(model, config)
    steps = diffusion.T if args.steps is None else args.steps
    if steps > diffusion.T:
        parser.error(f"--steps must be at most T = {diffusion.T}, got {steps}")
    eta = args.eta if args.sampler == "ddim" else 0.0

    def draw(b: int) -> torch.Tensor:
        return sample(model, diffusion, (b, *shape), sampler=args.sampler, steps=steps, eta=eta, generator=g,
                      device=device, progress=not args.no_progress)
    g = torch.Generator(device=device).manual_seed(args.seed)
    chunks = []
    for start in range(0, args.num, args.batch_size):
        chunks.append(draw(min(args.batch_size, args.num - start)).float().cpu())
    x = torch.cat(chunks)
    if out.suffix.lower() == ".pt":
        atomic_save(x, out)
    elif config.is_toy:
        save_scatter(x, out, title=f"{config.name}: {args.num} samples")
    else:
        save_image_grid(x, out)
    how = "Algorithm 2" if args.sampler == "ancestral" and steps == diffusion.T else f"{args.sampler}, {steps} steps"
    print(f"wrote {args.num} samples ({how}) to {out}")
    return 0


def cmd_bpd(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import torch

    from .atomic import atomic_write_text, check_writable
    from .data import fetch_batch, make_dataset
    from .likelihood import bits_per_dim
    from .train import load_checkpoint, resolve_device
    from .train.checkpoint import model_data_shape

    if args.json_out:
        check_writable(Path(args.json_out).parent, "folder of --json")
    device = resolve_device(args.device)
    model, diffusion, config = load_checkpoint(args.ckpt, device=device, verify=getattr(args, "verify", True))
    name = args.data or config.data
    try:
        ds = make_dataset(name, root=args.data_dir or (config.data_dir if name == config.data else None),
                          split=args.split, image_size=config.image_size, toy_size=max(args.num, 1))
    except ValueError as e:
        parser.error(str(e))
    if len(ds) == 0:
        parser.error(f"data set {name!r} ({args.split} split) is empty")
    first = fetch_batch(ds, torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.int64))[0]
    want = model_data_shape(model, config)
    if tuple(first.shape[1:]) != tuple(want):
        raise ValueError(f"model and data do not match: the model in {args.ckpt} was trained on {config.data!r} "
                         f"examples of shape {tuple(want)}, but data set {name!r} gives shape "
                         f"{tuple(first.shape[1:])}; pass --data {config.data} or another checkpoint")
    n = min(args.num, len(ds))
    g = torch.Generator(device=device).manual_seed(args.seed)
    totals, priors, terms = [], [], []
    for start in range(0, n, args.batch_size):
        idx = torch.arange(start, min(n, start + args.batch_size))
        x0 = fetch_batch(ds, idx, torch.zeros_like(idx))[0].to(device)
        b = bits_per_dim(diffusion, model, x0, progress=not args.no_progress, generator=g, decoder=config.decoder)
        totals.append(b.total)
        priors.append(b.prior)
        terms.append(b.terms)
    total, prior, term = torch.cat(totals), torch.cat(priors), torch.cat(terms)
    summary = _bpd_summary(total, prior, term, name, args.split, n)
    print(_format_bpd(summary, config.decoder))
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(summary, indent=2) + "\n")
    return 0


def _bpd_summary(total, prior, terms, data: str, split: str, n: int) -> dict:
    """Means over examples (and the standard error of the total) of the bound's parts, in bits/dim."""
    T = terms.shape[1]
    edges = [1, 2, 11, 101, T + 1] if T > 100 else [1, 2, T + 1]
    groups = {}
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo < hi <= T + 1:
            label = "L_0 (t = 1)" if lo == 1 and hi == 2 else f"sum L_(t-1), t = {lo}..{hi - 1}"
            groups[label] = terms[:, lo - 1:hi - 1].sum(1).mean().item()
    stderr = (total.std() / len(total) ** 0.5).item() if len(total) > 1 else float("nan")
    return {"data": data, "split": split, "n": n, "total": total.mean().item(), "total_stderr": stderr,
            "L_T": prior.mean().item(), "terms": groups}


def _format_bpd(s: dict, decoder: str) -> str:
    unit = "bits/dim" if decoder == "discretized" else "bits/dim (continuous density)"
    lines = [f"bound L on {s['n']} {s['data']} {s['split']} examples: {s['total']:.4f} +- {s['total_stderr']:.4f} "
             f"{unit}", f"  {'L_T (prior)':<34}{s['L_T']:>12.6f}"]
    lines += [f"  {k:<34}{v:>12.6f}" for k, v in s["terms"].items()]
    return "\n".join(lines)


def cmd_presets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .train import PRESETS

    if args.json:
        print(json.dumps({k: v.to_dict() for k, v in PRESETS.items()}, indent=2))
        return 0
    print(f"{'preset':<12} {'model':<12} {'data':<11} {'batch':>5} {'lr':>8} {'steps':>9} {'ema':>7}  variance")
    for name, c in PRESETS.items():
        print(f"{name:<12} {c.model:<12} {c.data:<11} {c.batch_size:>5} {c.lr:>8.0e} {c.steps:>9} "
              f"{c.ema_decay:>7} {c.variance}")
    return 0


# Options of every command, taken out of the arguments wherever they stand (``ddpm --debug train ...`` and
# ``ddpm train ... --debug`` both work).
_GLOBAL_FLAGS = {"--debug": "on an error, show the Python traceback instead of the one-line message",
                 "--no-verify": "load checkpoints without checking their checksums (for files edited by hand)"}


def _one_line(e: BaseException) -> str:
    """What failed, in one line. The package's own errors name the file or option and what to do, so their
    message is enough; an error raised elsewhere (torch, Pillow, the OS) gets its type and a pointer to --debug."""
    if isinstance(e, OSError) and e.filename is not None and str(e.filename) not in str(e):
        text = f"{e.strerror or e}: {e.filename}"
    else:
        text = str(e)
    text = " ".join(text.split()) or type(e).__name__
    frames = traceback.extract_tb(e.__traceback__)
    ours = bool(frames) and f"{os.sep}ddpm_core{os.sep}" in frames[-1].filename
    if not ours and not (isinstance(e, OSError) and e.filename is not None):
        text = f"{type(e).__name__}: {text} (run again with --debug for the traceback)"
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``ddpm`` console script; returns the exit status.

    Every failure is reported as one line on stderr, ``ddpm COMMAND: error: WHAT``, with exit status 1 (2 for a
    malformed command line, from argparse; 130 for Ctrl-C); ``--debug`` shows the traceback instead and
    ``--no-verify`` loads checkpoints without checking their checksums.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {f: f in argv for f in _GLOBAL_FLAGS}
    argv = [a for a in argv if a not in _GLOBAL_FLAGS]
    parser = build_parser()
    for flag, text in _GLOBAL_FLAGS.items():  # listed in --help; the values were read above
        parser.add_argument(flag, action="store_true", help=text)
    args = parser.parse_args(argv)
    args.verify = not flags["--no-verify"]
    try:
        return args.func(args, parser)
    except KeyboardInterrupt:
        if flags["--debug"]:
            raise
        print(f"ddpm {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the command line reports every failure as one line
        if flags["--debug"]:
            raise
        print(f"ddpm {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
