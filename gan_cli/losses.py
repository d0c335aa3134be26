"""The adversarial losses of the GAN papers.

Two layers:

1. Pure functions of discriminator outputs. Scores are raw (pre-sigmoid) tensors of shape
   ``(N,)``; each function returns the scalar mean over the batch. Where a loss is written with
   ``D(x) = sigmoid(score)``, it is computed through ``softplus`` so that it stays finite for
   any score:

       -log sigmoid(s)     = softplus(-s)
       -log(1 - sigmoid(s)) = softplus(s)

   Plus the helpers the regularised losses need: ``gradient_penalty``, ``interpolate`` (WGAN-GP),
   ``perturb`` (DRAGAN) and ``recon_error`` (BEGAN); f-GAN's output activations and Fenchel
   conjugates (``fgan_activation``, ``fgan_conjugate``, ``F_DIVERGENCES``); MMD-GAN's kernel and
   estimator (``rbf_mixture_kernel``, ``mmd2``).

2. One small object per loss: the ``_target_`` of the Hydra config ``loss/<name>.yaml``; its
   constructor keywords are that file's keys. The training loop only uses the interface below
   (see docs/architecture.md, "Losses"):

       n_critic: int                  discriminator steps per generator step (the papers' k)
       d_output: str                  "score", "reconstruction" or "features": what D must return
       g_needs_real: bool             g_loss needs the real batch too (MMD): call it with real=
       d_loss(D, real, fake, y=None) -> (loss, stats)    fake is already detached
       g_loss(D, fake, y=None) -> (loss, stats)          g_loss(D, fake, y, real=real) if g_needs_real
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
    Nowozin et al. 2016, "f-GAN: Training Generative Neural Samplers using Variational Divergence
        Minimization" (Table 1: the f; Table 2: output activations; Table 6: conjugates).
    Li et al. 2017, "MMD GAN: Towards Deeper Understanding of Moment Matching Network" (MMD-GAN).
    Gretton et al. 2012, "A Kernel Two-Sample Test" (the unbiased MMD^2 estimator, their eq. 3).
    Isola et al. 2017, "Image-to-Image Translation with Conditional Adversarial Networks" (the
        "L1 alone" row of its ablation: ``NoAdversarial`` with the model's L1 term).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BEGAN",
    "DRAGAN",
    "F_DIVERGENCES",
    "FGAN",
    "LSGAN",
    "MMD",
    "NoAdversarial",
    "WGAN",
    "WGANGP",
    "AdversarialLoss",
    "FDivergence",
    "Hinge",
    "Minimax",
    "NonSaturating",
    "clip_weights",
    "d_loss_bce",
    "d_loss_fgan",
    "d_loss_hinge",
    "d_loss_ls",
    "d_loss_wasserstein",
    "fgan_activation",
    "fgan_conjugate",
    "g_loss_fgan_nonsaturating",
    "g_loss_fgan_saturating",
    "g_loss_hinge",
    "g_loss_ls",
    "g_loss_minimax",
    "g_loss_ns",
    "g_loss_wasserstein",
    "gradient_penalty",
    "interpolate",
    "median_distance",
    "mmd2",
    "perturb",
    "rbf_mixture_kernel",
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
    (for images: over C, H and W together); for a packing discriminator (PacGAN), which returns
    one score per group of consecutive samples, over each group's whole input.

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
    # one norm per score: per sample, or per pack of consecutive samples for a packing D
    norms = grad.reshape(scores.reshape(-1).shape[0], -1).norm(p=2, dim=1)
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
# f-GAN: variational divergence minimisation (Nowozin et al. 2016)
# --------------------------------------------------------------------------------------------
#
# An f-divergence D_f(P || Q) = E_Q[f(p(x) / q(x))] (f convex, f(1) = 0) has the variational
# lower bound (their eq. 4, from Fenchel's inequality f*(t) >= u t - f(u)):
#
#     D_f(P || Q) >= sup_T  E_P[T(x)] - E_Q[f*(T(x))],    tight at T*(x) = f'(p(x) / q(x)),
#
# with f* the convex conjugate of f. The discriminator outputs an unconstrained score V(x); the
# output activation g_f maps it into the domain of f*, T = g_f(V) (their eq. 7 and Table 2):
#
#     divergence   f(u)                              g_f(v)                   f*(t)              dom f*
#     kl           u log u                           v                        exp(t - 1)         R
#     reverse_kl   -log u                            -exp(-v)                 -1 - log(-t)       t < 0
#     pearson      (u - 1)^2                         v                        t^2 / 4 + t        R
#     hellinger    (sqrt(u) - 1)^2                   1 - exp(-v)              t / (1 - t)        t < 1
#     js           -(u + 1) log((1 + u) / 2)         log 2 - log(1 + e^-v)    -log(2 - exp(t))   t < log 2
#                  + u log u
#
# Their Table 1 prints the Jensen-Shannon divergence with a factor 1/2,
# 1/2 KL(P || M) + 1/2 KL(Q || M) with M = (P + Q) / 2, but its f (above, with the conjugate of
# Table 6) is twice that: the bound estimates KL(P || M) + KL(Q || M) = 2 JSD, in [0, log 4].
# We keep the paper's f, g_f and f* as printed; the js bound is 2 JSD. Likewise hellinger is
# the squared Hellinger distance without a 1/2: integral of (sqrt(p) - sqrt(q))^2, in [0, 2].
#
# f*(g_f(v)), the term of the generated samples, is written in closed form so that it stays
# finite wherever g_f(v) is representable (e.g. reverse KL: -1 - log(exp(-v)) = v - 1, which a
# literal composition turns into inf once exp(-v) underflows).


def _conjugate_in_domain(t: Tensor, inside: Tensor, formula: Callable[[Tensor], Tensor]) -> Tensor:
    """``formula(t)`` where ``inside``, +inf elsewhere (f* is +inf outside its domain).

    ``formula`` is evaluated on a safe stand-in (0) outside the domain, so neither the value
    nor the gradient of the selected entries is polluted by NaN.
    """
    safe = torch.where(inside, t, torch.zeros_like(t))
    return torch.where(inside, formula(safe), torch.full_like(t, math.inf))


@dataclass(frozen=True)
class FDivergence:
    """One divergence of f-GAN: its output activation and Fenchel conjugate.

    Args:
        name: the key in ``F_DIVERGENCES``.
        activation: g_f, from raw scores v to T = g_f(v) inside the domain of f*.
        conjugate: f*(t) for any t (+inf outside its domain).
        conjugate_of_activation: f*(g_f(v)) as a function of v, in a numerically stable form.
    """

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
        # -1 - log(-(-exp(-v))) = -1 + v
        conjugate_of_activation=lambda v: v - 1.0,
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
        # t / (1 - t) with 1 - t = exp(-v): (1 - exp(-v)) exp(v) = exp(v) - 1
        conjugate_of_activation=lambda v: torch.expm1(v),
    ),
    "js": FDivergence(
        "js",
        activation=lambda v: _LOG2 - F.softplus(-v),  # log 2 - log(1 + exp(-v))
        conjugate=lambda t: _conjugate_in_domain(
            t, t < _LOG2, lambda s: -torch.log(2.0 - torch.exp(s))
        ),
        # exp(t) = 2 sigmoid(v), so 2 - exp(t) = 2 sigmoid(-v) and -log(2 sigmoid(-v))
        # = softplus(v) - log 2
        conjugate_of_activation=lambda v: F.softplus(v) - _LOG2,
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
    """f-GAN's output activation ``T = g_f(v)`` (Nowozin et al. 2016, Table 2).

    Args:
        v: raw discriminator scores, any shape.
        divergence: kl | reverse_kl | pearson | hellinger | js.

    Returns:
        ``g_f(v)``, same shape, inside the domain of ``f*``.
    """
    return _f_divergence(divergence).activation(v)


def fgan_conjugate(t: Tensor, divergence: str) -> Tensor:
    """The Fenchel conjugate ``f*(t) = sup_u (u t - f(u))`` (Nowozin et al. 2016, Table 6).

    Args:
        t: values of the variational function T, any shape.
        divergence: kl | reverse_kl | pearson | hellinger | js.

    Returns:
        ``f*(t)``, same shape; +inf where t lies outside the domain of f* (reverse_kl: t >= 0,
        hellinger: t >= 1, js: t >= log 2), where the supremum is unbounded.
    """
    return _f_divergence(divergence).conjugate(t)


def d_loss_fgan(real: Tensor, fake: Tensor, divergence: str) -> Tensor:
    """f-GAN's discriminator loss (Nowozin et al. 2016, eq. 6 and 7).

    D maximises the variational bound ``E_P[g_f(V(x))] - E_Q[f*(g_f(V(G(z))))]``, an estimate
    from below of D_f(P || Q); we minimise its negative:

        L_D = -mean g_f(real) + mean f*(g_f(fake))

    ``-L_D`` is the divergence estimate. For ``js`` this is ``d_loss_bce - log 4``.

    Args:
        real: raw scores V on real samples, shape (N,).
        fake: raw scores V on generated samples, shape (M,).
        divergence: kl | reverse_kl | pearson | hellinger | js.

    Returns:
        The scalar loss.
    """
    div = _f_divergence(divergence)
    return div.conjugate_of_activation(fake).mean() - div.activation(real).mean()


def g_loss_fgan_saturating(fake: Tensor, divergence: str) -> Tensor:
    """f-GAN's generator loss as the saddle point has it (Nowozin et al. 2016, eq. 6).

    G minimises the bound ``E_P[T(x)] - E_Q[f*(T(G(z)))]``; its first term does not depend on
    G, so

        L_G = -mean f*(g_f(fake))

    which equals the bound up to that constant.

    Args:
        fake: raw scores V on generated samples, shape (N,).
        divergence: kl | reverse_kl | pearson | hellinger | js.

    Returns:
        The scalar loss.
    """
    return -_f_divergence(divergence).conjugate_of_activation(fake).mean()


def g_loss_fgan_nonsaturating(fake: Tensor, divergence: str) -> Tensor:
    """f-GAN's "alternative" generator update (Nowozin et al. 2016, section 3.2).

    G maximises ``E_Q[g_f(V(G(z)))]`` instead of minimising ``-E_Q[f*(g_f(V(G(z))))]``, the
    non-saturating trick of Goodfellow et al. 2014 carried to every f (for ``js`` it is
    ``g_loss_ns - log 2``):

        L_G = -mean g_f(fake)

    Args:
        fake: raw scores V on generated samples, shape (N,).
        divergence: kl | reverse_kl | pearson | hellinger | js.

    Returns:
        The scalar loss.
    """
    return -_f_divergence(divergence).activation(fake).mean()


# --------------------------------------------------------------------------------------------
# MMD-GAN: kernel maximum mean discrepancy of D's features (Li et al. 2017)
# --------------------------------------------------------------------------------------------


def _sq_distances(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances ||a_i - b_j||^2, shape (N, M), of flattened samples.

    Distances do not change when every point moves by the same vector, so the points are first
    centred on their common mean c: ||a - b||^2 = ||a'||^2 + ||b'||^2 - 2 a'.b' with a' = a - c.
    Without the centring, features of a clipped discriminator (a common offset of ~1e-2, spread
    ~1e-5) lose their distances to rounding in float32 (||a||^2 ~ 1e-4 against ||a - b||^2 ~ 1e-10).
    """
    a, b = a.flatten(start_dim=1), b.flatten(start_dim=1)
    centre = torch.cat([a, b]).mean(0)
    a, b = a - centre, b - centre
    # clamped at 0 against rounding
    return (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T).clamp_min(0.0)


