"""Paired data: the edge and silhouette transforms on tiny hand images, side-by-side and two-folder
pairs from PNGs made in tmp_path, the data order, exact resume, and the input | output | target
figure."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

from gan_cli.config import CONF_DIR, register_configs, validate
from gan_cli.data.base import Batch
from gan_cli.data.idx import DEBIAN_FASHION_MNIST
from gan_cli.data.order import rank_share
from gan_cli.data.paired import (
    PairedDataInfo,
    edge_map,
    fashion_pairs,
    pad_to,
    paired_folder,
    silhouette,
    sobel_magnitude,
)
from gan_cli.errors import ConfigError, DataNotFoundError

DT = torch.float64


def unit(v: int) -> float:
    """A uint8 value as the sources deliver it, in [-1, 1]."""
    return v / 127.5 - 1.0


# ---------------------------------------------------------------- the transforms, by hand


# 4x4, left half 0, right half 1 (a vertical step), zero padding outside.
STEP = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 4, dtype=DT).view(1, 1, 4, 4)


def test_sobel_magnitude_by_hand():
    # Rows 1, 2: G_y = 0; G_x = (1 + 2 + 1) * (I[c+1] - I[c-1]) = 0, 4, 4, -4 (the last column
    # sees the zero padding on its right): magnitude / 4 = 0, 1, 1, 1.
    # Row 0 (zero padding above): G_x = (2 + 1) * (I[c+1] - I[c-1]) = 0, 3, 3, -3;
    # G_y = 1*I[1, c-1] + 2*I[1, c] + 1*I[1, c+1] = 0, 1, 3, 3 -> sqrt(0), sqrt(10), sqrt(18), sqrt(18).
    # Row 3 mirrors row 0.
    edge = [0.0, math.sqrt(10) / 4, math.sqrt(18) / 4, math.sqrt(18) / 4]
    expected = torch.tensor([edge, [0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0], edge], dtype=DT)
    torch.testing.assert_close(sobel_magnitude(STEP)[0, 0], expected)
    # transposing the image transposes the magnitude
    torch.testing.assert_close(sobel_magnitude(STEP.transpose(2, 3))[0, 0], expected.t())


def test_edge_map_thresholds_the_magnitude():
    edges = edge_map(STEP, threshold=0.25)[0, 0]
    assert edges.tolist() == [[0, 1, 1, 1]] * 4
    # sqrt(10) / 4 = 0.79 falls below 0.9; 1 and sqrt(18) / 4 = 1.06 stay
    edges = edge_map(STEP, threshold=0.9)[0, 0]
    assert edges.tolist() == [[0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 1, 1]]
    assert edge_map(torch.full((1, 1, 4, 4), 0.0, dtype=DT)).sum() == 0  # blank: no edges


def ring(gap: bool) -> torch.Tensor:
    """7x7: a ring of 0.8 on rows/cols 1..5 around a 3x3 hole; with `gap` the ring is open at
    (3, 5); a faint 0.03 pixel at (0, 0), below the threshold."""
    img = torch.zeros(7, 7, dtype=DT)
    img[1:6, 1:6] = 0.8
    img[2:5, 2:5] = 0.0
    if gap:
        img[3, 5] = 0.0
    img[0, 0] = 0.03
    return img


def test_silhouette_fills_closed_holes_only_each_image_alone():
    closed, opened = ring(gap=False), ring(gap=True)
    # batch order (open, closed): a fill that connected the images would leak the open ring's
    # background into the closed ring's hole at the same place
    masks = silhouette(torch.stack([opened, closed]).unsqueeze(1), threshold=0.05)
    full = torch.zeros(7, 7, dtype=DT)
    full[1:6, 1:6] = 1.0
    torch.testing.assert_close(masks[1, 0], full)  # the closed ring: a filled 5x5 square
    expected_open = (opened > 0.05).to(DT)  # the open ring: its own pixels, the hole stays empty
    torch.testing.assert_close(masks[0, 0], expected_open)
    assert masks[0, 0, 3, 3] == 0 and masks[0, 0, 0, 0] == 0


def test_pad_to_centres_the_image():
    img = torch.arange(6, dtype=DT).view(1, 1, 2, 3) + 1
    out = pad_to(img, 5)  # rows: 1 above, 2 below; cols: 1 left, 1 right
    assert out.shape == (1, 1, 5, 5)
    torch.testing.assert_close(out[0, 0, 1:3, 1:4], img[0, 0])
    assert out.sum() == img.sum()
    with pytest.raises(ValueError):
        pad_to(img, 2)


# ---------------------------------------------------------------- Fashion-MNIST pairs


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "test") -> None:
    """IDX files as (Fashion-)MNIST ships them: magic 0x0803 / 0x0801, big-endian dims."""
    stem = "t10k" if split == "test" else "train"
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{stem}-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x0803, n, h, w) + images.astype(np.uint8).tobytes())
    (folder / f"{stem}-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x0801, n) + labels.astype(np.uint8).tobytes())


def tiny_fashion(folder: Path, count: int = 5) -> np.ndarray:
    """`count` 28x28 items: item k is a (k + 4)-pixel square of value 200 at (2k, 3)."""
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    for k in range(count):
        images[k, 2 * k : 2 * k + k + 4, 3 : 3 + k + 4] = 200
    write_idx(folder, images, np.arange(count) % 10)
    return images


@pytest.mark.parametrize("task", ["edges", "silhouette"])
def test_fashion_pairs_from_idx_files(tmp_path, task):
    items = tiny_fashion(tmp_path)
    source = fashion_pairs(task=task, split="test", root=str(tmp_path), batch_size=2)
    assert isinstance(source.info, PairedDataInfo)
    assert source.info.shape == (1, 32, 32) and source.info.input_shape == (1, 32, 32)
    assert source.info.num_classes == 0 and source.info.bounded
    pairs = next(source.real_pairs(5))
    assert isinstance(pairs, Batch)
    # the target is the item, zero-padded by 2 pixels on each side, in [-1, 1]
    target = torch.full((5, 1, 32, 32), -1.0)
    target[:, 0, 2:30, 2:30] = torch.from_numpy(items).float() / 127.5 - 1.0
    torch.testing.assert_close(pairs.x, target)
    # the input: item 0 is a 4x4 square of 200 at rows 2..5, cols 5..8 after padding
    square = torch.zeros(32, 32)
    square[2:6, 5:9] = 1.0
    if task == "silhouette":
        expected = square
    else:
        # edges: every pixel whose 3x3 neighbourhood holds both square and background, i.e. the
        # square grown by 1 (rows 1..6, cols 4..9) less its 2x2 core; the weakest, the outer
        # corners, have G_x = G_y = 200/255: sqrt(2) * 0.784 / 4 = 0.277 > 0.25
        expected = torch.zeros(32, 32)
        expected[1:7, 4:10] = 1.0
        expected[3:5, 6:8] = 0.0
    torch.testing.assert_close(pairs.y[0, 0], expected * 2 - 1)


def _validated(*overrides: str) -> None:
    """conf/train.yaml with ``overrides``, checked by the schemas as gan-train checks it."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        validate(compose(config_name="train", overrides=list(overrides)))


