"""pix2pix (Isola et al. 2017, arXiv:1611.07004): a U-Net generator and a PatchGAN discriminator.

Names follow the loop's contract: ``y`` is the condition (the input image), ``x`` the image D
judges, so G is ``G(z, y)`` and D ``D(x, y)``; G ignores z (its noise is dropout, kept on at eval:
paper sec. 2.1). The L1 term is ``gan_cli.losses.L1Reconstruction``.

U-Net (paper 6.1.1): n stride-2 4x4 halvings (default: while the side is even; 256 px -> 1x1,
28 -> 7x7), channels ``width * min(2**i, 8)``, LeakyReLU(0.2) down, ReLU up, skips from level i to
n - i, no norm on the outermost and innermost layers (the authors' code), dropout in the first
``dropout_blocks`` decoder blocks. PatchGAN (6.1.2) on ``cat([y, x])``: n stride-2 4x4 convs, a
stride-1 one, a 4x4 conv to one map; receptive field 16, 34, 70 (the paper's), 142, 286 px for
n = 1..5, and 1 px (PixelGAN, 1x1 convs) for n = 0.

D returns one logit per patch, flattened sample-major to (N * P,): the losses average per-patch
losses, the paper's "averaging all responses"; ``scores.view(N, -1)`` gives a sample's patches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.models.dcgan import init_dcgan_weights

__all__ = ["UNetGenerator", "PatchDiscriminator", "receptive_field", "receptive_field_of_layers",
           "patch_layers_for", "unet_depth"]

_MAX_PATCH_LAYERS = 7  # 1150 px; more is far beyond any image side the repository trains on


def _norm_layer(norm: str, channels: int) -> nn.Module:
    """BatchNorm2d, or InstanceNorm2d without affine parameters (as in the authors' code)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


def _channels(width: int, level: int) -> int:
    """Channels at encoder level ``level`` (0 = first): ``width * min(2**level, 8)``."""
    return width * min(2**level, 8)


def _check_shape(data_shape: Sequence[int], who: str) -> tuple[int, int]:
    """``(C, R)`` of a square image shape (C, R, R)."""
    try:
        shape = tuple(data_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape):
        raise ValueError(f"{who}: data_shape must be (C, H, W) of positive integers, got {data_shape!r}")
    c, h, w = shape
    if h != w:
        raise ValueError(f"{who}: images must be square, got {h}x{w}")
    return c, h


def unet_depth(resolution: int, num_downs: int | None = None) -> int:
    """The U-Net's halvings n >= 2 of a side R with 2**n dividing R (null: as many as possible)."""
    possible, side = 0, resolution
    while side % 2 == 0:
        side //= 2
        possible += 1
    n = possible if num_downs is None else num_downs
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n > possible:
        raise ValueError(
            f"U-Net: {resolution} px allows 2..{possible} halvings (the side must stay an integer "
            f"down to the bottleneck and a skip needs 2), got num_downs={num_downs!r}"
        )
    return n


class _Dropout(nn.Module):
    """Dropout that can stay on in eval mode (pix2pix's noise at test time)."""

    def __init__(self, p: float, at_eval: bool) -> None:
        super().__init__()
        self.p = p
        self.at_eval = at_eval

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=self.training or self.at_eval)

    def extra_repr(self) -> str:
        return f"p={self.p}, at_eval={self.at_eval}"


