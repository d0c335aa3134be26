"""Metric sanity on Fashion-MNIST: FD and IS of real test images under rising disturbance.

Heusel et al. 2017's experiment (figure 1) on the offline feature network: Fashion-MNIST *test*
images, disturbed by each of gan_cli/metrics/sanity.py's disturbances (Gaussian noise, blur, black
rectangles, swirl, salt and pepper, MNIST-5k digits mixed in), scored with ``fd_fashion`` against
the cached statistics of the *training* split (the reference gan-eval uses) and with
``cis_fashion``. Prints a table with the monotonicity of each curve, writes the figure and a JSON
of the numbers.

    python -m gan_cli.scripts.metric_sanity [--num 5000] [--out docs/img/metric_sanity.png]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gan_cli.data.images import fashion_mnist, mnist_5k
from gan_cli.metrics.sanity import DISTURBANCES, disturbed, metric_sanity, plot_sanity
from gan_cli.metrics.tracker import metric_options, real_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=5000, help="test images disturbed at every level")
    p.add_argument("--num-real", type=int, default=10000, help="training images behind the reference")
    p.add_argument("--disturbances", nargs="+", default=list(DISTURBANCES), choices=list(DISTURBANCES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="metric_sanity.png", help="the figure (PNG)")
    p.add_argument("--json", default=None, help="the numbers (default: the figure's name .json)")
    args = p.parse_args()

    t0 = time.perf_counter()
    train = fashion_mnist(batch_size=1, split="train")
    test = fashion_mnist(batch_size=1, split="test")
    real = torch.cat(list(test.real_batches(args.num)))
    other = None
    if "contamination" in args.disturbances:
        other = torch.cat(list(mnist_5k(batch_size=1).real_batches(args.num)))
    options = metric_options(train, {"num_real": args.num_real, "keep_features": args.num_real})
    reference = real_data(train, args.num_real, "train")
    result = metric_sanity(real, reference, options, names=args.disturbances, other=other, seed=args.seed)
    examples = {name: [disturbed(name, real[:1], level, args.seed, other)
                       for level in DISTURBANCES[name].levels] for name in args.disturbances}
    # contamination replaces whole images: show an image that is replaced at the top level
    if "contamination" in examples:
        examples["contamination"] = [other[:1] if level > 0 else real[:1]
                                     for level in DISTURBANCES["contamination"].levels]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_sanity(result, examples, out, title=f"Fashion-MNIST: {args.num} test images disturbed, "
                f"fd_fashion against {args.num_real} training images; cis_fashion")
    Path(args.json or out.with_suffix(".json")).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'disturbance':<18}{'levels':<24}{'fd_fashion':<36}{'rises':<7}{'cis_fashion':<32}falls")
    for name, row in result.items():
        levels = ", ".join(f"{v:g}" for v in row["levels"])
        fds = ", ".join(f"{v:.2f}" for v in row["fd_fashion"])
        iss = ", ".join(f"{v:.2f}" for v in row["cis_fashion_mean"])
        print(f"{name:<18}{levels:<24}{fds:<36}{str(row['fd_rises']):<7}{iss:<32}{row['score_falls']}")
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
