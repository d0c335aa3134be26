"""The "InfoGAN" generator and discriminator of Lucic et al. 2018 ("Are GANs Created Equal?").

Lucic et al. compare every loss on one architecture per data set; for MNIST and Fashion-MNIST it
is the one of InfoGAN (Chen et al. 2016, appendix C.1), written here from that description:

* Generator: z -> FC ``hidden`` (1024) -> BN -> ReLU -> FC ``2 * width`` (128) x H/4 x W/4 -> BN
  -> ReLU -> ConvTranspose 4x4 stride 2 to ``width`` (64) channels -> BN -> ReLU ->
  ConvTranspose 4x4 stride 2 to the data's C channels -> tanh (when the data are bounded).
* Discriminator: Conv 4x4 stride 2 to ``width`` (64) -> LeakyReLU(0.2) -> Conv 4x4 stride 2 to
  ``2 * width`` (128) -> norm -> LeakyReLU(0.2) -> FC ``hidden`` (1024) -> norm ->
  LeakyReLU(0.2) -> FC 1: one raw score (a logit) per sample.

The data's shape (C, H, W) comes from the dataset: any C, and any H and W divisible by 4 (28 x 28
for MNIST-like data, 32 x 32 for CIFAR-10); the two stride-2 layers halve or double the side twice.

The discriminator's ``norm`` is BatchNorm (``"batch"``, InfoGAN's and Lucic et al.'s default),
``"layer"`` (per sample: GroupNorm with one group after the convolution, LayerNorm after the fully
connected layer) or ``"none"``. ``"auto"`` is resolved by the builder from the loss
(gan_cli/training/state.py: ``resolve_norm``): under a penalty on D's per-sample input gradients
(WGAN-GP, DRAGAN, R1/R2) it becomes the schema's ``penalty_norm``, which for this model is
``"none"``: Lucic et al.'s code searched BatchNorm in D on and off for every loss and, after the
wide search, fixed it off for WGAN-GP and DRAGAN (google/compare_gan v1, src/params.py: "From
the barplot, clearly False is better"); BatchNorm would also make one sample's score depend on
its batch, which a per-sample gradient penalty cannot constrain (Gulrajani et al. 2017).

Two other outputs make the discriminator usable with every loss of the project:

* ``output="reconstruction"`` (BEGAN): an autoencoder whose encoder is the two convolutions
  above and a fully connected code of ``bottleneck_dim`` (64) units, and whose decoder mirrors
  the generator (FC to 2 * width x H/4 x W/4, two transposed convolutions, D's norm and
  LeakyReLU), with a linear output, as Lucic et al.'s BEGAN discriminator (compare_gan v1,
  src/gans/BEGAN.py, which has 64 code units and the same two convolutions);
* ``output="features"`` (MMD-GAN): the ``hidden`` features before the score layer, or a linear
  map of them to ``feature_dim``.

Weights are drawn from N(0, 0.02) with zero biases (Lucic et al.'s code); normalisation layers
start at gain 1, bias 0. The models are unconditional: labels ``y`` are accepted and ignored
(``num_classes`` is 0), as in the study. Spectral norm and PacGAN packing are applied from
outside by the builder (gan_cli/build.py), like for every model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from gan_cli.models.layers import positive_int

__all__ = ["Generator", "Discriminator"]

_OUTPUTS = ("score", "reconstruction", "features")
_NORMS = ("batch", "layer", "none")
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
    return (lambda c: nn.Identity()), (lambda n: nn.Identity())


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
    """The InfoGAN generator of Lucic et al. 2018 (see the module docstring).

    Args:
        z_dim: size of the latent code z (Lucic et al.: 64).
        data_shape: one sample's shape (C, H, W), H and W multiples of 4.
        num_classes: the dataset's label count; ignored (the model is unconditional).
        bounded: end in tanh, so samples lie in [-1, 1]; otherwise the output layer is linear.
        width: channels of the last hidden layer (64); the layer before it has ``2 * width``.
        hidden: units of the first fully connected layer (1024).

    Attributes:
        num_classes: 0 (labels are not used).
        net: the layers, from z to the image.

    Raises:
        ValueError: an unsupported data shape or a non-positive size.
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0,
                 bounded: bool = True, width: int = 64, hidden: int = 1024) -> None:
        super().__init__()
        who = "InfoGAN generator"
        c, h, w = _image_shape(data_shape, who)
        self.z_dim = positive_int(z_dim, "z_dim", who)
        width = positive_int(width, "width", who)
        hidden = positive_int(hidden, "hidden", who)
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
        """Generate samples.

        Args:
            z: latent codes, shape (N, z_dim).
            y: ignored (the model is unconditional).

        Returns:
            Samples of shape (N, C, H, W).
        """
        return self.net(z.reshape(z.shape[0], -1))


