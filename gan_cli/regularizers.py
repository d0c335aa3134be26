"""Regularisers: extra loss terms with their own network and interval, beside the adversarial loss.

A regulariser is an object with

    net: str        "D" or "G": the network whose optimizer takes the term's gradient
    interval: int   every ``interval`` updates of that network; 1 = added to that update's loss;
                    k > 1 = lazy regularisation (Karras et al. 2020, "Analyzing and Improving the
                    Image Quality of StyleGAN", appendix B): the step multiplies the term by k,
                    runs its own backward and optimizer step, and that network's optimizer is built
                    with lr * k / (k + 1) and betas ** (k / (k + 1)) so that the main loss keeps its
                    effective settings
    __call__(ctx: RegContext) -> (loss, stats)   a 0-dim tensor and detached 0-dim statistics
    state_dict() / load_state_dict(state)        optional running state (saved in checkpoints)

The training step (gan_cli/training/step.py) calls them; nothing here knows about the loop.

Regularisers defined here:

* :class:`R1` and :class:`R2`, the zero-centred gradient penalties of Mescheder, Geiger &
  Nowozin 2018, "Which Training Methods for GANs do actually Converge?" (their eq. 9 and 10):

      R1 = gamma / 2 * E_{x ~ P_data} ||grad_x D(x)||^2      at the real samples
      R2 = gamma / 2 * E_{x ~ P_G}    ||grad_x D(x)||^2      at the generated samples

  added to D's loss. Unlike WGAN-GP's penalty they pull the gradient towards 0, not 1, and only
  on one distribution's support: near the equilibrium, D then has no gradient along the data
  that would push G off it, which makes the training dynamics locally convergent.
* :class:`L1Reconstruction`, pix2pix's L1 term (Isola et al. 2017, eq. 3), added to G's loss:

      L_L1 = weight * mean | G(z, y) - x |      y the input image, x the target
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import torch
from torch import Tensor

from gan_cli.distributed import all_reduce_mean

__all__ = ["R1", "R2", "RegContext", "grad_sq_norm", "lazy_factor"]

Stats = dict[str, Tensor]


@dataclass
class RegContext:
    """What a regulariser may look at during one update.

    Args:
        G: the generator as the step calls it, ``G(z, y)``.
        D: the discriminator as the step calls it, ``D(x, y)``.
        real: the real batch of this update.
        y: the condition of this update (labels, an image, or None).
        fake: G's output for ``z``: attached to G's graph for G regularisers, detached for D ones.
        z: the latent codes behind ``fake``.
    """

    G: Callable[..., Tensor]
    D: Callable[..., Tensor]
    real: Tensor
    y: Any
    fake: Tensor
    z: Tensor


def lazy_factor(interval: int) -> float:
    """``k / (k + 1)``: how lazy regularisation every ``k`` updates scales lr and the betas' exponent."""
    return interval / (interval + 1)


def grad_sq_norm(D: Callable[..., Tensor], points: Tensor, y: Any = None) -> Tensor:
    """Each judged input's squared input-gradient norm ``||grad_x D(x_i, y_i)||^2``.

    ``points`` is detached and made a leaf that requires grad; the gradient is computed with
    ``create_graph=True`` so that a penalty built from it back-propagates into D's parameters (a
    double backward). As in ``losses.gradient_penalty``, the gradient of the summed scores is
    each sample's own input gradient only when a sample's score does not depend on the rest of
    the batch (no batch normalisation in D). A packing D (PacGAN) returns one score per group
    of ``N / M`` consecutive samples; the norm is then taken over each group's whole input.

    Args:
        D: the discriminator, called as ``D(points, y)``; must return scores of shape (M,), M
            dividing N (M = N without packing).
        points: where to take the gradient, shape (N, ...).
        y: the condition passed through to D, or None.

    Returns:
        The squared norms over each judged input, shape (M,).

    Raises:
        ValueError: D returned something other than one score per sample or per pack.
    """
    x = points.detach().requires_grad_(True)
    scores = D(x, y)
    if scores.dim() != 1 or scores.shape[0] == 0 or x.shape[0] % scores.shape[0]:
        raise ValueError(
            "a zero-centred gradient penalty needs one score per sample (or per pack) from D, "
            f"shape ({x.shape[0]},), got {tuple(scores.shape)}"
        )
    (grad,) = torch.autograd.grad(outputs=scores.sum(), inputs=x, create_graph=True)
    return grad.reshape(scores.shape[0], -1).pow(2).sum(dim=1)


