"""Critic losses and the gradient penalties around them: WGAN, WGAN-GP, DRAGAN, SinGAN's WGAN-GP.

Each penalty takes D's input gradient through ``base.input_gradient`` at a leaf made from its
points; the norm is over a sample's non-batch dimensions, or over each pack's whole input for a
packing D (PacGAN), which returns one score per group of consecutive samples.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from gan_cli.losses.base import AdversarialLoss, Discriminator, clip_weights, input_gradient, score_stats
from gan_cli.losses.classic import d_loss_bce, g_loss_minimax, g_loss_ns


def d_loss_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    # L_D = E D(G(z)) - E D(x); -L_D estimates W_1 given a Lipschitz D  (Arjovsky et al. 2017, alg. 1)
    return fake.mean() - real.mean()


def g_loss_wasserstein(fake: Tensor) -> Tensor:
    # L_G = -E D(G(z))  (Arjovsky et al. 2017)
    return -fake.mean()


def gradient_penalty(D: Discriminator, points: Tensor, y: Tensor | None = None,
                     target_norm: float = 1.0) -> Tensor:
    """GP = mean_i (||grad_x D(x_i, y_i)||_2 - target_norm)^2 at ``points`` (N, ...), before any lambda
    (Gulrajani et al. 2017, eq. 3; Kodali et al. 2017)."""
    x = points.detach().requires_grad_(True)
    scores = D(x, y)
    grad = input_gradient(scores, x)
    # one norm per score: per sample, or per pack of consecutive samples for a packing D
    norms = grad.reshape(scores.reshape(-1).shape[0], -1).norm(p=2, dim=1)
    return (norms - target_norm).pow(2).mean()


def _uniform_per_sample(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) draws, one per sample, shaped (N, 1, ..., 1) to broadcast against ``x``."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)


def interpolate(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    # x_hat = eps x + (1 - eps) G(z), one eps ~ U[0, 1] per sample  (Gulrajani et al. 2017, alg. 1)
    if real.shape != fake.shape:
        raise ValueError(
            f"interpolate needs real and fake of the same shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}"
        )
    eps = _uniform_per_sample(real, generator)
    return eps * real + (1.0 - eps) * fake


def perturb(real: Tensor, scale: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """DRAGAN's points x + alpha * scale * std(x) * u, u ~ U[0, 1] elementwise, alpha ~ U[0, 1] per
    sample: the authors' code (Kodali et al. 2017), with the batch's population std over every value.
    Detached from ``real``'s graph."""
    x = real.detach()
    std = x.std(correction=0)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    alpha = _uniform_per_sample(x, generator)
    return x + alpha * (scale * std * u)


