"""LAPGAN: a Laplacian pyramid of GANs (Denton et al. 2015), one (G_k, D_k) pair per level.

The pyramid (``d``, ``u``, ``h_k = I_k - u(I_{k+1})``) is in gan_cli/data/pyramids.py; level 0 is
the full resolution, level K the coarsest. Levels k < K: ``G_k(z_k, l_k) -> h~_k`` with
``l_k = u(I_{k+1})``, the noise and the label as extra planes (the paper's "fourth colour plane");
``D_k(h, l_k)``. Level K: a fully connected GAN of ``I_K`` (gan_cli.models.mlp). The condition of
a level k < K is a ``LevelCondition(l_k, labels)``. Sampling (the paper's fig. 1):
``I~_K = G_K(z_K)``, then ``I~_k = u(I~_{k+1}) + G_k(z_k, u(I~_{k+1}))`` (``LAPGANCascade``).
Training: gan_cli/models/stages.py (``LAPGANStages``), the coarsest level first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from gan_cli.data.base import Batch
from gan_cli.data.pyramids import gaussian_pyramid, level_shapes, upsample
from gan_cli.models import mlp
from gan_cli.models.dcgan import init_dcgan_weights
from gan_cli.models.layers import image_shape

__all__ = ["CoarseDiscriminator", "CoarseGenerator", "LAPGANCascade", "LevelCondition", "LevelDiscriminator",
           "LevelGenerator", "prepare"]


class LevelCondition(NamedTuple):
    """What G_k and D_k (k < K) take: ``image`` = l_k (N, C, H_k, W_k), ``labels`` (N,) int64 or None."""

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
    """Level k's batch from a full-resolution ``Batch(I, labels)``: ``Batch(h_k, LevelCondition(l_k,
    labels))`` for k < levels - 1, ``Batch(I_K, labels)`` at the coarsest (frozen_generators unused)."""
    del frozen_generators
    if not 0 <= k < levels:
        raise ValueError(f"level {k} out of range for a {levels}-level pyramid")
    labels = batch.y if isinstance(batch.y, Tensor) and batch.y.dim() == 1 else None
    gauss = gaussian_pyramid(batch.x, min(k + 2, levels))
    if k == levels - 1:
        return Batch(gauss[k], labels)
    low = upsample(gauss[k + 1])
    return Batch(gauss[k] - low, LevelCondition(low, labels))


def _use_labels(conditional: bool | None, num_classes: int, who: str) -> int:
    """The label count a network uses: ``num_classes`` when conditional (None: when labelled), else 0."""
    if conditional is None:
        return num_classes
    if conditional and num_classes == 0:
        raise ValueError(f"{who}: conditional=True needs a labelled dataset (num_classes > 0)")
    return num_classes if conditional else 0


class LevelGenerator(nn.Module):
    """G_k (k < K): ``(z_k, LevelCondition(l_k, labels)) -> h~_k`` (N, C, H_k, W_k), linear output.

    Input planes: l_k, ``noise_channels`` planes ``Linear(z_k)``, a label plane ``Embedding(label)``
    when conditional; then ``depth - 1`` x (conv k x k + BatchNorm + ReLU) and a conv to C channels.
    ``bounded`` is accepted for the common contract (a high-pass image is never squashed).
    """

    takes_condition = True

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 width: int = 32, depth: int = 3, kernel_size: int = 3, noise_channels: int = 1,
                 conditional: bool | None = None) -> None:
        super().__init__()
        c, h, w = image_shape(data_shape, "LAPGAN level generator")
        self.z_dim = int(z_dim)
        self.data_shape = (c, h, w)
        self.bounded = bool(bounded)
        self.num_classes = _use_labels(conditional, num_classes, "LAPGAN level generator")
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
        cond = _as_condition(y, "LAPGAN level generator")
        n, (h, w) = z.shape[0], self.data_shape[1:]
        planes = [cond.image, self.noise(z).reshape(n, self.noise_channels, h, w).to(cond.image.dtype)]
        if self.num_classes:
            if cond.labels is None:
                raise ValueError("LAPGAN level generator: conditional level called without labels")
            planes.append(self.embed(cond.labels).reshape(n, 1, h, w).to(cond.image.dtype))
        return self.net(torch.cat(planes, dim=1))


class LevelDiscriminator(nn.Module):
    """D_k (k < K): ``(h, LevelCondition(l_k, labels)) -> scores (N,)``.

    Input ``h + l_k`` (``combine="add"``, the paper's) or ``[h, l_k]`` (``"concat"``) [+ a label
    plane]; conv 3x3 + LeakyReLU(0.2), then conv 4x4 stride 2 [+ BatchNorm] + LeakyReLU doubling the
    channels while both sides are even and above 8, [dropout], a linear score. Without BatchNorm this
    D stayed at chance on a CPU budget (Fashion-MNIST level 1); turn it off for per-sample penalties.
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
        cond = _as_condition(y, "LAPGAN level discriminator")
        planes = [x + cond.image] if self.combine == "add" else [x, cond.image]
        if self.num_classes:
            if cond.labels is None:
                raise ValueError("LAPGAN level discriminator: conditional level called without labels")
            planes.append(self.embed(cond.labels).reshape(x.shape[0], 1, *x.shape[2:]).to(x.dtype))
        return self.head(self.trunk(torch.cat(planes, dim=1)).flatten(1)).flatten()


