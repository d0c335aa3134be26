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
