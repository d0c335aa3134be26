"""The loss-object contract, its D-step statistics, and the one input gradient every penalty takes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

Stats = dict[str, Tensor]
Discriminator = Callable[..., Tensor]


def input_gradient(outputs: Tensor, inputs: Tensor) -> Tensor:
    """d(sum outputs) / d inputs, with ``create_graph=True`` so that a penalty built from it trains
    the network (a double backward). For D's input gradient, ``inputs`` is a leaf made from the
    points (``x = points.detach().requires_grad_(True)``); for a sample's own gradient from the
    summed outputs, a sample's output must not depend on the rest of the batch (no BatchNorm in D).
    """
    (grad,) = torch.autograd.grad(outputs=outputs.sum(), inputs=inputs, create_graph=True)
    return grad


def score_stats(loss: Tensor, s_real: Tensor, s_fake: Tensor, **more: Tensor | None) -> Stats:
    """A D step's statistics: ``loss_d``, the mean raw scores ``d_real`` / ``d_fake``, then ``more``
    (detached; a None is left out)."""
    stats = {"loss_d": loss.detach(), "d_real": s_real.detach().mean(), "d_fake": s_fake.detach().mean()}
    return stats | {name: value.detach() for name, value in more.items() if value is not None}


def clip_weights(D: torch.nn.Module, clip_value: float, skip: str | None = None) -> None:
    """Clamp every parameter of ``D`` in place to ``[-clip_value, clip_value]`` (WGAN, MMD-GAN),
    but those of its submodule named ``skip`` (MMD-GAN's decoder)."""
    with torch.no_grad():
        for name, p in D.named_parameters():
            if skip is None or not name.startswith(skip + "."):
                p.clamp_(-clip_value, clip_value)


class AdversarialLoss:
    """The interface the training loop sees (docs/architecture.md, "The step").

    A loss of D's raw scores sets ``d_of(s_real, s_fake)`` and ``g_of(s_fake)`` (scalars) and
    inherits ``d_loss`` / ``g_loss``; others override those. ``stats`` are detached 0-dim tensors
    (never read back to the host here), at least ``loss_d`` / ``loss_g``.

    Attributes:
        d_output: what D returns: "score" (N,), "reconstruction" (its input's shape) or
            "features" (N, F).
        double_backward: d_loss differentiates D's input gradients (D needs per-sample scores).
        d_probability: D is a classifier: its score is the logit of P(real), sigmoid(score) that
            probability (the sigmoid cross-entropy losses); False: a critic, a score with no
            fixed scale (WGAN, hinge, least squares, f-GAN).
        g_needs_real: g_loss needs a real batch too (keyword ``real``, MMD-GAN).
        n_critic: D steps per G step.
    """

    d_output: str = "score"
    double_backward: bool = False
    d_probability: bool = False
    g_needs_real: bool = False

    def __init__(self, n_critic: int = 1) -> None:
        self.n_critic = int(n_critic)

    def d_of(self, s_real: Tensor, s_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def g_of(self, s_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def d_loss(self, D: Discriminator, real: Tensor, fake: Tensor,
               y: Tensor | None = None) -> tuple[Tensor, Stats]:
        """D's loss on one batch (``fake`` already detached; ``y`` the labels or None): (loss, stats)."""
        s_real, s_fake = D(real, y), D(fake, y)
        loss = self.d_of(s_real, s_fake)
        return loss, score_stats(loss, s_real, s_fake)

    def g_loss(self, D: Discriminator, fake: Tensor, y: Tensor | None = None) -> tuple[Tensor, Stats]:
        """G's loss on one batch (``fake`` attached to G's graph): (loss, {"loss_g": ...})."""
        loss = self.g_of(D(fake, y))
        return loss, {"loss_g": loss.detach()}

    def d_modules(self, D: torch.nn.Module, info: Any) -> dict[str, torch.nn.Module]:
        """Extra modules D carries for this loss, by name (MMD-GAN's decoder): build_pair adds them
        to the built D, so D's optimizer trains them and its state dict saves them. ``info``: the
        data's DataInfo."""
        return {}

    def after_d_step(self, D: Discriminator, stats: Stats) -> None:
        """Called after each D optimizer step with that step's (possibly all-reduced) stats."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s output; a loss without state refuses a non-empty one."""
        if state:
            raise ValueError(
                f"{type(self).__name__} has no state, but the checkpoint holds {sorted(state)}"
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"
