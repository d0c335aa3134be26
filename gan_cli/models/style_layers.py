"""Layers of ProGAN, StyleGAN and StyleGAN2 (Karras et al. 2018, 2019, 2020).

Equalised learning rate (ProGAN 4.1): ``w ~ N(0, 1 / lr_mul^2)`` used as
``w * gain * lr_mul / sqrt(fan_in)``, bias as ``b * lr_mul``. Pixel norm (ProGAN 4.2), minibatch
stddev (ProGAN 3, NVIDIA's grouping), AdaIN (StyleGAN eq. 1), modulated/demodulated convolution
(StyleGAN2 eqs. 1, 3), noise inputs and the constant input (StyleGAN 2, 3.2). Resampling: ProGAN
nearest / 2x2 average; StyleGAN(2) the [1, 3, 3, 1] filter (bilinear upsampling is it inside the
image; NVIDIA's upfirdn2d pads with zeros, ``upsample2x_fir`` and ``modulated_conv2d(up=2)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SQRT2", "AdaIN", "ConstantInput", "EqualizedConv2d", "EqualizedLinear", "MappingNetwork",
           "ModulatedConv2d", "NoiseInjection", "ScaledLeakyReLU", "adain", "blur", "channels_at",
           "default_start_resolution", "downsample2x", "layer_noise", "minibatch_std", "mix_styles",
           "modulated_conv2d", "pixel_norm", "progressive_plan", "upsample2x", "upsample2x_fir"]

SQRT2 = math.sqrt(2.0)
_SUPPORTED = ("square images whose side is start_resolution * 2**k (k >= 0): with the default start, "
              "4, 8, 16, 32, 64, ... (start 4), 28 (start 7), 48 (start 6)")


# --------------------------------------------------------------------------------------------
# Shapes


def default_start_resolution(side: int) -> int:
    """Halve ``side`` while it is even and stays >= 4: 4 for 4 * 2**k, 7 for 28, 6 for 48, 5 for 20."""
    s = side
    while s % 2 == 0 and s // 2 >= 4:
        s //= 2
    return s


def progressive_plan(data_shape: Sequence[int], start_resolution: int | None,
                     who: str) -> tuple[int, list[int]]:
    """``(C, [s, 2s, ..., R])`` for square (C, R, R) data with R = s * 2**k (s = start_resolution,
    None = ``default_start_resolution(R)``); ValueError naming ``who`` otherwise."""
    shape = tuple(data_shape)
    if len(shape) != 3:
        raise ValueError(f"{who}: data_shape must be (C, H, W) for images, got {data_shape!r}; "
                         f"supported: {_SUPPORTED}")
    c, h, w = shape
    s = default_start_resolution(h) if start_resolution is None else start_resolution
    ratio = h // s
    if h != w or h < s or h % s or ratio & (ratio - 1):
        raise ValueError(f"{who}: image resolution {h}x{w} is not supported with start_resolution={s}; "
                         f"supported: {_SUPPORTED}")
    sides = [s]
    while sides[-1] < h:
        sides.append(sides[-1] * 2)
    return c, sides


def channels_at(side: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at side ``side``: ``min(channel_base // side, channel_max)``, at least 1."""
    return max(1, min(channel_base // side, channel_max))


# --------------------------------------------------------------------------------------------
# Equalised learning rate


class EqualizedLinear(nn.Linear):
    """``nn.Linear`` with the equalised learning rate: uses ``weight * gain * lr_multiplier /
    sqrt(in_features)`` and ``bias * lr_multiplier``; ``bias_init`` is the effective initial bias."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, gain: float = SQRT2,
                 lr_multiplier: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.lr_multiplier = float(lr_multiplier)
        self.bias_init = float(bias_init)
        self.weight_gain = gain * self.lr_multiplier / math.sqrt(in_features)
        self.bias_gain = self.lr_multiplier
        self.reset_parameters()

    def reset_parameters(self) -> None:
        lr_mul = self.__dict__.get("lr_multiplier", 1.0)  # nn.Linear.__init__ calls this first
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            if self.bias is not None:
                self.bias.fill_(self.__dict__.get("bias_init", 0.0) / lr_mul)

    def forward(self, x: Tensor) -> Tensor:
        bias = None if self.bias is None else self.bias * self.bias_gain
        return F.linear(x, self.weight * self.weight_gain, bias)


class EqualizedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with the equalised learning rate, "same" padding; ``down``: blur [1, 3, 3, 1]
    (padding (k + 1) / 2) then stride 2, as StyleGAN2's discriminator."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, *,
                 gain: float = SQRT2, down: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=2 if down else 1,
                         padding=0 if down else kernel_size // 2, bias=bias)
        self.down = bool(down)
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        if self.down:
            x = blur(x, padding=(self.kernel_size[0] + 1) // 2)
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, stride=self.stride,
                        padding=self.padding)


class ScaledLeakyReLU(nn.Module):
    """``gain * leaky_relu(x, 0.2)``: StyleGAN2 keeps weights at gain 1 and puts sqrt(2) here."""

    def __init__(self, gain: float = SQRT2) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x: Tensor) -> Tensor:
        out = F.leaky_relu(x, 0.2)
        return out * self.gain if self.gain != 1.0 else out


# --------------------------------------------------------------------------------------------
# Normalisation and statistics


def pixel_norm(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """ProGAN's pixel norm: ``x / sqrt(mean(x^2 over dim) + eps)`` (mean of squares 1, norm sqrt(C))."""
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + eps)


def minibatch_std(x: Tensor, group_size: int = 4, num_channels: int = 1) -> Tensor:
    """(N, C, H, W) -> (N, C + num_channels, H, W): per group of G = min(group_size, N) samples
    (sample n in group n mod N/G, NVIDIA's reshape) and channel group, the population std over the
    group averaged over features and pixels, appended as constant maps (ProGAN section 3)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g or c % num_channels:
        raise ValueError(f"minibatch stddev: batch {n} must be divisible by the group size {g} and "
                         f"channels {c} by num_channels {num_channels}")
    f = num_channels
    # statistics in at least float32 (NVIDIA's code does them in float32 under mixed precision)
    y = x.to(torch.promote_types(x.dtype, torch.float32)).reshape(g, n // g, f, c // f, h, w)
    # sample n = i * (N/G) + m is member i of group m
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()  # (N/G, F, c, H, W): population std over the group
    y = y.mean(dim=(2, 3, 4))  # (N/G, F)
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)  # row i*(N/G) + m gets group m
    return torch.cat([x, y], dim=1)


def adain(x: Tensor, y_s: Tensor, y_b: Tensor, eps: float = 1e-8) -> Tensor:
    """AdaIN (StyleGAN eq. 1): ``y_s (x - mu(x)) / sigma(x) + y_b`` per sample and channel of
    (N, C, H, W) x, y_s and y_b (N, C); sigma the population std, eps 1e-8 on the variance."""
    mu = x.mean(dim=(2, 3), keepdim=True)
    centred = x - mu
    sigma = (centred.square().mean(dim=(2, 3), keepdim=True) + eps).sqrt()
    return y_s[:, :, None, None] * centred / sigma + y_b[:, :, None, None]


class AdaIN(nn.Module):
    """AdaIN with its style from ``w``: ``y_s = 1 + A_s w``, ``y_b = A_b w`` (A: equalised, gain 1)."""

    def __init__(self, channels: int, w_dim: int) -> None:
        super().__init__()
        self.channels = channels
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        style = self.affine(w)
        return adain(x, 1.0 + style[:, : self.channels], style[:, self.channels:])


# --------------------------------------------------------------------------------------------
# Modulated convolution, noise, constant input


def modulated_conv2d(x: Tensor, weight: Tensor, styles: Tensor, demodulate: bool = True,
                     eps: float = 1e-8, fused: bool = False, up: int = 1) -> Tensor:
    """StyleGAN2 eqs. 1, 3: ``w' = s_i w``, ``w'' = w' / sqrt(sum_{i,k} w'^2 + eps)``; x (N, C_in, H, W),
    weight (C_out, C_in, k, k) already scaled, styles (N, C_in) -> (N, C_out, H, W), "same" padding.

    ``fused``: per-sample kernels (N, C_out, C_in, k, k), one grouped convolution. Else (the form
    NVIDIA trains with, ``fused_modconv=False``): ``conv(x * s, w) * d`` with one shared kernel and the
    demodulation ``d_j = 1 / sqrt(sum_i s_i^2 sum_k w_ijk^2 + eps)`` from an (N, C_in) x (C_in, C_out)
    product, so no per-sample kernel is ever built. Both compute the same values.

    ``up=2``: NVIDIA's upsampling convolution (conv2d_resample), output (N, C_out, 2H, 2W): a stride-2
    transposed convolution of the low-resolution input with ``w`` (as a convolution, not a
    correlation), then the [1, 3, 3, 1] filter x 4 with one pixel of zero padding (:func:`blur`)."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    styles = styles.to(weight.dtype)
    if not fused:
        x = x * styles.to(x.dtype).reshape(n, c_in, 1, 1)
        out = _conv(x, weight.to(x.dtype), up, groups=1)
        if not demodulate:
            return out
        dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).T + eps)  # (N, C_out)
        return out * dcoefs.to(out.dtype).reshape(n, c_out, 1, 1)
    wts = weight[None] * styles[:, None, :, None, None]  # (N, C_out, C_in, k, k)
    if demodulate:
        wts = wts * torch.rsqrt(wts.square().sum(dim=(2, 3, 4), keepdim=True) + eps)
    out = _conv(x.reshape(1, n * c_in, h, w), wts.reshape(n * c_out, c_in, kh, kw).to(x.dtype), up, groups=n)
    return out.reshape(n, c_out, out.shape[2], out.shape[3])


