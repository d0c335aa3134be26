"""DCGAN and conditional DCGAN for square images of any supported side and channel count.

Architecture (Radford et al. 2016, "Unsupervised representation learning with deep
convolutional generative adversarial networks"):

* no fully connected hidden layers and no pooling: the generator uses fractionally strided
  convolutions (``ConvTranspose2d``) only, the discriminator strided convolutions only;
* batch normalisation in both networks, except at the generator's output layer and the
  discriminator's input layer;
* ReLU in the generator (tanh at its output when the data are bounded), LeakyReLU(0.2) in
  the discriminator;
* weights drawn from N(0, 0.02) (``init_dcgan_weights``).

Layout. A side ``R`` is halved until it is odd or at most 7; what is left is the start size
``s`` and the number of halvings is ``k`` (``R = s * 2**k``): 16 -> 4 (k=2), 28 -> 7 (k=2),
32 -> 4 (k=3), 48 -> 6 (k=3), 64 -> 4 (k=4). At least one halving is needed (``k >= 1``),
so the supported sides are the even integers from 8 up; odd sides and sides below 8 raise
``ValueError``.

* Generator: ``ConvTranspose2d(kernel s)`` from the 1x1 latent to ``s x s`` with
  ``width * 2**(k-1)`` channels, then ``k - 1`` blocks ``ConvTranspose2d(4, 2, 1)`` doubling
  the size and halving the channels down to ``width``, each followed by BatchNorm2d + ReLU,
  and an output ``ConvTranspose2d(4, 2, 1)`` to ``C`` channels (tanh when bounded).
* Discriminator: ``k`` blocks ``Conv2d(4, 2, 1)`` halving the size from ``R`` to ``s``, with
  channels ``width, 2 * width, ..., width * 2**(k-1)``, LeakyReLU(0.2) after each and
  BatchNorm2d on all but the first; then ``Conv2d(kernel s)`` to one channel: one score per
  sample.

Conditioning (labels ``y``: int64 of shape (N,)):

* Generator, ``conditional=True`` (Mirza & Osindero 2014): ``nn.Embedding(num_classes,
  embed_dim)`` of the label concatenated to z.
* Discriminator, ``conditioning="concat"`` (Mirza & Osindero 2014): a one-hot label map,
  broadcast over H x W, concatenated to the image as ``num_classes`` extra input channels.
* Discriminator, ``conditioning="projection"`` (Miyato & Koyama 2018): score =
  unconditional score + <embed(y), h>, h the sum over H x W of the last feature map.

Nothing in a forward pass reads a tensor's value on the host (no ``.item()``, no Python
branching on tensor values), so the models run without host synchronisation; they work with
``channels_last`` tensors and under ``torch.autocast``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_cli.models.layers import num_classes_arg, positive_int

__all__ = ["Generator", "Discriminator", "init_dcgan_weights", "start_size"]

_CONDITIONINGS = ("none", "concat", "projection")
_OUTPUTS = ("score", "reconstruction", "features")
# the discriminator's normalisation: BatchNorm couples a batch's samples; layer norm (one group
# of GroupNorm: over C, H and W of each sample) and none do not
_NORMS = {"batch": nn.BatchNorm2d, "layer": lambda c: nn.GroupNorm(1, c), "none": lambda c: nn.Identity()}
_SUPPORTED = (
    "square images (H == W) whose side is an even integer >= 8, e.g. 8, 16, 28, 32, 48, 64 "
    "(the side is halved until it is odd or <= 7, and at least one halving is needed)"
)


def init_dcgan_weights(module: nn.Module) -> None:
    """Initialise one module as in Radford et al. 2016; use it as ``model.apply(init_dcgan_weights)``.

    Convolution, transposed convolution and linear weights are drawn from N(0, 0.02),
    BatchNorm weights from N(1, 0.02); all biases are set to 0. Other modules (including
    ``nn.Embedding``, whose scale each model sets itself) are left alone.

    Args:
        module: any module; only the parameters of the module itself are touched, not those
            of its children (``nn.Module.apply`` visits the children).

    Returns:
        None; the module is changed in place.
    """
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
    """Split an image side into the start size and the number of doublings.

    Args:
        resolution: the side R of a square image.

    Returns:
        ``(s, k)`` with ``R == s * 2**k``, ``s`` odd or at most 7, ``k >= 1``.

    Raises:
        ValueError: the side is not an integer, or it is odd or smaller than 8 (no halving
            possible); the message names the side and the supported ones.
    """
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
        raise ValueError(
            f"{who}: data_shape must be (C, H, W) for images, got {data_shape!r}; "
            f"supported: {_SUPPORTED}"
        )
    c, h, w = shape
    if isinstance(c, bool) or not isinstance(c, int) or c < 1:
        raise ValueError(f"{who}: channel count must be a positive integer, got {c!r} in {shape}")
    if h != w:
        raise ValueError(
            f"{who}: image resolution {h}x{w} is not square; supported: {_SUPPORTED}"
        )
    try:
        s, k = start_size(h)
    except ValueError as err:
        raise ValueError(f"{who}: image resolution {h}x{w}: {err}") from None
    return c, h, s, k


def _upsampling_trunk(in_channels: int, out_channels: int, width: int, s: int, k: int) -> list[nn.Module]:
    """Layers from a (N, in_channels, 1, 1) code to (N, out_channels, s * 2**k, s * 2**k).

    All hidden layers are followed by BatchNorm2d + ReLU; the output layer has neither.
    """
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
    """DCGAN generator, optionally conditioned on class labels.

    Args:
        z_dim: size of the latent code z.
        data_shape: one sample's shape (C, H, W); H == W, an even integer >= 8.
        num_classes: the dataset's label count (0: unlabelled).
        bounded: end in tanh, so samples lie in [-1, 1] (the data are bounded); otherwise the
            output layer is linear.
        width: channels of the last hidden layer; the first has ``width * 2**(k-1)``.
        conditional: condition on the label (needs ``num_classes > 0``).
        embed_dim: size of the label embedding concatenated to z; default ``z_dim``.

    Attributes:
        num_classes: the dataset's label count when conditional, else 0 (``y`` is ignored).
        embed: the label embedding (conditional only).
        net: the layers, from the (N, z_dim [+ embed_dim], 1, 1) code to the image.

    Raises:
        ValueError: unsupported shape (see ``start_size``), or ``conditional=True`` without
            labels.
    """

    def __init__(
        self,
        *,
        z_dim: int,
        data_shape: Sequence[int],
        num_classes: int = 0,
        bounded: bool = True,
        width: int = 64,
        conditional: bool = False,
        embed_dim: int | None = None,
    ) -> None:
        super().__init__()
        who = "DCGAN generator"
        c, _, s, k = _image_plan(data_shape, who)
        self.z_dim = positive_int(z_dim, "z_dim", who)
        width = positive_int(width, "width", who)
        num_classes = num_classes_arg(num_classes, who)
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
            self.embed_dim = positive_int(self.z_dim if embed_dim is None else embed_dim, "embed_dim", who)
            self.embed = nn.Embedding(self.num_classes, self.embed_dim)  # N(0, 1): the scale of z
            in_channels += self.embed_dim
        layers = _upsampling_trunk(in_channels, c, width, s, k)
        if self.bounded:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Generate samples.

        Args:
            z: latent codes, shape (N, z_dim).
            y: labels, int64 of shape (N,); required when conditional, ignored otherwise.

        Returns:
            Samples of shape (N, C, H, W).
        """
        if self.conditional:
            if y is None:
                raise ValueError("DCGAN generator: conditional model called without labels y")
            z = torch.cat([z, self.embed(y).to(z.dtype)], dim=1)
        return self.net(z.reshape(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """DCGAN discriminator: a score per sample, (BEGAN) a reconstruction, or (MMD-GAN) features.

    Args:
        data_shape: one sample's shape (C, H, W); H == W, an even integer >= 8.
        num_classes: the dataset's label count (0: unlabelled).
        output: ``"score"``: raw scores of shape (N,); ``"reconstruction"``: BEGAN's
            autoencoder discriminator, returning (N, C, H, W). The reconstruction is linear
            (no tanh): D is not told whether the data are bounded, and an L1 reconstruction
            loss needs no squashing. ``"features"``: MMD-GAN's feature extractor, returning
            the last feature map flattened, (N, F * s * s) (the input of the score head), or,
            with ``feature_dim``, a ``Conv2d(F, feature_dim, kernel s)`` of it, (N, feature_dim)
            (the encoder's code layer of MMD-GAN's DCGAN autoencoder).
        width: channels of the first convolution; they double at each halving.
        conditioning: ``"none"`` (y ignored), ``"concat"`` (one-hot label maps as extra
            input channels) or ``"projection"`` (projection discriminator; score output only).
        bottleneck_dim: channels of the 1x1 code between encoder and decoder when
            ``output="reconstruction"``; default: the encoder's last channel count.
        feature_dim: with ``output="features"``: the size of the code head; None = no head.
        norm: the trunk's normalisation after each strided convolution but the first:
            ``"batch"`` (DCGAN's BatchNorm), ``"layer"`` (per-sample layer norm over C, H, W with
            a per-channel gain and bias, i.e. GroupNorm with one group: what Gulrajani et al.
            2017 use in a critic with a gradient penalty, since BatchNorm makes each sample's
            score depend on the rest of the batch), or ``"none"``; ``"auto"`` is resolved by
            the builder from the loss (gan_cli/training/state.py) and means batch here.

    Attributes:
        num_classes: the dataset's label count when conditioned, else 0.
        trunk: the strided convolutions from the image to the last feature map (N, F, s, s).
        features_dim: F, the last feature map's channel count.
        head: ``Conv2d(F, 1, kernel s)``, the unconditional score (score output);
            ``Conv2d(F, feature_dim, kernel s)`` (features output with ``feature_dim``).
        embed: ``nn.Embedding(num_classes, F)`` (projection only).
        bottleneck, decoder: the autoencoder's code and decoder (reconstruction output).

    Raises:
        ValueError: unsupported shape (see ``start_size``), unknown ``output`` or
            ``conditioning``, conditioning without labels, projection with an output other
            than score, or ``feature_dim`` without ``output="features"``.
    """

    def __init__(
        self,
        *,
        data_shape: Sequence[int],
        num_classes: int = 0,
        output: str = "score",
        width: int = 64,
        conditioning: str = "none",
        bottleneck_dim: int | None = None,
        feature_dim: int | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        who = "DCGAN discriminator"
        norm = "batch" if norm == "auto" else norm  # the builder resolves auto; built directly: batch
        if norm not in _NORMS:
            raise ValueError(f"{who}: norm must be one of {tuple(_NORMS)}, got {norm!r}")
        c, _, s, k = _image_plan(data_shape, who)
        width = positive_int(width, "width", who)
        num_classes = num_classes_arg(num_classes, who)
        if output not in _OUTPUTS:
            raise ValueError(f"{who}: output must be one of {_OUTPUTS}, got {output!r}")
        if conditioning not in _CONDITIONINGS:
            raise ValueError(f"{who}: conditioning must be one of {_CONDITIONINGS}, got {conditioning!r}")
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
        if feature_dim is not None:
            if output != "features":
                raise ValueError(
                    f"{who}: feature_dim applies to output='features' only, got output={output!r}"
                )
            feature_dim = positive_int(feature_dim, "feature_dim", who)
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
            code = positive_int(ch if bottleneck_dim is None else bottleneck_dim, "bottleneck_dim", who)
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
        """The encoder's last feature map.

        Args:
            x: images, shape (N, C, H, W).
            y: labels, int64 of shape (N,); used here only with ``conditioning="concat"``.

        Returns:
            Features h of shape (N, F, s, s).
        """
        if self.conditioning == "concat":
            if y is None:
                raise ValueError("DCGAN discriminator: conditioned model called without labels y")
            channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
            x = torch.cat([x, self._label_maps(x, y)], dim=1)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
        return self.trunk(x)

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Score, reconstruct or embed images.

        Args:
            x: images, shape (N, C, H, W).
            y: labels, int64 of shape (N,); required when conditioned, ignored otherwise.

        Returns:
            Raw scores of shape (N,) when ``output="score"``; the reconstruction, shape
            (N, C, H, W), when ``output="reconstruction"``; features, shape (N, F * s * s) or
            (N, feature_dim), when ``output="features"``.
        """
        if self.conditioning != "none" and y is None:
            raise ValueError("DCGAN discriminator: conditioned model called without labels y")
        h = self.features(x, y)
        if self.output == "reconstruction":
            return self.decoder(self.bottleneck(h))
        if self.output == "features":
            return (h if self.head is None else self.head(h)).flatten(start_dim=1)
        score = self.head(h).flatten()
        if self.conditioning == "projection":
            score = score + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return score
