"""The identity baseline of an image-to-image task: the metrics of a "generator" that copies its input.

The lower bound of Isola et al. 2017's comparisons for tasks where input and target share a
layout: any trained translator should beat returning the input unchanged. The numbers come from
the same registered metrics gan-eval runs on a pix2pix checkpoint (gan_cli/metrics/defs/paired.py:
held-out L1, PSNR, SSIM and the FD of outputs), on the held-out pairs of the dataset the given
overrides compose, so the rows are comparable:

    python scripts/paired_identity.py experiment=pix2pix_fashion
    python scripts/paired_identity.py dataset=fashion_silhouette --num 10000 --json identity.json

Positional arguments are gan-train overrides (the dataset is what matters); the input and target
must have the same number of channels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from torch import Tensor, nn

from gan_cli.build import build_data
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.evaluate import format_table
from gan_cli.metrics.registry import compute_metrics
from gan_cli.metrics.tracker import make_sampler, metric_options


class Identity(nn.Module):
    """``G(z, y) = y``: the input image as the output (an image-conditioned G with no weights)."""

    num_classes = 0
    takes_condition = True
    z_dim = 1

    def forward(self, z: Tensor | None, y: Tensor) -> Tensor:
        return y


def identity_metrics(overrides: list[str], num: int, batch_size: int = 250,
                     names: list[str] | None = None) -> tuple[dict[str, float], dict]:
    """The metrics (``names``, default the dataset's) of the identity on its held-out pairs.

    Args:
        overrides: gan-train overrides composing the dataset, e.g. ``["experiment=pix2pix_fashion"]``.
        num: held-out pairs to judge (at most the split's size).
        batch_size: pairs per pass.
        names: registered metric names; None = the dataset's ``default_metrics``.

    Returns:
        ``(values, provenance)`` as gan-eval computes them.
    """
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    validate(cfg)
    device = torch.device("cpu")
    data = build_data(cfg.dataset, batch_size=1, device=device, seed=cfg.seed)
    G = Identity()
    names = list(names if names is not None else data.default_metrics)
    options = metric_options(data, {"num_fake": num, "batch_size": batch_size, "device": "cpu"})
    provenance: dict = {}
    values = compute_metrics(names, make_sampler(G, 1, device, cfg.seed, batch_size, data=data),
                             None, options, provenance, generator=G, data=data)
    return values, provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", default=["experiment=pix2pix_fashion"])
    parser.add_argument("--num", type=int, default=10000, help="held-out pairs (default 10000)")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--json", type=Path, default=None, help="also write the values here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    values, provenance = identity_metrics(args.overrides, args.num, args.batch_size)
    table = format_table(values, provenance, 0, "").split("\n", 1)[1]  # gan-eval's rows
    print(f"identity baseline ({' '.join(args.overrides)}): G(z, y) = y\n{table}")
    if args.json is not None:
        args.json.write_text(json.dumps({"metrics": values, "provenance": provenance}, indent=2) + "\n")


if __name__ == "__main__":
    main()
