"""PacGAN's packing (Lin et al. 2018): D scores ``pack`` samples at once, all real or all generated.

Samples i*m .. i*m + m - 1 of a batch form packed sample i, joined along their first dimension:
(C, H, W) -> (m * C, H, W), (d,) -> (m * d,); the losses then average over N / m scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Packed", "packed_shape"]


def packed_shape(data_shape: Sequence[int], pack: int) -> tuple[int, ...]:
    """One packed sample's shape: (pack * C, H, W) for images, (pack * d,) for vectors."""
    shape = tuple(data_shape)
    if not shape:
        raise ValueError("data_shape must have at least one dimension, got ()")
    return (pack * shape[0], *shape[1:])


class Packed(nn.Module):
    """``inner`` (built for ``packed_shape(data_shape, pack)``, unconditional) on packs of ``pack``
    consecutive samples: x (N, *data_shape) -> scores (N / pack,) or features (N / pack, F); a
    reconstruction (BEGAN) is unpacked back to (N, *data_shape).
    """

    def __init__(self, inner: nn.Module, pack: int) -> None:
        super().__init__()
        self.pack = pack
        if getattr(inner, "num_classes", 0):
            raise ValueError(
                f"PacGAN packing needs an unconditional discriminator, got one with "
                f"num_classes={inner.num_classes}: a pack of samples has no single label; "
                "make the discriminator unconditional or use pack=1"
            )
        self.inner = inner
        self.num_classes = 0
        self.output = getattr(inner, "output", "score")

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if y is not None:
            raise ValueError(
                "PacGAN packing is unconditional: the packed discriminator was called with a "
                "condition y; train it without labels (an unconditional generator and "
                "discriminator) or use pack=1"
            )
        n = x.shape[0]
        if n % self.pack:
            raise ValueError(
                f"PacGAN packing with pack={self.pack} needs a batch size divisible by {self.pack}, "
                f"got {n} samples; change the batch size (per device) or the pack"
            )
        # (N, C, ...) -> (N/m, m, C, ...) -> (N/m, m*C, ...): pack i holds samples i*m .. i*m+m-1,
        # in order, each sample's C channels kept together.
        packed = x.reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:])
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            packed = packed.contiguous(memory_format=torch.channels_last)
        out = self.inner(packed)
        if self.output == "reconstruction":
            return out.reshape(x.shape)
        return out
