"""Image-to-image metrics on held-out pairs (pix2pix, Isola et al. 2017): G is applied to the inputs
of the held-out split and its outputs are compared with their targets.

``paired`` (gan_cli/metrics/paired.py, images in [-1, 1], ``u = (v + 1) / 2`` in [0, 1]):

    paired_l1      = mean over all pixels of |G(z, y) - x|            ([-1, 1] units, as the L1
                     term G trains with reports it in metrics.jsonl as ``l1``)
    paired_psnr_db = mean over images of 10 log10(1 / MSE(u_G, u_x))  (dB, data range 1)
    paired_ssim    = mean over images of SSIM(u_G, u_x)               (Wang et al. 2004)

``paired_fd``: the Frechet distance (Heusel et al. 2017's formula) between the feature
statistics of the outputs and of their targets, on the feature network of the option
``features``: ``fashion`` (the shipped offline Fashion-MNIST CNN, ``paired_fd_fashion``; the
Fashion-MNIST pairs' default) or ``inception`` (Inception-v3 pool features, ``paired_fid``;
needs the weight file). Outputs and targets are the same pairs, so the distance is 0 for a G
that reproduces its targets exactly.

Both read the held-out pairs from the data (``ctx.data.held_out()``, gan_cli/data/paired.py:
Fashion-MNIST's test split, a folder's ``dataset.held_out_split``) and the generator being judged
(``ctx.generator``), and share one pass of G per evaluation. Options: ``num_fake`` (pairs judged,
at most the held-out split's size; gan-eval's ``num_samples``, training's
``metrics.num_samples``), ``batch_size`` (250), ``seed`` (0: G's latents and dropout masks, drawn
from a forked RNG, so evaluating never changes training), ``features`` (paired_fd).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.frechet import FeatureStats, frechet_distance
from gan_cli.metrics.inception import fid_from_stats
from gan_cli.metrics.paired import pixel_scores, translate


def _translated(ctx: EvalContext, opts: dict) -> tuple[str, Tensor, Tensor]:
    """A description of the pairs judged, G's outputs on their inputs and their targets."""
    if ctx.generator is None or not hasattr(ctx.data, "held_out"):
        raise ConfigError("the paired metrics (paired, paired_fd) judge an image-to-image model "
                          "on paired data (model=pix2pix with a paired dataset)")
    source = ctx.data.held_out()
    n = min(int(opts.get("num_fake", 10000)), source.num_samples)
    batch_size, seed = int(opts.get("batch_size", 250)), int(opts.get("seed", 0))

    def compute() -> tuple[str, Tensor, Tensor]:
        outputs, targets = translate(ctx.generator, source, n, batch_size, seed)
        return f"{n} pairs of {source.name}", outputs, targets  # the name says which split

    return ctx.shared(("paired", n, batch_size, seed), compute)


def paired(ctx: EvalContext, opts: dict) -> dict[str, float]:
    pairs, outputs, targets = _translated(ctx, opts)
    scores = pixel_scores(outputs, targets, int(opts.get("batch_size", 250)))
    ctx.record("paired", pairs=pairs)
    return {f"paired_{k}": v for k, v in scores.items()}


def paired_fd(ctx: EvalContext, opts: dict) -> dict[str, float]:
    pairs, outputs, targets = _translated(ctx, opts)
    net = opts.get("features", "inception")
    ext, device = ctx.extractor(net), ctx.opt("device", "cpu")
    batch_size = int(opts.get("batch_size", 250))

    def stats(images: Tensor) -> FeatureStats:
        feats = [ext(b.to(device, torch.float32))["features"].cpu() for b in images.split(batch_size)]
        return FeatureStats.of(torch.cat(feats))

    out, tgt = stats(outputs), stats(targets)
    formula, key = (fid_from_stats, "paired_fid") if net == "inception" else (frechet_distance,
                                                                              f"paired_fd_{net}")
    ctx.record("paired_fd", pairs=pairs, network=ext.identity)
    return {key: formula(out.mean, out.cov, tgt.mean, tgt.cov)}


DEFINES = (
    Metric("paired", paired,
           (Key("paired_l1", lower_is_better=True, shown=True),
            Key("paired_psnr_db", lower_is_better=False, shown=True),
            Key("paired_ssim", lower_is_better=False, shown=True))),
    # features="fashion" (the Fashion-MNIST pairs' option) needs no Inception weights; the record
    # names Inception so that training drops it, with a warning, when that file is missing
    Metric("paired_fd", paired_fd,
           (Key("paired_fd_fashion", lower_is_better=True, shown=True),
            Key("paired_fid", lower_is_better=True, shown=True)),
           feature_net="inception"),
)
