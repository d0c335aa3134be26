"""The original GAN game and its score-loss successors: minimax, non-saturating, LSGAN, hinge, none.

Scores are raw (pre-sigmoid), shape (N,); each function returns the batch mean. With
D = sigmoid(s): -log D = softplus(-s) and -log(1 - D) = softplus(s), finite for any score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.losses.base import AdversarialLoss


def d_loss_bce(real: Tensor, fake: Tensor) -> Tensor:
    # L_D = -E log D(x) - E log(1 - D(G(z)))  (Goodfellow et al. 2014, eq. 1)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_minimax(fake: Tensor) -> Tensor:
    # L_G = E log(1 - D(G(z))), saturates when D rejects the samples  (Goodfellow et al. 2014, eq. 1)
    return -F.softplus(fake).mean()


def g_loss_ns(fake: Tensor) -> Tensor:
    # L_G = -E log D(G(z)), the non-saturating loss  (Goodfellow et al. 2014, section 3)
    return F.softplus(-fake).mean()


def d_loss_ls(real: Tensor, fake: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    # L_D = 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2  (Mao et al. 2017, eq. 2; a-b-c = 0-1-1 or -1-1-0)
    return 0.5 * (real - b).pow(2).mean() + 0.5 * (fake - a).pow(2).mean()


def g_loss_ls(fake: Tensor, c: float = 1.0) -> Tensor:
    # L_G = 1/2 E (D(G(z)) - c)^2  (Mao et al. 2017, eq. 2)
    return 0.5 * (fake - c).pow(2).mean()


def d_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    # L_D = E relu(1 - D(x)) + E relu(1 + D(G(z)))  (Lim & Ye 2017; Miyato et al. 2018, eq. 16)
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: Tensor) -> Tensor:
    # L_G = -E D(G(z))  (Miyato et al. 2018, eq. 17)
    return -fake.mean()


class Minimax(AdversarialLoss):
    """The original game (Goodfellow et al. 2014). Stats: loss_d, d_real, d_fake; loss_g."""

    d_probability = True  # sigmoid cross-entropy: D(x) = sigmoid(score) = P(real)
    d_of = staticmethod(d_loss_bce)
    g_of = staticmethod(g_loss_minimax)


class NonSaturating(AdversarialLoss):
    """GAN with the non-saturating G loss (Goodfellow et al. 2014, section 3)."""

    d_probability = True  # sigmoid cross-entropy: D(x) = sigmoid(score) = P(real)
    d_of = staticmethod(d_loss_bce)
    g_of = staticmethod(g_loss_ns)


class Hinge(AdversarialLoss):
    """The hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    d_of = staticmethod(d_loss_hinge)
    g_of = staticmethod(g_loss_hinge)


class LSGAN(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017): D's targets ``a`` (fake) and ``b`` (real), G's ``c``."""

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, n_critic: int = 1) -> None:
        super().__init__(n_critic=n_critic)
        self.a, self.b, self.c = float(a), float(b), float(c)

    def d_of(self, s_real: Tensor, s_fake: Tensor) -> Tensor:
        return d_loss_ls(s_real, s_fake, a=self.a, b=self.b)

    def g_of(self, s_fake: Tensor) -> Tensor:
        return g_loss_ls(s_fake, c=self.c)


class NoAdversarial(AdversarialLoss):
    """No game: both losses are 0 and only the model's regularisers train (pix2pix's "L1 alone" row,
    Isola et al. 2017, Table 1). D is never called, so it keeps its initial weights; G's 0 is attached
    to its graph so that G's update runs even with every regulariser off. Stats: loss_d, loss_g."""

    def d_loss(self, D, real, fake, y=None):
        loss = torch.zeros((), device=real.device, requires_grad=True)
        return loss, {"loss_d": loss.detach()}

    def g_loss(self, D, fake, y=None):
        loss = fake.new_zeros(()) + fake.sum() * 0.0  # +0.0 (a negative sum times 0.0 is -0.0)
        return loss, {"loss_g": loss.detach()}
