"""Frechet distances of feature statistics: FID on Inception-v3 (Heusel et al. 2017) and
fd_fashion and fd_mnist on the shipped offline Fashion-MNIST and MNIST CNNs."""

from __future__ import annotations

from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.frechet import FeatureStats, frechet_distance
from gan_cli.metrics.inception import fid_from_stats


def _fd(ctx: EvalContext, opts: dict, net: str, metric: str, value_fn) -> dict[str, float]:
    n = int(opts.get("num_fake", 10000))
    fake = FeatureStats.of(ctx.fake_outputs(net, n)["features"])
    ref = ctx.reference(net, opts)
    ctx.record(metric, reference=ref.describe(), num_fake=fake.n)
    return {metric: value_fn(fake.mean, fake.cov, ref.stats.mean, ref.stats.cov)}


def fid(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _fd(ctx, opts, "inception", "fid", fid_from_stats)


def fd_fashion(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _fd(ctx, opts, "fashion", "fd_fashion", frechet_distance)


def fd_mnist(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _fd(ctx, opts, "mnist", "fd_mnist", frechet_distance)


DEFINES = (
    Metric("fid", fid, (Key("fid", lower_is_better=True, shown=True),), needs_real=True,
           feature_net="inception"),
    Metric("fd_fashion", fd_fashion, (Key("fd_fashion", lower_is_better=True, shown=True),),
           needs_real=True, feature_net="fashion"),
    Metric("fd_mnist", fd_mnist, (Key("fd_mnist", lower_is_better=True, shown=True),),
           needs_real=True, feature_net="mnist"),
)
