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


class _Identity(torch.nn.Module):
    """D whose features are the sample itself, carrying a linear decoder f_dec(f) = 0.5 f."""

    num_classes = 0

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.05, dtype=DT))  # a weight the clipping reaches
        self.mmd_decoder = torch.nn.Linear(2, 2, bias=False).to(DT)
        with torch.no_grad():
            self.mmd_decoder.weight.copy_(0.5 * torch.eye(2, dtype=DT))

    def forward(self, x, y=None):
        return x + 0 * self.w


def test_mmd_autoencoder_terms_by_hand():
    """L_D = -MMD^2 + ae_lambda (E||x - 0.5 x||^2 + E||x~ - 0.5 x~||^2): the reconstruction errors
    are 0.25 mean(x^2) over samples and values."""
    real, fake = t([[1.0, 0.0], [0.0, 3.0]]), t([[2.0, 2.0], [-1.0, 0.0]])
    plain = L.MMD(sigmas=[1.0], clip_value=None)
    full = L.MMD(sigmas=[1.0], clip_value=None, ae_lambda=8.0)
    D = _Identity()
    loss0, _ = plain.d_loss(D, real, fake)
    loss, stats = full.d_loss(D, real, fake)
    rec_real = 0.25 * (1 + 0 + 0 + 9) / 4  # 0.625
    rec_fake = 0.25 * (4 + 4 + 1 + 0) / 4  # 0.5625
    assert stats["rec_real"].item() == pytest.approx(rec_real, rel=1e-12)
    assert stats["rec_fake"].item() == pytest.approx(rec_fake, rel=1e-12)
    # MMD^2 (unbiased, one kernel of sigma 1) of these points: k = exp(-d^2 / 2)
    k = lambda a, b: math.exp(-((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) / 2)  # noqa: E731
    r, f = [[1.0, 0.0], [0.0, 3.0]], [[2.0, 2.0], [-1.0, 0.0]]
    mmd = (2 * k(r[0], r[1]) / 2 + 2 * k(f[0], f[1]) / 2
           - 2 * sum(k(a, b) for a in r for b in f) / 4)
    assert loss0.item() == pytest.approx(-mmd, rel=1e-9)
    assert loss.item() == pytest.approx(-mmd + 8.0 * (rec_real + rec_fake), rel=1e-9)
    # G's loss has no reconstruction term
    assert full.g_loss(D, fake, real=real)[0].item() == pytest.approx(mmd, rel=1e-9)
    # the clipping reaches the encoder, not the decoder
    L.MMD(clip_value=0.01, ae_lambda=8.0).after_d_step(D, {})
    assert D.w.item() == pytest.approx(0.01) and D.mmd_decoder.weight[0, 0].item() == pytest.approx(0.5)


def test_mmd_decoder_is_added_to_d_and_sized_from_its_features():
    from gan_cli.data.base import DataInfo
    from gan_cli.models.mlp import Discriminator

    D = Discriminator(data_shape=(2,), output="features", hidden=[16, 8])
    info = DataInfo(shape=(2,), bounded=False)
    assert L.MMD().d_modules(D, info) == {}
    dec = L.MMD(ae_lambda=8.0, decoder_hidden=[4]).d_modules(D, info)["mmd_decoder"]
    assert [m.weight.shape for m in dec if isinstance(m, torch.nn.Linear)] == [(4, 8), (2, 4)]
    assert dec(torch.zeros(3, 8)).shape == (3, 2)


@pytest.mark.slow
def test_mmd_autoencoder_trains_through_the_cli(tmp_path):
    """gan-train loss=mmd loss.ae_lambda=8 on ring8: finite losses, the reconstruction logged, the
    decoder saved in D's state, and rebuilt with D by train.reset_d_at."""
    from tests.conftest import SMALL, last_ckpt, read_metrics, run_cli

    run = tmp_path / "run"
    proc = run_cli([*SMALL, "loss=mmd", "loss.ae_lambda=8", "loss.bandwidth=median",
                    "loss.decoder_hidden=[16]", "train.steps=6", "train.log_every_steps=3",
                    "train.reset_d_at=[4]"], run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "D starts again from scratch at step 4" in proc.stdout + proc.stderr
    records = read_metrics(run)
    assert records and all(math.isfinite(r["loss_d"]) and math.isfinite(r["rec_real"]) for r in records)
    state = last_ckpt(run)["D"]
    assert {"mmd_decoder.0.weight", "mmd_decoder.2.weight"} <= set(state)
