"""ProGAN: progressively grown generator and discriminator (Karras et al. 2018).

Karras, Aila, Laine, Lehtinen 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation" (ICLR), section 2 and appendix A (table 2).

G and D mirror each other, one block per resolution from ``s = start_resolution`` (4 in the
paper) up to the data's side ``R = s * 2**k``; the feature maps at side r are
``min(channel_base // r, channel_max)`` (the paper: 512 up to 32 px, then 256, 128, 64, 32, 16).
Every weight uses the equalised learning rate; activations are LeakyReLU(0.2).

* Generator: z -> pixel norm -> a dense layer to (C_s, s, s) (the paper's 4x4 convolution on the
  1x1 latent; gain sqrt(2)/s, the same He constant) -> conv 3x3; then per doubling: nearest
  upsampling, conv 3x3, conv 3x3. Pixel norm follows every convolution's activation. toRGB is a
  1x1 convolution (gain 1, linear) at every resolution.
* Discriminator: fromRGB (1x1 conv + LeakyReLU) at every resolution; per halving: conv 3x3,
  conv 3x3, 2x2 average pooling; at side s: minibatch stddev (group 4), conv 3x3, a dense
  layer (the paper's 4x4 convolution), a linear output (gain 1).

Progressive growing (section 2): every block is built at construction, so the state dict has
the same shape in every phase, and ``set_phase(resolution, alpha)`` selects what runs:

* G at side r makes (N, C, r, r) images: ``(1 - alpha) * upsample(toRGB_{r/2}(h_{r/2})) +
  alpha * toRGB_r(block_r(h_{r/2}))``: at alpha 0 the lower-resolution output upsampled
  (nearest), at alpha 1 the new block's;
* D at side r takes (N, C, r, r): ``(1 - alpha) * fromRGB_{r/2}(avgpool(x)) +
  alpha * block_r(fromRGB_r(x))`` feeds the blocks below.

The real images are faded the same way by ``gan_cli.schedules.ProgressiveSchedule.transform_real``.
The default phase is the data's resolution with alpha 1 (a fully grown network).

Output range: the paper's toRGB is linear (data in [-1, 1] are not squashed). ``tanh_output=True``
ends in tanh when the data are bounded.

Labels are not used (``num_classes`` is accepted and the attribute is 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_cli.models.style_layers import (
    EqualizedConv2d,
    EqualizedLinear,
    channels_at,
    downsample2x,
    minibatch_std,
    pixel_norm,
    progressive_plan,
    upsample2x,
)

__all__ = ["Generator", "Discriminator", "GrowingMixin"]


class GrowingMixin:
    """``set_phase(resolution, alpha)`` and the checks every growing network shares.

    Needs ``self.resolutions`` (the sides, start to full) and ``self.growing`` (bool).
    """

    resolutions: list[int]
    growing: bool

    def _init_phase(self) -> None:
        self.phase_resolution = self.resolutions[-1]
        self.alpha = 1.0

    @property
    def phase_level(self) -> int:
        """Index of the current side in ``resolutions`` (0 at the start resolution)."""
        return self.resolutions.index(self.phase_resolution)

    def set_phase(self, resolution: int, alpha: float = 1.0) -> None:
        """Run at side ``resolution`` from now on, with the newest block faded in by ``alpha``.

        Args:
            resolution: one of ``self.resolutions``.
            alpha: in [0, 1]; ignored (treated as 1) at the start resolution, where no older
                path exists.

        Raises:
            ValueError: an unknown resolution, alpha outside [0, 1], or a lower resolution on a
                network built with ``progressive=False``.
        """
        if resolution not in self.resolutions:
            raise ValueError(f"set_phase: resolution {resolution} is not one of {self.resolutions}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"set_phase: alpha must be in [0, 1], got {alpha}")
        if not self.growing and (resolution != self.resolutions[-1] or alpha != 1.0):
            raise ValueError("set_phase: this network was built with progressive=False; it runs at "
                             f"{self.resolutions[-1]} px with alpha 1 only")
        self.phase_resolution = int(resolution)
        self.alpha = 1.0 if resolution == self.resolutions[0] else float(alpha)


def _lrelu(x: Tensor) -> Tensor:
    return torch.nn.functional.leaky_relu(x, 0.2)


class GBlock(nn.Module):
    """Nearest upsampling, then two conv 3x3 + LeakyReLU (+ pixel norm)."""

    def __init__(self, in_ch: int, out_ch: int, use_pixel_norm: bool) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_ch, out_ch, 3)
        self.conv1 = EqualizedConv2d(out_ch, out_ch, 3)
        self.use_pixel_norm = use_pixel_norm

    def forward(self, x: Tensor) -> Tensor:
        x = upsample2x(x)
        for conv in (self.conv0, self.conv1):
            x = _lrelu(conv(x))
            x = pixel_norm(x) if self.use_pixel_norm else x
        return x


class Generator(GrowingMixin, nn.Module):
    """ProGAN's generator.

    Args:
        z_dim: size of z (512 in the paper).
        data_shape: (C, R, R), R = start_resolution * 2**k.
        num_classes: accepted and ignored (unconditional).
        bounded: the data lie in [-1, 1]; with ``tanh_output`` the output is squashed to it.
        channel_base, channel_max: feature maps at side r: ``min(channel_base // r, channel_max)``.
        start_resolution: the first block's side; None = 4 for 4 * 2**k px (the paper's), 7 for 28 px
            (``style_layers.default_start_resolution``).
        use_pixel_norm: pixel norm on z and after every convolution (the paper: True).
        tanh_output: end in tanh when ``bounded`` (the paper: False, a linear toRGB).
        progressive: build the lower-resolution toRGB layers and allow ``set_phase``; False gives
            a fixed network at the data's resolution.

    Attributes:
        num_classes: 0.
        resolutions: the sides s, 2s, ..., R.
        phase_resolution, alpha: the current phase (``set_phase``).
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 channel_base: int = 16384, channel_max: int = 512, start_resolution: int | None = None,
                 use_pixel_norm: bool = True, tanh_output: bool = False, progressive: bool = True) -> None:
        super().__init__()
        who = "ProGAN generator"
        c, self.resolutions = progressive_plan(data_shape, start_resolution, who)
        self.z_dim, self.data_shape, self.num_classes = int(z_dim), tuple(data_shape), 0
        self.growing = bool(progressive)
        self.use_pixel_norm = bool(use_pixel_norm)
        self.squash = bool(bounded and tanh_output)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        s = self.resolutions[0]
        self.dense = EqualizedLinear(self.z_dim, ch[0] * s * s, gain=math.sqrt(2.0) / s)
        self.conv = EqualizedConv2d(ch[0], ch[0], 3)
        self.blocks = nn.ModuleList(GBlock(ch[i - 1], ch[i], self.use_pixel_norm)
                                    for i in range(1, len(ch)))
        levels = range(len(ch)) if self.growing else [len(ch) - 1]
        self.to_rgb = nn.ModuleDict({str(self.resolutions[i]): EqualizedConv2d(ch[i], c, 1, gain=1.0)
                                     for i in levels})
        self._init_phase()

    def _norm(self, x: Tensor) -> Tensor:
        return pixel_norm(x) if self.use_pixel_norm else x

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Images at the current phase's side.

        Args:
            z: latents (N, z_dim).
            y: ignored.

        Returns:
            (N, C, r, r) with r the phase's resolution (the data's, unless ``set_phase`` said
            otherwise).
        """
        s, level = self.resolutions[0], self.phase_level
        x = self._norm(z)
        x = self._norm(_lrelu(self.dense(x).reshape(z.shape[0], -1, s, s)))
        x = self._norm(_lrelu(self.conv(x)))
        prev = x
        for block in self.blocks[:level]:
            prev, x = x, block(x)
        img = self.to_rgb[str(self.resolutions[level])](x)
        if level > 0 and self.alpha < 1.0:
            old = upsample2x(self.to_rgb[str(self.resolutions[level - 1])](prev))
            img = torch.lerp(old, img, self.alpha)
        return torch.tanh(img) if self.squash else img


class DBlock(nn.Module):
    """Two conv 3x3 + LeakyReLU, then 2x2 average pooling."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualizedConv2d(in_ch, out_ch, 3)

    def forward(self, x: Tensor) -> Tensor:
        return downsample2x(_lrelu(self.conv1(_lrelu(self.conv0(x)))))


