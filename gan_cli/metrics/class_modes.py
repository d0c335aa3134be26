"""Modes counted by a classifier: MNIST's 10 digits, Stacked MNIST's 1,000 digit triples.

Each channel of a generated image is classified as one digit by an offline network
(feature_net.OFFLINE_NETS, "mnist"); an image with C channels falls in mode
``sum_i class_i * 10^(C-1-i)`` of ``10^C`` (Stacked MNIST: 100 * red + 10 * green + blue, as in
Metz et al. 2017 and Srivastava et al. 2017). Then, from the histogram ``counts`` over the modes:

* ``modes_captured``: modes with at least one sample;
* ``reverse_kl``: KL(q || u) = sum_i q_i log(q_i * M), q = counts / N, u uniform over the M modes
  (0 log 0 = 0): 0 for perfect balance, log(M) when every sample falls in one mode;
* ``num_modes``: M.

With C > 1 channels the KL splits exactly in two (the uniform over the modes is the product of the
channels' uniforms): sum over channels of KL(q_c || u_10), each channel's digits skewed
(:func:`channel_kls`), plus KL(q || q_1 x ... x q_C) >= 0, the channels' dependence (their total
correlation). gan-eval's provenance records both parts.

Written by hand: a bincount and one sum (torchmetrics has no mode-histogram metric).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def histogram_scores(counts: Tensor) -> dict[str, float]:
    """modes_captured, reverse_kl and num_modes of a histogram ``counts`` (M,) of N > 0 samples."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    q = counts / counts.sum()
    return {"modes_captured": float((counts > 0).sum()),
            "reverse_kl": float(torch.special.xlogy(q, q * len(counts)).sum()),
            "num_modes": float(len(counts))}


def mode_of(classes: Tensor, num_classes: int = 10) -> Tensor:
    """Mode index (N,) of per-channel classes (N, C): the classes read as a base-``num_classes``
    number, first channel most significant."""
    weights = num_classes ** torch.arange(classes.shape[1] - 1, -1, -1, device=classes.device)
    return (classes.long() * weights).sum(1)


@torch.no_grad()
def channel_predictions(images: Tensor, classify: Callable[[Tensor], Tensor],
                        batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Classes (N, C) of each channel of ``images`` (N, C, H, W), every channel classified as a
    grey image (N * C, 1, H, W) by ``classify`` (images -> class probabilities), and the
    classifier's confidence in each (N, C): its largest probability. Real digits read with a
    confidence near 1 (the shipped MNIST CNN: 0.98 on its held-out digits); a generator's strokes
    between digits read lower, and there the class says as much about the classifier as about G."""
    n, c, h, w = images.shape
    flat = images.reshape(n * c, 1, h, w)
    best = [classify(b).max(1) for b in flat.split(batch_size)]
    confidence = torch.cat([b.values.cpu() for b in best]).view(n, c)
    return torch.cat([b.indices.cpu() for b in best]).view(n, c), confidence


def channel_classes(images: Tensor, classify: Callable[[Tensor], Tensor], batch_size: int = 500) -> Tensor:
    """The classes of :func:`channel_predictions` alone (``classify`` may give logits here)."""
    return channel_predictions(images, classify, batch_size)[0]


def class_mode_metrics(classes: Tensor, num_classes: int = 10) -> dict[str, float]:
    """The scores of the histogram of :func:`mode_of` over ``num_classes ** C`` modes."""
    modes = mode_of(classes, num_classes)
    counts = torch.bincount(modes, minlength=num_classes ** classes.shape[1])
    return histogram_scores(counts)


def channel_counts(classes: Tensor, num_classes: int = 10) -> list[list[int]]:
    """Each channel's class histogram, for classes (N, C): which digits a generator over- or
    under-draws in each colour."""
    return [torch.bincount(classes[:, c].long(), minlength=num_classes).tolist()
            for c in range(classes.shape[1])]


def channel_kls(classes: Tensor, num_classes: int = 10) -> list[float]:
    """KL(q_c || uniform) of each channel's class histogram, for classes (N, C): the part of the
    modes' reverse_kl that the channels' own skew explains (module docstring)."""
    return [histogram_scores(torch.tensor(counts))["reverse_kl"]
            for counts in channel_counts(classes, num_classes)]
