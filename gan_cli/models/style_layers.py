"""Layers of the NVIDIA GANs: ProGAN, StyleGAN and StyleGAN2 (Karras et al. 2018, 2019, 2020).

References:
    Karras, Aila, Laine, Lehtinen 2018, "Progressive Growing of GANs for Improved Quality,
    Stability, and Variation" (ProGAN): equalised learning rate, pixel norm, minibatch stddev.
    Karras, Laine, Aila 2019, "A Style-Based Generator Architecture for Generative Adversarial
    Networks" (StyleGAN): mapping network, AdaIN, noise inputs, constant input, style mixing.
    Karras, Laine, Aittala, Hellsten, Lehtinen, Aila 2020, "Analyzing and Improving the Image
    Quality of StyleGAN" (StyleGAN2): modulated and demodulated convolution.

The formulas, in the papers' notation:

* Equalised learning rate (ProGAN, section 4.1): a weight is stored as ``w ~ N(0, 1)`` and used
  as ``w_hat = w * c`` with He's constant ``c = gain / sqrt(fan_in)`` (``gain = sqrt(2)`` before
  a (leaky) ReLU, so ``c = sqrt(2 / fan_in)``). Adam's update of ``w`` is then scale-free, so every
  layer learns at the same speed. StyleGAN's mapping network adds a learning-rate multiplier
  ``lr_mul`` (0.01): ``w ~ N(0, 1 / lr_mul^2)``, ``c = gain * lr_mul / sqrt(fan_in)`` and the bias
  is used as ``b * lr_mul``: the effective weight still has std ``gain / sqrt(fan_in)`` at
  initialisation, and its updates are ``lr_mul`` times smaller.
* Pixel norm (ProGAN, section 4.2): ``b_xy = a_xy / sqrt(1/C sum_j (a_xy^j)^2 + eps)``,
  ``eps = 1e-8``: at every pixel, the mean of the squared features over the C channels becomes 1,
  so the feature vector's Euclidean norm becomes ``sqrt(C)`` (this module's convention, the
  paper's: the root mean square is 1, not the norm).
* Minibatch standard deviation (ProGAN, section 3; StyleGAN2's code with ``num_channels``): the
  batch of N is split into N/G groups of G = min(group_size, N) samples, sample ``n`` in group
  ``n mod (N/G)`` (the samples ``m, m + N/G, m + 2N/G, ...``: NVIDIA's reshape to (G, N/G, ...));
  the channels are split into ``num_channels`` groups; for each group of samples, the standard
  deviation over its G samples of every feature at every pixel, ``sqrt(mean((x - mean)^2) + 1e-8)``
  (the population std), is averaged over that channel group's features and all pixels; the
  result is one value per (sample group, channel group), appended to each sample of the group as
  ``num_channels`` constant feature maps.
* AdaIN (StyleGAN, eq. 1): ``AdaIN(x_i, y) = y_s,i (x_i - mu(x_i)) / sigma(x_i) + y_b,i`` with
  ``mu``, ``sigma`` the mean and (population) standard deviation of feature map ``x_i`` over its
  pixels, per sample, and no learned gain or bias in the normalisation itself; the style
  ``y = (y_s, y_b)`` comes from ``w`` by a learned affine map (``y_s = 1 + A_s w``, ``y_b = A_b w``).
* Modulated convolution (StyleGAN2, eqs. 1 and 3): ``w'_ijk = s_i w_ijk`` (s: the style of input
  channel i, from ``w`` by an affine map initialised to give s = 1), then demodulation
  ``w''_ijk = w'_ijk / sqrt(sum_{i,k} w'_ijk^2 + eps)``, so that outputs have unit standard
  deviation when the inputs are i.i.d. with unit standard deviation. Each sample has its own
  weights; it is computed as one grouped convolution with the batch folded into the channels.
* Noise inputs (StyleGAN, section 3.2): ``x + B * noise`` with ``noise ~ N(0, 1)`` one
  single-channel image per sample and layer, ``B`` a learned strength per channel (StyleGAN),
  or one per layer (StyleGAN2's code), initialised to 0.
* Learned constant input (StyleGAN, section 2): the synthesis network starts from a learned
  (C, 4, 4) tensor instead of from the latent code.

Resampling. ProGAN upsamples by nearest neighbour and downsamples by 2x2 average pooling.
StyleGAN and StyleGAN2 filter with the separable [1, 3, 3, 1] kernel: ``upsample2x`` with
``filtered=True`` is bilinear interpolation, which is exactly nearest-neighbour upsampling
followed by that filter's polyphase components (0.25, 0.75), with the border replicated instead
of zero-padded (StyleGAN's nearest upsampling + [1, 2, 1] blur is the same filter); ``downsample2x``
with ``filtered=True`` blurs with [1, 3, 3, 1] / 8 along each axis (zero padding 1) and keeps
every second pixel, and ``EqualizedConv2d(down=True)`` blurs, then convolves with stride 2
(NVIDIA's order for StyleGAN2's discriminator).

Every layer here works with ``channels_last`` tensors and under autocast, and nothing reads a
tensor's value on the host.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "SQRT2",
    "AdaIN",
    "ConstantInput",
    "EqualizedConv2d",
    "EqualizedLinear",
    "MappingNetwork",
    "MinibatchStd",
    "ModulatedConv2d",
    "NoiseInjection",
    "PixelNorm",
    "ScaledLeakyReLU",
    "adain",
    "blur",
    "channels_at",
    "default_start_resolution",
    "downsample2x",
    "layer_noise",
    "minibatch_std",
    "mix_styles",
    "modulated_conv2d",
    "pixel_norm",
    "progressive_plan",
    "upsample2x",
]

SQRT2 = math.sqrt(2.0)
_SUPPORTED = ("square images whose side is start_resolution * 2**k (k >= 0): with the default start, "
              "4, 8, 16, 32, 64, ... (start 4), 28 (start 7), 48 (start 6)")


# --------------------------------------------------------------------------------------------
# Shapes


def default_start_resolution(side: int) -> int:
    """The first block's side when none is given: halve ``side`` while it is even and stays >= 4.

    4 for 4 * 2**k (the papers'), 7 for 28 (7 -> 14 -> 28), 6 for 48, 5 for 20; an odd side is
    its own start (a network of one block).
    """
    s = side
    while s % 2 == 0 and s // 2 >= 4:
        s //= 2
    return s


def progressive_plan(data_shape: Sequence[int], start_resolution: int | None,
                     who: str) -> tuple[int, list[int]]:
    """Check an image shape and list the resolutions a progressive network goes through.

    Args:
        data_shape: one sample's shape (C, H, W).
        start_resolution: the side of the first block (4 in the papers; 7 gives 7 -> 14 -> 28);
            None = :func:`default_start_resolution` of the data's side.
        who: the model's name, for error messages.

    Returns:
        ``(C, [s, 2s, 4s, ..., R])``, the channel count and the sides from the start to the data's.

    Raises:
        ValueError: not (C, H, W), not square, or the side is not ``start_resolution * 2**k``.
    """
    try:
        shape = tuple(data_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3:
        raise ValueError(f"{who}: data_shape must be (C, H, W) for images, got {data_shape!r}; "
                         f"supported: {_SUPPORTED}")
    c, h, w = shape
    if isinstance(c, bool) or not isinstance(c, int) or c < 1:
        raise ValueError(f"{who}: channel count must be a positive integer, got {c!r} in {shape}")
    if start_resolution is None and isinstance(h, int) and not isinstance(h, bool) and h >= 2:
        start_resolution = default_start_resolution(h)
    s = start_resolution
    if isinstance(s, bool) or not isinstance(s, int) or s < 2:
        raise ValueError(f"{who}: start_resolution must be an integer >= 2, got {s!r}")
    ok = isinstance(h, int) and not isinstance(h, bool) and h == w and h >= s and h % s == 0
    ratio = h // s if ok else 0
    if not ok or ratio & (ratio - 1):
        raise ValueError(f"{who}: image resolution {h}x{w} is not supported with start_resolution={s}; "
                         f"supported: {_SUPPORTED}")
    sides = [s]
    while sides[-1] < h:
        sides.append(sides[-1] * 2)
    return c, sides


def channels_at(side: int, channel_base: int, channel_max: int) -> int:
    """Feature maps of a block at side ``side``: ``min(channel_base // side, channel_max)``, at least 1.

    The NVIDIA convention: ProGAN and StyleGAN use ``channel_base = 16384`` (512 channels up to
    32 px, 16 at 1024 px), StyleGAN2 ``32768`` (32 at 1024 px); ``channel_max = 512``.
    """
    return max(1, min(channel_base // side, channel_max))


# --------------------------------------------------------------------------------------------
# Equalised learning rate


class EqualizedLinear(nn.Linear):
    """A fully connected layer with the equalised learning rate (see the module docstring).

    A subclass of ``nn.Linear``, so ``apply_spectral_norm`` finds it; the stored weight is the
    N(0, 1 / lr_multiplier^2) parameter, the layer uses ``weight * weight_gain``.

    Args:
        in_features: fan-in.
        out_features: outputs.
        bias: learn a bias.
        gain: ``sqrt(2)`` (He, before a leaky ReLU) or 1 (linear outputs, style affines).
        lr_multiplier: StyleGAN's mapping-network multiplier (0.01 there, 1 elsewhere).
        bias_init: the effective bias at initialisation (StyleGAN2's style affines start at 1).

    Attributes:
        weight_gain: ``gain * lr_multiplier / sqrt(in_features)``.
        bias_gain: ``lr_multiplier``.
    """

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
    """A convolution with the equalised learning rate: "same" padding (k // 2), or halving.

    Args:
        in_channels, out_channels: channels.
        kernel_size: odd side k of the square kernel; fan-in is ``in_channels * k * k``.
        bias: learn a bias.
        gain: ``sqrt(2)`` (He) or 1 (toRGB, StyleGAN2's convention with the gain after the
            activation).
        down: halve the side as StyleGAN2's discriminator does: blur with [1, 3, 3, 1] (zero
            padding (k + 1) / 2), then convolve with stride 2 and no padding.
    """

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
    """ProGAN's pixelwise feature normalisation: ``x / sqrt(mean(x^2 over dim) + eps)``.

    Args:
        x: features (N, C, H, W) or latents (N, C).
        dim: the channel dimension.
        eps: 1e-8 as in the paper.

    Returns:
        ``x`` rescaled so that the mean of squares over ``dim`` is 1 (norm ``sqrt(C)``).
    """
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """:func:`pixel_norm` as a module."""

    def forward(self, x: Tensor) -> Tensor:
        return pixel_norm(x)


def minibatch_std(x: Tensor, group_size: int = 4, num_channels: int = 1) -> Tensor:
    """Append the minibatch standard deviation as ``num_channels`` feature maps (see module docstring).

    Args:
        x: features (N, C, H, W); C must be divisible by ``num_channels``.
        group_size: G; the group is ``min(G, N)`` samples, and N must be divisible by it.
        num_channels: channel groups, each giving one statistic (1 in ProGAN and StyleGAN2).

    Returns:
        (N, C + num_channels, H, W).

    Raises:
        ValueError: N not divisible by the group, or C not divisible by ``num_channels``.
    """
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


class MinibatchStd(nn.Module):
    """:func:`minibatch_std` as a module."""

    def __init__(self, group_size: int = 4, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: Tensor) -> Tensor:
        return minibatch_std(x, self.group_size, self.num_channels)


def adain(x: Tensor, y_s: Tensor, y_b: Tensor, eps: float = 1e-8) -> Tensor:
    """Adaptive instance normalisation, ``y_s (x - mu(x)) / sigma(x) + y_b`` per sample and channel.

    Args:
        x: features (N, C, H, W).
        y_s: scales (N, C).
        y_b: biases (N, C).
        eps: added to the variance (1e-8, as StyleGAN's code).

    Returns:
        (N, C, H, W).
    """
    mu = x.mean(dim=(2, 3), keepdim=True)
    centred = x - mu
    sigma = (centred.square().mean(dim=(2, 3), keepdim=True) + eps).sqrt()
    return y_s[:, :, None, None] * centred / sigma + y_b[:, :, None, None]


class AdaIN(nn.Module):
    """AdaIN with its style from ``w``: ``y_s = 1 + A_s w``, ``y_b = A_b w`` (A: equalised, gain 1).

    Args:
        channels: C, the feature maps styled.
        w_dim: size of the intermediate latent w.
    """

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
                     eps: float = 1e-8) -> Tensor:
    """StyleGAN2's modulated (and demodulated) convolution, stride 1, "same" padding.

    Args:
        x: inputs (N, C_in, H, W).
        weight: the shared kernel (C_out, C_in, k, k), already scaled (equalised learning rate).
        styles: the per-sample input-channel scales s, (N, C_in).
        demodulate: divide each sample's output channel j by ``sqrt(sum_{i,k} w'_ijk^2 + eps)``.
        eps: 1e-8.

    Returns:
        (N, C_out, H, W).
    """
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    wts = weight[None] * styles[:, None, :, None, None].to(weight.dtype)  # (N, C_out, C_in, k, k)
    if demodulate:
        wts = wts * torch.rsqrt(wts.square().sum(dim=(2, 3, 4), keepdim=True) + eps)
    out = F.conv2d(x.reshape(1, n * c_in, h, w), wts.reshape(n * c_out, c_in, kh, kw).to(x.dtype),
                   padding=(kh // 2, kw // 2), groups=n)
    return out.reshape(n, c_out, h, w)


class ModulatedConv2d(nn.Module):
    """A modulated convolution with its style affine (StyleGAN2).

    The kernel is stored N(0, 1) and used times ``1 / sqrt(C_in k^2)`` (equalised learning rate,
    gain 1); the style affine ``s = A w`` starts with bias 1, so ``s`` is about 1 at
    initialisation. No bias here: the synthesis layer adds it after the noise.

    Args:
        in_channels, out_channels: channels.
        kernel_size: odd k (3 for convolutions, 1 for toRGB).
        w_dim: size of w.
        demodulate: True for the convolutions, False for toRGB.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, w_dim: int,
                 demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.demodulate = demodulate

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), self.demodulate)


class NoiseInjection(nn.Module):
    """``x + strength * noise``, noise one N(0, 1) image per sample shared by all channels.

    Args:
        channels: C (the strength has shape (C,) when ``per_channel``).
        per_channel: a learned strength per channel (StyleGAN) or one per layer (StyleGAN2's code).

    Forward: ``(x, noise)`` with ``noise`` (N or 1, 1, H, W), or None to draw a fresh one.
    """

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
    """The learned constant the synthesis network starts from, repeated over the batch.

    Args:
        channels, size: the constant is (channels, size, size).
        init: ``"ones"`` (StyleGAN) or ``"randn"`` (StyleGAN2's code).
    """

    def __init__(self, channels: int, size: int, init: str = "ones") -> None:
        super().__init__()
        if init not in ("ones", "randn"):
            raise ValueError(f"constant input init must be 'ones' or 'randn', got {init!r}")
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


def blur(x: Tensor, padding: int, stride: int = 1) -> Tensor:
    """Filter every channel with the separable [1, 3, 3, 1] / 8 kernel (gain 1), zero padding.

    A depthwise convolution with a fixed kernel, so gradient penalties can differentiate twice.
    """
    c = x.shape[1]
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], device=x.device, dtype=x.dtype) / 8.0
    kernel = (taps[:, None] * taps[None, :]).expand(c, 1, 4, 4)
    return F.conv2d(x, kernel, stride=stride, padding=padding, groups=c)


