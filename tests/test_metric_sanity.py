"""Metric sanity (gan_cli/metrics/sanity.py): each disturbance against values worked out by hand or
a reference implementation, and FD rising with Gaussian noise on real Fashion-MNIST."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_cli.metrics.sanity import (
    DISTURBANCES,
    black_rectangles,
    contamination,
    disturbed,
    gaussian_blur,
    gaussian_noise,
    metric_sanity,
    monotone,
    plot_sanity,
    salt_and_pepper,
    swirl,
)

HAS_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_disturbance_leaves_level_zero_unchanged():
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    other = torch.zeros(4, 1, 28, 28)
    for name, d in DISTURBANCES.items():
        assert d.levels[0] == 0
        assert torch.allclose(disturbed(name, x, 0.0, other=other), x, atol=1e-6), name


def test_gaussian_noise_mixes_in_noise_rescaled_to_the_pixel_range():
    x = torch.full((3, 1, 8, 8), 0.2)
    noise = gaussian_noise(x, 1.0, gen())  # alpha = 1: the noise image alone
    flat = noise.flatten(1)
    assert flat.min(1).values.tolist() == pytest.approx([-1.0] * 3)
    assert flat.max(1).values.tolist() == pytest.approx([1.0] * 3)
    half = gaussian_noise(x, 0.5, gen())  # the same draw: (x + N) / 2
    assert torch.allclose(half, (x + noise) / 2, atol=1e-6)


def test_gaussian_blur_by_hand():
    x = -torch.ones(1, 1, 21, 21)
    x[0, 0, 10, 10] = 1.0  # a bright dot on black
    y = gaussian_blur(x, 1.0, gen())
    taps = torch.exp(-torch.arange(-3.0, 4.0) ** 2 / 2)
    taps = taps / taps.sum()  # 7 taps for sigma 1
    # black stays black away from the dot; the dot spreads as the outer product of the taps
    assert float(y[0, 0, 10, 10]) == pytest.approx(-1 + 2 * float(taps[3] ** 2), abs=1e-5)
    assert float(y[0, 0, 10, 12]) == pytest.approx(-1 + 2 * float(taps[3] * taps[5]), abs=1e-5)
    assert float(y[0, 0, 0, 0]) == pytest.approx(-1.0)
    flat = torch.full((1, 1, 9, 9), 0.3)
    assert torch.allclose(gaussian_blur(flat, 4.0, gen()), flat)  # a constant image stays constant


def test_black_rectangles_cover_between_one_and_five_squares():
    x = torch.ones(20, 1, 28, 28)
    y = black_rectangles(x, 0.5, gen())  # side round(0.5 * 28 / 2) = 7 px
    assert set(torch.unique(y).tolist()) <= {-1.0, 1.0}
    covered = (y == -1).flatten(1).sum(1)
    assert covered.min() >= 49 and covered.max() <= 5 * 49
    assert (covered > 49).any()  # several squares, not one


def test_swirl_matches_scikit_images():
    from skimage.transform import swirl as sk_swirl

    image = torch.rand(1, 1, 28, 28, generator=gen(1), dtype=torch.float64)
    ours = swirl(image, 4.0)[0, 0].numpy()
    theirs = sk_swirl(image[0, 0].numpy(), center=(13.5, 13.5), strength=4.0, radius=14.0, order=1,
                      mode="edge")
    assert np.abs(ours - theirs).max() < 1e-6
    assert not np.allclose(ours, image[0, 0].numpy(), atol=1e-2)


def test_salt_and_pepper_hits_a_fraction_alpha_of_the_pixels():
    x = torch.zeros(50, 1, 40, 40)
    y = salt_and_pepper(x, 0.2, gen())
    hit = y != 0
    assert float(hit.float().mean()) == pytest.approx(0.2, abs=0.01)  # 80,000 pixels
    assert float((y == 1).float().sum() / hit.float().sum()) == pytest.approx(0.5, abs=0.02)


def test_contamination_replaces_exactly_that_fraction():
    x, other = torch.zeros(40, 1, 4, 4), torch.ones(40, 1, 4, 4)
    y = contamination(x, 0.25, gen(), other)
    assert int((y.flatten(1) == 1).all(1).sum()) == 10
    with pytest.raises(ValueError, match="another dataset"):
        contamination(x, 0.25, gen())


def test_monotone():
    assert monotone([1, 2, 2, 5], rising=True) and not monotone([1, 3, 2], rising=True)
    assert monotone([5, 4, 4], rising=False) and not monotone([5, 6], rising=False)


@pytest.mark.skipif(not HAS_FASHION, reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.slow
def test_fd_rises_monotonically_with_gaussian_noise(tmp_path: Path):
    from gan_cli.data.images import fashion_mnist
    from gan_cli.metrics.tracker import metric_options, real_data

    train = fashion_mnist(batch_size=1, split="train", limit=1000)
    test = fashion_mnist(batch_size=1, split="test", limit=400)
    real = torch.cat(list(test.real_batches(400)))
    options = metric_options(train, {"num_real": 1000, "keep_features": 1000,
                                     "cache_dir": str(tmp_path / "cache")})
    result = metric_sanity(real, real_data(train, 1000, "train"), options, names=["gaussian_noise"])
    row = result["gaussian_noise"]
    assert row["fd_rises"] and row["fd_fashion"][-1] > 4 * row["fd_fashion"][0]
    assert all(math.isfinite(v) for v in row["cis_fashion_mean"])
    examples = {"gaussian_noise": [disturbed("gaussian_noise", real[:1], a) for a in row["levels"]]}
    plot_sanity(result, examples, tmp_path / "sanity.png")
    assert (tmp_path / "sanity.png").is_file()
