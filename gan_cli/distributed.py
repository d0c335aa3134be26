"""Rank helpers that work with and without torch.distributed.

Without a process group every helper answers as the single rank 0 of a world of 1, so the
training loop calls them unconditionally.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def all_reduce_grads(params: Iterable[torch.nn.Parameter]) -> None:
    """Average the gradients of ``params`` over the ranks, in place, with one all-reduce (nothing
    when not distributed).

    For an update that runs outside DDP's reducer: a lazy regulariser's own backward
    (gan_cli/training/step.py). A parameter without a gradient (``grad is None``: the update does
    not reach it, e.g. D's last bias under R1) keeps none, as in a single process, so the
    optimizer leaves it alone. Which parameters have one is a fact of the graph, the same on
    every rank, so every rank reduces the same tensors in the same order.
    """
    if not is_distributed():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= get_world_size()
    for g, reduced in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
        g.copy_(reduced.view_as(g))


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is True on at least one (a collective: all ranks call it)."""
    if not is_distributed():
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather_objects(obj) -> list:
    """``obj`` of every rank, in rank order, on every rank (``[obj]`` when not distributed)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * get_world_size()
    dist.all_gather_object(out, obj, group=control_group())  # CPU objects: gloo, long timeout
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()


_CONTROL: tuple | None = None  # (the default group it was made in, the control group)


def control_group():
    """A gloo group over all ranks for control messages (stop agreement, waiting for rank 0),
    with a long timeout: a rank computing metrics or writing a large checkpoint alone may take
    longer than the main group's collective timeout. Created on first call, which every rank
    makes at the same point (the loop's start). None when not distributed."""
    global _CONTROL
    if not is_distributed():
        return None
    world = dist.group.WORLD
    if _CONTROL is None or _CONTROL[0] is not world:  # a new process group: a new control group
        import datetime

        _CONTROL = (world, dist.new_group(backend="gloo", timeout=datetime.timedelta(hours=24)))
    return _CONTROL[1]


def wait_for_main() -> None:
    """Every rank waits here until rank 0 arrives (after metrics, figures, a checkpoint), in the
    control group, so that no rank sits in a main-group collective that could time out."""
    group = control_group()
    if group is not None:
        dist.barrier(group=group)


def reduce_stats(stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``stats`` averaged over ranks with one all-reduce (``stats`` itself when not distributed).

    Used before ``loss.after_d_step`` so that a controller driven by the stats (BEGAN's k_t)
    takes the same step on every rank.
    """
    if not is_distributed() or not stats:
        return stats
    keys = sorted(stats)
    values = all_reduce_mean(torch.stack([stats[k].detach().float() for k in keys]))
    return dict(zip(keys, values.unbind(), strict=True))


def wrap_ddp(G: torch.nn.Module, D: torch.nn.Module, hw, device: torch.device,
             find_unused_parameters: bool = False):
    """DistributedDataParallel wrappers of G and D (G and D themselves when not distributed).

    ``hardware.sync_batchnorm`` converts their BatchNorm layers first (in place: the parameters
    and the optimizers that hold them stay the same). Both wrappers broadcast rank 0's parameters
    and buffers at construction, so every rank starts from the same weights. The gradient
    penalties' ``autograd.grad(..., create_graph=True)`` needs no special setting: it takes
    gradients with respect to D's input only, and the reducer averages the parameter gradients
    of the loss's ``backward()`` as usual (checked by tests/test_distributed.py). Networks that
    grow (progressive growing) leave their inactive blocks without gradients: they are wrapped
    with ``find_unused_parameters``.

    A lazy regulariser's own update does not go through these wrappers: it reaches only some
    parameters (R1 never reaches D's last bias), which DDP's reducer would wait for in vain, so
    the step runs it on the bare networks, takes its gradients with ``autograd.grad`` (a
    ``backward()`` would still fire the reducer's hooks) and averages them with
    :func:`all_reduce_grads`.
    """
    if not is_distributed():
        return G, D
    from torch.nn.parallel import DistributedDataParallel as DDP

    if hw.sync_batchnorm:
        G = torch.nn.SyncBatchNorm.convert_sync_batchnorm(G)
        D = torch.nn.SyncBatchNorm.convert_sync_batchnorm(D)
    ids = [device.index] if device.type == "cuda" else None
    return (DDP(G, device_ids=ids, find_unused_parameters=find_unused_parameters),
            DDP(D, device_ids=ids, find_unused_parameters=find_unused_parameters))


def check_replicas(tensors: dict[str, torch.Tensor]) -> int:
    """Check that every rank holds bitwise the same ``tensors``; return the number of ranks.

    Each rank hashes its tensors' bytes and the digests are gathered (a few bytes per rank, one
    device-to-host copy of the tensors, like a checkpoint). Under DDP this holds for G's and D's
    parameters and for a loss's state (BEGAN's k_t) when gradients and controller stats are
    averaged correctly; BatchNorm running statistics are rank-local and are not passed here.

    Raises:
        RuntimeFailure: a rank disagrees (a bug: some update bypassed the gradient averaging).
    """
    if not is_distributed():
        return 1
    import hashlib

    from gan_cli.errors import RuntimeFailure

    digests = {}
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        digests[name] = hashlib.sha256(t.view(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
    gathered: list = [None] * get_world_size()
    dist.all_gather_object(gathered, digests)
    differ = sorted(k for k in digests if len({g[k] for g in gathered}) > 1)
    if differ:
        raise RuntimeFailure(f"the DDP replicas disagree after training in {len(differ)} "
                             f"tensor(s), e.g. {', '.join(differ[:3])}: please report this bug")
    return len(gathered)


def replica_state(G: torch.nn.Module, D: torch.nn.Module, loss,
                  regularizers: Iterable = ()) -> dict[str, torch.Tensor]:
    """What DDP keeps equal across ranks: G's and D's parameters, the loss's tensor state and the
    regularisers' (path length's moving average ``pl_mean``)."""
    out = {f"G.{k}": v for k, v in G.named_parameters()}
    out.update({f"D.{k}": v for k, v in D.named_parameters()})
    out.update({f"loss.{k}": v for k, v in loss.state_dict().items() if torch.is_tensor(v)})
    for reg in regularizers:
        state = reg.state_dict() if hasattr(reg, "state_dict") else {}
        out.update({f"regularizers.{type(reg).__name__}.{k}": v for k, v in state.items()
                    if torch.is_tensor(v)})
    return out
