"""The two image DataSources: a uint8 tensor on the training device, or a DataLoader.

    TensorImageSource   the whole dataset as ONE uint8 tensor (N, C, H, W) on the training device;
                        batches are gathered on the device and converted to [-1, 1] at once.
                        Used for MNIST-like data, CIFAR-10, and any dataset with in_memory: true.
    LoaderImageSource   a torch DataLoader with workers for large image folders (CelebA, LSUN,
                        any folder of images).

Both walk the data in the order of gan_cli/data/order.py and checkpoint their position in it.
Neither draws from the global torch RNG (a DataLoader iterator created at a resume would shift
every later draw): each loader has its own generator, seeded from (seed, rank, epoch). A source
also carries the data's default metrics and per-metric options.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gan_cli.data.base import DataInfo
from gan_cli.data.figures import save_image_grid
from gan_cli.data.file_datasets import BadImageFile, reraise_bad_file
from gan_cli.data.files import path_key
from gan_cli.data.order import ShareOrder, ShareSampler, check_resume
from gan_cli.errors import ConfigError
from gan_cli.seeding import derive_seed


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float32 in [-1, 1], the whole batch at once."""
    return x_uint8.to(torch.float32).div_(127.5).sub_(1.0)


def check_run_facts(batch_size: int, rank: int, world_size: int) -> None:
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
        raise ConfigError(f"rank {rank} is not in 0..world_size-1 (world_size {world_size})")


def check_enough(num_samples: int, batch_size: int, world_size: int, name: str) -> None:
    per_rank = num_samples // world_size
    if per_rank < batch_size:
        raise ConfigError(
            f"{name} has {num_samples} images, {per_rank} per rank over {world_size} rank(s): "
            f"fewer than one batch of {batch_size}. Lower the batch size or raise dataset.limit."
        )


class ImageSource:
    """What both image sources share: the run's facts, the shape facts, iteration, figures."""

    figure_samples = 64  # images in a sample figure unless train.figure_samples says otherwise

    def _set_run_facts(self, num_samples: int, shape: Sequence[int], num_classes: int, *,
                       batch_size: int, device: str | torch.device, seed: int, rank: int,
                       world_size: int, name: str, default_metrics: Sequence[str],
                       metric_options: dict[str, dict]) -> None:
        check_run_facts(batch_size, rank, world_size)
        check_enough(num_samples, int(batch_size), int(world_size), name)
        self.device = torch.device(device)
        self.info = DataInfo(shape=tuple(int(s) for s in shape), num_classes=int(num_classes),
                             bounded=True)
        self.name = name
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        # what gan-eval and the in-training tracker compute by default, with per-metric options
        self.default_metrics = tuple(default_metrics)
        self.metric_options = {k: dict(v) for k, v in metric_options.items()}

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

    def fingerprint(self, num: int) -> str:
        """A digest of the first ``num`` real samples' content (what metrics compare against)."""
        raise NotImplementedError


class TensorImageSource(ShareOrder, ImageSource):
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
        default_metrics: Sequence[str] = ("fid", "is", "kid", "pr"),
        metric_options: dict[str, dict] | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be a uint8 tensor of shape (N, C, H, W)")
        self._set_run_facts(images.shape[0], images.shape[1:],
                            num_classes if labels is not None else 0, batch_size=batch_size,
                            device=device, seed=seed, rank=rank, world_size=world_size, name=name,
                            default_metrics=default_metrics, metric_options=metric_options or {})
        self.images = images.contiguous().to(self.device)
        self.labels = None if labels is None else labels.to(torch.int64).to(self.device)
        self.position = 0
        self._share: torch.Tensor | None = None
        self.share_device = self.device  # indices gathered on the device

    @property
    def num_samples(self) -> int:
        return int(self.images.shape[0])

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = self.next_indices()
        x = to_unit_range(self.images.index_select(0, idx))
        y = None if self.labels is None else self.labels.index_select(0, idx)
        return x, y

    def state_dict(self) -> dict[str, Any]:
        return self._state("tensor", position=self.position)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_position(state)

    def fingerprint(self, num: int) -> str:
        """sha256 of the first ``num`` images' uint8 bytes (and shape)."""
        images = self.images[: min(num, self.num_samples)].contiguous().cpu()
        h = hashlib.sha256(str(tuple(images.shape)).encode())
        h.update(images.numpy().tobytes())
        return h.hexdigest()[:16]

    def real_batches(self, num: int, batch_size: int = 500):
        """The first ``num`` images of the dataset, in [-1, 1], batch by batch (for metrics)."""
        for start in range(0, min(num, self.num_samples), batch_size):
            stop = min(start + batch_size, num, self.num_samples)
            yield to_unit_range(self.images[start:stop])

    def labelled_batches(self, num: int, batch_size: int = 500, skip: int = 0):
        """Images ``skip`` .. ``skip + num`` in index order with their labels, ``(x in [-1, 1],
        y int64)`` batch by batch (the linear probe, gan_cli/metrics/probe.py)."""
        if self.labels is None:
            raise ConfigError(f"{self.name} has no labels")
        stop = min(skip + num, self.num_samples)
        for start in range(skip, stop, batch_size):
            end = min(start + batch_size, stop)
            yield to_unit_range(self.images[start:end]), self.labels[start:end]


