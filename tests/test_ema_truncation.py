"""EMA of the generator, the truncation trick, and the linear learning-rate decay."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

from gan_cli.build import lr_factor
from gan_cli.ema import EMA, ema_beta
from gan_cli.latents import sample_latents
from gan_cli.models.layers import apply_spectral_norm


def small_g() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def perturb(net: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g))
        net[1].running_mean.add_(float(seed))  # a buffer that changes, like BN's statistics


# ---------------------------------------------------------------------------------------------
# EMA


def test_ema_with_decay_0_equals_the_generator():
    G = small_g()
    ema = EMA(G)
    for seed in (1, 2, 3):
        perturb(G, seed)
        ema.update(G, beta=0.0)
        for (name, a), b in zip(G.state_dict().items(), ema.module.state_dict().values(), strict=True):
            assert torch.equal(a, b), name


def test_ema_with_a_fixed_decay_matches_the_hand_computed_average_after_three_steps():
    G = small_g()
    w0 = [p.detach().clone() for p in G.parameters()]
    ema = EMA(G)
    snapshots = []
    for seed in (1, 2, 3):
        perturb(G, seed)
        snapshots.append([p.detach().clone() for p in G.parameters()])
        ema.update(G, beta=0.9)
    b = 0.9
    for i, p_ema in enumerate(ema.module.parameters()):
        # e1 = b w0 + (1-b) w1; e2 = b e1 + (1-b) w2; e3 = b e2 + (1-b) w3
        expected = (b**3 * w0[i] + b**2 * (1 - b) * snapshots[0][i] + b * (1 - b) * snapshots[1][i]
                    + (1 - b) * snapshots[2][i])
        torch.testing.assert_close(p_ema, expected, rtol=1e-6, atol=1e-6)
    # buffers are copied, not averaged
    assert torch.equal(ema.module[1].running_mean, G[1].running_mean)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_ema_copies_spectral_norm_vectors_rather_than_averaging_them():
    G = apply_spectral_norm(small_g())
    ema = EMA(G)
    G(torch.randn(5, 4))  # a power iteration moves G's u and v
    ema.update(G, beta=0.99)
    u, u_ema = G[0].parametrizations.weight[0]._u, ema.module[0].parametrizations.weight[0]._u
    assert torch.equal(u, u_ema) and u_ema.norm().item() == pytest.approx(1.0, abs=1e-6)


class TinyG(nn.Module):
    """z -> Linear -> BatchNorm: the BN input is known, so are its statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.bn = nn.Linear(4, 3), nn.BatchNorm1d(3)

    def forward(self, z, y=None):
        return self.bn(self.lin(z))


def test_ema_standing_statistics_are_the_averaged_generators_own():
    torch.manual_seed(0)
    G = TinyG()
    ema = EMA(G)
    with torch.no_grad():
        G.lin.weight.add_(1.0)
        G.bn.running_mean.fill_(100.0)  # G's statistics, wrong for G_ema's weights
    ema.update(G, beta=0.5)
    assert torch.equal(ema.module.bn.running_mean, G.bn.running_mean)  # copied
    ema.recompute_batchnorm(z_dim=4, num_classes=0, batches=3, batch_size=50, seed=7,
                            device=torch.device("cpu"))
    g = torch.Generator().manual_seed(7)
    z = torch.cat([torch.randn(50, 4, generator=g) for _ in range(3)])
    with torch.no_grad():
        h = ema.module.lin(z)
    torch.testing.assert_close(ema.module.bn.running_mean, h.mean(0))
    # cumulative average of the per-batch unbiased variances
    var = torch.stack([h[i * 50:(i + 1) * 50].var(0) for i in range(3)]).mean(0)
    torch.testing.assert_close(ema.module.bn.running_var, var)
    assert not ema.module.training and ema.module.bn.momentum == G.bn.momentum
    ema.update(G, beta=0.5)  # the next update copies G's statistics again
    assert torch.equal(ema.module.bn.running_mean, G.bn.running_mean)