class CoarseGenerator(mlp.Generator):
    """G_K: gan_cli.models.mlp.Generator of I_K, ``conditional`` None = when the data have labels."""

    def __init__(self, *, z_dim: int, data_shape: Sequence[int], num_classes: int = 0, bounded: bool = True,
                 hidden: Sequence[int] = (512, 512), activation: str = "relu", batch_norm: bool = False,
                 conditional: bool | None = None) -> None:
        used = _use_labels(conditional, num_classes, "LAPGAN coarse generator")
        super().__init__(z_dim=z_dim, data_shape=tuple(data_shape), num_classes=used, bounded=bounded,
                         hidden=list(hidden), activation=activation, batch_norm=batch_norm,
                         conditional=used > 0)


class CoarseDiscriminator(mlp.Discriminator):
    """D_K: gan_cli.models.mlp.Discriminator of I_K, ``conditional`` None = when the data have labels."""

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 hidden: Sequence[int] = (512, 512), activation: str = "leaky_relu", dropout: float = 0.0,
                 conditional: bool | None = None) -> None:
        used = _use_labels(conditional, num_classes, "LAPGAN coarse discriminator")
        super().__init__(data_shape=tuple(data_shape), num_classes=used, output=output, hidden=list(hidden),
                         activation=activation, dropout=dropout, conditional=used > 0)


class LAPGANCascade(nn.Module):
    """``[G_0, ..., G_K]`` (finest first) chained into one generator ``(z, labels) -> (N, *data_shape)``.

    ``z`` is ``[skip, z_0, ..., z_K]``: the first ``skip_z_dim`` entries belong to finer levels not
    trained yet and are ignored. ``frozen_coarse``: ``train(True)`` leaves the coarser levels in eval
    mode (a cascade in training).
    """

    default_metrics = ("lapgan_levels",)

    def __init__(self, generators: Sequence[nn.Module], skip_z_dim: int = 0,
                 frozen_coarse: bool = False) -> None:
        super().__init__()
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
        return prepare(k, batch, frozen_generators, levels=self.num_levels)

    def train(self, mode: bool = True) -> LAPGANCascade:
        super().train(mode)
        if mode and self.frozen_coarse:
            for g in self.generators[1:]:
                g.eval()
        return self

    def split_latents(self, z: Tensor) -> list[Tensor]:
        """``z`` (N, z_dim) -> ``[z_0, ..., z_K]`` (after ``skip_z_dim``)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            skip = f"{self.skip_z_dim} skipped + " if self.skip_z_dim else ""
            raise ValueError(f"LAPGANCascade: z must be (N, {self.z_dim}) = {skip}the levels' {self.z_dims}, "
                             f"got {tuple(z.shape)}")
        return list(torch.split(z[:, self.skip_z_dim:], self.z_dims, dim=1))

    def levels(self, z: Tensor, y: Tensor | None = None) -> list[tuple[Tensor, Tensor]]:
        """Per level, coarsest first, the image and its generated high-pass:
        ``[(I~_K, I~_K), (I~_{K-1}, h~_{K-1}), ..., (I~_0, h~_0)]``."""
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
        return self.levels(z, y)[-1][0]
