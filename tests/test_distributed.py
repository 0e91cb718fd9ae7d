"""DistributedDataParallel: two CPU processes (gloo) launched with torchrun train like one process with the same
global batch, and stay in sync."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ddpm_core.train import Trainer, get_preset, read_checkpoint

REPO = Path(__file__).resolve().parents[1]

WORKER = textwrap.dedent("""
    import sys
    import torch
    from ddpm_core.train import Trainer, TrainConfig

    config = TrainConfig.from_json(open(sys.argv[1]).read())
    trainer = Trainer(config, out_dir=sys.argv[2], resume=True)
    trainer.fit()
    torch.save(trainer.model.state_dict(), f"{sys.argv[2]}/rank{trainer.dist.rank}.pt")
    trainer.close()
""")


def launch(tmp_path: Path, config, run: Path) -> None:
    (tmp_path / "config.json").write_text(config.to_json())
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
           str(tmp_path / "worker.py"), str(tmp_path / "config.json"), str(run)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    config = get_preset("toy2d", steps=6, batch_size=32, toy_size=512, warmup_steps=2, lr=3e-3, log_every=3,
                        sample_every=0, ckpt_every=3, progress=False, model_overrides={"width": 32, "depth": 2})
    run = tmp_path / "ddp"
    launch(tmp_path, config, run)

    rank0 = torch.load(run / "rank0.pt", weights_only=True)
    rank1 = torch.load(run / "rank1.pt", weights_only=True)
    for k in rank0:                                   # DDP keeps the replicas identical
        assert torch.equal(rank0[k], rank1[k]), k
    ckpt = read_checkpoint(run)
    assert ckpt["step"] == 6 and len(ckpt["rank_states"]) == 2
    assert [s["loader"]["rank"] for s in ckpt["rank_states"]] == [0, 1]
    assert [s["loader"]["position"] for s in ckpt["rank_states"]] == [6 * 16, 6 * 16]
    for k in rank0:
        assert torch.equal(ckpt["model"][k], rank0[k]), k

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = Trainer(config)
        init = {k: v.clone() for k, v in single.model.state_dict().items()}
        single.fit()
    finally:
        torch.set_num_threads(n)
    for k, v in single.model.state_dict().items():      # same global batch, same t and noise: same training
        torch.testing.assert_close(rank0[k], v, rtol=1e-4, atol=1e-5)
    assert max((v - init[k]).abs().max().item() for k, v in rank0.items()) > 1e-3   # training moved the weights
    for k, v in single.ema.shadow.state_dict().items():
        torch.testing.assert_close(ckpt["ema"]["shadow"][k], v, rtol=1e-4, atol=1e-5)
