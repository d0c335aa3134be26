"""Non-finite values (NaN, inf): one policy, checked in one place.

``train.nonfinite=stop``: losses are watched on the device; at logging steps and before every
checkpoint a non-finite loss, statistic or weight stops the run (exit 1) before a checkpoint is
overwritten. ``skip``: an update whose loss or gradients are not finite is skipped and counted
(one host sync per update; under DDP the ranks agree on it); non-finite weights, or an interval
of nothing but skips, still stop the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from gan_cli.distributed import any_rank
from gan_cli.errors import RuntimeFailure


class NonFiniteWatch:
    """The first step at which each watched statistic was not finite, kept on the device: ``add``
    never syncs; ``first`` reads it where the loop syncs anyway."""

    def __init__(self) -> None:
        self._first: dict[tuple[str, ...], torch.Tensor] = {}

    def add(self, stats: Mapping[str, torch.Tensor], step: int) -> None:
        keys = tuple(stats)
        if not keys:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in stats.values()])
        bad = ~torch.isfinite(values)
        first = self._first.get(keys)
        if first is None:
            first = torch.full(values.shape, -1, dtype=torch.int64, device=values.device)
        self._first[keys] = torch.where((first < 0) & bad, step, first)

    def first(self) -> tuple[int, str] | None:
        """(step, statistic) of the earliest non-finite value seen, or None."""
        found: list[tuple[int, str]] = []
        for keys, first in self._first.items():
            for key, step in zip(keys, first.tolist(), strict=True):
                if step >= 0:
                    found.append((step, key))
        if not found:
            return None
        step, _, key = min((s, not k.startswith("loss"), k) for s, k in found)  # losses first
        return step, key


def nonfinite_weights(modules: Mapping[str, nn.Module]) -> str | None:
    """The name of the first module with a non-finite parameter or float buffer, or None."""
    names, flags = [], []
    for name, module in modules.items():
        tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        if tensors:
            names.append(name)
            flags.append(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
    if not flags:
        return None
    ok = torch.stack(flags).tolist()  # one transfer
    bad = [n for n, good in zip(names, ok, strict=True) if not good]
    return bad[0] if bad else None


def update_is_finite(loss: torch.Tensor, params: Iterable[nn.Parameter], check_grads: bool) -> bool:
    """Whether a loss (and the gradients it left, unless an fp16 scaler skips those itself) are
    finite: one host sync."""
    values = [loss.detach().float().reshape(1)]
    if check_grads:
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            values.append(torch.stack(torch._foreach_norm(grads)).float())
    return bool(torch.isfinite(torch.cat(values)).all())


class NonFinitePolicy:
    """``train.nonfinite`` ("stop" or "skip"); ``device`` reduces the ranks' flags, ``ckpt_dir``
    is named in the messages."""

    def __init__(self, mode: str, device: torch.device, ckpt_dir: Path) -> None:
        self.mode = mode
        self.skip = mode == "skip"
        self.device = device
        self.ckpt_dir = ckpt_dir
        self.watch = NonFiniteWatch()
        self.skips = {"d": 0, "g": 0}  # updates skipped (train.nonfinite=skip)
        self.skips_logged = 0  # skips already reported in a log line
        self.last_good: tuple[Path | None, int] = (None, 0)  # the last checkpoint, its step

    # -- during the step --------------------------------------------------------------------

    def allow(self, which: str, loss: torch.Tensor, params: Iterable[nn.Parameter],
              scaler: torch.amp.GradScaler) -> bool:
        """Skip mode: whether the update of ``which`` ("d"/"g") may be applied (all ranks agree);
        a refused update is counted. Stop mode: always True (the watch decides later)."""
        if not self.skip:
            return True
        finite = update_is_finite(loss, params, not scaler.is_enabled())
        if any_rank(not finite, self.device):
            self.skips[which] += 1
            return False
        return True

    def observe(self, stats: Mapping[str, torch.Tensor], step: int) -> None:
        """Stop mode: remember where a statistic of an applied update was first non-finite."""
        if not self.skip:
            self.watch.add(stats, step)

    # -- at logging steps and checkpoints ------------------------------------------------------

    @property
    def total_skips(self) -> int:
        return self.skips["d"] + self.skips["g"]

    def check(self, step: int, modules: Mapping[str, nn.Module] | None = None) -> None:
        """Raise if a watched statistic since the last check, or (with ``modules``) a weight now,
        is not finite. Called before every checkpoint with the networks, so a NaN never
        overwrites a good checkpoint."""
        first = self.watch.first()
        bad_net = nonfinite_weights(modules) if modules is not None else None
        if first is None and bad_net is None:
            return
        what = (f"{first[1]} is not finite (NaN or inf) at step {first[0]}" if first is not None
                else f"the weights of {bad_net} are not finite (NaN or inf) at step {step}")
        raise RuntimeFailure(
            f"training diverged: {what}; stopped before writing a checkpoint, {self.kept()}. "
            f"Lower the learning rates, change the loss, or set train.nonfinite=skip to skip such "
            f"updates.")

    def check_interval(self, stats_mean: Mapping[str, float], first_step: int, step: int) -> None:
        """At a logging step: the watch, the interval's means, and (skip mode) whether anything
        trained at all in steps ``first_step``..``step``."""
        self.check(step)
        for key, value in stats_mean.items():
            if not math.isfinite(value):
                raise RuntimeFailure(
                    f"training diverged: {key} is {value} at step {step} (mean over steps "
                    f"{first_step}-{step}); the last good checkpoint is kept in {self.ckpt_dir}. "
                    f"Lower the learning rates or change the loss.")
        if self.skip and not stats_mean and self.total_skips > self.skips_logged:
            raise RuntimeFailure(
                f"training diverged: every update of steps {first_step}-{step} was skipped for "
                f"non-finite values (train.nonfinite=skip); {self.kept()}. Lower the learning "
                f"rates or change the loss.")

    def report(self) -> dict[str, int]:
        """Skip mode: the skip count for the log record (and True when it grew)."""
        return {"nonfinite_skips": self.total_skips} if self.skip else {}

    def kept(self) -> str:
        """Which checkpoint is the last good one, for a message."""
        path, step = self.last_good
        return (f"the last good checkpoint is {path} (step {step})" if path is not None
                else "no checkpoint was written")

    def state_dict(self) -> dict[str, int]:
        return dict(self.skips)

    def load_state_dict(self, state: Mapping[str, int] | None) -> None:
        self.skips.update(state or {})
        self.skips_logged = self.total_skips
