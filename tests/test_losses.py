"""Tests of gan_cli.losses: values and gradients against numbers worked out by hand.

Expected values are computed in comments/with the math module from the formulas, never with
the function under test. All tensors are tiny and float64 so that approx tolerances are tight.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_cli import losses as L

DT = torch.float64

# The fixed scores of the pure-function tests.
REAL = [0.0, 2.0]
FAKE = [-1.0, 0.5]


def t(values, requires_grad=False):
    return torch.tensor(values, dtype=DT, requires_grad=requires_grad)


def sp(v):
    """softplus by hand: log(1 + e^v)."""
    return math.log(1.0 + math.exp(v))


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


class Linear(nn.Module):
    """A linear critic D(x, y) = w . flatten(x) + b that records the labels it was given."""

    def __init__(self, w, b=0.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=DT))
        self.b = nn.Parameter(torch.tensor(b, dtype=DT))
        self.seen_y = []

    def forward(self, x, y=None):
        self.seen_y.append(y)
        return x.flatten(1) @ self.w.flatten() + self.b


class Scale(nn.Module):
    """A toy autoencoder for BEGAN: D(x, y) = s * x (s = 0: D returns zeros, L(v) = mean |v|)."""

    def __init__(self, s=0.0):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(s, dtype=DT))
        self.seen_y = []

    def forward(self, x, y=None):
        self.seen_y.append(y)
        return self.s * x


# --------------------------------------------------------------------------------------------
# Pure functions: values
# --------------------------------------------------------------------------------------------


def test_d_loss_bce_value():
    # mean softplus(-real) = (log(1+e^0) + log(1+e^-2)) / 2
    # mean softplus(fake)  = (log(1+e^-1) + log(1+e^0.5)) / 2
    expected = (math.log(2.0) + math.log(1 + math.exp(-2))) / 2 + (
        math.log(1 + math.exp(-1)) + math.log(1 + math.exp(0.5))
    ) / 2
    assert L.d_loss_bce(t(REAL), t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_d_loss_bce_equals_log_sigmoid_form():
    # -log D(x) - log(1 - D(G(z))) with D = sigmoid, written out by hand.
    expected = -sum(math.log(sigmoid(r)) for r in REAL) / 2 - sum(
        math.log(1 - sigmoid(f)) for f in FAKE
    ) / 2
    assert L.d_loss_bce(t(REAL), t(FAKE)).item() == pytest.approx(expected, rel=1e-12)


def test_d_loss_bce_is_finite_for_extreme_scores():
    # softplus(-(-1000)) = 1000 exactly in floating point (log(1+e^1000) = 1000 + log(1+e^-1000)),
    # softplus(1000) = 1000: a naive log(sigmoid) would give inf.
    loss = L.d_loss_bce(t([-1000.0]), t([1000.0]))
    assert loss.item() == pytest.approx(2000.0, rel=1e-12)


def test_g_loss_minimax_value():
    # mean log(1 - sigmoid(f)) = -(log(1+e^-1) + log(1+e^0.5)) / 2
    expected = -(math.log(1 + math.exp(-1)) + math.log(1 + math.exp(0.5))) / 2
    assert L.g_loss_minimax(t(FAKE)).item() == pytest.approx(expected, rel=1e-12)
    by_definition = sum(math.log(1 - sigmoid(f)) for f in FAKE) / 2
    assert L.g_loss_minimax(t(FAKE)).item() == pytest.approx(by_definition, rel=1e-12)


def test_g_loss_ns_value():
    # mean softplus(-f) = (log(1+e^1) + log(1+e^-0.5)) / 2 = mean -log sigmoid(f)
    expected = (math.log(1 + math.exp(1)) + math.log(1 + math.exp(-0.5))) / 2
    assert L.g_loss_ns(t(FAKE)).item() == pytest.approx(expected, rel=1e-12)
    by_definition = -sum(math.log(sigmoid(f)) for f in FAKE) / 2
    assert L.g_loss_ns(t(FAKE)).item() == pytest.approx(by_definition, rel=1e-12)


def test_wasserstein_values():
    # mean(fake) - mean(real) = (-1 + 0.5)/2 - (0 + 2)/2 = -0.25 - 1 = -1.25
    assert L.d_loss_wasserstein(t(REAL), t(FAKE)).item() == pytest.approx(-1.25)
    # -mean(fake) = 0.25
    assert L.g_loss_wasserstein(t(FAKE)).item() == pytest.approx(0.25)


def test_least_squares_values_default_coding():
    # a=0, b=1: 0.5*((0-1)^2 + (2-1)^2)/2 + 0.5*((-1-0)^2 + (0.5-0)^2)/2 = 0.5 + 0.3125
    assert L.d_loss_ls(t(REAL), t(FAKE)).item() == pytest.approx(0.8125)
    # c=1: 0.5*((-1-1)^2 + (0.5-1)^2)/2 = 0.5*(4 + 0.25)/2 = 1.0625
    assert L.g_loss_ls(t(FAKE)).item() == pytest.approx(1.0625)


def test_least_squares_values_chi2_coding():
    # a=-1, b=1: 0.5*(1 + 1)/2 + 0.5*((-1+1)^2 + (0.5+1)^2)/2 = 0.5 + 0.5625
    assert L.d_loss_ls(t(REAL), t(FAKE), a=-1.0, b=1.0).item() == pytest.approx(1.0625)
    # c=0: 0.5*((-1)^2 + 0.5^2)/2 = 0.3125
    assert L.g_loss_ls(t(FAKE), c=0.0).item() == pytest.approx(0.3125)


def test_hinge_values():
    # mean relu(1-real) = (1 + 0)/2 = 0.5 ; mean relu(1+fake) = (0 + 1.5)/2 = 0.75
    assert L.d_loss_hinge(t(REAL), t(FAKE)).item() == pytest.approx(1.25)
    # -mean(fake) = 0.25
    assert L.g_loss_hinge(t(FAKE)).item() == pytest.approx(0.25)


def test_pure_losses_return_scalars():
    for value in [
        L.d_loss_bce(t(REAL), t(FAKE)),
        L.g_loss_minimax(t(FAKE)),
        L.g_loss_ns(t(FAKE)),
        L.d_loss_wasserstein(t(REAL), t(FAKE)),
        L.g_loss_wasserstein(t(FAKE)),
        L.d_loss_ls(t(REAL), t(FAKE)),
        L.g_loss_ls(t(FAKE)),
        L.d_loss_hinge(t(REAL), t(FAKE)),
        L.g_loss_hinge(t(FAKE)),
    ]:
        assert value.shape == ()


# --------------------------------------------------------------------------------------------
# Pure functions: gradients (the saturation of the minimax generator loss)
# --------------------------------------------------------------------------------------------


def _grad(fn, values):
    x = t(values, requires_grad=True)
    fn(x).backward()
    return x.grad.tolist()


def test_generator_gradients_at_zero_agree():
    # d/ds -softplus(s) / N = -sigmoid(0)/2 = -0.25 ; d/ds softplus(-s) / N = -(1-sigmoid(0))/2
    assert _grad(L.g_loss_minimax, [0.0, 0.0]) == pytest.approx([-0.25, -0.25])
    assert _grad(L.g_loss_ns, [0.0, 0.0]) == pytest.approx([-0.25, -0.25])


def test_minimax_saturates_where_non_saturating_does_not():
    n = 2
    # Minimax: -sigmoid(-10)/N = -1/(1+e^10)/2 ~ -2.27e-5 (vanishes: ~ -4.5e-5 / N).
    mm = -1.0 / (1.0 + math.exp(10.0)) / n
    # Non-saturating: -(1 - sigmoid(-10))/N = -1/(1+e^-10)/2 ~ -0.49998 (stays ~ -1/N).
    ns = -1.0 / (1.0 + math.exp(-10.0)) / n
    assert _grad(L.g_loss_minimax, [-10.0, -10.0]) == pytest.approx([mm, mm], rel=1e-9)
    assert _grad(L.g_loss_ns, [-10.0, -10.0]) == pytest.approx([ns, ns], rel=1e-9)
    assert mm == pytest.approx(-4.54e-5 / n, rel=1e-2)
    assert ns == pytest.approx(-1.0 / n, rel=1e-4)


def test_discriminator_bce_gradients():
    # d/dr softplus(-r)/N = -(1 - sigmoid(r))/N ; d/df softplus(f)/M = sigmoid(f)/M
    real = t(REAL, requires_grad=True)
    fake = t(FAKE, requires_grad=True)
    L.d_loss_bce(real, fake).backward()
    assert real.grad.tolist() == pytest.approx([-(1 - sigmoid(r)) / 2 for r in REAL])
    assert fake.grad.tolist() == pytest.approx([sigmoid(f) / 2 for f in FAKE])


def test_hinge_gradients():
    # relu(1 - r): slope -1 where r < 1 (r=0), 0 where r > 1 (r=2); relu(1 + f): 0 at f=-1
    # (the kink, torch takes 0), 1 at f=0.5; each divided by N = 2.
    real = t(REAL, requires_grad=True)
    fake = t(FAKE, requires_grad=True)
    L.d_loss_hinge(real, fake).backward()
    assert real.grad.tolist() == pytest.approx([-0.5, 0.0])
    assert fake.grad.tolist() == pytest.approx([0.0, 0.5])


# --------------------------------------------------------------------------------------------
# Gradient penalty
# --------------------------------------------------------------------------------------------

POINTS = [[0.3, -1.0], [2.0, 0.5], [-0.7, 0.1]]


def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    D = Linear([0.6, 0.8], 0.3)  # ||w|| = sqrt(0.36 + 0.64) = 1
    gp = L.gradient_penalty(D, t(POINTS))
    assert gp.item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_linear_critic_value_and_weight_gradient():
    D = Linear([1.2, 1.6])  # ||w|| = 2: grad_x D = w everywhere, penalty (2 - 1)^2 = 1
    gp = L.gradient_penalty(D, t(POINTS))
    assert gp.item() == pytest.approx(1.0)
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 1 * [0.6, 0.8]
    assert D.w.grad is not None
    assert D.w.grad.tolist() == pytest.approx([1.2, 1.6])
    # b does not enter the input gradient.
    assert D.b.grad is None or D.b.grad.item() == pytest.approx(0.0)


def test_gradient_penalty_target_norm():
    D = Linear([1.2, 1.6])  # ||w|| = 2; (2 - 0.5)^2 = 2.25
    assert L.gradient_penalty(D, t(POINTS), target_norm=0.5).item() == pytest.approx(2.25)


def test_gradient_penalty_norm_over_all_non_batch_dims():
    # Image-shaped points (N, C, H, W) = (2, 1, 2, 2); w has 4 entries with ||w|| = 3:
    # (3 - 1)^2 = 4 for every sample.
    D = Linear([[[1.0, 2.0], [2.0, 0.0]]])
    points = torch.arange(8, dtype=DT).reshape(2, 1, 2, 2)
    assert L.gradient_penalty(D, points).item() == pytest.approx(4.0)


def test_gradient_penalty_is_per_sample():
    # D(x) = sum x^2 has grad 2x: norms 2*||x_i||. Samples [3, 4] (norm 5) and [0, 0.5]
    # (norm 0.5): grad norms 10 and 1, penalties 81 and 0, mean 40.5.
    def D(x, y=None):
        return x.pow(2).sum(dim=1)

    assert L.gradient_penalty(D, t([[3.0, 4.0], [0.0, 0.5]])).item() == pytest.approx(40.5)


def test_gradient_penalty_leaves_points_alone_and_passes_y():
    D = Linear([1.2, 1.6])
    points = t(POINTS)
    y = torch.tensor([0, 1, 2])
    L.gradient_penalty(D, points, y)
    assert points.requires_grad is False and points.grad is None
    assert D.seen_y[-1] is y


# --------------------------------------------------------------------------------------------
# interpolate and perturb
# --------------------------------------------------------------------------------------------


def test_interpolate_points_lie_on_segments_with_one_eps_per_sample():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(6, 3, 2, 2, generator=g, dtype=DT)
    fake = torch.randn(6, 3, 2, 2, generator=g, dtype=DT)
    x_hat = L.interpolate(real, fake, generator=torch.Generator().manual_seed(1))
    assert x_hat.shape == real.shape
    for i in range(6):
        # eps_i from the first coordinate, then every other coordinate must use the same eps.
        eps = ((x_hat[i].flatten()[0] - fake[i].flatten()[0])
               / (real[i].flatten()[0] - fake[i].flatten()[0])).item()
        assert 0.0 <= eps <= 1.0
        expected = (eps * real[i] + (1 - eps) * fake[i]).flatten().tolist()
        assert x_hat[i].flatten().tolist() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_interpolate_is_reproducible_with_a_generator():
    real, fake = torch.zeros(4, 2, dtype=DT), torch.ones(4, 2, dtype=DT)
    a = L.interpolate(real, fake, generator=torch.Generator().manual_seed(7))
    b = L.interpolate(real, fake, generator=torch.Generator().manual_seed(7))
    assert a.tolist() == b.tolist()


def test_interpolate_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        L.interpolate(torch.zeros(4, 2), torch.zeros(3, 2))


def test_perturb_keeps_shape_and_bounds_the_deviation():
    # Entries -1 and +1 in equal numbers: population std = 1, so 0 <= x_p - x <= 0.5 * 1.
    real = torch.tensor([[-1.0, 1.0, -1.0, 1.0]] * 5, dtype=DT).reshape(5, 1, 2, 2)
    out = L.perturb(real, scale=0.5, generator=torch.Generator().manual_seed(3))
    assert out.shape == real.shape
    dev = (out - real).flatten().tolist()
    assert min(dev) >= 0.0 and max(dev) <= 0.5
    assert any(d > 0.0 for d in dev)  # it does perturb
    # one alpha per sample (times elementwise u): the samples' largest deviations differ.
    per_sample_max = (out - real).flatten(1).amax(1)
    assert len(set(per_sample_max.tolist())) == 5


def test_perturb_scale_zero_is_identity():
    real = torch.randn(3, 2, dtype=DT, generator=torch.Generator().manual_seed(0))
    assert L.perturb(real, scale=0.0).tolist() == real.tolist()


# --------------------------------------------------------------------------------------------
# recon_error
# --------------------------------------------------------------------------------------------


def test_recon_error_per_sample_mean_abs():
    x = t([[1.0, -3.0], [2.0, 2.0]])
    recon = t([[0.0, 0.0], [1.0, 4.0]])
    # sample 0: (1 + 3)/2 = 2 ; sample 1: (1 + 2)/2 = 1.5
    assert L.recon_error(x, recon).tolist() == pytest.approx([2.0, 1.5])


def test_recon_error_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="reconstruction"):
        L.recon_error(torch.zeros(2, 2), torch.zeros(2))


# --------------------------------------------------------------------------------------------
# Loss objects
# --------------------------------------------------------------------------------------------

ALL_CLASSES = [L.Minimax, L.NonSaturating, L.WGAN, L.WGANGP, L.LSGAN, L.DRAGAN, L.BEGAN, L.Hinge]


def pass_through(x, y=None):
    """D whose score is the sample's single coordinate: scores equal the inputs."""
    return x[:, 0]


