"""The Jacobian threshold (Tanielian et al. 2020): G's Jacobian norm per sample, the latents it
keeps, the samplers of gan-train's metrics, gan-eval and gan-sample that use it; and the
MLP's uniform latent, tried beside it on the 2D mixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from gan_cli.latents import jacobian_sq_norms, smooth_latents
from gan_cli.metrics.tracker import make_sampler
from tests.conftest import SMALL, read_metrics, run_cli

REPO = Path(__file__).resolve().parents[1]


class Square(nn.Module):
    """G(z) = (z0^2, 3 z1, z0 z1): J = [[2 z0, 0], [0, 3], [z1, z0]], ||J||_F^2 = 5 z0^2 + 9 + z1^2."""

    num_classes = 0
    z_dim = 2

    def forward(self, z, y=None):
        return torch.stack([z[:, 0] ** 2, 3 * z[:, 1], z[:, 0] * z[:, 1]], dim=1)


class Step(nn.Module):
    """A 1D G with two modes at -2 and +2 and a steep path between them: 2 tanh(k z)."""

    num_classes = 0
    z_dim = 1

    def __init__(self, k: float = 40.0):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))

    def forward(self, z, y=None):
        return 2 * torch.tanh(self.k * z)


def test_jacobian_norms_of_a_linear_g_are_its_frobenius_norm():
    A = torch.tensor([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    G = nn.Linear(2, 3, bias=True)
    with torch.no_grad():
        G.weight.copy_(A)
    z = torch.randn(7, 2)
    expected = (1 + 4 + 0 + 1 + 9 + 0.25)  # sum of A's squared entries
    assert torch.allclose(jacobian_sq_norms(G, z), torch.full((7,), expected, dtype=torch.float64))


def test_jacobian_norms_by_hand():
    z = torch.tensor([[1.0, 2.0], [0.0, 0.0], [-2.0, 1.0]])
    # 5 z0^2 + 9 + z1^2
    assert torch.allclose(jacobian_sq_norms(Square(), z),
                          torch.tensor([5 + 9 + 4.0, 9.0, 20 + 9 + 1.0], dtype=torch.float64))


def test_labels_reach_the_generator():
    seen = []

    def G(z, y):
        seen.append(y)
        return z * y[:, None]

    z, y = torch.randn(4, 3), torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert torch.allclose(jacobian_sq_norms(G, z, y), 3 * y.double()**2)  # J = y I_3
    assert all(s is y for s in seen)


def test_smooth_latents_keeps_those_within_threshold_times_the_median():
    # Square's norms^2 at z0 = 0, 1, 2, 3, 4 (z1 = 0): 9, 14, 29, 54, 89; median 29
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]])
    # threshold 1.2: norm^2 <= 1.44 x 29 = 41.76 keeps 9, 14, 29
    assert smooth_latents(Square(), z, None, 1.2).tolist() == [0, 1, 2]
    # threshold 1.75: 3.0625 x 29 = 88.8 keeps all but 89
    assert smooth_latents(Square(), z, None, 1.75).tolist() == [0, 1, 2, 3]
    # threshold 1 keeps the median and below: at least half
    assert smooth_latents(Square(), z, None, 1.0).tolist() == [0, 1, 2]


def test_smooth_latents_refuses_a_threshold_below_the_median():
    with pytest.raises(ValueError, match=">= 1"):
        smooth_latents(Square(), torch.zeros(3, 2), None, 0.5)


def test_the_sampler_drops_the_steep_path_between_two_modes():
    G = Step()
    plain = make_sampler(G, 1, torch.device("cpu"), seed=0, batch_size=200)(2000)
    sampler = make_sampler(G, 1, torch.device("cpu"), seed=0, batch_size=200, jacobian_threshold=10)
    smooth = sampler(2000)
    assert smooth.shape == plain.shape == (2000, 1)
    between = lambda x: (x.abs() < 1.9).float().mean().item()  # noqa: E731
    # |z| < atanh(0.95) / 40 = 0.0458 maps between the modes: 3.7% of a standard normal
    assert 0.025 < between(plain) < 0.05
    # in float32, tanh(40 z) is exactly +-1 beyond |z| ~ 0.23, where dG/dz is exactly 0: more than
    # half of a batch, so its median is 0 and the threshold keeps the flat latents only
    assert between(smooth) == 0
    # the same stream at every call: reproducible numbers
    assert torch.equal(make_sampler(G, 1, torch.device("cpu"), seed=0, batch_size=200,
                                    jacobian_threshold=10)(2000), smooth)
    # with no steep region, the threshold keeps every latent: the plain samples
    lin = Step(k=0.5)  # 2 tanh(z / 2): ||J||^2 = sech^4(z / 2) within a factor 1.5^2 of the median
    a = make_sampler(lin, 1, torch.device("cpu"), seed=0, batch_size=100)(300)
    b = make_sampler(lin, 1, torch.device("cpu"), seed=0, batch_size=100, jacobian_threshold=1.5)(300)
    assert torch.equal(a, b)


@pytest.mark.slow
def test_gan_train_logs_the_metrics_of_the_kept_samples_beside_the_plain_ones(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "model=mlp", "dataset=ring8", "metrics.every_steps=10",
                    "metrics.jacobian_threshold=10"], run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = [r for r in read_metrics(run_dir) if "modes_captured" in r][-1]
    for key in ("modes_captured", "high_quality_fraction", "reverse_kl"):
        assert key in last and f"jacobian/{key}" in last
    assert "best/jacobian/modes_captured" in last  # tracked like the plain keys
    assert 0 <= last["jacobian/high_quality_fraction"] <= 1
    bad = run_cli([*SMALL, "model=mlp", "dataset=ring8", "metrics.jacobian_threshold=0.5"],
                  tmp_path / "bad")
    assert bad.returncode == 2 and "jacobian_threshold" in bad.stderr and "Traceback" not in bad.stderr


def test_the_figure_script_splits_samples_by_the_samplers_rule():
    import importlib.util

    from gan_cli.latents import sample_latents
    from gan_cli.seeding import derive_seed

    spec = importlib.util.spec_from_file_location("jacobian_figure", REPO / "scripts" / "jacobian_figure.py")
    jf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(jf)
    G = Step(k=8.0)
    x, kept = jf.split_samples(G, 1, n=500, batch_size=250, threshold=10, seed=4)
    g = torch.Generator().manual_seed(derive_seed(4, "eval_z"))
    z = torch.cat([sample_latents(250, 1, generator=g) for _ in range(2)])  # drawn as the sampler does
    with torch.no_grad():
        assert torch.equal(x, G(z))
    # the rule of smooth_latents, batch by batch
    expected = torch.zeros(500, dtype=torch.bool)
    for start in (0, 250):
        expected[start + smooth_latents(G, z[start:start + 250], None, 10)] = True
    assert torch.equal(kept, expected)
    # ||J||^2 = (16 sech^2(8 z))^2 ~ e^(-32 |z|) away from 0, and the median latent has |z| about
    # 0.674: kept are |z| >= 0.674 - ln(100) / 32 = 0.53, 60% of a standard normal
    assert 0.5 < kept.float().mean() < 0.7
    assert (z[kept].abs() > 0.45).all() and (z[~kept].abs() < 0.6).all()
    # and the metric sampler keeps exactly those latents' samples, in order, batch by batch
    first = make_sampler(G, 1, torch.device("cpu"), seed=4, batch_size=250, jacobian_threshold=10)(250)
    assert torch.equal(first[: int(kept[:250].sum())], x[:250][kept[:250]])


def test_the_mlps_uniform_latent_is_the_normal_cdf_of_z():
    from gan_cli.latents import shape_latent
    from gan_cli.models.mlp import Generator

    torch.manual_seed(0)
    G = shape_latent(Generator(z_dim=2, data_shape=(2,), hidden=[8], activation="tanh"), "uniform")
    z = torch.tensor([[0.0, 1.0], [-1.0, 30.0]])
    # Phi(0) = 0.5 -> 0; Phi(1) = 0.841345 -> 0.682689; Phi(-1) -> -0.682689; Phi(30) = 1 -> 1
    u = torch.tensor([[0.0, 0.682689], [-0.682689, 1.0]])
    assert torch.allclose(G(z), G.net(u), atol=1e-5)
    # the schema checks the name (the constructor trusts it): issue 27
    from tests.test_config import assert_refused

    assert_refused(["model=mlp", "dataset=ring8", "model.generator.latent=gaussian"],
                   "model.generator.latent=gaussian: must be one of normal, uniform")
