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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