def col(values):
    return t(values).reshape(-1, 1)


@pytest.mark.parametrize(
    "cls, n_critic", [(L.WGAN, 5), (L.WGANGP, 5), (L.Minimax, 1), (L.NonSaturating, 1),
                      (L.LSGAN, 1), (L.DRAGAN, 1), (L.BEGAN, 1), (L.Hinge, 1)]
)
def test_default_n_critic(cls, n_critic):
    assert cls().n_critic == n_critic


def test_d_output():
    assert L.BEGAN.d_output == "reconstruction"
    for cls in ALL_CLASSES:
        if cls is not L.BEGAN:
            assert cls.d_output == "score"


@pytest.mark.parametrize(
    "loss, d_pure, g_pure",
    [
        (L.Minimax(), L.d_loss_bce, L.g_loss_minimax),
        (L.NonSaturating(), L.d_loss_bce, L.g_loss_ns),
        (L.WGAN(), L.d_loss_wasserstein, L.g_loss_wasserstein),
        (L.LSGAN(a=-1.0, b=1.0, c=0.0), lambda r, f: L.d_loss_ls(r, f, -1.0, 1.0),
         lambda f: L.g_loss_ls(f, 0.0)),
        (L.Hinge(), L.d_loss_hinge, L.g_loss_hinge),
    ],
)
def test_score_losses_match_pure_functions(loss, d_pure, g_pure):
    # With the pass-through D the scores are REAL and FAKE themselves.
    loss_d, stats_d = loss.d_loss(pass_through, col(REAL), col(FAKE))
    loss_g, stats_g = loss.g_loss(pass_through, col(FAKE))
    assert loss_d.item() == pytest.approx(d_pure(t(REAL), t(FAKE)).item())
    assert loss_g.item() == pytest.approx(g_pure(t(FAKE)).item())
    assert stats_d["loss_d"].item() == pytest.approx(loss_d.item())
    assert stats_g["loss_g"].item() == pytest.approx(loss_g.item())
    # mean scores: real (0 + 2)/2 = 1, fake (-1 + 0.5)/2 = -0.25
    assert stats_d["d_real"].item() == pytest.approx(1.0)
    assert stats_d["d_fake"].item() == pytest.approx(-0.25)


