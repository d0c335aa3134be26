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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

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
    (updated before the penalty is formed, detached). The loss is ``weight * mean_n (length_n -
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
        with torch.no_grad():
            self.pl_mean = self.pl_mean.to(lengths.device, torch.float32)
            self.pl_mean = self.pl_mean.lerp(lengths.float().mean(), self.decay)
        penalty = (lengths - self.pl_mean.to(lengths.dtype)).square()
        loss = self.weight * penalty.mean()
        return loss, {"pl_length": lengths.detach().mean(), "pl_mean": self.pl_mean.clone(),
                      "pl_penalty": penalty.detach().mean()}

    def state_dict(self) -> dict[str, Tensor]:
        return {"pl_mean": self.pl_mean.detach().clone()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.pl_mean = torch.as_tensor(state["pl_mean"], dtype=torch.float32).clone()
