"""The metrics of real data against itself: what a perfect generator would score.

Feeds 10,000 Fashion-MNIST *test* images to the metric registry as if a generator had made them,
against the cached reference of the *training* split (the same reference gan-eval uses), so every
gan-eval number for Fashion-MNIST has a floor (fd_fashion) or ceiling (cis, precision, recall)
to be read against.

    python -m gan_cli.scripts.real_data_floor [--num 10000]
"""

from __future__ import annotations

import argparse

from gan_cli.data.images import fashion_mnist
from gan_cli.metrics.registry import compute_metrics
from gan_cli.metrics.tracker import metric_options, real_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--num", type=int, default=10000)
    args = p.parse_args()
    train = fashion_mnist(batch_size=1, split="train")
    test = fashion_mnist(batch_size=1, split="test")
    fake = iter(list(test.real_batches(args.num, 250)))
    values = compute_metrics(
        ["fd_fashion", "cis_fashion", "pr"], lambda n: next(fake), real_data(train, args.num, "train"),
        metric_options(train, {"num_fake": args.num, "num_real": args.num,
                               "keep_features": args.num}))
    for key, value in values.items():
        print(f"{key:<22}{value:10.4f}")


if __name__ == "__main__":
    main()
