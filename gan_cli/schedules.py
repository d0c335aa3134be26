"""Training schedules that are pure functions of the generator step (exact resume).

:class:`ProgressiveSchedule` is ProGAN's progressive growing (Karras et al. 2018, section 2 and
appendix A.1). Training starts at side ``start_resolution`` for ``training_kimg`` thousand real
images; then, for every doubling up to the data's side, a transition (fade-in) segment of
``transition_kimg`` (alpha rises linearly from 0 to 1 with the images shown) and a training
segment of ``training_kimg`` at alpha 1; the last segment never ends. Real images are average-pooled to the
phase's side and, during a fade-in, blended as G's output (``transform_real``). The paper's code
resets the Adam moments when the resolution changes (a fade-in begins or ends):
``Phase.reset_optimizers`` marks the first step of every segment after the first.

A generator step shows ``batch_size * n_critic`` real images to D, at the batch of the side
being trained or faded in; a segment of K kimg at b images per step lasts ``ceil(1000 K / b)``
steps, and alpha = images shown since the fade-in began / (1000 * transition_kimg).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.models.style_layers import default_start_resolution


@dataclass(frozen=True)
class Phase:
    """Where progressive growing stands at one generator step: the level ``index`` (0 at
    ``start_resolution``), the ``resolution`` (px) G makes and D sees, the newest block's fade-in
    ``alpha``, the global batch, whether to reset the optimizers first (a new segment begins),
    and the ``kimg`` shown to D before the step."""

    index: int
    resolution: int
    alpha: float
    batch_size: int
    reset_optimizers: bool
    kimg: float

    @property
    def fading(self) -> bool:
        """True during a transition (alpha < 1)."""
        return self.alpha < 1.0


@dataclass(frozen=True)
class Segment:
    """One segment of the schedule, a fade-in or training at one side: ``steps`` steps (None:
    unbounded) from ``start_step``."""

    level: int
    resolution: int
    transition: bool
    batch_size: int
    start_step: int
    start_nimg: int
    steps: int | None


def paper_batch_sizes(resolution: int) -> int:
    """ProGAN's minibatch per side (section A.1): 16 up to 128 px, then 14, 6, 3."""
    return {256: 14, 512: 6, 1024: 3}.get(resolution, 16)


class ProgressiveSchedule:
    """ProGAN's schedule from side ``start_resolution`` (None: the models' default) to the data's
    ``resolution``; the keys are ProgressiveScheduleConfig's (config/model.py). ``resolutions``:
    the sides s, 2s, ..., R; ``segments``: in order, the last unbounded."""

    def __init__(self, resolution: int, start_resolution: int | None = None, training_kimg: float = 600.0,
                 transition_kimg: float = 600.0, batch_sizes: int | Mapping[int, int] | None = None,
                 n_critic: int = 1, reset_optimizers: bool = True) -> None:
        if start_resolution is None:
            start_resolution = default_start_resolution(resolution)
        if start_resolution < 1 or resolution < start_resolution or resolution % start_resolution:
            raise ValueError(f"progressive schedule: resolution {resolution} must be start_resolution "
                             f"({start_resolution}) times a power of two")
        ratio = resolution // start_resolution
        if ratio & (ratio - 1):
            raise ValueError(f"progressive schedule: resolution {resolution} must be start_resolution "
                             f"({start_resolution}) times a power of two")
        self.resolution, self.start_resolution = int(resolution), int(start_resolution)
        self.training_kimg, self.transition_kimg = float(training_kimg), float(transition_kimg)
        self.n_critic, self.reset = int(n_critic), bool(reset_optimizers)
        self.resolutions = [self.start_resolution * 2**i for i in range(ratio.bit_length())]
        self.batch_sizes = {r: self._batch(batch_sizes, r) for r in self.resolutions}
        self.segments = self._build_segments()
        self._starts = [segment.start_step for segment in self.segments]

    @staticmethod
    def _batch(batch_sizes: int | Mapping[int, int] | None, r: int) -> int:
        if batch_sizes is None:
            b = paper_batch_sizes(r)
        elif isinstance(batch_sizes, Mapping):
            if r not in batch_sizes:
                raise ValueError(f"progressive schedule: batch_sizes has no entry for side {r}; "
                                 f"give one for every side, got {dict(batch_sizes)}")
            b = batch_sizes[r]
        else:
            b = batch_sizes
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"progressive schedule: batch size at side {r} must be a positive integer, "
                             f"got {b!r}")
        return b

    def _build_segments(self) -> list[Segment]:
        kinds = [(0, False)]
        for level in range(1, len(self.resolutions)):
            if self.transition_kimg > 0:
                kinds.append((level, True))
            kinds.append((level, False))
        segments, step, nimg = [], 0, 0
        for i, (level, transition) in enumerate(kinds):
            r = self.resolutions[level]
            per_step = self.batch_sizes[r] * self.n_critic
            last = i == len(kinds) - 1
            kimg = self.transition_kimg if transition else self.training_kimg
            steps = None if last else math.ceil(1000.0 * kimg / per_step)
            segments.append(Segment(level, r, transition, self.batch_sizes[r], step, nimg, steps))
            if not last:
                step += steps
                nimg += steps * per_step
        return segments

    def segment_at(self, step: int) -> Segment:
        """The segment that generator step ``step`` (0-based) belongs to."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return self.segments[bisect.bisect_right(self._starts, step) - 1]

    def phase(self, step: int) -> Phase:
        """The phase of generator step ``step`` (0-based), a pure function of it (exact resume)."""
        seg = self.segment_at(step)
        local = step - seg.start_step
        per_step = seg.batch_size * self.n_critic
        alpha = min(1.0, local * per_step / (1000.0 * self.transition_kimg)) if seg.transition else 1.0
        reset = self.reset and local == 0 and seg.start_step > 0
        nimg = seg.start_nimg + local * per_step
        return Phase(seg.level, seg.resolution, alpha, seg.batch_size, reset, nimg / 1000.0)

    def transform_real(self, x: Tensor, phase: Phase) -> Tensor:
        """Real images (N, C, R, R) as D sees them in ``phase``: (N, C, r, r) box-filtered to its
        side r, during a fade-in ``(1 - alpha) * upsample_nearest(avgpool2(x_r)) + alpha * x_r``."""
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            raise ValueError(f"transform_real: images must be {self.resolution}x{self.resolution}, "
                             f"got {tuple(x.shape)}")
        factor = self.resolution // phase.resolution
        xr = F.avg_pool2d(x, factor) if factor > 1 else x
        if phase.alpha < 1.0 and phase.resolution > self.start_resolution:
            low = F.interpolate(F.avg_pool2d(xr, 2), scale_factor=2.0, mode="nearest")
            xr = torch.lerp(low, xr, phase.alpha)
        return xr
