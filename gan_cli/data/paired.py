"""Paired image data for image-to-image translation (pix2pix, Isola et al. 2017).

``next()`` returns ``Batch(x=target, y=input)`` in [-1, 1] on the training device; ``info`` is
the target's DataInfo plus ``input_shape`` (:class:`PairedDataInfo`). Two builders:
:func:`paired_folder` (the pix2pix datasets: A|B side by side or ``A/`` and ``B/``; each half
resized on its shorter side and centre-cropped, without the paper's random jitter) and
:func:`fashion_pairs` (Fashion-MNIST items with their Sobel edge map or filled silhouette as
input, zero-padded to ``resolution``). The data order is the image sources' (data/order.py).
Metrics judge G on ``held_out()`` pairs (the test split, ``dataset.held_out_split``, or the
training pairs when a folder has none); ``conditions(n, generator)`` draws their inputs with the
metric sampler's own generator, so the training RNG streams are untouched.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gan_cli.data.base import Batch, DataInfo
from gan_cli.data.files import IMAGE_EXTENSIONS, list_images, path_key
from gan_cli.data.order import ShareOrder
from gan_cli.data.sources import check_enough, check_run_facts, to_unit_range
from gan_cli.errors import ConfigError, DataNotFoundError, RuntimeFailure

__all__ = [
    "PairedDataInfo",
    "PairedImageSource",
    "paired_folder",
    "fashion_pairs",
    "sobel_magnitude",
    "edge_map",
    "silhouette",
    "pad_to",
]

#: Default thresholds: of the Sobel magnitude (1 = a unit step between neighbours; 0.25 keeps
#: steps of a quarter of the range) and of the intensity (in [0, 1]) inside the silhouette.
EDGE_THRESHOLD = 0.25
SILHOUETTE_THRESHOLD = 0.05


@dataclass(frozen=True)
class PairedDataInfo(DataInfo):
    """DataInfo of the target, plus ``input_shape``: (C_in, H, W) of the condition ``y``."""

    input_shape: tuple[int, ...] = ()


# --------------------------------------------------------------------------------------------
# where the pairs are: in memory, or read from files for each batch


class _TensorPairs:
    """All pairs as two uint8 tensors (N, C, H, W) on the training device."""

    def __init__(self, targets: torch.Tensor, inputs: torch.Tensor, device: torch.device) -> None:
        if targets.dtype != torch.uint8 or inputs.dtype != torch.uint8:
            raise ValueError("paired images must be uint8 tensors")
        if targets.dim() != 4 or inputs.dim() != 4 or targets.shape[0] != inputs.shape[0]:
            raise ValueError(f"targets {tuple(targets.shape)} and inputs {tuple(inputs.shape)} must be "
                             "(N, C, H, W) with the same N")
        self.targets = targets.contiguous().to(device)
        self.inputs = inputs.contiguous().to(device)
        self.device = device

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(self.targets.shape[1:]), tuple(self.inputs.shape[1:])

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(self.device)
        return self.targets.index_select(0, idx), self.inputs.index_select(0, idx)

    def fingerprint(self, num: int) -> str:
        """sha256 of the first ``num`` targets' uint8 bytes (and shape)."""
        targets = self.targets[:num].contiguous().cpu()
        h = hashlib.sha256(str(tuple(targets.shape)).encode())
        h.update(targets.numpy().tobytes())
        return h.hexdigest()[:16]


class _FilePairs:
    """Pairs read from image files for each batch, in the main process."""

    def __init__(self, files: Sequence[tuple[Path, ...]], reader, device: torch.device) -> None:
        self.files = list(files)
        self.reader = reader  # files of one pair -> (target uint8 (C, H, W), input uint8)
        self.device = device
        self._shapes = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if self._shapes is None:
            target, inp = self.reader(self.files[0])
            self._shapes = tuple(target.shape), tuple(inp.shape)
        return self._shapes

    def fingerprint(self, num: int) -> str:
        """sha256 of the first ``num`` pairs' files: paths, sizes, modification times."""
        h = hashlib.sha256()
        for files in self.files[:num]:
            for path in files:
                st = path.stat()
                h.update(path_key(path) + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.reader(self.files[i]) for i in idx.tolist()]
        targets = torch.stack([t for t, _ in pairs]).to(self.device)
        inputs = torch.stack([i for _, i in pairs]).to(self.device)
        return targets, inputs


