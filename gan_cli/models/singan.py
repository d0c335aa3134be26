"""SinGAN: a pyramid of patch GANs learned from one image (Shaham et al. 2019, "SinGAN: Learning a
Generative Model from a Single Natural Image", ICCV).

Scales. The image is first shrunk so that its longer side is at most ``max_size`` (never enlarged),
giving the finest size (H, W). With ``N = ceil(log(min_size / min(H, W)) / log(factor))``
downscalings, the factor is then adjusted to ``r = (min_size / min(H, W)) ** (1 / N)`` so that the
coarsest shorter side is exactly ``min_size``, and scale n (0 = coarsest, N = finest, the order of
training) has size ``(round(H r^(N-n)), round(W r^(N-n)))`` (``scale_sizes``; the paper: min 25,
max 250, r ~ 0.75; an image with shorter side <= min_size has one scale). Real images at every scale
come from ``resize_image`` (bicubic, antialiased when shrinking), clamped to [-1, 1].

Generator of scale n (``ScaleGenerator``), residual:

    x~_n = y + g_n(sigma_n z_n + y),    y = up(x~_{n-1}) (0 at the coarsest scale)

``g_n``: ``depth`` (5) convolutions 3x3, each but the last followed by BatchNorm and
LeakyReLU(0.2), the last by tanh on bounded data; the input is zero-padded once by
``depth * (kernel_size // 2)`` pixels (5) so that the output has the input's size (the official
code's padding). Channels: ``width`` (32)
doubled every ``grow_every`` (4) scales, at most ``max_width`` (128): ``scale_width``. ``up`` is
``resize_image`` to the next scale's size. ``z_n`` ~ N(0, I) is a noise map of the image's shape;
``sigma_n`` is the buffer ``noise_amp``.

Discriminator of scale n (``ScaleDiscriminator``): a Markovian patch discriminator of the same depth
and width, without padding, so each of its (H - 10) x (W - 10) outputs judges one 11 x 11 patch;
the score of an image is the mean over its patches (for the WGAN loss, the same as the paper's mean
over the patch map). The paper trains each scale with WGAN-GP plus the reconstruction loss below;
its code penalises, at every pixel, the norm over channels of the gradient of the *sum* of the
patch scores (``gan_cli.losses.patch_gradient_penalty``, lambda = 0.1): loss ``SinGANWGANGP``. The
repo's ``WGANGP`` instead pulls the whole-image gradient of the mean score to norm 1, which lets the
critic be about sqrt(H W) times steeper and its scores outweigh the reconstruction term.

Reconstruction. A noise map ``z*`` is drawn once at the coarsest scale (buffer ``z_rec`` of G_0;
the finer generators hold zeros there), and ``x^rec_n = G_n(z_rec_n, up(x^rec_{n-1}))`` must
reproduce the image: ``L_rec = alpha ||x^rec_n - x_n||^2`` (mean squared error, alpha = 10), the
regulariser ``gan_cli.losses.SinGANReconstruction``. Noise amplitude (``noise_amplitude``):
``sigma_0 = 1`` and ``sigma_n = 0.1 * RMSE(up(x^rec_{n-1}), x_n)`` for n > 0, set when scale n starts
(``SinGANCascade.begin_scale``), so the noise is as strong as the detail the coarser scales miss.

Sampling (``SinGANCascade``): noise maps of the training sizes (``forward``, from a flat latent
``(N, z_dim)`` that is their concatenation) or of other sizes and aspect ratios (``sample(n,
scale_h, scale_w)``: every scale's size scaled, starting at the coarsest with noise of that shape).

Training: gan_cli/models/stages.py (``SinGANStages``) makes the scales the training loop's stages,
coarse to fine (``model=singan dataset=single_image``), and calls ``begin_scale`` as each starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.data.base import Batch
from gan_cli.models.layers import image_shape, positive_int

__all__ = [
    "ScaleDiscriminator", "ScaleGenerator", "SinGANCascade", "image_pyramid", "init_from_previous",
    "noise_amplitude", "prepare", "resize_image", "scale_sizes", "scale_width",
]


# --------------------------------------------------------------------------------------------
# Scales and resizing


def scale_sizes(height: int, width: int, min_size: int = 25, max_size: int = 250,
                factor: float = 0.75) -> list[tuple[int, int]]:
    """The (H, W) of every scale, coarsest first (see the module docstring for the rule).

    Args:
        height, width: the image's size (px).
        min_size: the coarsest scale's shorter side (px).
        max_size: the finest scale's longer side at most (px); smaller images are not enlarged.
        factor: the nominal ratio between neighbouring scales, in (0, 1); the one used is adjusted
            so that the coarsest shorter side is ``min_size`` exactly.

    Returns:
        ``[(H_0, W_0), ..., (H_N, W_N)]``; the last is the finest.

    Raises:
        ValueError: non-positive sizes, ``min_size > max_size`` or ``factor`` outside (0, 1).
    """
    if min(height, width, min_size, max_size) < 1:
        raise ValueError(f"sizes must be positive, got image {height}x{width}, min_size {min_size}, "
                         f"max_size {max_size}")
    if min_size > max_size:
        raise ValueError(f"min_size ({min_size}) must be <= max_size ({max_size})")
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor}")
    shrink = min(max_size / max(height, width), 1.0)
    fine_h, fine_w = round(height * shrink), round(width * shrink)
    shorter = min(fine_h, fine_w)
    if shorter <= min_size:
        return [(fine_h, fine_w)]
    steps = math.ceil(math.log(min_size / shorter) / math.log(factor))
    r = (min_size / shorter) ** (1.0 / steps)
    return [(round(fine_h * r ** (steps - n)), round(fine_w * r ** (steps - n))) for n in range(steps + 1)]


def scale_width(scale: int, width: int = 32, grow_every: int = 4, max_width: int = 128) -> int:
    """Channels at scale n: ``min(width * 2 ** (n // grow_every), max_width)`` (32, 32, 32, 32, 64, ...)."""
    return min(width * 2 ** (scale // grow_every), max_width)


def resize_image(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bicubic resize of (N, C, H, W) to ``size`` = (H', W') (antialiased when shrinking); same size: x."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def image_pyramid(x: Tensor, sizes: Sequence[Sequence[int]]) -> list[Tensor]:
    """The real image at every scale: ``resize_image(x, size)`` clamped to [-1, 1], in ``sizes``' order."""
    return [resize_image(x, s).clamp(-1.0, 1.0) for s in sizes]


def noise_amplitude(rec_up: Tensor, real: Tensor, init: float = 0.1) -> Tensor:
    """``sigma_n = init * sqrt(mean((up(x^rec_{n-1}) - x_n)^2))``, a 0-dim tensor.

    Args:
        rec_up: the coarser scale's reconstruction resized to this scale, (1 or N, C, H, W).
        real: the real image at this scale, broadcastable with ``rec_up``.
        init: the paper's 0.1.
    """
    return init * (rec_up - real).square().mean().sqrt()


# --------------------------------------------------------------------------------------------
# Networks


def _conv_stack(c_in: int, ch: int, c_out: int, depth: int, kernel_size: int,
                batch_norm: bool) -> list[nn.Module]:
    """``depth`` valid convolutions; every one but the last followed by [BatchNorm] + LeakyReLU(0.2)."""
    layers: list[nn.Module] = []
    for i in range(depth - 1):
        layers.append(nn.Conv2d(c_in if i == 0 else ch, ch, kernel_size, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(ch))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    layers.append(nn.Conv2d(ch, c_out, kernel_size))
    return layers


def _init(module: nn.Module) -> None:
    """The official code's init: convolutions N(0, 0.02), BatchNorm gains N(1, 0.02), biases 0."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _check_common(data_shape: Sequence[int], depth: int, kernel_size: int, who: str) -> tuple[int, int, int]:
    shape = image_shape(data_shape, who)
    if positive_int(depth, "depth", who) < 2:
        raise ValueError(f"{who}: depth must be >= 2, got {depth}")
    if positive_int(kernel_size, "kernel_size", who) % 2 == 0:
        raise ValueError(f"{who}: kernel_size must be odd, got {kernel_size}")
    return shape


class ScaleGenerator(nn.Module):
    """G_n: ``(z_n, y = up(x~_{n-1})) -> y + g_n(noise_amp * z_n + y)``.

    Args:
        data_shape: this scale's (C, H_n, W_n).
        z_dim: None or C * H_n * W_n (the flat size of a training-size noise map).
        num_classes: accepted for the common contract; SinGAN is unconditional (``num_classes`` 0).
        bounded: tanh at the end of ``g_n`` (the residual added to y).
        scale: n, 0 = coarsest: sets the channels (``scale_width``) and, at 0, draws ``z*``.
        width, grow_every, max_width: the channel schedule (paper: 32, every 4 scales, 128).
        depth: convolutions (paper: 5); kernel_size: their odd side (paper: 3).
        batch_norm: BatchNorm after every hidden convolution (the paper's code).

    Buffers (in the state dict):
        noise_amp: sigma_n, 0-dim; 1 until ``SinGANCascade.begin_scale`` sets it.
        z_rec: (1, C, H_n, W_n), the reconstruction noise: ``z*`` ~ N(0, I) at scale 0, zeros above.

    Attributes:
        takes_condition: True: the training step passes the batch's condition ``y`` (the upsampled
            coarser sample; zeros at scale 0).
    """

    takes_condition = True

    def __init__(self, *, data_shape: Sequence[int], z_dim: int | None = None, num_classes: int = 0,
                 bounded: bool = True, scale: int = 0, width: int = 32, grow_every: int = 4,
                 max_width: int = 128, depth: int = 5, kernel_size: int = 3, batch_norm: bool = True) -> None:
        super().__init__()
        who = "SinGAN generator"
        c, h, w = _check_common(data_shape, depth, kernel_size, who)
        if z_dim is not None and z_dim != c * h * w:
            raise ValueError(f"{who}: z_dim is the flat size of this scale's noise map, {c}*{h}*{w} = "
                             f"{c * h * w}; got {z_dim} (leave it unset)")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 0:
            raise ValueError(f"{who}: scale must be an integer >= 0, got {scale!r}")
        self.data_shape = (c, h, w)
        self.z_dim = c * h * w
        self.num_classes = 0
        self.bounded = bool(bounded)
        self.scale = scale
        self.channels = scale_width(scale, positive_int(width, "width", who),
                                    positive_int(grow_every, "grow_every", who),
                                    positive_int(max_width, "max_width", who))
        self.pad = depth * (kernel_size // 2)
        layers = _conv_stack(c, self.channels, c, depth, kernel_size, batch_norm)
        if self.bounded:
            layers.append(nn.Tanh())
        self.body = nn.Sequential(*layers)
        self.apply(_init)
        self.register_buffer("noise_amp", torch.tensor(1.0))
        z_rec = torch.randn(1, c, h, w) if scale == 0 else torch.zeros(1, c, h, w)
        self.register_buffer("z_rec", z_rec)

    def noise_map(self, z: Tensor) -> Tensor:
        """``z`` as a map: (N, C' , h, w) as it is; a flat (N, z_dim) reshaped to this scale's shape."""
        if z.dim() == 4:
            return z
        if z.dim() == 2 and z.shape[1] == self.z_dim:
            return z.reshape(z.shape[0], *self.data_shape)
        raise ValueError(f"SinGAN generator: z must be a noise map (N, C, H, W) or (N, {self.z_dim}), "
                         f"got {tuple(z.shape)}")

    def forward(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """One scale's image.

        Args:
            z: a noise map (N, C or 1, H, W) of any size, or (N, z_dim) for the training size.
            y: the upsampled coarser image (N, C, H, W) of the noise map's size; None = zeros.

        Returns:
            (N, C, H, W).
        """
        z = self.noise_map(z)
        if y is None:
            y = z.new_zeros(z.shape[0], self.data_shape[0], *z.shape[2:])
        x = self.noise_amp.to(z.dtype) * z + y
        return y + self.body(F.pad(x, (self.pad,) * 4))


class ScaleDiscriminator(nn.Module):
    """D_n: a patch discriminator; ``forward`` gives the mean patch score per image.

    Args:
        data_shape: this scale's (C, H_n, W_n); both sides must be at least the patch side.
        num_classes: accepted for the common contract; labels are ignored.
        output: only ``"score"``.
        scale, width, grow_every, max_width, depth, kernel_size, batch_norm: as ``ScaleGenerator``.

    Attributes:
        patch_size: the side of the patch each output judges, ``depth * (kernel_size - 1) + 1`` (11).
        takes_condition: True: the step calls ``D(x, y)`` with G's condition, which D ignores.
    """

    takes_condition = True

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 scale: int = 0, width: int = 32, grow_every: int = 4, max_width: int = 128, depth: int = 5,
                 kernel_size: int = 3, batch_norm: bool = True) -> None:
        super().__init__()
        who = "SinGAN discriminator"
        c, h, w = _check_common(data_shape, depth, kernel_size, who)
        if output != "score":
            raise ValueError(f"{who}: only output='score' is supported, got {output!r}")
        self.patch_size = depth * (kernel_size - 1) + 1
        if min(h, w) < self.patch_size:
            p = self.patch_size
            raise ValueError(f"{who}: a {h}x{w} image is smaller than the {p}x{p} patch; raise min_size "
                             "or lower depth")
        self.data_shape = (c, h, w)
        self.num_classes = 0
        self.channels = scale_width(scale, positive_int(width, "width", who),
                                    positive_int(grow_every, "grow_every", who),
                                    positive_int(max_width, "max_width", who))
        self.body = nn.Sequential(*_conv_stack(c, self.channels, 1, depth, kernel_size, batch_norm))
        self.apply(_init)

    def patch_count(self, height: int, width: int) -> int:
        """How many patches (outputs) an image of ``height`` x ``width`` has."""
        return (height - self.patch_size + 1) * (width - self.patch_size + 1)

    def patch_scores(self, x: Tensor) -> Tensor:
        """One raw score per patch: (N, 1, H - patch_size + 1, W - patch_size + 1)."""
        return self.body(x)

    def forward(self, x: Tensor, y: Any = None) -> Tensor:
        """Raw scores (N,): the mean of each image's patch scores; ``y`` is ignored."""
        return self.patch_scores(x).mean(dim=(1, 2, 3))


def init_from_previous(current: nn.Module, previous: nn.Module) -> bool:
    """Start scale n's network from scale n-1's weights when their shapes agree (the paper's code).

    Parameters and BatchNorm statistics are copied; ``noise_amp`` and ``z_rec`` are not.

    Returns:
        True when copied, False when the widths (or anything else) differ and nothing was copied.
    """
    skip = ("noise_amp", "z_rec")
    src = {k: v for k, v in previous.state_dict().items() if k not in skip}
    dst = {k: v for k, v in current.state_dict().items() if k not in skip}
    if src.keys() != dst.keys() or any(src[k].shape != dst[k].shape for k in src):
        return False
    with torch.no_grad():
        for k, v in dst.items():
            v.copy_(src[k])
    return True


# --------------------------------------------------------------------------------------------
# The multi-scale model


def _sample_chain(generators: Sequence[nn.Module], noise: Sequence[Tensor]) -> list[Tensor]:
    """Run the generators from the coarsest: scale n gets ``noise[n]`` and up(scale n-1's output)."""
    outputs: list[Tensor] = []
    for n, (g, z) in enumerate(zip(generators, noise, strict=False)):
        y = None if n == 0 else resize_image(outputs[-1], z.shape[-2:])
        outputs.append(g(z, y))
    return outputs


def prepare(k: int, batch: Batch, frozen_generators: Sequence[nn.Module], *,
            sizes: Sequence[Sequence[int]]) -> Batch:
    """Scale k's training batch: the real image at scale k and the condition y = up(x~_{k-1}).

    Args:
        k: the scale, 0 = coarsest.
        batch: ``Batch(x)``, the real image at scale k (from ``single_image``) or at any size (it is
            then resized to ``sizes[k]``).
        frozen_generators: G_0 .. G_{k-1} (at least k of them; put them in eval mode), which sample
            ``x~_{k-1}`` from fresh N(0, I) noise maps (torch's random stream on x's device).
        sizes: every scale's (H, W), coarsest first.

    Returns:
        ``Batch(x_k, y)`` with y (N, C, H_k, W_k): zeros at k = 0, else one random sample of the
        coarser scales per real image, resized to scale k.
    """
    x = batch.x
    if tuple(x.shape[-2:]) != tuple(sizes[k]):
        x = resize_image(x, sizes[k]).clamp(-1.0, 1.0)
    if k == 0:
        return Batch(x, torch.zeros_like(x))
    if len(frozen_generators) < k:
        raise ValueError(f"scale {k} needs the {k} coarser generators, got {len(frozen_generators)}")
    n, c = x.shape[:2]
    with torch.no_grad():
        noise = [torch.randn(n, c, *sizes[i], device=x.device, dtype=x.dtype) for i in range(k)]
        coarser = _sample_chain(frozen_generators[:k], noise)[-1]
        y = resize_image(coarser, sizes[k])
    return Batch(x, y)


class SinGANCascade(nn.Module):
    """All scales' generators as one generator, plus the reconstruction path and each scale's start.

    Args:
        generators: ``[G_0, ..., G_N]``, coarsest first (``ScaleGenerator``s). During training the
            cascade holds the scales trained so far, so its samples are at the finest of those.
        skip_z_dim: latent entries at the end of ``z`` that belong to finer scales not in this
            cascade (not trained yet); they are ignored, so that one latent gives the same coarse
            samples before and after the finer scales join.
        frozen_coarse: the scales below the finest one here are frozen (a cascade in training):
            ``train(True)`` puts only the finest generator in training mode, the others stay in
            eval mode (their BatchNorm statistics must not move while they only sample).

    Attributes:
        sizes: every scale's training (H, W), coarsest first.
        z_dims: every scale's flat noise size; ``z_dim``: their sum plus ``skip_z_dim``
            (``forward``'s latent size).
        data_shape: the finest scale's (C, H, W); ``num_classes``: 0.
        default_metrics: what gan-eval adds to the data's metrics: the sample figures.
    """

    default_metrics = ("singan_figures",)

    def __init__(self, generators: Sequence[ScaleGenerator], skip_z_dim: int = 0,
                 frozen_coarse: bool = False) -> None:
        super().__init__()
        if len(generators) == 0:
            raise ValueError("SinGANCascade needs at least one generator")
        if isinstance(skip_z_dim, bool) or not isinstance(skip_z_dim, int) or skip_z_dim < 0:
            raise ValueError(f"SinGANCascade: skip_z_dim must be an integer >= 0, got {skip_z_dim!r}")
        self.generators = nn.ModuleList(generators)
        self.sizes = [tuple(g.data_shape[1:]) for g in generators]
        self.z_dims = [int(g.z_dim) for g in generators]
        self.skip_z_dim = skip_z_dim
        self.z_dim = sum(self.z_dims) + skip_z_dim
        self.frozen_coarse = bool(frozen_coarse)
        self.data_shape = tuple(generators[-1].data_shape)
        self.num_classes = 0

    @property
    def num_scales(self) -> int:
        return len(self.generators)

    def train(self, mode: bool = True) -> SinGANCascade:
        """As ``nn.Module.train``; with ``frozen_coarse``, ``train(True)`` leaves the coarser scales
        in eval mode (only the finest scale here is being trained)."""
        super().train(mode)
        if mode and self.frozen_coarse:
            for g in self.generators[:-1]:
                g.eval()
        return self

    def split_latents(self, z: Tensor) -> list[Tensor]:
        """A flat ``(N, z_dim)`` latent -> every scale's noise map at its training size (the last
        ``skip_z_dim`` entries ignored)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"SinGANCascade: z must be (N, {self.z_dim}), got {tuple(z.shape)}")
        parts = torch.split(z[:, : z.shape[1] - self.skip_z_dim], self.z_dims, dim=1)
        return [p.reshape(z.shape[0], *g.data_shape) for p, g in zip(parts, self.generators, strict=True)]

    def run(self, noise: Sequence[Tensor]) -> list[Tensor]:
        """Every scale's output for the given noise maps (any sizes; ``len(noise)`` scales from 0)."""
        if not 0 < len(noise) <= self.num_scales:
            raise ValueError(f"SinGANCascade: 1 .. {self.num_scales} noise maps, got {len(noise)}")
        return _sample_chain(self.generators, noise)

    def forward(self, z: Tensor, y: Any = None) -> Tensor:
        """Samples at the finest training size (N, *data_shape) from a flat latent; ``y`` is ignored."""
        return self.run(self.split_latents(z))[-1]

    def sample(self, num: int, scale_h: float = 1.0, scale_w: float = 1.0, *, upto: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Random samples at another size or aspect ratio (the paper's figure of retargeted samples).

        Every scale's noise map is that scale's training size times (scale_h, scale_w), rounded, so
        sampling starts at the coarsest scale with noise of the scaled shape.

        Args:
            num: samples.
            scale_h, scale_w: size factors (> 0), e.g. (1, 2) for twice as wide.
            upto: last scale to run (default: the finest).
            generator: random stream for the noise (on the models' device); None = torch's global one.

        Returns:
            (num, C, round(H * scale_h), round(W * scale_w)) at scale ``upto``'s size times the factors.
        """
        if not (scale_h > 0 and scale_w > 0):
            raise ValueError(f"scale factors must be > 0, got {scale_h}, {scale_w}")
        last = self.num_scales - 1 if upto is None else upto
        ref = self.generators[0].z_rec
        noise = [torch.randn(num, self.data_shape[0], max(1, round(h * scale_h)), max(1, round(w * scale_w)),
                             generator=generator, device=ref.device, dtype=ref.dtype)
                 for h, w in self.sizes[: last + 1]]
        return self.run(noise)[-1]

    def reconstruct(self, upto: int) -> Tensor:
        """``x^rec_upto``: the chain fed with the reconstruction noise ``z_rec`` of scales 0 .. upto."""
        return self.run([g.z_rec for g in self.generators[: upto + 1]])[-1]

    def reconstruction_input(self, k: int) -> Tensor:
        """The condition of scale k's reconstruction: ``up(x^rec_{k-1})`` at scale k's size (zeros at 0)."""
        ref = self.generators[k].z_rec
        if k == 0:
            return torch.zeros_like(ref)
        return resize_image(self.reconstruct(k - 1), self.sizes[k])

    def prepare(self, k: int, batch: Batch, frozen_generators: Sequence[nn.Module] | None = None) -> Batch:
        """``prepare(k, batch, frozen_generators or G_0..G_{k-1}, sizes=self.sizes)``."""
        frozen = list(self.generators[:k]) if frozen_generators is None else frozen_generators
        return prepare(k, batch, frozen, sizes=self.sizes)

    @torch.no_grad()
    def begin_scale(self, k: int, real: Tensor, reconstruction: Any = None,
                    noise_amp_init: float = 0.1) -> float:
        """What the loop does when scale k starts (call with G_0 .. G_{k-1} trained and in eval mode).

        Sets ``G_k.noise_amp``: 1 at k = 0, else ``noise_amplitude(up(x^rec_{k-1}), x_k, noise_amp_init)``;
        hands the reconstruction regulariser (``SinGANReconstruction``, if given) its inputs
        ``(G_k.z_rec, up(x^rec_{k-1}))``.

        Args:
            k: the scale about to be trained.
            real: the real image at scale k, (1 or N, C, H_k, W_k).
            reconstruction: an object with ``set_inputs(z, y)``, or None.
            noise_amp_init: the 0.1 of sigma_n's rule.

        Returns:
            sigma_k as a float.
        """
        g = self.generators[k]
        rec_y = self.reconstruction_input(k)
        sigma = torch.ones(()) if k == 0 else noise_amplitude(rec_y, real, noise_amp_init)
        g.noise_amp.fill_(float(sigma))
        if reconstruction is not None:
            reconstruction.set_inputs(g.z_rec, rec_y)
        return float(sigma)
