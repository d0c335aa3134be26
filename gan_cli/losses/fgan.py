"""f-GAN (Nowozin et al. 2016): variational divergence minimisation for the f in ``F_DIVERGENCES``.

D_f(P || Q) >= sup_T E_P[T(x)] - E_Q[f*(T(x))]  (their eq. 4), with T = g_f(V), V D's raw score:

    divergence   f(u)                              g_f(v)                   f*(t)              dom f*
    kl           u log u                           v                        exp(t - 1)         R
    reverse_kl   -log u                            -exp(-v)                 -1 - log(-t)       t < 0
    pearson      (u - 1)^2                         v                        t^2 / 4 + t        R
    hellinger    (sqrt(u) - 1)^2                   1 - exp(-v)              t / (1 - t)        t < 1
    js           -(u + 1) log((1 + u) / 2)         log 2 - log(1 + e^-v)    -log(2 - exp(t))   t < log 2
                 + u log u

(Tables 1, 2, 6). The paper's js f is twice the JSD of its Table 1: the bound estimates 2 JSD, in
[0, log 4]; hellinger is the squared distance without a 1/2. f*(g_f(v)) is written in closed form,
finite wherever g_f(v) is (reverse_kl: v - 1, where the literal composition overflows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.losses.base import AdversarialLoss, score_stats


def _conjugate_in_domain(t: Tensor, inside: Tensor, formula: Callable[[Tensor], Tensor]) -> Tensor:
    """``formula(t)`` where ``inside``, +inf elsewhere; evaluated at 0 outside (no NaN in gradients)."""
    safe = torch.where(inside, t, torch.zeros_like(t))
    return torch.where(inside, formula(safe), torch.full_like(t, math.inf))


@dataclass(frozen=True)
class FDivergence:
    """One divergence: g_f, f*, and f*(g_f(v)) in a stable form."""

    name: str
    activation: Callable[[Tensor], Tensor] = field(repr=False)
    conjugate: Callable[[Tensor], Tensor] = field(repr=False)
    conjugate_of_activation: Callable[[Tensor], Tensor] = field(repr=False)


_LOG2 = math.log(2.0)

F_DIVERGENCES: dict[str, FDivergence] = {
    "kl": FDivergence(
        "kl",
        activation=lambda v: v,
        conjugate=lambda t: torch.exp(t - 1.0),
        conjugate_of_activation=lambda v: torch.exp(v - 1.0),
    ),
    "reverse_kl": FDivergence(
        "reverse_kl",
        activation=lambda v: -torch.exp(-v),
        conjugate=lambda t: _conjugate_in_domain(t, t < 0, lambda s: -1.0 - torch.log(-s)),
        conjugate_of_activation=lambda v: v - 1.0,  # -1 - log(exp(-v))
    ),
    "pearson": FDivergence(
        "pearson",
        activation=lambda v: v,
        conjugate=lambda t: 0.25 * t * t + t,
        conjugate_of_activation=lambda v: 0.25 * v * v + v,
    ),
    "hellinger": FDivergence(
        "hellinger",
        activation=lambda v: -torch.expm1(-v),  # 1 - exp(-v)
        conjugate=lambda t: _conjugate_in_domain(t, t < 1, lambda s: s / (1.0 - s)),
        conjugate_of_activation=lambda v: torch.expm1(v),  # (1 - exp(-v)) / exp(-v)
    ),
    "js": FDivergence(
        "js",
        activation=lambda v: _LOG2 - F.softplus(-v),  # log 2 - log(1 + exp(-v))
        conjugate=lambda t: _conjugate_in_domain(
            t, t < _LOG2, lambda s: -torch.log(2.0 - torch.exp(s))
        ),
        conjugate_of_activation=lambda v: F.softplus(v) - _LOG2,  # -log(2 sigmoid(-v))
    ),
}


def _f_divergence(divergence: str) -> FDivergence:
    try:
        return F_DIVERGENCES[divergence]
    except KeyError:
        raise ValueError(
            f"divergence must be one of {', '.join(F_DIVERGENCES)}, got {divergence!r}"
        ) from None


def fgan_activation(v: Tensor, divergence: str) -> Tensor:
    """T = g_f(v), inside the domain of f* (Table 2)."""
    return _f_divergence(divergence).activation(v)


def fgan_conjugate(t: Tensor, divergence: str) -> Tensor:
    """f*(t) = sup_u (u t - f(u)) (Table 6); +inf outside its domain."""
    return _f_divergence(divergence).conjugate(t)


def d_loss_fgan(real: Tensor, fake: Tensor, divergence: str) -> Tensor:
    # L_D = -E g_f(V(x)) + E f*(g_f(V(G(z)))); -L_D estimates D_f  (eq. 6, 7); js: d_loss_bce - log 4
    div = _f_divergence(divergence)
    return div.conjugate_of_activation(fake).mean() - div.activation(real).mean()


def g_loss_fgan_saturating(fake: Tensor, divergence: str) -> Tensor:
    # L_G = -E f*(g_f(V(G(z)))), the bound up to a constant  (eq. 6)
    return -_f_divergence(divergence).conjugate_of_activation(fake).mean()


def g_loss_fgan_nonsaturating(fake: Tensor, divergence: str) -> Tensor:
    # L_G = -E g_f(V(G(z))), the "alternative" update  (section 3.2); js: g_loss_ns - log 2
    return -_f_divergence(divergence).activation(fake).mean()


class FGAN(AdversarialLoss):
    """f-GAN's game for ``divergence``, G's objective "nonsaturating" (the paper's experiments) or
    "saturating". Stats: loss_d, d_real, d_fake, divergence (-loss_d, the bound's estimate); loss_g."""

    _G_LOSSES = {"nonsaturating": g_loss_fgan_nonsaturating, "saturating": g_loss_fgan_saturating}

    def __init__(self, divergence: str = "js", g_objective: str = "nonsaturating", n_critic: int = 1) -> None:
        super().__init__(n_critic=n_critic)
        self.divergence = divergence
        self.g_objective = g_objective

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = D(real, y), D(fake, y)
        loss = d_loss_fgan(s_real, s_fake, self.divergence)
        return loss, score_stats(loss, s_real, s_fake, divergence=-loss.detach())

    def g_of(self, s_fake):
        return self._G_LOSSES[self.g_objective](s_fake, self.divergence)
