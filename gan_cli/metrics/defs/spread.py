"""Each mode's spread against the data's std on the 2D mixtures (gan_cli/metrics/toy.py's
``mode_spread``): the PacGAN protocol's high-quality share counts closeness to a centre only, so a
generator (or the Jacobian threshold's kept samples) can score 100% while every mode is a narrow
core of the data's; 1.0 is the data's own spread. Per-mode ratios go into the provenance."""

from __future__ import annotations

import math

import torch

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.toy import mode_spread


def spread(ctx: EvalContext, opts: dict) -> dict[str, float]:
    centres = opts.get("modes", ctx.real.modes if ctx.real is not None else None)
    std = opts.get("mode_std", ctx.real.mode_std if ctx.real is not None else None)
    if centres is None or std is None:
        raise ConfigError("the 'mode_spread' metric needs the mode centres and std (a 2D mixture dataset)")
    n, radius = int(opts["num_fake"]), float(opts.get("radius", 6.0))
    ratios = mode_spread(ctx.fake(n), torch.as_tensor(centres), float(std), radius)
    seen = ratios[~ratios.isnan()]
    ctx.record("mode_spread", num_fake=n, radius_std=radius,
               per_mode=[None if math.isnan(r) else round(r, 4) for r in ratios.tolist()])
    if len(seen) == 0:
        return {"mode_std_ratio_min": math.nan, "mode_std_ratio_mean": math.nan,
                "mode_std_ratio_max": math.nan}
    return {"mode_std_ratio_min": float(seen.min()), "mode_std_ratio_mean": float(seen.mean()),
            "mode_std_ratio_max": float(seen.max())}


DEFINES = (
    # no direction: 1.0 (the data's own spread) is the aim, below is too narrow, above too wide
    Metric("mode_spread", spread, (Key("mode_std_ratio_min", shown=True), Key("mode_std_ratio_mean"),
                                   Key("mode_std_ratio_max")),
           defaults={"num_fake": 2500}),  # the modes metric's samples (the PacGAN protocol's count)
)
