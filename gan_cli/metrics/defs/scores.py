"""Scores of the generated samples alone or against real features: the Inception score (Salimans et
al. 2016) and its Fashion-MNIST-classifier variant, KID (Binkowski et al. 2018), and improved
precision/recall (Kynkaanniemi et al. 2019)."""

from __future__ import annotations

import torch

from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.scores import inception_score, kernel_inception_distance, precision_recall


def _score(ctx: EvalContext, opts: dict, net: str, prefix: str) -> dict[str, float]:
    n = int(opts.get("num_fake", 10000))
    splits = int(opts.get("splits", 10))
    mean, std = inception_score(ctx.fake_outputs(net, n)["probs"], splits)
    ext = ctx.extractor(net)
    ctx.record(prefix, network=ext.identity, resize=ext.resize, num_fake=n, splits=splits)
    return {f"{prefix}_mean": mean, f"{prefix}_std": std}


def inception_score_metric(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _score(ctx, opts, "inception", "is")


def cis_fashion(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _score(ctx, opts, "fashion", "cis_fashion")


def cis_mnist(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _score(ctx, opts, "mnist", "cis_mnist")


def kid(ctx: EvalContext, opts: dict) -> dict[str, float]:
    fake = ctx.fake_outputs("inception", int(opts.get("num_fake", 10000)))["features"]
    ref = ctx.reference("inception", opts)
    subsets = int(opts.get("subsets", 100))
    mean, std = kernel_inception_distance(ref.features, fake, subsets,
                                          int(opts.get("subset_size", 1000)),
                                          seed=int(opts.get("seed", 0)))
    ctx.record("kid", reference=ref.describe(), num_fake=len(fake), subsets=subsets)
    return {"kid_mean": mean, "kid_std": std}


def pr(ctx: EvalContext, opts: dict) -> dict[str, float]:
    net = opts.get("features", "inception")
    ref = ctx.reference(net, opts)
    n = min(int(opts.get("num_fake", 10000)), len(ref.features))  # equal set sizes, as in the paper
    fake = ctx.fake_outputs(net, n)["features"]
    k = int(opts.get("k", 3))
    dtype = getattr(ctx.extractor(net), "distance_dtype", torch.float32)
    p, r = precision_recall(ref.features[:n], fake, k=k, dtype=dtype)
    suffix = "" if net in ("inception", "data") else f"_{net}"  # data: the 2D sets' own coordinates
    ctx.record("pr", reference=ref.describe(), num_real=n, num_fake=n, k=k, features=net)
    return {f"precision{suffix}": p, f"recall{suffix}": r}


DEFINES = (
    Metric("is", inception_score_metric,
           (Key("is_mean", lower_is_better=False, shown=True), Key("is_std")),
           feature_net="inception"),
    Metric("cis_fashion", cis_fashion,
           (Key("cis_fashion_mean", lower_is_better=False, shown=True), Key("cis_fashion_std")),
           feature_net="fashion"),
    Metric("cis_mnist", cis_mnist,
           (Key("cis_mnist_mean", lower_is_better=False, shown=True), Key("cis_mnist_std")),
           feature_net="mnist"),
    Metric("kid", kid, (Key("kid_mean", lower_is_better=True, shown=True), Key("kid_std")),
           needs_real=True, feature_net="inception"),
    # pr runs on Inception unless its options say features="fashion" or "mnist" (MNIST-like data do)
    # or features="data" (the 2D sets: the samples' coordinates, no network)
    Metric("pr", pr, (Key("precision", lower_is_better=False), Key("recall", lower_is_better=False),
                      Key("precision_fashion", lower_is_better=False),
                      Key("recall_fashion", lower_is_better=False),
                      Key("precision_mnist", lower_is_better=False),
                      Key("recall_mnist", lower_is_better=False)),
           needs_real=True, feature_net="inception"),
)
