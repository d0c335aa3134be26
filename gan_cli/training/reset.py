"""``train.reset_d_at``: D retrained from scratch at given generator steps (the seeds' lesson:
what G does when its discriminator forgets everything).

At the start of generator step ``s`` (after ``s`` updates, before the next), D gets fresh weights
and buffers, drawn exactly as the builder draws them, from a torch stream seeded by the run's
seed and ``s`` alone, and D's optimizer forgets its moments. The global random streams are left
untouched, so a resumed run (its checkpoint written after step ``s``) makes the same reset; every
rank draws the same weights, copied into D's own tensors, so DDP's wrapper keeps working.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import torch
from torch import nn

from gan_cli.build import Pair, build_full_discriminator, scores_per_sample
from gan_cli.seeding import derive_seed

log = logging.getLogger("gan_cli")


class DiscriminatorReset:
    """Call with the pair and the number of generator steps done, before each step.

    Args:
        steps: the generator steps at which D starts again from scratch.
        seed: the run's seed (the fresh weights' stream is derived from it and the step).
        rebuild: ``rebuild(pair)`` -> a freshly built D for that pair (on the CPU; weights from
            the global torch stream, as at the run's start).
    """

    def __init__(self, steps: Iterable[int], seed: int, rebuild: Callable[[Pair], nn.Module]) -> None:
        self.steps = frozenset(int(s) for s in steps)
        self.seed = seed
        self.rebuild = rebuild

    def __call__(self, pair: Pair, step: int) -> bool:
        """Reset ``pair``'s D when ``step`` is one of the steps; returns whether it did."""
        if step not in self.steps:
            return False
        devices = [p.device for p in pair.D.parameters() if p.device.type == "cuda"][:1]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(derive_seed(self.seed, "reset_d", step))
            fresh = self.rebuild(pair)
        with torch.no_grad():
            pair.D.load_state_dict(fresh.state_dict())  # into D's own tensors (DDP keeps them)
        pair.opt_d.state.clear()  # Adam's moments belonged to the old D
        log.info("train.reset_d_at: D starts again from scratch at step %d", step)
        return True


def discriminator_reset(cfg, stages, info, pairs: list[Pair]) -> DiscriminatorReset:
    """``train.reset_d_at`` of ``cfg`` for the run's pairs (one per stage), each D rebuilt as
    build_pair built it."""

    def rebuild(pair: Pair) -> nn.Module:
        k = pairs.index(pair)
        return build_full_discriminator(cfg.model, stages.info(k, info), pair.loss,
                                        scores_per_sample(pair.loss, pair.regularizers),
                                        **stages.network_kwargs(k, info))

    return DiscriminatorReset(cfg.train.get("reset_d_at") or (), cfg.seed, rebuild)