class UNetGenerator(nn.Module):
    """Input images y (N, input_channels, R, R) -> images (N, C_out, R, R); z is ignored.

    ``takes_condition``: the step passes y although ``num_classes`` is 0. ``down[i]`` outputs
    (N, width * min(2**i, 8), R / 2**(i+1), ...); ``up[j]`` takes ``up[j-1]``'s output and the skip.
    """

    takes_condition = True

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0,
                 bounded: bool = True, input_channels: int | None = None, width: int = 64,
                 num_downs: int | None = None, norm: str = "batch", dropout: float = 0.5,
                 dropout_blocks: int = 3, dropout_at_eval: bool = True) -> None:
        super().__init__()
        who = "U-Net generator"
        c_out, res = _check_shape(data_shape, who)
        self.z_dim = z_dim
        if num_classes > 0:
            raise ValueError(f"{who}: pix2pix is conditioned on an input image, not on labels; "
                             f"got num_classes={num_classes} (use a paired dataset)")
        c_in = c_out if input_channels is None else input_channels
        n = unet_depth(res, num_downs)
        self.num_classes = 0
        self.data_shape = (c_out, res, res)
        self.input_channels = c_in
        self.bounded = bool(bounded)
        self.depth = n
        bias = norm == "instance"  # a bias before BatchNorm is redundant

        ch = [_channels(width, i) for i in range(n)]
        down: list[nn.Module] = [nn.Sequential(  # outermost: no norm
            nn.Conv2d(c_in, ch[0], 4, 2, 1, bias=True), nn.LeakyReLU(0.2))]
        for i in range(1, n - 1):
            down.append(nn.Sequential(nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=bias),
                                      _norm_layer(norm, ch[i]), nn.LeakyReLU(0.2)))
        down.append(nn.Sequential(  # innermost (the bottleneck): no norm
            nn.Conv2d(ch[n - 2], ch[n - 1], 4, 2, 1, bias=True), nn.ReLU()))
        self.down = nn.ModuleList(down)

        up: list[nn.Module] = []
        for j in range(n - 1):  # hidden decoder blocks, innermost first: to encoder level n-2-j
            level = n - 1 - j
            in_ch = ch[level] if j == 0 else 2 * ch[level]
            layers = [nn.ConvTranspose2d(in_ch, ch[level - 1], 4, 2, 1, bias=bias),
                      _norm_layer(norm, ch[level - 1])]
            if dropout > 0 and j < dropout_blocks:
                layers.append(_Dropout(float(dropout), bool(dropout_at_eval)))
            layers.append(nn.ReLU())
            up.append(nn.Sequential(*layers))
        out = [nn.ConvTranspose2d(2 * ch[0], c_out, 4, 2, 1, bias=True)]
        if self.bounded:
            out.append(nn.Tanh())
        up.append(nn.Sequential(*out))
        self.up = nn.ModuleList(up)
        self.apply(init_dcgan_weights)  # N(0, 0.02), as the paper

    def forward(self, z: Tensor | None, y: Tensor | None = None) -> Tensor:
        if y is None:
            raise ValueError("U-Net generator: called without the input image y (G(z, y))")
        if y.dim() != 4 or y.shape[1] != self.input_channels or tuple(y.shape[2:]) != self.data_shape[1:]:
            raise ValueError(f"U-Net generator: input image must be (N, {self.input_channels}, "
                             f"{self.data_shape[1]}, {self.data_shape[2]}), got {tuple(y.shape)}")
        skips: list[Tensor] = []
        h = y
        for block in self.down:
            h = block(h)
            skips.append(h)
        skips.pop()  # the bottleneck is h itself
        for j, block in enumerate(self.up):
            if j > 0:
                h = torch.cat([h, skips.pop()], dim=1)
            h = block(h)
        return h


def receptive_field_of_layers(layers: Iterable[tuple[int, int, int]]) -> int:
    """Receptive field (px) of a chain of ``(kernel, stride, dilation)`` convolutions, input first."""
    # rf_l = rf_{l-1} + (k_l - 1) d_l jump_{l-1};  jump_l = jump_{l-1} s_l  (rf_0 = jump_0 = 1)
    rf, jump = 1, 1
    for kernel, stride, dilation in layers:
        rf += (kernel - 1) * dilation * jump
        jump *= stride
    return rf


def receptive_field(net: nn.Module) -> int:
    """Receptive field (px) of a network that is a chain of its (square) Conv2d layers."""
    return receptive_field_of_layers(_conv_chain(net))


def _conv_chain(net: nn.Module) -> list[tuple[int, int, int]]:
    """``(kernel, stride, dilation)`` of every Conv2d of ``net``, in module order."""
    layers = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            k, s, d = m.kernel_size, m.stride, m.dilation
            if k[0] != k[1] or s[0] != s[1] or d[0] != d[1]:
                raise ValueError(f"receptive_field: only square kernels are supported, got {m}")
            layers.append((k[0], s[0], d[0]))
    return layers


def _patch_plan(n_layers: int) -> list[tuple[int, int, int]]:
    """(kernel, stride, dilation) of the PatchGAN with ``n_layers`` stride-2 convolutions."""
    if n_layers == 0:  # PixelGAN: 1x1 convolutions only
        return [(1, 1, 1)] * 3
    return [(4, 2, 1)] * n_layers + [(4, 1, 1), (4, 1, 1)]


