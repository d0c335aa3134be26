"""What every metric shares: the real data, the evaluation context, and the metric record.

A metric is a :class:`Metric` (its compute function, the keys it reports with their direction,
whether it needs real data, its feature network, whether it is a figure); each file in
``gan_cli/metrics/defs/`` defines its own in a tuple ``DEFINES``, and gan_cli/metrics/registry.py
collects them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from gan_cli.errors import ConfigError, RuntimeFailure
from gan_cli.metrics.feature_net import OFFLINE_NETS, load_offline_net
from gan_cli.metrics.inception import (
    InceptionFeatures,
    MissingWeightsError,
    file_digest,
    weights_from_options,
)
from gan_cli.metrics.reference import (
    ReferenceStats,
    compute_reference_features,
    load_or_compute_reference,
    reference_key,
)

Sampler = Callable[[int], Tensor]


@dataclass
class RealData:
    """Access to the real data a metric compares against."""

    name: str  # dataset name, e.g. "fashion_mnist" (part of the reference-cache key)
    split: str  # "train" or "test" (part of the key; nn should use the training split)
    batches: Callable[[], Iterable[Tensor]]  # a fresh pass over real samples, images in [-1, 1]
    modes: Tensor | None = None  # 2D mixtures: mode centres (M, 2)
    mode_std: float | None = None  # 2D mixtures: std of each mode
    fingerprint: str = ""  # the data's content digest (part of the reference-cache key)

    @classmethod
    def from_tensor(cls, name: str, split: str, x: Tensor, batch_size: int = 500, **kw) -> RealData:
        return cls(name, split, lambda: iter(x.split(batch_size)), **kw)


class DataFeatures:
    """No network: the samples themselves, flattened, as features (the 2D sets' precision/recall).
    Their distances are taken in float64 (``distance_dtype``): the Gram trick in float32 loses the
    k-NN radii of points 0.02 apart at distance 2 from the origin."""

    resize = "none"
    identity = "data-space"
    distance_dtype = torch.float64

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        return {"features": x.flatten(1).double()}


class OfflineFeatures:
    """A shipped offline CNN (feature_net.OFFLINE_NETS[name]) as an extractor: 128-d features and
    softmax probabilities."""

    resize = "bilinear-antialias-28"

    def __init__(self, name: str = "fashion", weights=None, device="cpu") -> None:
        path = weights if weights is not None else OFFLINE_NETS[name].weights
        self.net = load_offline_net(name, path, device)
        self.identity = f"{OFFLINE_NETS[name].stem}-{file_digest(path)}"

    @torch.no_grad()
    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        f, logits = self.net.features_and_logits(x)
        return {"features": f.float(), "probs": logits.double().softmax(1)}


@dataclass
class EvalContext:
    """What the metrics of one evaluation share (see gan_cli/metrics/registry.py).

    ``generator`` and ``data`` are given to metrics that need more than samples: an
    image-to-image model's held-out pairs (G applied to their inputs), a single image's SiFID.
    """

    sample: Sampler
    real: RealData | None
    options: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    generator: Any = None  # the generator being judged (eval mode), when the caller has it
    data: Any = None  # the DataSource it was trained on, when the caller has it
    _fake: Tensor | None = None
    _extractors: dict = field(default_factory=dict)
    _outputs: dict = field(default_factory=dict)
    _shared: dict = field(default_factory=dict)

    def opt(self, key, default=None):
        return self.options.get(key, default)

    def shared(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per evaluation for every metric that asks with the same ``key``
        (e.g. an image-to-image G's outputs on the held-out pairs, judged by two metrics)."""
        if key not in self._shared:
            self._shared[key] = compute()
        return self._shared[key]

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
        """The feature network ``name``, built once; a MissingWeightsError is kept and raised again
        (one download attempt per evaluation)."""
        if isinstance(self._extractors.get(name), Exception):
            raise self._extractors[name]
        if name not in self._extractors:
            device = self.opt("device", "cpu")
            if name == "data":
                self._extractors[name] = DataFeatures()
            elif name in OFFLINE_NETS:  # fashion, mnist: options fashion_weights, mnist_weights
                self._extractors[name] = OfflineFeatures(name, self.opt(f"{name}_weights"), device)
            elif name == "inception":
                try:
                    path = weights_from_options(self.options)
                except MissingWeightsError as exc:
                    self._extractors[name] = exc
                    raise
                resize = self.opt("inception_resize") or "tf1"
                self._extractors[name] = InceptionFeatures(path, resize).to(device)
            else:
                raise ConfigError(f"unknown feature network {name!r}; use 'inception', 'data' or one of "
                                  f"{', '.join(OFFLINE_NETS)}")
        return self._extractors[name]

    def fake_outputs(self, name: str, n: int) -> dict[str, Tensor]:
        """Features and class probabilities of the first ``n`` generated samples on network ``name``."""
        cached = self._outputs.get(name)
        if cached is None or len(cached["features"]) < n:
            ext, device = self.extractor(name), self.opt("device", "cpu")
            bs = int(self.opt("batch_size", 250))
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
        key = reference_key(self.real.name, self.real.split, ext.resize, ext.identity, n, keep,
                            self.real.fingerprint)
        device = self.opt("device", "cpu")
        return load_or_compute_reference(
            key,
            lambda: compute_reference_features(self.real.batches(), ext, n, keep, device),
            self.opt("cache_dir"),
        )

    def record(self, metric: str, **info) -> None:
        self.provenance[metric] = info


@dataclass(frozen=True)
class Key:
    """One number a metric reports.

    Args:
        name: its key in the result (``fid``, ``precision_fashion``, ...).
        lower_is_better: True / False for a score with a direction (the in-training tracker keeps
            its best value), None for numbers without one (a std, a count).
        shown: whether the console line shows it.
    """

    name: str
    lower_is_better: bool | None = None
    shown: bool = False


@dataclass(frozen=True)
class Metric:
    """Everything known about one metric.

    Args:
        name: what ``metrics.names`` / gan-eval's ``metrics=[...]`` call it.
        compute: ``compute(ctx, opts) -> {key: value}``.
        keys: the numbers it reports (with their direction).
        needs_real: it compares against real data (checked before any sampling).
        feature_net: the feature network it runs on: "inception" (needs the weight file),
            "fashion" or "mnist" (shipped offline CNNs) or None.
        figure: True for a metric that draws a figure (gan-eval draws it; training skips it).
        defaults: per-metric option defaults, above the evaluation's global options
            (the modes metric's 2,500 samples, by the PacGAN protocol).
        real_needed: ``real_needed(opts) -> int``, the real samples it reads when that is more
            than ``num_real`` may give (checked before a run starts); None = whatever there is.
    """

    name: str
    compute: Callable[[EvalContext, dict], dict[str, float]]
    keys: tuple[Key, ...]
    needs_real: bool = False
    feature_net: str | None = None
    figure: bool = False
    defaults: dict = field(default_factory=dict)
    real_needed: Callable[[dict], int] | None = None
