"""Mode coverage by the PacGAN protocol (Lin et al. 2018).

* 2D mixtures: 2,500 samples, a sample is high quality within ``threshold`` standard deviations of
  a mode, a mode is captured when it holds at least one high-quality sample, and the reverse KL of
  the mode histogram (gan_cli/metrics/toy.py).
* Digits (option ``classifier``: an offline network's name, "mnist"; the MNIST-like datasets
  set it): each channel is classified, MNIST has 10 modes, Stacked MNIST 1,000; a mode is captured
  when it holds at least one sample (gan_cli/metrics/class_modes.py). Stacked MNIST sets
  ``num_fake`` to 26,000, the samples VEEGAN and PacGAN count.
"""

from __future__ import annotations

import torch

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.toy import mode_metrics

CONFIDENT = 0.9  # a channel read with at least this probability counts in confident_fraction


def class_modes(ctx: EvalContext, opts: dict) -> dict[str, float]:
    from gan_cli.metrics.class_modes import (
        channel_counts,
        channel_kls,
        channel_predictions,
        class_mode_metrics,
    )

    n, net = int(opts["num_fake"]), opts["classifier"]
    ext = ctx.extractor(net)
    device = ctx.opt("device", "cpu")
    classes, confidence = channel_predictions(ctx.fake(n), lambda x: ext(x.to(device))["probs"],
                                              int(opts.get("batch_size", 500)))
    scores = class_mode_metrics(classes)
    kls = channel_kls(classes)
    ctx.record("modes", num_fake=n, network=ext.identity, channels=classes.shape[1],
               channel_counts=channel_counts(classes), channel_kl=kls,
               dependence_kl=scores["reverse_kl"] - sum(kls),
               mean_confidence=float(confidence.double().mean()),
               confident_fraction=float((confidence >= CONFIDENT).double().mean()))
    return scores


def modes(ctx: EvalContext, opts: dict) -> dict[str, float]:
    if opts.get("classifier") is not None:
        return class_modes(ctx, opts)
    centres = opts.get("modes", ctx.real.modes if ctx.real is not None else None)
    std = opts.get("mode_std", ctx.real.mode_std if ctx.real is not None else None)
    if centres is None or std is None:
        raise ConfigError("the 'modes' metric needs the mode centres and std (a 2D mixture dataset)")
    n = int(opts["num_fake"])
    threshold = float(opts.get("threshold", 3.0))
    ctx.record("modes", num_fake=n, threshold=threshold)
    return mode_metrics(ctx.fake(n), torch.as_tensor(centres), float(std), threshold)


DEFINES = (
    Metric("modes", modes,
           (Key("modes_captured", lower_is_better=False, shown=True),
            Key("high_quality_fraction", lower_is_better=False, shown=True),
            Key("reverse_kl", lower_is_better=True, shown=True), Key("num_modes")),
           defaults={"num_fake": 2500}),  # the PacGAN protocol's count
)
