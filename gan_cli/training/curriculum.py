"""What may change between steps: the stage being trained and the phase of growing networks.

Both are pure functions of the generator step, so a resumed run takes exactly the same path.
Stages (``model.stages``, the protocol in gan_cli/models/stages.py) are several (G, D) pairs
trained one after another. A schedule (``model.schedule``, gan_cli/schedules.py) gives each step
a growth phase: ``phase(step)`` (resolution, fade-in alpha, batch, optimizer reset, kimg) and
``transform_real(x, phase)``; networks that grow implement ``set_phase(resolution, alpha)``.
:meth:`Curriculum.before_step` sets the networks up for a step and returns a :class:`StepPlan`,
which the loop applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from gan_cli.data.base import Batch
from gan_cli.errors import ConfigError


@dataclass(frozen=True)
class StepPlan:
    """What one generator step trains with."""

    stage: int  # the pair being trained
    batch_size: int  # the global batch
    batch_per_device: int  # this process's share: the data's batch
    prepare: Callable[[Batch], Batch] | None  # the stage's / phase's view of the data's batch
    ema_nimg: float  # images G has generated after this step (the EMA's clock)


def _segment_of(phase: Any) -> tuple[int, bool]:
    """What identifies a phase's segment of the schedule: its level, and whether it fades in."""
    return phase.index, phase.alpha < 1.0


def stage_at(step: int, steps: list[int]) -> int:
    """The stage that generator step ``step`` (0-based) belongs to."""
    end = 0
    for k, n in enumerate(steps):
        end += n
        if step < end:
            return k
    return len(steps) - 1


class Curriculum:
    """The stage and phase of each step: ``stages`` (SingleStage for a classic GAN), the phase
    ``schedule`` or None, ``train.steps``, the global batch, the processes, D updates per step."""

    def __init__(self, stages: Any, schedule: Any, total_steps: int, batch_size: int,
                 world_size: int, n_critic: int) -> None:
        self.stages = stages
        self.schedule = schedule
        self.stage_steps = stages.steps(total_steps)
        self.batch_size = batch_size
        self.world_size = world_size
        self.n_critic = n_critic
        self._prepare: dict[int, Callable[[Batch], Batch] | None] = {}
        self._entered: int | None = None  # the stage whose begin() ran
        self._checked = False  # the schedule's batches checked against the data

    def before_step(self, state: Any) -> StepPlan:
        """Enter the stage of ``state.step``, set the networks' phase, reset the optimizers where
        a new phase asks for it; return the step's plan."""
        step = state.step
        batch, ema_nimg = self.batch_size, (step + 1) * self.batch_size
        if self.stages.num_stages == 1 and self.schedule is None:
            return StepPlan(0, batch, batch // self.world_size, None, ema_nimg)
        k = stage_at(step, self.stage_steps)
        if k != self._entered:
            self.stages.begin(k, state, fresh=step == sum(self.stage_steps[:k]))
            self._entered = k
        prepare = self._stage_prepare(k, state)
        if self.schedule is not None:
            phase = self.schedule.phase(step)
            pair = state.pairs[k]
            for net in (pair.G, pair.D, pair.ema.module if pair.ema is not None else None):
                if net is not None and hasattr(net, "set_phase"):
                    net.set_phase(phase.resolution, phase.alpha)
            # a new segment: another resolution level, or a fade-in beginning or ending at one
            new_segment = step > 0 and _segment_of(self.schedule.phase(step - 1)) != _segment_of(phase)
            if new_segment and phase.reset_optimizers:
                pair.reset_optimizers()
            if not self._checked:  # this process's first step: can the data follow the schedule?
                self._check_batches(state.data, getattr(self.schedule, "batch_sizes", {}).values())
                self._checked = True
            self._check_batches(state.data, [phase.batch_size])
            batch = phase.batch_size
            ema_nimg = self.schedule.phase(step + 1).kimg * 1000.0 / self.n_critic
            prepare = self._phase_prepare(prepare, phase)
        return StepPlan(k, batch, batch // self.world_size, prepare, ema_nimg)

    def _check_batches(self, data: Any, batch_sizes: Any) -> None:
        """Each global batch splits evenly over the processes, and a fixed-batch source keeps its own."""
        for batch in batch_sizes:
            if batch % self.world_size:
                raise ConfigError(f"model.schedule: a phase's batch of {batch} does not split over "
                                  f"{self.world_size} processes; give batches divisible by it")
            if getattr(data, "fixed_batch", False) and batch // self.world_size != data.batch_size:
                raise ConfigError(
                    f"model.schedule asks for a global batch of {batch} in some phase, but the data "
                    f"are read by a DataLoader (dataset.in_memory=false) whose batch is fixed at "
                    f"{data.batch_size * self.world_size} (train.batch_size): set "
                    f"dataset.in_memory=true, or one batch for every phase "
                    f"(model.schedule.batch_sizes={data.batch_size * self.world_size})")

    def _stage_prepare(self, k: int, state: Any) -> Callable[[Batch], Batch] | None:
        if self.stages.num_stages == 1:
            return None
        if k not in self._prepare:
            frozen = [p.G_sample for p in state.pairs[:k]]
            for G in frozen:
                G.eval().requires_grad_(False)
            self._prepare[k] = lambda batch: self.stages.prepare(k, batch, frozen)
        return self._prepare[k]

    def _phase_prepare(self, stage_prepare: Callable[[Batch], Batch] | None,
                       phase: Any) -> Callable[[Batch], Batch]:
        def prepare(batch: Batch) -> Batch:
            batch = stage_prepare(batch) if stage_prepare is not None else batch
            return Batch(self.schedule.transform_real(batch.x, phase), batch.y)
        return prepare

    def real_nimg(self, step: int) -> float:
        """Real images shown to D before generator step ``step``."""
        if self.schedule is not None:
            return self.schedule.phase(step).kimg * 1000.0
        return step * self.batch_size * self.n_critic

    def sampler(self, state: Any) -> nn.Module:
        """The generator figures and metrics draw from: the cascade of the stages trained so far."""
        return self.stages.cascade([p.G_sample for p in state.pairs[: state.stage + 1]])