def _conv(x: Tensor, weight: Tensor, up: int, groups: int) -> Tensor:
    """``weight`` (groups * C_out, C_in, k, k) over x (1 or N, groups * C_in, H, W), "same" padding;
    ``up=2``: conv2d_resample's transposed path (stride-2 transposed convolution, then the filter)."""
    kh, kw = weight.shape[2:]
    if up == 1:
        return F.conv2d(x, weight, padding=(kh // 2, kw // 2), groups=groups)
    if up != 2 or kh != kw or kh % 2 == 0 or kh > 5:
        raise ValueError(f"modulated_conv2d: up=2 takes square odd kernels up to 5, got up={up}, "
                         f"{kh}x{kw}")
    c_out, c_in = weight.shape[0] // groups, weight.shape[1]
    # conv_transpose2d's weight is (groups * C_in, C_out, k, k); padding 0 gives 2H + k - 2 pixels,
    # the filter's padding (NVIDIA's px0 + pxt: 1 for k = 3) brings them to 2H
    wt = weight.reshape(groups, c_out, c_in, kh, kw).transpose(1, 2).reshape(groups * c_in, c_out, kh, kw)
    out = F.conv_transpose2d(x, wt, stride=2, groups=groups)
    return blur(out, padding=kh // 2 + 3 - kh, gain=4.0)


class ModulatedConv2d(nn.Module):
    """A modulated convolution (equalised kernel, gain 1) with its style affine ``s = A w`` (bias 1);
    no bias of its own. ``fused``: per-sample kernels; ``up=2``: NVIDIA's upsampling convolution
    (see :func:`modulated_conv2d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True, fused: bool = False, up: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.demodulate = demodulate
        self.fused = fused
        self.up = up

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), self.demodulate,
                                fused=self.fused, up=self.up)


class NoiseInjection(nn.Module):
    """``x + strength * noise``, noise (N or 1, 1, H, W) or None (a fresh N(0, 1) draw); the strength
    is per channel (StyleGAN) or one per layer (StyleGAN2's code), initially 0."""

    def __init__(self, channels: int, per_channel: bool = True) -> None:
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels if per_channel else ()))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        strength = self.strength.reshape(1, -1, 1, 1) if self.strength.dim() else self.strength
        return x + strength.to(x.dtype) * noise.to(x.dtype)


def layer_noise(noise_mode: str, noise_const: Tensor) -> Tensor | None:
    """The noise image of a synthesis layer: None (draw a fresh one), its fixed draw, or zeros."""
    if noise_mode == "random":
        return None
    if noise_mode == "const":
        return noise_const
    if noise_mode == "none":
        return torch.zeros_like(noise_const)
    raise ValueError(f"noise_mode must be random, const or none, got {noise_mode!r}")


class ConstantInput(nn.Module):
    """The learned (channels, size, size) constant, ones (StyleGAN) or randn (StyleGAN2's code)."""

    def __init__(self, channels: int, size: int, init: str = "ones") -> None:
        super().__init__()
        make = torch.ones if init == "ones" else torch.randn
        self.const = nn.Parameter(make(channels, size, size))

    def forward(self, batch_size: int) -> Tensor:
        return self.const[None].expand(batch_size, -1, -1, -1)


# --------------------------------------------------------------------------------------------
# Resampling


def upsample2x(x: Tensor, filtered: bool = False) -> Tensor:
    """Double the side: nearest neighbour (ProGAN), or bilinear = the [1, 3, 3, 1] filter (StyleGAN)."""
    if filtered:
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def upsample2x_fir(x: Tensor) -> Tensor:
    """Double the side as NVIDIA's ``upfirdn2d.upsample2d``: zeros between the pixels, the [1, 3, 3, 1]
    filter x 4, zero padding (2 before, 1 after). Inside the image it equals bilinear upsampling;
    the border pixels see zeros beyond the edge (bilinear repeats the edge)."""
    c = x.shape[1]
    return F.conv_transpose2d(x, _fir_kernel(c, x, 4.0), stride=2, padding=1, groups=c)


def _fir_kernel(c: int, like: Tensor, gain: float) -> Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], device=like.device, dtype=like.dtype) / 8.0
    return (taps[:, None] * taps[None, :] * gain).expand(c, 1, 4, 4)