class LoaderImageSource(ImageSource):
    """A map-style dataset of (uint8 (C, H, W) image, int label) read by a DataLoader."""

    fixed_batch = True  # the DataLoader's batch is set once: a phase schedule cannot change it

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
        default_metrics: Sequence[str] = ("fid", "is", "kid", "pr"),
        metric_options: dict[str, dict] | None = None,
    ) -> None:
        self._set_run_facts(len(dataset), shape, num_classes, batch_size=batch_size,
                            device=device, seed=seed, rank=rank, world_size=world_size, name=name,
                            default_metrics=default_metrics, metric_options=metric_options or {})
        if int(num_workers) < 0:
            raise ConfigError(f"num_workers must be 0 or more, got {num_workers}")
        self.dataset = dataset
        self.batches = 0  # batches consumed in this epoch
        self.sampler = ShareSampler(len(dataset), self.seed, self.rank, self.world_size)
        # The loader's own generator: its iterators draw their workers' base seed from it,
        # never from the global torch RNG (exact resume; see the module docstring).
        self.generator = torch.Generator()
        self.loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=int(num_workers),
            pin_memory=self.device.type == "cuda",
            drop_last=True,
            persistent_workers=int(num_workers) > 0,
            generator=self.generator,
        )
        self._it = None

    @property
    def num_samples(self) -> int:
        return len(self.dataset)

    def _start_iterator(self) -> None:
        self.sampler.epoch = self.epoch
        self.sampler.start = self.batches * self.batch_size
        # Worker seeds: a function of (seed, rank, epoch), the same in a run and its resume.
        # Persistent workers keep the seeds of the epoch they started in; the image datasets'
        # transforms are deterministic, so the batches never depend on them.
        self.generator.manual_seed(derive_seed(self.seed, "loader", self.rank, self.epoch))
        self._it = iter(self.loader)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._it is None:
            self._start_iterator()
        try:
            try:
                x, y = next(self._it)
            except StopIteration:
                self.epoch += 1
                self.batches = 0
                self._start_iterator()
                x, y = next(self._it)
        except BadImageFile as e:  # raised in a worker: its traceback is in the message
            reraise_bad_file(e)
        self.batches += 1
        non_blocking = self.device.type == "cuda"
        x = to_unit_range(x.to(self.device, non_blocking=non_blocking))
        if self.info.num_classes > 0:
            return x, y.to(self.device, torch.int64, non_blocking=non_blocking)
        return x, None

    def state_dict(self) -> dict[str, Any]:
        return self._state("loader", batches=self.batches)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        check_resume(state, self.num_samples, self.name)
        self.epoch = int(state["epoch"])
        # batches consumed -> indices consumed of this rank's share, rescaled to the new layout
        consumed = int(state["batches"]) * int(state.get("batch_size", self.batch_size))
        consumed = consumed * int(state.get("world_size", self.world_size)) // self.world_size
        self.batches = consumed // self.batch_size
        if "seed" in state:
            self.seed = self.sampler.seed = int(state["seed"])
        self._it = None  # the next call starts a fresh iterator that skips what was consumed

    def fingerprint(self, num: int) -> str:
        """sha256 of the first ``num`` samples' files (path, size, modification time), or of their
        decoded bytes when the dataset is not made of files."""
        return dataset_fingerprint(self.dataset, min(num, self.num_samples))

    def real_batches(self, num: int, batch_size: int = 500):
        """The first ``num`` images of the dataset, in [-1, 1], batch by batch (for metrics)."""
        subset = torch.utils.data.Subset(self.dataset, range(min(num, self.num_samples)))
        # a generator of its own: metrics during training never draw from the global stream
        loader = torch.utils.data.DataLoader(
            subset, batch_size=batch_size, shuffle=False, num_workers=self.loader.num_workers,
            generator=torch.Generator().manual_seed(derive_seed(self.seed, "real_batches")))
        for batch in loader:
            x = batch[0] if isinstance(batch, (list, tuple)) else batch
            yield to_unit_range(x)

    def labelled_batches(self, num: int, batch_size: int = 500, skip: int = 0):
        """Images ``skip`` .. ``skip + num`` in index order with their labels (see
        TensorImageSource.labelled_batches)."""
        if self.info.num_classes == 0:
            raise ConfigError(f"{self.name} has no labels")
        indices = range(skip, min(skip + num, self.num_samples))
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.dataset, indices),
                                             batch_size=batch_size, shuffle=False,
                                             num_workers=self.loader.num_workers)
        for x, y in loader:
            yield to_unit_range(x), torch.as_tensor(y, dtype=torch.int64)


def dataset_fingerprint(dataset: torch.utils.data.Dataset, num: int) -> str:
    """A digest of a map-style dataset's first ``num`` samples: their files' paths, sizes and
    modification times when it has ``files`` (a folder: cheap, and changes when a file does),
    else their decoded content."""
    h = hashlib.sha256()
    files = getattr(dataset, "files", None)
    if files is not None:
        for path in list(files)[:num]:
            st = Path(path).stat()
            h.update(path_key(path) + f"|{st.st_size}|{st.st_mtime_ns}\n".encode())
    else:
        for i in range(num):
            x = dataset[i][0]
            h.update(torch.as_tensor(x).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
