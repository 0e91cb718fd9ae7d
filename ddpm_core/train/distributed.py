"""Multi-process training under ``torchrun``: process-group setup (NCCL on GPUs, gloo on CPUs) and small collectives.

``torchrun --nproc_per_node N -m ddpm_core train ...`` sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and
MASTER_PORT; :func:`setup` reads them. Without them (or with WORLD_SIZE=1) everything runs in one process and the
collectives below are no-ops.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "cleanup", "all_gather_objects", "all_reduce_mean", "any_true"]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank in 0..world_size-1, local_rank on its machine, and whether
    :func:`setup` created the process group (and so :func:`cleanup` should destroy it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_type: str) -> DistInfo:
    """Join (or create from torchrun's environment) the default process group.

    device_type: "cuda" selects NCCL and binds this process to GPU ``LOCAL_RANK``; anything else selects gloo.
    An already initialised group (e.g. made by the caller) is used as it is.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=True)


def cleanup(info: DistInfo) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(obj: Any, info: DistInfo) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank (pickled; use for small things such as RNG states)."""
    if not info.enabled:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """The mean of ``x`` over ranks (a new tensor; ``x`` itself is unchanged)."""
    if not info.enabled:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / info.world_size


def any_true(flag: torch.Tensor, info: DistInfo) -> bool:
    """True if the boolean scalar ``flag`` is True on any rank (every rank gets the same answer)."""
    if not info.enabled:
        return bool(flag)
    y = flag.detach().to(torch.int32).reshape(1).clone()
    dist.all_reduce(y, op=dist.ReduceOp.MAX)
    return bool(y.item())
