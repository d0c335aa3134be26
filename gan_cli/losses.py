"""The adversarial losses of the GAN papers.

Two layers:

1. Pure functions of discriminator outputs. Scores are raw (pre-sigmoid) tensors of shape
   ``(N,)``; each function returns the scalar mean over the batch. Where a loss is written with
   ``D(x) = sigmoid(score)``, it is computed through ``softplus`` so that it stays finite for
   any score:

       -log sigmoid(s)     = softplus(-s)
       -log(1 - sigmoid(s)) = softplus(s)

   Plus the helpers the regularised losses need: ``gradient_penalty``, ``interpolate`` (WGAN-GP),
   ``perturb`` (DRAGAN) and ``recon_error`` (BEGAN).

2. One small object per loss: the ``_target_`` of the Hydra config ``loss/<name>.yaml``; its
   constructor keywords are that file's keys. The training loop only uses the interface below
   (see docs/architecture.md, "Losses"):

       n_critic: int                  discriminator steps per generator step (the papers' k)
       d_output: str                  "score" or "reconstruction": what D must return
       d_loss(D, real, fake, y=None) -> (loss, stats)    fake is already detached
       g_loss(D, fake, y=None) -> (loss, stats)
       after_d_step(D, stats) -> None                    after each D optimizer step
       state_dict() -> dict ; load_state_dict(dict)

   ``stats`` maps names to detached 0-dim tensors. Nothing here calls ``.item()`` or otherwise
   reads a value back to the host during a step; the statistics collector reduces the stats.
   Discriminator-step stats always include ``"loss_d"``, generator-step stats ``"loss_g"``.

References:
    Goodfellow et al. 2014, "Generative Adversarial Nets" (minimax and non-saturating losses).
    Arjovsky et al. 2017, "Wasserstein GAN" (critic loss, weight clipping, n_critic = 5).
    Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (gradient penalty, lambda 10).
    Mao et al. 2017, "Least Squares Generative Adversarial Networks" (a-b-c coding).
    Kodali et al. 2017, "On Convergence and Stability of GANs" (DRAGAN).
    Berthelot et al. 2017, "BEGAN: Boundary Equilibrium Generative Adversarial Networks".
    Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization for GANs" (hinge).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BEGAN",
    "DRAGAN",
    "LSGAN",
    "WGAN",
    "WGANGP",
    "AdversarialLoss",
    "Hinge",
    "Minimax",
    "NonSaturating",
    "d_loss_bce",
    "d_loss_hinge",
    "d_loss_ls",
    "d_loss_wasserstein",
    "g_loss_hinge",
    "g_loss_ls",
    "g_loss_minimax",
    "g_loss_ns",
    "g_loss_wasserstein",
    "gradient_penalty",
    "interpolate",
    "perturb",
    "recon_error",
]

Stats = dict[str, Tensor]
Discriminator = Callable[..., Tensor]


# --------------------------------------------------------------------------------------------
# Pure functions of discriminator scores
# --------------------------------------------------------------------------------------------


def d_loss_bce(real: Tensor, fake: Tensor) -> Tensor:
    """Discriminator loss of the original GAN (Goodfellow et al. 2014, eq. 1).

    With ``D = sigmoid(score)`` the discriminator maximises
    ``E log D(x) + E log(1 - D(G(z)))``; we minimise its negative:

        L_D = mean(-log D(x)) + mean(-log(1 - D(G(z))))
            = mean softplus(-real) + mean softplus(fake)

    Args:
        real: raw scores on real samples, shape (N,).
        fake: raw scores on generated samples, shape (M,).

    Returns:
        The scalar loss (a 0-dim tensor).
    """
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_minimax(fake: Tensor) -> Tensor:
    """The original, saturating generator loss (Goodfellow et al. 2014, eq. 1).

    G minimises ``E log(1 - D(G(z)))``:

        L_G = mean log(1 - sigmoid(fake)) = mean(-softplus(fake))

    Its gradient with respect to a score ``s`` is ``-sigmoid(s) / N``, which vanishes when D
    confidently rejects the samples (``s`` very negative), early in training: the reason the
    paper recommends the non-saturating loss in practice.

    Args:
        fake: raw scores on generated samples, shape (N,).

    Returns:
        The scalar loss (negative or zero; G drives it towards -inf).
    """
    return -F.softplus(fake).mean()


def g_loss_ns(fake: Tensor) -> Tensor:
    """The non-saturating generator loss (Goodfellow et al. 2014, section 3).

    G maximises ``E log D(G(z))`` instead, i.e. minimises

        L_G = mean(-log sigmoid(fake)) = mean softplus(-fake)

    Its gradient with respect to a score ``s`` is ``-(1 - sigmoid(s)) / N``: close to ``-1/N``
    exactly where the minimax loss saturates.

    Args:
        fake: raw scores on generated samples, shape (N,).

    Returns:
        The scalar loss (>= 0).
    """
    return F.softplus(-fake).mean()


def d_loss_wasserstein(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss of WGAN (Arjovsky et al. 2017, algorithm 1).

    The critic maximises ``E f(x) - E f(G(z))``, an estimate of the Wasserstein-1 distance
    (given a Lipschitz constraint, which the caller enforces); we minimise its negative:

        L_D = mean(fake) - mean(real)

    Args:
        real: critic scores on real samples, shape (N,).
        fake: critic scores on generated samples, shape (M,).

    Returns:
        The scalar loss; ``-L_D`` is the critic's Wasserstein estimate.
    """
    return fake.mean() - real.mean()


