"""Regularisers: loss terms with their own network and interval, beside the adversarial loss.

A regulariser has ``net`` ("D" or "G": whose optimizer takes the term), ``interval`` (1: added to
every update's loss of that network; k > 1: lazy, every k updates, multiplied by k, with its own
backward and step, and that optimizer built with lr * k/(k+1), betas ** (k/(k+1)): Karras et al.
2020, appendix B), ``__call__(RegContext) -> (loss, stats)`` and optionally ``state_dict`` /
``load_state_dict`` (saved in checkpoints). training/step.py calls them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from gan_cli.distributed import all_reduce_mean
from gan_cli.losses.base import Stats, input_gradient


@dataclass
class RegContext:
    """One update's view: ``G(z, y)``, ``D(x, y)``, the real batch, its condition ``y`` (labels, an
    image or None), ``fake`` = G(z) (attached to G's graph for G terms, detached for D terms; None
    for a lazy G term, which runs G itself, as the path length does on half the latents), ``z``."""

    G: Callable[..., Tensor]
    D: Callable[..., Tensor]
    real: Tensor
    y: Any
    fake: Tensor | None
    z: Tensor


def lazy_factor(interval: int) -> float:
    """``k / (k + 1)``: how lazy regularisation every ``k`` updates scales lr and the betas' exponent."""
    return interval / (interval + 1)


def grad_sq_norm(D: Callable[..., Tensor], points: Tensor, y: Any = None) -> Tensor:
    """||grad_x D(x_i, y_i)||^2 for each judged input, shape (M,): per sample, or per pack of N / M
    consecutive samples for a packing D (PacGAN). ValueError if D gives no such scores."""
    x = points.detach().requires_grad_(True)
    scores = D(x, y)
    if scores.dim() != 1 or scores.shape[0] == 0 or x.shape[0] % scores.shape[0]:
        raise ValueError(
            "a zero-centred gradient penalty needs one score per sample (or per pack) from D, "
            f"shape ({x.shape[0]},), got {tuple(scores.shape)}"
        )
    return input_gradient(scores, x).reshape(scores.shape[0], -1).pow(2).sum(dim=1)


class _ZeroCentredPenalty:
    # gamma / 2 * E ||grad_x D(x)||^2 at _points(ctx); stat: the mean before gamma / 2
    net = "D"
    input_gradients = True  # differentiates D's input gradients: needs per-sample scores
    _name = ""

    def __init__(self, gamma: float = 10.0, interval: int = 1) -> None:
        self.gamma, self.interval = float(gamma), int(interval)

    def _points(self, ctx: RegContext) -> Tensor:
        raise NotImplementedError

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        sq = grad_sq_norm(ctx.D, self._points(ctx), ctx.y).mean()
        return 0.5 * self.gamma * sq, {self._name: sq.detach()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(gamma={self.gamma:g}, interval={self.interval})"


class R1(_ZeroCentredPenalty):
    # R1 = gamma / 2 E_{x ~ P_data} ||grad_x D(x)||^2  (Mescheder et al. 2018, eq. 9); stat r1
    _name = "r1"

    def _points(self, ctx: RegContext) -> Tensor:
        return ctx.real


class R2(_ZeroCentredPenalty):
    # R2 = gamma / 2 E_{x ~ P_G} ||grad_x D(x)||^2  (Mescheder et al. 2018, eq. 10); stat r2
    _name = "r2"

    def _points(self, ctx: RegContext) -> Tensor:
        return ctx.fake


class L1Reconstruction:
    """pix2pix's term weight * mean |G(z, y) - x| over every value (Isola et al. 2017, eq. 3; weight
    100 for images in [-1, 1]), on G's loss at every update. Stat l1: the mean before the weight."""

    net = "G"
    interval = 1

    def __init__(self, weight: float = 100.0) -> None:
        self.weight = float(weight)

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        if ctx.fake.shape != ctx.real.shape:
            raise ValueError(f"L1Reconstruction: G's output {tuple(ctx.fake.shape)} and the target "
                             f"{tuple(ctx.real.shape)} differ in shape")
        l1 = (ctx.fake - ctx.real).abs().mean()
        return self.weight * l1, {"l1": l1.detach()}


class Drift:
    """ProGAN's drift term epsilon * E[D(x)^2] on real data (Karras et al. 2018, appendix A.1: 0.001
    beside WGAN-GP), with one more forward of D. Stat drift: the term."""

    net = "D"
    interval = 1

    def __init__(self, epsilon: float = 0.001) -> None:
        self.epsilon = float(epsilon)

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        loss = self.epsilon * ctx.D(ctx.real, ctx.y).square().mean()
        return loss, {"drift": loss.detach()}


class PathLength:
    """StyleGAN2's path-length term weight * E (||J_w^T y||_2 - a)^2 (Karras et al. 2020, eq. 4; NVIDIA's
    loss.py), every ``interval`` G updates, on the first N // batch_shrink latents (at least one) with
    a fresh G pass ``G(z, y, return_ws=True) -> (images, ws)``. y ~ N(0, I) / sqrt(H W); a (``pl_mean``,
    in state_dict) moves by ``decay`` towards the batch's mean length over every rank.
    Stats: pl_length, pl_mean, pl_penalty (before the weight)."""

    net = "G"

    def __init__(self, weight: float = 2.0, interval: int = 4, decay: float = 0.01,
                 batch_shrink: int = 2) -> None:
        self.weight, self.interval = float(weight), int(interval)
        self.decay, self.batch_shrink = float(decay), int(batch_shrink)
        self.pl_mean = torch.zeros(())

    def __call__(self, ctx: RegContext) -> tuple[Tensor, Stats]:
        n = max(1, ctx.z.shape[0] // self.batch_shrink)
        y = ctx.y[:n] if isinstance(ctx.y, Tensor) else ctx.y
        img, ws = ctx.G(ctx.z[:n], y, return_ws=True)
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        # ||J_w^T y||: the gradient of sum(img * y) w.r.t. ws, mean over styles, norm over w_dim
        lengths = input_gradient(img * noise, ws).square().sum(dim=2).mean(dim=1).sqrt()
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
    """SinGAN's term alpha * mean((G_n(z_rec_n, up(x^rec_{n-1})) - x_n)^2) on G's loss at every update
    (Shaham et al. 2019, eq. 5). Its inputs are fixed while a scale trains: ``SinGANCascade.begin_scale``
    hands them over (``set_inputs``); ``state_dict`` keeps them. Stat rec_mse: before alpha."""

    net = "G"
    interval = 1

    def __init__(self, alpha: float = 10.0) -> None:
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
