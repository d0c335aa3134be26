"""f-GAN (Nowozin et al. 2016): activations, conjugates, losses and the optimum of the bound.

Expected values are worked out by hand in the comments (or with the math module and scipy from
the definitions), never with the functions under test. float64 throughout.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm

from gan_cli import losses as L
from gan_cli.config.loss import F_DIVERGENCE_NAMES

DT = torch.float64
E = math.e
LOG2 = math.log(2.0)
DIVERGENCES = ["kl", "reverse_kl", "pearson", "hellinger", "js"]


def t(values, requires_grad=False):
    return torch.tensor(values, dtype=DT, requires_grad=requires_grad)


# The generator functions f (Table 1) and their derivatives, written out here, independently of
# gan_cli.losses (which only has g_f and f*).
F = {
    "kl": (lambda u: u * math.log(u), lambda u: 1.0 + math.log(u)),
    "reverse_kl": (lambda u: -math.log(u), lambda u: -1.0 / u),
    "pearson": (lambda u: (u - 1.0) ** 2, lambda u: 2.0 * (u - 1.0)),
    "hellinger": (lambda u: (math.sqrt(u) - 1.0) ** 2, lambda u: 1.0 - 1.0 / math.sqrt(u)),
    # f(u) = -(u + 1) log((1 + u) / 2) + u log u ; f'(u) = -log((1+u)/2) - 1 + log u + 1
    "js": (lambda u: -(u + 1.0) * math.log((1.0 + u) / 2.0) + u * math.log(u),
           lambda u: math.log(2.0 * u / (1.0 + u))),
}


def test_the_five_divergences_and_config_agree():
    assert set(L.F_DIVERGENCES) == set(DIVERGENCES) == set(F_DIVERGENCE_NAMES)


# --------------------------------------------------------------------------------------------
# Activations and conjugates against hand values
# --------------------------------------------------------------------------------------------

V = [-1.0, 0.0, 2.0]
ACTIVATIONS = {
    "kl": [-1.0, 0.0, 2.0],  # g(v) = v
    "reverse_kl": [-E, -1.0, -math.exp(-2.0)],  # -exp(-v): -e^1, -e^0, -e^-2
    "pearson": [-1.0, 0.0, 2.0],  # g(v) = v
    "hellinger": [1.0 - E, 0.0, 1.0 - math.exp(-2.0)],  # 1 - exp(-v)
    # log 2 - log(1 + e^-v): log 2 - log(1 + e), log 2 - log 2 = 0, log 2 - log(1 + e^-2)
    "js": [LOG2 - math.log(1.0 + E), 0.0, LOG2 - math.log(1.0 + math.exp(-2.0))],
}


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_activation_values(divergence):
    got = L.fgan_activation(t(V), divergence)
    assert got.tolist() == pytest.approx(ACTIVATIONS[divergence], rel=1e-12, abs=1e-15)


CONJUGATES = {
    # exp(t - 1): t = 1 -> 1, t = 0 -> e^-1, t = 2 -> e
    "kl": ([1.0, 0.0, 2.0], [1.0, 1.0 / E, E]),
    # -1 - log(-t): t = -1 -> -1, t = -e -> -2, t = -0.5 -> -1 + log 2
    "reverse_kl": ([-1.0, -E, -0.5], [-1.0, -2.0, -1.0 + LOG2]),
    # t^2/4 + t: t = 2 -> 1 + 2 = 3, t = -2 -> 1 - 2 = -1, t = 0 -> 0
    "pearson": ([2.0, -2.0, 0.0], [3.0, -1.0, 0.0]),
    # t / (1 - t): t = 0.5 -> 1, t = -1 -> -0.5, t = 0 -> 0
    "hellinger": ([0.5, -1.0, 0.0], [1.0, -0.5, 0.0]),
    # -log(2 - e^t): t = 0 -> -log 1 = 0, t = log 1.5 -> -log 0.5 = log 2, t = -log 2 -> -log 1.5
    "js": ([0.0, math.log(1.5), -LOG2], [0.0, LOG2, -math.log(1.5)]),
}


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_conjugate_values(divergence):
    ts, expected = CONJUGATES[divergence]
    assert L.fgan_conjugate(t(ts), divergence).tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("divergence, outside", [
    ("reverse_kl", [0.0, 1.0]),  # dom f* = {t < 0}
    ("hellinger", [1.0, 2.0]),  # dom f* = {t < 1}
    ("js", [LOG2, 1.0]),  # dom f* = {t < log 2}
])
def test_conjugate_is_infinite_outside_its_domain_without_nan_gradients(divergence, outside):
    inside = CONJUGATES[divergence][0][:1]
    ts = t(inside + outside, requires_grad=True)
    values = L.fgan_conjugate(ts, divergence)
    assert torch.isinf(values[1:]).all() and (values[1:] > 0).all()
    values[0].backward()
    assert torch.isfinite(ts.grad).all()


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_conjugate_at_the_derivative_is_u_f_prime_minus_f(divergence):
    # Fenchel's equality: f*(f'(u)) = u f'(u) - f(u), the supremum attained at u.
    f, fp = F[divergence]
    for u in (0.25, 1.0, 3.0):
        got = L.fgan_conjugate(t([fp(u)]), divergence).item()
        assert got == pytest.approx(u * fp(u) - f(u), rel=1e-10, abs=1e-12), u


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_fenchel_inequality_on_a_grid(divergence):
    # f*(t) >= u t - f(u) for every u > 0 and every t (equality only at t = f'(u)).
    f, _ = F[divergence]
    us = [0.1, 0.5, 1.0, 2.0, 7.0]
    ts = L.fgan_activation(torch.linspace(-3.0, 3.0, 61, dtype=DT), divergence)  # inside dom f*
    conj = L.fgan_conjugate(ts, divergence)
    for u in us:
        assert (conj >= u * ts - f(u) - 1e-12).all(), u


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_activation_maps_into_the_conjugate_domain(divergence):
    v = torch.linspace(-30.0, 30.0, 601, dtype=DT)
    assert torch.isfinite(L.fgan_conjugate(L.fgan_activation(v, divergence), divergence)).all()


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_stable_conjugate_of_activation_equals_the_composition(divergence):
    v = torch.linspace(-6.0, 6.0, 121, dtype=DT)
    div = L.F_DIVERGENCES[divergence]
    composed = div.conjugate(div.activation(v))
    torch.testing.assert_close(div.conjugate_of_activation(v), composed, rtol=1e-9, atol=1e-12)


def test_stable_forms_stay_finite_where_the_composition_overflows():
    # reverse KL at v = 800: exp(-800) underflows to 0 in float64, -1 - log(0) = inf;
    # the closed form -1 + v = 799.
    v = t([800.0])
    assert torch.isinf(L.fgan_conjugate(L.fgan_activation(v, "reverse_kl"), "reverse_kl")).all()
    assert L.F_DIVERGENCES["reverse_kl"].conjugate_of_activation(v).item() == pytest.approx(799.0)
    # js at v = -800: softplus(-800) - log 2 = -log 2 (to double precision)
    assert L.F_DIVERGENCES["js"].conjugate_of_activation(t([-800.0])).item() == pytest.approx(-LOG2)


def test_unknown_divergence_is_a_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="divergence.*kl.*reverse_kl.*pearson.*hellinger.*js"):
        L.fgan_activation(t([0.0]), "chi2")


# --------------------------------------------------------------------------------------------
# Losses on fixed scores
# --------------------------------------------------------------------------------------------

REAL = [0.0, 2.0]
FAKE = [-1.0, 0.5]


D_LOSS = {
    # -mean(real) + mean exp(f - 1) = -1 + (e^-2 + e^-0.5) / 2
    "kl": -1.0 + (math.exp(-2.0) + math.exp(-0.5)) / 2,
    # -mean(-exp(-r)) + mean(f - 1) = (1 + e^-2) / 2 + (-2 - 0.5) / 2
    "reverse_kl": (1.0 + math.exp(-2.0)) / 2 - 1.25,
    # -mean(real) + mean(f^2/4 + f) = -1 + ((0.25 - 1) + (0.0625 + 0.5)) / 2 = -1.09375
    "pearson": -1.09375,
    # -mean(1 - e^-r) + mean(e^f - 1) = -(0 + 1 - e^-2) / 2 + (e^-1 - 1 + e^0.5 - 1) / 2
    "hellinger": -(1.0 - math.exp(-2.0)) / 2 + (math.exp(-1.0) + math.exp(0.5) - 2.0) / 2,
    # -mean(log 2 - log(1 + e^-r)) + mean(log(1 + e^f) - log 2)
    "js": -(2 * LOG2 - math.log(2.0) - math.log(1 + math.exp(-2.0))) / 2
    + (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(0.5)) - 2 * LOG2) / 2,
}


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_d_loss_values(divergence):
    got = L.d_loss_fgan(t(REAL), t(FAKE), divergence).item()
    assert got == pytest.approx(D_LOSS[divergence], rel=1e-12)


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_generator_losses_values(divergence):
    # nonsaturating: -mean g_f(fake); saturating: -mean f*(g_f(fake)), from the tables above
    # (ACTIVATIONS at v = -1 and the hand conjugates of D_LOSS's fake terms).
    g_at = {"kl": [-1.0, 0.5], "reverse_kl": [-E, -math.exp(-0.5)], "pearson": [-1.0, 0.5],
            "hellinger": [1.0 - E, 1.0 - math.exp(-0.5)],
            "js": [LOG2 - math.log(1 + E), LOG2 - math.log(1 + math.exp(-0.5))]}
    conj_at = {"kl": [math.exp(-2.0), math.exp(-0.5)], "reverse_kl": [-2.0, -0.5],
               "pearson": [0.25 - 1.0, 0.0625 + 0.5],
               "hellinger": [math.exp(-1.0) - 1.0, math.exp(0.5) - 1.0],
               "js": [math.log(1 + math.exp(-1.0)) - LOG2, math.log(1 + math.exp(0.5)) - LOG2]}
    ns = L.g_loss_fgan_nonsaturating(t(FAKE), divergence).item()
    sat = L.g_loss_fgan_saturating(t(FAKE), divergence).item()
    assert ns == pytest.approx(-sum(g_at[divergence]) / 2, rel=1e-12)
    assert sat == pytest.approx(-sum(conj_at[divergence]) / 2, rel=1e-12)


def test_js_is_the_standard_gan_up_to_its_log_2_constants():
    # g(v) = log 2 - softplus(-v), f*(g(v)) = softplus(v) - log 2, so
    # L_D = mean softplus(-r) + mean softplus(f) - 2 log 2 = d_loss_bce - log 4, and
    # nonsaturating L_G = softplus(-f) - log 2, saturating L_G = -softplus(f) + log 2.
    r, f = t(REAL), t(FAKE)
    assert L.d_loss_fgan(r, f, "js").item() == pytest.approx(L.d_loss_bce(r, f).item() - math.log(4.0))
    assert L.g_loss_fgan_nonsaturating(f, "js").item() == pytest.approx(L.g_loss_ns(f).item() - LOG2)
    assert L.g_loss_fgan_saturating(f, "js").item() == pytest.approx(L.g_loss_minimax(f).item() + LOG2)


def test_d_loss_gradient_kl():
    # L_D = -mean(r) + mean exp(f - 1): dL/dr_i = -1/2, dL/df_i = exp(f_i - 1) / 2
    r, f = t(REAL, True), t(FAKE, True)
    L.d_loss_fgan(r, f, "kl").backward()
    assert r.grad.tolist() == pytest.approx([-0.5, -0.5])
    assert f.grad.tolist() == pytest.approx([math.exp(-2.0) / 2, math.exp(-0.5) / 2])


def test_g_loss_gradients_hellinger():
    # nonsaturating: -mean(1 - e^-f): d/df = -e^-f / 2 ; saturating: -mean(e^f - 1): -e^f / 2
    f = t(FAKE, True)
    L.g_loss_fgan_nonsaturating(f, "hellinger").backward()
    assert f.grad.tolist() == pytest.approx([-E / 2, -math.exp(-0.5) / 2])
    f = t(FAKE, True)
    L.g_loss_fgan_saturating(f, "hellinger").backward()
    assert f.grad.tolist() == pytest.approx([-math.exp(-1.0) / 2, -math.exp(0.5) / 2])


# --------------------------------------------------------------------------------------------
# The optimum: P = N(0, 1), Q = N(1, 1)
# --------------------------------------------------------------------------------------------
#
# log r(x) = log p(x) - log q(x) = -x^2/2 + (x - 1)^2/2 = 1/2 - x. The optimal variational
# function is T*(x) = f'(r(x)); the raw score V* with g_f(V*) = T* (inverting Table 2's g_f):
#   kl          T* = 1 + log r        V* = T*
#   reverse_kl  T* = -1/r             V* = log r          (-exp(-log r) = -1/r)
#   pearson     T* = 2 (r - 1)        V* = T*
#   hellinger   T* = 1 - 1/sqrt(r)    V* = log(r) / 2     (1 - exp(-log(r)/2))
#   js          T* = log(2r/(1+r))    V* = log r          (log 2 - log(1 + 1/r))
#
# Closed forms of D_f(P || Q) for two unit-variance Gaussians one apart:
#   kl          KL(P || Q) = (mu_p - mu_q)^2 / 2 = 0.5
#   reverse_kl  KL(Q || P) = 0.5
#   pearson     integral p^2/q - 1 = exp((mu_p - mu_q)^2) - 1 = e - 1
#               (p^2/q = N(x; -1, 1) * e: the exponent -x^2 + (x-1)^2/2 = -(x+1)^2/2 + 1)
#   hellinger   integral (sqrt p - sqrt q)^2 = 2 - 2 exp(-(mu_p - mu_q)^2 / 8) = 2 (1 - e^-1/8)
#   js          integral p log(2p/(p+q)) + q log(2q/(p+q)) (= 2 JSD, the paper's f): by scipy


def _log_r(x):
    return 0.5 - x


OPTIMAL_V = {
    "kl": lambda x: 1.0 + _log_r(x),
    "reverse_kl": _log_r,
    "pearson": lambda x: 2.0 * (torch.exp(_log_r(x)) - 1.0),
    "hellinger": lambda x: 0.5 * _log_r(x),
    "js": _log_r,
}


def _js_by_quadrature() -> float:
    def integrand(x: float) -> float:
        lp, lq = norm.logpdf(x), norm.logpdf(x, loc=1.0)
        lm = np.logaddexp(lp, lq)  # log(p + q)
        return math.exp(lp) * (LOG2 + lp - lm) + math.exp(lq) * (LOG2 + lq - lm)

    value, err = integrate.quad(integrand, -np.inf, np.inf)
    assert err < 1e-8
    return value


CLOSED_FORM = {
    "kl": 0.5,
    "reverse_kl": 0.5,
    "pearson": E - 1.0,
    "hellinger": 2.0 * (1.0 - math.exp(-1.0 / 8.0)),
}

GRID = torch.linspace(-15.0, 16.0, 200_001, dtype=DT)
P = torch.exp(-0.5 * GRID**2) / math.sqrt(2 * math.pi)
Q = torch.exp(-0.5 * (GRID - 1.0) ** 2) / math.sqrt(2 * math.pi)


def _bound_by_quadrature(v: torch.Tensor, divergence: str) -> float:
    """E_P[g_f(V)] - E_Q[f*(g_f(V))] on the grid (trapezoid rule)."""
    T = L.fgan_activation(v, divergence)
    return (torch.trapezoid(P * T, GRID) - torch.trapezoid(Q * L.fgan_conjugate(T, divergence), GRID)).item()


def _divergence(divergence: str) -> float:
    return _js_by_quadrature() if divergence == "js" else CLOSED_FORM[divergence]


def test_js_reference_value_is_between_0_and_log_4():
    # sanity of the reference itself: 2 JSD of two distinct Gaussians lies in (0, log 4)
    assert 0.1 < _js_by_quadrature() < math.log(4.0)


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_optimal_scores_give_the_derivative_of_f_at_the_density_ratio(divergence):
    _, fp = F[divergence]
    xs = [-1.0, 0.3, 2.5]
    T = L.fgan_activation(OPTIMAL_V[divergence](t(xs)), divergence)
    expected = [fp(math.exp(0.5 - x)) for x in xs]  # T*(x) = f'(p(x)/q(x))
    assert T.tolist() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_bound_at_the_optimum_is_the_divergence(divergence):
    bound = _bound_by_quadrature(OPTIMAL_V[divergence](GRID), divergence)
    assert bound == pytest.approx(_divergence(divergence), rel=1e-6)


@pytest.mark.parametrize("divergence", DIVERGENCES)
@pytest.mark.parametrize("perturb", ["shift", "scale", "constant"])
def test_a_suboptimal_discriminator_gives_a_lower_bound(divergence, perturb):
    v_star = OPTIMAL_V[divergence](GRID)
    v = {"shift": v_star + 0.3, "scale": 0.5 * v_star, "constant": torch.zeros_like(v_star)}[perturb]
    assert _bound_by_quadrature(v, divergence) < _divergence(divergence) - 1e-3


@pytest.mark.parametrize("divergence", ["kl", "js", "hellinger"])
def test_loss_object_at_the_optimum_by_monte_carlo(divergence):
    # End to end through FGAN.d_loss with D(x) = V*(x): the stat "divergence" is the bound.
    # 200,000 samples each; the standard error is below 0.006 for these three (kl: the
    # variances are 1 under P and e - 1 under Q), so a 0.03 tolerance is > 5 standard errors.
    g = torch.Generator().manual_seed(0)
    real = torch.randn(200_000, 1, generator=g, dtype=DT)
    fake = 1.0 + torch.randn(200_000, 1, generator=g, dtype=DT)
    optimal = lambda x, y=None: OPTIMAL_V[divergence](x[:, 0])
    _, stats = L.FGAN(divergence=divergence).d_loss(optimal, real, fake)
    assert stats["divergence"].item() == pytest.approx(_divergence(divergence), abs=0.03)


# --------------------------------------------------------------------------------------------
# The loss object
# --------------------------------------------------------------------------------------------


def pass_through(x, y=None):
    return x[:, 0]


def col(values):
    return t(values).reshape(-1, 1)


@pytest.mark.parametrize("divergence", DIVERGENCES)
def test_fgan_object_matches_the_pure_functions(divergence):
    loss_d, stats = L.FGAN(divergence=divergence).d_loss(pass_through, col(REAL), col(FAKE))
    assert loss_d.item() == pytest.approx(D_LOSS[divergence], rel=1e-12)
    assert stats["loss_d"].item() == pytest.approx(D_LOSS[divergence], rel=1e-12)
    assert stats["divergence"].item() == pytest.approx(-D_LOSS[divergence], rel=1e-12)
    assert stats["d_real"].item() == pytest.approx(1.0)  # (0 + 2) / 2
    assert stats["d_fake"].item() == pytest.approx(-0.25)  # (-1 + 0.5) / 2
    for name, value in stats.items():
        assert value.dim() == 0 and not value.requires_grad, name
    ns, _ = L.FGAN(divergence=divergence).g_loss(pass_through, col(FAKE))
    sat, stats_g = L.FGAN(divergence=divergence, g_objective="saturating").g_loss(pass_through, col(FAKE))
    assert ns.item() == pytest.approx(L.g_loss_fgan_nonsaturating(t(FAKE), divergence).item())
    assert sat.item() == pytest.approx(L.g_loss_fgan_saturating(t(FAKE), divergence).item())
    assert ns.item() != pytest.approx(sat.item())
    assert stats_g["loss_g"].item() == pytest.approx(sat.item())


def test_fgan_defaults_and_interface():
    loss = L.FGAN()
    assert (loss.divergence, loss.g_objective, loss.n_critic) == ("js", "nonsaturating", 1)
    assert loss.d_output == "score" and not loss.g_needs_real
    assert loss.state_dict() == {}


def test_fgan_labels_reach_D_and_gradients_reach_its_parameters():
    w = torch.tensor([0.3, -0.2], dtype=DT, requires_grad=True)
    seen = []

    def D(x, y=None):
        seen.append(y)
        return x @ w

    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 2, generator=g, dtype=DT), torch.randn(4, 2, generator=g, dtype=DT)
    y = torch.tensor([0, 1, 0, 1])
    loss = L.FGAN(divergence="hellinger")
    loss_d, _ = loss.d_loss(D, real, fake, y)
    loss_d.backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
    loss.g_loss(D, fake, y)
    assert len(seen) == 3 and all(s is y for s in seen)