def test_ema_beta_half_life_rampup_and_start():
    # half-life 10 kimg at batch 64: after 10,000 images the old weights count for one half
    beta = ema_beta(10.0, 64, nimg=10**9)
    assert beta ** (10_000 / 64) == pytest.approx(0.5)
    # ramp-up: the half-life is at most rampup * images so far
    assert ema_beta(10.0, 64, nimg=6400, rampup=0.05) == pytest.approx(0.5 ** (64 / 320))
    assert ema_beta(10.0, 64, nimg=10**9, rampup=0.05) == pytest.approx(beta)
    # before start_kimg: beta 0, the average copies G
    assert ema_beta(10.0, 64, nimg=63_999, start_kimg=64) == 0.0
    assert ema_beta(10.0, 64, nimg=64_000, start_kimg=64) == pytest.approx(beta)
    # BigGAN's decay 0.9999 per step of 64 images is a half-life of 443.6 kimg
    assert ema_beta(443.6, 64, nimg=10**9) == pytest.approx(0.9999, abs=1e-8)


# ---------------------------------------------------------------------------------------------
# Truncation


@pytest.mark.parametrize("method", ["resample", "clamp"])
@pytest.mark.parametrize("t", [2.0, 1.0, 0.5, 0.04])
def test_truncation_keeps_every_latent_component_within_the_threshold(method, t):
    g = torch.Generator().manual_seed(0)
    z = sample_latents(20_000, 16, generator=g, truncation=t, method=method)
    assert z.shape == (20_000, 16) and z.dtype == torch.float32
    assert z.abs().max().item() <= t
    assert z.std().item() > 0


def test_resampling_gives_the_truncated_normal_distribution():
    """BigGAN's resampling draws from N(0, 1) conditioned on |z| <= t: compare with scipy."""
    t = 1.0
    z = sample_latents(200_000, 4, generator=torch.Generator().manual_seed(0), truncation=t)
    expected = stats.truncnorm(-t, t)
    assert z.std().item() == pytest.approx(expected.std(), rel=1e-2)
    ks = stats.kstest(z[:, 0].numpy(), expected.cdf)
    assert ks.pvalue > 1e-3
    # clamping piles mass up at the threshold instead
    zc = sample_latents(200_000, 4, generator=torch.Generator().manual_seed(0), truncation=t,
                        method="clamp")
    assert (zc.abs() == t).float().mean().item() == pytest.approx(2 * stats.norm.sf(t), rel=2e-2)


def test_untruncated_sampling_is_the_plain_normal_stream():
    a = sample_latents(8, 4, generator=torch.Generator().manual_seed(3))
    b = torch.randn(8, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_one_seed_gives_the_same_direction_at_every_threshold():
    """What the sweep figure relies on: smaller thresholds pull each component towards 0."""
    zs = [sample_latents(64, 8, generator=torch.Generator().manual_seed(5), truncation=t)
          for t in (2.0, 1.0, 0.5)]
    assert torch.equal(torch.sign(zs[0]), torch.sign(zs[1]))
    assert torch.equal(torch.sign(zs[1]), torch.sign(zs[2]))
    assert (zs[0].abs() >= zs[1].abs()).all() and (zs[1].abs() >= zs[2].abs()).all()


def test_bad_truncation_arguments():
    with pytest.raises(ValueError, match="> 0"):
        sample_latents(2, 2, truncation=0.0)
    with pytest.raises(ValueError, match="resample"):
        sample_latents(2, 2, truncation=1.0, method="reflect")


# ---------------------------------------------------------------------------------------------
# Learning-rate decay


def test_linear_decay_falls_from_1_to_0_over_the_run():
    assert lr_factor("none", 500, 1000) == 1.0
    assert [lr_factor("linear", s, 100) for s in (0, 25, 50, 99, 100)] == \
        [1.0, 0.75, 0.5, pytest.approx(0.01), 0.0]
    assert math.isclose(lr_factor("linear", 1, 3), 2 / 3)


def test_a_late_linear_decay_holds_1_until_its_start():
    # start 60 of 100: 1 up to step 60, then (100 - s) / 40
    assert [lr_factor("linear", s, 100, start=60) for s in (0, 59, 60, 70, 90, 100)] == \
        [1.0, 1.0, 1.0, 0.75, 0.25, 0.0]
    assert lr_factor("none", 90, 100, start=60) == 1.0
