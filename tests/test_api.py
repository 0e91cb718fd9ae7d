"""The public API of ddpm_core 0.2: a small, documented, light top level; its snapshot; one PRESETS; CLI flags from
TrainConfig; no dependence on the repository's layout (a wheel installed elsewhere runs the README's example)."""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import ddpm_core

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).resolve().parent / "golden" / "public_api.json"
HEAVY = ("ddpm_core.train", "ddpm_core.metrics", "ddpm_core.convert", "ddpm_core.data", "ddpm_core.exercises",
         "ddpm_core.viz", "ddpm_core.cli")


def _loaded_by(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys; print(sorted(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=REPO,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal printed by the child


def test_import_ddpm_core_does_not_load_the_training_engine_or_other_heavy_parts():
    modules = _loaded_by("import ddpm_core")
    loaded = [m for m in modules if m.startswith(HEAVY)]
    assert loaded == [], f"import ddpm_core loaded {loaded}"
    assert "ddpm_core.objectives" in modules and "ddpm_core.samplers" in modules
    # the lazy names load their module on first use, and only then
    after = _loaded_by("import ddpm_core; ddpm_core.TrainConfig")
    assert "ddpm_core.train.engine" in after and "ddpm_core.metrics" not in after


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(no signature)"


def public_api() -> dict:
    """Names and signatures of everything ``ddpm_core.__all__`` exposes (classes with their public methods)."""
    api: dict = {}
    for name in ddpm_core.__all__:
        obj = getattr(ddpm_core, name)
        if inspect.isclass(obj):
            members = {}
            for attr, value in sorted(vars(obj).items()):
                if attr.startswith("_"):
                    continue
                if isinstance(value, property):
                    members[attr] = "property"
                elif isinstance(value, (classmethod, staticmethod)):
                    members[attr] = _signature(getattr(obj, attr))
                elif inspect.isfunction(value):
                    members[attr] = _signature(value)
            api[name] = {"class": _signature(obj), "members": members}
        elif callable(obj):
            api[name] = {"function": _signature(obj)}
        else:
            api[name] = {"value": repr(obj)}
    return api


def test_public_api_matches_the_snapshot():
    current = public_api()
    if os.environ.get("UPDATE_API_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    stored = json.loads(SNAPSHOT.read_text())
    changed = sorted(k for k in set(stored) | set(current) if stored.get(k) != current.get(k))
    assert not changed, (
        f"the public API of ddpm_core changed in {changed}. What students call must change deliberately: add a line "
        "for it to CHANGELOG.md (under the next version, old -> new), then regenerate the snapshot with "
        "`UPDATE_API_SNAPSHOT=1 pytest tests/test_api.py` and commit both.")


def test_top_level_is_small_grouped_and_every_name_is_documented_with_its_equation():
    names = [n for n in ddpm_core.__all__ if n != "__version__"]
    assert 12 <= len(names) <= 18 and len(set(names)) == len(names)
    doc = ddpm_core.__doc__
    for layer in ("schedule", "diffusion", "objectives", "sampling", "likelihood", "models", "training"):
        assert re.search(rf"^{layer}\s", doc, re.M), layer
    for name in names:
        assert f"{name}`" in doc, f"{name} is not listed in the package docstring"
        obj_doc = inspect.getdoc(getattr(ddpm_core, name)) or ""
        assert obj_doc, f"{name} has no docstring"
    cites = ("Eq.", "Algorithm", "Sec.", "App.")
    for name in ("Schedule", "GaussianDiffusion", "loss", "sample", "bits_per_dim", "rate_distortion", "normal_kl",
                 "discretized_gaussian_log_likelihood", "build_model", "Trainer"):
        assert any(c in inspect.getdoc(getattr(ddpm_core, name)) for c in cites), f"{name} cites no equation"


def test_sample_arguments_after_shape_are_keyword_only():
    params = list(inspect.signature(ddpm_core.sample).parameters.values())
    assert [p.name for p in params[:3]] == ["model", "diffusion", "shape"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[3:])
    loss_params = list(inspect.signature(ddpm_core.loss).parameters.values())
    assert [p.name for p in loss_params[:3]] == ["diffusion", "model", "x0"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in loss_params[3:])


def test_names_of_0_1_still_resolve_with_a_warning_or_say_what_replaces_them():
    from ddpm_core.likelihood import prior_bpd
    with pytest.warns(DeprecationWarning, match="ddpm_core.likelihood"):
        assert ddpm_core.prior_bpd is prior_bpd
    with pytest.raises(AttributeError, match="objective='vlb'"):
        ddpm_core.loss_vlb
    with pytest.raises(AttributeError, match="sampler='ddim'"):
        ddpm_core.ddim_sample
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ddpm_core.train.PRESETS is ddpm_core.train.config.PRESETS      # subpackages: no warning


def test_one_presets_table():
    import ddpm_core.nn
    from ddpm_core.train import PRESETS
    assert not hasattr(ddpm_core.nn, "PRESETS")
    assert {c.model for c in PRESETS.values()} <= set(ddpm_core.nn.NETWORKS)


def test_train_flags_are_generated_from_trainconfig(tmp_path):
    from ddpm_core.cli import build_parser, main
    from ddpm_core.train import TrainConfig
    from ddpm_core.train.config import FIELD_HELP

    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    flags = {a.dest: a for a in train._actions}
    for f in dataclasses.fields(TrainConfig):
        assert f.name in FIELD_HELP, f"TrainConfig.{f.name} has no entry in FIELD_HELP"
        if f.name in ("model_overrides", "progress"):           # --model-set and --no-progress
            continue
        assert flags[f.name].help == FIELD_HELP[f.name]
        assert flags[f.name].option_strings[0] == "--" + f.name.replace("_", "-")
    run = tmp_path / "run"
    assert main(["train", "--preset", "toy2d", "--out", str(run), "--steps", "1", "--batch-size", "8",
                 "--toy-size", "64", "--T", "50", "--beta-T", "0.1", "--loss", "hybrid", "--adam-betas", "0.8",
                 "0.99", "--ema-warmup", "--no-bf16", "--sample-every", "0", "--ckpt-every", "0", "--no-progress",
                 "--model-set", "width=16"]) == 0
    saved = TrainConfig.from_json((run / "config.json").read_text())
    assert (saved.steps, saved.batch_size, saved.toy_size, saved.T, saved.beta_T, saved.loss) == (
        1, 8, 64, 50, 0.1, "hybrid")
    assert saved.adam_betas == (0.8, 0.99) and saved.ema_warmup and not saved.bf16
    assert saved.model_overrides["width"] == 16


def test_pretrained_models_are_found_by_argument_or_setting_never_by_location(tmp_path, monkeypatch):
    from ddpm_core.train import Trainer, get_preset
    from ddpm_core.train.pretrained import MODELS_ENV, export_pretrained, load_pretrained

    config = get_preset("toy2d", steps=2, batch_size=8, toy_size=64, sample_every=0, ckpt_every=0, progress=False,
                        model_overrides={"width": 16, "depth": 1})
    monkeypatch.delenv(MODELS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=MODELS_ENV):
        load_pretrained(config, train_if_missing=False)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_pretrained(config, models_dir=tmp_path / "absent", train_if_missing=False)
    trainer = Trainer(config, out_dir=str(tmp_path / "run"))
    trainer.fit()
    shipped = export_pretrained(tmp_path / "run", tmp_path / "models")
    model, diffusion, cfg = load_pretrained(config, models_dir=tmp_path / "models", train_if_missing=False)
    assert cfg == config and diffusion.T == config.T
    torch.testing.assert_close(model.state_dict(), trainer.ema.shadow.state_dict())
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    assert load_pretrained(config, train_if_missing=False)[2] == config
    assert shipped.parent == tmp_path / "models"


def test_to_levels_inverts_to_unit_range():
    from ddpm_core.data import to_levels, to_unit_range
    q = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_levels(to_unit_range(q)), q)
    assert to_levels(torch.tensor([-1.5, 2.0])).tolist() == [0, 255]
    with pytest.raises(TypeError, match="floating-point"):
        to_levels(q)


def test_citation_names_version_and_commit():
    from ddpm_core.provenance import citation, version_info
    info = version_info()
    assert info["ddpm_core"] == ddpm_core.__version__
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if git.returncode == 0 and Path(ddpm_core.__file__).resolve().parent.parent == REPO:
        assert info["commit"] == git.stdout.strip()
        assert git.stdout.strip()[:12] in citation()
    assert citation().startswith(f"ddpm_core {ddpm_core.__version__}")


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_runs_the_readme_example(tmp_path):
    """Build the wheel, install it (without dependencies) into a fresh venv outside the repository, make the test
    environment's torch, numpy, ... visible to it (not its ddpm_core), and run the README's example from there."""
    wheels, venv, src = tmp_path / "wheels", tmp_path / "venv", tmp_path / "src"
    # build from a copy of what the package is made of, so that no build/ folder lands in the checkout
    shutil.copytree(REPO / "ddpm_core", src / "ddpm_core", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(src)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("ddpm_core-*.whl"))
    assert f"-{ddpm_core.__version__}-" in wheel.name
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True)
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = Path(torch.__file__).resolve().parent.parent          # where this environment's torch lives
    (site / "_test_dependencies.pth").write_text(f"{deps}\n")  # a path line: its own .pth files are not run
    example = re.search(r"## Use the package\n\n```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    script = tmp_path / "example.py"
    script.write_text("import ddpm_core, sys\n"
                      f"assert ddpm_core.__file__.startswith({str(site)!r}), ddpm_core.__file__\n"
                      + example.group(1))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DDPM_CORE_MODELS")}
    env["OMP_NUM_THREADS"] = "1"
    out = subprocess.run([str(python), str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"ddpm_core {ddpm_core.__version__}" in out.stdout and "torch.Size([4, 1, 8, 8])" in out.stdout
    cli = subprocess.run([str(venv / "bin" / "ddpm"), "presets"], capture_output=True, text=True, cwd=tmp_path,
                         env=env)
    assert cli.returncode == 0 and "cifar10" in cli.stdout, cli.stderr[-2000:]