def g_loss_wasserstein(fake: Tensor) -> Tensor:
    """Generator loss of WGAN (Arjovsky et al. 2017): ``L_G = -mean(fake)``.

    Args:
        fake: critic scores on generated samples, shape (N,).

    Returns:
        The scalar loss.
    """
    return -fake.mean()


def d_loss_ls(real: Tensor, fake: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Least-squares discriminator loss (Mao et al. 2017, eq. 2).

        L_D = 1/2 mean (real - b)^2 + 1/2 mean (fake - a)^2

    ``a`` is the target for fake data and ``b`` the target for real data. The paper's choices:
    ``a=0, b=1, c=1`` (used in its experiments) or ``a=-1, b=1, c=0`` (which makes the
    objective a Pearson chi^2 divergence, b - c = 1 and b - a = 2).

    Args:
        real: raw scores on real samples, shape (N,).
        fake: raw scores on generated samples, shape (M,).
        a: target score for generated samples.
        b: target score for real samples.

    Returns:
        The scalar loss (>= 0).
    """
    return 0.5 * (real - b).pow(2).mean() + 0.5 * (fake - a).pow(2).mean()


def g_loss_ls(fake: Tensor, c: float = 1.0) -> Tensor:
    """Least-squares generator loss (Mao et al. 2017, eq. 2).

        L_G = 1/2 mean (fake - c)^2

    where ``c`` is the value G wants D to believe for fake data.

    Args:
        fake: raw scores on generated samples, shape (N,).
        c: target score the generator pushes its samples towards.

    Returns:
        The scalar loss (>= 0).
    """
    return 0.5 * (fake - c).pow(2).mean()


def d_loss_hinge(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge discriminator loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16).

        L_D = mean relu(1 - real) + mean relu(1 + fake)

    Args:
        real: raw scores on real samples, shape (N,).
        fake: raw scores on generated samples, shape (M,).

    Returns:
        The scalar loss (>= 0).
    """
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: Tensor) -> Tensor:
    """Hinge generator loss (Lim & Ye 2017; Miyato et al. 2018, eq. 17): ``-mean(fake)``.

    Args:
        fake: raw scores on generated samples, shape (N,).

    Returns:
        The scalar loss.
    """
    return -fake.mean()


# --------------------------------------------------------------------------------------------
# Helpers of the regularised losses
# --------------------------------------------------------------------------------------------


