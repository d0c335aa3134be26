"""Generators and discriminators; every class takes its shape facts from the data at construction
(docs/architecture.md, "Models")."""

from __future__ import annotations

from typing import Any


def takes_condition(G: Any) -> bool:
    """Whether G is given the batch's condition ``y``: a conditional model (``num_classes`` > 0),
    or one that says so (``takes_condition = True``: an image-conditioned G such as pix2pix's)."""
    return bool(getattr(G, "takes_condition", getattr(G, "num_classes", 0)))


def truncates_in_w(G: Any) -> bool:
    """Whether G truncates in W (``truncation_in_w = True``: StyleGAN's ``G(z, y, psi=t)``,
    w' = w_avg + t (w - w_avg)) rather than by drawing z within [-t, t] (``gan_cli.latents``)."""
    return bool(getattr(G, "truncation_in_w", False))