def perturb_normal(real: Tensor, scale: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    # x + delta, delta ~ N(0, c I), sqrt(c) = scale * std(x) (the batch's population std)
    # (Kodali et al. 2017, eq. 9; Lucic et al. 2018, table 1). Detached from ``real``'s graph.
    x = real.detach()
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x + scale * x.std(correction=0) * noise


def _unwrap(net: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel (``module``) or torch.compile (``_orig_mod``)."""
    while True:
        inner = getattr(net, "module", None) or getattr(net, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return net
        net = inner


def patch_gradient_penalty(D: nn.Module, points: Tensor, y: Any = None) -> Tensor:
    """SinGAN's penalty (its authors' code): mean over images and pixels (i, j) of
    (||d S(x) / d x[:, i, j]||_2 - 1)^2, S the sum of the image's patch scores. ``D`` is a
    ``ScaleDiscriminator`` (maybe wrapped) whose ``D(x)`` is the mean patch score."""
    x = points.detach().requires_grad_(True)
    count = _unwrap(D).patch_count(x.shape[-2], x.shape[-1])
    grad = input_gradient(D(x, y), x)
    return ((grad * count).norm(2, dim=1) - 1.0).square().mean()


class _Critic(AdversarialLoss):
    """The Wasserstein critic's game plus ``gp_lambda * penalty(...)`` when gp_lambda > 0. Stats:
    loss_d, d_real, d_fake, wasserstein (mean real - mean fake score), gp (before gp_lambda)."""

    g_of = staticmethod(g_loss_wasserstein)
    gp_lambda = 0.0

    def penalty(self, D: Discriminator, real: Tensor, fake: Tensor, y: Any) -> Tensor:
        raise NotImplementedError

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = D(real, y), D(fake, y)
        loss, gp = d_loss_wasserstein(s_real, s_fake), None
        if self.gp_lambda > 0:
            gp = self.penalty(D, real, fake, y)
            loss = loss + self.gp_lambda * gp
        wasserstein = s_real.detach().mean() - s_fake.detach().mean()
        return loss, score_stats(loss, s_real, s_fake, wasserstein=wasserstein, gp=gp)


class WGAN(_Critic):
    """WGAN with weight clipping (Arjovsky et al. 2017): D's parameters clamped to
    [-clip_value, clip_value] after every step."""

    def __init__(self, clip_value: float = 0.01, n_critic: int = 5) -> None:
        super().__init__(n_critic=n_critic)
        self.clip_value = float(clip_value)

    def after_d_step(self, D, stats):
        clip_weights(D, self.clip_value)


class WGANGP(_Critic):
    """WGAN-GP (Gulrajani et al. 2017, alg. 1): L_D = E D(G(z)) - E D(x) + gp_lambda * GP(x_hat)."""

    double_backward = True

    def __init__(self, gp_lambda: float = 10.0, n_critic: int = 5) -> None:
        super().__init__(n_critic=n_critic)
        self.gp_lambda = float(gp_lambda)

    def penalty(self, D, real, fake, y):
        return gradient_penalty(D, interpolate(real, fake), y)


class SinGANWGANGP(WGANGP):
    """WGAN-GP with SinGAN's ``patch_gradient_penalty`` on the interpolates (Shaham et al. 2019's
    code: gp_lambda 0.1, n_critic 3)."""

    def __init__(self, gp_lambda: float = 0.1, n_critic: int = 3) -> None:
        super().__init__(gp_lambda=gp_lambda, n_critic=n_critic)

    def penalty(self, D, real, fake, y):
        return patch_gradient_penalty(D, interpolate(real, fake), y)


class DRAGAN(AdversarialLoss):
    """DRAGAN (Kodali et al. 2017): L_D = d_loss_bce + dragan_lambda * GP(perturb(x, perturb_scale)).

    ``g_loss``: "ns", L_G = -E log D(G(z)) (the authors' code), or "minimax", L_G = E log(1 - D(G(z)))
    (the paper's and Lucic et al. 2018's table); ``perturb``: "uniform", ``perturb`` (the authors'
    code), or "normal", ``perturb_normal`` (N(0, c), the paper's). Stats: loss_d, d_real, d_fake,
    gp (none when dragan_lambda is 0)."""

    double_backward = True
    d_probability = True  # sigmoid cross-entropy: D(x) = sigmoid(score) = P(real)
    G_LOSSES = {"ns": g_loss_ns, "minimax": g_loss_minimax}
    PERTURBATIONS = {"uniform": perturb, "normal": perturb_normal}

    def __init__(self, dragan_lambda: float = 10.0, perturb_scale: float = 0.5, n_critic: int = 1,
                 g_loss: str = "ns", perturb: str = "uniform") -> None:
        super().__init__(n_critic=n_critic)
        self.dragan_lambda, self.perturb_scale = float(dragan_lambda), float(perturb_scale)
        self.g_of, self.perturb = self.G_LOSSES[g_loss], self.PERTURBATIONS[perturb]

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = D(real, y), D(fake, y)
        loss, gp = d_loss_bce(s_real, s_fake), None
        if self.dragan_lambda > 0:
            gp = gradient_penalty(D, self.perturb(real, self.perturb_scale), y)
            loss = loss + self.dragan_lambda * gp
        return loss, score_stats(loss, s_real, s_fake, gp=gp)