def test_wgan_reports_wasserstein_estimate():
    _, stats = L.WGAN().d_loss(pass_through, col(REAL), col(FAKE))
    # mean real - mean fake = 1 - (-0.25) = 1.25
    assert stats["wasserstein"].item() == pytest.approx(1.25)


def _small_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 2, generator=g, dtype=DT), torch.randn(4, 2, generator=g, dtype=DT)


def _make_D(loss):
    return Scale(0.5) if loss.d_output == "reconstruction" else Linear([1.2, 1.6], 0.1)


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_stats_are_detached_scalars(cls):
    loss = cls()
    D = _make_D(loss)
    real, fake = _small_batch()
    loss_d, stats_d = loss.d_loss(D, real, fake)
    loss_g, stats_g = loss.g_loss(D, fake.clone().requires_grad_(True))
    assert "loss_d" in stats_d and "loss_g" in stats_g
    for stats in (stats_d, stats_g):
        for name, value in stats.items():
            assert isinstance(value, torch.Tensor), name
            assert value.dim() == 0, name
            assert not value.requires_grad, name
    assert loss_d.requires_grad and loss_g.requires_grad
    loss_d.backward()  # includes the double backward of the penalties
    assert all(p.grad is not None for p in D.parameters())


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_labels_reach_D(cls):
    loss = cls()
    D = _make_D(loss)
    real, fake = _small_batch()
    y = torch.tensor([0, 1, 0, 1])
    loss.d_loss(D, real, fake, y)
    loss.g_loss(D, fake, y)
    assert len(D.seen_y) >= 3  # real, fake, fake for G (+ the penalty's call)
    assert all(seen is y for seen in D.seen_y)


