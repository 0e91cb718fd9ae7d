"""An endless, rank-sharded, exactly resumable stream of training batches.

The stream of one rank is a pure function of (seed, rank, world_size): for each epoch e the data set's indices are
permuted with a ``torch.Generator`` seeded from (seed, e), the permutation is dealt out round-robin to the ranks
(``perm[rank::world_size]``), and the shards of successive epochs are concatenated and cut into batches (a batch
may straddle two epochs; nothing is dropped or repeated). Across ranks every index is therefore seen exactly once
per epoch. The loader's whole state is ``(epoch, position)`` inside this stream, so a checkpoint that stores
``loader.state_dict()`` resumes with the identical batches, on any machine.

    loader = infinite_loader(dataset, batch_size=128, seed=0, rank=rank, world_size=world_size)
    x, y = next(loader)
    state = loader.state_dict()          # save with the model
    loader.load_state_dict(state)        # ... and later continue exactly here
"""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torch.utils.data._utils.collate import default_collate

__all__ = ["mix_seed", "fetch_batch", "InfiniteLoader", "infinite_loader"]

_MASK63 = (1 << 63) - 1


def mix_seed(*values: int) -> int:
    """Combine integers into one 63-bit seed (splitmix64 finaliser applied after each value)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h & _MASK63


def fetch_batch(dataset: Dataset, indices: torch.Tensor, epochs: torch.Tensor | int | None = None) -> Any:
    """Gather the items ``indices`` (int64, (B,)) of ``dataset`` as one collated batch.

    ``epochs``: the epoch of each item, (B,), or one value for all (None means epoch 0).

    Uses ``dataset.get_batch(indices, epochs)`` when the data set has it (the ``ddpm_core`` data sets do; ``epochs``
    lets augmentations be a deterministic function of the epoch), slices the tensors of a ``TensorDataset``, and
    otherwise indexes item by item and collates with torch's ``default_collate``.
    """
    indices = torch.as_tensor(indices, dtype=torch.int64)
    if hasattr(dataset, "get_batch"):
        epochs = torch.as_tensor(0 if epochs is None else epochs, dtype=torch.int64)
        return dataset.get_batch(indices, epochs.expand(indices.shape) if epochs.numel() == 1 else epochs)
    if isinstance(dataset, TensorDataset):
        return tuple(t[indices] for t in dataset.tensors)
    return default_collate([dataset[int(i)] for i in indices])


class _KeyStream:
    """Iterable over the (indices, epochs) of the batches of one rank, starting at (epoch, position)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int, world_size: int,
                 epoch: int, position: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.position = epoch, position

    def shard(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 0x10AD))
        return torch.randperm(self.n, generator=g)[self.rank::self.world_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, position = self.epoch, self.position
        shard = self.shard(epoch)
        while True:
            idx, ep = [], []
            need = self.batch_size
            while need > 0:
                if position >= len(shard):
                    epoch, position = epoch + 1, 0
                    shard = self.shard(epoch)
                    continue
                take = shard[position:position + need]
                idx.append(take)
                ep.append(torch.full((len(take),), epoch, dtype=torch.int64))
                position += len(take)
                need -= len(take)
            yield torch.cat(idx), torch.cat(ep)


class _BatchView(Dataset):
    """Lets a torch DataLoader worker build a whole batch from one key of the batch sampler."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitems__(self, keys: list) -> Any:
        (indices, epochs), = keys
        return fetch_batch(self.dataset, indices, epochs)


def _as_is(batch: Any) -> Any:
    return batch


class _OneKeyStream:
    def __init__(self, keys: _KeyStream) -> None:
        self.keys = keys

    def __iter__(self) -> Iterator[list]:
        for key in self.keys:
            yield [key]


class InfiniteLoader:
    """Endless iterator of collated batches for one rank (see the module docstring); use ``infinite_loader``."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, pin_memory: bool = False) -> None:
        for name, v, lo in (("batch_size", batch_size, 1), ("world_size", world_size, 1),
                            ("rank", rank, 0), ("num_workers", num_workers, 0), ("seed", seed, 0)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
            if v < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        if rank >= world_size:
            raise ValueError(f"rank must be in 0..world_size-1 = 0..{world_size - 1}, got {rank}")
        n = len(dataset)  # type: ignore[arg-type]
        if n < world_size:
            raise ValueError(f"the data set has {n} items, fewer than world_size={world_size}")
        self.dataset, self.n, self.batch_size = dataset, n, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.epoch, self.position = 0, 0
        self._it: Iterator | None = None

    def __iter__(self) -> "InfiniteLoader":
        return self

    def _start(self) -> Iterator:
        keys = _KeyStream(self.n, self.batch_size, self.seed, self.rank, self.world_size, self.epoch, self.position)
        if self.num_workers == 0:
            return (fetch_batch(self.dataset, i, e) for i, e in keys)
        return iter(DataLoader(_BatchView(self.dataset), batch_sampler=_OneKeyStream(keys), collate_fn=_as_is,
                               num_workers=self.num_workers, pin_memory=self.pin_memory))

    def _advance(self) -> None:
        """Move (epoch, position) past one batch; mirrors ``_KeyStream.__iter__`` without building permutations."""
        need = self.batch_size
        while need > 0:
            shard_len = len(range(self.rank, self.n, self.world_size))
            if self.position >= shard_len:
                self.epoch, self.position = self.epoch + 1, 0
                continue
            take = min(need, shard_len - self.position)
            self.position += take
            need -= take

    def __next__(self) -> Any:
        if self._it is None:
            self._it = self._start()
        batch = next(self._it)
        self._advance()
        return batch

    @property
    def batches_per_epoch(self) -> float:
        """Number of batches per epoch of this rank's shard (fractional when batches straddle epochs)."""
        return len(range(self.rank, self.n, self.world_size)) / self.batch_size

    def state_dict(self) -> dict[str, int]:
        """Everything needed to resume: the position plus the settings that define the stream (checked on load)."""
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed, "n": self.n,
                "batch_size": self.batch_size, "rank": self.rank, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from ``state`` (from ``state_dict``); the stream-defining settings must match this loader."""
        for key in ("seed", "n", "rank", "world_size"):
            if key in state and int(state[key]) != getattr(self, key):
                raise ValueError(f"loader state has {key}={state[key]} but this loader has {key}={getattr(self, key)}")
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or position < 0:
            raise ValueError(f"epoch and position must be >= 0, got epoch={epoch}, position={position}")
        self.epoch, self.position = epoch, position
        self._it = None


def infinite_loader(dataset: Dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                    num_workers: int = 0, pin_memory: bool = False) -> InfiniteLoader:
    """An endless, deterministic, resumable batch iterator for rank ``rank`` of ``world_size``.

    All ranks must pass the same ``seed``. Batches are what ``fetch_batch`` returns (for the ``ddpm_core`` data sets
    a tuple (x (B, ...), y (B,))). ``num_workers > 0`` builds batches in torch DataLoader worker processes; the
    stream is the same either way.
    """
    return InfiniteLoader(dataset, batch_size, seed=seed, rank=rank, world_size=world_size,
                          num_workers=num_workers, pin_memory=pin_memory)
