"""ProGAN: progressively grown generator and discriminator (Karras et al. 2018, section 2, table 2).

One block per side from ``start_resolution`` to the data's, ``channels_at`` feature maps, equalised
learning rate, LeakyReLU(0.2). G: pixel norm, a dense layer to (C, s, s) (the paper's 4x4 conv on
the 1x1 latent, gain sqrt(2)/s), conv 3x3, then per doubling nearest upsampling and two convs, pixel
norm after each; linear 1x1 toRGB per side. D mirrors it with 2x2 average pooling, minibatch stddev,
conv, dense and a linear score. Every block is built at once; ``set_phase(r, alpha)`` fades the
newest block in: ``lerp(up(toRGB_{r/2}), toRGB_r(block_r), alpha)`` in G, the mirror in D.
Labels are not used.
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
    """``set_phase(resolution, alpha)`` for networks with ``resolutions`` (start to full) and ``growing``."""

    resolutions: list[int]
    growing: bool

    def _init_phase(self) -> None:
        self.phase_resolution = self.resolutions[-1]
        self.alpha = 1.0

    @property
    def phase_level(self) -> int:
        return self.resolutions.index(self.phase_resolution)

    def set_phase(self, resolution: int, alpha: float = 1.0) -> None:
        """Run at side ``resolution``, the newest block faded in by ``alpha`` in [0, 1] (1 at the start)."""
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
    """ProGAN's generator: (N, z_dim) -> (N, C, r, r) at the phase's side r (conf/model/progan.yaml)."""

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
    """ProGAN's (and StyleGAN's) discriminator: (N, C, r, r) at the phase's side -> raw scores (N,)."""

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
