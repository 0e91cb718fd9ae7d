"""The reliability probe: bad inputs, damaged files and failed writes tried against the package and the ``ddpm``
command, each classified as

    clear      the failure is reported with an error that names the argument, option or file (and, for the
               command, as one line without a traceback, exit status != 0);
    confusing  an error is raised, but a raw one (a traceback from main(), torch's or pickle's message);
    silent     no error: a wrong result is returned or a bad run exits 0;
    harm       data were lost (an output file damaged, temporary files left behind, duplicate metrics lines) or
               code from a data file ran.

``python tests/reliability_probe.py`` prints one line per case and the counts (tests/RELIABILITY.md records
them); ``tests/test_reliability.py`` requires every case to be ``clear``. The cases use only public behaviour, so
the same script can be run against an older version of the package to count what it did.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

TINY = ["--preset", "toy2d", "--steps", "4", "--batch-size", "32", "--log-every", "1", "--sample-every", "0",
        "--ckpt-every", "2", "--no-progress", "--set", "toy_size=256", "--set", "T=20", "--set", "beta_T=0.2",
        "--model-set", "width=16", "--model-set", "depth=1", "--device", "cpu"]
EXPECTED = (ValueError, TypeError, OSError, FloatingPointError, RuntimeError)


@dataclass
class Outcome:
    kind: str       # clear / confusing / silent / harm
    detail: str


@dataclass
class Case:
    id: str
    group: str
    run: Callable[["Context"], Any]
    expect: tuple = ()                           # substrings the message must contain (case-insensitive)
    harm: Optional[Callable[["Context"], Optional[str]]] = None   # returns a description when data were harmed
    cli: bool = False
    succeeds: bool = False                       # the right behaviour is to succeed (without harm)


@dataclass
class Context:
    root: Path
    run: Path = field(init=False)                # a finished tiny toy run (latest.pt at step 4)
    ckpt: Path = field(init=False)

    def __post_init__(self) -> None:
        from ddpm_core.cli import main
        self.run = self.root / "toyrun"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["train", *TINY, "--out", str(self.run)]) == 0
        self.ckpt = self.run / "latest.pt"

    def path(self, name: str) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


def run_cli(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` with stdout/stderr captured: (exit status, stderr). A traceback out of main() propagates."""
    from ddpm_core.cli import main
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
    return rc, err.getvalue()