def _rbf_mixture_minus_count(a: Tensor, b: Tensor, sigmas: Sequence[float]) -> Tensor:
    """``rbf_mixture_kernel(a, b, sigmas) - len(sigmas)``, computed without cancellation:

        k(a, b) - Q = sum_q (exp(-d^2 / (2 sigma_q^2)) - 1) = sum_q expm1(-d^2 / (2 sigma_q^2))

    For d^2 << sigma^2, exp(-d^2 / 2 sigma^2) rounds to exactly 1 in float32 once
    d^2 / 2 sigma^2 < 3e-8, while expm1 keeps about 7 significant digits of -d^2 / 2 sigma^2.
    """
    sq = _sq_distances(a, b)
    return sum(torch.expm1(sq * (-0.5 / (s * s))) for s in sigmas)


def rbf_mixture_kernel(a: Tensor, b: Tensor, sigmas: Sequence[float]) -> Tensor:
    """A sum of Gaussian RBF kernels, the kernel of MMD-GAN's experiments (Li et al. 2017):

        k(a, b) = sum_q exp(-||a - b||^2 / (2 sigma_q^2))

    Args:
        a: points, shape (N, ...): each sample is flattened to a vector.
        b: points, shape (M, ...), same per-sample size as ``a``.
        sigmas: the bandwidths sigma_q (> 0), in the units of the points.

    Returns:
        The Gram matrix, shape (N, M).
    """
    return _rbf_mixture_minus_count(a, b, sigmas) + float(len(sigmas))


