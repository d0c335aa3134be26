"""Image pyramids: LAPGAN's Gaussian/Laplacian pyramid (Denton et al. 2015) and SinGAN's scales
(Shaham et al. 2019). Data (single_image) and models (lapgan, singan) both import them from here.

LAPGAN: ``I_{k+1} = d(I_k)``, ``h_k = I_k - u(I_{k+1})``, ``h_K = I_K``; level 0 is the full
resolution. ``d`` blurs with [1, 3, 3, 1] / 8 and keeps every other pixel (border taps dropped and
renormalised); ``u`` is bilinear x 2 with half-pixel centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------------
# LAPGAN


def downsample(x: Tensor) -> Tensor:
    """``d``: (N, C, H, W) with even H, W -> (N, C, H/2, W/2), blurred by [1, 3, 3, 1] / 8."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"a Laplacian pyramid level needs even sides to halve, got {h}x{w}")
    return F.interpolate(x, size=(h // 2, w // 2), mode="bilinear", align_corners=False, antialias=True)


def upsample(x: Tensor) -> Tensor:
    """``u``: (N, C, H, W) -> (N, C, 2H, 2W), bilinear (half-pixel centres, borders repeated)."""
    h, w = x.shape[-2:]
    return F.interpolate(x, size=(2 * h, 2 * w), mode="bilinear", align_corners=False)


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[I_0 = x, d(I_0), ..., I_{levels-1}]``, finest first."""
    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(downsample(pyr[-1]))
    return pyr


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[h_0, ..., h_{K-1}, I_K]`` with ``h_k = I_k - u(I_{k+1})``, K = levels - 1."""
    gauss = gaussian_pyramid(x, levels)
    return [gauss[k] - upsample(gauss[k + 1]) for k in range(levels - 1)] + [gauss[-1]]


def reconstruct(pyramid: Sequence[Tensor]) -> Tensor:
    """Invert ``laplacian_pyramid``: ``I_k = u(I_{k+1}) + h_k`` from ``I_K`` down to ``I_0``."""
    image = pyramid[-1]
    for h in reversed(pyramid[:-1]):
        image = upsample(image) + h
    return image


def level_shapes(data_shape: Sequence[int], levels: int) -> list[tuple[int, int, int]]:
    """One sample's (C, H_k, W_k) at every level, finest first; ValueError if a side cannot halve."""
    if len(tuple(data_shape)) != 3:
        raise ValueError(f"LAPGAN needs image data (C, H, W), got data_shape {tuple(data_shape)}")
    c, h, w = (int(s) for s in data_shape)
    shapes = [(c, h, w)]
    for _ in range(levels - 1):
        if h % 2 or w % 2 or h < 4 or w < 4:
            raise ValueError(
                f"{data_shape[1]}x{data_shape[2]} images cannot be halved {levels - 1} times "
                f"(reached {h}x{w}); use fewer levels, e.g. 3 for 28 -> 14 -> 7 or 32 -> 16 -> 8"
            )
        h, w = h // 2, w // 2
        shapes.append((c, h, w))
    return shapes


# --------------------------------------------------------------------------------------------
# SinGAN


def scale_sizes(height: int, width: int, min_size: int = 25, max_size: int = 250,
                factor: float = 0.75) -> list[tuple[int, int]]:
    """Every scale's (H, W), coarsest first (SinGAN's rule, the paper's min 25, max 250, r ~ 0.75).

    The image is shrunk to a longer side <= max_size (never enlarged); with
    ``N = ceil(log(min_size / shorter) / log(factor))`` steps, ``r = (min_size / shorter) ** (1 / N)``
    and scale n is ``round(side * r ** (N - n))``, so the coarsest shorter side is min_size exactly.
    """
    shrink = min(max_size / max(height, width), 1.0)
    fine_h, fine_w = round(height * shrink), round(width * shrink)
    shorter = min(fine_h, fine_w)
    if shorter <= min_size:
        return [(fine_h, fine_w)]
    steps = math.ceil(math.log(min_size / shorter) / math.log(factor))
    r = (min_size / shorter) ** (1.0 / steps)
    return [(round(fine_h * r ** (steps - n)), round(fine_w * r ** (steps - n))) for n in range(steps + 1)]


def resize_image(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bicubic resize of (N, C, H, W) to ``size`` = (H', W') (antialiased when shrinking); same size: x."""
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)


def image_pyramid(x: Tensor, sizes: Sequence[Sequence[int]]) -> list[Tensor]:
    """The image at every size of ``sizes``, ``resize_image`` clamped to [-1, 1]."""
    return [resize_image(x, s).clamp(-1.0, 1.0) for s in sizes]
