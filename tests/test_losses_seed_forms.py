"""The lecture notes' forms of DRAGAN and MMD-GAN (shared/seeds/) beside the authors' code's,
against values worked out by hand (float64, tiny batches)."""

from __future__ import annotations

import math

import pytest
import torch

from gan_cli import losses as L
from tests.test_losses import DT, FAKE, PEN_FAKE, PEN_REAL, HalfSquare, col, pass_through, sp, t


def test_dragan_minimax_generator_is_the_papers():
    """g_loss=minimax: L_G = E log(1 - D(G(z))) = -E softplus(s) on the scores -1, 0.5."""
    loss_g, _ = L.DRAGAN(g_loss="minimax").g_loss(pass_through, col(FAKE))
    assert loss_g.item() == pytest.approx(-(sp(-1.0) + sp(0.5)) / 2, rel=1e-12)
    # the default is the authors' code's -log D(G(z)) = softplus(-s)
    loss_g, _ = L.DRAGAN().g_loss(pass_through, col(FAKE))
    assert loss_g.item() == pytest.approx((sp(1.0) + sp(-0.5)) / 2, rel=1e-12)


def test_dragan_normal_perturbation_is_x_plus_gaussian_noise():
    """perturb=normal: x_p = x + 0.5 std(x) eps, eps ~ N(0, 1) elementwise (c = (0.5 std)^2), the
    draw replayed from the same seed; GP at those points, ||grad D(x_p)|| = ||x_p|| for HalfSquare."""
    D, real = HalfSquare(), t(PEN_REAL)
    std = math.sqrt(30 / 6 - (8 / 6) ** 2)  # population std of the six values 3 4 0 2 -1 0
    torch.manual_seed(5)
    eps = torch.randn(3, 2, dtype=DT).tolist()
    torch.manual_seed(5)
    loss_d, stats = L.DRAGAN(dragan_lambda=10.0, perturb_scale=0.5, perturb="normal").d_loss(
        D, real, t(PEN_FAKE))
    points = [[x + 0.5 * std * e for x, e in zip(row, erow, strict=True)]
              for row, erow in zip(PEN_REAL, eps, strict=True)]
    assert sum(D.calls[-1].tolist(), []) == pytest.approx(sum(points, []), rel=1e-12)
    assert any(e < 0 for e in sum(eps, []))  # below x too, unlike the uniform (one-sided) points
    gp = sum((math.hypot(*p) - 1.0) ** 2 for p in points) / 3
    assert stats["gp"].item() == pytest.approx(gp, rel=1e-12)
    bce = (sp(-12.5) + sp(-2.0) + sp(-0.5)) / 3 + (sp(0.0) + sp(2.0) + sp(1.0)) / 3
    assert loss_d.item() == pytest.approx(bce + 10.0 * gp, rel=1e-12)


def test_dragan_keys_are_checked_by_the_schema():
    from gan_cli.config.checks import FieldError
    from gan_cli.config.loss import DRAGANConfig

    with pytest.raises(FieldError, match="perturb"):
        DRAGANConfig(perturb="gauss")
    with pytest.raises(FieldError, match="g_loss"):
        DRAGANConfig(g_loss="wgan")