def gradient_penalty(
    D: Discriminator,
    points: Tensor,
    y: Tensor | None = None,
    target_norm: float = 1.0,
) -> Tensor:
    """Two-sided gradient penalty (Gulrajani et al. 2017, eq. 3; Kodali et al. 2017).

        GP = mean_i ( || grad_x D(x_i, y_i) ||_2 - target_norm )^2

    The norm of each sample's input gradient is taken over all its non-batch dimensions
    (for images: over C, H and W together).

    ``points`` is detached from whatever graph produced it and made a leaf that requires grad;
    the input gradient is computed with ``create_graph=True`` so that the returned penalty can be
    back-propagated into D's parameters (a double backward). The penalty assumes that a
    sample's score does not depend on the other samples of the batch (no batch normalisation
    in D; the WGAN-GP paper uses layer normalisation or none for this reason): the gradient of
    the summed scores is then each sample's own input gradient.

    Args:
        D: the discriminator, called as ``D(points, y)``; must return scores of shape (N,).
        points: where to evaluate the gradient, shape (N, ...).
        y: class labels passed through to D, or None.
        target_norm: the gradient norm the penalty pulls towards (1 for a 1-Lipschitz critic).

    Returns:
        The scalar penalty (>= 0, not yet multiplied by any lambda).
    """
    x = points.detach().requires_grad_(True)
    scores = D(x, y)
    (grad,) = torch.autograd.grad(outputs=scores.sum(), inputs=x, create_graph=True)
    norms = grad.flatten(start_dim=1).norm(p=2, dim=1)
    return (norms - target_norm).pow(2).mean()