@pytest.mark.slow
def test_fashion_pairs_bad_options(tmp_path):
    for key, bad in (("task", "canny"), ("split", "valid"), ("resolution", 16), ("limit", 0)):
        with pytest.raises(ConfigError, match=f"dataset.{key}"):
            _validated("dataset=fashion_edges", f"dataset.{key}={bad}")
    with pytest.raises(DataNotFoundError, match="fashion-mnist"):
        fashion_pairs(split="train", root=str(tmp_path / "none"), batch_size=2)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is absent")
def test_fashion_edges_from_the_debian_package():
    source = fashion_pairs(task="edges", split="test", limit=64, batch_size=16)
    batch = source.next()
    assert batch.x.shape == batch.y.shape == (16, 1, 32, 32)
    assert set(batch.y.unique().tolist()) == {-1.0, 1.0}  # binary edge maps
    assert batch.x.min() >= -1 and batch.x.max() <= 1
    assert (batch.x[:, :, :2] == -1).all()  # the padding is background


# ---------------------------------------------------------------- folders of pairs


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def test_side_by_side_files_are_split_at_half_width(tmp_path):
    # 4x4 A (a ramp along the columns, RGB channels distinct) | 4x4 B (a ramp along the rows)
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    a[:, :, 0] = [0, 40, 80, 120]
    a[:, :, 1] = 7
    a[:, :, 2] = 250
    b = np.zeros((4, 4, 3), dtype=np.uint8)
    b[:, :, :] = np.array([10, 60, 110, 160]).reshape(4, 1, 1)
    write_png(tmp_path / "train" / "0001.png", np.concatenate([a, b], axis=1))  # 8 wide, 4 high
    to_unit = lambda v: torch.from_numpy(v).permute(2, 0, 1).float() / 127.5 - 1.0  # noqa: E731

    ab = paired_folder(str(tmp_path), resolution=4, split="train", batch_size=1)
    batch = ab.next()
    torch.testing.assert_close(batch.y[0], to_unit(a))  # input A
    torch.testing.assert_close(batch.x[0], to_unit(b))  # target B
    assert ab.info.shape == ab.info.input_shape == (3, 4, 4)

    ba = paired_folder(str(tmp_path), resolution=4, split="train", direction="BtoA", batch_size=1)
    batch = ba.next()
    torch.testing.assert_close(batch.y[0], to_unit(b))
    torch.testing.assert_close(batch.x[0], to_unit(a))

    # no split: path itself; a gray input from B (R = G = B = v: its luminance is v)
    gray_in = paired_folder(str(tmp_path / "train"), resolution=4, direction="BtoA", input_channels=1,
                            batch_size=1)
    assert gray_in.info.input_shape == (1, 4, 4) and gray_in.info.shape == (3, 4, 4)
    batch = gray_in.next()
    torch.testing.assert_close(batch.y[0, 0], to_unit(b)[0])
    torch.testing.assert_close(batch.x[0], to_unit(a))


