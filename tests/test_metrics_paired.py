"""paired_metrics: L1, PSNR and SSIM of identical images, of a known noise level, and of constant
images (SSIM by hand), aggregated over several batches."""

from __future__ import annotations

import math

import pytest
import torch

from gan_cli.data.base import Batch
from gan_cli.metrics.paired import paired_metrics
from gan_cli.models.pix2pix import UNetGenerator

DT = torch.float64


class Pairs:
    """A stand-in paired source: fixed targets and inputs, ``real_pairs`` in index order."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def real_pairs(self, num, batch_size=500):
        stop = min(num, len(self.x))
        for start in range(0, stop, batch_size):
            end = min(start + batch_size, stop)
            yield Batch(x=self.x[start:end], y=self.y[start:end])


def identity(z, y):
    return y


def checkerboard(side: int) -> torch.Tensor:
    i = torch.arange(side)
    return ((i.view(-1, 1) + i.view(1, -1)) % 2 * 2 - 1).to(DT)  # +1 / -1


def test_identical_images():
    x = torch.rand(4, 3, 16, 16, dtype=DT) - 0.5
    m = paired_metrics(identity, Pairs(x, x.clone()), num=4, batch_size=3)
    assert m["l1"] == 0.0
    assert m["psnr_db"] == math.inf
    assert m["ssim"] == pytest.approx(1.0, abs=1e-6)


def test_known_noise_levels_per_image_mean():
    """Image 0 is off by +-0.2 in [-1, 1] (+-0.1 in [0, 1]): MSE 0.01, PSNR = 10 log10(1 / 0.01)
    = 20 dB; image 1 by +-0.02 (+-0.01): MSE 1e-4, 40 dB. The per-image mean is 30 dB (a PSNR
    of the pooled MSE would be 10 log10(2 / 0.0101) = 22.97 dB). L1 = (0.2 + 0.02) / 2."""
    x = torch.rand(2, 1, 16, 16, dtype=DT) - 0.5  # far from the clamp at +-1
    noise = torch.stack([0.2 * checkerboard(16), 0.02 * checkerboard(16)]).unsqueeze(1)
    m = paired_metrics(identity, Pairs(x, x + noise), num=2, batch_size=1)
    assert m["psnr_db"] == pytest.approx(30.0, abs=1e-4)  # torchmetrics sums in float32
    assert m["l1"] == pytest.approx(0.11, abs=1e-9)
    assert 0 < m["ssim"] < 1


def test_ssim_of_constant_images_by_hand():
    """Constant images a, b (in [0, 1]): no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1),
    C1 = (0.01 * 1)^2. a = 0.5, b = 0.25: 0.2501 / 0.3126."""
    x = torch.full((1, 1, 16, 16), 0.0, dtype=DT)  # 0.5 in [0, 1]
    y = torch.full((1, 1, 16, 16), -0.5, dtype=DT)  # 0.25
    m = paired_metrics(identity, Pairs(x, y), num=1)
    assert m["ssim"] == pytest.approx((2 * 0.5 * 0.25 + 1e-4) / (0.25 + 0.0625 + 1e-4), rel=1e-6)
    assert m["psnr_db"] == pytest.approx(10 * math.log10(1 / 0.25**2), rel=1e-6)  # 12.04 dB
    assert m["l1"] == pytest.approx(0.5)


def test_only_num_pairs_and_outputs_clamped():
    x = torch.zeros(5, 1, 16, 16, dtype=DT)
    y = torch.cat([torch.full((3, 1, 16, 16), 3.0, dtype=DT), torch.zeros(2, 1, 16, 16, dtype=DT)])
    m = paired_metrics(identity, Pairs(x, y), num=3, batch_size=2)  # the 2 zero pairs unused
    assert m["l1"] == pytest.approx(1.0)  # 3.0 is clamped to 1: |1 - 0|
    assert m["psnr_db"] == pytest.approx(10 * math.log10(1 / 0.25))  # MSE (0.5)^2 in [0, 1]


def test_generator_gets_latents_and_rng_is_untouched():
    seen = []

    class G:
        z_dim = 3

        def __call__(self, z, y):
            seen.append(z.shape)
            return y

    x = torch.zeros(5, 1, 16, 16, dtype=DT)
    state = torch.get_rng_state()
    paired_metrics(G(), Pairs(x, x), num=5, batch_size=2)
    assert seen == [(2, 3), (2, 3), (1, 3)]
    assert torch.equal(torch.get_rng_state(), state)  # training's RNG stream is not consumed


def test_reproducible_with_dropout_noise():
    torch.manual_seed(0)
    g = UNetGenerator(z_dim=1, data_shape=(1, 32, 32), width=4).eval()  # dropout stays on
    x, y = torch.rand(4, 1, 32, 32) * 2 - 1, torch.rand(4, 1, 32, 32) * 2 - 1
    a = paired_metrics(g, Pairs(x, y), num=4, batch_size=2, seed=1)
    b = paired_metrics(g, Pairs(x, y), num=4, batch_size=2, seed=1)
    c = paired_metrics(g, Pairs(x, y), num=4, batch_size=2, seed=2)
    assert a == b and a != c


def test_errors():
    x = torch.zeros(2, 1, 16, 16)
    with pytest.raises(ValueError, match="no pairs"):
        paired_metrics(identity, Pairs(x[:0], x[:0]), num=2)
    with pytest.raises(ValueError, match="does not match"):
        paired_metrics(lambda z, y: y[:, :, :8], Pairs(x, x), num=2)
