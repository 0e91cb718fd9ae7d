"""experiments/digits_models.py: the file layout the chapters read, on a few-step smoke run."""
import json
import math
from pathlib import Path

from conftest import load_module

ROOT = Path(__file__).resolve().parent.parent
digits_models = load_module("digits_models", ROOT / "experiments" / "digits_models.py")


def test_digits_models_smoke_run_writes_what_the_chapters_read(tmp_path, one_thread):
    out = tmp_path / "results.json"
    args = ["--only", "digits_mean_mse", "--device", "cpu", "--steps", "2", "--n-samples", "6", "--eval-steps", "3",
            "--table-samples", "6", "--table-steps", "3", "--n-test", "3", "--cache-dir", str(tmp_path / "cache"),
            "--models-dir", str(tmp_path / "models"), "--out", str(out)]
    digits_models.main(args + ["--measure", "table"])
    first = json.loads(out.read_text())
    run = first["variants"]["digits_mean_mse"]
    assert run["config"]["parameterization"] == "mean" and run["config"]["loss"] == "simple"
    assert run["train"]["steps"] == 2 and "--measure table" in run["train"]["command"]
    assert run["train"]["last_logged"]["step"] == 2 and run["train"]["last_logged"]["loss"] > 0
    table = run["table"]
    T = run["config"]["T"]
    assert table["n_test"] == 3 and table["sample_steps"] == 3 and table["n_samples"] == 6
    assert len(table["bpd_terms_mean"]) == len(table["x0_mse_mean"]) == len(table["eps_mse_mean"]) == T
    assert math.isclose(table["bpd"]["prior"] + sum(table["bpd_terms_mean"]), table["bpd"]["total"], rel_tol=1e-9)
    assert math.isclose(table["bpd_terms_mean"][0], table["bpd"]["decoder"], rel_tol=1e-9)
    assert table["fd_digits"] > 0 and table["bpd_std_error"] >= 0
    assert {"command", "machine", "date"} <= set(table) and "ema_raw" not in run
    assert len(list((tmp_path / "models").glob("digits_mean_mse-*.pt"))) == 1
    # a second run measures something else: the cached model is reused (no new training record) and the
    # table block is kept as it was
    digits_models.main(args + ["--measure", "ema_raw"])
    second = json.loads(out.read_text())["variants"]["digits_mean_mse"]
    assert second["train"] == run["train"] and second["table"] == table
    assert second["ema_raw"]["n_samples"] == 6 and second["ema_raw"]["eval_steps"] == 3
    assert second["ema_raw"]["fd_digits_ema"] > 0 and second["ema_raw"]["fd_digits_raw"] > 0


def test_digits_models_sweep_merges_runs(tmp_path, one_thread):
    out = tmp_path / "results.json"
    args = ["--only", "digits", "--device", "cpu", "--steps", "2", "--n-samples", "4", "--measure", "sweep",
            "--cache-dir", str(tmp_path / "cache"), "--models-dir", str(tmp_path / "models"), "--out", str(out)]
    digits_models.main(args + ["--sweep-steps", "2", "3"])
    digits_models.main(args + ["--sweep-steps", "3", "5"])
    sweep = json.loads(out.read_text())["variants"]["digits"]["sweep"]
    assert sorted({r["steps"] for r in sweep["rows"]}) == [2, 3, 5]
    assert len(sweep["rows"]) == 3 * 3  # three samplers per step count, step count 3 measured once (the latest)
    assert [r["steps"] for r in sweep["runs"]] == [[2], [3, 5]]
    assert all("--sweep-steps" in r["command"] and r["machine"] for r in sweep["runs"])


guidance_sweep = load_module("guidance_sweep", ROOT / "experiments" / "guidance_sweep.py")


def test_guidance_sweep_smoke_run_writes_what_chapter_21_reads(tmp_path, one_thread):
    out = tmp_path / "sweep.json"
    guidance_sweep.main(["--train-steps", "2", "--per-class", "1", "--steps", "2", "--scales", "0", "2", "--bootstrap", "3",
                         "--cache-dir", str(tmp_path / "cache"), "--models-dir", str(tmp_path / "models"),
                         "--out", str(out)])
    res = json.loads(out.read_text())
    train = res["train"]
    assert train["steps"] == 2 and train["config"]["label_dropout"] > 0
    assert train["config"]["model_overrides"]["num_classes"] == 10
    assert {"command", "machine", "date", "train_seconds"} <= set(train) and train["last_logged"]["step"] == 2
    assert len(list((tmp_path / "models").glob("digits_cond-*.pt"))) == 1
    sweep = res["sweep"]
    assert [r["w"] for r in sweep["rows"]] == [0.0, 2.0] and sweep["steps"] == 2 and sweep["per_class"] == 1
    for r in sweep["rows"]:
        assert 0 <= r["accuracy"] <= 1 and r["fd_digits"] > 0 and len(r["accuracy_per_class"]) == 10
        assert r["fd_digits_bootstrap_std"] >= 0 and r["n_bootstrap"] == 3
    assert {"command", "machine", "date"} <= set(sweep)