class _ZeroCentredPenalty:
    """Shared body of R1 and R2: ``gamma / 2 * mean ||grad_x D(x)||^2`` at ``_points(ctx)``."""

    net = "D"
    input_gradients = True  # differentiates D's input gradients: needs per-sample scores
    _name = ""

    def __init__(self, gamma: float = 10.0, interval: int = 1) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not math.isfinite(gamma) or gamma < 0:
            raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
        if isinstance(interval, bool) or not isinstance(interval, Integral) or interval < 1:
            raise ValueError(f"interval must be an integer >= 1, got {interval!r}")
        self.gamma = float(gamma)
        self.interval = int(interval)

    def _points(self, ctx: RegContext) -> Tensor:
        raise NotImplementedError

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        """The penalty for one update (the loop multiplies it by ``interval`` when lazy).

        Args:
            ctx: the update's context; ``ctx.D``, ``ctx.y`` and the points of this penalty.

        Returns:
            ``(loss, stats)``: ``gamma / 2 * mean ||grad||^2``, and ``{name: mean ||grad||^2}``
            (the penalty before ``gamma / 2``, like WGAN-GP's ``gp`` stat).
        """
        sq = grad_sq_norm(ctx.D, self._points(ctx), ctx.y).mean()
        return 0.5 * self.gamma * sq, {self._name: sq.detach()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self.gamma:g}, interval={self.interval})"


class R1(_ZeroCentredPenalty):
    """R1: the zero-centred gradient penalty on real data (Mescheder et al. 2018, eq. 9).

        R1 = gamma / 2 * mean_i ||grad_x D(x_i, y_i)||^2,    x_i = ctx.real

    Stat: ``r1`` (mean squared gradient norm). The paper uses gamma = 10 on most datasets;
    StyleGAN2 applies it lazily every 16 D updates (``interval=16``).

    Args:
        gamma: the penalty weight (>= 0).
        interval: apply every ``interval`` D updates (1 = with every D loss; k > 1 = lazy).
    """

    _name = "r1"

    def _points(self, ctx: RegContext) -> Tensor:
        return ctx.real


class R2(_ZeroCentredPenalty):
    """R2: the zero-centred gradient penalty on generated data (Mescheder et al. 2018, eq. 10).

        R2 = gamma / 2 * mean_i ||grad_x D(G(z_i), y_i)||^2,    G(z_i) = ctx.fake

    Stat: ``r2`` (mean squared gradient norm).

    Args:
        gamma: the penalty weight (>= 0).
        interval: apply every ``interval`` D updates (1 = with every D loss; k > 1 = lazy).
    """

    _name = "r2"

    def _points(self, ctx: RegContext) -> Tensor:
        return ctx.fake


class L1Reconstruction:
    """pix2pix's L1 term (Isola et al. 2017, eq. 3): the generator's output stays near the target.

        L_L1 = weight * mean_{n,c,h,w} | G(z, y) - x |

    with ``y`` the input image, ``x`` the target and ``G(z, y)`` the output (``ctx.fake``, attached
    to G's graph; ``ctx.real`` is the target). The mean is over every value of the batch, as
    torch's ``l1_loss``; the paper's lambda is ``weight`` = 100 for images in [-1, 1].

    Args:
        weight: lambda, >= 0 (0 turns the term off but still reports it).

    Attributes:
        net: ``"G"``: the generator's optimizer takes the gradient.
        interval: 1: added to every generator update's loss.

    Call returns ``(loss, stats)``: ``loss = weight * l1`` and ``stats = {"l1": l1}``, the
    unweighted mean absolute error, detached (the same quantity ``paired_metrics`` reports as
    ``l1`` on held-out pairs).
    """

    net = "G"
    interval = 1

    def __init__(self, weight: float = 100.0) -> None:
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight < float("inf"):
            raise ValueError(f"L1Reconstruction: weight must be a finite number >= 0, got {weight!r}")
        self.weight = float(weight)

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        if ctx.fake.shape != ctx.real.shape:
            raise ValueError(f"L1Reconstruction: G's output {tuple(ctx.fake.shape)} and the target "
                             f"{tuple(ctx.real.shape)} differ in shape")
        l1 = (ctx.fake - ctx.real).abs().mean()
        return self.weight * l1, {"l1": l1.detach()}
# --------------------------------------------------------------------------------------------
# ProGAN's drift term and StyleGAN2's path-length regulariser


class Drift:
    """ProGAN's drift term: ``epsilon_drift * E[D(x_real)^2]`` (Karras et al. 2018, appendix A.1).

    Added to WGAN-GP's critic loss with ``epsilon_drift = 0.001`` to keep the critic's output
    from drifting far from zero (the Wasserstein loss is blind to a constant offset).

    Args:
        epsilon: ``epsilon_drift`` (0.001).

    ``net = "D"``, ``interval = 1``. Evaluates ``ctx.D(ctx.real, ctx.y)`` itself (one more forward
    of D on the real batch).
    """

    net = "D"
    interval = 1

    def __init__(self, epsilon: float = 0.001) -> None:
        if epsilon < 0:
            raise ValueError(f"Drift: epsilon must be >= 0, got {epsilon}")
        self.epsilon = float(epsilon)

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        loss = self.epsilon * ctx.D(ctx.real, ctx.y).square().mean()
        return loss, {"drift": loss.detach()}