class Discriminator(nn.Module):
    """The InfoGAN discriminator of Lucic et al. 2018 (see the module docstring).

    Args:
        data_shape: one sample's shape (C, H, W), H and W multiples of 4.
        num_classes: the dataset's label count; ignored (the model is unconditional).
        output: ``"score"``: raw scores of shape (N,); ``"reconstruction"``: BEGAN's autoencoder,
            returning (N, C, H, W) (linear: D is not told whether the data are bounded);
            ``"features"``: MMD-GAN's features, (N, hidden) or (N, feature_dim).
        width: channels of the first convolution (64); the second has ``2 * width``.
        hidden: units of the fully connected layer before the score (1024).
        norm: ``"batch"``, ``"layer"`` or ``"none"`` after the second convolution and the fully
            connected layer (and in BEGAN's decoder); ``"auto"`` is resolved by the builder from
            the loss and means batch when the class is built directly.
        bottleneck_dim: BEGAN's code size (output="reconstruction"; 64, Lucic et al.'s code).
        feature_dim: with ``output="features"``: the size of a linear head on the features;
            None = the ``hidden`` features themselves.

    Attributes:
        num_classes: 0 (labels are not used).
        trunk: the two convolutions, from the image to (N, 2 * width * H/4 * W/4), flattened.
        head: the layers after the trunk (score, features, or BEGAN's code).
        decoder: BEGAN's decoder (reconstruction output only).

    Raises:
        ValueError: an unsupported data shape, an unknown ``output`` or ``norm``, or
            ``feature_dim`` without ``output="features"``.
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 width: int = 64, hidden: int = 1024, norm: str = "batch",
                 bottleneck_dim: int = 64, feature_dim: int | None = None) -> None:
        super().__init__()
        who = "InfoGAN discriminator"
        norm = "batch" if norm == "auto" else norm  # the builder resolves auto; built directly: batch
        if norm not in _NORMS:
            raise ValueError(f"{who}: norm must be one of {_NORMS}, got {norm!r}")
        if output not in _OUTPUTS:
            raise ValueError(f"{who}: output must be one of {_OUTPUTS}, got {output!r}")
        if feature_dim is not None:
            if output != "features":
                raise ValueError(f"{who}: feature_dim applies to output='features' only, "
                                 f"got output={output!r}")
            feature_dim = positive_int(feature_dim, "feature_dim", who)
        c, h, w = _image_shape(data_shape, who)
        width = positive_int(width, "width", who)
        hidden = positive_int(hidden, "hidden", who)
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
            code = positive_int(bottleneck_dim, "bottleneck_dim", who)
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
        """Score, reconstruct or embed images.

        Args:
            x: images, shape (N, C, H, W).
            y: ignored (the model is unconditional).

        Returns:
            Raw scores of shape (N,) when ``output="score"``; the reconstruction, (N, C, H, W),
            when ``output="reconstruction"``; features, (N, hidden) or (N, feature_dim), when
            ``output="features"``.
        """
        h = self.head(self.trunk(x))
        if self.output == "score":
            return h.flatten()
        if self.output == "reconstruction":
            return self.decoder(h)
        return h