@pytest.mark.parametrize("cls", [c for c in ALL_CLASSES if c is not L.BEGAN])
def test_state_dict_of_stateless_losses(cls):
    """BEGAN's k_t is state: test_began_state_dict_round_trip checks it."""
    loss = cls()
    assert loss.state_dict() == {}
    loss.load_state_dict({})
    with pytest.raises(ValueError):
        loss.load_state_dict({"k_t": 0.3})


def test_wgan_after_d_step_clips_every_parameter():
    D = Linear([[0.5, -0.002], [0.009, -7.0]], -3.0)
    L.WGAN(clip_value=0.01).after_d_step(D, {})
    assert D.w.flatten().tolist() == pytest.approx([0.01, -0.002, 0.009, -0.01])
    assert D.b.item() == pytest.approx(-0.01)
    assert D.w.grad is None  # done under no_grad, nothing recorded


def test_other_losses_after_d_step_leave_D_alone():
    for cls in [L.Minimax, L.NonSaturating, L.WGANGP, L.LSGAN, L.DRAGAN, L.Hinge]:
        D = Linear([0.5, -7.0], -3.0)
        cls().after_d_step(D, {})
        assert D.w.tolist() == [0.5, -7.0] and D.b.item() == -3.0


def test_wgangp_penalty_term_equals_lambda_for_norm_two_critic():
    D = Linear([1.2, 1.6], 0.1)  # ||w|| = 2 everywhere, so GP = (2 - 1)^2 = 1 at any x_hat
    real, fake = _small_batch()
    loss_d, stats = L.WGANGP(gp_lambda=10.0).d_loss(D, real, fake)
    critic = (fake @ D.w + 0.1).mean() - (real @ D.w + 0.1).mean()
    assert stats["gp"].item() == pytest.approx(1.0)
    assert loss_d.item() - critic.item() == pytest.approx(10.0)
    assert stats["wasserstein"].item() == pytest.approx(-critic.item())
    loss_d.backward()
    # d/dw [mean(fake) - mean(real)] . w = mean(fake) - mean(real) ; penalty: 10 * [1.2, 1.6]
    expected = (fake.mean(0) - real.mean(0) + 10.0 * torch.tensor([1.2, 1.6], dtype=DT)).tolist()
    assert D.w.grad.tolist() == pytest.approx(expected)


