"""Rewrite code written for ddpm_core 0.1 to the 0.2 API (see CHANGELOG.md), in notebooks (cell ids kept) and scripts.

    python tools/migrate_to_0_2.py book/08_sampling.ipynb my_homework.py          # rewrite in place
    python tools/migrate_to_0_2.py --dry-run book/*.ipynb                         # only list what would change
    python tools/migrate_to_0_2.py --models-dir models book/*.ipynb               # also pass models_dir= to
                                                                                  # load_pretrained (chapters)

What it rewrites (behaviour kept: same random numbers, same results):

    schedule.gather("alpha_bars", t, x)        -> schedule.gather(schedule.alpha_bars, t, x)
    d.sample(model, shape, ...)                -> ddpm_core.sample(model, d, shape, ...)
    ddim_sample(d, model, shape, num_steps=S)  -> ddpm_core.sample(model, d, shape, sampler="ddim", steps=S)
    d.loss_simple(model, x0, t, noise, ...)    -> ddpm_core.loss(d, model, x0, t=t, noise=noise, ...)
    d.bits_per_dim(model, x0, ...)             -> ddpm_core.bits_per_dim(d, model, x0, ...,
                                                                      clip_denoised=d.clip_denoised)
    bits_per_dim(d, model, x0, ...)            -> the same with clip_denoised=d.clip_denoised (0.1's default)
    loss_vlb(d, model, x0, ...)                -> ddpm_core.loss(d, model, x0, objective="vlb", ...)
    from ddpm_core.nn import PRESETS as X      -> from ddpm_core.nn import NETWORKS as X
    from ddpm_core import <moved name>         -> from its module (ddpm_core.likelihood, .losses, ...)

and adds ``import ddpm_core`` where a rewritten call needs it. It does not rewrite ``gather`` with a name held in a
variable, nor loops over ``p_sample`` that ``ddpm_core.sample(..., share_noise=k)`` can replace: it lists those.
Review the diff; clip_denoised=d.clip_denoised keeps 0.1's numbers and may be simplified to True or dropped.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

MOVED = {
    "linear_betas": "schedules", "cosine_betas": "schedules", "quadratic_betas": "schedules",
    "discretized_gaussian_bin_probs": "losses", "gaussian_log_likelihood": "losses", "mean_flat": "losses",
    "nats_to_bits_per_dim": "losses", "PARAMETERIZATIONS": "diffusion", "VARIANCES": "diffusion",
    "SampleResult": "samplers", "respace": "samplers", "respaced_betas": "samplers",
    "BoundTerms": "likelihood", "RateDistortion": "likelihood", "prior_bpd": "likelihood", "vb_term_bpd": "likelihood",
    "UNet": "nn", "UNetConfig": "nn", "MLPDenoiser": "nn", "MLPConfig": "nn",
    "load_checkpoint": "train", "train_or_load": "train",
}
REMOVED_IMPORTS = {"ddim_sample", "loss_vlb"}   # their calls become ddpm_core.sample / ddpm_core.loss
NOT_DIFFUSIONS = {"trainer", "tr", "self", "ddpm_core", "np", "random", "torch"}
DDIM_ARG = 'sampler="ddim"'
VLB_ARG = 'objective="vlb"'


def _call_end(s: str, open_i: int) -> tuple[int, list[str]]:
    """For s[open_i] == '(': index of the matching ')' and the top-level argument texts."""
    depth, args, start, i = 0, [], open_i + 1, open_i
    while i < len(s):
        c = s[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                args.append(s[start:i])
                return i, [a for a in args if a.strip()]
        elif c == "," and depth == 1:
            args.append(s[start:i])
            start = i + 1
        elif c in "\"'":
            q = s[i]
            i += 1
            while i < len(s) and s[i] != q:
                i += 2 if s[i] == "\\" else 1
        elif c == "#":
            while i < len(s) and s[i] != "\n":
                i += 1
            continue
        i += 1
    raise ValueError("unbalanced parentheses")


def _is_kw(arg: str) -> bool:
    return re.match(r"\s*\w+\s*=[^=]", arg) is not None


def _join(parts: list[str]) -> str:
    """Arguments joined by commas; an argument that starts on a new line keeps its line break and indentation."""
    out = ""
    for i, p in enumerate(parts):
        text = p.rstrip() if "\n" in p.split(p.strip()[:1] or " ", 1)[0] else p.strip()
        out += ("" if i == 0 else "," if text.startswith("\n") else ", ") + text
    return out


def _rewrite(s: str, pattern: str, build) -> str:
    out, pos = [], 0
    for m in re.finditer(pattern, s):
        if m.start() < pos:
            continue
        open_i = m.end() - 1
        end, args = _call_end(s, open_i)
        new = build(m, args)
        if new is None:
            continue
        out += [s[pos:m.start()], new]
        pos = end + 1
    out.append(s[pos:])
    return "".join(out)


def _with_clip(obj: str, args: list[str]) -> list[str]:
    if any(re.match(r"\s*clip_denoised\s*=", a) for a in args):
        return args
    return args + [f"clip_denoised={obj}.clip_denoised"]


def migrate_source(src: str, models_dir: str | None = None) -> tuple[str, list[str]]:
    """The 0.2 spelling of ``src`` and notes on what was left for a person to rewrite."""
    notes: list[str] = []
    s = src
    # schedule.gather("name", ...) -> schedule.gather(schedule.name, ...)
    s = re.sub(r"([\w.]+)\.gather\(\s*[\"'](\w+)[\"']", r"\1.gather(\1.\2", s)
    if re.search(r"\.gather\(\s*[A-Za-z_]\w*\s*,", s) and "schedule" in s:
        for m in re.finditer(r"([\w.]+)\.gather\(\s*([A-Za-z_]\w*)\s*,", s):
            if not m.group(2).startswith(m.group(1).split(".")[0]) and m.group(1) not in ("p_pixel",):
                notes.append(f"gather by a name held in a variable: {m.group(0)}... (pass the tensor)")

    def method_sample(m, args):
        obj = m.group(1)
        if obj in NOT_DIFFUSIONS or obj.split(".")[-1] in NOT_DIFFUSIONS or len(args) < 2 or _is_kw(args[0]):
            return None
        return f"ddpm_core.sample({_join([args[0], obj] + args[1:])})"
    s = _rewrite(s, r"\b([A-Za-z_][\w.]*)\.sample\(", method_sample)

    def ddim(m, args):
        rest = [re.sub(r"^\s*num_steps\s*=", "steps=", a) for a in args[3:]]
        return f"ddpm_core.sample({_join([args[1], args[0], args[2], DDIM_ARG] + rest)})"
    s = _rewrite(s, r"(?<![\w.])ddim_sample\(", ddim)

    def loss_simple(m, args):
        obj, names, out = m.group(1), ["t", "noise", "generator", "reduction"], []
        for a in args[2:]:
            out.append(a if _is_kw(a) else f"{names[len(out)]}={a.strip()}")
        return f"ddpm_core.loss({_join([obj] + args[:2] + out)})"
    s = _rewrite(s, r"\b([A-Za-z_][\w.]*)\.loss_simple\(", loss_simple)

    def loss_vlb(m, args):
        return f"ddpm_core.loss({_join(args[:3] + [VLB_ARG] + args[3:])})"
    s = _rewrite(s, r"(?<![\w.])loss_vlb\(", loss_vlb)

    def method_bpd(m, args):
        obj = m.group(1)
        if obj == "ddpm_core":
            return None
        return f"ddpm_core.bits_per_dim({_join(_with_clip(obj, [obj] + args))})"
    s = _rewrite(s, r"\b([A-Za-z_][\w.]*)\.bits_per_dim\(", method_bpd)

    def function_bpd(m, args):
        if len(args) < 3 or _is_kw(args[0]):
            return None
        return f"{m.group(0)[:-1]}({_join(_with_clip(args[0].strip(), args))})"
    s = _rewrite(s, r"(?<![\w.])(?:ddpm_core\.)?bits_per_dim\(", function_bpd)

    if models_dir is not None:
        def pretrained(m, args):
            if any(re.match(r"\s*models_dir\s*=", a) for a in args):
                return None
            return f"{m.group(0)[:-1]}({_join(args[:1] + [f'models_dir={models_dir!r}'] + args[1:])})"
        s = _rewrite(s, r"(?<![\w.])(?:ddpm_core\.)?load_pretrained\(", pretrained)

    # imports
    s = re.sub(r"from ddpm_core\.nn import (.*)\bPRESETS as NETWORKS\b", r"from ddpm_core.nn import \1NETWORKS", s)
    s = re.sub(r"from ddpm_core\.nn import (.*)\bPRESETS\b", r"from ddpm_core.nn import \1NETWORKS", s)

    def fix_import(m):
        module, names = m.group(1), [n.strip() for n in m.group(2).replace("\n", " ").strip("() ").split(",")]
        names = [n for n in names if n]
        keep = [n for n in names if n.split(" as ")[0].strip() not in REMOVED_IMPORTS]
        moved: dict[str, list[str]] = {}
        if module == "ddpm_core":
            for n in list(keep):
                if n.split(" as ")[0].strip() in MOVED:
                    keep.remove(n)
                    moved.setdefault(MOVED[n.split(" as ")[0].strip()], []).append(n)
        lines = [f"from {module} import {', '.join(keep)}"] if keep else []
        lines += [f"from ddpm_core.{mod} import {', '.join(ns)}" for mod, ns in sorted(moved.items())]
        return "\n".join(lines)
    s = re.sub(r"^from (ddpm_core(?:\.\w+)*) import (\([^)]*\)|[^\n]*)$", fix_import, s, flags=re.M)

    if "ddpm_core." in s and not re.search(r"^import ddpm_core\b", s, re.M) and s != src:
        notes.append("needs `import ddpm_core` (added to the first import block)")
    if re.search(r"\.p_sample\(", s) and "for " in s:
        notes.append("a loop over p_sample: ddpm_core.sample(..., x_start=, t_start=, share_noise=) may replace it")
    return s, notes


def _add_import(sources: list[str]) -> list[str]:
    """Insert ``import ddpm_core`` into the first source that imports from ddpm_core (or the first one)."""
    if any(re.search(r"^import ddpm_core\b", s, re.M) for s in sources):
        return sources
    if not any("ddpm_core." in s and re.search(r"ddpm_core\.(sample|loss|bits_per_dim)\(", s) for s in sources):
        return sources
    for i, s in enumerate(sources):
        m = re.search(r"^(from ddpm_core[\w.]* import .*)$", s, re.M)
        if m:
            sources[i] = s[:m.start()] + "import ddpm_core\n" + s[m.start():]
            return sources
    return sources


def migrate_file(path: Path, models_dir: str | None, dry_run: bool) -> list[str]:
    report = []
    if path.suffix == ".ipynb":
        import nbformat
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if c.cell_type == "code"]
        new = []
        for c in cells:
            text, notes = migrate_source(c.source, models_dir)
            new.append(text)
            report += [f"{path}: cell {c.get('id', '?')}: {n}" for n in notes if "import ddpm_core" not in n]
        new = _add_import(new)
        changed = [c for c, t in zip(cells, new) if c.source != t]
        for c, t in zip(cells, new):
            c.source = t
        if changed and not dry_run:
            nbformat.write(nb, path)
        report += [f"{path}: rewrote {len(changed)} cell(s): {', '.join(c.get('id', '?') for c in changed)}"]
    else:
        src = path.read_text()
        text, notes = migrate_source(src, models_dir)
        text = _add_import([text])[0]
        report += [f"{path}: {n}" for n in notes if "import ddpm_core" not in n]
        if text != src:
            report.append(f"{path}: rewritten")
            if not dry_run:
                path.write_text(text)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", type=Path, help=".ipynb notebooks or .py files")
    p.add_argument("--models-dir", default=None, help="pass models_dir=DIR to load_pretrained calls without one")
    p.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    args = p.parse_args(argv)
    for path in args.paths:
        for line in migrate_file(path, args.models_dir, args.dry_run):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
