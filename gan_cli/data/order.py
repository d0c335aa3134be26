"""The data order every image source follows, for exact resume and disjoint rank shares.

Epoch e uses a random permutation of 0..N-1 drawn from a torch.Generator seeded from (seed, e);
rank r of world_size takes perm[r::world_size] (the permutation is first cut to a multiple of
world_size so every rank has the same share), and batches are consecutive slices of that share.
When fewer than batch_size indices remain, the next epoch starts. ``seed`` must be the run's seed,
the same on every rank (not seed + rank), or the shares overlap.
"""

from __future__ import annotations

from typing import Any

import torch

from gan_cli.errors import ConfigError


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of 0..num_samples-1 that depends only on (seed, epoch)."""
    g = torch.Generator(device="cpu")
    # mix seed and epoch into one 63-bit seed (odd multiplier: distinct epochs, distinct seeds)
    g.manual_seed((int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9) % (2**63))
    return torch.randperm(num_samples, generator=g)


def rank_share(num_samples: int, seed: int, epoch: int, rank: int, world_size: int) -> torch.Tensor:
    """The indices rank `rank` visits in epoch `epoch`: perm[rank::world_size] of the epoch's
    permutation cut to a multiple of world_size (so every rank gets the same count)."""
    perm = epoch_permutation(num_samples, seed, epoch)
    usable = (num_samples // world_size) * world_size
    return perm[:usable][rank::world_size]


class ShareOrder:
    """A source that gathers its own batches: consecutive slices of this rank's share of the
    epoch's permutation; an incomplete rest starts the next epoch. The source sets
    ``num_samples``, ``name``, ``seed``, ``rank``, ``world_size``, ``batch_size``, ``epoch = 0``,
    ``position = 0`` (indices of the share consumed in this epoch) and ``_share = None``."""

    share_device: torch.device | None = None  # where the indices go (None: the CPU)

    def _current_share(self) -> torch.Tensor:
        if self._share is None:
            share = rank_share(self.num_samples, self.seed, self.epoch, self.rank, self.world_size)
            self._share = share if self.share_device is None else share.to(self.share_device)
        return self._share

    def next_indices(self) -> torch.Tensor:
        """Indices of the next batch; advances the position."""
        share = self._current_share()
        if self.position + self.batch_size > share.numel():
            self.epoch += 1
            self.position = 0
            self._share = None
            share = self._current_share()
        idx = share[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return idx

    def load_position(self, state: dict[str, Any]) -> None:
        """Continue from a saved position (rescaled when the number of ranks differs)."""
        check_resume(state, self.num_samples, self.name)
        self.epoch = int(state["epoch"])
        old_ws = int(state.get("world_size", self.world_size))
        self.position = int(state["position"]) * old_ws // self.world_size
        if "seed" in state:
            self.seed = int(state["seed"])
        self._share = None


def check_resume(state: dict[str, Any], num_samples: int, name: str) -> None:
    saved = state.get("num_samples")
    if saved is not None and int(saved) != num_samples:
        raise ConfigError(
            f"the checkpoint's data position is for {saved} images of {name}, this run has "
            f"{num_samples}: the data order cannot continue. Use the same dataset settings "
            f"(root, split, limit) as the checkpointed run."
        )


class ShareSampler(torch.utils.data.Sampler):
    """This rank's share of the epoch's permutation, from `start` on (cheap skipping on resume).

    Same order as TensorImageSource; like torch's DistributedSampler it works without
    torch.distributed initialised, since rank and world_size are given."""

    def __init__(self, num_samples: int, seed: int, rank: int, world_size: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def __iter__(self):
        share = rank_share(self.num_samples, self.seed, self.epoch, self.rank, self.world_size)
        return iter(share[self.start :].tolist())

    def __len__(self) -> int:
        return max(0, self.num_samples // self.world_size - self.start)
