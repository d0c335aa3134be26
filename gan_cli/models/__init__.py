"""Generators and discriminators; every class takes its shape facts from the data at construction
(docs/architecture.md, "Models")."""

from __future__ import annotations

from typing import Any


def takes_condition(G: Any) -> bool:
    """Whether G is given the batch's condition ``y``: a conditional model (``num_classes`` > 0),
    or one that says so (``takes_condition = True``: an image-conditioned G such as pix2pix's)."""
    return bool(getattr(G, "takes_condition", getattr(G, "num_classes", 0)))


def truncates_in_w(G: Any) -> bool:
    """Whether G's truncation trick is StyleGAN's psi in W rather than a truncated z.

    A generator that says ``truncation_in_w = True`` (StyleGAN and StyleGAN2) is called as
    ``G(z, y, psi=t)`` with an untruncated z, ``w' = w_avg + t (w - w_avg)``; any other generator
    gets z drawn with every component within [-t, t] (``gan_cli.latents``). ``gan-eval
    truncation=t`` and ``train.figure_truncation=t`` mean whichever the generator says.
    """
    return bool(getattr(G, "truncation_in_w", False))
