"""uint8 image tensor helpers applied once at load time: resizing and channel conversion, and the
check of a dataset's split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from gan_cli.errors import ConfigError


def resize_uint8(images: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
    """Square uint8 images (N, C, H, W) -> (N, C, resolution, resolution), once, at load time.

    Non-square images are resized on the shorter side and center-cropped."""
    n, c, h, w = images.shape
    if h == resolution and w == resolution:
        return images
    scale = resolution / min(h, w)
    new_h, new_w = max(resolution, round(h * scale)), max(resolution, round(w * scale))
    down = new_h < h or new_w < w
    top, left = (new_h - resolution) // 2, (new_w - resolution) // 2
    out = torch.empty((n, c, resolution, resolution), dtype=torch.uint8)
    for i in range(0, n, chunk):  # chunks: 60,000 float images at 64x64 would take ~1 GB
        x = images[i : i + chunk].to(torch.float32)
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False,
                          antialias=down)
        x = x[:, :, top : top + resolution, left : left + resolution]
        out[i : i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> `channels` channels (1: luminance, 3: gray replicated)."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 3 and images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and images.shape[1] == 3:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        gray = (images.to(torch.float32) * weights).sum(1, keepdim=True)
        return gray.round_().clamp_(0, 255).to(torch.uint8)
    raise ConfigError(f"cannot convert {images.shape[1]}-channel images to {channels} channels")


def check_split(split: str, allowed: Sequence[str], name: str) -> None:
    if split not in allowed:
        raise ConfigError(
            f"dataset.split={split!r} is not a split of {name}; choose one of {', '.join(allowed)}"
        )