def classify(case: Case, ctx: Context) -> Outcome:
    try:
        result = case.run(ctx)
        raised: Optional[BaseException] = None
    except Exception as e:  # noqa: BLE001
        result, raised = None, e
    harm = case.harm(ctx) if case.harm is not None else None
    if harm:
        return Outcome("harm", harm)
    words = [w.lower() for w in case.expect]
    if case.cli:
        if raised is not None:
            return Outcome("confusing", f"traceback from main(): {type(raised).__name__}: {raised}"[:200])
        rc, err = result
        if case.succeeds:
            return Outcome("clear" if rc == 0 else "confusing", f"exit status {rc}, no harm {err.strip()}"[:200])
        if rc == 0:
            return Outcome("silent", "exit status 0")
        lines = [ln for ln in err.strip().splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
        text = " ".join(lines)
        if "Traceback" in err or len(lines) != 1:
            return Outcome("confusing", f"{len(lines)} lines: {text}"[:200])
        if not all(w in text.lower() for w in words):
            return Outcome("confusing", f"does not name {case.expect}: {text}"[:200])
        return Outcome("clear", text[:200])
    if raised is None:
        return Outcome("silent", f"returned {type(result).__name__}")
    msg = f"{type(raised).__name__}: {raised}"
    if not isinstance(raised, EXPECTED) or not all(w in str(raised).lower() for w in words):
        return Outcome("confusing", msg[:200])
    return Outcome("clear", msg[:200])


# ----------------------------------------------------------------------------------------------- helpers

def _tiny_diffusion():
    from ddpm_core.diffusion import GaussianDiffusion
    from ddpm_core.schedules import Schedule
    return GaussianDiffusion(Schedule.linear(T=10, beta_1=1e-3, beta_T=0.2))


def _zero(x, t):
    return torch.zeros_like(x)


def _nan(x, t):
    return torch.full_like(x, float("nan"))


def _grid_x():
    return torch.randint(0, 256, (2, 1, 4, 4)).float() / 127.5 - 1


def _edit_ckpt(ctx: Context, name: str, change: Callable[[dict], Any], keep_checksums: bool = True) -> Path:
    """A copy of the run's checkpoint changed by ``change`` (in place). keep_checksums=False: as a file written
    before checkpoints carried checksums (or edited by hand), so that the later checks are reached."""
    ckpt = torch.load(ctx.ckpt, weights_only=True)
    change(ckpt)
    if not keep_checksums:
        ckpt.pop("checksums", None)
    path = ctx.path(name)
    torch.save(ckpt, path)
    return path


def _flip_exponent(t: torch.Tensor) -> None:
    t.view(torch.int32).view(-1)[0] ^= 1 << 29


def _cifar_batch(n: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {b"batch_label": b"training batch 1 of 5", b"labels": [int(v) for v in rng.integers(0, 10, n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _cifar_dir(ctx: Context, name: str, first: Any, raw: Optional[bytes] = None) -> Path:
    folder = ctx.path(name) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        with open(folder / n, "wb") as f:
            if i == 0 and raw is not None:
                f.write(raw)
            else:
                pickle.dump(first if i == 0 else _cifar_batch(), f, protocol=2)
    return folder.parent


def _marker(ctx: Context) -> Path:
    return ctx.root / "PWNED"


def _code_ran(ctx: Context) -> Optional[str]:
    return "a shell command from the data file ran" if _marker(ctx).exists() else None


def _with_fsize_limit(limit: int, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with writes limited to ``limit`` bytes per file (like a full disk); SIGXFSZ ignored so that a
    write past the limit fails with EFBIG (POSIX only)."""
    import resource

    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        return fn()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


def _old_file_kept(path: Path, content: bytes) -> Callable[[Context], Optional[str]]:
    def check(ctx: Context) -> Optional[str]:
        if not path.exists() or path.read_bytes() != content:
            return f"{path.name} was replaced by a partial file"
        tmp = list(path.parent.glob(".*.tmp"))
        return f"temporary files left: {[p.name for p in tmp]}" if tmp else None
    return check


# ----------------------------------------------------------------------------------------------- the cases

def build_cases(ctx: Context) -> list[Case]:
    from ddpm_core.likelihood import bits_per_dim
    from ddpm_core.losses import nats_to_bits_per_dim, normal_kl
    from ddpm_core.nn import build_model
    from ddpm_core.objectives import loss
    from ddpm_core.samplers import sample
    from ddpm_core.schedules import Schedule

    d = _tiny_diffusion()
    cases: list[Case] = []

    def lib(id: str, fn: Callable[[], Any], *expect: str, group: str = "library input") -> None:
        cases.append(Case(id, group, lambda ctx: fn(), expect))

    def cli(id: str, argv: Callable[[Context], list[str]], *expect: str, group: str = "command line",
            harm=None) -> None:
        cases.append(Case(id, group, lambda ctx: run_cli(argv(ctx)), expect, harm, cli=True))

    # -- library: bad arguments get a ValueError / TypeError naming the argument
    lib("bits_per_dim on off-grid data", lambda: bits_per_dim(d, _zero, torch.rand(2, 1, 4, 4) * 2 - 1,
                                                              progress=False), "8-bit", "quantize")
    lib("q_sample with NaN noise", lambda: d.q_sample(_grid_x(), 3, torch.full((2, 1, 4, 4), float("nan"))),
        "noise", "nan")
    lib("nats_to_bits_per_dim(x, 0)", lambda: nats_to_bits_per_dim(torch.ones(2), 0), "num_dims")
    lib("MLP called with t = -5", lambda: build_model("toy2d")(torch.zeros(3, 2), torch.full((3,), -5)), "t ")
    lib("MLP called with t = 2.5", lambda: build_model("toy2d")(torch.zeros(3, 2), torch.full((3,), 2.5)), "t ")
    lib("U-Net called with t = -5", lambda: build_model("digits")(torch.zeros(2, 1, 8, 8), torch.full((2,), -5)),
        "t ")
    lib("U-Net called with t = 2.5",
        lambda: build_model("digits")(torch.zeros(2, 1, 8, 8), torch.full((2,), 2.5)), "t ")
    lib("loss_simple with batch size 0", lambda: loss(d, _zero, torch.zeros(0, 1, 4, 4)), "x0", "batch")
    lib("q_sample with a 0-d x0", lambda: d.q_sample(torch.tensor(0.5), 3), "x0", "batch dimension")
    lib("float64 input to a float32 network",
        lambda: build_model("toy2d")(torch.zeros(3, 2, dtype=torch.float64), torch.ones(3, dtype=torch.long)),
        "dtype", "float32")
    lib("noise on another device", lambda: d.q_sample(_grid_x(), 3, torch.zeros(2, 1, 4, 4, device="meta")),
        "noise", "device")
    lib("normal_kl with mismatched shapes",
        lambda: normal_kl(torch.zeros(3), torch.zeros(4), torch.zeros(3), torch.zeros(3)), "shapes", "(4,)")
    lib('Schedule("0.1,0.2")', lambda: Schedule("0.1,0.2"), "betas", "string")
    lib("DDIM with eta = nan", lambda: sample(_zero, d, (2, 1, 4, 4), sampler="ddim", steps=5,
                                                   eta=float("nan")), "eta")
    lib("sampling from a model that returns NaN", lambda: sample(_nan, d, (2, 1, 4, 4)),
        "model's output", "non-finite", "step t")
    lib("DDIM from a model that returns NaN",
        lambda: sample(_nan, d, (2, 1, 4, 4), sampler="ddim", steps=5), "model's output", "non-finite")

    # -- training options (TrainConfig checks them for code, JSON and the command line alike)
    def cfg(**kw):
        from ddpm_core.train import get_preset
        return lambda: get_preset("toy2d", **kw)
    for key, value in [("lr", float("inf")), ("lr", float("nan")), ("grad_clip", float("nan")),
                       ("grad_clip", -1.0), ("ema_decay", 1.0), ("adam_eps", 0.0), ("weight_decay", float("inf")),
                       ("lr", "abc"), ("adam_betas", [0.9]), ("beta_T", 2.0), ("batch_size", 0),
                       ("sample_steps", 10_000), ("bf16", "yes")]:
        lib(f"TrainConfig({key}={value!r})", cfg(**{key: value}), key, group="training options")

    # -- the command line: bad options
    def tr(*args: str) -> Callable[[Context], list[str]]:
        folder = f"run{len(cases)}"  # a folder of its own: a case that wrongly trains must not affect the next
        return lambda ctx: ["train", *TINY, "--out", str(ctx.path("runs") / folder), *args]
    cli("train --lr inf --steps 1", tr("--lr", "inf", "--steps", "1"), "lr")
    cli("train --lr nan", tr("--lr", "nan"), "lr")
    cli("train --lr 1e30 (diverges) up to the end-of-run sample grid",
        tr("--lr", "1e30", "--grad-clip", "0", "--warmup-steps", "0", "--steps", "1", "--sample-every", "1"),
        "non-finite")
    cli("train --grad-clip nan", tr("--grad-clip", "nan"), "grad_clip")
    cli("train --ema-decay 1.5", tr("--ema-decay", "1.5"), "ema_decay")
    cli("train --warmup-steps -1", tr("--warmup-steps", "-1"), "warmup")
    cli("train --set lr=abc", tr("--set", "lr=abc"), "lr", "abc")
    cli("train --set T=0", tr("--set", "T=0"), "T")
    cli("train --set nonsense=1", tr("--set", "nonsense=1"), "nonsense")
    cli("train --set adam_betas=[0.9]", tr("--set", "adam_betas=[0.9]"), "adam_betas")
    cli("train --batch-size 0", tr("--batch-size", "0"), "batch")
    cli("train --device cuda:7 (no such device)", tr("--device", "cuda:7"), "device")
    cli("train --set model=digits on 2-D toy data",
        lambda ctx: ["train", "--preset", "toy2d", "--set", "model=digits", "--steps", "1", "--device", "cpu",
                     "--out", str(ctx.path("runs") / "y"), "--no-progress"], "model and data", "(2,)", "(1, 8, 8)")
    cli("train into an existing run without --resume",
        lambda ctx: ["train", *TINY, "--out", str(ctx.run)], "resume")
    cli("train --resume into a folder that cannot be written",
        lambda ctx: ["train", *TINY, "--resume", "--out", str(_not_a_folder(ctx) / "run")], "cannot write")
    cli("sample -n 0", lambda ctx: ["sample", "--ckpt", str(ctx.ckpt), "-n", "0"], "-n")
    cli("sample --steps 10000", lambda ctx: ["sample", "--ckpt", str(ctx.ckpt), "--steps", "10000",
                                            "--out", str(ctx.path("s.pt")), "--no-progress"], "--steps")
    cli("sample --sampler ddim --eta nan",
        lambda ctx: ["sample", "--ckpt", str(ctx.ckpt), "--sampler", "ddim", "--eta", "nan", "--steps", "5",
                     "--out", str(ctx.path("s.pt")), "--no-progress"], "eta")
    cli("sample --out FILE.txt", lambda ctx: ["sample", "--ckpt", str(ctx.ckpt), "--out",
                                              str(ctx.path("s.txt")), "--no-progress"], "--out")
    cli("sample --out into a folder that cannot be written",
        lambda ctx: ["sample", "--ckpt", str(ctx.ckpt), "--out", str(_not_a_folder(ctx) / "s.png"),
                     "--no-progress"], "cannot write")
    cli("bpd --data digits with a 2-D toy model",
        lambda ctx: ["bpd", "--ckpt", str(ctx.ckpt), "--data", "digits", "-n", "4", "--no-progress"],
        "model and data", "(2,)", "(1, 8, 8)")
    cli("bpd --data imagenet", lambda ctx: ["bpd", "--ckpt", str(ctx.ckpt), "--data", "imagenet"], "imagenet")
    cli("bpd --json into a folder that cannot be written",
        lambda ctx: ["bpd", "--ckpt", str(ctx.ckpt), "-n", "4", "--no-progress", "--json",
                     str(_not_a_folder(ctx) / "r.json")], "cannot write")

    # -- the command line: bad checkpoint files
    def bad_ckpt(id: str, make: Callable[[Context], Path], *expect: str) -> None:
        cli(f"sample --ckpt {id}", lambda ctx: ["sample", "--ckpt", str(make(ctx)), "--out",
                                                 str(ctx.path("s.pt")), "--no-progress"], *expect,
            group="checkpoint files")
    bad_ckpt("MISSING", lambda ctx: ctx.root / "missing.pt", "no checkpoint")
    bad_ckpt("EMPTY (0 bytes)", lambda ctx: _write(ctx.path("empty.pt"), b""), "empty.pt", "not a ddpm_core")
    bad_ckpt("TRUNCATED", lambda ctx: _write(ctx.path("trunc.pt"), ctx.ckpt.read_bytes()[:3000]), "trunc.pt",
             "not a ddpm_core")
    bad_ckpt("RAW PICKLE", lambda ctx: _write(ctx.path("raw.pt"), pickle.dumps({"a": 1})), "raw.pt",
             "not a ddpm_core")
    bad_ckpt("TEXT FILE", lambda ctx: _write(ctx.path("text.pt"), b"hello\n" * 100), "text.pt", "not a ddpm_core")
    cli("sample --ckpt with a pickled object whose __reduce__ runs a shell command",
        lambda ctx: ["sample", "--ckpt", str(_save(ctx.path("evil.pt"), {"format": "ddpm_core.train/1",
                                                                          "x": _Evil(_marker(ctx))})),
                     "--out", str(ctx.path("s.pt")), "--no-progress"], "evil.pt", "not a ddpm_core",
        group="checkpoint files", harm=_code_ran)
    bad_ckpt("a plain tensor", lambda ctx: _save(ctx.path("tensor.pt"), torch.zeros(3)), "tensor.pt",
             "not a ddpm_core")
    bad_ckpt("without the 'ema' key", lambda ctx: _edit_ckpt(ctx, "noema.pt", lambda c: c.pop("ema"), False),
             "noema.pt", "ema")
    bad_ckpt("whose config is not JSON",
             lambda ctx: _edit_ckpt(ctx, "badjson.pt", lambda c: c.update(config="{not json"), False),
             "badjson.pt", "config", "json")
    bad_ckpt("whose config does not match the weights",
             lambda ctx: _edit_ckpt(ctx, "mismatch.pt", lambda c: c.update(
                 config=json.dumps({**json.loads(c["config"]), "model_overrides": {"width": 8, "depth": 1}})),
                 False), "mismatch.pt", "model", "width")
    bad_ckpt("whose config was edited (checksums kept)",
             lambda ctx: _edit_ckpt(ctx, "edited.pt", lambda c: c.update(config=c["config"].replace(" ", "  "))),
             "edited.pt", "checksum", "--no-verify")
    bad_ckpt("with a flipped exponent bit in an EMA weight",
             lambda ctx: _edit_ckpt(ctx, "flipped.pt", lambda c: _flip_exponent(c["ema"]["shadow"]["proj_in.weight"])),
             "flipped.pt", "checksum")
    bad_ckpt("with a flipped bit in the optimizer state",
             lambda ctx: _edit_ckpt(ctx, "flipped_opt.pt",
                                    lambda c: _flip_exponent(c["optimizer"]["state"][0]["exp_avg_sq"])),
             "flipped_opt.pt", "checksum")
    cli("train --resume from a checkpoint for another model",
        lambda ctx: ["train", "--out", str(_copy_run(ctx, "other")), "--resume", "--no-progress",
                     "--model-set", "width=8"], "was written for model", "this run builds model")

    # -- data files
    def cifar(id: str, make: Callable[[Context], Path], *expect: str, harm=None) -> None:
        cli(f"train --preset cifar10 with {id}",
            lambda ctx: ["train", "--preset", "cifar10", "--data-dir", str(make(ctx)), "--out",
                         str(ctx.path("runs") / "cifar"), "--steps", "1", "--model-set", "ch=32",
                         "--model-set", "num_res_blocks=1", "--device", "cpu", "--no-progress"],
            *expect, group="data files", harm=harm)
    cifar("a batch file whose pickle runs a shell command",
          lambda ctx: _cifar_dir(ctx, "evil", _Evil(_marker(ctx))), "data_batch_1", "refusing", harm=_code_ran)
    cifar("a garbage batch file", lambda ctx: _cifar_dir(ctx, "garbage", None, raw=b"not a pickle at all\n" * 50),
          "data_batch_1", "not a cifar-10 batch")
    cifar("labels that are strings", lambda ctx: _cifar_dir(ctx, "strlabels", {**_cifar_batch(),
                                                                              b"labels": [b"x"] * 4}),
          "data_batch_1", "labels")
    cifar("an empty batch file", lambda ctx: _cifar_dir(ctx, "emptybatch", None, raw=b""), "data_batch_1")
    cases.append(Case("read_cifar10 on a pickle that runs a shell command", "data files",
                      lambda ctx: _read_cifar(_cifar_dir(ctx, "evil2", _Evil(_marker(ctx)))),
                      ("data_batch_1", "refusing"), _code_ran))

    # -- writes that fail or are interrupted
    def sample_over_limit(ctx: Context, name: str) -> tuple[int, str]:
        out = ctx.path(name)
        return _with_fsize_limit(64 * 1024, lambda: run_cli(["sample", "--ckpt", str(ctx.ckpt), "-n", "20000",
                                                             "--out", str(out), "--no-progress"]))
    old = b"the previous samples\n"
    cases.append(Case("sample --out FILE.pt when the write fails (file-size limit)", "writes",
                      lambda ctx: (_write(ctx.path("w1/s.pt"), old), sample_over_limit(ctx, "w1/s.pt"))[1],
                      ("s.pt",), lambda ctx: _old_file_kept(ctx.root / "w1/s.pt", old)(ctx), cli=True))
    cases.append(Case("bpd --json FILE when the write fails (file-size limit)", "writes",
                      lambda ctx: (_write(ctx.path("w2/r.json"), old),
                                   _with_fsize_limit(len(old), lambda: run_cli(
                                       ["bpd", "--ckpt", str(ctx.ckpt), "-n", "4", "--no-progress", "--json",
                                        str(ctx.root / "w2/r.json")])))[1],
                      ("r.json",), lambda ctx: _old_file_kept(ctx.root / "w2/r.json", old)(ctx), cli=True))
    cases.append(Case("orphan .latest.pt.*.tmp files of a killed save, then --resume", "writes",
                      lambda ctx: run_cli(["train", "--out", str(_orphans(ctx)), "--resume", "--steps", "3",
                                           "--no-progress"]),
                      (), _orphans_left, cli=True, succeeds=True))
    cases.append(Case("metrics.jsonl lines past the checkpoint after a kill, then --resume", "writes",
                      lambda ctx: run_cli(["train", "--out", str(_killed_after_ckpt(ctx)), "--resume",
                                           "--steps", "6", "--no-progress"]), (), _duplicate_metrics, cli=True,
                      succeeds=True))
    return cases


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _save(path: Path, obj: Any) -> Path:
    torch.save(obj, path)
    return path


def _not_a_folder(ctx: Context) -> Path:
    return _write(ctx.path("a_file"), b"x")  # a path below a file can be neither created nor written


def _copy_run(ctx: Context, name: str) -> Path:
    import shutil
    dst = ctx.root / name
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(ctx.run, dst)
    return dst


def _read_cifar(root: Path):
    from ddpm_core.data.readers import read_cifar10
    return read_cifar10(root, "train")


def _orphans(ctx: Context) -> Path:
    run = _copy_run(ctx, "orphans")
    for i in range(3):
        _write(run / f".latest.pt.abc{i}.tmp", b"\0" * 1000)
    return run


def _orphans_left(ctx: Context) -> Optional[str]:
    left = list((ctx.root / "orphans").glob(".*.tmp"))
    return f"{len(left)} orphan temporary files left" if left else None


def _killed_after_ckpt(ctx: Context) -> Path:
    """A run whose last checkpoint is at step 4 but which logged steps 5 and 6 (and half a line) before it was
    killed; resuming it to step 6 logs steps 5 and 6 again."""
    run = _copy_run(ctx, "killed")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    extra = [json.dumps({**json.loads(lines[-1]), "step": s}) for s in (5, 6)]
    (run / "metrics.jsonl").write_text("\n".join(lines + extra) + '\n{"step": 7, "lo')
    return run


def _duplicate_metrics(ctx: Context) -> Optional[str]:
    steps = []
    for line in (ctx.root / "killed" / "metrics.jsonl").read_text().splitlines():
        try:
            steps.append(json.loads(line)["step"])
        except (json.JSONDecodeError, KeyError):
            return f"a broken line in metrics.jsonl: {line!r}"
    dup = sorted({s for s in steps if steps.count(s) > 1})
    return f"duplicate steps {dup} in metrics.jsonl" if dup else None


def probe(root: Optional[Path] = None) -> list[tuple[Case, Outcome]]:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Context(Path(root or tmp))
        return [(case, classify(case, ctx)) for case in build_cases(ctx)]


def main() -> None:
    results = probe()
    counts: dict[str, int] = {}
    for case, out in results:
        counts[out.kind] = counts.get(out.kind, 0) + 1
        print(f"{out.kind:<9} [{case.group}] {case.id}: {re.sub(r'/tmp/[^ ]*/', '.../', out.detail)}")
    print(f"\n{len(results)} cases: " + ", ".join(f"{k} {counts.get(k, 0)}"
                                             for k in ("clear", "confusing", "silent", "harm")))


if __name__ == "__main__":
    main()
