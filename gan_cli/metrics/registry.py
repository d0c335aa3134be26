"""Metric registry: ``compute_metrics(names, sample, real, options)`` -> dict of named floats.

Every metric is one :class:`Metric` record, registered by its own file in
``gan_cli/metrics/defs/`` (adding a metric is adding a file there); its ``compute`` has the
signature::

    compute(ctx: EvalContext, opts: dict) -> dict[str, float]

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
    inception_weights (None), allow_download (True), inception_url (None), inception_sha256 (None),
    inception_resize ("tf1"), fashion_weights (None), mnist_weights (None) (an offline network's
    weights file: ``<name>_weights``), cache_dir (None -> reference.default_cache_dir()),
    is/cis_fashion: splits (10); kid: subsets (100), subset_size (1000), seed (0);
    pr: k (3), features ("inception", "fashion", "mnist" or "data": the 2D sets' coordinates); modes:
    num_fake (2500), modes, mode_std, threshold (3.0), classifier (None: the 2D mixtures' centres;
    "mnist": digits by class); mode_spread: num_fake (2500), radius (6.0 std); energy: num_fake
    (2500); nn: num_queries (8), k (5), path (figure_dir/nearest_neighbours.png).

Returned keys: fid -> fid; is -> is_mean, is_std; kid -> kid_mean, kid_std;
pr -> precision, recall (precision_fashion, recall_fashion with features="fashion"), on equal
numbers of real and generated samples: min(num_fake, rows kept in the reference cache);
fd_fashion -> fd_fashion; cis_fashion -> cis_fashion_mean, cis_fashion_std; fd_mnist, cis_mnist
alike; modes -> modes_captured, high_quality_fraction, reverse_kl, num_modes (digits: no
high_quality_fraction); mode_spread -> mode_std_ratio_min, _mean, _max; energy -> energy_distance,
energy_distance_floor;
nn -> nn_distance_min, nn_distance_mean (distance of each query to its closest training image).

What each number was computed against (dataset, split, counts, feature network digest, resize)
is written into ``provenance[name]`` when a dict is passed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gan_cli.errors import ConfigError
from gan_cli.metrics.context import EvalContext, Metric, RealData, Sampler
from gan_cli.metrics.inception import MissingWeightsError

__all__ = ["METRICS", "EvalContext", "Metric", "RealData", "check_names", "check_real_counts",
           "compute_metrics", "lower_is_better", "metric_of", "options_of", "shown_keys"]

METRICS: dict[str, Metric] = {}


def _load_definitions() -> None:
    """Every module of gan_cli/metrics/defs/ defines its metrics in ``DEFINES``: adding a metric
    is adding a file there."""
    import importlib
    import pkgutil

    from gan_cli.metrics import defs

    for info in sorted(pkgutil.iter_modules(defs.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{defs.__name__}.{info.name}")
        for metric in getattr(module, "DEFINES", ()):
            if metric.name in METRICS:
                raise ValueError(f"metric {metric.name!r} is defined twice")
            METRICS[metric.name] = metric


_load_definitions()


def metric_of(key: str) -> Metric | None:
    """The metric that reports ``key`` (None for keys no metric reports)."""
    for metric in METRICS.values():
        if any(k.name == key for k in metric.keys):
            return metric
    return None


def lower_is_better(key: str) -> bool | None:
    """The direction of ``key``: True (lower is better), False, or None (no direction)."""
    metric = metric_of(key)
    return next((k.lower_is_better for k in metric.keys if k.name == key), None) if metric else None


def shown_keys() -> tuple[str, ...]:
    """The metric keys the console line shows."""
    return tuple(k.name for m in METRICS.values() for k in m.keys if k.shown)


def check_names(names: Iterable[str], key: str | None = None) -> None:
    """Raise ConfigError for names that are not registered metrics; ``key``: the config key named."""
    unknown = [n for n in names if n not in METRICS]
    if unknown and key:
        raise ConfigError(f"{key}: unknown metric(s) {unknown}; known: {', '.join(sorted(METRICS))}")
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")


def options_of(metric: Metric, options: dict) -> dict:
    """A metric's options: the global keys of ``options``, its defaults, then ``options[name]``."""
    opts = {k: v for k, v in options.items() if k not in METRICS}
    opts.update(metric.defaults)
    opts.update(options.get(metric.name) or {})
    return opts


def check_real_counts(names: Iterable[str], options: dict, num_real: int, key: str) -> None:
    """Raise ConfigError, before anything runs, for a metric that reads more real samples than the
    ``num_real`` available (config key ``key``)."""
    for name in names:
        metric = METRICS[name]
        needed = metric.real_needed(options_of(metric, options)) if metric.real_needed else 0
        if needed > num_real:
            raise ConfigError(f"{key}={num_real}: the {name!r} metric reads {needed} real samples; "
                              f"raise {key} to at least {needed}")


def compute_metrics(
    names: Iterable[str],
    sample: Sampler,
    real: RealData | None,
    options: dict | None = None,
    provenance: dict | None = None,
    *,
    generator: Any = None,
    data: Any = None,
    skipped: dict | None = None,
) -> dict[str, float]:
    """Compute the named metrics; unknown names raise ConfigError before anything runs.

    ``skipped``: None, a metric whose feature network's weights cannot be had raises
    ``MissingWeightsError``; a dict, that metric is left out and ``skipped[name]`` says why."""
    names = list(names)
    check_names(names)
    needing = sorted(n for n in names if METRICS[n].needs_real)
    if real is None and needing:
        raise ConfigError(f"metric(s) {needing} need real data, none was given")
    options = dict(options or {})
    ctx = EvalContext(sample, real, options, generator=generator, data=data)
    out: dict[str, float] = {}
    for name in names:
        metric = METRICS[name]
        opts = options_of(metric, options)
        try:
            out.update(metric.compute(ctx, opts))
        except MissingWeightsError as exc:  # raised before the metric has sampled or read anything
            if skipped is None:
                raise
            skipped[name] = str(exc)
    if provenance is not None:
        provenance.update(ctx.provenance)
    return out
