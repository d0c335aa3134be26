"""An exponential moving average of the generator's weights (``ema.half_life_kimg``).

Averaging G's weights over training (Yazici et al. 2019; Karras et al. 2018-2020, Brock et al.
2019) gives better samples and metrics than the last iterate. The schedule is StyleGAN2-ADA's:
the decay per generator update is ``beta = 0.5 ** (batch / (1000 * half_life_kimg))``, so the
weight of an update halves every ``half_life_kimg`` thousand generated images whatever the batch,
and with a ramp-up the half-life is at most ``rampup`` x the images generated so far.

Written here rather than with ``torch.optim.swa_utils.AveragedModel``: that one averages buffers
too (or leaves them at their initial values), while G's buffers must be copied: an average of
spectral norm's unit vectors is not a unit vector, and BatchNorm statistics belong to the
current weights. Its state dict is also prefixed ``module.``, where ours is G's own.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_beta(half_life_kimg: float, batch_size: int, nimg: int, rampup: float | None = None,
             start_kimg: float = 0.0) -> float:
    """The decay for one generator update of ``batch_size`` images after ``nimg`` generated images.

    Args:
        half_life_kimg: the average's half-life in thousands of generated images.
        batch_size: images per generator update (the global batch).
        nimg: images generated so far, this update included.
        rampup: cap the half-life at ``rampup * nimg`` images; None = no cap.
        start_kimg: before this point beta is 0 (the average copies G), as BigGAN starts its
            EMA after 1000 steps.

    Returns:
        beta in [0, 1): ``G_ema <- beta * G_ema + (1 - beta) * G``.
    """
    if nimg < start_kimg * 1000.0:
        return 0.0
    half_life_nimg = half_life_kimg * 1000.0
    if rampup is not None:
        half_life_nimg = min(half_life_nimg, nimg * rampup)
    return 0.5 ** (batch_size / max(half_life_nimg, 1e-8))


class EMA:
    """A frozen copy of G that follows G's parameters with a moving average.

    Args:
        G: the generator (its memory format and device are kept).

    Attributes:
        module: the averaged generator, in eval mode, without gradients.
    """

    def __init__(self, G: nn.Module) -> None:
        self.module = copy.deepcopy(G).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, G: nn.Module, beta: float) -> None:
        """``p_ema <- beta * p_ema + (1 - beta) * p`` for every parameter; buffers are copied."""
        averaged, current = list(self.module.parameters()), [p.detach() for p in G.parameters()]
        if len(averaged) != len(current):
            raise ValueError(f"G has {len(current)} parameters, its average {len(averaged)}")
        torch._foreach_lerp_(averaged, current, 1.0 - beta)  # one op over the list
        for b_ema, b in zip(self.module.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)

    @torch.no_grad()
    def recompute_batchnorm(self, z_dim: int, num_classes: int, batches: int, batch_size: int,
                            seed: int, device: torch.device) -> None:
        """Replace the averaged G's BatchNorm statistics by its own ("standing statistics").

        The statistics copied from G belong to G's weights, not to the averaged ones; BigGAN
        recomputes them by running the averaged G on fresh latents. The running mean and
        variance become the average over ``batches`` batches of ``batch_size`` samples (labels
        uniform), drawn from a stream seeded with ``seed``, so the result is reproducible. The next
        ``update`` copies G's statistics again, so training is not affected. Spectral norm's
        vectors take the same few power iterations on the averaged weights.
        """
        bns = [m for m in self.module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not bns or batches <= 0:
            return
        g = torch.Generator(device=device).manual_seed(seed)
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
        self.module.train()
        try:
            for _ in range(batches):
                z = torch.randn(batch_size, z_dim, generator=g, device=device)
                y = (torch.randint(num_classes, (batch_size,), generator=g, device=device)
                     if num_classes else None)
                self.module(z, y)
        finally:
            self.module.eval()
            for m, momentum in zip(bns, momenta, strict=True):
                m.momentum = momentum

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