def patch_layers_for(receptive_field_px: int) -> int:
    """The stride-2 layers n in 0..7 of the PatchGAN with this receptive field; ValueError if none."""
    sizes = {receptive_field_of_layers(_patch_plan(n)): n for n in range(_MAX_PATCH_LAYERS + 1)}
    if receptive_field_px not in sizes:
        raise ValueError(f"PatchGAN: receptive_field must be one of {sorted(sizes)} px, "
                         f"got {receptive_field_px!r}")
    return sizes[receptive_field_px]


def _conv_out(side: int, kernel: int, stride: int, padding: int) -> int:
    return (side + 2 * padding - kernel) // stride + 1


class PatchDiscriminator(nn.Module):
    """Images x (N, C, R, R) and inputs y (N, input_channels, R, R) -> (N * patches,) raw logits.

    ``receptive_field`` (px) picks the depth and is measured on the built ``net``; ``patch_shape``
    is the (h, w) logit map at ``data_shape``.
    """

    takes_condition = True

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 input_channels: int | None = None, receptive_field: int = 70, width: int = 64,
                 norm: str = "batch") -> None:
        super().__init__()
        who = "PatchGAN discriminator"
        c, res = _check_shape(data_shape, who)
        if num_classes > 0:
            raise ValueError(f"{who}: pix2pix is conditioned on an input image, not on labels; "
                             f"got num_classes={num_classes} (use a paired dataset)")
        if output != "score":
            raise ValueError(f"{who}: output must be 'score' (a PatchGAN scores patches; losses that "
                             f"need a reconstructing D, such as BEGAN, do not apply), got {output!r}")
        c_in = c if input_channels is None else input_channels
        n = patch_layers_for(receptive_field)
        bias = norm == "instance"
        self.num_classes = 0
        self.output = output
        self.data_shape = (c, res, res)
        self.input_channels = c_in
        self.n_layers = n

        k, pad = (1, 0) if n == 0 else (4, 1)
        chans = [_channels(width, i) for i in range(max(n, 1) + 1)]
        layers: list[nn.Module] = [nn.Conv2d(c_in + c, chans[0], k, 1 if n == 0 else 2, pad),
                                   nn.LeakyReLU(0.2)]
        for i in range(1, n):  # the other stride-2 layers
            layers += [nn.Conv2d(chans[i - 1], chans[i], k, 2, pad, bias=bias),
                       _norm_layer(norm, chans[i]), nn.LeakyReLU(0.2)]
        last = max(n, 1)
        layers += [nn.Conv2d(chans[last - 1], chans[last], k, 1, pad, bias=bias),
                   _norm_layer(norm, chans[last]), nn.LeakyReLU(0.2),
                   nn.Conv2d(chans[last], 1, k, 1, pad)]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

        self.receptive_field = receptive_field_of_layers(_conv_chain(self.net))
        if self.receptive_field != receptive_field:  # the plan and the built stack must agree
            raise RuntimeError(f"{who}: built a {self.receptive_field} px receptive field, "
                               f"not {receptive_field}")
        side = res
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                side = _conv_out(side, m.kernel_size[0], m.stride[0], m.padding[0])
        if side < 1:
            raise ValueError(f"{who}: a {receptive_field} px PatchGAN ({n} stride-2 layers) leaves no "
                             f"patch of a {res} px image; choose a smaller receptive_field")
        self.patch_shape = (side, side)
        self.patches = side * side

    def patch_logits(self, x: Tensor, y: Tensor | None) -> Tensor:
        """Raw logits (N, 1, h, w), one per patch."""
        if y is None:
            raise ValueError("PatchGAN discriminator: called without the input image y (D(x, y))")
        if y.dim() != 4 or y.shape[1] != self.input_channels or y.shape[2:] != x.shape[2:]:
            raise ValueError(f"PatchGAN discriminator: input image must be (N, {self.input_channels}, "
                             f"H, W) like x {tuple(x.shape)}, got {tuple(y.shape)}")
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        pair = torch.cat([y.to(x.dtype), x], dim=1)
        if channels_last:
            pair = pair.contiguous(memory_format=torch.channels_last)
        return self.net(pair)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.patch_logits(x, y).flatten()
