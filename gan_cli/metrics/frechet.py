"""Frechet distance between two feature sets, with streamable float64 statistics.

Written by hand (not torchmetrics' ``FrechetInceptionDistance`` with a custom ``feature``
module) for the custom feature networks because:

* the real-data statistics are computed once and cached on disk (reference.py); the
  torchmetrics metric keeps them only as private running sums inside the metric object;
* the accumulator here merges batches and ranks with Chan et al.'s pairwise update of
  (count, mean, centred second moment), which avoids the cancellation in
  ``sum(x x^T) - n mu mu^T`` that the plain-sums form suffers when features have a large mean;
* ``frechet_distance`` takes the matrix square root on symmetric PSD matrices with ``eigh``
  (``sqrt(S1) S2 sqrt(S1)`` has the same eigenvalues as ``S1 S2``), so the trace term is real
  and non-negative by construction; torchmetrics uses ``eigvals`` of the non-symmetric product.

The Inception FID (inception.py) uses torchmetrics' own formula; the tests check that both agree.
"""

from __future__ import annotations

import torch
from torch import Tensor


class FeatureStats:
    """Running count, mean and covariance of feature vectors, in float64.

    ``update`` takes (N, D) batches; ``merge`` combines two accumulators exactly as if one had
    seen all the samples.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.mean_ = torch.zeros(dim, dtype=torch.float64)
        self.m2 = torch.zeros(dim, dim, dtype=torch.float64)  # sum of centred outer products

    def update(self, features: Tensor) -> FeatureStats:
        f = features.detach().reshape(len(features), -1).to("cpu", torch.float64)
        if f.shape[1] != self.dim:
            raise ValueError(f"expected features of dimension {self.dim}, got {f.shape[1]}")
        if len(f) == 0:
            return self
        other = FeatureStats(self.dim)
        other.n = len(f)
        other.mean_ = f.mean(0)
        c = f - other.mean_
        other.m2 = c.T @ c
        return self.merge(other)

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Fold ``other`` into ``self`` (Chan et al. 1979 pairwise update); returns self."""
        if other.dim != self.dim:
            raise ValueError("cannot merge statistics of different dimensions")
        if other.n == 0:
            return self
        if self.n == 0:
            self.n, self.mean_, self.m2 = other.n, other.mean_.clone(), other.m2.clone()
            return self
        n = self.n + other.n
        delta = other.mean_ - self.mean_
        self.mean_ = self.mean_ + delta * (other.n / n)
        self.m2 = self.m2 + other.m2 + torch.outer(delta, delta) * (self.n * other.n / n)
        self.n = n
        return self

    @property
    def mean(self) -> Tensor:
        return self.mean_

    @property
    def cov(self) -> Tensor:
        """Unbiased sample covariance (divides by n - 1)."""
        if self.n < 2:
            raise ValueError("at least two samples are needed for a covariance")
        return self.m2 / (self.n - 1)

    def state_dict(self) -> dict:
        return {"dim": self.dim, "n": self.n, "mean": self.mean_.clone(), "m2": self.m2.clone()}

    @classmethod
    def from_state_dict(cls, state: dict) -> FeatureStats:
        s = cls(int(state["dim"]))
        s.n = int(state["n"])
        s.mean_ = state["mean"].to(torch.float64)
        s.m2 = state["m2"].to(torch.float64)
        return s

    @classmethod
    def of(cls, features: Tensor) -> FeatureStats:
        return cls(features.reshape(len(features), -1).shape[1]).update(features)


def _sqrtm_psd(a: Tensor) -> Tensor:
    w, v = torch.linalg.eigh(a)
    return (v * w.clamp_min(0).sqrt()) @ v.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}), computed in float64.

    Tr((S1 S2)^{1/2}) is the sum of square roots of the eigenvalues of the symmetric PSD
    matrix sqrt(S1) S2 sqrt(S1) (similar to S1 S2); tiny negative eigenvalues from rounding
    are clamped to 0.
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64).reshape(-1) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    root1 = _sqrtm_psd(s1)
    m = root1 @ s2 @ root1
    tr_covmean = torch.linalg.eigvalsh((m + m.T) / 2).clamp_min(0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_covmean
    return float(value)


def frechet_distance_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
