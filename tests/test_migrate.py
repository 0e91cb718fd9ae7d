"""tools/migrate_to_0_2.py: 0.1 code rewritten to the 0.2 API, and the rewritten code runs."""
from pathlib import Path

import torch

from conftest import load_module

migrate = load_module("migrate_to_0_2", Path(__file__).resolve().parents[1] / "tools" / "migrate_to_0_2.py")

OLD = '''from ddpm_core import GaussianDiffusion, Schedule, prior_bpd, vb_term_bpd
from ddpm_core.samplers import ddim_sample, strided_timesteps
from ddpm_core.likelihood import bits_per_dim, loss_vlb
from ddpm_core.nn import PRESETS as NETWORKS

schedule = Schedule.linear(T=20, beta_1=1e-3, beta_T=0.2)
diffusion = GaussianDiffusion(schedule, clip_denoised=False)
model = lambda x, t: (1 - schedule.gather("alpha_bars", t, x)).sqrt() * x
x = diffusion.sample(model, (4, 2), generator=torch.Generator().manual_seed(0),
                     progress=False)
y = ddim_sample(diffusion, model, (4, 2), num_steps=5, eta=0.0, x_start=x)
l1 = diffusion.loss_simple(model, x, torch.tensor([1, 2, 3, 4]), reduction="none")
l2 = loss_vlb(diffusion, model, x.clamp(-1, 1), decoder="gaussian")
xq = ((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
b = diffusion.bits_per_dim(model, xq, progress=False)
c = bits_per_dim(diffusion, model, xq, progress=False)
samples = trainer.sample(10)
'''


def test_rewrites_every_0_1_spelling():
    new, notes = migrate.migrate_source(OLD)
    assert ("from ddpm_core import GaussianDiffusion, Schedule\n"
            "from ddpm_core.likelihood import prior_bpd, vb_term_bpd") in new
    assert "from ddpm_core.samplers import strided_timesteps\n" in new
    assert "from ddpm_core.likelihood import bits_per_dim\n" in new
    assert "from ddpm_core.nn import NETWORKS\n" in new
    assert 'schedule.gather(schedule.alpha_bars, t, x)' in new
    assert "x = ddpm_core.sample(model, diffusion, (4, 2), generator=torch.Generator().manual_seed(0),\n" in new
    assert 'y = ddpm_core.sample(model, diffusion, (4, 2), sampler="ddim", steps=5, eta=0.0, x_start=x)' in new
    assert 'l1 = ddpm_core.loss(diffusion, model, x, t=torch.tensor([1, 2, 3, 4]), reduction="none")' in new
    assert 'l2 = ddpm_core.loss(diffusion, model, x.clamp(-1, 1), objective="vlb", decoder="gaussian")' in new
    assert ("b = ddpm_core.bits_per_dim(diffusion, model, xq, progress=False, "
            "clip_denoised=diffusion.clip_denoised)") in new
    assert ("c = bits_per_dim(diffusion, model, xq, progress=False, "
            "clip_denoised=diffusion.clip_denoised)") in new
    assert "samples = trainer.sample(10)" in new                       # Trainer.sample is not the diffusion's
    assert migrate._add_import([new])[0].startswith("import ddpm_core\n")
    assert not notes or all("import ddpm_core" in n for n in notes)


def test_rewritten_code_runs():
    new = migrate._add_import([migrate.migrate_source(OLD)[0]])[0]
    scope = {"torch": torch, "trainer": type("T", (), {"sample": staticmethod(lambda n: n)})()}
    exec(compile(new, "<migrated>", "exec"), scope)
    assert scope["x"].shape == scope["y"].shape == (4, 2) and scope["l1"].shape == (4,)
    assert torch.isfinite(scope["b"].total).all() and torch.equal(scope["b"].prior, scope["c"].prior)


def test_load_pretrained_gets_a_models_dir_and_notebook_cells_keep_their_ids(tmp_path):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from ddpm_core import load_pretrained\n"),
                nbformat.v4.new_code_cell("m, d, c = load_pretrained(cfg, train_if_missing=False)\n"
                                          "x = d.sample(m, (2, 1, 8, 8))\n")]
    ids = [c.id for c in nb.cells]
    path = tmp_path / "ch.ipynb"
    nbformat.write(nb, path)
    migrate.main([str(path), "--models-dir", "models"])
    again = nbformat.read(path, as_version=4)
    assert [c.id for c in again.cells] == ids
    assert again.cells[0].source.startswith("import ddpm_core\nfrom ddpm_core import load_pretrained")
    assert "load_pretrained(cfg, models_dir='models', train_if_missing=False)" in again.cells[1].source
    assert "ddpm_core.sample(m, d, (2, 1, 8, 8))" in again.cells[1].source
