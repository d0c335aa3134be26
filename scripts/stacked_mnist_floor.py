#!/usr/bin/env python
"""The floor of the Stacked MNIST mode metric: ``--num`` real stacked images (a draw seeded by
``--stack-seed``, not the training set's 0) through gan-eval's ``modes`` metric, as if they were
samples of a perfect generator. Prints modes_captured, reverse_kl and num_modes.

Usage:
    PYTHONPATH=. python scripts/stacked_mnist_floor.py [--num 26000] [--stack-seed 100]
"""

from __future__ import annotations

import argparse

import torch

from gan_cli.data.stacked import stacked_mnist
from gan_cli.metrics.registry import compute_metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=26000)
    p.add_argument("--stack-seed", type=int, default=100)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    images = stacked_mnist(num_samples=args.num, stack_seed=args.stack_seed, batch_size=100).images
    real = images.float() / 127.5 - 1
    served = iter(real.split(250))
    values = compute_metrics(["modes"], lambda n: next(served)[:n], None,
                             {"batch_size": 250, "modes": {"classifier": "mnist", "num_fake": args.num}})
    print(values)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