# --------------------------------------------------------------------------------------------
# the data source


class PairedImageSource(ShareOrder):
    """Batches of (target, input) pairs (``_TensorPairs`` or ``_FilePairs``) in the image sources'
    order. ``held_out`` builds the held-out source (another split), or None: these pairs serve;
    ``default_metrics`` and ``metric_options`` as for the image sources."""

    figure_samples = 24  # examples in a figure: 8 rows of 3 input | output | target triples

    def __init__(self, pairs: _TensorPairs | _FilePairs, *, batch_size: int,
                 device: str | torch.device = "cpu", seed: int = 0, rank: int = 0,
                 world_size: int = 1, name: str = "paired dataset", split: str = "train",
                 held_out: Callable[[], PairedImageSource] | None = None,
                 held_out_split: str | None = None,
                 default_metrics: Sequence[str] = ("paired", "paired_fd"),
                 metric_options: dict[str, dict] | None = None) -> None:
        check_run_facts(batch_size, rank, world_size)
        check_enough(len(pairs), int(batch_size), int(world_size), name)
        self.pairs = pairs
        target_shape, input_shape = pairs.shapes
        if target_shape[1:] != input_shape[1:]:
            raise ConfigError(f"{name}: targets are {target_shape[1]}x{target_shape[2]} but inputs "
                              f"{input_shape[1]}x{input_shape[2]}")
        self.info = PairedDataInfo(shape=target_shape, num_classes=0, bounded=True,
                                   input_shape=input_shape)
        self.name = name
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.position = 0
        self._share: torch.Tensor | None = None
        self.split = split
        self.held_out_split = split if held_out is None else held_out_split
        self._build_held_out = held_out
        self._held_out: PairedImageSource | None = None
        self.default_metrics = tuple(default_metrics)
        self.metric_options = {k: dict(v) for k, v in (metric_options or {}).items()}

    @property
    def num_samples(self) -> int:
        return len(self.pairs)

    @property
    def batches_per_epoch(self) -> int:
        return (self.num_samples // self.world_size) // self.batch_size

    def next(self) -> Batch:
        """The next batch: ``Batch(x=targets, y=inputs)``, float32 in [-1, 1] on the device."""
        targets, inputs = self.pairs.take(self.next_indices())
        return Batch(x=to_unit_range(targets), y=to_unit_range(inputs))

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.next()

    def state_dict(self) -> dict[str, Any]:
        """The position in the data order, with what a resume must check."""
        return {"kind": "paired", "epoch": self.epoch, "position": self.position, "seed": self.seed,
                "num_samples": self.num_samples, "world_size": self.world_size,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_position(state)

    def real_pairs(self, num: int, batch_size: int = 500) -> Iterator[Batch]:
        """The first ``num`` pairs of the dataset in index order, as Batches (for metrics)."""
        stop = min(int(num), self.num_samples)
        for start in range(0, stop, batch_size):
            targets, inputs = self.pairs.take(torch.arange(start, min(start + batch_size, stop)))
            yield Batch(x=to_unit_range(targets), y=to_unit_range(inputs))

    def held_out(self) -> PairedImageSource:
        """The held-out pairs the image-to-image metrics use (built once, on first use); these
        pairs themselves when the dataset has no held-out split."""
        if self._build_held_out is None:
            return self
        if self._held_out is None:
            self._held_out = self._build_held_out()
        return self._held_out

    def conditions(self, num: int, generator: torch.Generator) -> torch.Tensor:
        """(num, C_in, H, W) inputs in [-1, 1] of held-out pairs drawn uniformly with replacement
        with ``generator`` (the metric sampler's; no other RNG is touched)."""
        source = self.held_out()
        idx = torch.randint(source.num_samples, (int(num),), generator=generator,
                            device=generator.device).cpu()
        _, inputs = source.pairs.take(idx)
        return to_unit_range(inputs).to(self.device)

    def fingerprint(self, num: int) -> str:
        """A digest of what ``real_batches(num)`` yields (part of the reference-statistics cache
        key): the first ``num`` targets' bytes, or their files' paths, sizes and times."""
        return self.pairs.fingerprint(min(int(num), self.num_samples))

    def real_batches(self, num: int, batch_size: int = 500) -> Iterator[torch.Tensor]:
        """The first ``num`` targets in [-1, 1], batch by batch (what FD of outputs compares to)."""
        for batch in self.real_pairs(num, batch_size):
            yield batch.x

    def figure_batch(self, num: int | None = None) -> Batch:
        """The fixed examples of the sample figures: the first ``num`` pairs (default
        ``figure_samples``), on the device."""
        num = self.figure_samples if num is None else int(num)
        return next(self.real_pairs(num, batch_size=num))

    def save_figure(self, fake: torch.Tensor, path: str | Path, labels: torch.Tensor | None = None,
                    inputs: torch.Tensor | None = None, targets: torch.Tensor | None = None) -> Path:
        """Write triples input | output | target (pairs without ``targets``; just the outputs
        without ``inputs``); ``labels`` are ignored."""
        from gan_cli.data.figures import save_image_grid

        del labels
        if inputs is None:
            return save_image_grid(fake, path)
        columns = [inputs, fake] + ([] if targets is None else [targets])
        images, per_row = _triples(columns)
        return save_image_grid(images, path, nrow=per_row)


def _triples(columns: Sequence[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Interleave (N, C_k, H, W) tensors example by example -> (N * K, C, H, W) and images per row
    (``ceil(sqrt(N / K))`` examples: about square); gray images repeated to RGB beside RGB."""
    n = columns[0].shape[0]
    if any(c.shape[0] != n or c.shape[2:] != columns[0].shape[2:] for c in columns):
        raise ValueError(f"figure columns differ in count or size: {[tuple(c.shape) for c in columns]}")
    channels = max(c.shape[1] for c in columns)
    out = []
    for c in columns:
        c = c.detach().to("cpu", torch.float32)
        if c.shape[1] != channels:
            if c.shape[1] != 1:
                raise ValueError(f"cannot draw {c.shape[1]}-channel and {channels}-channel images together")
            c = c.expand(-1, channels, -1, -1)
        out.append(c)
    k = len(out)
    images = torch.stack(out, dim=1).reshape(n * k, channels, *out[0].shape[2:])
    return images, k * max(1, math.ceil(math.sqrt(n / k)))


# --------------------------------------------------------------------------------------------
# Fashion-MNIST pairs: the input is a deterministic function of the item


_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_magnitude(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) gray images in [0, 1] -> their Sobel magnitude, in [0, sqrt(2)].

    M = sqrt(G_x^2 + G_y^2) / 4, G_x = K * I, G_y = K^T * I, K = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    zero padding; a unit step gives |G_x| = 4 beside it, hence the 1/4.
    """
    k = _SOBEL_X.to(images.dtype).to(images.device)
    kernels = torch.stack([k, k.t()]).unsqueeze(1)  # (2, 1, 3, 3): G_x, G_y
    grads = F.conv2d(images, kernels, padding=1)
    return grads.pow(2).sum(dim=1, keepdim=True).sqrt().div(4.0)


def edge_map(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """(N, 1, H, W) in [0, 1] -> 1 where the Sobel magnitude exceeds ``threshold``, else 0."""
    return (sobel_magnitude(images) > threshold).to(images.dtype)


def silhouette(images: torch.Tensor, threshold: float = SILHOUETTE_THRESHOLD) -> torch.Tensor:
    """(N, 1, H, W) in [0, 1] -> the item's mask with its holes filled: 1 where the intensity
    exceeds ``threshold`` or the background cannot reach the border (4-connected), else 0."""
    import numpy as np
    from scipy import ndimage

    mask = (images > threshold).squeeze(1).cpu().numpy()
    structure = np.zeros((3, 3, 3), dtype=bool)  # 4-connectivity inside each image only
    structure[1] = ndimage.generate_binary_structure(2, 1)
    filled = ndimage.binary_fill_holes(mask, structure=structure)
    return torch.from_numpy(filled).unsqueeze(1).to(images.dtype).to(images.device)


def pad_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """Zero-pad (N, C, h, w) images to (N, C, resolution, resolution), centred (the odd pixel
    goes to the bottom / right)."""
    h, w = images.shape[-2:]
    if resolution < max(h, w):
        raise ValueError(f"cannot pad {h}x{w} images to {resolution}")
    top, left = (resolution - h) // 2, (resolution - w) // 2
    return F.pad(images, (left, resolution - w - left, top, resolution - h - top))


def fashion_pairs(
    task: str = "edges",
    split: str = "train",
    limit: int | None = None,
    resolution: int = 32,
    threshold: float | None = None,
    root: str = "/usr/share/datasets/fashion-mnist",
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> PairedImageSource:
    """Fashion-MNIST items (targets) with their ``edge_map`` or ``silhouette`` (inputs), 1-channel,
    in memory; the keys are FashionPairsConfig's (gan_cli/config/data.py)."""
    from gan_cli.data.idx import load_mnist_like

    if threshold is None:
        threshold = EDGE_THRESHOLD if task == "edges" else SILHOUETTE_THRESHOLD
    images, _ = load_mnist_like(split, Path(os.path.expanduser(root)))
    if limit is not None:
        images = images[:limit]
    # back to the stored bytes: v / 127.5 - 1 in float32 rounds back to v exactly
    items = images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    items = pad_to(items, resolution)
    unit = items.to(torch.float32) / 255.0
    inputs = edge_map(unit, threshold) if task == "edges" else silhouette(unit, threshold)
    inputs = inputs.mul(255).to(torch.uint8)

    def test_split() -> PairedImageSource:  # every test pair, whatever limit the training uses
        return fashion_pairs(task, "test", None, resolution, threshold, root, batch_size=1,
                             device=device, seed=seed)

    return PairedImageSource(_TensorPairs(items, inputs, torch.device(device)), batch_size=batch_size,
                             device=device, seed=seed, rank=rank, world_size=world_size,
                             name=f"Fashion-MNIST {task} ({split})", split=split,
                             held_out=None if split == "test" else test_split, held_out_split="test",
                             metric_options={"paired_fd": {"features": "fashion"}})


# --------------------------------------------------------------------------------------------
# folders of pairs (the pix2pix datasets)


class _PairReader:
    """Reads one pair of files into (target, input) uint8 tensors (C, resolution, resolution)."""

    def __init__(self, layout: str, direction: str, resolution: int, channels: int,
                 input_channels: int) -> None:
        self.layout = layout
        self.swap = direction == "BtoA"
        self.resolution = resolution
        self.channels = channels
        self.input_channels = input_channels

    def _tensor(self, img, channels: int) -> torch.Tensor:
        from torchvision import transforms

        img = img.convert("L" if channels == 1 else "RGB")
        img = transforms.CenterCrop(self.resolution)(
            transforms.Resize(self.resolution, antialias=True)(img))
        return transforms.functional.pil_to_tensor(img)

    def __call__(self, files: tuple[Path, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        try:
            if self.layout == "side_by_side":
                with Image.open(files[0]) as img:
                    img.load()
                    w, h = img.size
                    half = w // 2
                    a, b = img.crop((0, 0, half, h)), img.crop((half, 0, 2 * half, h))
            else:
                with Image.open(files[0]) as a_img, Image.open(files[1]) as b_img:
                    a_img.load()
                    b_img.load()
                    a, b = a_img.copy(), b_img.copy()
        except (OSError, ValueError) as exc:
            raise RuntimeFailure(f"cannot read image {files}: {type(exc).__name__}: {exc}") from None
        inp, target = (b, a) if self.swap else (a, b)
        return self._tensor(target, self.channels), self._tensor(inp, self.input_channels)


def _pair_files(base: Path, layout: str) -> list[tuple[Path, ...]]:
    if layout == "side_by_side":
        files = list_images(base) if base.is_dir() else []
        if not files:
            raise DataNotFoundError(
                f"no images (files ending {', '.join(sorted(IMAGE_EXTENSIONS))}) under {base}/. Set "
                "dataset.path to a folder of A|B side-by-side images (a pix2pix dataset, e.g. "
                "facades/, with dataset.split=train for facades/train/)")
        return [(f,) for f in files]
    folders = base / "A", base / "B"
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise DataNotFoundError(f"layout=two_folders needs {base}/A/ and {base}/B/; missing "
                                f"{', '.join(missing)}")
    keyed = []
    for folder in folders:
        keyed.append({f.relative_to(folder).with_suffix(""): f for f in list_images(folder)})
    a_keys, b_keys = set(keyed[0]), set(keyed[1])
    if a_keys != b_keys or not a_keys:
        only_a = sorted(str(k) for k in a_keys - b_keys)[:3]
        only_b = sorted(str(k) for k in b_keys - a_keys)[:3]
        raise DataNotFoundError(
            f"{base}/A/ and {base}/B/ must hold images with matching names: {len(a_keys)} and "
            f"{len(b_keys)} found; only in A: {only_a}, only in B: {only_b}")
    return [(keyed[0][k], keyed[1][k]) for k in sorted(a_keys)]


def paired_folder(
    path: str,
    resolution: int = 256,
    direction: str = "AtoB",
    layout: str = "side_by_side",
    split: str | None = None,
    channels: int = 3,
    input_channels: int | None = None,
    limit: int | None = None,
    in_memory: bool = True,
    held_out_split: str | None = None,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> PairedImageSource:
    """A folder of image pairs: ``path[/split]`` holds A|B side-by-side files or ``A/`` and ``B/``
    (matched by name without extension); the keys are PairedFolderConfig's (config/data.py)."""
    input_channels = channels if input_channels is None else input_channels
    root = Path(os.path.expanduser(str(path))).absolute()
    base = root if split is None else root / split
    held_out = None
    if held_out_split is not None and held_out_split != split:
        if not (root / held_out_split).is_dir():
            raise DataNotFoundError(f"dataset.held_out_split={held_out_split}: no folder "
                                    f"{root / held_out_split}/ (set it to a sub-folder of "
                                    f"dataset.path, or null to judge G on the training pairs)")

        def held_out() -> PairedImageSource:
            return paired_folder(path, resolution, direction, layout, held_out_split, channels,
                                 input_channels, None, in_memory, None, batch_size=1,
                                 device=device, seed=seed)

    files = _pair_files(base, layout)
    if limit is not None:
        files = files[:limit]
    reader = _PairReader(layout, direction, resolution, channels, input_channels)
    dev = torch.device(device)
    if in_memory:
        read = [reader(f) for f in files]
        pairs: _TensorPairs | _FilePairs = _TensorPairs(
            torch.stack([t for t, _ in read]), torch.stack([i for _, i in read]), dev)
    else:
        pairs = _FilePairs(files, reader, dev)
    return PairedImageSource(pairs, batch_size=batch_size, device=device, seed=seed, rank=rank,
                             world_size=world_size, name=f"paired folder {base}",
                             split=split or base.name, held_out=held_out,
                             held_out_split=held_out_split,
                             metric_options={"paired_fd": {"features": "inception"}})
