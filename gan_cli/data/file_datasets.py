"""Map-style datasets of image files, read by a DataLoader (or loaded whole when in_memory)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from gan_cli.data.files import short_error
from gan_cli.errors import RuntimeFailure


def image_transform(resolution: int):
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(resolution, antialias=True),
            transforms.CenterCrop(resolution),
            transforms.PILToTensor(),
        ]
    )


class ImageFileDataset(torch.utils.data.Dataset):
    """Image files -> (uint8 (channels, resolution, resolution), label); label -1 = unlabelled."""

    def __init__(self, files: Sequence[Path], resolution: int, channels: int,
                 labels: Sequence[int] | None = None) -> None:
        self.files = list(files)
        self.resolution = resolution
        self.channels = channels
        self.labels = None if labels is None else list(labels)
        self._transform = None

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        from PIL import Image

        if self._transform is None:
            self._transform = image_transform(self.resolution)
        path = self.files[i]
        try:
            with Image.open(path) as img:
                img = img.convert("L" if self.channels == 1 else "RGB")
                x = self._transform(img)
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"cannot read image {path}: {short_error(exc)}") from None
        return x, (-1 if self.labels is None else self.labels[i])


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