def _uniform_per_sample(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1) draws, one per sample, shaped (N, 1, ..., 1) to broadcast against ``x``."""
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)


def interpolate(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Random points on the segments between real and generated samples (WGAN-GP).

        x_hat_i = eps_i * real_i + (1 - eps_i) * fake_i,   eps_i ~ U[0, 1]

    with one ``eps`` per sample, shared by all of that sample's dimensions (Gulrajani et al.
    2017, algorithm 1).

    Args:
        real: real samples, shape (N, ...).
        fake: generated samples, same shape as ``real``.
        generator: optional random generator (on ``real``'s device) for reproducible draws.

    Returns:
        The interpolates, shape of ``real``. They carry gradients only if the inputs do;
        ``gradient_penalty`` detaches them anyway.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"interpolate needs real and fake of the same shape, got {tuple(real.shape)} "
            f"and {tuple(fake.shape)}"
        )
    eps = _uniform_per_sample(real, generator)
    return eps * real + (1.0 - eps) * fake


def perturb(
    real: Tensor, scale: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """DRAGAN's perturbed real samples (Kodali et al. 2017).

        delta = scale * std(x) * u,   u ~ U[0, 1] elementwise
        x_p   = x + alpha * delta,    alpha ~ U[0, 1] per sample

    i.e. a random point on the segment between each real sample and a noisy copy of it.

    Choices, documented because the paper leaves them open (its text speaks of a Gaussian
    perturbation ``x + delta, delta ~ N(0, cI)``): we follow the form of the authors' reference
    implementation, with nonnegative uniform noise scaled by ``scale`` (0.5 there) times the
    standard deviation of the whole batch (one number over all samples and all dimensions,
    computed as a population std, ``correction=0`` as NumPy does, so a batch of one sample is
    well defined). Every coordinate therefore moves by at least 0 and at most ``scale * std``.
    The result is detached from ``real``'s graph.

    Args:
        real: real samples, shape (N, ...).
        scale: the noise amplitude in units of the batch standard deviation (>= 0).
        generator: optional random generator (on ``real``'s device) for reproducible draws.

    Returns:
        The perturbed samples, shape of ``real``.
    """
    x = real.detach()
    std = x.std(correction=0)
    u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    alpha = _uniform_per_sample(x, generator)
    return x + alpha * (scale * std * u)


def recon_error(x: Tensor, recon: Tensor) -> Tensor:
    """BEGAN's per-sample autoencoder loss ``L(v) = |v - D(v)|`` (Berthelot et al. 2017, eq. 1).

    The paper uses the L1 norm (eta = 1); we take the mean over the sample's dimensions rather
    than the sum, so that the scale (and hence lambda_k and gamma) does not depend on the image
    size.

    Args:
        x: samples, shape (N, ...).
        recon: D's reconstruction of ``x``, same shape.

    Returns:
        The per-sample error, shape (N,).
    """
    if x.shape != recon.shape:
        raise ValueError(
            f"BEGAN's discriminator must return a reconstruction of its input's shape "
            f"{tuple(x.shape)}, got {tuple(recon.shape)}"
        )
    return (x - recon).abs().flatten(start_dim=1).mean(dim=1)


# --------------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------------


def _check_n_critic(n_critic: Any) -> int:
    if isinstance(n_critic, bool) or not isinstance(n_critic, Integral) or n_critic < 1:
        raise ValueError(f"n_critic must be an integer >= 1, got {n_critic!r}")
    return int(n_critic)


def _check_real(
    name: str,
    value: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
) -> float:
    """Return ``value`` as a float after checking it is a finite number within the bounds."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    if gt is not None and not value > gt:
        raise ValueError(f"{name} must be > {gt:g}, got {value:g}")
    if ge is not None and not value >= ge:
        raise ValueError(f"{name} must be >= {ge:g}, got {value:g}")
    if le is not None and not value <= le:
        raise ValueError(f"{name} must be <= {le:g}, got {value:g}")
    return value


# --------------------------------------------------------------------------------------------
# Loss objects (the Hydra `_target_`s of conf/loss/<name>.yaml)
# --------------------------------------------------------------------------------------------


def _d_scores(D: Discriminator, real: Tensor, fake: Tensor, y: Tensor | None):
    return D(real, y), D(fake, y)


class AdversarialLoss:
    """Base class of the loss objects: the interface the training loop sees.

    Subclasses set ``d_output`` and implement ``d_loss`` and ``g_loss``; ``after_d_step``,
    ``state_dict`` and ``load_state_dict`` default to "no state, nothing to do".

    Attributes:
        d_output: "score" (D returns raw scores of shape (N,)) or "reconstruction" (D returns
            a tensor of its input's shape).
        n_critic: discriminator steps per generator step.
    """

    d_output: str = "score"
    double_backward: bool = False  # True when d_loss differentiates through D's input gradients

    def __init__(self, n_critic: int = 1) -> None:
        self.n_critic = _check_n_critic(n_critic)

    def d_loss(
        self, D: Discriminator, real: Tensor, fake: Tensor, y: Tensor | None = None
    ) -> tuple[Tensor, Stats]:
        """The discriminator's loss on one batch.

        Args:
            D: the discriminator, called as ``D(x, y)``.
            real: a batch of real samples, shape (N, ...).
            fake: generated samples, already detached by the caller, same shape.
            y: the batch's class labels (shared by real and fake), or None.

        Returns:
            ``(loss, stats)``: the scalar loss to back-propagate into D, and detached 0-dim
            statistics, at least ``"loss_d"``.
        """
        raise NotImplementedError

    def g_loss(
        self, D: Discriminator, fake: Tensor, y: Tensor | None = None
    ) -> tuple[Tensor, Stats]:
        """The generator's loss on one batch.

        Args:
            D: the discriminator, called as ``D(fake, y)``.
            fake: generated samples, still attached to G's graph.
            y: the labels G was given, or None.

        Returns:
            ``(loss, stats)``: the scalar loss to back-propagate into G, and detached 0-dim
            statistics, at least ``"loss_g"``.
        """
        raise NotImplementedError

    def after_d_step(self, D: Discriminator, stats: Stats) -> None:
        """Called by the loop after each discriminator optimizer step (default: nothing).

        Args:
            D: the discriminator, just updated.
            stats: the stats of that step's ``d_loss`` (possibly already all-reduced).
        """

    def state_dict(self) -> dict[str, Any]:
        """The loss's own state, for checkpoints (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (default: accepts only an empty dict).

        Raises:
            ValueError: the state has keys this loss does not know (e.g. a checkpoint written
                with a different loss).
        """
        if state:
            raise ValueError(
                f"{type(self).__name__} has no state, but the checkpoint holds {sorted(state)}"
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class _BCEBase(AdversarialLoss):
    """Shared discriminator loss of the original GAN family: ``d_loss_bce``."""

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = _d_scores(D, real, fake, y)
        loss = d_loss_bce(s_real, s_fake)
        return loss, {
            "loss_d": loss.detach(),
            "d_real": s_real.detach().mean(),
            "d_fake": s_fake.detach().mean(),
        }


class Minimax(_BCEBase):
    """The original GAN game (Goodfellow et al. 2014): ``d_loss_bce`` / ``g_loss_minimax``.

    Stats: ``loss_d``, ``d_real``, ``d_fake`` (mean raw scores); ``loss_g``.

    Args:
        n_critic: discriminator steps per generator step (the paper's k; 1 in its experiments).
    """

    def g_loss(self, D, fake, y=None):
        loss = g_loss_minimax(D(fake, y))
        return loss, {"loss_g": loss.detach()}


class NonSaturating(_BCEBase):
    """GAN with the non-saturating generator loss (Goodfellow et al. 2014, section 3).

    ``d_loss_bce`` / ``g_loss_ns``. Stats: ``loss_d``, ``d_real``, ``d_fake``; ``loss_g``.

    Args:
        n_critic: discriminator steps per generator step.
    """

    def g_loss(self, D, fake, y=None):
        loss = g_loss_ns(D(fake, y))
        return loss, {"loss_g": loss.detach()}


class _WassersteinBase(AdversarialLoss):
    """Shared critic/generator losses of WGAN and WGAN-GP."""

    def _critic(self, D, real, fake, y):
        s_real, s_fake = _d_scores(D, real, fake, y)
        loss = d_loss_wasserstein(s_real, s_fake)
        d_real = s_real.detach().mean()
        d_fake = s_fake.detach().mean()
        stats = {"d_real": d_real, "d_fake": d_fake, "wasserstein": d_real - d_fake}
        return loss, stats

    def g_loss(self, D, fake, y=None):
        loss = g_loss_wasserstein(D(fake, y))
        return loss, {"loss_g": loss.detach()}


class WGAN(_WassersteinBase):
    """Wasserstein GAN with weight clipping (Arjovsky et al. 2017, algorithm 1).

    After every critic step all of D's parameters are clamped to ``[-clip_value, clip_value]``.
    Stats: ``loss_d``, ``d_real``, ``d_fake``, ``wasserstein`` (``mean real - mean fake``, the
    critic's estimate of the distance).

    Args:
        clip_value: the clipping bound c (> 0; the paper's 0.01).
        n_critic: critic steps per generator step (the paper's 5).
    """

    def __init__(self, clip_value: float = 0.01, n_critic: int = 5) -> None:
        super().__init__(n_critic=n_critic)
        self.clip_value = _check_real("clip_value", clip_value, gt=0.0)

    def d_loss(self, D, real, fake, y=None):
        loss, stats = self._critic(D, real, fake, y)
        return loss, {"loss_d": loss.detach(), **stats}

    def after_d_step(self, D, stats):
        """Clamp every parameter of D in place to ``[-clip_value, clip_value]``."""
        with torch.no_grad():
            for p in D.parameters():
                p.clamp_(-self.clip_value, self.clip_value)


class WGANGP(_WassersteinBase):
    """WGAN with gradient penalty (Gulrajani et al. 2017, algorithm 1).

        L_D = mean(fake) - mean(real) + gp_lambda * GP(x_hat),  x_hat = interpolate(real, fake)

    Stats: ``loss_d``, ``d_real``, ``d_fake``, ``wasserstein`` and ``gp`` (the penalty before
    multiplying by ``gp_lambda``). With ``gp_lambda == 0`` the penalty is not computed (and
    ``gp`` is not reported).

    Args:
        gp_lambda: the penalty weight (>= 0; the paper's 10).
        n_critic: critic steps per generator step (the paper's 5).
    """

    double_backward = True

    def __init__(self, gp_lambda: float = 10.0, n_critic: int = 5) -> None:
        super().__init__(n_critic=n_critic)
        self.gp_lambda = _check_real("gp_lambda", gp_lambda, ge=0.0)

    def d_loss(self, D, real, fake, y=None):
        loss, stats = self._critic(D, real, fake, y)
        if self.gp_lambda > 0:
            gp = gradient_penalty(D, interpolate(real, fake), y)
            loss = loss + self.gp_lambda * gp
            stats["gp"] = gp.detach()
        return loss, {"loss_d": loss.detach(), **stats}


class LSGAN(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017): ``d_loss_ls(a, b)`` / ``g_loss_ls(c)``.

    Args:
        a: D's target score for generated samples.
        b: D's target score for real samples (must differ from ``a``).
        c: the score G wants D to give its samples.
        n_critic: discriminator steps per generator step.
    """

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0, n_critic: int = 1) -> None:
        super().__init__(n_critic=n_critic)
        self.a = _check_real("a", a)
        self.b = _check_real("b", b)
        self.c = _check_real("c", c)
        if self.a == self.b:
            raise ValueError(
                f"a (target for fake) and b (target for real) must differ, both are {self.a:g}"
            )

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = _d_scores(D, real, fake, y)
        loss = d_loss_ls(s_real, s_fake, a=self.a, b=self.b)
        return loss, {
            "loss_d": loss.detach(),
            "d_real": s_real.detach().mean(),
            "d_fake": s_fake.detach().mean(),
        }

    def g_loss(self, D, fake, y=None):
        loss = g_loss_ls(D(fake, y), c=self.c)
        return loss, {"loss_g": loss.detach()}


class DRAGAN(AdversarialLoss):
    """DRAGAN (Kodali et al. 2017): the GAN loss plus a gradient penalty around real data.

        L_D = d_loss_bce + dragan_lambda * GP(perturb(real, perturb_scale))
        L_G = g_loss_ns

    Stats: ``loss_d``, ``d_real``, ``d_fake``, ``gp`` (before multiplying by the lambda; not
    computed nor reported when ``dragan_lambda == 0``).

    Args:
        dragan_lambda: the penalty weight (>= 0; the paper's 10).
        perturb_scale: noise amplitude in units of the batch std (>= 0; 0.5 as in the authors'
            code); see ``perturb``.
        n_critic: discriminator steps per generator step.
    """

    double_backward = True

    def __init__(
        self, dragan_lambda: float = 10.0, perturb_scale: float = 0.5, n_critic: int = 1
    ) -> None:
        super().__init__(n_critic=n_critic)
        self.dragan_lambda = _check_real("dragan_lambda", dragan_lambda, ge=0.0)
        self.perturb_scale = _check_real("perturb_scale", perturb_scale, ge=0.0)

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = _d_scores(D, real, fake, y)
        loss = d_loss_bce(s_real, s_fake)
        stats = {"d_real": s_real.detach().mean(), "d_fake": s_fake.detach().mean()}
        if self.dragan_lambda > 0:
            gp = gradient_penalty(D, perturb(real, self.perturb_scale), y)
            loss = loss + self.dragan_lambda * gp
            stats["gp"] = gp.detach()
        return loss, {"loss_d": loss.detach(), **stats}

    def g_loss(self, D, fake, y=None):
        loss = g_loss_ns(D(fake, y))
        return loss, {"loss_g": loss.detach()}


class BEGAN(AdversarialLoss):
    """Boundary Equilibrium GAN (Berthelot et al. 2017, eq. 4).

    D is an autoencoder (``d_output = "reconstruction"``) and ``L(v) = recon_error(v, D(v))``:

        L_D = mean L(x) - k_t * mean L(G(z))
        L_G = mean L(G(z))
        k_{t+1} = clamp(k_t + lambda_k * (gamma * L(x) - L(G(z))), 0, 1)
        M_global = L(x) + |gamma * L(x) - L(G(z))|     (the convergence measure)

    ``k_t`` is kept as a 0-dim float32 tensor on the device of the stats, so the step never
    reads it back to the host. It is updated in ``after_d_step`` from the stats it is given
    (so a distributed loop can all-reduce them first); ``d_loss`` uses the current ``k_t`` and
    reports it as stat ``k_t``. Stats of the D step: ``loss_d``, ``l_real``, ``l_fake``,
    ``k_t``, ``convergence``.

    Args:
        gamma: the diversity ratio E L(G(z)) / E L(x) aimed at (0 < gamma <= 1; 0.5 default,
            the paper uses 0.3 to 0.7).
        lambda_k: the learning rate of k (>= 0; the paper's 0.001).
        k_init: the initial k_0 (0 <= k_init <= 1; the paper's 0).
        n_critic: discriminator steps per generator step.
    """

    d_output = "reconstruction"

    def __init__(
        self,
        gamma: float = 0.5,
        lambda_k: float = 0.001,
        k_init: float = 0.0,
        n_critic: int = 1,
    ) -> None:
        super().__init__(n_critic=n_critic)
        self.gamma = _check_real("gamma", gamma, gt=0.0, le=1.0)
        self.lambda_k = _check_real("lambda_k", lambda_k, ge=0.0)
        k_init = _check_real("k_init", k_init, ge=0.0, le=1.0)
        self.k_t = torch.tensor(k_init, dtype=torch.float32)

    def _k_on(self, device: torch.device) -> Tensor:
        # A one-off copy the first time (and after load_state_dict); afterwards k_t lives there.
        if self.k_t.device != device:
            self.k_t = self.k_t.to(device)
        return self.k_t

    def d_loss(self, D, real, fake, y=None):
        l_real = recon_error(real, D(real, y)).mean()
        l_fake = recon_error(fake, D(fake, y)).mean()
        k = self._k_on(l_real.device)
        loss = l_real - k * l_fake
        lr, lf = l_real.detach(), l_fake.detach()
        return loss, {
            "loss_d": loss.detach(),
            "l_real": lr,
            "l_fake": lf,
            "k_t": k.clone(),
            "convergence": lr + (self.gamma * lr - lf).abs(),
        }

    def g_loss(self, D, fake, y=None):
        loss = recon_error(fake, D(fake, y)).mean()
        return loss, {"loss_g": loss.detach()}

    def after_d_step(self, D, stats):
        """Update ``k_t`` from ``stats["l_real"]`` and ``stats["l_fake"]`` (no host sync)."""
        l_real = stats["l_real"].detach().float()
        l_fake = stats["l_fake"].detach().float()
        k = self._k_on(l_real.device)
        self.k_t = (k + self.lambda_k * (self.gamma * l_real - l_fake)).clamp(0.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        """``{"k_t": <0-dim float32 tensor>}`` (a copy, on k_t's current device)."""
        return {"k_t": self.k_t.detach().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``k_t`` (a tensor or a number) from ``state_dict()``'s output."""
        unknown = set(state) - {"k_t"}
        if "k_t" not in state or unknown:
            raise ValueError(
                f"BEGAN's state must hold exactly 'k_t', the checkpoint holds {sorted(state)}"
            )
        self.k_t = torch.as_tensor(state["k_t"]).detach().to(torch.float32).clone().reshape(())


class Hinge(AdversarialLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): ``d_loss_hinge`` / ``g_loss_hinge``.

    Args:
        n_critic: discriminator steps per generator step.
    """

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = _d_scores(D, real, fake, y)
        loss = d_loss_hinge(s_real, s_fake)
        return loss, {
            "loss_d": loss.detach(),
            "d_real": s_real.detach().mean(),
            "d_fake": s_fake.detach().mean(),
        }

    def g_loss(self, D, fake, y=None):
        loss = g_loss_hinge(D(fake, y))
        return loss, {"loss_g": loss.detach()}
