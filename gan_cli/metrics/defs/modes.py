"""Mode coverage of 2D mixtures by the PacGAN protocol (Lin et al. 2018): 2,500 samples, a sample
is high quality within ``threshold`` standard deviations of a mode, a mode is captured when it holds
at least one high-quality sample, and the reverse KL of the mode histogram."""

from __future__ import annotations

import torch

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.toy import mode_metrics


def modes(ctx: EvalContext, opts: dict) -> dict[str, float]:
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
