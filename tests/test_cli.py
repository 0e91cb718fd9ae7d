"""The ``ddpm`` command line: help for every subcommand, train -> sample -> bpd on a 2-D toy, errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from ddpm_core.cli import build_parser, main
from ddpm_core.train import read_checkpoint

TINY = ["--preset", "toy2d", "--steps", "4", "--batch-size", "32", "--log-every", "2", "--sample-every", "0",
        "--no-progress", "--set", "toy_size=256", "--set", "T=100", "--set", "beta_T=0.1",
        "--model-set", "width=32", "--model-set", "depth=1"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest (conftest.py)


@pytest.mark.parametrize("command", ["train", "sample", "bpd", "presets"])
def test_help_of_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: ddpm {command}" in out
    sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
    for action in sub._actions:                      # every option is explained
        assert action.help, action.option_strings
        for opt in action.option_strings:
            assert opt in out


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in ("cifar10", "celebahq256", "lsun256", "digits", "toy2d"):
        assert name in out
    assert main(["presets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cifar10"]["lr"] == 2e-4


def test_train_then_sample_then_bpd(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    assert "steps 0 -> 4" in capsys.readouterr().out
    ckpt = read_checkpoint(run / "latest.pt")
    assert ckpt["step"] == 4
    assert ckpt["ema"]["shadow"]["proj_in.weight"].shape == (32, 2)      # the --model-set overrides were used

    # resume and extend the run; the configuration comes from the checkpoint when --preset is left out
    assert main(["train", "--out", str(run), "--resume", "--steps", "6", "--no-progress", "--sample-every", "6",
                 "--sample-steps", "10"]) == 0
    assert read_checkpoint(run / "latest.pt")["step"] == 6
    assert (run / "samples" / "step_0000006.png").stat().st_size > 0
    assert main(["train", *TINY, "--out", str(run)]) == 1                  # no --resume: refuses to overwrite
    assert "resume" in capsys.readouterr().err

    assert main(["sample", "--ckpt", str(run), "-n", "10", "--out", str(tmp_path / "s.pt"), "--no-progress"]) == 0
    x = torch.load(tmp_path / "s.pt", weights_only=True)
    assert x.shape == (10, 2) and torch.isfinite(x).all()
    assert main(["sample", "--ckpt", str(run / "latest.pt"), "-n", "10", "--out", str(tmp_path / "s.png"),
                 "--no-progress"]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0
    for extra in (["--steps", "10"], ["--steps", "10", "--sampler", "ddim"]):
        assert main(["sample", "--ckpt", str(run), "-n", "5", "--out", str(tmp_path / "f.pt"), "--no-progress",
                     *extra]) == 0
        assert "10 steps" in capsys.readouterr().out
        assert torch.load(tmp_path / "f.pt", weights_only=True).shape == (5, 2)

    capsys.readouterr()
    assert main(["bpd", "--ckpt", str(run), "-n", "8", "--batch-size", "4", "--json", str(tmp_path / "b.json"),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "bound L on 8 swiss_roll test examples" in out and "L_T (prior)" in out
    assert "L_0 (t = 1)" in out and "t = 2..100" in out
    summary = json.loads((tmp_path / "b.json").read_text())
    parts = summary["L_T"] + sum(summary["terms"].values())
    assert summary["total"] == pytest.approx(parts, rel=1e-6)
    assert 0 < summary["L_T"] < 0.1           # sum of betas = 5: q(x_T | x_0) is close to N(0, I)


def test_errors_name_the_bad_option(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--preset", "imagenet", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--preset" in err and "invalid choice: 'imagenet'" in err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "toy2d", "--out", str(tmp_path), "--steps", "1.5"])
    assert "--steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "toy2d", "--out", str(tmp_path), "--steps", "-1"])
    assert "steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "toy2d", "--out", str(tmp_path), "--set", "ema_decay=2"])
    assert "ema_decay" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--out", str(tmp_path / "nothing")])
    assert "--preset" in capsys.readouterr().err
    assert main(["sample", "--ckpt", str(tmp_path / "missing.pt")]) == 1
    assert "no checkpoint" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "ddpm_core", "presets"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "cifar10" in proc.stdout
