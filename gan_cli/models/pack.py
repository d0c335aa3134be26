"""PacGAN's packing: the discriminator judges ``pack`` samples at once (Lin et al. 2018).

Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative adversarial
networks": D maps m samples, all real or all generated, jointly to one score. For images the m
samples are concatenated along the channels, (C, H, W) -> (m * C, H, W); for vectors along
their only dimension, (d,) -> (m * d,). A distribution that lacks modes is easier to tell from
the data's when D sees several of its samples together, so the generator is pushed towards
covering every mode (the paper's analysis of mode collapse); the rest of the network is
unchanged, only its input layer is m times wider.

:class:`Packed` wraps a discriminator built for ``packed_shape(data_shape, pack)``: a batch of
N samples becomes N / pack packed samples, samples ``i * pack ... i * pack + pack - 1`` forming
packed sample ``i``, and the scores (or features) are those of the packed samples. The losses
then average over N / pack scores instead of N, which is PacGAN's loss as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["Packed", "packed_shape"]


def _check_pack(pack: Any) -> int:
    if isinstance(pack, bool) or not isinstance(pack, int) or pack < 1:
        raise ValueError(f"pack must be an integer >= 1, got {pack!r}")
    return pack


def packed_shape(data_shape: Sequence[int], pack: int) -> tuple[int, ...]:
    """The shape of one packed sample: ``pack`` samples joined along their first dimension.

    Args:
        data_shape: one sample's shape: (C, H, W) for images, (d,) for vectors.
        pack: samples per packed sample, m (1 = no packing).

    Returns:
        (pack * C, H, W) for images, (pack * d,) for vectors.

    Raises:
        ValueError: ``pack`` is not an integer >= 1, or ``data_shape`` is empty.
    """
    pack = _check_pack(pack)
    shape = tuple(data_shape)
    if not shape:
        raise ValueError("data_shape must have at least one dimension, got ()")
    return (pack * shape[0], *shape[1:])


class Packed(nn.Module):
    """A discriminator that scores packs of ``pack`` consecutive samples.

    Args:
        inner: the discriminator, built for ``packed_shape(data_shape, pack)``; unconditional
            (``num_classes == 0``): PacGAN packs unlabelled samples, and a pack of samples with
            different labels has no single label to condition on.
        pack: samples per packed sample, m >= 1 (the paper uses 2 to 4).

    Attributes:
        inner: the wrapped discriminator (its parameters are this module's, under ``inner.``).
        pack: m.
        num_classes: 0.
        output: the wrapped discriminator's ``output`` ("score" when it has none).

    Forward: ``(x, y=None)`` with x of shape (N, *data_shape), N a multiple of ``pack``; returns
    ``inner``'s output for the N / pack packed samples: scores (N / pack,) or features
    (N / pack, F). A reconstruction (BEGAN) is unpacked back to (N, *data_shape).

    Raises:
        ValueError: at construction, a conditional ``inner``; when called, N not a multiple of
            ``pack``, or a condition ``y`` that is not None.
    """

    def __init__(self, inner: nn.Module, pack: int) -> None:
        super().__init__()
        self.pack = _check_pack(pack)
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
        """Score packs of consecutive samples.

        Args:
            x: samples, shape (N, *data_shape), N a multiple of ``pack``.
            y: must be None (packing is unconditional).

        Returns:
            ``inner``'s output on the packed batch (N / pack, pack * data_shape[0], ...).
        """
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
