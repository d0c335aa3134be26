"""dataset=single_image: loading (file or scikit-image), the pyramid, batches at the current scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.config.data import SKIMAGE_IMAGES
from gan_cli.data.pyramids import scale_sizes
from gan_cli.data.single_image import load_image, single_image
from gan_cli.errors import ConfigError, RuntimeFailure
from tests.test_training_extensions import compose_train


@pytest.fixture
def png(tmp_path):
    """A 40 x 60 RGB file: red ramp 0..255 along x, green 0, blue 255."""
    array = np.zeros((40, 60, 3), dtype=np.uint8)
    array[:, :, 0] = np.linspace(0, 255, 60).round().astype(np.uint8)
    array[:, :, 2] = 255
    path = tmp_path / "ramp.png"
    Image.fromarray(array).save(path)
    return path


def test_load_file_maps_0_255_to_minus_1_1(png):
    x = load_image(png)
    assert x.shape == (1, 3, 40, 60) and x.dtype == torch.float32
    assert x[0, 0, 0, 0].item() == -1.0  # red 0
    assert x[0, 0, 0, -1].item() == 1.0  # red 255
    assert torch.all(x[0, 1] == -1.0) and torch.all(x[0, 2] == 1.0)
    grey = load_image(png, channels=1)
    assert grey.shape == (1, 1, 40, 60)
    torch.testing.assert_close(grey, x.mean(dim=1, keepdim=True))  # (R + G + B) / 3


def test_default_image_ships_with_scikit_image():
    source = single_image(batch_size=2)  # skimage.data.rocket: 427 x 640
    assert source.sizes == scale_sizes(427, 640)
    assert source.sizes[-1] == (167, 250) and min(source.sizes[0]) == 25
    assert source.info.shape == (3, 167, 250) and source.info.num_classes == 0 and source.info.bounded
    assert source.scale_shapes == [(3, h, w) for h, w in source.sizes]
    x, y = source.next()
    assert y is None and x.shape == (2, 3, 167, 250)
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert "rocket" in SKIMAGE_IMAGES and "skimage" in source.name


def test_batches_follow_the_current_scale(png):
    source = single_image(str(png), batch_size=3, min_size=25)
    # 40 x 60: N = ceil(log(25/40) / log(0.75)) = 2 scales down, r = (25/40) ** 0.5 = 0.79057:
    # 25 x 37.5 (rounded either way), 31.62 x 47.43 -> (32, 47), then (40, 60)
    assert source.num_scales == 3 and source.sizes[1:] == [(32, 47), (40, 60)]
    x, _ = source.next()
    assert x.shape == (3, 3, 40, 60)  # the finest scale until told otherwise
    torch.testing.assert_close(x[0], load_image(png)[0])
    torch.testing.assert_close(x[1], x[0])  # copies of the one image
    source.set_stage(1)
    assert source.next()[0].shape == (3, 3, 32, 47)
    torch.testing.assert_close(source.next()[0][:1], source.image(1))
    with pytest.raises(ValueError, match="out of range"):
        source.set_stage(3)


def test_state_dict_restores_the_scale(png):
    source = single_image(str(png))
    source.set_stage(0)
    other = single_image(str(png))
    other.load_state_dict(source.state_dict())
    assert other.scale == 0
    different = single_image(str(png), min_size=20)
    with pytest.raises(ConfigError, match="scales"):
        different.load_state_dict(source.state_dict())


def test_fingerprint_names_the_image_not_the_scale(png, tmp_path):
    # the reference-statistics cache key (metrics/tracker.py): the same image gives the same
    # digest whatever the current scale; another image (one pixel changed) another digest
    source = single_image(str(png))
    first = source.fingerprint(50)
    source.set_stage(0)
    assert source.fingerprint(50) == first == single_image(str(png)).fingerprint(1)
    array = np.asarray(Image.open(png)).copy()
    array[0, 0, 1] = 1
    other = tmp_path / "other.png"
    Image.fromarray(array).save(other)
    assert single_image(str(other)).fingerprint(50) != first


def test_save_figure_puts_the_real_image_first(png, tmp_path):
    source = single_image(str(png))
    source.save_figure(torch.zeros(2, 3, 40, 60), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="scikit-image ships"):  # the schema's
        compose_train("dataset=single_image", "dataset.name=eagle")  # skimage downloads it: not offline
    with pytest.raises(RuntimeFailure, match="no such image file"):
        single_image(str(tmp_path / "missing.png"))
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(RuntimeFailure, match="not a readable image"):
        single_image(str(tmp_path / "bad.png"))
    with pytest.raises(ConfigError, match="factor"):  # the schema's
        compose_train("dataset=single_image", "dataset.scale_factor=1.5")
