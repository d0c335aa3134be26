"""Shape facts and the DataSource protocol shared by every dataset."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class DataInfo:
    """Facts about one sample that models need at construction.

    Args:
        shape: shape of one sample: ``(2,)`` for 2D toy data, ``(C, H, W)`` for images.
        num_classes: number of labels; 0 when the data is unlabelled or labels are not used.
        bounded: True when samples lie in [-1, 1] (normalised images), so G ends in tanh.
    """

    shape: tuple[int, ...]
    num_classes: int = 0
    bounded: bool = False

    @property
    def dim(self) -> int:
        """Number of values in one sample (the flattened size)."""
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass
class Batch:
    """One batch the step takes from the data: what D judges and what G and D are conditioned on.

    Args:
        x: the real samples D judges, (N, *shape) (for an image-to-image model: the target).
        y: the condition G and D both receive: class labels (N,) int64, an image (N, C, H, W)
            (pix2pix's input, LAPGAN's coarse image), or None.
    """

    x: torch.Tensor
    y: Any = None

    @classmethod
    def of(cls, item: Any) -> Batch:
        """A source's ``next()`` result as a Batch: a Batch as it is, or an ``(x, y)`` pair."""
        if isinstance(item, Batch):
            return item
        x, y = item
        return cls(x, y)


class DataSource(Protocol):
    """What the training loop and the metrics need from a dataset (built by the dataset config's
    ``_target_``, see docs/architecture.md)."""

    info: DataInfo
    name: str  # keys cached reference statistics (with the shape and split)
    figure_samples: int  # samples in a figure unless train.figure_samples says otherwise
    default_metrics: tuple[str, ...]  # what gan-eval and the tracker compute by default
    metric_options: dict[str, dict]  # per-metric options of this data (e.g. pr on its own net)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch on the training device: samples (batch, *shape) and labels or None."""
        ...

    def state_dict(self) -> dict:
        """Position in the data order (for exact resume)."""
        ...

    def load_state_dict(self, state: dict) -> None: ...

    def save_figure(self, fake: torch.Tensor, path: Path, labels: torch.Tensor | None = None) -> None:
        """Write the sample figure for generated samples ``fake`` to ``path`` (PNG)."""
        ...

    def real_batches(self, num: int, batch_size: int = 500) -> Iterator[torch.Tensor]:
        """The first ``num`` real samples (always the same ones), batch by batch, for metrics."""
        ...

    def fingerprint(self, num: int) -> str:
        """A digest of what ``real_batches(num)`` yields (their content, or their files' names,
        sizes and times): part of the reference-statistics cache key."""
        ...
