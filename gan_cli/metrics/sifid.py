"""SiFID, the single-image Frechet distance (Shaham et al. 2019, SinGAN, section 4.1).

FID compares two *sets* of images through one feature vector per image. SiFID compares two
*single* images through the distribution of the feature vectors at the spatial positions of a low
convolution layer: every position of the (D, H', W') feature map of an image is one sample in R^D,
a Gaussian N(mu, Sigma) is fitted to the H' W' samples of each image, and

    SiFID(x, x~) = ||mu - mu~||^2 + Tr(Sigma + Sigma~ - 2 (Sigma Sigma~)^(1/2))

(``gan_cli.metrics.frechet``: float64 statistics, the trace term through ``eigh``). The paper reports
it per generated sample against the training image, averaged over samples (``sifid_samples`` gives
the per-sample values). Low is better; 0 for identical images. Numbers are comparable only on the
same feature network (``features.identity`` names it).

Feature networks:

* ``FashionLowFeatures`` (default, offline): the shipped Fashion-MNIST CNN
  (gan_cli/metrics/feature_net.py) up to its first max pool: Conv 3x3 (32) + BatchNorm + ReLU +
  MaxPool 2, i.e. D = 32 features at H/2 x W/2, at the image's own size (no resizing: the
  convolutions do not need 28x28). RGB images are converted to grey by the mean of R, G and B,
  the conversion ``feature_net.prepare_images`` uses, since the network has one input channel.
* ``InceptionLowFeatures`` (when Inception-v3 weights are on disk): the paper's choice, the output
  of Inception-v3's first max-pooling layer (D = 64), from torch-fidelity's port of the TF
  Inception that FID uses, fed the image at its own size (the 299x299 resize of the full network is
  skipped, as in the paper's code, so that positions cover the same pixels in both images).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from gan_cli.metrics.feature_net import FashionCNN, feature_net_info, load_fashion_cnn
from gan_cli.metrics.frechet import FeatureStats, frechet_distance_stats

__all__ = ["FashionLowFeatures", "InceptionLowFeatures", "sifid", "sifid_samples", "spatial_features"]


class FashionLowFeatures(nn.Module):
    """The shipped Fashion-MNIST CNN's first block and max pool: (N, C, H, W) -> (N, 32, H/2, W/2).

    Args:
        net: the CNN (default: ``load_fashion_cnn()``, the shipped weights, in eval mode).

    Attributes:
        identity: names the features, e.g. ``fashion_cnn-<sha256[:12]>-pool1``.
    """

    def __init__(self, net: FashionCNN | None = None) -> None:
        super().__init__()
        if net is None:
            net = load_fashion_cnn()
            self.identity = f"fashion_cnn-{feature_net_info()['sha256'][:12]}-pool1"
        else:
            self.identity = "fashion_cnn-custom-pool1"
        self.layers = net.body[:4]  # Conv2d(1, 32, 3), BatchNorm2d, ReLU, MaxPool2d(2)
        self.eval().requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Feature maps of images in [-1, 1]; 3-channel images are averaged to grey first."""
        x = x.float()
        if x.shape[1] == 3:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] != 1:
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        return self.layers(x)


def inception_low_layers(net: nn.Module, x: Tensor) -> Tensor:
    """torch-fidelity's Inception stem up to ``MaxPool_1`` on images in [-1, 1], at their own size.

    The network's input convention is applied: uint8 RGB in [0, 255] (grey repeated; values rounded
    as ``inception.to_uint8_rgb``), then ``(v - 128) / 128``.

    Args:
        net: a module with ``Conv2d_1a_3x3``, ``Conv2d_2a_3x3``, ``Conv2d_2b_3x3`` and ``MaxPool_1``.
        x: images (N, 1 or 3, H, W), H and W at least 9.

    Returns:
        (N, 64, H', W') features.
    """
    from gan_cli.metrics.inception import to_uint8_rgb

    v = (to_uint8_rgb(x).float() - 128.0) / 128.0
    for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1"):
        v = getattr(net, name)(v)
    return v


class InceptionLowFeatures(nn.Module):
    """Inception-v3's first max-pool features (the paper's SiFID layer), from a weights file.

    Args:
        weights: the Inception weights file, or None for the torch hub cache
            (``inception.resolve_inception_weights``; raises ``MissingWeightsError`` when absent).
        allow_download: let the weights be downloaded into the hub cache when missing.
    """

    def __init__(self, weights: str | os.PathLike | None = None, allow_download: bool = False) -> None:
        super().__init__()
        from gan_cli.metrics.inception import InceptionFeatures, resolve_inception_weights

        path = resolve_inception_weights(weights, allow_download)
        full = InceptionFeatures(path)
        self.net = full.net
        self.identity = f"{full.identity.replace('inception2048', 'inception')}-pool1"

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        return inception_low_layers(self.net, x)


def _batched(image: Tensor) -> Tensor:
    if image.dim() == 3:
        return image[None]
    if image.dim() == 4:
        return image
    raise ValueError(f"expected an image (C, H, W) or images (N, C, H, W), got {tuple(image.shape)}")


def spatial_features(features: nn.Module, image: Tensor) -> Tensor:
    """One image's feature vectors, one per spatial position: (H' W', D).

    Args:
        features: maps (1, C, H, W) to (1, D, H', W').
        image: (C, H, W) or (1, C, H, W), in [-1, 1], on any device (moved to the network's).
    """
    x = _batched(image)
    if x.shape[0] != 1:
        raise ValueError(f"spatial_features takes one image, got {x.shape[0]}")
    device = next((p.device for p in features.parameters()), x.device)  # images go to the network
    f = features(x.to(device))
    return f[0].flatten(1).T  # (D, H'W') -> (H'W', D)


def sifid(real: Tensor, fake: Tensor, features: nn.Module | None = None) -> float:
    """The single-image Frechet distance between two images (the module docstring's formula).

    Args:
        real, fake: (C, H, W) or (1, C, H, W) in [-1, 1]; their sizes may differ.
        features: the feature network; default ``FashionLowFeatures()``.

    Returns:
        SiFID >= 0 (up to rounding), in squared feature units.
    """
    features = FashionLowFeatures() if features is None else features
    a = FeatureStats.of(spatial_features(features, real))
    b = FeatureStats.of(spatial_features(features, fake))
    return frechet_distance_stats(a, b)


def sifid_samples(real: Tensor, fakes: Tensor | Sequence[Tensor],
                  features: nn.Module | None = None) -> Tensor:
    """SiFID of every generated sample against the one real image (the paper averages these).

    Args:
        real: the training image, (C, H, W) or (1, C, H, W).
        fakes: samples (N, C, H, W), or a sequence of images of any sizes.
        features: the feature network; default ``FashionLowFeatures()``.

    Returns:
        float64 (N,): one value per sample.
    """
    features = FashionLowFeatures() if features is None else features
    ref = FeatureStats.of(spatial_features(features, real))
    values = [frechet_distance_stats(ref, FeatureStats.of(spatial_features(features, f))) for f in fakes]
    return torch.tensor(values, dtype=torch.float64)
