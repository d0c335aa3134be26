"""pix2pix: a U-Net generator and a PatchGAN discriminator for image-to-image translation.

Reference: Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional
Adversarial Networks" (CVPR; arXiv:1611.07004), section 3 and appendix 6.1.

The objective (paper, eqs. 1-4) is a conditional GAN plus an L1 term:

    G* = arg min_G max_D  L_cGAN(G, D) + lambda L_L1(G),          lambda = 100
    L_cGAN(G, D) = E_{x,y} log D(x, y) + E_{x,z} log(1 - D(x, G(x, z)))
    L_L1(G)      = E_{x,y,z} || y - G(x, z) ||_1

with the paper's x the input image and y the target. In this repository the names follow the
loop's contract instead: ``y`` is the condition (the INPUT image) and ``x`` the sample D judges
(the target or G's output), so G is called ``G(z, y)`` and D ``D(x, y)``. The L1 term is
``gan_cli.losses.L1Reconstruction``; the adversarial part is any loss of
``gan_cli.losses`` (the paper uses the non-saturating loss; LSGAN is its CycleGAN successor's).

Noise. The paper found that a noise vector z was ignored by the generator and gives G its
noise "only in the form of dropout, applied on several layers of our generator at both
training and test time". :class:`UNetGenerator` therefore accepts ``z`` (the loop's contract
draws one) and ignores it; dropout stays on in eval mode unless ``dropout_at_eval=False``.

Generator (paper 6.1.1). ``Ck`` = Convolution-Norm-ReLU with k filters, ``CDk`` the same with
50% dropout; 4x4 convolutions with stride 2 (down) or transposed stride 2 (up). At 256 px:

    encoder  C64 - C128 - C256 - C512 - C512 - C512 - C512 - C512      (256 -> 1 px)
    decoder  CD512 - CD1024 - CD1024 - C1024 - C1024 - C512 - C256 - C128 -> conv to C_out, tanh

The decoder counts include the skip connections: the output of encoder layer i is
concatenated to the input of decoder layer n - i. No norm on the first encoder layer; LeakyReLU
(0.2) in the encoder and ReLU in the decoder. As in the authors' code (and their erratum for
batch size 1) the innermost 1x1 layer has no norm either.

Depth follows the resolution: by default the side is halved while it is even, so a power of two
is taken down to 1x1 (256: 8 halvings, 64: 6, 32: 5) and 28 px down to 7x7 (28 -> 14 -> 7, 2
halvings); ``num_downs`` sets fewer halvings (the side must be divisible by ``2**num_downs``).
Channels at encoder level i are ``width * min(2**i, 8)``. Dropout is in the first
``dropout_blocks`` decoder blocks (3 in the paper; fewer when the net is shallower).
Normalisation: ``norm="batch"`` (the paper) or ``"instance"`` (the paper's batch size 1 with
test-batch statistics amounts to instance normalisation; affine-free, as in the authors' code).

Discriminator (paper 2.2 and 6.1.2): a PatchGAN on the channel concatenation of the input and
the judged image, ``cat([y, x])``. With ``n`` stride-2 layers:

    C64 (no norm) - C128 - ... (n stride-2 4x4 convs) - one stride-1 4x4 conv - 4x4 conv to 1 map

channels ``width * min(2**i, 8)``, LeakyReLU(0.2). Its receptive field is
``receptive_field(n)`` = 16, 34, 70, 142, 286 for n = 1..5 (70x70 at n = 3, the paper's
default); ``receptive_field=1`` is the paper's PixelGAN (1x1 convolutions). The configured size
picks ``n``; :func:`receptive_field` measures the built layer stack and the constructor checks
that it equals the configured size.

Scores of a PatchGAN. D returns one raw logit per patch, flattened to shape ``(N * P,)``
(sample-major: ``scores.view(N, P)`` gives each sample's P = h * w patches in row-major order).
The repository's losses take 1-D raw scores and average their per-score losses, so every patch
counts as one decision, which is exactly the paper's objective: "we run this discriminator
convolutionally across the image, averaging all responses", i.e. the mean of the per-patch
cross-entropies (the authors' code: ``BCEWithLogitsLoss`` against a target map). Averaging the
logits per sample first and returning (N,) would instead give the cross-entropy of the mean
logit, a different (smoother) loss: softplus is convex, so mean softplus(s_p) >= softplus(mean
s_p). Caveats for the loop: code that needs a per-sample score (e.g. the gradient penalty's
per-sample norm, which then penalises the gradient of the sum of a sample's patch logits) must
reshape with ``scores.view(N, -1)``; ``scores.shape[0]`` is not the batch size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.models.dcgan import init_dcgan_weights
from gan_cli.models.layers import num_classes_arg, positive_int

__all__ = [
    "UNetGenerator",
    "PatchDiscriminator",
    "receptive_field",
    "receptive_field_of_layers",
    "patch_layers_for",
    "unet_depth",
]

_NORMS = ("batch", "instance")
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
    """The number of stride-2 halvings of the U-Net for a square image side.

    Args:
        resolution: the image side R (px).
        num_downs: the halvings wanted; None = as many as the side allows, i.e. halve while the
            side is even (256 -> 8 halvings down to 1x1, 32 -> 5, 64 -> 6, 28 -> 2 down to 7x7).

    Returns:
        ``n >= 2`` with ``R`` divisible by ``2**n``.

    Raises:
        ValueError: fewer than 2 halvings are possible, or ``2**num_downs`` does not divide R.
    """
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
    """pix2pix's U-Net generator: encoder-decoder with skip connections, dropout as its noise.

    Args:
        z_dim: size of the latent the loop draws; accepted for the generator contract and
            IGNORED (pix2pix's only noise is dropout).
        data_shape: the output (target) shape (C_out, R, R).
        num_classes: must be 0: the condition is an image, not a label.
        bounded: end in tanh (the data lie in [-1, 1]); otherwise the output layer is linear.
        input_channels: channels of the input image y; None = C_out.
        width: channels of the first encoder layer (64 in the paper).
        num_downs: stride-2 halvings; None = as many as the side allows (see ``unet_depth``).
        norm: ``"batch"`` or ``"instance"``.
        dropout: dropout probability in the first decoder blocks (0.5 in the paper; 0 = none).
        dropout_blocks: how many decoder blocks, from the innermost, have dropout (3 in the
            paper; capped at the number of hidden decoder blocks).
        dropout_at_eval: keep dropout on in eval mode (the paper: at test time too).

    Attributes:
        num_classes: 0 (``y`` is an image).
        takes_condition: True: the training step passes the batch's condition ``y`` (the input
            image) to G and D although ``num_classes`` is 0 (gan_cli/training/step.py).
        z_dim: as given (unused by forward).
        depth: the number of halvings n.
        down: the n encoder blocks; block i outputs (N, width * min(2**i, 8), R / 2**(i+1), ...).
        up: the n decoder blocks; block 0 takes the bottleneck, block j > 0 the concatenation
            of block j-1's output and encoder block n-1-j's output; the last is the output layer.

    Raises:
        ValueError: bad shape, ``num_classes > 0``, unknown norm, or a bad depth or dropout.
    """

    takes_condition = True

    def __init__(
        self,
        *,
        z_dim: int,
        data_shape: Sequence[int],
        num_classes: int = 0,
        bounded: bool = True,
        input_channels: int | None = None,
        width: int = 64,
        num_downs: int | None = None,
        norm: str = "batch",
        dropout: float = 0.5,
        dropout_blocks: int = 3,
        dropout_at_eval: bool = True,
    ) -> None:
        super().__init__()
        who = "U-Net generator"
        c_out, res = _check_shape(data_shape, who)
        self.z_dim = positive_int(z_dim, "z_dim", who)
        if num_classes_arg(num_classes, who) > 0:
            raise ValueError(f"{who}: pix2pix is conditioned on an input image, not on labels; "
                             f"got num_classes={num_classes} (use a paired dataset)")
        c_in = c_out if input_channels is None else positive_int(input_channels, "input_channels", who)
        width = positive_int(width, "width", who)
        if norm not in _NORMS:
            raise ValueError(f"{who}: norm must be one of {_NORMS}, got {norm!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{who}: dropout must be in [0, 1), got {dropout!r}")
        if isinstance(dropout_blocks, bool) or not isinstance(dropout_blocks, int) or dropout_blocks < 0:
            raise ValueError(f"{who}: dropout_blocks must be an integer >= 0, got {dropout_blocks!r}")
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
        """Translate input images.

        Args:
            z: latent codes (N, z_dim) or None; ignored.
            y: the input images, (N, input_channels, R, R), in [-1, 1].

        Returns:
            The output images, (N, C_out, R, R).
        """
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


# --------------------------------------------------------------------------------------------
# receptive fields


def receptive_field_of_layers(layers: Iterable[tuple[int, int, int]]) -> int:
    """Receptive field (px) of a chain of convolutions, from the input side.

    Going forward, each layer with kernel k, stride s and dilation d widens the field by
    ``(k - 1) * d * jump`` input pixels, where ``jump`` is the product of the strides before it:

        rf_0 = 1, jump_0 = 1;  rf_l = rf_{l-1} + (k_l - 1) d_l jump_{l-1};  jump_l = jump_{l-1} s_l

    Args:
        layers: ``(kernel, stride, dilation)`` of each convolution, input first.

    Returns:
        The side of the square window of input pixels one output value depends on.
    """
    rf, jump = 1, 1
    for kernel, stride, dilation in layers:
        rf += (kernel - 1) * dilation * jump
        jump *= stride
    return rf


def receptive_field(net: nn.Module) -> int:
    """Receptive field (px) of a network that is a chain of its Conv2d layers (in module order).

    Pointwise layers (norms, activations) do not widen it. Only square kernels are supported.

    Args:
        net: e.g. ``PatchDiscriminator.net``.

    Returns:
        The receptive field along one side.
    """
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
    """The number of stride-2 layers whose PatchGAN has this receptive field.

    Args:
        receptive_field_px: 1 (PixelGAN), 16, 34, 70 (the paper's default), 142, 286, 574, 1150.

    Returns:
        ``n`` in 0..7.

    Raises:
        ValueError: no PatchGAN has that receptive field; the message lists those that do.
    """
    sizes = {receptive_field_of_layers(_patch_plan(n)): n for n in range(_MAX_PATCH_LAYERS + 1)}
    if receptive_field_px not in sizes:
        raise ValueError(f"PatchGAN: receptive_field must be one of {sorted(sizes)} px, "
                         f"got {receptive_field_px!r}")
    return sizes[receptive_field_px]


def _conv_out(side: int, kernel: int, stride: int, padding: int) -> int:
    return (side + 2 * padding - kernel) // stride + 1


class PatchDiscriminator(nn.Module):
    """pix2pix's PatchGAN: one logit per (receptive field)-sized patch of the (input, image) pair.

    Args:
        data_shape: the judged image's shape (C, R, R) (the target's).
        num_classes: must be 0: the condition is an image, not a label.
        output: must be ``"score"`` (a PatchGAN is no autoencoder: no BEGAN).
        input_channels: channels of the input image y; None = C.
        receptive_field: the patch side in px: 1, 16, 34, 70 (default, the paper's), 142, 286.
        width: channels of the first layer (64 in the paper); ``width * min(2**i, 8)`` after.
        norm: ``"batch"`` or ``"instance"``; never on the first layer.

    Attributes:
        num_classes: 0.
        takes_condition: True: D is always called with the input image, ``D(x, y)``.
        net: the layer chain from ``cat([y, x])`` to the (N, 1, h, w) logit map.
        receptive_field: the built stack's receptive field (px), measured by
            ``receptive_field(net)``; equal to the configured one.
        patch_shape: ``(h, w)``, the logit map's size at ``data_shape``.
        patches: ``h * w``, the scores per sample.

    Forward returns ``(N * patches,)`` raw logits, sample-major; see the module docstring for
    why the patches are not averaged per sample.

    Raises:
        ValueError: bad shape, labels, output or receptive field, or an image too small to hold
            one patch logit at this depth.
    """

    takes_condition = True

    def __init__(
        self,
        *,
        data_shape: Sequence[int],
        num_classes: int = 0,
        output: str = "score",
        input_channels: int | None = None,
        receptive_field: int = 70,
        width: int = 64,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        who = "PatchGAN discriminator"
        c, res = _check_shape(data_shape, who)
        if num_classes_arg(num_classes, who) > 0:
            raise ValueError(f"{who}: pix2pix is conditioned on an input image, not on labels; "
                             f"got num_classes={num_classes} (use a paired dataset)")
        if output != "score":
            raise ValueError(f"{who}: output must be 'score' (a PatchGAN scores patches; losses that "
                             f"need a reconstructing D, such as BEGAN, do not apply), got {output!r}")
        c_in = c if input_channels is None else positive_int(input_channels, "input_channels", who)
        width = positive_int(width, "width", who)
        if norm not in _NORMS:
            raise ValueError(f"{who}: norm must be one of {_NORMS}, got {norm!r}")
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
        """The logit map.

        Args:
            x: the judged images (targets or G's outputs), (N, C, R, R).
            y: the input images they are paired with, (N, input_channels, R, R).

        Returns:
            Raw logits (N, 1, h, w), one per patch.
        """
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
        """Raw patch logits, flattened.

        Args:
            x: the judged images, (N, C, R, R).
            y: the input images, (N, input_channels, R, R).

        Returns:
            (N * patches,) raw logits; ``.view(N, -1)`` gives each sample's patches.
        """
        return self.patch_logits(x, y).flatten()
