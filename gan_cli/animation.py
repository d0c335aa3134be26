"""Animations: frames (uint8 images) written as an animated GIF with imageio, and as an MP4 where
imageio's ffmpeg plugin is installed (``pip install imageio-ffmpeg``).

Used by gan-sample's latent walks (gan_cli/sample.py) and by the 2D training view, whose GIF is
made from the run's sample figures (``samples/step_*.png``) at every sample interval.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("gan_cli")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1], (N, C, H, W) -> uint8 (N, H, W, C), rounded as torchvision's save_image
    rounds (so a PNG written either way holds the same bytes).

    Args:
        images: float images, values in [-1, 1] (clamped outside).

    Returns:
        uint8 tensor (N, H, W, C) on the CPU.
    """
    x = images.detach().to("cpu", torch.float32)
    x = x.add(1.0).mul(0.5).mul(255.0).add(0.5).clamp(0.0, 255.0).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous()


def write_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 8.0) -> Path:
    """Write ``frames`` (each (H, W, 3) or (H, W) uint8, all one size) as a looping animated GIF.

    Args:
        frames: the frames, first to last.
        path: the .gif file.
        fps: frames per second (the GIF stores a per-frame duration in milliseconds).

    Returns:
        The path written.
    """
    import imageio.v3 as iio

    if len(frames) == 0:
        raise ValueError("no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stack = np.stack([rgb_frame(f) for f in frames])
    iio.imwrite(path, stack, extension=".gif", duration=1000.0 / fps, loop=0)
    return path


def can_write_mp4() -> bool:
    """Whether imageio's ffmpeg plugin (the imageio-ffmpeg package) is installed."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def write_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float = 8.0) -> Path | None:
    """Write ``frames`` as an H.264 MP4 when imageio-ffmpeg is installed; None (with a note) when not.

    Sides are padded to even numbers (H.264's 4:2:0 chroma needs them) with the frame's edge.
    """
    if not can_write_mp4():
        log.info("no MP4 for %s: install imageio-ffmpeg (pip install imageio-ffmpeg) for one", path)
        return None
    import imageio.v2 as iio2

    path = Path(path)
    stack = np.stack([rgb_frame(f) for f in frames])
    pad_h, pad_w = stack.shape[1] % 2, stack.shape[2] % 2
    if pad_h or pad_w:
        stack = np.pad(stack, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    iio2.mimwrite(path, list(stack), fps=fps, macro_block_size=1)
    return path


def gif_of_pngs(paths: Sequence[Path], out: str | Path, fps: float = 4.0) -> Path | None:
    """An animated GIF of PNG files (the run's sample figures, in order); None when there are none.

    Frames of another size than the first (a figure drawn by another version) are left out.
    """
    import imageio.v3 as iio

    frames = [rgb_frame(iio.imread(p)) for p in paths]
    if not frames:
        return None
    frames = [f for f in frames if f.shape == frames[0].shape]
    return write_gif(frames, out, fps)


def rgb_frame(frame: np.ndarray) -> np.ndarray:
    """A frame as (H, W, 3) uint8: grey repeated, alpha dropped."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    return np.ascontiguousarray(frame[:, :, :3])
