"""Inception score, KID and precision/recall on precomputed outputs of a feature network.

* ``inception_score`` is written by hand: torchmetrics' ``InceptionScore`` takes logits,
  shuffles them with the global RNG before splitting, and returns NaN when a probability is
  exactly 0 (0 * log 0); here the input is class probabilities, splits are contiguous chunks in
  the given order (as in Salimans et al. 2016), and 0 log 0 = 0.
* ``kernel_inception_distance`` uses torchmetrics' polynomial-kernel unbiased MMD estimator
  (``torchmetrics.image.kid.poly_mmd``); only the subset sampling is ours, with a seeded
  generator instead of torchmetrics' global-RNG ``randperm``, so results are reproducible.
* ``precision_recall`` (Kynkaanniemi et al. 2019) is written by hand: torchmetrics has no
  implementation. Distances are computed in blocks, so memory is O(block^2), not O(N^2).
"""

from __future__ import annotations

import torch
from torch import Tensor


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split; returns (mean, std over splits).

    ``probs``: (N, C) class probabilities (rows sum to 1). With ``splits=1`` the score does not
    depend on sample order; with more splits the chunking follows the given order.
    The std is the population std (numpy's default), 0 for one split.
    """
    p = torch.as_tensor(probs).to(torch.float64)
    if p.dim() != 2 or len(p) < splits or splits < 1:
        raise ValueError(f"need (N, C) probabilities with N >= splits >= 1, got {tuple(p.shape)}, "
                         f"splits={splits}")
    if not torch.allclose(p.sum(1), torch.ones(len(p), dtype=p.dtype), atol=1e-4) or (p < 0).any():
        raise ValueError("inception_score expects probabilities (non-negative rows summing to 1)")
    scores = []
    for chunk in p.tensor_split(splits):
        marginal = chunk.mean(0, keepdim=True)
        kl = (torch.special.xlogy(chunk, chunk) - torch.special.xlogy(chunk, marginal)).sum(1).mean()
        scores.append(kl.exp())
    s = torch.stack(scores)
    return float(s.mean()), float(s.std(unbiased=False)) if splits > 1 else 0.0


def kernel_inception_distance(
    real: Tensor,
    fake: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> tuple[float, float]:
    """KID (Binkowski et al. 2018): unbiased MMD^2 with the kernel (x.y / d + 1)^3,
    averaged over ``subsets`` random subsets of ``subset_size`` samples from each set (drawn
    without replacement; the size is capped at the smaller set). Returns (mean, std)."""
    from torchmetrics.image.kid import poly_mmd  # imported here: torchmetrics takes seconds to import

    real = real.reshape(len(real), -1).to(torch.float64)
    fake = fake.reshape(len(fake), -1).to(torch.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least two samples in each set")
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        r = real[torch.randperm(len(real), generator=g)[:m]]
        f = fake[torch.randperm(len(fake), generator=g)[:m]]
        values.append(poly_mmd(r, f, degree=degree, gamma=gamma, coef=coef))
    v = torch.stack(values)
    return float(v.mean()), float(v.std(unbiased=False))


def _sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances (len(a), len(b)) via the Gram trick, clamped at 0."""
    d = a.square().sum(1, keepdim=True) + b.square().sum(1)[None, :] - 2 * a @ b.T
    return d.clamp_min_(0)


def knn_radii(x: Tensor, k: int = 3, block: int = 1024) -> Tensor:
    """Squared distance from each row of ``x`` to its k-th nearest *other* row (blocked)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(x)}")
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for i in range(0, len(x), block):
        q = x[i : i + block]
        best = None  # running k+1 smallest (the point itself is among them at distance 0)
        for j in range(0, len(x), block):
            d = _sq_dists(q, x[j : j + block])
            cand = d if best is None else torch.cat([best, d], 1)
            best = cand.topk(min(k + 1, cand.shape[1]), dim=1, largest=False).values
        out[i : i + block] = best[:, k]
    return out


def _coverage(points: Tensor, centres: Tensor, radii: Tensor, block: int) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius) (squared radii)."""
    inside = torch.zeros(len(points), dtype=torch.bool, device=points.device)
    for i in range(0, len(points), block):
        p = points[i : i + block]
        hit = torch.zeros(len(p), dtype=torch.bool, device=points.device)
        for j in range(0, len(centres), block):
            hit |= (_sq_dists(p, centres[j : j + block]) <= radii[j : j + block][None, :]).any(1)
        inside[i : i + block] = hit
    return float(inside.float().mean())


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, block: int = 1024,
                     dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) in a feature space.

    precision: fraction of fake samples inside the real manifold (union of balls around each real
    sample with radius = distance to its k-th nearest real neighbour); recall: fraction of real
    samples inside the fake manifold. Features are centred on the real mean and compared in
    ``dtype`` (distances with the Gram trick), ``block`` rows at a time.

    Precision 1 with recall 0 is what the definition gives for samples that all fall inside one
    real ball: a real outlier's k-NN radius is large, and so is the ball it contributes
    (tests/test_metrics_2d.py works such a case by hand; Naeem et al. 2020 discuss it).
    """
    real = real.reshape(len(real), -1).to(dtype)
    fake = fake.reshape(len(fake), -1).to(dtype)
    centre = real.mean(0, keepdim=True)
    real, fake = real - centre, fake - centre
    precision = _coverage(fake, real, knn_radii(real, k, block), block)
    recall = _coverage(real, fake, knn_radii(fake, k, block), block)
    return precision, recall
