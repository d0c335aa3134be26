"""MMD-GAN (Li et al. 2017): the kernel MMD^2 between D's features of real and generated data, and,
with ``ae_lambda`` > 0, the autoencoder terms of their full objective (a decoder on D's features)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gan_cli.losses.base import AdversarialLoss, clip_weights
from gan_cli.losses.wasserstein import _unwrap

DECODER = "mmd_decoder"  # the name of the decoder in D (its state dict keys: mmd_decoder.*)


def _sq_distances(a: Tensor, b: Tensor) -> Tensor:
    """||a_i - b_j||^2, shape (N, M), of flattened samples, centred on their common mean first:
    ||a' - b'||^2 = ||a'||^2 + ||b'||^2 - 2 a'.b' keeps the distances of a clipped D's features
    (offset ~1e-2, spread ~1e-5) that float32 loses without the centring."""
    a, b = a.flatten(start_dim=1), b.flatten(start_dim=1)
    centre = torch.cat([a, b]).mean(0)
    a, b = a - centre, b - centre
    # clamped at 0 against rounding
    return (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T).clamp_min(0.0)


def _rbf_mixture_minus_count(a: Tensor, b: Tensor, sigmas: Sequence[float]) -> Tensor:
    # k(a, b) - Q = sum_q expm1(-d^2 / (2 sigma_q^2)): no cancellation when d^2 << sigma^2
    sq = _sq_distances(a, b)
    return sum(torch.expm1(sq * (-0.5 / (s * s))) for s in sigmas)


def rbf_mixture_kernel(a: Tensor, b: Tensor, sigmas: Sequence[float]) -> Tensor:
    # k(a, b) = sum_q exp(-||a - b||^2 / (2 sigma_q^2)), Gram matrix (N, M)  (Li et al. 2017)
    return _rbf_mixture_minus_count(a, b, sigmas) + float(len(sigmas))


def mmd2(x: Tensor, y: Tensor, sigmas: Sequence[float], biased: bool = False) -> Tensor:
    """MMD^2 of samples x (m, ...) and y (n, ...) under ``rbf_mixture_kernel`` (Gretton et al. 2012,
    eq. 3-5): unbiased, sum_{i!=j} k(x_i, x_j) / m(m-1) + sum_{i!=j} k(y_i, y_j) / n(n-1) -
    2 mean k(x, y) (may be slightly negative), or biased (diagonals kept, >= 0). Computed with k - Q,
    since the weights +1 +1 -2 cancel a constant, which keeps points far closer than the bandwidths
    resolved in float32."""
    m, n = x.shape[0], y.shape[0]
    if x.shape[1:].numel() != y.shape[1:].numel():
        raise ValueError(f"mmd2 needs samples of the same size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if not biased and min(m, n) < 2:
        raise ValueError(f"the unbiased MMD^2 needs at least 2 samples on each side, got {m} and {n}")
    k_xx = _rbf_mixture_minus_count(x, x, sigmas)
    k_yy = _rbf_mixture_minus_count(y, y, sigmas)
    k_xy = _rbf_mixture_minus_count(x, y, sigmas)
    if biased:
        return k_xx.mean() + k_yy.mean() - 2.0 * k_xy.mean()
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * k_xy.mean()


def median_distance(x: Tensor, y: Tensor) -> Tensor:
    """The median distance between distinct points of x and y pooled (the median heuristic, Gretton
    et al. 2012, sec. 8; torch's lower median), without gradient; 0-dim."""
    with torch.no_grad():
        pooled = torch.cat([x.flatten(start_dim=1), y.flatten(start_dim=1)])
        n = len(pooled)
        i, j = torch.triu_indices(n, n, offset=1, device=pooled.device)
        return _sq_distances(pooled, pooled)[i, j].median().sqrt()


def feature_decoder(features: int, shape: tuple[int, ...], hidden: Sequence[int], bounded: bool) -> nn.Module:
    """MMD-GAN's decoder f_dec: D's features (N, features) -> a sample (N, *shape), an MLP with ReLU
    between its layers (widths ``hidden``), tanh at the end for data in [-1, 1]."""
    widths, layers = [features, *hidden], []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], math.prod(shape)))
    if bounded:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers, nn.Unflatten(1, tuple(shape)))


def feature_size(D: nn.Module, info: Any) -> int:
    """The size F of D's features (N, F): one forward of two zero samples in eval mode (no
    statistics or spectral-norm vectors updated)."""
    param = next(D.parameters())
    x = torch.zeros(2, *info.shape, device=param.device)
    y = torch.zeros(2, dtype=torch.long, device=param.device) if getattr(D, "num_classes", 0) else None
    was_training = D.training
    D.eval()
    try:
        with torch.no_grad():
            return int(D(x, y).flatten(start_dim=1).shape[1])
    finally:
        D.train(was_training)


