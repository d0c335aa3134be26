"""The InfoGAN architecture (Chen et al. 2016, appendix C.1) on which Lucic et al. 2018 ("Are GANs
Created Equal?") compare every loss on MNIST-like data, for images (C, H, W) with H, W multiples of 4.

G: z -> FC hidden (1024) -> BN -> ReLU -> FC 2*width (128) x H/4 x W/4 -> BN -> ReLU -> ConvT 4x4/2 to
width (64) -> BN -> ReLU -> ConvT 4x4/2 to C (tanh when bounded). D: Conv 4x4/2 to width ->
LReLU(0.2) -> Conv 4x4/2 to 2*width -> norm -> LReLU -> FC hidden -> norm -> LReLU -> FC 1. BEGAN's D
(``output="reconstruction"``): the two convolutions, a ``bottleneck_dim`` code and a decoder
mirroring G (compare_gan v1, src/gans/BEGAN.py); MMD-GAN's (``"features"``): the hidden features.
Weights N(0, 0.02), biases 0 (Lucic et al.'s code). Unconditional: ``y`` is accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

__all__ = ["Generator", "Discriminator"]

_OUTPUTS = ("score", "reconstruction", "features")
_SUPPORTED = "images (C, H, W) whose height and width are multiples of 4, e.g. 28 x 28 or 32 x 32"


def _image_shape(data_shape: Sequence[int], who: str) -> tuple[int, int, int]:
    """Check an image shape (C, H, W) with H and W multiples of 4; return it."""
    try:
        shape = tuple(data_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise ValueError(f"{who}: data_shape must be (C, H, W) for images, got {data_shape!r}; "
                         f"supported: {_SUPPORTED}")
    c, h, w = shape
    if c < 1 or h < 4 or w < 4 or h % 4 or w % 4:
        raise ValueError(f"{who}: image shape {shape} is not supported; supported: {_SUPPORTED}")
    return c, h, w


def _init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases for convolutions and linear layers (as Lucic et al.'s
    code); normalisation layers keep torch's gain 1, bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _norm_layers(norm: str) -> tuple[Callable[[int], nn.Module], Callable[[int], nn.Module]]:
    """The (2D, 1D) normalisation layer factories of ``norm``."""
    if norm == "batch":
        return nn.BatchNorm2d, nn.BatchNorm1d
    if norm == "layer":
        return (lambda c: nn.GroupNorm(1, c)), nn.LayerNorm
    if norm == "none":
        return (lambda c: nn.Identity()), (lambda n: nn.Identity())
    raise ValueError(f"norm {norm!r}: batch | layer | none (build_network resolves auto)")


def _upsampler(in_features: int, channels: int, width: int, h: int, w: int,
               norm2d: Callable[[int], nn.Module], norm1d: Callable[[int], nn.Module],
               act: Callable[[], nn.Module], bias: bool) -> list[nn.Module]:
    """FC to (2 * width, H/4, W/4), then two 4x4 stride-2 transposed convolutions to (C, H, W);
    norm + act after every layer but the last (which is linear)."""
    ch = 2 * width
    return [
        nn.Linear(in_features, ch * (h // 4) * (w // 4), bias=bias),
        norm1d(ch * (h // 4) * (w // 4)),
        act(),
        nn.Unflatten(1, (ch, h // 4, w // 4)),
        nn.ConvTranspose2d(ch, width, kernel_size=4, stride=2, padding=1, bias=bias),
        norm2d(width),
        act(),
        nn.ConvTranspose2d(width, channels, kernel_size=4, stride=2, padding=1),
    ]


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, C, H, W); ``width`` (64) and ``hidden`` (1024) as in the module doc."""

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0,
                 bounded: bool = True, width: int = 64, hidden: int = 1024) -> None:
        super().__init__()
        who = "InfoGAN generator"
        c, h, w = _image_shape(data_shape, who)
        self.z_dim = z_dim
        self.data_shape = (c, h, w)
        self.bounded = bool(bounded)
        self.num_classes = 0
        relu = lambda: nn.ReLU(inplace=True)  # noqa: E731
        layers: list[nn.Module] = [
            nn.Linear(self.z_dim, hidden, bias=False), nn.BatchNorm1d(hidden), relu(),
            *_upsampler(hidden, c, width, h, w, nn.BatchNorm2d, nn.BatchNorm1d, relu, bias=False),
        ]
        if self.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(z.reshape(z.shape[0], -1))


class Discriminator(nn.Module):
    """Images (N, C, H, W) -> raw scores (N,), BEGAN's linear reconstruction (N, C, H, W), or
    MMD-GAN's features (N, hidden), or (N, feature_dim) with a linear head.

    ``norm``: batch (InfoGAN's), layer (per sample) or none after the second convolution and the
    FC layer (and in BEGAN's decoder); the builder resolves the config's ``auto``.
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 width: int = 64, hidden: int = 1024, norm: str = "batch",
                 bottleneck_dim: int = 64, feature_dim: int | None = None) -> None:
        super().__init__()
        who = "InfoGAN discriminator"
        if output not in _OUTPUTS:
            raise ValueError(f"{who}: output must be one of {_OUTPUTS}, got {output!r}")
        if feature_dim is not None and output != "features":
            raise ValueError(f"{who}: feature_dim applies to output='features' only, got output={output!r}")
        c, h, w = _image_shape(data_shape, who)
        self.data_shape = (c, h, w)
        self.output = output
        self.norm = norm
        self.num_classes = 0
        norm2d, norm1d = _norm_layers(norm)
        bias = norm != "batch"  # a bias before BatchNorm is cancelled by its mean
        lrelu = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        flat = 2 * width * (h // 4) * (w // 4)
        self.trunk = nn.Sequential(
            nn.Conv2d(c, width, kernel_size=4, stride=2, padding=1), lrelu(),
            nn.Conv2d(width, 2 * width, kernel_size=4, stride=2, padding=1, bias=bias),
            norm2d(2 * width), lrelu(),
            nn.Flatten(),
        )
        if output == "reconstruction":
            code = bottleneck_dim
            self.head = nn.Sequential(nn.Linear(flat, code, bias=bias), norm1d(code), lrelu())
            self.decoder = nn.Sequential(*_upsampler(code, c, width, h, w, norm2d, norm1d, lrelu,
                                                     bias=bias))
        else:
            layers: list[nn.Module] = [nn.Linear(flat, hidden, bias=bias), norm1d(hidden), lrelu()]
            if output == "score":
                layers.append(nn.Linear(hidden, 1))
            elif feature_dim is not None:
                layers.append(nn.Linear(hidden, feature_dim))
            self.head = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.head(self.trunk(x))
        if self.output == "score":
            return h.flatten()
        if self.output == "reconstruction":
            return self.decoder(h)
        return h
