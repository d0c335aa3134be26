"""SiFID: the formula by hand on pixel features, 0 for identical images, growing with noise."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_cli.data.pyramids import resize_image
from gan_cli.data.single_image import load_image
from gan_cli.metrics.sifid import (
    FashionLowFeatures,
    inception_low_layers,
    sifid,
    sifid_samples,
    spatial_features,
)


@pytest.fixture(scope="module")
def features():
    return FashionLowFeatures()


@pytest.fixture(scope="module")
def photo():
    """skimage's chelsea (the cat) at 60 x 90, in [-1, 1]."""
    return resize_image(load_image(name="chelsea"), (60, 90)).clamp(-1, 1)


def test_positions_are_the_samples_by_hand():
    # identity features on 1-channel 1 x 2 images: the two pixels are the two samples.
    # real: 0, 2 -> mean 1, unbiased variance ((0-1)^2 + (2-1)^2) / 1 = 2
    # fake: 1, 5 -> mean 3, variance ((1-3)^2 + (5-3)^2) / 1 = 8
    # SiFID = (1 - 3)^2 + 2 + 8 - 2 sqrt(2 * 8) = 4 + 10 - 8 = 6
    real = torch.tensor([[[[0.0, 2.0]]]])
    fake = torch.tensor([[[[1.0, 5.0]]]])
    assert sifid(real, fake, nn.Identity()) == pytest.approx(6.0, rel=1e-12)


def test_two_channel_features_by_hand():
    # 2 channels, 3 positions; real: (0, 0), (1, 0), (2, 0) -> mean (1, 0), cov [[1, 0], [0, 0]]
    # fake: the same positions shifted by (0, 3) -> mean (1, 3), the same covariance
    # SiFID = |(0, 3)|^2 + Tr(S + S - 2 S) = 9
    real = torch.tensor([[[[0.0, 1.0, 2.0]], [[0.0, 0.0, 0.0]]]])
    fake = real + torch.tensor([0.0, 3.0]).reshape(1, 2, 1, 1)
    assert sifid(real, fake, nn.Identity()) == pytest.approx(9.0, rel=1e-9)
    assert spatial_features(nn.Identity(), real).tolist() == [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]


def test_low_layer_features_of_the_offline_network(features, photo):
    f = features(photo)
    assert f.shape == (1, 32, 30, 45)  # first conv block + 2x2 max pool, at the image's own size
    grey = photo.mean(dim=1, keepdim=True)
    torch.testing.assert_close(f, features(grey))  # RGB -> the mean of R, G, B
    assert features.identity.startswith("fashion_cnn-") and features.identity.endswith("-pool1")
    assert spatial_features(features, photo[0]).shape == (30 * 45, 32)


def test_sifid_of_identical_images_is_zero(features, photo):
    assert abs(sifid(photo, photo.clone(), features)) < 1e-9
    other = torch.flip(photo, dims=[3])  # a mirrored image: other positions, nearly the same statistics
    assert sifid(photo, other, features) < 0.05 * sifid(photo, torch.zeros_like(photo), features)


def test_sifid_grows_with_noise(features, photo):
    noise = torch.randn(photo.shape, generator=torch.Generator().manual_seed(0))
    values = [sifid(photo, photo + std * noise, features) for std in (0.02, 0.05, 0.1, 0.2, 0.4)]
    assert values[0] > 1e-6
    assert all(b > a for a, b in zip(values, values[1:], strict=False)), values


def test_sifid_samples_is_one_value_per_sample(features, photo):
    noise = torch.randn(3, *photo.shape[1:], generator=torch.Generator().manual_seed(1))
    fakes = photo + torch.tensor([0.0, 0.1, 0.3]).reshape(3, 1, 1, 1) * noise
    values = sifid_samples(photo, fakes, features)
    assert values.shape == (3,) and values.dtype == torch.float64
    for i in range(3):
        assert values[i].item() == pytest.approx(sifid(photo, fakes[i], features), rel=1e-9)
    assert abs(values[0].item()) < 1e-9 and values[2] > values[1] > 0
    # samples of another size (SinGAN's retargeted samples) compare too
    wide = resize_image(photo, (60, 120))
    assert math.isfinite(sifid_samples(photo, [wide], features)[0].item())


def test_inception_low_layers_input_convention():
    net = nn.Module()
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1"):
        setattr(net, name, nn.Identity())
    x = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 1, 1, 3)
    out = inception_low_layers(net, x)
    # [-1, 1] -> uint8 round((x + 1) * 127.5) = 0, 128, 255 -> (v - 128) / 128; grey -> 3 channels
    want = torch.tensor([-1.0, 0.0, 127 / 128]).reshape(1, 1, 1, 3).expand(1, 3, 1, 3)
    torch.testing.assert_close(out, want)  # and no resize to 299