class PathLength:
    """StyleGAN2's path-length regulariser (Karras et al. 2020, section 3.2, eq. 4, appendix B).

        a = E_{w, y ~ N(0, I)} (|| J_w^T y ||_2 - a_mean)^2,   J_w = dg(w)/dw

    computed as in NVIDIA's code: for a generated batch with styles ``ws`` (N, num_ws, w_dim),
    ``y`` is Gaussian noise scaled by ``1 / sqrt(H W)`` (so the length does not depend on the
    image size), ``J^T y = d(sum(img * y)) / d ws`` by autograd, the length of sample n is
    ``sqrt(mean over styles of the squared norm over w_dim)``, and ``a_mean`` (``pl_mean``) is a
    moving average of the batch mean length: ``pl_mean <- pl_mean + decay (mean(lengths) - pl_mean)``
    (updated before the penalty is formed, detached; under DDP the mean is over every rank's
    lengths, so all ranks keep the same ``pl_mean``). The loss is ``weight * mean_n (length_n -
    pl_mean)^2``; its gradient reaches G through a double backward.

    Args:
        weight: ``pl_weight`` (2).
        interval: lazy regularisation every ``interval`` G updates (4); the loop multiplies the
            loss by ``interval``.
        decay: ``pl_decay`` (0.01).
        batch_shrink: the penalty is computed on the first ``N // batch_shrink`` latents of
            ``ctx.z`` (at least one) with a fresh generator pass (2).

    ``net = "G"``. Needs ``ctx.G(z, y, return_ws=True) -> (images, ws)`` with ``ws`` the styles
    the synthesis network received (StyleGAN and StyleGAN2 generators), ``ctx.z`` and ``ctx.y``
    (the condition; a tensor is cut to the same first samples). ``state_dict()`` holds ``pl_mean``.
    """

    net = "G"

    def __init__(self, weight: float = 2.0, interval: int = 4, decay: float = 0.01,
                 batch_shrink: int = 2) -> None:
        if weight < 0 or not 0 <= decay <= 1 or interval < 1 or batch_shrink < 1:
            raise ValueError("PathLength: need weight >= 0, 0 <= decay <= 1, interval >= 1, "
                             f"batch_shrink >= 1; got {weight}, {decay}, {interval}, {batch_shrink}")
        self.weight, self.interval = float(weight), int(interval)
        self.decay, self.batch_shrink = float(decay), int(batch_shrink)
        self.pl_mean = torch.zeros(())

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        n = max(1, ctx.z.shape[0] // self.batch_shrink)
        y = ctx.y[:n] if isinstance(ctx.y, Tensor) else ctx.y
        img, ws = ctx.G(ctx.z[:n], y, return_ws=True)
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
        with torch.no_grad():  # the batch mean over every rank's samples: one pl_mean for all
            self.pl_mean = self.pl_mean.to(lengths.device, torch.float32)
            self.pl_mean = self.pl_mean.lerp(all_reduce_mean(lengths.float().mean()), self.decay)
        penalty = (lengths - self.pl_mean.to(lengths.dtype)).square()
        loss = self.weight * penalty.mean()
        return loss, {"pl_length": lengths.detach().mean(), "pl_mean": self.pl_mean.clone(),
                      "pl_penalty": penalty.detach().mean()}

    def state_dict(self) -> dict[str, Tensor]:
        return {"pl_mean": self.pl_mean.detach().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.pl_mean = torch.as_tensor(state["pl_mean"], dtype=torch.float32).clone()


class SinGANReconstruction:
    """SinGAN's reconstruction loss (Shaham et al. 2019, eq. 5), a term of G's loss at every update.

        L_rec = alpha * mean((G_n(z_rec_n, up(x^rec_{n-1})) - x_n)^2)

    with ``z_rec_n`` the fixed noise ``z*`` at the coarsest scale and zeros above (``ScaleGenerator``'s
    ``z_rec`` buffer) and ``x^rec_{n-1}`` the coarser scales' reconstruction. Both inputs are fixed
    while scale n trains (the coarser generators are frozen), so ``SinGANCascade.begin_scale`` hands
    them over once per scale through ``set_inputs``; they are saved in ``state_dict`` for resume.
    A regulariser rather than a function the loop calls, because the contract fits exactly: a term
    on G's loss every update (``net="G"``, ``interval=1``) that needs only ``ctx.G`` and
    ``ctx.real``, so the loop needs no SinGAN branch.

    Args:
        alpha: the weight (the paper's 10).

    Stats: ``rec_mse`` (the mean squared error before alpha).
    """

    net = "G"
    interval = 1

    def __init__(self, alpha: float = 10.0) -> None:
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.z: Tensor | None = None
        self.y: Tensor | None = None

    def set_inputs(self, z: Tensor, y: Tensor) -> None:
        """The reconstruction path's noise map and condition for the scale that starts now."""
        self.z, self.y = z.detach().clone(), y.detach().clone()

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        if self.z is None or self.y is None:
            raise RuntimeError("SinGANReconstruction: set_inputs(z, y) must be called when a scale starts "
                               "(SinGANCascade.begin_scale does it)")
        rec = ctx.G(self.z.to(ctx.real.device), self.y.to(ctx.real.device))
        mse = (rec - ctx.real).square().mean()  # rec (1, C, H, W) broadcasts over a repeated batch
        return self.alpha * mse, {"rec_mse": mse.detach()}

    def state_dict(self) -> dict[str, Any]:
        return {"z": self.z, "y": self.y}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.z, self.y = state["z"], state["y"]
