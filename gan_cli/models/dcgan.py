"""DCGAN (Radford et al. 2016) and conditional DCGAN for square images of an even side >= 8.

A side R is halved until it is odd or at most 7: R = s * 2**k (16 = 4 * 2**2, 28 = 7 * 2**2,
64 = 4 * 2**4), k >= 1. G: ConvTranspose2d(kernel s) from the 1x1 code to s x s, then k - 1
ConvTranspose2d(4, 2, 1) + BN + ReLU halving the channels to ``width``, then ConvTranspose2d(4, 2,
1) to C (tanh when bounded). D: k Conv2d(4, 2, 1) doubling the channels from ``width``,
LeakyReLU(0.2), a norm on all but the first, then Conv2d(kernel s) to one score. Weights N(0, 0.02).
Labels (int64 (N,)): G concatenates an embedding to z (Mirza & Osindero 2014); D takes one-hot label
maps as input channels (``concat``) or adds <embed(y), sum_hw h> to the score (``projection``,
Miyato & Koyama 2018).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Generator", "Discriminator", "init_dcgan_weights", "start_size"]

# D's normalisation: BatchNorm couples a batch's samples; layer norm (GroupNorm with one group) does not
_NORMS = {"batch": nn.BatchNorm2d, "layer": lambda c: nn.GroupNorm(1, c), "none": lambda c: nn.Identity()}
_SUPPORTED = (
    "square images (H == W) whose side is an even integer >= 8, e.g. 8, 16, 28, 32, 48, 64 "
    "(the side is halved until it is odd or <= 7, and at least one halving is needed)"
)


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. 2016's init for ``model.apply``: conv and linear weights N(0, 0.02), BatchNorm
    weights N(1, 0.02), biases 0; other modules (embeddings included) are left alone."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        if module.weight is not None:
            nn.init.normal_(module.weight, mean=1.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def start_size(resolution: int) -> tuple[int, int]:
    """``(s, k)`` with ``resolution == s * 2**k``, s odd or <= 7, k >= 1; ValueError otherwise."""
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise ValueError(f"image side {resolution!r} is not an integer; supported: {_SUPPORTED}")
    s, k = resolution, 0
    while s > 7 and s % 2 == 0:
        s //= 2
        k += 1
    if resolution < 8 or k == 0:
        raise ValueError(f"image side {resolution} is not supported; supported: {_SUPPORTED}")
    return s, k


def _image_plan(data_shape: Sequence[int], who: str) -> tuple[int, int, int, int]:
    """Check an image shape (C, H, W) and return ``(C, R, s, k)``."""
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
    if h != w:
        raise ValueError(f"{who}: image resolution {h}x{w} is not square; supported: {_SUPPORTED}")
    try:
        s, k = start_size(h)
    except ValueError as err:
        raise ValueError(f"{who}: image resolution {h}x{w}: {err}") from None
    return c, h, s, k


def _upsampling_trunk(in_channels: int, out_channels: int, width: int, s: int, k: int) -> list[nn.Module]:
    """(N, in_channels, 1, 1) -> (N, out_channels, s * 2**k, s * 2**k); BN + ReLU on hidden layers."""
    ch = width * 2 ** (k - 1)
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(in_channels, ch, kernel_size=s, stride=1, padding=0, bias=False),
        nn.BatchNorm2d(ch),
        nn.ReLU(inplace=True),
    ]
    for _ in range(k - 1):
        layers += [
            nn.ConvTranspose2d(ch, ch // 2, kernel_size=4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(ch // 2),
            nn.ReLU(inplace=True),
        ]
        ch //= 2
    layers.append(nn.ConvTranspose2d(ch, out_channels, kernel_size=4, stride=2, padding=1))
    return layers


class Generator(nn.Module):
    """z (N, z_dim) [+ label y (N,)] -> images (N, C, H, W); tanh when ``bounded``.

    ``width``: channels of the last hidden layer (the first has ``width * 2**(k-1)``);
    ``embed_dim``: the label embedding's size when ``conditional`` (null: z_dim).
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0,
                 bounded: bool = True, width: int = 64, conditional: bool = False,
                 embed_dim: int | None = None) -> None:
        super().__init__()
        who = "DCGAN generator"
        c, _, s, k = _image_plan(data_shape, who)
        self.z_dim = z_dim
        self.data_shape = tuple(data_shape)
        self.bounded = bool(bounded)
        self.conditional = bool(conditional)
        if self.conditional and num_classes == 0:
            raise ValueError(
                f"{who}: conditional=True needs a labelled dataset (num_classes > 0), got "
                "num_classes=0; use conditional=False for unlabelled data"
            )
        self.num_classes = num_classes if self.conditional else 0
        in_channels = self.z_dim
        if self.conditional:
            self.embed_dim = self.z_dim if embed_dim is None else embed_dim
            self.embed = nn.Embedding(self.num_classes, self.embed_dim)  # N(0, 1): the scale of z
            in_channels += self.embed_dim
        layers = _upsampling_trunk(in_channels, c, width, s, k)
        if self.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        if self.conditional:
            if y is None:
                raise ValueError("DCGAN generator: conditional model called without labels y")
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """Images (N, C, H, W) [+ labels] -> what the loss needs (``output``): raw scores (N,);
    BEGAN's linear reconstruction (N, C, H, W) through a ``bottleneck_dim`` code (null: the last
    width); or MMD-GAN's features: the last map flattened (N, F * s * s), or with ``feature_dim`` a
    Conv2d(F, feature_dim, kernel s) of it, (N, feature_dim).

    ``norm``: after every strided convolution but the first: batch (DCGAN), layer (per sample, as
    Gulrajani et al. 2017's critic) or none; the builder resolves the config's ``auto``.
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 width: int = 64, conditioning: str = "none", bottleneck_dim: int | None = None,
                 feature_dim: int | None = None, norm: str = "batch") -> None:
        super().__init__()
        who = "DCGAN discriminator"
        c, _, s, k = _image_plan(data_shape, who)
        outputs = ("score", "reconstruction", "features")
        if output not in outputs:
            raise ValueError(f"{who}: output must be one of {outputs}, got {output!r}")
        if conditioning != "none" and num_classes == 0:
            raise ValueError(
                f"{who}: conditioning={conditioning!r} needs a labelled dataset (num_classes > 0), "
                "got num_classes=0; use conditioning='none' for unlabelled data"
            )
        if conditioning == "projection" and output != "score":
            raise ValueError(
                f"{who}: conditioning='projection' adds to a score and does not apply to "
                f"output={output!r}; use 'concat' or 'none'"
            )
        if feature_dim is not None and output != "features":
            raise ValueError(f"{who}: feature_dim applies to output='features' only, got output={output!r}")
        self.data_shape = tuple(data_shape)
        self.output = output
        self.conditioning = conditioning
        self.num_classes = num_classes if conditioning != "none" else 0

        in_channels = c + (self.num_classes if conditioning == "concat" else 0)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        ch = width
        for _ in range(k - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, kernel_size=4, stride=2, padding=1, bias=norm == "none"),
                _NORMS[norm](ch * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch *= 2
        self.trunk = nn.Sequential(*layers)
        self.features_dim = ch

        if output == "score":
            self.head = nn.Conv2d(ch, 1, kernel_size=s, stride=1, padding=0)
        elif output == "features":
            self.head = (None if feature_dim is None
                         else nn.Conv2d(ch, feature_dim, kernel_size=s, stride=1, padding=0))
        else:
            code = ch if bottleneck_dim is None else bottleneck_dim
            self.bottleneck = nn.Conv2d(ch, code, kernel_size=s, stride=1, padding=0)
            self.decoder = nn.Sequential(*_upsampling_trunk(code, c, width, s, k))
        if conditioning == "projection":
            self.embed = nn.Embedding(self.num_classes, ch)
        self.apply(init_dcgan_weights)
        if conditioning == "projection":
            # Small, like the other weights: it multiplies features summed over s x s positions.
            nn.init.normal_(self.embed.weight, mean=0.0, std=0.02)

    def _label_maps(self, x: Tensor, y: Tensor) -> Tensor:
        """One-hot label maps (N, num_classes, H, W) in x's dtype; no host synchronisation."""
        classes = torch.arange(self.num_classes, device=y.device)
        onehot = (y.reshape(-1, 1) == classes).to(x.dtype)
        return onehot[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The trunk's last feature map h, (N, F, s, s)."""
        if self.conditioning == "concat":
            if y is None:
                raise ValueError("DCGAN discriminator: conditioned model called without labels y")
            channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, self._label_maps(x, y)], dim=1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return self.trunk(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.conditioning != "none" and y is None:
            raise ValueError("DCGAN discriminator: conditioned model called without labels y")
        h = self.features(x, y)
        if self.output == "reconstruction":
            return self.decoder(self.bottleneck(h))
        if self.output == "features":
            return (h if self.head is None else self.head(h)).flatten(start_dim=1)
        score = self.head(h).flatten()
        if self.conditioning == "projection":
            # psi(h) + <embed(y), h> (Miyato & Koyama 2018)
            score = score + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return score