class Discriminator(GrowingMixin, nn.Module):
    """ProGAN's discriminator (also StyleGAN's).

    Args:
        data_shape: (C, R, R), R = start_resolution * 2**k.
        num_classes: accepted and ignored (unconditional).
        output: ``"score"`` only.
        channel_base, channel_max, start_resolution, progressive: as the generator's.
        mbstd_group_size: G of the minibatch stddev before the last block (4); 0 = no such layer.
        mbstd_channels: its statistics (1).

    Attributes:
        num_classes: 0.
        resolutions, phase_resolution, alpha: as the generator's.

    Forward: ``(x, y=None)`` with x (N, C, r, r) at the phase's side r -> raw scores (N,).
    With the minibatch stddev, N must be divisible by min(4, N).
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 channel_base: int = 16384, channel_max: int = 512, start_resolution: int | None = None,
                 mbstd_group_size: int = 4, mbstd_channels: int = 1, progressive: bool = True) -> None:
        super().__init__()
        who = "ProGAN discriminator"
        if output != "score":
            raise ValueError(f"{who}: output must be 'score', got {output!r}")
        c, self.resolutions = progressive_plan(data_shape, start_resolution, who)
        self.data_shape, self.num_classes, self.output = tuple(data_shape), 0, output
        self.growing = bool(progressive)
        self.mbstd_group_size, self.mbstd_channels = int(mbstd_group_size), int(mbstd_channels)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        levels = range(len(ch)) if self.growing else [len(ch) - 1]
        self.from_rgb = nn.ModuleDict({str(self.resolutions[i]): EqualizedConv2d(c, ch[i], 1)
                                       for i in levels})
        # blocks[i - 1] takes side resolutions[i] down to resolutions[i - 1]
        self.blocks = nn.ModuleList(DBlock(ch[i], ch[i - 1]) for i in range(1, len(ch)))
        s = self.resolutions[0]
        extra = self.mbstd_channels if self.mbstd_group_size > 0 else 0
        self.conv = EqualizedConv2d(ch[0] + extra, ch[0], 3)
        self.dense = EqualizedLinear(ch[0] * s * s, ch[0])
        self.out = EqualizedLinear(ch[0], 1, gain=1.0)
        self._init_phase()

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        level = self.phase_level
        h = _lrelu(self.from_rgb[str(self.resolutions[level])](x))
        for i in range(level, 0, -1):
            h = self.blocks[i - 1](h)
            if i == level and self.alpha < 1.0:
                old = _lrelu(self.from_rgb[str(self.resolutions[i - 1])](downsample2x(x)))
                h = torch.lerp(old, h, self.alpha)
        if self.mbstd_group_size > 0:
            h = minibatch_std(h, self.mbstd_group_size, self.mbstd_channels)
        h = _lrelu(self.conv(h))
        h = _lrelu(self.dense(h.flatten(1)))
        return self.out(h).flatten()
