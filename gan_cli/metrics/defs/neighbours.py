"""Nearest training images of generated samples: a figure that shows memorisation, and the
distances (a number gan-eval reports; training skips it)."""

from __future__ import annotations

from pathlib import Path

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.neighbours import nearest_neighbours, save_neighbour_figure


def nn(ctx: EvalContext, opts: dict) -> dict[str, float]:
    if ctx.real is None:
        raise ConfigError("the 'nn' metric needs the training images")
    q = ctx.fake(int(opts.get("num_queries", 8)))
    d, imgs = nearest_neighbours(q, ctx.real.batches(), k=int(opts.get("k", 5)))
    default = Path(opts.get("figure_dir", ".")) / "nearest_neighbours.png"
    path = save_neighbour_figure(q, imgs, Path(opts.get("path", default)))
    ctx.record("nn", against=f"{ctx.real.name}/{ctx.real.split}", num_queries=len(q),
               figure=str(path))
    return {"nn_distance_min": float(d[:, 0].min()), "nn_distance_mean": float(d[:, 0].mean())}


DEFINES = (
    Metric("nn", nn, (Key("nn_distance_min", lower_is_better=False),
                      Key("nn_distance_mean", lower_is_better=False)),
           needs_real=True, figure=True),
)
