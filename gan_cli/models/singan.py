"""SinGAN: a pyramid of patch GANs learned from one image (Shaham et al. 2019, ICCV).

Scale n (0 = coarsest; sizes from gan_cli/data/pyramids.py ``scale_sizes``): G_n is residual,
``x~_n = y + g_n(sigma_n z_n + y)`` with ``y = up(x~_{n-1})`` (0 at scale 0), ``g_n`` ``depth``
3x3 convolutions (BatchNorm + LeakyReLU(0.2) between, tanh last on bounded data) on an input
zero-padded by ``depth * (kernel_size // 2)``; D_n is a patch discriminator of the same shape, no
padding, scoring the mean over its 11x11 patches. Widths: ``scale_width``. Reconstruction:
``x^rec_n = G_n(z_rec_n, up(x^rec_{n-1}))`` with ``z*`` fixed at scale 0 and zeros above, and
``sigma_n = 0.1 * RMSE(up(x^rec_{n-1}), x_n)`` (``begin_scale``). Training: gan_cli/models/stages.py;
its loss and patch penalty: gan_cli/losses (``SinGANWGANGP``, ``patch_gradient_penalty``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.data.base import Batch
from gan_cli.data.pyramids import resize_image
from gan_cli.models.layers import image_shape

__all__ = [
    "ScaleDiscriminator", "ScaleGenerator", "SinGANCascade", "init_from_previous", "noise_amplitude",
    "prepare", "scale_width",
]


def scale_width(scale: int, width: int = 32, grow_every: int = 4, max_width: int = 128) -> int:
    """Channels at scale n: ``min(width * 2 ** (n // grow_every), max_width)`` (32, 32, 32, 32, 64, ...)."""
    return min(width * 2 ** (scale // grow_every), max_width)


def noise_amplitude(rec_up: Tensor, real: Tensor, init: float = 0.1) -> Tensor:
    """``sigma_n = init * sqrt(mean((up(x^rec_{n-1}) - x_n)^2))``, a 0-dim tensor."""
    return init * (rec_up - real).square().mean().sqrt()


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


class ScaleGenerator(nn.Module):
    """G_n: ``(z_n, y = up(x~_{n-1})) -> y + g_n(noise_amp * z_n + y)``, (N, C, H, W).

    ``z_dim`` is always C * H_n * W_n (the flat noise map); ``scale`` sets the width and, at 0,
    draws ``z*``. Buffers: ``noise_amp`` (sigma_n, 1 until ``begin_scale``), ``z_rec`` (1, C, H_n, W_n).
    """

    takes_condition = True

    def __init__(self, *, data_shape: Sequence[int], z_dim: int | None = None, num_classes: int = 0,
                 bounded: bool = True, scale: int = 0, width: int = 32, grow_every: int = 4,
                 max_width: int = 128, depth: int = 5, kernel_size: int = 3, batch_norm: bool = True) -> None:
        super().__init__()
        c, h, w = image_shape(data_shape, "SinGAN generator")
        self.data_shape = (c, h, w)
        self.z_dim = c * h * w
        self.num_classes = 0
        self.bounded = bool(bounded)
        self.scale = scale
        self.channels = scale_width(scale, width, grow_every, max_width)
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
        """``z``: a noise map of any size or (N, z_dim); ``y``: up(x~_{n-1}) of its size, None = zeros."""
        z = self.noise_map(z)
        if y is None:
            y = z.new_zeros(z.shape[0], self.data_shape[0], *z.shape[2:])
        x = self.noise_amp.to(z.dtype) * z + y
        return y + self.body(F.pad(x, (self.pad,) * 4))


class ScaleDiscriminator(nn.Module):
    """D_n: raw scores (N,), the mean of the patch scores; ``patch_size`` = depth * (k - 1) + 1."""

    takes_condition = True

    def __init__(self, *, data_shape: Sequence[int], num_classes: int = 0, output: str = "score",
                 scale: int = 0, width: int = 32, grow_every: int = 4, max_width: int = 128, depth: int = 5,
                 kernel_size: int = 3, batch_norm: bool = True) -> None:
        super().__init__()
        who = "SinGAN discriminator"
        c, h, w = image_shape(data_shape, who)
        if output != "score":
            raise ValueError(f"{who}: only output='score' is supported, got {output!r}")
        self.patch_size = depth * (kernel_size - 1) + 1
        if min(h, w) < self.patch_size:
            p = self.patch_size
            raise ValueError(f"{who}: a {h}x{w} image is smaller than the {p}x{p} patch; raise min_size "
                             "or lower depth")
        self.data_shape = (c, h, w)
        self.num_classes = 0
        self.channels = scale_width(scale, width, grow_every, max_width)
        self.body = nn.Sequential(*_conv_stack(c, self.channels, 1, depth, kernel_size, batch_norm))
        self.apply(_init)

    def patch_count(self, height: int, width: int) -> int:
        return (height - self.patch_size + 1) * (width - self.patch_size + 1)

    def patch_scores(self, x: Tensor) -> Tensor:
        """One raw score per patch: (N, 1, H - patch_size + 1, W - patch_size + 1)."""
        return self.body(x)

    def forward(self, x: Tensor, y: Any = None) -> Tensor:
        return self.patch_scores(x).mean(dim=(1, 2, 3))


def init_from_previous(current: nn.Module, previous: nn.Module) -> bool:
    """Copy scale n-1's weights and BatchNorm statistics into scale n when every shape agrees (the
    paper's code; ``noise_amp`` and ``z_rec`` stay); returns whether it copied."""
    skip = ("noise_amp", "z_rec")
    src = {k: v for k, v in previous.state_dict().items() if k not in skip}
    dst = {k: v for k, v in current.state_dict().items() if k not in skip}
    if src.keys() != dst.keys() or any(src[k].shape != dst[k].shape for k in src):
        return False
    with torch.no_grad():
        for k, v in dst.items():
            v.copy_(src[k])
    return True


def _sample_chain(generators: Sequence[nn.Module], noise: Sequence[Tensor]) -> list[Tensor]:
    """Run the generators from the coarsest: scale n gets ``noise[n]`` and up(scale n-1's output)."""
    outputs: list[Tensor] = []
    for n, (g, z) in enumerate(zip(generators, noise, strict=False)):
        y = None if n == 0 else resize_image(outputs[-1], z.shape[-2:])
        outputs.append(g(z, y))
    return outputs


def prepare(k: int, batch: Batch, frozen_generators: Sequence[nn.Module], *,
            sizes: Sequence[Sequence[int]]) -> Batch:
    """Scale k's ``Batch(x_k, y)``: the real image resized to ``sizes[k]`` and y = zeros at k = 0,
    else one sample per image of the frozen G_0 .. G_{k-1} (fresh N(0, I) noise) resized to scale k."""
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
    """``[G_0, ..., G_N]`` (coarsest first) as one generator, plus the reconstruction path.

    ``z`` (N, z_dim) is every scale's flat noise map, then ``skip_z_dim`` ignored entries of the
    finer scales not trained yet. ``frozen_coarse``: ``train(True)`` leaves the coarser scales in
    eval mode. ``sizes``: every scale's (H, W).
    """

    default_metrics = ("singan_figures",)

    def __init__(self, generators: Sequence[ScaleGenerator], skip_z_dim: int = 0,
                 frozen_coarse: bool = False) -> None:
        super().__init__()
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
        super().train(mode)
        if mode and self.frozen_coarse:
            for g in self.generators[:-1]:
                g.eval()
        return self

    def split_latents(self, z: Tensor) -> list[Tensor]:
        """A flat ``(N, z_dim)`` latent -> every scale's noise map at its training size."""
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
        return self.run(self.split_latents(z))[-1]

    def sample(self, num: int, scale_h: float = 1.0, scale_w: float = 1.0, *, upto: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """``num`` samples at scale ``upto``'s (default finest) size times (scale_h, scale_w): every
        scale's noise map scaled so (the paper's retargeting figure); ``generator`` None = global."""
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
        frozen = list(self.generators[:k]) if frozen_generators is None else frozen_generators
        return prepare(k, batch, frozen, sizes=self.sizes)

    @torch.no_grad()
    def begin_scale(self, k: int, real: Tensor, reconstruction: Any = None,
                    noise_amp_init: float = 0.1) -> float:
        """Scale k starts (G_0 .. G_{k-1} trained, in eval mode): set ``G_k.noise_amp`` (1 at k = 0,
        else ``noise_amplitude(up(x^rec_{k-1}), real, noise_amp_init)``), hand ``reconstruction``
        (``set_inputs(z, y)``, or None) ``(G_k.z_rec, up(x^rec_{k-1}))``; returns sigma_k."""
        g = self.generators[k]
        rec_y = self.reconstruction_input(k)
        sigma = torch.ones(()) if k == 0 else noise_amplitude(rec_y, real, noise_amp_init)
        g.noise_amp.fill_(float(sigma))
        if reconstruction is not None:
            reconstruction.set_inputs(g.z_rec, rec_y)
        return float(sigma)
