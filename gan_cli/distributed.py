"""Rank helpers that work with and without torch.distributed.

Without a process group every helper answers as the single rank 0 of a world of 1, so the
training loop calls them unconditionally.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on the process that prints, logs and writes files."""
    return get_rank() == 0


def all_reduce_mean(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks (a copy; ``t`` itself when not distributed)."""
    if not is_distributed():
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / get_world_size()


def barrier() -> None:
    if is_distributed():
        dist.barrier()
