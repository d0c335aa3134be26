"""StyleGAN2: modulated convolutions, skip generator, residual discriminator (Karras et al. 2020).

Karras, Laine, Aittala, Hellsten, Lehtinen, Aila 2020, "Analyzing and Improving the Image
Quality of StyleGAN" (CVPR), sections 2 and 4, figures 2(d) and 7, appendix B (config F).

Generator (the "skip" architecture of figure 7, no progressive growing):

* mapping network as StyleGAN's (``style_layers.MappingNetwork``: pixel norm on z, 8 fully
  connected layers, learning rate x0.01, ``w_avg`` for truncation in W);
* synthesis: a learned constant (C_s, s, s); at the start side one layer, at every later side two
  (the first after bilinear upsampling); each layer is ``modulated conv 3x3 (demodulated) ->
  + strength * noise -> + bias -> sqrt(2) * LeakyReLU(0.2)``, with its own style input. Every side
  has a toRGB (modulated 1x1 convolution, not demodulated, + bias, linear) and the image is the sum
  of them, each upsampled (bilinear = the [1, 3, 3, 1] filter) to the next side:
  ``img_r = upsample(img_{r/2}) + toRGB_r(x_r)``;
* styles: ``num_ws = 2 * k + 2`` for k doublings (18 at 1024 px); as in NVIDIA's code, the toRGB
  of a side shares its style input with the first layer of the next side;
* style mixing regularisation with probability 0.9 in training mode; truncation
  ``w' = w_avg + psi (w - w_avg)``.

NVIDIA's code upsamples inside the first convolution of a side (a transposed convolution then the
[1, 3, 3, 1] filter); here the input is upsampled bilinearly, then convolved: the same filter
family, a different order of the linear operations.

Discriminator (the "residual" architecture of figure 7): fromRGB (1x1) at the data's side, then
one residual block per halving, ``(skip + main) / sqrt(2)`` with ``main = conv 3x3 -> conv 3x3
halving`` and ``skip = halving -> 1x1`` (halving: [1, 3, 3, 1] blur then stride 2, as NVIDIA's),
then at side s: minibatch stddev (group 4, one channel), conv 3x3, fully connected, linear output.
Weights use gain 1 and every LeakyReLU(0.2) is followed by sqrt(2). ``architecture="orig"`` drops
the skip branches (each block is ``main`` alone), as NVIDIA's CIFAR-10 configuration does.

The generator interface shared with StyleGAN's is described in ``gan_cli.models.stylegan``.
Labels are not used (``num_classes`` is accepted and the attribute is 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.models.style_layers import (
    SQRT2,
    ConstantInput,
    EqualizedConv2d,
    EqualizedLinear,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    channels_at,
    layer_noise,
    minibatch_std,
    progressive_plan,
    upsample2x,
)
from gan_cli.models.stylegan import StyleGenerator

__all__ = ["Generator", "Discriminator", "Synthesis"]


def _act(x: Tensor, gain: float = SQRT2) -> Tensor:
    return F.leaky_relu(x, 0.2) * gain


class SynthesisLayer(nn.Module):
    """``[upsample] -> modulated conv 3x3 -> + strength * noise -> + bias -> sqrt(2) LeakyReLU``."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, side: int, up: bool) -> None:
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, demodulate=True)
        self.noise = NoiseInjection(out_ch, per_channel=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        if self.up:
            x = upsample2x(x, filtered=True)
        x = self.conv(x, w)
        x = self.noise(x, layer_noise(noise_mode, self.noise_const))
        return _act(x + self.bias.to(x.dtype)[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 convolution without demodulation, + bias, linear."""

    def __init__(self, in_ch: int, img_channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


class Synthesis(nn.Module):
    """StyleGAN2's skip synthesis network: ws (N, num_ws, w_dim) -> images (N, C, R, R).

    Args:
        w_dim: size of w.
        img_channels: C.
        resolutions: the sides s, 2s, ..., R.
        channel_base, channel_max: feature maps per side.
    """

    def __init__(self, *, w_dim: int, img_channels: int, resolutions: list[int], channel_base: int,
                 channel_max: int) -> None:
        super().__init__()
        self.resolutions = list(resolutions)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        self.const = ConstantInput(ch[0], self.resolutions[0], init="randn")
        convs = [SynthesisLayer(ch[0], ch[0], w_dim, self.resolutions[0], up=False)]
        for i in range(1, len(ch)):
            convs.append(SynthesisLayer(ch[i - 1], ch[i], w_dim, self.resolutions[i], up=True))
            convs.append(SynthesisLayer(ch[i], ch[i], w_dim, self.resolutions[i], up=False))
        self.convs = nn.ModuleList(convs)
        self.to_rgb = nn.ModuleList(ToRGB(c, img_channels, w_dim) for c in ch)
        self.num_ws = len(convs) + 1
        self.num_active_ws = self.num_ws
        # style i drives conv i (side of conv i) and, when odd, the toRGB of the side before it
        sides = [self.resolutions[0]] + [self.resolutions[(i + 1) // 2] for i in range(1, len(convs))]
        self.layer_resolutions = sides + [self.resolutions[-1]]

    def forward(self, ws: Tensor, noise_mode: str = "random") -> Tensor:
        x = self.const(ws.shape[0]).to(ws.dtype)
        x = self.convs[0](x, ws[:, 0], noise_mode)
        img = self.to_rgb[0](x, ws[:, 1])
        for i in range(1, len(self.resolutions)):
            x = self.convs[2 * i - 1](x, ws[:, 2 * i - 1], noise_mode)
            x = self.convs[2 * i](x, ws[:, 2 * i], noise_mode)
            img = upsample2x(img, filtered=True) + self.to_rgb[i](x, ws[:, 2 * i + 1])
        return img


class Generator(StyleGenerator):
    """StyleGAN2's generator (config F, skip architecture).

    Args:
        z_dim: size of z (512).
        data_shape: (C, R, R), R = start_resolution * 2**k.
        num_classes: accepted and ignored (unconditional).
        bounded: the data lie in [-1, 1]; with ``tanh_output`` the output is squashed to it.
        w_dim: size of w (512).
        mapping_layers: 8 (2 in NVIDIA's CIFAR-10 setting).
        mapping_lr_multiplier: 0.01.
        channel_base, channel_max: feature maps at side r: ``min(channel_base // r, channel_max)``
            (config F: 32768 and 512, i.e. 512 up to 64 px, 32 at 1024 px).
        start_resolution: side of the constant input; None = 4 for 4 * 2**k px (the paper's), 7 for
            28 px (``style_layers.default_start_resolution``).
        mixing_prob: style-mixing probability per training batch (0.9; 0 = off).
        w_avg_beta: decay of the w moving average per training forward (0.995).
        tanh_output: end in tanh when ``bounded`` (the paper: False).

    Attributes:
        num_classes: 0.
        mapping, synthesis: the two networks; ``num_ws``, ``layer_resolutions``, ``w_avg``.
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 w_dim: int = 512, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 channel_base: int = 32768, channel_max: int = 512, start_resolution: int | None = None,
                 mixing_prob: float = 0.9, w_avg_beta: float = 0.995, tanh_output: bool = False) -> None:
        super().__init__()
        c, resolutions = progressive_plan(data_shape, start_resolution, "StyleGAN2 generator")
        if not 0.0 <= mixing_prob <= 1.0:
            raise ValueError(f"StyleGAN2 generator: mixing_prob must be in [0, 1], got {mixing_prob}")
        self.z_dim, self.data_shape, self.num_classes = int(z_dim), tuple(data_shape), 0
        self.resolutions = resolutions
        self.mixing_prob = float(mixing_prob)
        self.squash = bool(bounded and tanh_output)
        self.synthesis = Synthesis(w_dim=w_dim, img_channels=c, resolutions=resolutions,
                                   channel_base=channel_base, channel_max=channel_max)
        self.mapping = MappingNetwork(self.z_dim, w_dim, mapping_layers, self.synthesis.num_ws,
                                      lr_multiplier=mapping_lr_multiplier, w_avg_beta=w_avg_beta)


class DBlock(nn.Module):
    """Residual block ``(skip(x) + main(x)) / sqrt(2)``, or ``main(x)`` alone without the skip
    branch (``residual=False``, NVIDIA's "orig"), halving the side."""

    def __init__(self, in_ch: int, out_ch: int, residual: bool = True) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_ch, in_ch, 3, gain=1.0)
        self.conv1 = EqualizedConv2d(in_ch, out_ch, 3, gain=1.0, down=True)
        self.skip = EqualizedConv2d(in_ch, out_ch, 1, bias=False, gain=1.0, down=True) if residual else None

    def forward(self, x: Tensor) -> Tensor:
        main = _act(self.conv1(_act(self.conv0(x))))
        if self.skip is None:
            return main
        return (self.skip(x) + main) * (1.0 / math.sqrt(2.0))


class Discriminator(nn.Module):
    """StyleGAN2's residual discriminator.

    Args:
        data_shape: (C, R, R), R = start_resolution * 2**k.
        num_classes: accepted and ignored (unconditional).
        output: ``"score"`` only.
        channel_base, channel_max: feature maps at side r (config F: 32768, 512).
        start_resolution: the side of the last block; None = as the generator's default.
        mbstd_group_size: G of the minibatch stddev (4; 0 = no such layer).
        mbstd_channels: its statistics (1).
        architecture: ``"resnet"`` (config F: residual blocks) or ``"orig"`` (no skip branches:
            NVIDIA's CIFAR-10 configuration).

    Attributes:
        num_classes: 0.

    Forward: ``(x, y=None)`` with x (N, C, R, R) -> raw scores (N,); with the minibatch stddev,
    N must be divisible by min(group size, N).
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 channel_base: int = 32768, channel_max: int = 512, start_resolution: int | None = None,
                 mbstd_group_size: int = 4, mbstd_channels: int = 1, architecture: str = "resnet") -> None:
        super().__init__()
        who = "StyleGAN2 discriminator"
        if output != "score":
            raise ValueError(f"{who}: output must be 'score', got {output!r}")
        if architecture not in ("resnet", "orig"):
            raise ValueError(f"{who}: architecture must be 'resnet' or 'orig', got {architecture!r}")
        c, self.resolutions = progressive_plan(data_shape, start_resolution, who)
        self.data_shape, self.num_classes, self.output = tuple(data_shape), 0, output
        self.mbstd_group_size, self.mbstd_channels = int(mbstd_group_size), int(mbstd_channels)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        self.from_rgb = EqualizedConv2d(c, ch[-1], 1, gain=1.0)
        residual = architecture == "resnet"
        self.blocks = nn.ModuleList(DBlock(ch[i], ch[i - 1], residual) for i in range(len(ch) - 1, 0, -1))
        s = self.resolutions[0]
        extra = self.mbstd_channels if self.mbstd_group_size > 0 else 0
        self.conv = EqualizedConv2d(ch[0] + extra, ch[0], 3, gain=1.0)
        self.fc = EqualizedLinear(ch[0] * s * s, ch[0], gain=1.0)
        self.out = EqualizedLinear(ch[0], 1, gain=1.0)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = _act(self.from_rgb(x))
        for block in self.blocks:
            h = block(h)
        if self.mbstd_group_size > 0:
            h = minibatch_std(h, self.mbstd_group_size, self.mbstd_channels)
        h = _act(self.conv(h))
        h = _act(self.fc(h.flatten(1)))
        return self.out(h).flatten()
