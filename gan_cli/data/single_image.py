"""One image as a dataset at SinGAN's scales (Shaham et al. 2019): a file, or a photograph that
scikit-image ships (no download). ``next()`` gives ``batch_size`` copies of the image at the current
scale (``set_stage``; the finest by default) in [-1, 1]; ``scale_shapes`` are every scale's (C, H, W)
coarsest first; SiFID is its default metric.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_cli.data.base import DataInfo
from gan_cli.data.figures import save_image_grid
from gan_cli.data.pyramids import image_pyramid, scale_sizes
from gan_cli.errors import ConfigError, RuntimeFailure


def _skimage_image(name: str) -> np.ndarray:
    """A photograph scikit-image ships (gan_cli.config.data.SKIMAGE_IMAGES: the schema checks the name)."""
    try:
        import skimage.data
    except ImportError as exc:
        raise RuntimeFailure("the default single image comes from scikit-image: pip install scikit-image, "
                             "or set dataset.path to an image file") from exc
    return getattr(skimage.data, name)()


def _read_file(path: str | Path, read: Any) -> Any:
    """``read(image)`` of the PIL image at ``path``; RuntimeFailure when missing or unreadable."""
    from PIL import Image

    file = Path(path).expanduser()
    if not file.is_file():
        raise RuntimeFailure(f"dataset.path={file}: no such image file")
    try:
        with Image.open(file) as im:
            return read(im)
    except OSError as exc:
        raise RuntimeFailure(f"dataset.path={file}: not a readable image ({exc})") from exc


def image_size(path: str | Path | None = None, name: str = "rocket") -> tuple[int, int]:
    """The (H, W) of the image ``load_image(path, name)`` loads (a file's header only is read)."""
    if path is None:
        return tuple(_skimage_image(name).shape[:2])  # type: ignore[return-value]
    width, height = _read_file(path, lambda im: im.size)
    return height, width


def image_scale_sizes(path: str | Path | None = None, name: str = "rocket", max_size: int = 250,
                      min_size: int = 25, scale_factor: float = 0.75) -> list[tuple[int, int]]:
    """Every scale's (H, W) of that image, coarsest first (what SinGAN's stages build networks for)."""
    return scale_sizes(*image_size(path, name), min_size, max_size, scale_factor)


def load_image(path: str | Path | None = None, name: str = "rocket", channels: int = 3) -> torch.Tensor:
    """The image file ``path`` (None: scikit-image's ``name``) as float32 (1, channels, H, W) in [-1, 1];
    channels 3 (grey repeated) or 1 (the mean of R, G and B)."""
    array = _skimage_image(name) if path is None else _read_file(path, lambda im: np.array(im.convert("RGB")))
    x = torch.from_numpy(np.ascontiguousarray(array)).float()
    x = x[None, None] if x.dim() == 2 else x[None].permute(0, 3, 1, 2)[:, :3]
    x = x / 127.5 - 1.0
    if channels == 1 and x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif channels == 3 and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


class SingleImageSource:
    """A DataSource of ``image`` (1, C, H, W) in [-1, 1] at ``sizes`` (coarsest first): ``pyramid``
    on ``device``, ``scale`` the current one (``next()``'s), ``info`` the finest scale's shape."""

    figure_samples = 8  # samples in a figure unless train.figure_samples says otherwise
    default_metrics: tuple[str, ...] = ("sifid",)  # the single-image FID of samples (metrics/defs/sifid.py)
    metric_options: dict[str, dict] = {}
    num_samples = 1  # one real image

    def __init__(self, image: torch.Tensor, sizes: Sequence[tuple[int, int]], *, batch_size: int,
                 device: str | torch.device = "cpu", name: str = "image") -> None:
        self.device = torch.device(device)
        self.name = name
        self.batch_size = int(batch_size)
        self.sizes = [tuple(s) for s in sizes]
        self.pyramid = [p.to(self.device) for p in image_pyramid(image, self.sizes)]
        c = image.shape[1]
        self.scale_shapes = [(c, h, w) for h, w in self.sizes]
        self.info = DataInfo(shape=self.scale_shapes[-1], num_classes=0, bounded=True)
        self.scale = len(self.sizes) - 1

    @property
    def num_scales(self) -> int:
        return len(self.sizes)

    def set_stage(self, scale: int) -> None:
        """Deliver the image at ``scale`` (0 = coarsest) from now on."""
        if not 0 <= scale < self.num_scales:
            raise ValueError(f"scale {scale} out of range: the image has {self.num_scales} scales")
        self.scale = int(scale)

    def image(self, scale: int | None = None) -> torch.Tensor:
        """The real image (1, C, H, W) at ``scale`` (default: the current one)."""
        return self.pyramid[self.scale if scale is None else scale]

    def next(self) -> tuple[torch.Tensor, None]:
        return self.image().expand(self.batch_size, -1, -1, -1).contiguous(), None

    def real_batches(self, num: int, batch_size: int = 500):
        """The finest image, ``num`` copies in batches (for metrics that want a real set)."""
        for start in range(0, num, batch_size):
            yield self.pyramid[-1].expand(min(batch_size, num - start), -1, -1, -1)

    def fingerprint(self, num: int) -> str:
        """sha256 of the finest image's values and shape (``real_batches`` repeats that image):
        part of the reference-statistics cache key, so another image never reuses its statistics."""
        finest = self.pyramid[-1].detach().to("cpu", torch.float32).contiguous()
        h = hashlib.sha256(str(tuple(finest.shape)).encode())
        h.update(finest.numpy().tobytes())
        return h.hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "single_image", "scale": self.scale, "sizes": [list(s) for s in self.sizes]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if [tuple(s) for s in state["sizes"]] != self.sizes:
            raise ConfigError(f"the checkpoint's image scales {state['sizes']} differ from this image's "
                              f"{self.sizes}: same image and dataset settings needed to resume")
        self.set_stage(int(state["scale"]))

    def save_figure(self, fake: torch.Tensor, path: str | Path, labels: torch.Tensor | None = None) -> None:
        """The real image at the samples' scale first, then the samples."""
        size = tuple(fake.shape[-2:])
        images = fake.detach().float().cpu()
        if size in self.sizes:
            images = torch.cat([self.pyramid[self.sizes.index(size)].cpu(), images])
        save_image_grid(images, path)


def single_image(path: str | None = None, name: str = "rocket", max_size: int = 250, min_size: int = 25,
                 scale_factor: float = 0.75, channels: int = 3, *, batch_size: int = 1,
                 device: str | torch.device = "cpu", seed: int = 0, rank: int = 0,
                 world_size: int = 1) -> SingleImageSource:
    """A ``SingleImageSource`` of the image (keys: conf/dataset/single_image.yaml); every rank sees it."""
    del seed, rank, world_size  # one deterministic image: nothing to shuffle or share
    image = load_image(path, name, channels)
    sizes = image_scale_sizes(path, name, max_size, min_size, scale_factor)
    return SingleImageSource(image, sizes, batch_size=batch_size, device=device,
                             name=str(path) if path is not None else f"skimage.data.{name}")