def test_side_by_side_resizes_each_half(tmp_path):
    write_png(tmp_path / "p.png", np.full((8, 16, 3), 90, dtype=np.uint8))
    source = paired_folder(str(tmp_path), resolution=4, batch_size=1)
    batch = source.next()
    assert batch.x.shape == batch.y.shape == (1, 3, 4, 4)
    torch.testing.assert_close(batch.x, torch.full((1, 3, 4, 4), unit(90)))


def make_two_folders(root: Path, count: int = 10, ext_b: str = ".png") -> None:
    """A/k.png is gray value 10k + 5, B/k.png (or .bmp) is 10k + 8: the pair of an index is known."""
    for k in range(count):
        write_png(root / "A" / f"{k:02d}.png", np.full((4, 4), 10 * k + 5))
        write_png(root / "B" / f"{k:02d}{ext_b}", np.full((4, 4), 10 * k + 8))


def indices_of(batch: Batch) -> list[int]:
    """The dataset indices of a two-folder batch, read from the targets' values; checks that
    each input belongs to its target."""
    x = torch.round((batch.x[:, 0, 0, 0] + 1.0) * 127.5)
    y = torch.round((batch.y[:, 0, 0, 0] + 1.0) * 127.5)
    assert torch.equal(x - y, torch.full_like(x, 3.0)), "inputs and targets were mixed up"
    return ((x - 8) / 10).long().tolist()


