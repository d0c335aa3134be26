"""What may change between steps: the stage being trained and the phase of growing networks.

Two extension points of the step, both pure functions of the generator step (so a resumed run
takes exactly the same path):

* **Stages** (``model.stages``: LAPGAN's levels, SinGAN's scales). Several (G, D) pairs trained
  one after another, each with its own optimizers and loss state. An object with

      num_stages: int
      info(k, data_info) -> DataInfo           stage k's target: shape, classes, range
      network_kwargs(k, data_info) -> dict     extra constructor facts of G_k and D_k
                                               (e.g. the shape of the condition image)
      steps(total_steps) -> list[int]          generator steps of each stage (a run stops at
                                               train.steps wherever that falls; steps past the
                                               last stage's end train the last stage)
      begin(k, state, fresh) -> None           entering stage k: ``fresh`` on its first step,
                                               False when a resumed run re-enters it midway (set
                                               the data's scale, copy weights into a fresh stage,
                                               compute what the stage needs from the frozen ones)
      prepare(k, batch, generators) -> Batch   the data's batch as stage k sees it, with the
                                               frozen generators of stages 0..k-1
      cascade(generators) -> nn.Module         G(z, y) that chains stages 0..k into samples

  Without ``model.stages`` a model is one stage (:class:`SingleStage`).

* **Schedule** (``model.schedule``: progressive growing). An object with

      phase(step) -> Phase                     index, resolution, alpha, batch_size,
                                               reset_optimizers, kimg
      transform_real(x, phase) -> Tensor       the real batch at that phase (downsampled, faded)

  Networks that grow implement ``set_phase(resolution, alpha)``; when a new stage begins (the
  phase index changes, or a fade-in with alpha < 1 begins or ends) and the phase says so, the
  pair's optimizer moments are reset (ProGAN's code: when layers are added and when their fade-in
  ends); the phase's batch size becomes
  the data's and the step's, and the phase's ``kimg`` counts the real images shown (the batch
  changes between phases, so ``step * batch`` does not). A data source whose batch is fixed at
  construction (``fixed_batch = True``: the DataLoader behind ``dataset.in_memory=false``) cannot
  follow a change of batch: the run stops with a ConfigError before its first step when the
  schedule lists its batches (``schedule.batch_sizes``), else at the phase that changes it.
  :func:`gan_cli.build.restore_phase` puts a generator rebuilt from a checkpoint (gan-eval) into the phase it
  was last trained in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from gan_cli.data.base import Batch
from gan_cli.errors import ConfigError


class SingleStage:
    """A classic GAN: one pair, trained for every step, sampled by its own generator."""

    num_stages = 1

    def info(self, k: int, data_info: Any) -> Any:
        return data_info

    def network_kwargs(self, k: int, data_info: Any) -> dict:
        return {}

    def steps(self, total_steps: int) -> list[int]:
        return [total_steps]

    def begin(self, k: int, state: Any, fresh: bool) -> None:
        pass

    def prepare(self, k: int, batch: Batch, generators: list[nn.Module]) -> Batch:
        return batch

    def cascade(self, generators: list[nn.Module]) -> nn.Module:
        return generators[-1]


def _stage_of(phase: Any) -> tuple[int, bool]:
    """What identifies a phase's stage: its level, and whether it is a fade-in (alpha < 1)."""
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
    """Applies the stage and phase of each step before the step runs.

    Args:
        stages: the model's stages (:class:`SingleStage` for a classic GAN).
        schedule: the model's phase schedule, or None.
        total_steps: ``train.steps``.
        world_size: processes sharing each global batch.
    """

    def __init__(self, stages: Any, schedule: Any, total_steps: int, world_size: int) -> None:
        self.stages = stages
        self.schedule = schedule
        self.stage_steps = stages.steps(total_steps)
        self.world_size = world_size
        self._prepare: dict[int, Callable[[Batch], Batch] | None] = {}
        self._entered: int | None = None  # the stage whose begin() ran
        self.phase = None

    @property
    def trivial(self) -> bool:
        """One stage and no schedule: nothing changes between steps."""
        return self.stages.num_stages == 1 and self.schedule is None

    def before_step(self, state: Any, step_fn: Any) -> None:
        """Set ``state.stage``, the networks' phase and the step's batch transform for
        ``state.step``; reset optimizers where a new phase asks for it."""
        if self.trivial:
            return
        state.stage = stage_at(state.step, self.stage_steps)
        if state.stage != self._entered:
            start = sum(self.stage_steps[: state.stage])
            self.stages.begin(state.stage, state, fresh=state.step == start)
            self._entered = state.stage
        pair = state.pair
        prepare = self._stage_prepare(state)
        if self.schedule is not None:
            phase = self.schedule.phase(state.step)
            for net in (pair.G, pair.D, pair.ema.module if pair.ema is not None else None):
                if net is not None and hasattr(net, "set_phase"):
                    net.set_phase(phase.resolution, phase.alpha)
            # a new stage: another resolution level, or a fade-in beginning or ending at one
            new_phase = state.step > 0 and _stage_of(self.schedule.phase(state.step - 1)) != _stage_of(phase)
            if new_phase and phase.reset_optimizers:
                pair.reset_optimizers()
            if self.phase is None:  # this process's first step: can the data follow the schedule?
                self._check_batches(state.data, getattr(self.schedule, "batch_sizes", {}).values())
            self._check_batches(state.data, [phase.batch_size])
            per_device = phase.batch_size // self.world_size
            step_fn.batch_per_device = per_device
            step_fn.batch_size = phase.batch_size
            state.data.batch_size = per_device
            stage_prepare = prepare

            def prepare(batch: Batch, phase=phase) -> Batch:
                batch = stage_prepare(batch) if stage_prepare is not None else batch
                return Batch(self.schedule.transform_real(batch.x, phase), batch.y)

            self.phase = phase
        step_fn.prepare = prepare

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

    def _stage_prepare(self, state: Any) -> Callable[[Batch], Batch] | None:
        k = state.stage
        if self.stages.num_stages == 1:
            return None
        if k not in self._prepare:
            frozen = [p.G_sample for p in state.pairs[:k]]
            for G in frozen:
                G.eval().requires_grad_(False)
            self._prepare[k] = lambda batch: self.stages.prepare(k, batch, frozen)
        return self._prepare[k]

    def real_nimg(self, step: int, batch_size: int, n_critic: int) -> float:
        """Real images shown to D before generator step ``step``."""
        if self.schedule is not None:
            return self.schedule.phase(step).kimg * 1000.0
        return step * batch_size * n_critic

    def sampler(self, state: Any) -> nn.Module:
        """The generator figures and metrics draw from: the cascade of the stages trained so far."""
        return self.stages.cascade([p.G_sample for p in state.pairs[: state.stage + 1]])
