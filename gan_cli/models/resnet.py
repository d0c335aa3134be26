"""The ResNet GANs in one implementation: ``resnet`` (Gulrajani et al. 2017), ``sngan`` (Miyato et
al. 2018; conditional BN in G and a projection D with labels, Miyato & Koyama 2018), ``sagan``
(self-attention, Zhang et al. 2019) and a small ``biggan`` (shared class embedding and hierarchical z
into every block's conditional BN, Brock et al. 2019). Spectral norm is applied by the builder.

Square images of side R = s * 2**k (``dcgan.start_size``). G: Linear(z) -> (C_0, s, s), k up-blocks
[BN, ReLU, up x2, conv3x3, BN, ReLU, conv3x3] + [up x2, conv1x1], then BN, ReLU, conv3x3 (tanh when
bounded). D: SNGAN's optimised first block, pre-activation down-blocks halving the side to <= 8,
``extra_blocks`` at that side, ReLU, sum over positions, Linear(C, 1) [+ <embed(y), h>]. Channels:
``width * channel_multipliers[i]`` (null: ``width`` everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.models.dcgan import _image_plan
from gan_cli.models.layers import ConditionalBatchNorm2d, SelfAttention2d, init_weights

__all__ = ["Generator", "Discriminator"]


def _multipliers(value: Sequence[int] | None, count: int, who: str, what: str) -> list[int]:
    if value is None:
        return [1] * count
    mults = list(value)
    if len(mults) != count:
        raise ValueError(f"{who}: channel_multipliers must be {count} positive integers for this "
                         f"resolution ({what}), got {mults}; or null for the same width everywhere")
    return mults


def _attention_side(value: int | None, enabled: bool, sides: list[int], res: int,
                    who: str) -> int | None:
    """The feature-map side, one of ``sides``, that gets self-attention (null: half the image side)."""
    if not enabled:
        return None
    side = value
    if side is None:
        below = [x for x in sides if x < res]
        side = res // 2 if res // 2 in sides else max(below or sides)
    if side not in sides:
        raise ValueError(f"{who}: attention_resolution={value} is not a feature-map side of this "
                         f"model at this image size; choose one of {sorted(set(sides))}")
    return side


class GBlock(nn.Module):
    """Pre-activation up-sampling residual block of the generator."""

    def __init__(self, in_ch: int, out_ch: int, num_classes: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(in_ch, num_classes, cond_dim)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn2 = ConditionalBatchNorm2d(out_ch, num_classes, cond_dim)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor, c: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, c)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), c)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """Residual block of the discriminator; ``first`` is SNGAN's optimised block (no pre-activation)."""

    def __init__(self, in_ch: int, out_ch: int, downsample: bool, first: bool = False) -> None:
        super().__init__()
        self.first, self.downsample = first, downsample
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if (in_ch != out_ch or downsample) else None

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:  # pool, then project: cheaper on the 3-channel input
            s = self.shortcut(F.avg_pool2d(s, 2) if self.downsample else s)
        elif self.shortcut is not None:
            s = self.shortcut(s)
            s = F.avg_pool2d(s, 2) if self.downsample else s
        return h + s


class Generator(nn.Module):
    """z (N, z_dim) [+ labels y (N,)] -> images (N, C, H, W).

    ``channel_multipliers``: k + 1, from the s x s stage to R x R; ``conditional`` null: when
    labelled; ``shared_embedding_dim`` > 0: BigGAN's shared embedding (with z's chunk when
    ``hierarchical_z``) drives each block's conditional BN linearly, 0: a gain and bias per class;
    ``attention_resolution``: the side after which self-attention sits (null: R / 2).
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0,
                 bounded: bool = True, width: int = 256, channel_multipliers: Sequence[int] | None = None,
                 conditional: bool | None = None, shared_embedding_dim: int = 0,
                 hierarchical_z: bool = False, attention: bool = False,
                 attention_resolution: int | None = None, init: str = "xavier") -> None:
        super().__init__()
        who = "ResNet generator"
        c, res, s, k = _image_plan(data_shape, who)
        self.z_dim = z_dim
        if conditional and num_classes == 0:
            raise ValueError(f"{who}: conditional=true needs a labelled dataset (num_classes > 0); "
                             "use conditional=false or null (null: when the data have labels)")
        self.conditional = bool(num_classes) if conditional is None else bool(conditional)
        self.num_classes = num_classes if self.conditional else 0
        self.data_shape, self.bounded = tuple(data_shape), bool(bounded)
        self.hierarchical_z = bool(hierarchical_z)
        if self.hierarchical_z and self.z_dim < k + 1:
            raise ValueError(f"{who}: hierarchical_z splits z into {k + 1} chunks at this "
                             f"resolution; z_dim={z_dim} is too small")
        chunks = torch.tensor_split(torch.arange(self.z_dim), k + 1) if self.hierarchical_z else None
        self.z_chunks = [len(ch) for ch in chunks] if chunks is not None else [self.z_dim]

        shared = int(shared_embedding_dim or 0) if self.conditional else 0
        self.shared = nn.Embedding(self.num_classes, shared) if shared else None
        if self.shared is not None:
            self.shared.spectral_norm_exempt = True  # BigGAN does not normalise it
        if self.hierarchical_z and self.conditional and not shared:
            raise ValueError(f"{who}: hierarchical_z with a conditional generator needs "
                             "shared_embedding_dim > 0 (the labels reach the blocks through it)")
        # Conditional BN of each block: linear in [shared embedding, z chunk] (BigGAN), a table
        # per class (SNGAN, SAGAN), or plain BN (unconditional).
        cond_dims = ([shared + n for n in self.z_chunks[1:]] if self.hierarchical_z
                     else [shared] * k)
        block_classes = self.num_classes if (self.conditional and not shared) else 0

        mults = _multipliers(channel_multipliers, k + 1, who, f"{res} px: k + 1 = {k + 1} stages "
                             f"from {s}x{s} to {res}x{res}")
        chans = [width * m for m in mults]
        sides = [s * 2 ** (i + 1) for i in range(k)]
        self.attention_side = _attention_side(attention_resolution, attention, sides, res, who)
        self.start_side = s
        self.input = nn.Linear(self.z_chunks[0], chans[0] * s * s)
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        for i in range(k):
            self.blocks.append(GBlock(chans[i], chans[i + 1], block_classes, cond_dims[i]))
            if sides[i] == self.attention_side:
                self.attn[str(i)] = SelfAttention2d(chans[i + 1])
        self.out_bn = nn.BatchNorm2d(chans[-1])
        self.out_conv = nn.Conv2d(chans[-1], c, 3, padding=1)
        init_weights(self, init)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Samples (N, C, H, W) from latents z (N, z_dim) and labels y (N,) when conditional."""
        if self.conditional and y is None:
            raise ValueError("ResNet generator: conditional model called without labels y")
        zs = torch.split(z, self.z_chunks, dim=1)
        h = self.input(zs[0]).reshape(z.shape[0], -1, self.start_side, self.start_side)
        emb = self.shared(y).to(z.dtype) if self.shared is not None else None
        for i, block in enumerate(self.blocks):
            if self.hierarchical_z:
                c = zs[i + 1] if emb is None else torch.cat([emb, zs[i + 1]], dim=1)
            elif emb is not None:
                c = emb
            else:
                c = y if self.conditional else None
            h = block(h, c)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        h = self.out_conv(F.relu(self.out_bn(h)))
        return torch.tanh(h) if self.bounded else h