def test_two_folders_pairs_by_name(tmp_path):
    make_two_folders(tmp_path, 4, ext_b=".bmp")  # extensions may differ
    source = paired_folder(str(tmp_path), resolution=4, channels=1, layout="two_folders", batch_size=4)
    assert sorted(indices_of(source.next())) == [0, 1, 2, 3]
    (tmp_path / "B" / "03.bmp").unlink()
    with pytest.raises(DataNotFoundError, match="only in A: \\['03'\\]"):
        paired_folder(str(tmp_path), resolution=4, channels=1, layout="two_folders", batch_size=1)


@pytest.mark.slow
def test_folder_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no images"):
        paired_folder(str(tmp_path), resolution=4, batch_size=1)
    with pytest.raises(DataNotFoundError, match="A/"):
        paired_folder(str(tmp_path), resolution=4, layout="two_folders", batch_size=1)
    for key, bad in (("direction", "AB"), ("layout", "stacked"), ("channels", 2), ("limit", 0),
                     ("input_channels", 2), ("resolution", 0)):
        with pytest.raises(ConfigError, match=f"dataset.{key}"):
            _validated("dataset=paired_folder", f"dataset.path={tmp_path}", f"dataset.{key}={bad}")


# ---------------------------------------------------------------- order and exact resume


def folder_source(root: Path, **kw):
    args = dict(resolution=4, channels=1, layout="two_folders", batch_size=3, seed=7) | kw
    return paired_folder(str(root), **args)


def test_order_is_the_image_sources_permutation(tmp_path):
    """Batches are consecutive slices of rank_share(N, seed, epoch); the incomplete rest of an
    epoch (10 pairs, batches of 3: 1 left) starts the next epoch."""
    make_two_folders(tmp_path)
    source = folder_source(tmp_path)
    seen = [indices_of(source.next()) for _ in range(6)]
    for epoch in (0, 1):
        perm = rank_share(10, 7, epoch, 0, 1).tolist()
        assert seen[3 * epoch : 3 * epoch + 3] == [perm[0:3], perm[3:6], perm[6:9]]
    assert source.epoch == 1 and source.position == 9


def test_two_ranks_take_disjoint_shares(tmp_path):
    make_two_folders(tmp_path)
    r0 = folder_source(tmp_path, rank=0, world_size=2, batch_size=5)
    r1 = folder_source(tmp_path, rank=1, world_size=2, batch_size=5)
    a, b = indices_of(r0.next()), indices_of(r1.next())
    assert sorted(a + b) == list(range(10))


@pytest.mark.parametrize("in_memory", [True, False])
def test_exact_resume_mid_epoch(tmp_path, in_memory):
    make_two_folders(tmp_path)
    first = folder_source(tmp_path, in_memory=in_memory)
    for _ in range(4):  # into the second epoch
        first.next()
    state = first.state_dict()
    expected = [first.next() for _ in range(5)]
    resumed = folder_source(tmp_path, in_memory=in_memory)
    resumed.next()  # a different position before loading must not matter
    resumed.load_state_dict(state)
    for want in expected:
        got = resumed.next()
        assert torch.equal(got.x, want.x) and torch.equal(got.y, want.y)


def test_in_memory_and_files_give_the_same_batches(tmp_path):
    make_two_folders(tmp_path)
    a, b = folder_source(tmp_path, in_memory=True), folder_source(tmp_path, in_memory=False)
    for _ in range(5):
        assert indices_of(a.next()) == indices_of(b.next())


def test_resume_with_another_dataset_size_is_refused(tmp_path):
    make_two_folders(tmp_path)
    state = folder_source(tmp_path).state_dict()
    with pytest.raises(ConfigError, match="for 10 images"):
        folder_source(tmp_path, limit=8).load_state_dict(state)


def test_too_few_pairs_for_a_batch(tmp_path):
    make_two_folders(tmp_path, 4)
    with pytest.raises(ConfigError, match="fewer than one batch"):
        folder_source(tmp_path, batch_size=5)


