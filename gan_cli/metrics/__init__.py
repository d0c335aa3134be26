"""Metric library for gan-cli: FID/IS/KID (torchmetrics Inception), precision/recall, the offline
Fashion-MNIST feature network (fd_fashion, cis_fashion), 2D mode metrics and the
nearest-neighbour check. ``compute_metrics`` (registry.py) is the entry point for loops and CLIs.

Heavy parts (Inception, torch-fidelity) are imported only when used.
"""

from gan_cli.metrics.frechet import FeatureStats, frechet_distance, frechet_distance_stats
from gan_cli.metrics.inception import (
    InceptionFeatures,
    MissingWeightsError,
    hub_cache_path,
    inception_weights_filename,
    resolve_inception_weights,
    torchmetrics_fid,
)
from gan_cli.metrics.neighbours import nearest_neighbours, save_neighbour_figure
from gan_cli.metrics.reference import ReferenceStats, load_or_compute_reference, reference_key
from gan_cli.metrics.registry import METRICS, EvalContext, RealData, compute_metrics
from gan_cli.metrics.scores import inception_score, kernel_inception_distance, precision_recall
from gan_cli.metrics.toy import mode_metrics

__all__ = [
    "METRICS", "EvalContext", "FeatureStats", "InceptionFeatures", "MissingWeightsError", "RealData",
    "ReferenceStats", "compute_metrics", "frechet_distance", "frechet_distance_stats", "hub_cache_path",
    "inception_score", "inception_weights_filename", "kernel_inception_distance", "load_or_compute_reference",
    "mode_metrics", "nearest_neighbours", "precision_recall", "reference_key", "resolve_inception_weights",
    "save_neighbour_figure", "torchmetrics_fid",
]
