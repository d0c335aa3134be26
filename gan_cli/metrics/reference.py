"""Reference statistics of the real data: computed once, cached on disk, keyed and checked.

A cache file holds the float64 mean/covariance accumulator of the real features and the first
``keep_features`` feature rows (float32; for precision/recall and KID, which need samples, not
moments). Its key - dataset, split, resize method, feature network (name + weights digest),
number of samples requested, rows kept - is both part of the file name and stored inside the file
and compared on load, so a report can say exactly what a number was computed against
(``ReferenceStats.describe()``). A file whose stored key differs is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from gan_cli.metrics.frechet import FeatureStats


def default_cache_dir() -> Path:
    """``$GAN_CLI_CACHE/reference_stats``, default ``~/.cache/gan-cli/reference_stats``."""
    return Path(os.environ.get("GAN_CLI_CACHE", "~/.cache/gan-cli")).expanduser() / "reference_stats"


def reference_key(
    dataset: str, split: str, resize: str, feature_net: str, num_samples: int, keep_features: int,
    fingerprint: str = "",
) -> dict:
    """What cached statistics are of; ``fingerprint`` identifies the data's content (a digest of
    the images, or of the files' names, sizes and times), so another root, or a folder whose files
    changed, never reuses old statistics."""
    key = {
        "dataset": str(dataset),
        "split": str(split),
        "resize": str(resize),
        "feature_net": str(feature_net),
        "num_samples": int(num_samples),
        "keep_features": int(keep_features),
    }
    if fingerprint:
        key["data"] = str(fingerprint)
    return key


def reference_path(cache_dir: str | os.PathLike, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    parts = [key["dataset"], key["split"], key["feature_net"], key["resize"], f"n{key['num_samples']}"]
    name = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(p)) for p in parts)
    return Path(cache_dir) / f"{name}_{digest}.pt"


@dataclass
class ReferenceStats:
    key: dict
    stats: FeatureStats  # over all samples actually used (stats.n of them)
    features: Tensor  # the first key["keep_features"] (or fewer) feature rows, float32

    def describe(self) -> dict:
        """What a metric computed against this reference was computed against."""
        return {**self.key, "num_samples_used": self.stats.n, "num_features_kept": len(self.features)}


def load_or_compute_reference(
    key: dict,
    compute: Callable[[], tuple[FeatureStats, Tensor]],
    cache_dir: str | os.PathLike | None = None,
) -> ReferenceStats:
    """Return the cached statistics for ``key``, or call ``compute()`` once and cache its result.

    ``compute`` returns (FeatureStats over the real samples, kept feature rows). Files are loaded
    with ``weights_only=True`` and written atomically (temporary file + rename).
    """
    path = reference_path(cache_dir if cache_dir is not None else default_cache_dir(), key)
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            blob = None  # unreadable or truncated: recompute
        if isinstance(blob, dict) and blob.get("key") == key:
            return ReferenceStats(key, FeatureStats.from_state_dict(blob["stats"]), blob["features"])
    stats, features = compute()
    features = features[: key["keep_features"]].detach().to("cpu", torch.float32).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save({"key": key, "stats": stats.state_dict(), "features": features}, tmp)
    os.replace(tmp, path)
    return ReferenceStats(key, stats, features)


def compute_reference_features(
    batches, extractor: Callable[[Tensor], dict], num_samples: int, keep_features: int, device="cpu"
) -> tuple[FeatureStats, Tensor]:
    """Run ``extractor`` over real batches (an iterable of tensors) until ``num_samples`` are seen."""
    stats, kept, seen = None, [], 0
    with torch.no_grad():
        for x in batches:
            x = x[: num_samples - seen]
            if len(x) == 0:
                break
            f = extractor(x.to(device))["features"].to("cpu", torch.float32)
            stats = (stats or FeatureStats(f.shape[1])).update(f)
            if sum(len(k) for k in kept) < keep_features:
                kept.append(f)
            seen += len(x)
            if seen >= num_samples:
                break
    if stats is None:
        raise ValueError("the real data yielded no samples")
    return stats, torch.cat(kept)[:keep_features]
