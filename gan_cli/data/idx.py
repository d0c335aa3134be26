"""Read the IDX files that (Fashion-)MNIST ships as (``*-idx3-ubyte[.gz]``): the project's one
IDX reader, used by the MNIST-like datasets, the feature network's training script and its tests.

Written by hand (a dozen lines of numpy): torchvision's reader sits behind its dataset classes,
which want the files un-gzipped under their own folder layout and checksums.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from gan_cli.errors import DataNotFoundError

#: Where Debian's ``dataset-fashion-mnist`` package puts the four files (gzip-compressed).
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_FASHION_MNIST = DEBIAN_FASHION_MNIST_DIR

#: The four files of an MNIST-like dataset (torchvision's names, un-gzipped).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}

# IDX type codes (third byte of the magic number) -> numpy big-endian dtypes.
_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Return the array stored in one IDX file (gzip-compressed or plain)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataNotFoundError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=_DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataNotFoundError(f"{path}: header says {tuple(dims)} but holds {data.size} values")
    return data.reshape(tuple(dims))


def _find(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataNotFoundError(
        f"{stem}[.gz] not found in {root}; install Debian's dataset-fashion-mnist or pass the folder "
        "holding the IDX files"
    )


def load_mnist_like(
    split: str = "train", root: str | Path = DEBIAN_FASHION_MNIST
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 in [-1, 1] of shape (N, 1, 28, 28) and labels as int64 (N,).

    ``split`` is "train" (60k for Fashion-MNIST) or "test" (10k).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    images = read_idx(_find(root, _FILES[(split, "images")]))
    labels = read_idx(_find(root, _FILES[(split, "labels")]))
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1).div_(127.5).sub_(1.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y