def test_real_pairs_and_batches_in_index_order(tmp_path):
    make_two_folders(tmp_path)
    source = folder_source(tmp_path)
    assert [indices_of(b) for b in source.real_pairs(7, batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    targets = torch.cat(list(source.real_batches(4, batch_size=3)))
    torch.testing.assert_close(targets[:, 0, 0, 0], torch.tensor([unit(10 * k + 8) for k in range(4)]))
    assert indices_of(source.figure_batch(5)) == [0, 1, 2, 3, 4]


# ---------------------------------------------------------------- the figure


def test_figure_draws_input_output_target_triples(tmp_path):
    make_two_folders(tmp_path)
    source = folder_source(tmp_path)
    n, side, pad = 6, 4, 2
    inputs = torch.full((n, 1, side, side), -1.0)  # black
    fake = torch.zeros(n, 3, side, side)  # gray, three channels: inputs and targets are repeated
    targets = torch.full((n, 1, side, side), 1.0)  # white
    path = source.save_figure(fake, tmp_path / "fig.png", inputs=inputs, targets=targets)
    img = np.asarray(Image.open(path).convert("RGB"))
    per_row = 3 * math.ceil(math.sqrt(n / 3))  # 2 triples (6 images) per row, 3 rows
    assert per_row == 6
    assert img.shape == (3 * (side + pad) + pad, per_row * (side + pad) + pad, 3)
    tile = lambda r, c: img[pad + r * (side + pad), pad + c * (side + pad)]  # noqa: E731
    for r in range(3):
        for c, value in zip(range(per_row), [0, 128, 255] * 2, strict=True):
            assert abs(int(tile(r, c)[0]) - value) <= 1, (r, c)
    # without inputs, just the outputs' grid
    path = source.save_figure(fake, tmp_path / "plain.png")
    assert Image.open(path).size == (3 * (side + pad) + pad, 2 * (side + pad) + pad)


# ---------------------------------------------------------------- held-out pairs and fingerprints


@pytest.mark.parametrize("in_memory", [True, False])
def test_fingerprint_follows_the_first_targets(tmp_path, in_memory):
    """The reference-cache key's digest: equal for the same targets, changed when one of the first
    ``num`` targets changes, unchanged when only a later pair does."""
    make_two_folders(tmp_path / "a", 4)
    make_two_folders(tmp_path / "b", 4)
    a = folder_source(tmp_path / "a", in_memory=in_memory)
    if in_memory:  # decoded content: the same pixels in another folder give the same digest
        assert a.fingerprint(4) == folder_source(tmp_path / "b", in_memory=True).fingerprint(4)
    before = (a.fingerprint(2), a.fingerprint(4))
    write_png(tmp_path / "a" / "B" / "03.png", np.full((4, 4), 200))
    after = folder_source(tmp_path / "a", in_memory=in_memory)
    assert after.fingerprint(2) == before[0] and after.fingerprint(4) != before[1]


def test_held_out_split_of_a_folder(tmp_path):
    make_two_folders(tmp_path / "train", 6)
    for k in range(3):  # val pairs: A 200 + k, B 203 + k
        write_png(tmp_path / "val" / "A" / f"{k}.png", np.full((4, 4), 200 + k))
        write_png(tmp_path / "val" / "B" / f"{k}.png", np.full((4, 4), 203 + k))
    source = folder_source(tmp_path, split="train", held_out_split="val", limit=4)
    held = source.held_out()
    assert held.num_samples == 3 and held.split == "val"  # limit is the training split's
    inputs = next(held.real_pairs(3)).y[:, 0, 0, 0]
    assert torch.equal(inputs, torch.tensor([unit(200 + k) for k in range(3)]))
    assert held.held_out() is held and folder_source(tmp_path, split="train").held_out().num_samples == 6
    with pytest.raises(DataNotFoundError, match="held_out_split=test"):
        folder_source(tmp_path, split="train", held_out_split="test")
