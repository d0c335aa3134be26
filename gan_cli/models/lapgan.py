"""LAPGAN: a Laplacian pyramid of GANs (Denton et al. 2015, "Deep generative image models using a
Laplacian pyramid of adversarial networks").

The pyramid. With a downsampling operator ``d`` (side / 2) and an upsampling operator ``u``
(side x 2), the Gaussian pyramid of an image ``I`` is ``I_0 = I, I_{k+1} = d(I_k)`` and its
Laplacian pyramid is

    h_k = I_k - u(I_{k+1})        for k = 0 .. K-1   (the high-pass, band-pass images)
    h_K = I_K                                        (the coarsest, low-pass image)

so ``I_k = u(I_{k+1}) + h_k`` and ``reconstruct`` gives back ``I_0`` exactly (to float rounding)
whatever ``d`` and ``u`` are: the decomposition subtracts the very ``u(I_{k+1})`` that the
reconstruction adds. Level 0 is the full resolution, level K the coarsest (the paper's numbering).
The operators chosen here, both separable and linear, with torch's interpolation:

* ``d`` (``downsample``): blur with the 4-tap binomial filter [1, 3, 3, 1] / 8, then keep one pixel
  in two: ``F.interpolate(scale_factor=0.5, mode="bilinear", antialias=True)``. Coarse pixel i is
  centred at fine coordinate 2i + 1/2, so ``d(I)[i] = (I[2i-1] + 3 I[2i] + 3 I[2i+1] + I[2i+2]) / 8``;
  at a border the missing tap is dropped and the others renormalised (``(3 I[0] + 3 I[1] + I[2]) / 7``).
* ``u`` (``upsample``): bilinear interpolation x 2 with half-pixel centres
  (``align_corners=False``): ``u(J)[2i] = (J[i-1] + 3 J[i]) / 4``, ``u(J)[2i+1] = (3 J[i] + J[i+1]) / 4``,
  with the border pixel repeated (``u(J)[0] = J[0]``). The paper blurs and subsamples with a
  Gaussian as Burt & Adelson; this pair is its smallest version with matched pixel centres.

Every halving needs an even side: 28 -> 14 -> 7 (Fashion-MNIST, 3 levels, no padding) and
32 -> 16 -> 8 (CIFAR-10, 3 levels).

The models (one (G_k, D_k) pair per level, trained independently):

* levels k < K: ``LevelGenerator`` ``G_k(z_k, l_k) -> h~_k`` with ``l_k = u(I_{k+1})``; the noise
  enters as extra image planes (the paper's "fourth colour plane", here a linear projection of
  ``z_k`` so that every level takes an ordinary latent vector) and class labels as one more plane
  (the paper's class-conditional CIFAR-10 model: a linear map of the one-hot label, reshaped to a
  plane). ``LevelDiscriminator`` ``D_k(h, l_k)`` judges a real ``h_k`` or a generated ``h~_k``
  together with ``l_k``, which the paper adds to ``h`` before the first convolution
  (``combine="add"``: D then sees the image ``I_k``; ``combine="concat"`` stacks them as channels).
* level K: a plain, optionally class-conditional GAN of the coarse image ``I_K`` (7x7 or 8x8):
  ``CoarseGenerator`` / ``CoarseDiscriminator``, fully connected like the paper's coarsest level
  (gan_cli.models.mlp with labels used when the data have them).

The condition ``y``. At level K it is what every other model receives: class labels (N,) int64 or
None. At a level k < K it is a ``LevelCondition(image=l_k, labels=labels_or_None)``, a NamedTuple
(so generic code that moves or splits tuples handles it); a bare tensor is read as ``l_k`` without
labels. ``prepare(k, batch, levels=K+1)`` turns a full-resolution real ``Batch(x, labels)`` into
level k's ``Batch(x=h_k, y=LevelCondition(l_k, labels))`` (level K: ``Batch(I_K, labels)``).

Sampling (the paper's figure 1): ``I~_K = G_K(z_K, labels)``, then for k = K-1 .. 0,
``l_k = u(I~_{k+1})`` and ``I~_k = l_k + G_k(z_k, LevelCondition(l_k, labels))``.
``LAPGANCascade(generators)`` does this as one generator ``G(z, y) -> (N, *data_shape)`` whose
latent is the concatenation ``[z_0, z_1, ..., z_K]`` of the levels' own latents;
``LAPGANCascade.levels`` returns every level's image and high-pass for ``sampling_figure``.

Training: gan_cli/models/stages.py (``LAPGANStages``) makes the levels the training loop's stages,
the coarsest first (``model=lapgan``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.data.base import Batch
from gan_cli.models import mlp
from gan_cli.models.dcgan import init_dcgan_weights
from gan_cli.models.layers import image_shape, positive_int

__all__ = [
    "CoarseDiscriminator", "CoarseGenerator", "LAPGANCascade", "LevelCondition", "LevelDiscriminator",
    "LevelGenerator", "downsample", "gaussian_pyramid", "laplacian_pyramid", "level_shapes", "prepare",
    "reconstruct", "sampling_figure", "save_sampling_figure", "upsample",
]


# --------------------------------------------------------------------------------------------
# The pyramid


def downsample(x: Tensor) -> Tensor:
    """``d``: blur with [1, 3, 3, 1] / 8 in each direction and keep every other pixel.

    Args:
        x: images (N, C, H, W) with H and W even.

    Returns:
        (N, C, H/2, W/2).

    Raises:
        ValueError: an odd side (the pyramid would lose a row or column).
    """
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"a Laplacian pyramid level needs even sides to halve, got {h}x{w}")
    return F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=False, antialias=True)


def upsample(x: Tensor) -> Tensor:
    """``u``: bilinear interpolation to twice the side (half-pixel centres, borders repeated).

    Args:
        x: images (N, C, H, W).

    Returns:
        (N, C, 2H, 2W).
    """
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(2 * h, 2 * w), mode="bilinear", align_corners=False)


def _check_levels(levels: int) -> int:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise ValueError(f"levels must be a positive integer, got {levels!r}")
    return levels


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[I_0 = x, I_1 = d(I_0), ..., I_{levels-1}]``, finest first.

    Args:
        x: images (N, C, H, W); H and W must stay even for ``levels - 1`` halvings.
        levels: number of levels (1 = just ``x``).

    Returns:
        ``levels`` tensors, level k of side H / 2**k.
    """
    pyr = [x]
    for _ in range(_check_levels(levels) - 1):
        pyr.append(downsample(pyr[-1]))
    return pyr


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[h_0, ..., h_{K-1}, I_K]`` with ``h_k = I_k - u(I_{k+1})`` and K = levels - 1.

    Args:
        x: images (N, C, H, W).
        levels: number of levels, the coarse low-pass image included.

    Returns:
        ``levels`` tensors: the high-pass images, finest first, then the low-pass image ``I_K``.
    """
    gauss = gaussian_pyramid(x, levels)
    return [gauss[k] - upsample(gauss[k + 1]) for k in range(levels - 1)] + [gauss[-1]]


def reconstruct(pyramid: Sequence[Tensor]) -> Tensor:
    """Invert ``laplacian_pyramid``: ``I_K = h_K``, then ``I_k = u(I_{k+1}) + h_k`` down to ``I_0``."""
    if len(pyramid) == 0:
        raise ValueError("reconstruct needs at least one level")
    image = pyramid[-1]
    for h in reversed(pyramid[:-1]):
        image = upsample(image) + h
    return image


def level_shapes(data_shape: Sequence[int], levels: int) -> list[tuple[int, int, int]]:
    """One sample's shape (C, H_k, W_k) at every level, finest first: the shape facts of G_k, D_k.

    Args:
        data_shape: the full-resolution (C, H, W).
        levels: number of levels.

    Returns:
        ``levels`` shapes, e.g. (1, 28, 28), (1, 14, 14), (1, 7, 7).

    Raises:
        ValueError: not an image shape, or a side that cannot be halved ``levels - 1`` times.
    """
    if len(tuple(data_shape)) != 3:
        raise ValueError(f"LAPGAN needs image data (C, H, W), got data_shape {tuple(data_shape)}")
    c, h, w = (int(s) for s in data_shape)
    shapes = [(c, h, w)]
    for _ in range(_check_levels(levels) - 1):
        if h % 2 or w % 2 or h < 4 or w < 4:
            raise ValueError(
                f"{data_shape[1]}x{data_shape[2]} images cannot be halved {levels - 1} times "
                f"(reached {h}x{w}); use fewer levels, e.g. 3 for 28 -> 14 -> 7 or 32 -> 16 -> 8"
            )
        h, w = h // 2, w // 2
        shapes.append((c, h, w))
    return shapes


# --------------------------------------------------------------------------------------------
# The condition of a level above the coarsest


class LevelCondition(NamedTuple):
    """What G_k and D_k (k < K) are conditioned on.

    Args:
        image: the upsampled coarser image ``l_k = u(I_{k+1})``, (N, C, H_k, W_k).
        labels: class labels (N,) int64, or None (unlabelled data or an unconditional model).
    """

    image: Tensor
    labels: Tensor | None = None

    def to(self, *args: Any, **kwargs: Any) -> LevelCondition:
        """The image moved or cast like ``Tensor.to``; the labels follow it to its device (int64 kept)."""
        image = self.image.to(*args, **kwargs)
        return LevelCondition(image, None if self.labels is None else self.labels.to(image.device))


def _as_condition(y: Any, who: str) -> LevelCondition:
    if isinstance(y, LevelCondition):
        return y
    if isinstance(y, Tensor) and y.dim() == 4:
        return LevelCondition(y)
    raise ValueError(
        f"{who}: y must be a LevelCondition(image=l_k, labels) or the image l_k (N, C, H, W), "
        f"got {type(y).__name__}"
    )


def prepare(k: int, batch: Batch, frozen_generators: Sequence[nn.Module] = (), *, levels: int) -> Batch:
    """Level k's training batch from a full-resolution real batch (the multi-stage ``prepare``).

    Args:
        k: the level, 0 (full resolution) .. levels - 1 (coarsest).
        batch: ``Batch(x=I (N, C, H, W), y=labels (N,) or None)``.
        frozen_generators: unused: LAPGAN's levels train on the real pyramid, independently.
        levels: the pyramid's number of levels.

    Returns:
        ``Batch(x=h_k, y=LevelCondition(l_k, labels))`` for k < levels - 1, where
        ``h_k + l_k = I_k``; ``Batch(x=I_K, y=labels)`` at the coarsest level.
    """
    del frozen_generators
    if not 0 <= k < _check_levels(levels):
        raise ValueError(f"level {k} out of range for a {levels}-level pyramid")
    labels = batch.y if isinstance(batch.y, Tensor) and batch.y.dim() == 1 else None
    gauss = gaussian_pyramid(batch.x, min(k + 2, levels))
    if k == levels - 1:
        return Batch(gauss[k], labels)
    low = upsample(gauss[k + 1])
    return Batch(gauss[k] - low, LevelCondition(low, labels))


# --------------------------------------------------------------------------------------------
# Networks


def _use_labels(conditional: bool | None, num_classes: int, who: str) -> int:
    """The label count a network uses: ``num_classes`` when conditional (None: when labelled), else 0."""
    if conditional is None:
        return num_classes
    if conditional and num_classes == 0:
        raise ValueError(f"{who}: conditional=True needs a labelled dataset (num_classes > 0)")
    return num_classes if conditional else 0


class LevelGenerator(nn.Module):
    """G_k for a level above the coarsest: ``(z_k, l_k [, labels]) -> h~_k``.

    Input planes, concatenated: ``l_k`` (C), ``noise_channels`` planes ``Linear(z_k)`` reshaped to
    H x W, and, when conditional, one label plane ``Embedding(label)`` reshaped to H x W. Then
    ``depth - 1`` blocks Conv(k x k, ``width``) + BatchNorm + ReLU and a Conv(k x k) to C channels.
    The output is linear: a high-pass image is a difference of two images in [-1, 1], and it is
    mostly close to 0, where a linear layer initialised N(0, 0.02) starts.

    Args:
        z_dim: size of this level's latent z_k.
        data_shape: this level's (C, H_k, W_k).
        num_classes: the dataset's label count.
        bounded: accepted for the common contract; the high-pass output is never squashed.
        width: channels of the hidden convolutions.
        depth: convolutions in all (>= 2).
        kernel_size: odd side of every convolution kernel ("same" padding).
        noise_channels: planes the latent is projected to.
        conditional: use the labels; None = when the data have them.

    Attributes:
        num_classes: the label count used (0: labels ignored).
        takes_condition: True: the training step always passes the batch's condition (``l_k``).
    """

    takes_condition = True

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 width: int = 32, depth: int = 3, kernel_size: int = 3, noise_channels: int = 1,
                 conditional: bool | None = None) -> None:
        super().__init__()
        who = "LAPGAN level generator"
        c, h, w = image_shape(data_shape, who)
        self.z_dim = positive_int(z_dim, "z_dim", who)
        width = positive_int(width, "width", who)
        noise_channels = positive_int(noise_channels, "noise_channels", who)
        if positive_int(depth, "depth", who) < 2:
            raise ValueError(f"{who}: depth must be >= 2 (a hidden layer and the output), got {depth}")
        if positive_int(kernel_size, "kernel_size", who) % 2 == 0:
            raise ValueError(f"{who}: kernel_size must be odd, got {kernel_size}")
        self.data_shape = (c, h, w)
        self.bounded = bool(bounded)
        self.num_classes = _use_labels(conditional, num_classes, who)
        self.noise_channels = noise_channels
        self.noise = nn.Linear(self.z_dim, noise_channels * h * w)
        if self.num_classes:
            self.embed = nn.Embedding(self.num_classes, h * w)  # N(0, 1): one label plane
        ch = c + noise_channels + (1 if self.num_classes else 0)
        pad = kernel_size // 2
        layers: list[nn.Module] = []
        for _ in range(depth - 1):
            layers += [nn.Conv2d(ch, width, kernel_size, padding=pad, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            ch = width
        layers.append(nn.Conv2d(ch, c, kernel_size, padding=pad))
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor, y: Any = None) -> Tensor:
        """The high-pass image.

        Args:
            z: latents (N, z_dim).
            y: ``LevelCondition(l_k, labels)`` or the image ``l_k``; labels required when conditional.

        Returns:
            ``h~_k``, (N, C, H_k, W_k).
        """
        cond = _as_condition(y, "LAPGAN level generator")
        n, (h, w) = z.shape[0], self.data_shape[1:]
        planes = [cond.image, self.noise(z).reshape(n, self.noise_channels, h, w).to(cond.image.dtype)]
        if self.num_classes:
            if cond.labels is None:
                raise ValueError("LAPGAN level generator: conditional level called without labels")
            planes.append(self.embed(cond.labels).reshape(n, 1, h, w).to(cond.image.dtype))
        return self.net(torch.cat(planes, dim=1))


class LevelDiscriminator(nn.Module):
    """D_k for a level above the coarsest: ``(h, l_k [, labels]) -> score``.

    Input: ``h + l_k`` (``combine="add"``, the paper's) or ``[h, l_k]`` stacked (``"concat"``), plus a
    label plane when conditional. Layers: Conv(3x3, ``width``) + LeakyReLU(0.2), then
    Conv(4x4, stride 2) [+ BatchNorm] + LeakyReLU(0.2) doubling the channels while both sides are
    even and above 8 (28 -> 14 -> 7, 32 -> 16 -> 8), then [dropout and] a linear layer to one score.

    Batch norm (DCGAN's placement, after each strided convolution) is what lets this D learn on a
    CPU budget: measured on level 1 of Fashion-MNIST (14x14, batch 64, 600 steps, ns loss, Adam
    2e-4), without it D stayed at chance (loss ln 4 = 1.386 throughout, at widths 16 and 64, with
    either init, with 4x D's learning rate) while G's high-pass stayed white noise; with it D's loss
    fell to 1.1 and G's high-pass took the shape of edges. It mixes the samples of a batch, so with
    a per-sample gradient penalty (WGAN-GP, DRAGAN) set ``batch_norm=False``.

    Args:
        data_shape: this level's (C, H_k, W_k).
        num_classes: the dataset's label count.
        output: only ``"score"`` (no autoencoder discriminator for BEGAN here).
        width: channels of the first convolution.
        combine: ``"add"`` or ``"concat"``: how ``h`` and ``l_k`` enter.
        conditional: use the labels; None = when the data have them.
        batch_norm: BatchNorm after each strided convolution.
        dropout: dropout probability before the linear layer (the paper's D: 0.5); 0 = none.

    Attributes:
        num_classes: the label count used (0: labels ignored).
        takes_condition: True: D is always called with the condition (``l_k``).
    """

    takes_condition = True

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 width: int = 16, combine: str = "add", conditional: bool | None = None,
                 batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        who = "LAPGAN level discriminator"
        c, h, w = image_shape(data_shape, who)
        if output != "score":
            raise ValueError(f"{who}: only output='score' is supported, got {output!r} "
                             "(BEGAN's reconstruction discriminator is not available for LAPGAN)")
        if combine not in ("add", "concat"):
            raise ValueError(f"{who}: combine must be 'add' or 'concat', got {combine!r}")
        width = positive_int(width, "width", who)
        if not 0 <= dropout < 1:
            raise ValueError(f"{who}: dropout must be in [0, 1), got {dropout}")
        self.data_shape = (c, h, w)
        self.combine = combine
        self.num_classes = _use_labels(conditional, num_classes, who)
        if self.num_classes:
            self.embed = nn.Embedding(self.num_classes, h * w)
        ch_in = c * (2 if combine == "concat" else 1) + (1 if self.num_classes else 0)
        layers: list[nn.Module] = [nn.Conv2d(ch_in, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        ch = width
        while h % 2 == 0 and w % 2 == 0 and min(h, w) > 8:
            layers.append(nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(2 * ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            ch, h, w = 2 * ch, h // 2, w // 2
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(ch * h * w, 1)
        self.apply(init_dcgan_weights)

    def forward(self, x: Tensor, y: Any = None) -> Tensor:
        """Score high-pass images.

        Args:
            x: the real or generated high-pass image h, (N, C, H_k, W_k).
            y: ``LevelCondition(l_k, labels)`` or the image ``l_k``; labels required when conditional.

        Returns:
            Raw scores (N,).
        """
        cond = _as_condition(y, "LAPGAN level discriminator")
        planes = [x + cond.image] if self.combine == "add" else [x, cond.image]
        if self.num_classes:
            if cond.labels is None:
                raise ValueError("LAPGAN level discriminator: conditional level called without labels")
            planes.append(self.embed(cond.labels).reshape(x.shape[0], 1, *x.shape[2:]).to(x.dtype))
        return self.head(self.trunk(torch.cat(planes, dim=1)).flatten(1)).flatten()


class CoarseGenerator(mlp.Generator):
    """G_K, the coarsest level: a fully connected generator of the low-pass image I_K.

    gan_cli.models.mlp.Generator with ``conditional=None`` meaning "when the data have labels" and
    tanh on bounded data. Args as there, plus ``conditional: bool | None``.
    """

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 hidden: Sequence[int] = (512, 512), activation: str = "relu", batch_norm: bool = False,
                 conditional: bool | None = None) -> None:
        used = _use_labels(conditional, num_classes, "LAPGAN coarse generator")
        super().__init__(z_dim=z_dim, data_shape=tuple(data_shape), num_classes=used, bounded=bounded,
                         hidden=list(hidden), activation=activation, batch_norm=batch_norm,
                         conditional=used > 0)


class CoarseDiscriminator(mlp.Discriminator):
    """D_K, the coarsest level: a fully connected discriminator of I_K (gan_cli.models.mlp's).

    Args as gan_cli.models.mlp.Discriminator, plus ``conditional: bool | None`` (None: when labelled).
    """

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 hidden: Sequence[int] = (512, 512), activation: str = "leaky_relu", dropout: float = 0.0,
                 conditional: bool | None = None) -> None:
        used = _use_labels(conditional, num_classes, "LAPGAN coarse discriminator")
        super().__init__(data_shape=tuple(data_shape), num_classes=used, output=output, hidden=list(hidden),
                         activation=activation, dropout=dropout, conditional=used > 0)


# --------------------------------------------------------------------------------------------
# Sampling


class LAPGANCascade(nn.Module):
    """The levels' generators chained into one generator of full images (the paper's figure 1).

    Args:
        generators: ``[G_0, ..., G_K]``, finest first; G_K takes ``(z_K, labels)``, the others
            ``(z_k, LevelCondition(l_k, labels))``. Each has ``z_dim``, ``data_shape`` and
            ``num_classes``. During training the cascade holds the levels trained so far, so its
            finest generator may be a coarser level than the data's (its samples are smaller).
        skip_z_dim: latent entries at the front of ``z`` that belong to finer levels not in this
            cascade (not trained yet); they are ignored, so that one latent gives the same coarse
            images before and after the finer levels join (figures compare across stages).
        frozen_coarse: the levels below the finest one here are frozen (a cascade in training):
            ``train(True)`` puts only the finest generator in training mode, the others stay in
            eval mode (their BatchNorm statistics must not move while they only sample).

    Attributes:
        z_dims: every level's latent size; ``z_dim``: ``skip_z_dim`` + their sum, the cascade's
            latent size.
        data_shape: the finest resolution here (G_0's).
        num_classes: the largest label count any level uses (0: no level uses labels).
        default_metrics: what gan-eval adds to the data's metrics: the levels figure.
    """

    default_metrics = ("lapgan_levels",)

    def __init__(self, generators: Sequence[nn.Module], skip_z_dim: int = 0,
                 frozen_coarse: bool = False) -> None:
        super().__init__()
        if len(generators) == 0:
            raise ValueError("LAPGANCascade needs at least one generator")
        if isinstance(skip_z_dim, bool) or not isinstance(skip_z_dim, int) or skip_z_dim < 0:
            raise ValueError(f"LAPGANCascade: skip_z_dim must be an integer >= 0, got {skip_z_dim!r}")
        self.generators = nn.ModuleList(generators)
        self.z_dims = [int(g.z_dim) for g in generators]
        self.skip_z_dim = skip_z_dim
        self.z_dim = skip_z_dim + sum(self.z_dims)
        self.frozen_coarse = bool(frozen_coarse)
        self.data_shape = tuple(generators[0].data_shape)
        self.num_classes = max(int(g.num_classes) for g in generators)
        expected = level_shapes(self.data_shape, len(generators))
        got = [tuple(g.data_shape) for g in generators]
        if got != expected:
            raise ValueError(f"LAPGANCascade: level shapes {got} do not halve level by level; "
                             f"expected {expected}")

    @property
    def num_levels(self) -> int:
        return len(self.generators)

    def prepare(self, k: int, batch: Batch, frozen_generators: Sequence[nn.Module] = ()) -> Batch:
        """``prepare(k, batch, levels=self.num_levels)``: level k's real batch."""
        return prepare(k, batch, frozen_generators, levels=self.num_levels)

    def train(self, mode: bool = True) -> LAPGANCascade:
        """As ``nn.Module.train``; with ``frozen_coarse``, ``train(True)`` leaves the coarser levels
        in eval mode (only the finest level here is being trained)."""
        super().train(mode)
        if mode and self.frozen_coarse:
            for g in self.generators[1:]:
                g.eval()
        return self

    def split_latents(self, z: Tensor) -> list[Tensor]:
        """``z`` (N, z_dim) -> ``[z_0, ..., z_K]``, each level's own slice (after ``skip_z_dim``)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            skip = f"{self.skip_z_dim} skipped + " if self.skip_z_dim else ""
            raise ValueError(f"LAPGANCascade: z must be (N, {self.z_dim}) = {skip}the levels' {self.z_dims}, "
                             f"got {tuple(z.shape)}")
        return list(torch.split(z[:, self.skip_z_dim:], self.z_dims, dim=1))

    def levels(self, z: Tensor, y: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
        """Sample, keeping every level: ``[(I~_K, I~_K), (I~_{K-1}, h~_{K-1}), ..., (I~_0, h~_0)]``.

        Args:
            z: latents (N, z_dim), the concatenation ``[z_0, ..., z_K]``.
            y: class labels (N,) int64, or None.

        Returns:
            Per level, coarsest first: the image and its generated high-pass (at the coarsest
            level the low-pass image itself).
        """
        zs = self.split_latents(z)
        image = self.generators[-1](zs[-1], y)
        out = [(image, image)]
        for k in range(self.num_levels - 2, -1, -1):
            low = upsample(image)
            high = self.generators[k](zs[k], LevelCondition(low, y))
            image = low + high
            out.append((image, high))
        return out

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Full-resolution samples (N, *data_shape) from latents (N, z_dim) and labels or None."""
        return self.levels(z, y)[-1][0]


@torch.no_grad()
def sampling_figure(cascade: LAPGANCascade, z: Tensor,
                    y: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
    """The paper's sampling figure as tensors: per level, coarsest first, the image and its high-pass.

    Args:
        cascade: the generators.
        z: latents (N, cascade.z_dim).
        y: labels or None.

    Returns:
        ``cascade.levels(z, y)`` computed without gradients, in G's current mode.
    """
    return cascade.levels(z, y)


def _column(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x.detach().float().cpu(), size=size, mode="nearest")


def save_sampling_figure(levels: Sequence[tuple[Tensor, Tensor]], path: str | Path) -> Tensor:
    """Write ``sampling_figure``'s output as one PNG: a row per sample, columns
    ``I~_K | h~_{K-1} | I~_{K-1} | ... | h~_0 | I~_0``, every cell enlarged (nearest) to full size.

    Images are drawn in [-1, 1] as they are; each high-pass column is stretched by its largest
    magnitude (mid-grey = 0), since high-pass values are small.

    Args:
        levels: from ``sampling_figure``.
        path: the PNG to write.

    Returns:
        The drawn cells (N * (2K + 1), C, H, W) in [-1, 1], row by row.
    """
    from gan_cli.data.figures import save_image_grid

    size = tuple(levels[-1][0].shape[-2:])
    columns = [_column(levels[0][0], size)]
    for image, high in levels[1:]:
        h = _column(high, size)
        columns += [h / h.abs().max().clamp_min(1e-8), _column(image, size)]
    cells = torch.stack(columns, dim=1).flatten(0, 1)
    save_image_grid(cells, path, nrow=len(columns))
    return cells
