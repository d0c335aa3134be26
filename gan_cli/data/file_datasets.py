"""Map-style datasets of image files, read by a DataLoader (or loaded whole when in_memory)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from gan_cli.data.files import short_error, shown_path
from gan_cli.errors import RuntimeFailure

log = logging.getLogger("gan_cli")


def image_transform(resolution: int):
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(resolution, antialias=True),
            transforms.CenterCrop(resolution),
            transforms.PILToTensor(),
        ]
    )


class BadImageFile(RuntimeFailure):
    """An image file that cannot be decoded (dataset.on_bad_file=stop); names the file."""


def reraise_bad_file(exc: BadImageFile) -> None:
    """A BadImageFile raised in a DataLoader worker reaches the main process with the worker's
    traceback in its message; raise it again as the one line that names the file."""
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    last = lines[-1] if lines else str(exc)
    prefix = f"{BadImageFile.__module__}.{BadImageFile.__name__}: "
    for p in (prefix, f"{BadImageFile.__name__}: "):
        if last.startswith(p):
            last = last[len(p):]
    raise BadImageFile(last) from None


class ImageFileDataset(torch.utils.data.Dataset):
    """Image files -> (uint8 (channels, resolution, resolution), label); label -1 = unlabelled.

    A file that cannot be decoded (corrupt, truncated, not an image, or a decompression bomb that
    PIL refuses) stops the run with one message naming it (``on_bad_file="stop"``), or is replaced
    by the next readable file of the list, with a warning naming it (``"skip"``): the
    replacement depends only on the index, so the data order stays deterministic and a resumed
    run reads exactly what the straight run read.
    """

    def __init__(self, files: Sequence[Path], resolution: int, channels: int,
                 labels: Sequence[int] | None = None, on_bad_file: str = "stop") -> None:
        if on_bad_file not in ("stop", "skip"):
            raise ValueError(f"on_bad_file must be 'stop' or 'skip', got {on_bad_file!r}")
        self.files = list(files)
        self.resolution = resolution
        self.channels = channels
        self.labels = None if labels is None else list(labels)
        self.on_bad_file = on_bad_file
        self._transform = None
        self._warned: set[Path] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        for j in range(len(self.files)):  # skip mode: the next readable file
            k = (i + j) % len(self.files)
            x = self._read(self.files[k])
            if x is not None:
                return x, (-1 if self.labels is None else self.labels[k])
        raise BadImageFile(f"no file of the dataset can be read as an image "
                           f"(e.g. {shown_path(self.files[i])})")

    def _read(self, path: Path) -> torch.Tensor | None:
        from PIL import Image

        if self._transform is None:
            self._transform = image_transform(self.resolution)
        try:
            with Image.open(path) as img:
                img = img.convert("L" if self.channels == 1 else "RGB")
                return self._transform(img)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            message = f"cannot read image {shown_path(path)}: {short_error(exc)}"
            if self.on_bad_file == "stop":
                raise BadImageFile(f"{message}; fix or remove the file, or set "
                                   f"dataset.on_bad_file=skip to train on without it") from None
            if path not in self._warned:
                self._warned.add(path)
                log.warning("%s; skipped (dataset.on_bad_file=skip)", message)
            return None


class PILDataset(torch.utils.data.Dataset):
    """A torchvision dataset of PIL images (e.g. LSUN) -> (uint8 tensor, -1)."""

    def __init__(self, base, resolution: int, channels: int) -> None:
        self.base = base
        self.resolution = resolution
        self.channels = channels
        self._transform = None

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        if self._transform is None:
            self._transform = image_transform(self.resolution)
        img = self.base[i][0].convert("L" if self.channels == 1 else "RGB")
        return self._transform(img), -1


class TensorDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int):
        return self.images[i], (-1 if self.labels is None else int(self.labels[i]))


def load_all(dataset: torch.utils.data.Dataset, num_workers: int) -> torch.Tensor:
    """Read a whole map-style dataset into one uint8 tensor (for in_memory: true)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=False,
                                         num_workers=num_workers)
    return torch.cat([x for x, _ in loader], dim=0)