def reconstruction_error(decoded: Tensor, x: Tensor) -> Tensor:
    # E ||y - f_dec(f_enc(y))||^2 as a mean over samples and values (the authors' code's L2 match)
    return (decoded - x).pow(2).mean()


class MMD(AdversarialLoss):
    """MMD-GAN (Li et al. 2017): D returns features (N, F); L_D = -MMD^2(D(x), D(G(z))), L_G = MMD^2
    (with the real features computed without gradient), D's weights clipped to [-clip_value,
    clip_value] after each step (None: no clipping). Left out of the authors' code: the feasibility
    penalty and the square root.

    ``ae_lambda`` > 0: the full objective of their eq. 7, D also an autoencoder:
    L_D = -MMD^2 + ae_lambda (E ||x - f_dec(D(x))||^2 + E ||G(z) - f_dec(D(G(z)))||^2), with the
    decoder ``feature_decoder`` (widths ``decoder_hidden``) added to D by ``d_modules`` and left
    unclipped (their code clips the encoder only; lambda_AE_X = lambda_AE_Y = 8 there). G's loss
    has no reconstruction term. Stats then also: rec_real, rec_fake.

    ``bandwidth``: "fixed", sigmas in feature units (the paper's), or "median", in units of
    ``median_distance`` of the pooled features: a clipped D without BatchNorm shrinks its features
    ~0.1 per layer (1e-5 on ring8's MLP) far below the fixed sigmas, and nothing trains.
    Stats: loss_d, mmd2, feature_scale (the median unit, "median" only); loss_g.
    """

    d_output = "features"
    g_needs_real = True

    def __init__(self, sigmas: Sequence[float] = (1.0, 2.0, 4.0, 8.0, 16.0), n_critic: int = 5,
                 clip_value: float | None = 0.01, biased: bool = False, bandwidth: str = "fixed",
                 ae_lambda: float = 0.0, decoder_hidden: Sequence[int] = (256,)) -> None:
        super().__init__(n_critic=n_critic)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.biased, self.bandwidth = biased, bandwidth
        self.ae_lambda, self.decoder_hidden = float(ae_lambda), tuple(int(h) for h in decoder_hidden)

    def d_modules(self, D, info):
        if self.ae_lambda == 0:
            return {}
        return {DECODER: feature_decoder(feature_size(D, info), tuple(info.shape), self.decoder_hidden,
                                         bool(info.bounded))}

    def _mmd2(self, f_real: Tensor, f_fake: Tensor) -> tuple[Tensor, Tensor | None]:
        """MMD^2 of the features, and the feature unit used (None for fixed bandwidths)."""
        if f_real.dim() < 2 or f_fake.dim() < 2:
            raise ValueError(
                "MMD-GAN's discriminator must return features of shape (N, F) (output='features'), "
                f"got {tuple(f_real.shape)} and {tuple(f_fake.shape)}"
            )
        if self.bandwidth == "fixed":
            return mmd2(f_real, f_fake, self.sigmas, biased=self.biased), None
        # k(a, b) with bandwidths sigma_q * u is k(a / u, b / u) with bandwidths sigma_q
        unit = median_distance(f_real, f_fake).clamp_min(torch.finfo(f_real.dtype).tiny)
        return mmd2(f_real / unit, f_fake / unit, self.sigmas, biased=self.biased), unit

    def d_loss(self, D, real, fake, y=None):
        f_real, f_fake = D(real, y), D(fake, y)
        value, unit = self._mmd2(f_real, f_fake)
        loss = -value
        stats = {"mmd2": value.detach()}
        if self.ae_lambda > 0:
            decoder = getattr(_unwrap(D), DECODER)
            rec_real = reconstruction_error(decoder(f_real), real)
            rec_fake = reconstruction_error(decoder(f_fake), fake)
            loss = loss + self.ae_lambda * (rec_real + rec_fake)
            stats.update(rec_real=rec_real.detach(), rec_fake=rec_fake.detach())
        stats["loss_d"] = loss.detach()
        if unit is not None:
            stats["feature_scale"] = unit
        return loss, stats

    def g_loss(self, D, fake, y=None, real=None):
        """G's loss; ``real`` (a real batch, shape of ``fake``) is required."""
        if real is None:
            raise ValueError("MMD-GAN's generator loss compares with real data: call g_loss(..., real=batch)")
        with torch.no_grad():
            f_real = D(real, y)
        loss, _ = self._mmd2(f_real, D(fake, y))
        return loss, {"loss_g": loss.detach()}

    def after_d_step(self, D, stats):
        if self.clip_value is not None:
            clip_weights(D, self.clip_value, skip=DECODER)
