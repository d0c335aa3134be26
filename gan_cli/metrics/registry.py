"""Metric registry: ``compute_metrics(names, sample, real, options)`` -> dict of named floats.

Signature of every registered metric::

    METRICS[name](ctx: EvalContext, opts: dict) -> dict[str, float]

``EvalContext`` bundles what all metrics share for one evaluation, so that several metrics on
the same network reuse one pass:

* ``sample(n) -> Tensor``: the generator-sampling callable, returning ``n`` generated samples
  (N, *data_shape), images in [-1, 1]; called with n <= ``batch_size``. It is the caller's job
  to put G in eval mode, disable grad and fix the seed if wanted.
* ``real: RealData``: access to the real data (name, split, a fresh iterator over batches, and
  for 2D mixtures the mode centres and std).
* generated samples and per-network outputs are memoised per context; real-data statistics
  come from the on-disk cache (reference.py).

``opts`` is ``options`` (global keys) updated with ``options[name]`` (per-metric keys). Keys:

    num_fake (10000), num_real (10000), keep_features (10000), batch_size (250), device ("cpu"),
    inception_weights (None), allow_download (False), antialias (True), fashion_weights (None),
    cache_dir (None -> reference.default_cache_dir()),
    is/cis_fashion: splits (10); kid: subsets (100), subset_size (1000), seed (0);
    pr: k (3), features ("inception" or "fashion"); modes: num_fake (2500), modes, mode_std,
    threshold (3.0); nn: num_queries (8), k (5), path ("nearest_neighbours.png").

Returned keys: fid -> fid; is -> is_mean, is_std; kid -> kid_mean, kid_std;
pr -> precision, recall (precision_fashion, recall_fashion with features="fashion"), on equal
numbers of real and generated samples: min(num_fake, rows kept in the reference cache);
fd_fashion -> fd_fashion; cis_fashion -> cis_fashion_mean, cis_fashion_std;
modes -> modes_captured, high_quality_fraction, reverse_kl, num_modes;
nn -> nn_distance_min, nn_distance_mean (distance of each query to its closest training image).

What each number was computed against (dataset, split, counts, feature network digest, resize)
is written into ``provenance[name]`` when a dict is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from gan_cli.errors import ConfigError, RuntimeFailure
from gan_cli.metrics.feature_net import DEFAULT_WEIGHTS, load_fashion_cnn
from gan_cli.metrics.frechet import FeatureStats, frechet_distance
from gan_cli.metrics.inception import (
    InceptionFeatures,
    fid_from_stats,
    file_digest,
    resolve_inception_weights,
)
from gan_cli.metrics.neighbours import nearest_neighbours, save_neighbour_figure
from gan_cli.metrics.reference import (
    ReferenceStats,
    compute_reference_features,
    load_or_compute_reference,
    reference_key,
)
from gan_cli.metrics.scores import inception_score, kernel_inception_distance, precision_recall
from gan_cli.metrics.toy import mode_metrics

Sampler = Callable[[int], Tensor]


@dataclass
class RealData:
    """Access to the real data a metric compares against."""

    name: str  # dataset name, e.g. "fashion_mnist" (part of the reference-cache key)
    split: str  # "train" or "test" (part of the key; nn should use the training split)
    batches: Callable[[], Iterable[Tensor]]  # a fresh pass over real samples, images in [-1, 1]
    modes: Tensor | None = None  # 2D mixtures: mode centres (M, 2)
    mode_std: float | None = None  # 2D mixtures: std of each mode

    @classmethod
    def from_tensor(cls, name: str, split: str, x: Tensor, batch_size: int = 500, **kw) -> RealData:
        return cls(name, split, lambda: iter(x.split(batch_size)), **kw)


class FashionFeatures:
    """The shipped Fashion-MNIST CNN as an extractor: 128-d features and softmax probabilities."""

    resize = "bilinear-antialias-28"

    def __init__(self, weights=None, device="cpu") -> None:
        path = weights if weights is not None else DEFAULT_WEIGHTS
        self.net = load_fashion_cnn(path, device)
        self.identity = f"fashion_cnn-{file_digest(path)}"

    @torch.no_grad()
    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        f, logits = self.net.features_and_logits(x)
        return {"features": f.float(), "probs": logits.double().softmax(1)}


@dataclass
class EvalContext:
    sample: Sampler
    real: RealData | None
    options: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    _fake: Tensor | None = None
    _extractors: dict = field(default_factory=dict)
    _outputs: dict = field(default_factory=dict)

    def opt(self, key, default=None):
        return self.options.get(key, default)

    def fake(self, n: int) -> Tensor:
        """The first ``n`` generated samples (drawn once in batches, kept on the CPU)."""
        have = 0 if self._fake is None else len(self._fake)
        if have < n:
            bs = int(self.opt("batch_size", 250))
            parts = [] if self._fake is None else [self._fake]
            while have < n:
                with torch.no_grad():
                    x = self.sample(min(bs, n - have)).detach().to("cpu", torch.float32)
                if len(x) == 0:
                    raise RuntimeFailure("the sampling callable returned no samples")
                parts.append(x)
                have += len(x)
            self._fake = torch.cat(parts)
        return self._fake[:n]

    def extractor(self, name: str):
        if name not in self._extractors:
            device = self.opt("device", "cpu")
            if name == "fashion":
                self._extractors[name] = FashionFeatures(self.opt("fashion_weights"), device)
            elif name == "inception":
                path = resolve_inception_weights(self.opt("inception_weights"), self.opt("allow_download", False))
                self._extractors[name] = InceptionFeatures(path, self.opt("antialias", True)).to(device)
            else:
                raise ConfigError(f"unknown feature network {name!r}; use 'inception' or 'fashion'")
        return self._extractors[name]

    def fake_outputs(self, name: str, n: int) -> dict[str, Tensor]:
        """Features and class probabilities of the first ``n`` generated samples on network ``name``."""
        cached = self._outputs.get(name)
        if cached is None or len(cached["features"]) < n:
            ext, bs, device = self.extractor(name), int(self.opt("batch_size", 250)), self.opt("device", "cpu")
            outs = [ext(x.to(device)) for x in self.fake(n).split(bs)]
            cached = {k: torch.cat([o[k].cpu() for o in outs]) for k in outs[0]}
            self._outputs[name] = cached
        return {k: v[:n] for k, v in cached.items()}

    def reference(self, name: str, opts: dict | None = None) -> ReferenceStats:
        """Real-data statistics on network ``name`` (cached on disk; see reference.py)."""
        if self.real is None:
            raise ConfigError("this metric needs real data")
        opts = self.options if opts is None else opts
        ext = self.extractor(name)
        n, keep = int(opts.get("num_real", 10000)), int(opts.get("keep_features", 10000))
        key = reference_key(self.real.name, self.real.split, ext.resize, ext.identity, n, keep)
        device = self.opt("device", "cpu")
        return load_or_compute_reference(
            key,
            lambda: compute_reference_features(self.real.batches(), ext, n, keep, device),
            self.opt("cache_dir"),
        )

    def record(self, metric: str, **info) -> None:
        self.provenance[metric] = info


def _fd(ctx: EvalContext, opts: dict, net: str, metric: str, value_fn) -> dict[str, float]:
    n = int(opts.get("num_fake", 10000))
    fake = FeatureStats.of(ctx.fake_outputs(net, n)["features"])
    ref = ctx.reference(net, opts)
    ctx.record(metric, reference=ref.describe(), num_fake=fake.n)
    return {metric: value_fn(fake.mean, fake.cov, ref.stats.mean, ref.stats.cov)}


def metric_fid(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _fd(ctx, opts, "inception", "fid", fid_from_stats)


def metric_fd_fashion(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _fd(ctx, opts, "fashion", "fd_fashion", frechet_distance)


def _score(ctx: EvalContext, opts: dict, net: str, prefix: str) -> dict[str, float]:
    n = int(opts.get("num_fake", 10000))
    mean, std = inception_score(ctx.fake_outputs(net, n)["probs"], int(opts.get("splits", 10)))
    ctx.record(prefix, network=ctx.extractor(net).identity, num_fake=n, splits=int(opts.get("splits", 10)))
    return {f"{prefix}_mean": mean, f"{prefix}_std": std}


def metric_is(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _score(ctx, opts, "inception", "is")


def metric_cis_fashion(ctx: EvalContext, opts: dict) -> dict[str, float]:
    return _score(ctx, opts, "fashion", "cis_fashion")


def metric_kid(ctx: EvalContext, opts: dict) -> dict[str, float]:
    fake = ctx.fake_outputs("inception", int(opts.get("num_fake", 10000)))["features"]
    ref = ctx.reference("inception", opts)
    mean, std = kernel_inception_distance(
        ref.features, fake, int(opts.get("subsets", 100)), int(opts.get("subset_size", 1000)), seed=int(opts.get("seed", 0))
    )
    ctx.record("kid", reference=ref.describe(), num_fake=len(fake), subsets=int(opts.get("subsets", 100)))
    return {"kid_mean": mean, "kid_std": std}


def metric_pr(ctx: EvalContext, opts: dict) -> dict[str, float]:
    net = opts.get("features", "inception")
    ref = ctx.reference(net, opts)
    n = min(int(opts.get("num_fake", 10000)), len(ref.features))  # equal set sizes, as in the paper
    fake = ctx.fake_outputs(net, n)["features"]
    p, r = precision_recall(ref.features[:n], fake, k=int(opts.get("k", 3)))
    suffix = "" if net == "inception" else f"_{net}"
    ctx.record("pr", reference=ref.describe(), num_real=n, num_fake=n, k=int(opts.get("k", 3)), features=net)
    return {f"precision{suffix}": p, f"recall{suffix}": r}


def metric_modes(ctx: EvalContext, opts: dict) -> dict[str, float]:
    modes = opts.get("modes", ctx.real.modes if ctx.real is not None else None)
    std = opts.get("mode_std", ctx.real.mode_std if ctx.real is not None else None)
    if modes is None or std is None:
        raise ConfigError("the 'modes' metric needs the mode centres and std (a 2D mixture dataset)")
    n = int(opts.get("num_fake", 2500))
    ctx.record("modes", num_fake=n, threshold=float(opts.get("threshold", 3.0)))
    return mode_metrics(ctx.fake(n), torch.as_tensor(modes), float(std), float(opts.get("threshold", 3.0)))


def metric_nn(ctx: EvalContext, opts: dict) -> dict[str, float]:
    if ctx.real is None:
        raise ConfigError("the 'nn' metric needs the training images")
    q = ctx.fake(int(opts.get("num_queries", 8)))
    d, imgs = nearest_neighbours(q, ctx.real.batches(), k=int(opts.get("k", 5)))
    path = save_neighbour_figure(q, imgs, Path(opts.get("path", "nearest_neighbours.png")))
    ctx.record("nn", against=f"{ctx.real.name}/{ctx.real.split}", num_queries=len(q), figure=str(path))
    return {"nn_distance_min": float(d[:, 0].min()), "nn_distance_mean": float(d[:, 0].mean())}


METRICS: dict[str, Callable[[EvalContext, dict], dict[str, float]]] = {
    "fid": metric_fid,
    "is": metric_is,
    "kid": metric_kid,
    "pr": metric_pr,
    "fd_fashion": metric_fd_fashion,
    "cis_fashion": metric_cis_fashion,
    "modes": metric_modes,
    "nn": metric_nn,
}

#: Metrics that compare against real data (checked before any sampling).
NEEDS_REAL = {"fid", "kid", "pr", "fd_fashion", "nn"}


def compute_metrics(
    names: Iterable[str],
    sample: Sampler,
    real: RealData | None,
    options: dict | None = None,
    provenance: dict | None = None,
) -> dict[str, float]:
    """Compute the named metrics; unknown names raise ConfigError before anything runs."""
    names = list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    if real is None and NEEDS_REAL.intersection(names):
        raise ConfigError(f"metric(s) {sorted(NEEDS_REAL.intersection(names))} need real data, none was given")
    options = dict(options or {})
    ctx = EvalContext(sample, real, options)
    out: dict[str, float] = {}
    for name in names:
        opts = {k: v for k, v in options.items() if k not in METRICS}
        opts.update(options.get(name) or {})
        out.update(METRICS[name](ctx, opts))
    if provenance is not None:
        provenance.update(ctx.provenance)
    return out