def downsample2x(x: Tensor, filtered: bool = False) -> Tensor:
    """Halve the side: 2x2 average (ProGAN), or [1, 3, 3, 1] blur and subsampling (StyleGAN2)."""
    return blur(x, padding=1, stride=2) if filtered else F.avg_pool2d(x, 2)


# --------------------------------------------------------------------------------------------
# Mapping network and style mixing


class MappingNetwork(nn.Module):
    """z -> w: pixel norm on z, then ``num_layers`` equalised fully connected layers (StyleGAN).

    Layers use gain 1 with ``sqrt(2) * leaky_relu(0.2)`` after them (StyleGAN2's convention;
    StyleGAN's puts the sqrt(2) into the weight, which differs only in the biases' effective
    learning rate) and the learning-rate multiplier (0.01 in both papers).

    Also keeps ``w_avg``, the moving average of w over training (updated on every training-mode
    forward: ``w_avg <- beta w_avg + (1 - beta) mean_batch(w)``), for the truncation trick in W
    (StyleGAN, section 3.3 / appendix B): ``w' = w_avg + psi (w - w_avg)``.

    Args:
        z_dim, w_dim: latent sizes.
        num_layers: fully connected layers (8 in the papers, 2 in StyleGAN2's CIFAR-10 setting).
        num_ws: the synthesis network's style inputs; forward returns w repeated this many times.
        lr_multiplier: 0.01.
        w_avg_beta: the moving average's decay per training forward (0.995).

    Forward: ``(z, psi=1, truncation_cutoff=None)`` -> ws (N, num_ws, w_dim); psi applies to
    the first ``truncation_cutoff`` styles (None: all).
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
    """Style mixing regularisation (StyleGAN, section 3.1): with probability ``prob`` per batch,
    the styles from a random crossover layer on come from the other latent.

    The crossover is uniform in ``[1, num_active)`` (the layers the network uses in its current
    phase), one per batch as in NVIDIA's code. Chosen on the device, so no host synchronisation.

    Args:
        ws: (N, num_ws, w_dim) from the first latents.
        ws_other: the same from the second latents.
        num_active: styles in use (all of them unless the network is growing).
        prob: mixing probability (0.9).

    Returns:
        (N, num_ws, w_dim): ``ws`` before the crossover, ``ws_other`` from it on.
    """
    num_ws = ws.shape[1]
    if num_active < 2 or prob <= 0:
        return ws
    cutoff = torch.randint(1, num_active, (), device=ws.device)
    cutoff = torch.where(torch.rand((), device=ws.device) < prob, cutoff, torch.full_like(cutoff, num_ws))
    take_other = torch.arange(num_ws, device=ws.device) >= cutoff
    return torch.where(take_other[None, :, None], ws_other, ws)
