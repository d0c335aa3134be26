"""R1 and R2, the zero-centred gradient penalties (Mescheder et al. 2018), against values by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_cli.losses import R1, R2, RegContext, grad_sq_norm, lazy_factor

DT = torch.float64

# Points chosen so that every penalty below has a different value at the real and the fake ones.
REAL = [[1.0, 0.0], [1.0, 2.0]]  # ||x||^2 = 1, 5
FAKE = [[0.0, 0.0], [3.0, 0.0]]  # ||x||^2 = 0, 9


def t(values, requires_grad=False):
    return torch.tensor(values, dtype=DT, requires_grad=requires_grad)


class Linear(nn.Module):
    """D(x) = w . x + b: grad_x D = w at every x."""

    def __init__(self, w, b=0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=DT))
        self.b = nn.Parameter(torch.tensor(b, dtype=DT))
        self.seen_y = []

    def forward(self, x, y=None):
        self.seen_y.append(y)
        return x.flatten(1) @ self.w + self.b


class Quadratic(nn.Module):
    """D(x) = a * sum x^2: grad_x D = 2 a x, ||grad||^2 = 4 a^2 ||x||^2, depends on x."""

    def __init__(self, a=1.0):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=DT))

    def forward(self, x, y=None):
        return self.a * x.flatten(1).pow(2).sum(1)


def ctx(D, real=REAL, fake=FAKE, y=None):
    return RegContext(G=None, D=D, real=t(real), y=y, fake=t(fake), z=torch.zeros(len(fake), 1))


def test_r1_of_a_linear_discriminator_is_gamma_half_norm_w_squared():
    # grad = w = (1.2, 1.6), ||w||^2 = 1.44 + 2.56 = 4 at every point: R1 = 10/2 * 4 = 20
    loss, stats = R1(gamma=10.0)(ctx(Linear([1.2, 1.6], 0.1)))
    assert loss.item() == pytest.approx(20.0)
    assert stats["r1"].item() == pytest.approx(4.0)


def test_r1_and_r2_of_a_quadratic_discriminator_at_their_own_points():
    # ||grad||^2 = 4 ||x||^2. Real: 4 * (1 + 5) / 2 = 12 -> R1 = 10/2 * 12 = 60.
    # Fake: 4 * (0 + 9) / 2 = 18 -> R2 = 10/2 * 18 = 90.
    r1, s1 = R1(gamma=10.0)(ctx(Quadratic()))
    r2, s2 = R2(gamma=10.0)(ctx(Quadratic()))
    assert r1.item() == pytest.approx(60.0) and s1["r1"].item() == pytest.approx(12.0)
    assert r2.item() == pytest.approx(90.0) and s2["r2"].item() == pytest.approx(18.0)
    # gamma scales linearly: gamma = 1 -> 6 and 9
    assert R1(gamma=1.0)(ctx(Quadratic()))[0].item() == pytest.approx(6.0)
    assert R2(gamma=1.0)(ctx(Quadratic()))[0].item() == pytest.approx(9.0)


def test_the_penalty_is_a_mean_over_samples_not_a_norm_of_the_batch_gradient():
    # per sample ||grad||^2 = 4 ||x||^2 summed and averaged; with three samples whose squared
    # norms are 1, 5, 0: mean 4 * 6 / 3 = 8 -> R1(gamma = 2) = 8
    loss, _ = R1(gamma=2.0)(ctx(Quadratic(), real=[[1.0, 0.0], [1.0, 2.0], [0.0, 0.0]]))
    assert loss.item() == pytest.approx(8.0)


def test_gradient_flows_into_D_parameters_by_double_backward():
    # R1 = gamma/2 * mean 4 a^2 ||x||^2 -> dR1/da = gamma/2 * mean 8 a ||x||^2
    # at a = 1, gamma = 10, real ||x||^2 = (1, 5): 5 * 8 * 3 = 120 ; R2 (fake 0, 9): 5 * 8 * 4.5 = 180
    D = Quadratic(1.0)
    R1(gamma=10.0)(ctx(D))[0].backward()
    assert D.a.grad.item() == pytest.approx(120.0)
    D = Quadratic(1.0)
    R2(gamma=10.0)(ctx(D))[0].backward()
    assert D.a.grad.item() == pytest.approx(180.0)
    # linear D: R1 = gamma/2 ||w||^2 -> dR1/dw = gamma w = (12, 16); b gets no gradient
    D = Linear([1.2, 1.6], 0.1)
    R1(gamma=10.0)(ctx(D))[0].backward()
    assert D.w.grad.tolist() == pytest.approx([12.0, 16.0])
    assert D.b.grad is None or D.b.grad.item() == 0.0


def test_points_are_detached_from_their_graph():
    # A fake batch still attached to some graph: the penalty differentiates w.r.t. the points
    # themselves and does not back-propagate into what produced them.
    source = t([1.0], requires_grad=True)
    fake = t(FAKE) * source
    c = RegContext(G=None, D=Quadratic(), real=t(REAL), y=None, fake=fake, z=torch.zeros(2, 1))
    R2(gamma=10.0)(c)[0].backward()
    assert source.grad is None


def test_the_condition_reaches_D():
    D = Linear([1.0, 0.0])
    y = torch.tensor([3, 1])
    R1()(ctx(D, y=y))
    R2()(ctx(D, y=y))
    assert len(D.seen_y) == 2 and all(s is y for s in D.seen_y)


def test_stats_are_detached_scalars_and_the_loss_is_a_scalar():
    loss, stats = R1()(ctx(Quadratic()))
    assert loss.dim() == 0 and loss.requires_grad
    assert set(stats) == {"r1"} and stats["r1"].dim() == 0 and not stats["r1"].requires_grad


def test_interface_and_lazy_interval_leaves_the_value_alone():
    r1, r2 = R1(gamma=5.0, interval=16), R2()
    assert (r1.net, r1.interval, r1.gamma) == ("D", 16, 5.0)
    assert (r2.net, r2.interval, r2.gamma) == ("D", 1, 10.0)
    # the loop multiplies by the interval; the regulariser does not
    lazy = R1(gamma=10.0, interval=4)(ctx(Quadratic()))[0].item()
    assert lazy == pytest.approx(R1(gamma=10.0)(ctx(Quadratic()))[0].item())
    assert lazy_factor(16) == pytest.approx(16 / 17)


def test_grad_sq_norm_over_all_non_batch_dims():
    # images (N, 1, 2, 2) with D = sum x^2: ||grad||^2 = 4 * sum of squares of each image
    x = t([[[[1.0, 2.0], [0.0, 1.0]]], [[[0.0, 0.0], [0.0, 3.0]]]])  # sums of squares 6 and 9
    assert grad_sq_norm(Quadratic(), x).tolist() == pytest.approx([24.0, 36.0])


def test_a_discriminator_without_one_score_per_sample_is_refused():
    features = lambda x, y=None: torch.cat([x, x], dim=1)  # (N, 4): MMD-style features
    with pytest.raises(ValueError, match="one score per sample"):
        R1()(ctx(features))


def test_gamma_zero_is_allowed_and_gives_zero():
    assert R1(gamma=0.0)(ctx(Quadratic()))[0].item() == 0.0