class Discriminator(nn.Module):
    """Images (N, C, H, W) [+ labels] -> raw scores (N,), with a projection head (``conditioning``
    auto: when labelled) and optional self-attention; ``channel_multipliers``: one per block.
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 width: int = 128, channel_multipliers: Sequence[int] | None = None,
                 extra_blocks: int = 2, conditioning: str = "auto", attention: bool = False,
                 attention_resolution: int | None = None, init: str = "xavier") -> None:
        super().__init__()
        who = "ResNet discriminator"
        c, res, _, _ = _image_plan(data_shape, who)
        if output != "score":
            raise ValueError(f"{who}: output={output!r} is not supported: the ResNet discriminator "
                             "returns scores; BEGAN's autoencoder discriminator is in model=dcgan "
                             "and model=mlp")
        if conditioning == "projection" and num_classes == 0:
            raise ValueError(f"{who}: conditioning=projection needs a labelled dataset "
                             "(num_classes > 0); use none or auto")
        self.conditioning = ("projection" if num_classes else "none") if conditioning == "auto" \
            else conditioning
        self.num_classes = num_classes if self.conditioning == "projection" else 0
        self.data_shape = tuple(data_shape)

        sides = [res]  # halve while even and above 8: 32 -> 16 -> 8, 28 -> 14 -> 7, 64 -> ... -> 8
        while sides[-1] > 8 and sides[-1] % 2 == 0:
            sides.append(sides[-1] // 2)
        n_down = len(sides) - 1
        n_blocks = n_down + extra_blocks
        mults = _multipliers(channel_multipliers, n_blocks, who,
                             f"{res} px: {n_down} down-sampling blocks to {sides[-1]}x{sides[-1]} "
                             f"+ extra_blocks={extra_blocks}")
        chans = [width * m for m in mults]
        out_sides = sides[1:] + [sides[-1]] * extra_blocks
        self.attention_side = _attention_side(attention_resolution, attention, out_sides, res, who)
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleDict()
        in_ch = c
        for i in range(n_blocks):
            self.blocks.append(DBlock(in_ch, chans[i], downsample=i < n_down, first=i == 0))
            in_ch = chans[i]
            # attention after the first block of that side (SAGAN: on mid-level features)
            if out_sides[i] == self.attention_side and not self.attn:
                self.attn[str(i)] = SelfAttention2d(chans[i])
        self.features_dim = in_ch
        self.head = nn.Linear(in_ch, 1)
        if self.conditioning == "projection":
            self.embed = nn.Embedding(self.num_classes, in_ch)
        init_weights(self, init)

    def features(self, x: Tensor) -> Tensor:
        """h: the sum over positions of the last block's ReLU output, shape (N, F)."""
        h = x
        for i, block in enumerate(self.blocks):
            h = block(h)
            if str(i) in self.attn:
                h = self.attn[str(i)](h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Raw scores (N,): ``head(h)``, plus ``<embed(y), h>`` with projection."""
        if self.conditioning == "projection" and y is None:
            raise ValueError("ResNet discriminator: projection discriminator called without labels y")
        h = self.features(x)
        score = self.head(h).flatten()
        if self.conditioning == "projection":
            score = score + (self.embed(y) * h).sum(dim=1)
        return score