def blur(x: Tensor, padding: int, stride: int = 1, gain: float = 1.0) -> Tensor:
    """Each channel filtered by the separable [1, 3, 3, 1] / 8 kernel x ``gain``, zero padding
    (differentiable twice)."""
    c = x.shape[1]
    return F.conv2d(x, _fir_kernel(c, x, gain), stride=stride, padding=padding, groups=c)


def downsample2x(x: Tensor, filtered: bool = False) -> Tensor:
    """Halve the side: 2x2 average (ProGAN), or [1, 3, 3, 1] blur and subsampling (StyleGAN2)."""
    return blur(x, padding=1, stride=2) if filtered else F.avg_pool2d(x, 2)


# --------------------------------------------------------------------------------------------
# Mapping network and style mixing


class MappingNetwork(nn.Module):
    """z -> ws (N, num_ws, w_dim): pixel norm, ``num_layers`` x (equalised linear, gain 1, then
    sqrt(2) leaky_relu(0.2)). Training forwards update ``w_avg <- lerp(mean_batch(w), w_avg, beta)``;
    ``psi`` truncates the first ``truncation_cutoff`` styles: ``w_avg + psi (w - w_avg)`` (StyleGAN 3.3).
    """

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, num_ws: int, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = z_dim, w_dim, num_ws
        self.w_avg_beta = w_avg_beta
        layers: list[nn.Module] = []
        for i in range(num_layers):
            fan_in = z_dim if i == 0 else w_dim
            layers += [EqualizedLinear(fan_in, w_dim, gain=1.0, lr_multiplier=lr_multiplier),
                       ScaledLeakyReLU()]
        self.net = nn.Sequential(*layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool | None = None) -> Tensor:
        w = self.net(pixel_norm(z))
        if self.training if update_w_avg is None else update_w_avg:
            with torch.no_grad():
                batch_mean = w.detach().to(self.w_avg.dtype).mean(dim=0)
                self.w_avg.copy_(batch_mean.lerp(self.w_avg, self.w_avg_beta))
        ws = w[:, None, :].repeat(1, self.num_ws, 1)
        if psi != 1.0:
            avg = self.w_avg.to(ws.dtype)
            if truncation_cutoff is None:
                ws = avg.lerp(ws, psi)
            else:
                ws = torch.cat([avg.lerp(ws[:, :truncation_cutoff], psi), ws[:, truncation_cutoff:]], dim=1)
        return ws


def mix_styles(ws: Tensor, ws_other: Tensor, num_active: int, prob: float) -> Tensor:
    """Style mixing (StyleGAN 3.1): with probability ``prob`` per batch, ``ws_other`` from a crossover
    uniform in [1, num_active) on (one per batch, drawn on the device), else ``ws``."""
    num_ws = ws.shape[1]
    if num_active < 2 or prob <= 0:
        return ws
    cutoff = torch.randint(1, num_active, (), device=ws.device)
    cutoff = torch.where(torch.rand((), device=ws.device) < prob, cutoff, torch.full_like(cutoff, num_ws))
    take_other = torch.arange(num_ws, device=ws.device) >= cutoff
    return torch.where(take_other[None, :, None], ws_other, ws)
