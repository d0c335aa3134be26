"""StyleGAN2 (Karras et al. 2020, sections 2, 4, fig. 7, config F): skip generator, residual D.

Generator: StyleGAN's mapping; from a learned randn constant, one layer at the start side and two
per later side (the first upsamples), each ``modulated conv 3x3 (demodulated) -> + strength noise ->
+ bias -> sqrt(2) LeakyReLU(0.2)``; the image is the sum of every side's toRGB (modulated 1x1, not
demodulated), upsampled; a side's toRGB shares its style with the next side's first layer (NVIDIA's
code), so ``num_ws = 2k + 2``. ``upsample``: "transposed" (NVIDIA's: a stride-2 transposed
convolution at the low side, then the [1, 3, 3, 1] filter; the image by upfirdn2d, zero borders) or
"bilinear" (the input upsampled bilinearly, then convolved at the high side; four times the
arithmetic). Discriminator: fromRGB, per halving a residual block
``(skip + main) / sqrt(2)`` (``architecture="orig"``: main alone), then minibatch stddev, conv,
fully connected, linear score; gain 1 weights, sqrt(2) after each LeakyReLU. Labels are not used.
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
    upsample2x_fir,
)
from gan_cli.models.stylegan import StyleGenerator

__all__ = ["Generator", "Discriminator", "Synthesis"]


def _act(x: Tensor, gain: float = SQRT2) -> Tensor:
    return F.leaky_relu(x, 0.2) * gain


class SynthesisLayer(nn.Module):
    """``modulated conv 3x3 [upsampling: upsample] -> + strength * noise -> + bias -> sqrt(2) LeakyReLU``."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, side: int, up: str | None, fused: bool) -> None:
        super().__init__()
        self.up = up == "bilinear"  # else the convolution upsamples (up="transposed") or not (None)
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, demodulate=True, fused=fused,
                                    up=2 if up == "transposed" else 1)
        self.noise = NoiseInjection(out_ch, per_channel=False)
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("noise_const", torch.randn(1, 1, side, side))

    def forward(self, x: Tensor, w: Tensor, noise_mode: str) -> Tensor:
        if self.up:
            x = upsample2x(x, filtered=True)
        x = self.conv(x, w)
        x = self.noise(x, layer_noise(noise_mode, self.noise_const))
        return _act(x + self.bias.to(x.dtype)[None, :, None, None])


def _bilinear(img: Tensor) -> Tensor:
    return upsample2x(img, filtered=True)


class ToRGB(nn.Module):
    """Modulated 1x1 convolution without demodulation, + bias, linear."""

    def __init__(self, in_ch: int, img_channels: int, w_dim: int, fused: bool) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, w_dim, demodulate=False, fused=fused)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[None, :, None, None]


class Synthesis(nn.Module):
    """StyleGAN2's skip synthesis network: ws (N, num_ws, w_dim) -> images (N, C, R, R); ``modconv``:
    unfused | fused modulated convolutions (style_layers.modulated_conv2d); ``upsample``: transposed
    | bilinear (the module's docstring)."""

    def __init__(self, *, w_dim: int, img_channels: int, resolutions: list[int], channel_base: int,
                 channel_max: int, modconv: str = "unfused", upsample: str = "transposed") -> None:
        super().__init__()
        self.upsample_img = upsample2x_fir if upsample == "transposed" else _bilinear
        self.resolutions = list(resolutions)
        ch = [channels_at(r, channel_base, channel_max) for r in self.resolutions]
        fused = modconv == "fused"
        self.const = ConstantInput(ch[0], self.resolutions[0], init="randn")
        convs = [SynthesisLayer(ch[0], ch[0], w_dim, self.resolutions[0], None, fused)]
        for i in range(1, len(ch)):
            convs.append(SynthesisLayer(ch[i - 1], ch[i], w_dim, self.resolutions[i], upsample, fused))
            convs.append(SynthesisLayer(ch[i], ch[i], w_dim, self.resolutions[i], None, fused))
        self.convs = nn.ModuleList(convs)
        self.to_rgb = nn.ModuleList(ToRGB(c, img_channels, w_dim, fused) for c in ch)
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
            img = self.upsample_img(img) + self.to_rgb[i](x, ws[:, 2 * i + 1])
        return img


class Generator(StyleGenerator):
    """StyleGAN2's generator; keys as conf/model/stylegan2.yaml (schema StyleGAN2GeneratorConfig)."""

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 w_dim: int = 512, mapping_layers: int = 8, mapping_lr_multiplier: float = 0.01,
                 channel_base: int = 32768, channel_max: int = 512, start_resolution: int | None = None,
                 mixing_prob: float = 0.9, w_avg_beta: float = 0.995, tanh_output: bool = False,
                 modconv: str = "unfused", upsample: str = "transposed") -> None:
        super().__init__()
        c, resolutions = progressive_plan(data_shape, start_resolution, "StyleGAN2 generator")
        self.z_dim, self.data_shape, self.num_classes = int(z_dim), tuple(data_shape), 0
        self.resolutions = resolutions
        self.mixing_prob = float(mixing_prob)
        self.squash = bool(bounded and tanh_output)
        self.synthesis = Synthesis(w_dim=w_dim, img_channels=c, resolutions=resolutions,
                                   channel_base=channel_base, channel_max=channel_max, modconv=modconv,
                                   upsample=upsample)
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
    """StyleGAN2's discriminator: (N, C, R, R) -> raw scores (N,); keys as conf/model/stylegan2.yaml."""

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 channel_base: int = 32768, channel_max: int = 512, start_resolution: int | None = None,
                 mbstd_group_size: int = 4, mbstd_channels: int = 1, architecture: str = "resnet") -> None:
        super().__init__()
        who = "StyleGAN2 discriminator"
        if output != "score":
            raise ValueError(f"{who}: output must be 'score', got {output!r}")
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