def test_wgangp_unit_norm_critic_has_no_penalty():
    D = Linear([0.6, 0.8])
    real, fake = _small_batch()
    _, stats = L.WGANGP().d_loss(D, real, fake)
    assert stats["gp"].item() == pytest.approx(0.0, abs=1e-12)


def test_dragan_penalty_term_equals_lambda_for_norm_two_critic():
    D = Linear([1.2, 1.6], 0.1)
    real, fake = _small_batch()
    loss_d, stats = L.DRAGAN(dragan_lambda=10.0).d_loss(D, real, fake)
    bce = L.d_loss_bce(real @ D.w + 0.1, fake @ D.w + 0.1).item()
    assert stats["gp"].item() == pytest.approx(1.0)
    assert loss_d.item() - bce == pytest.approx(10.0)
    # unit norm: no penalty
    _, stats = L.DRAGAN().d_loss(Linear([0.6, 0.8]), real, fake)
    assert stats["gp"].item() == pytest.approx(0.0, abs=1e-12)


class HalfSquare(nn.Module):
    """D(x) = ||x||^2 / 2, whose input gradient x has norm ||x||: unlike a linear critic's, the
    penalty depends on where it is evaluated. Records every batch it scores."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x, y=None):
        self.calls.append(x.detach().clone())
        return 0.5 * x.pow(2).sum(1)


# three samples whose gradient norms at the reals (5, 2, 1) give a penalty of 17/3
PEN_REAL = [[3.0, 4.0], [0.0, 2.0], [-1.0, 0.0]]
PEN_FAKE = [[0.0, 0.0], [2.0, 0.0], [1.0, 1.0]]


def test_wgangp_penalty_is_evaluated_at_the_interpolates():
    """GP at x_hat_i = eps_i real_i + (1 - eps_i) fake_i, eps_i ~ U[0, 1) from the global torch
    stream (one per sample): the points and the value are worked out here from the same draw."""
    D = HalfSquare()
    torch.manual_seed(11)
    eps = torch.rand(3, 1, dtype=DT).flatten().tolist()  # the loss's own draw, replayed
    torch.manual_seed(11)
    loss_d, stats = L.WGANGP(gp_lambda=10.0).d_loss(D, t(PEN_REAL), t(PEN_FAKE))
    x_hat = [[e * r + (1 - e) * f for r, f in zip(real, fake, strict=True)]
             for e, real, fake in zip(eps, PEN_REAL, PEN_FAKE, strict=True)]
    assert D.calls[-1].flatten().tolist() == pytest.approx(sum(x_hat, []), rel=1e-12)  # its call
    gp = sum((math.hypot(*p) - 1.0) ** 2 for p in x_hat) / 3  # ||grad D(x_hat)|| = ||x_hat||
    assert stats["gp"].item() == pytest.approx(gp, rel=1e-12)
    assert gp != pytest.approx(17 / 3)  # what the penalty at the real samples would give
    # mean D(fake) - mean D(real): (0 + 2 + 1)/3 - (12.5 + 2 + 0.5)/3 = -4
    assert loss_d.item() == pytest.approx(-4.0 + 10.0 * gp, rel=1e-12)


def test_dragan_penalty_is_evaluated_at_perturbed_real_samples():
    """GP at x_p = x + alpha * 0.5 * std(x) * u around the REAL samples (fakes never enter it):
    every point within [x, x + 0.5 std] coordinatewise, not x itself, and the value worked out
    from the points the penalty was given."""
    D = HalfSquare()
    real = t(PEN_REAL)
    std = real.std(correction=0).item()  # over the whole batch: sqrt(mean(x^2) - mean(x)^2)
    assert std == pytest.approx(math.sqrt(30 / 6 - (8 / 6) ** 2))
    torch.manual_seed(5)
    loss_d, stats = L.DRAGAN(dragan_lambda=10.0, perturb_scale=0.5).d_loss(D, real, t(PEN_FAKE))
    points = D.calls[-1].tolist()  # the penalty's call: after D(real) and D(fake)
    for p, x in zip(points, PEN_REAL, strict=True):
        for pj, xj in zip(p, x, strict=True):
            assert xj <= pj <= xj + 0.5 * std + 1e-12
    assert points != PEN_REAL and len(D.calls) == 3
    gp = sum((math.hypot(*p) - 1.0) ** 2 for p in points) / 3
    assert stats["gp"].item() == pytest.approx(gp, rel=1e-12)
    # binary cross-entropy on the scores 12.5, 2, 0.5 (real) and 0, 2, 1 (fake), + 10 gp
    bce = (sp(-12.5) + sp(-2.0) + sp(-0.5)) / 3 + (sp(0.0) + sp(2.0) + sp(1.0)) / 3
    assert loss_d.item() == pytest.approx(bce + 10.0 * gp, rel=1e-12)


def test_dragan_generator_is_non_saturating():
    loss_g, _ = L.DRAGAN().g_loss(pass_through, col(FAKE))
    expected = (math.log(1 + math.exp(1)) + math.log(1 + math.exp(-0.5))) / 2
    assert loss_g.item() == pytest.approx(expected)


# --------------------------------------------------------------------------------------------
# BEGAN
# --------------------------------------------------------------------------------------------

B_REAL = [[1.0, -3.0], [2.0, 2.0]]  # with D = 0: L = mean |x| per sample = [2, 2], mean 2
B_FAKE = [[0.5, -0.5], [1.0, 0.0]]  # L = [0.5, 0.5], mean 0.5


def test_began_losses_with_zero_autoencoder():
    loss = L.BEGAN(gamma=0.5, lambda_k=0.001, k_init=0.2)
    D = Scale(0.0)  # returns zeros
    loss_d, stats = loss.d_loss(D, t(B_REAL), t(B_FAKE))
    # loss_d = L(x) - k_t L(G(z)) = 2 - 0.2 * 0.5 = 1.9
    assert loss_d.item() == pytest.approx(1.9)
    assert stats["loss_d"].item() == pytest.approx(1.9)
    assert stats["l_real"].item() == pytest.approx(2.0)
    assert stats["l_fake"].item() == pytest.approx(0.5)
    assert stats["k_t"].item() == pytest.approx(0.2)
    # M = L(x) + |gamma L(x) - L(G(z))| = 2 + |0.5*2 - 0.5| = 2.5
    assert stats["convergence"].item() == pytest.approx(2.5)
    loss_g, stats_g = loss.g_loss(D, t(B_FAKE))
    assert loss_g.item() == pytest.approx(0.5)  # L(G(z))
    assert stats_g["loss_g"].item() == pytest.approx(0.5)


def test_began_gradient_through_autoencoder():
    # D(x) = s x: L(v) = |1 - s| mean|v|. At s = 0.5 (s < 1): dL/ds = -mean|v|.
    # loss_d = (1-s) * 2 - k (1-s) * 0.5 ; d/ds = -2 + 0.5 k = -2 + 0.1 = -1.9 (k = 0.2)
    loss = L.BEGAN(k_init=0.2)
    D = Scale(0.5)
    loss_d, _ = loss.d_loss(D, t(B_REAL), t(B_FAKE))
    loss_d.backward()
    assert D.s.grad.item() == pytest.approx(-1.9)


def test_began_k_update_arithmetic():
    loss = L.BEGAN(gamma=0.5, lambda_k=0.001, k_init=0.2)
    _, stats = loss.d_loss(Scale(0.0), t(B_REAL), t(B_FAKE))
    loss.after_d_step(None, stats)
    # k <- 0.2 + 0.001 * (0.5 * 2 - 0.5) = 0.2005
    assert loss.k_t.item() == pytest.approx(0.2005)
    assert loss.k_t.dtype == torch.float32 and loss.k_t.dim() == 0
    # the next D step uses the updated k: 2 - 0.2005 * 0.5 = 1.89975
    loss_d, stats = loss.d_loss(Scale(0.0), t(B_REAL), t(B_FAKE))
    assert loss_d.item() == pytest.approx(1.89975, rel=1e-6)
    assert stats["k_t"].item() == pytest.approx(0.2005)


def test_began_k_is_clamped_to_unit_interval():
    loss = L.BEGAN(gamma=0.5, lambda_k=1.0, k_init=0.2)
    up = {"l_real": t(2.0), "l_fake": t(0.5)}  # step +1 * (1 - 0.5) = +0.5
    loss.after_d_step(None, up)
    assert loss.k_t.item() == pytest.approx(0.7)
    loss.after_d_step(None, up)  # 1.2 -> 1
    assert loss.k_t.item() == pytest.approx(1.0)
    down = {"l_real": t(0.0), "l_fake": t(3.0)}  # step -3
    loss.after_d_step(None, down)  # 1 - 3 -> 0
    assert loss.k_t.item() == pytest.approx(0.0)


def test_began_stats_for_update_need_not_come_from_d_loss():
    # The loop may all-reduce the stats before after_d_step: only l_real, l_fake are read.
    loss = L.BEGAN(gamma=0.7, lambda_k=0.01)
    loss.after_d_step(None, {"l_real": t(1.0), "l_fake": t(0.3)})
    # 0 + 0.01 * (0.7 * 1 - 0.3) = 0.004
    assert loss.k_t.item() == pytest.approx(0.004)


def test_began_state_dict_round_trip():
    a = L.BEGAN(k_init=0.2)
    a.after_d_step(None, {"l_real": t(2.0), "l_fake": t(0.5)})  # 0.2 + 0.001 * 0.5 = 0.2005
    state = a.state_dict()
    assert set(state) == {"k_t"}
    b = L.BEGAN()
    b.load_state_dict(state)
    assert b.k_t.item() == pytest.approx(0.2005)
    # the state is a copy: later updates of a do not leak into it
    a.after_d_step(None, {"l_real": t(2.0), "l_fake": t(0.5)})
    assert state["k_t"].item() == pytest.approx(0.2005)
    # a plain number is accepted too
    b.load_state_dict({"k_t": 0.75})
    assert b.k_t.item() == pytest.approx(0.75) and b.k_t.dtype == torch.float32
    with pytest.raises(ValueError, match="k_t"):
        b.load_state_dict({})


def test_began_rejects_score_discriminator():
    with pytest.raises(ValueError, match="reconstruction"):
        L.BEGAN().d_loss(Linear([1.0, 1.0]), t(B_REAL), t(B_FAKE))


# --------------------------------------------------------------------------------------------
# Constructor validation
# --------------------------------------------------------------------------------------------


def test_valid_edge_arguments_are_accepted():
    assert L.BEGAN(gamma=1.0, k_init=1.0, lambda_k=0.0).gamma == 1.0
    assert L.WGANGP(gp_lambda=0.0, n_critic=1).n_critic == 1
    # gp_lambda = 0: plain critic loss, the penalty is neither computed nor reported
    loss_d, stats = L.WGANGP(gp_lambda=0.0).d_loss(pass_through, col(REAL), col(FAKE))
    assert loss_d.item() == pytest.approx(-1.25) and "gp" not in stats
    assert L.DRAGAN(perturb_scale=0.0).perturb_scale == 0.0
