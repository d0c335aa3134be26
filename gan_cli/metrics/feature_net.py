"""A small offline feature network for the 28x28 grey-scale (MNIST-like) datasets.

No Inception-v3 weights ship with any package here, so image metrics on Fashion-MNIST-like
data use this classifier instead, trained by ``scripts/train_feature_net.py`` on the real
Fashion-MNIST training split. Numbers computed on it are named for what they are:

* ``fd_fashion``  - Frechet distance on its 128-d penultimate features (not "FID");
* ``cis_fashion`` - classifier inception score from its softmax (not "IS").

They are comparable only with numbers computed on the same weights file (its SHA-256 is
recorded in the JSON beside it).

Input convention: images in [-1, 1], shape (N, 1, 28, 28). Three-channel images are averaged
to one channel; other resolutions are resized to 28x28 (bilinear, antialiased).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.errors import RuntimeFailure

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "fashion_cnn.pt"
DEFAULT_INFO = WEIGHTS_DIR / "fashion_cnn.json"

INPUT_SIZE = 28


def prepare_images(x: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """Bring images in [-1, 1] of shape (N, C, H, W) to (N, 1, size, size) float32."""
    if x.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(x.shape)}")
    x = x.float()
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


class FashionCNN(nn.Module):
    """Three conv blocks -> 128-d feature layer -> 10 logits (about 131k parameters, ~0.5 MB)."""

    def __init__(self, num_classes: int = 10, feature_dim: int = 128) -> None:
        super().__init__()
        self.num_features = feature_dim  # read by torchmetrics when used as a `feature` module

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        self.body = nn.Sequential(
            *block(1, 32), nn.MaxPool2d(2),  # 14x14
            *block(32, 64), nn.MaxPool2d(2),  # 7x7
            *block(64, 64), nn.AdaptiveAvgPool2d(3),  # 3x3
            nn.Flatten(),
            nn.Linear(64 * 9, feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (N, 128) of images in [-1, 1]."""
        return self.body(prepare_images(x))

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f = self.features(x)
        return f, self.head(self.dropout(f))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, 10)."""
        return self.features_and_logits(x)[1]


def load_fashion_cnn(path: str | Path | None = None, device: str | torch.device = "cpu") -> FashionCNN:
    """Load the shipped (or a given) state dict with ``weights_only=True``; returns the net in eval mode,
    with gradients off."""
    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    if not path.is_file():
        raise RuntimeFailure(
            f"feature-network weights not found at {path}; run scripts/train_feature_net.py to create them"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = FashionCNN()
    net.load_state_dict(state)
    net.eval()
    net.requires_grad_(False)
    return net.to(device)


def feature_net_info(path: str | Path | None = None) -> dict:
    """The JSON written beside the weights (accuracy, seed, epochs, command, sha256)."""
    path = Path(path) if path is not None else DEFAULT_INFO
    return json.loads(path.read_text())
