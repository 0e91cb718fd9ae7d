"""experiments/exact_likelihood_table.py and experiments/digits_ode_likelihood.py: the files chapter 18 reads, on
tiny smoke runs with the shipped models."""
import json
import math
from pathlib import Path

from conftest import load_module

ROOT = Path(__file__).resolve().parent.parent
table_script = load_module("exact_likelihood_table", ROOT / "experiments" / "exact_likelihood_table.py")
digits_script = load_module("digits_ode_likelihood", ROOT / "experiments" / "digits_ode_likelihood.py")


def test_table_smoke_run_writes_what_the_chapter_reads(tmp_path, one_thread):
    out = tmp_path / "table.json"
    table_script.main(["--only", "mixture1d", "--n", "8", "--draws", "1", "--out", str(out)])
    r = json.loads(out.read_text())["mixture1d"]
    assert {"command", "machine", "date", "seconds"} <= set(r) and "--out" in r["command"]
    assert r["n"] == 8 and r["d"] == 1 and len(r["ode_model"]["first16"]) == 8
    assert r["ode_exact_exact_prior"]["max_abs_err"] < 1e-3
    for key in ("bound_model_beta", "bound_model_beta_tilde", "bound_oracle_beta", "bound_oracle_beta_tilde"):
        b = r[key]
        assert len(b["terms_mean"]) == 1000
        parts = sum(p["mean"] for p in b["parts"].values())
        assert math.isclose(parts, b["total"]["mean"], rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(b["gap"]["mean"], b["total"]["mean"] - r["true"]["mean"], rel_tol=1e-9, abs_tol=1e-9)
    assert {"bound_model_minus_oracle_beta", "bound_model_minus_oracle_beta_tilde"} <= set(r)


def test_digits_smoke_run_writes_what_the_chapter_reads(tmp_path, one_thread):
    out = tmp_path / "digits.json"
    digits_script.main(["--n", "2", "--chunk", "2", "--tol", "1e-2", "--out", str(out)])
    r = json.loads(out.read_text())
    assert {"command", "machine", "date"} <= set(r) and r["n"] == 2 and r["D"] == 64
    assert len(r["ode"]["bpd"]) == 2 and all(len(v) == 2 for v in r["ode"]["bpd"])
    assert r["ode"]["n_done"] == 2 and r["ode"]["hutchinson_sd_per_image"] >= 0
    # bits/dim of 8-bit data: positive and far below the 8 bits of raw bytes for a trained model
    assert 0 < r["ode"]["mean"] < 8
    for key in ("bound_clipped", "bound_unclipped"):
        assert len(r[key]["bpd"]) == 2 and 0 < r[key]["mean"] < 8