def mmd2(x: Tensor, y: Tensor, sigmas: Sequence[float], biased: bool = False) -> Tensor:
    """The squared maximum mean discrepancy between two samples (Gretton et al. 2012, eq. 3-5).

    With k = ``rbf_mixture_kernel``, x of size m and y of size n, the unbiased estimator is

        MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
                  - 2/(mn) sum_{i, j} k(x_i, y_j)

    (it can be slightly negative); the biased one keeps the diagonals and divides by m^2 and n^2
    (always >= 0, exactly 0 when x and y are the same batch).

    The three averages carry weights +1, +1 and -2, so a constant added to k cancels: both
    estimators are computed with k - Q (Q = the number of kernels), which is the kernel's
    information without the constant 1 per kernel that float32 cannot resolve beside it (see
    ``_rbf_mixture_minus_count``). For points much closer than the bandwidths the estimate then
    stays accurate, close to the linear-kernel limit sum_q ||mean x - mean y||^2 / (2 sigma_q^2),
    where computing k itself would round it to 0.

    Args:
        x: samples, shape (m, ...), e.g. D's features of real data.
        y: samples, shape (n, ...), e.g. D's features of generated data.
        sigmas: the kernel bandwidths (> 0).
        biased: use the biased (V-statistic) estimator.

    Returns:
        The scalar estimate.

    Raises:
        ValueError: fewer than two samples on a side for the unbiased estimator, or samples of
            different sizes.
    """
    m, n = x.shape[0], y.shape[0]
    if x.shape[1:].numel() != y.shape[1:].numel():
        raise ValueError(f"mmd2 needs samples of the same size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not biased and min(m, n) < 2:
        raise ValueError(f"the unbiased MMD^2 needs at least 2 samples on each side, got {m} and {n}")
    k_xx = _rbf_mixture_minus_count(x, x, sigmas)
    k_yy = _rbf_mixture_minus_count(y, y, sigmas)
    k_xy = _rbf_mixture_minus_count(x, y, sigmas)
    if biased:
        return k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean()
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.mean()


def median_distance(x: Tensor, y: Tensor) -> Tensor:
    """The median Euclidean distance between distinct points of the pooled sample x and y.

    The bandwidth of the median heuristic (Gretton et al. 2012, sec. 8): with N = m + n pooled
    points, the median of the N(N-1)/2 distances ||p_i - p_j||, i < j (torch's lower median for an
    even count). Computed without gradient: it sets the kernel's unit, it is not trained through.

    Args:
        x: samples, shape (m, ...); y: samples, shape (n, ...), same per-sample size.

    Returns:
        A 0-dim tensor (0 when all points coincide).
    """
    with torch.no_grad():
        pooled = torch.cat([x.flatten(start_dim=1), y.flatten(start_dim=1)])
        n = len(pooled)
        i, j = torch.triu_indices(n, n, offset=1, device=pooled.device)
        return _sq_distances(pooled, pooled)[i, j].median().sqrt()


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


def clip_weights(D: torch.nn.Module, clip_value: float) -> None:
    """Clamp every parameter of ``D`` in place to ``[-clip_value, clip_value]`` (WGAN, MMD-GAN).

    Args:
        D: the network; changed in place, outside autograd.
        clip_value: the bound c (> 0).
    """
    with torch.no_grad():
        for p in D.parameters():
            p.clamp_(-clip_value, clip_value)


class AdversarialLoss:
    """Base class of the loss objects: the interface the training loop sees.

    Subclasses set ``d_output`` and implement ``d_loss`` and ``g_loss``; ``after_d_step``,
    ``state_dict`` and ``load_state_dict`` default to "no state, nothing to do".

    Attributes:
        d_output: "score" (D returns raw scores of shape (N,)), "reconstruction" (D returns
            a tensor of its input's shape) or "features" (D returns features, shape (N, F)).
        g_needs_real: ``g_loss`` needs a real batch too (keyword ``real``), as MMD-GAN's does.
        n_critic: discriminator steps per generator step.
    """

    d_output: str = "score"
    double_backward: bool = False  # True when d_loss differentiates through D's input gradients
    g_needs_real: bool = False

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
        clip_weights(D, self.clip_value)


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


class FGAN(AdversarialLoss):
    """f-GAN (Nowozin et al. 2016): variational divergence minimisation for any f in ``F_DIVERGENCES``.

        L_D = -mean g_f(D(x)) + mean f*(g_f(D(G(z))))                     (``d_loss_fgan``)
        L_G = -mean g_f(D(G(z)))            g_objective="nonsaturating"   (the paper's alternative)
        L_G = -mean f*(g_f(D(G(z))))        g_objective="saturating"      (the saddle point's)

    D returns raw scores V; the activation and conjugate of the divergence turn them into the
    bound. Stats of the D step: ``loss_d``, ``d_real``, ``d_fake`` (mean raw scores) and
    ``divergence`` (``-loss_d``: the bound's estimate of D_f(P || Q); for ``js`` it estimates
    2 JSD, see the section comment above ``F_DIVERGENCES``). G step: ``loss_g``.

    With ``divergence="js"`` and the non-saturating G this is the non-saturating GAN up to
    constants (``d_loss_bce - log 4``, ``g_loss_ns - log 2``).

    Args:
        divergence: kl | reverse_kl | pearson | hellinger | js.
        g_objective: "nonsaturating" (G maximises E[g_f(V(G(z)))], used in the paper's
            experiments) or "saturating" (G minimises the bound).
        n_critic: discriminator steps per generator step (1 in the paper).
    """

    _G_LOSSES = {"nonsaturating": g_loss_fgan_nonsaturating, "saturating": g_loss_fgan_saturating}

    def __init__(
        self, divergence: str = "js", g_objective: str = "nonsaturating", n_critic: int = 1
    ) -> None:
        super().__init__(n_critic=n_critic)
        self.divergence = _f_divergence(divergence).name
        if g_objective not in self._G_LOSSES:
            raise ValueError(
                f"g_objective must be one of {', '.join(self._G_LOSSES)}, got {g_objective!r}"
            )
        self.g_objective = g_objective

    def d_loss(self, D, real, fake, y=None):
        s_real, s_fake = _d_scores(D, real, fake, y)
        loss = d_loss_fgan(s_real, s_fake, self.divergence)
        return loss, {
            "loss_d": loss.detach(),
            "d_real": s_real.detach().mean(),
            "d_fake": s_fake.detach().mean(),
            "divergence": -loss.detach(),
        }

    def g_loss(self, D, fake, y=None):
        loss = self._G_LOSSES[self.g_objective](D(fake, y), self.divergence)
        return loss, {"loss_g": loss.detach()}


class MMD(AdversarialLoss):
    """MMD-GAN (Li et al. 2017): kernel MMD^2 between D's features of real and generated data.

    D is a feature extractor (``d_output = "features"``: D returns (N, F)); with
    ``mmd2`` over ``rbf_mixture_kernel(sigmas)``:

        L_D = -MMD^2(D(x), D(G(z)))      D maximises the discrepancy (weights clipped)
        L_G =  MMD^2(D(x), D(G(z)))      G minimises it, so it needs a real batch: g_needs_real

    After every D step the weights are clamped to ``[-clip_value, clip_value]``, as in the
    paper's Algorithm 1. What this leaves out of the authors' code: the
    autoencoder's reconstruction terms, the one-sided feasibility penalty and the square root
    of MMD^2 (their ``errD`` / ``errG``); without the decoder, D here is the paper's encoder alone.

    In ``g_loss`` the real features are computed without gradient (G's gradient flows only
    through the generated features). Stats: ``loss_d``, ``mmd2`` (the D step's estimate);
    ``loss_g``; with ``bandwidth="median"`` also ``feature_scale``, the median distance of the D
    step's features.

    The bandwidths. The paper's sigmas are in feature units; its authors' D (a DCGAN encoder
    with BatchNorm after each hidden convolution, ``base_module.Encoder`` in OctoberChang/MMD-GAN)
    renormalises every layer, so clipping to 0.01 shrinks its features only in the last layers:
    their spread starts around 1e-2 and grows as D trains. A clipped D without BatchNorm (the
    MLP) shrinks them by ~0.1 per layer: on ring8 the 3x256 MLP's features start with a spread
    of ~1e-5, MMD^2 ~1e-10, gradients far below Adam's eps, and nothing trains. With
    ``bandwidth="median"`` the sigmas are in units of the median distance between the batch's
    pooled real and generated features (Gretton et al. 2012's median heuristic, detached): the
    kernel follows D's feature scale, whatever the clipping does to it.

    Args:
        sigmas: the RBF bandwidths in feature units (> 0; the paper's {1, 2, 4, 8, 16}).
        n_critic: discriminator steps per generator step (the paper's 5).
        clip_value: the clipping bound c (> 0; the paper's 0.01), or None for no clipping (e.g.
            with spectral norm on D).
        biased: use the biased MMD^2 estimator (the unbiased one by default).
        bandwidth: "fixed": sigmas in feature units (the paper's); "median": sigmas in units of
            ``median_distance`` of the pooled real and generated features.
    """

    d_output = "features"
    g_needs_real = True

    def __init__(
        self,
        sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0),
        n_critic: int = 5,
        clip_value: float | None = 0.01,
        biased: bool = False,
        bandwidth: str = "fixed",
    ) -> None:
        super().__init__(n_critic=n_critic)
        sigmas = tuple(sigmas)
        if not sigmas:
            raise ValueError("sigmas must hold at least one bandwidth")
        self.sigmas = tuple(_check_real("sigmas", s, gt=0.0) for s in sigmas)
        self.clip_value = None if clip_value is None else _check_real("clip_value", clip_value, gt=0.0)
        if not isinstance(biased, bool):
            raise ValueError(f"biased must be true or false, got {biased!r}")
        self.biased = biased
        if bandwidth not in ("fixed", "median"):
            raise ValueError(f"bandwidth must be 'fixed' or 'median', got {bandwidth!r}")
        self.bandwidth = bandwidth

    def _mmd2(self, f_real: Tensor, f_fake: Tensor) -> tuple[Tensor, Tensor | None]:
        """MMD^2 of the features, and the feature unit used (None for fixed bandwidths)."""
        if f_real.dim() < 2 or f_fake.dim() < 2:
            raise ValueError(
                "MMD-GAN's discriminator must return features of shape (N, F) (output='features'), "
                f"got {tuple(f_real.shape)} and {tuple(f_fake.shape)}"
            )
        if self.bandwidth == "fixed":
            return mmd2(f_real, f_fake, self.sigmas, biased=self.biased), None
        # k(a, b) with bandwidths sigma_q * u is k(a / u, b / u) with bandwidths sigma_q
        unit = median_distance(f_real, f_fake).clamp_min(torch.finfo(f_real.dtype).tiny)
        return mmd2(f_real / unit, f_fake / unit, self.sigmas, biased=self.biased), unit

    def d_loss(self, D, real, fake, y=None):
        value, unit = self._mmd2(*_d_scores(D, real, fake, y))
        loss = -value
        stats = {"loss_d": loss.detach(), "mmd2": value.detach()}
        if unit is not None:
            stats["feature_scale"] = unit
        return loss, stats

    def g_loss(self, D, fake, y=None, real=None):
        """G's loss; ``real`` (a real batch, shape of ``fake``) is required."""
        if real is None:
            raise ValueError("MMD-GAN's generator loss compares with real data: call g_loss(..., real=batch)")
        with torch.no_grad():
            f_real = D(real, y)
        loss, _ = self._mmd2(f_real, D(fake, y))
        return loss, {"loss_g": loss.detach()}

    def after_d_step(self, D, stats):
        """Clamp every parameter of D to ``[-clip_value, clip_value]`` (nothing when None)."""
        if self.clip_value is not None:
            clip_weights(D, self.clip_value)


class NoAdversarial(AdversarialLoss):
    """No adversarial loss: both terms are exactly 0, so only the model's regularisers train.

    The ablation rows of Isola et al. 2017 (Table 1, "L1" alone) train pix2pix's generator with
    its reconstruction term only: ``loss=none model=pix2pix`` keeps the U-Net, the data and the
    L1 term (``model.regularizers.l1``) and drops the game:

        L_D = 0 (a leaf with no path to D: D is never called, its gradients stay None, so its
              optimizer leaves it at its initial weights)
        L_G = 0 * sum(G(z, y))  (zero gradients, but attached to G's graph, so that G's update
              goes through even if every regulariser is off too)

    Stats: ``loss_d`` and ``loss_g``, both 0.

    Args:
        n_critic: discriminator steps per generator step (each draws a batch; keep 1).
    """

    def d_loss(self, D, real, fake, y=None):
        loss = torch.zeros((), device=real.device, requires_grad=True)
        return loss, {"loss_d": loss.detach()}

    def g_loss(self, D, fake, y=None):
        loss = fake.new_zeros(()) + fake.sum() * 0.0  # +0.0 (a negative sum times 0.0 is -0.0)
        return loss, {"loss_g": loss.detach()}
