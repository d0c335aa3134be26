"""Small offline feature networks for the 28x28 grey-scale (MNIST-like) datasets.

No Inception-v3 weights ship with any package here, so image metrics on MNIST-like data use a
small classifier instead, one per dataset family, named in :data:`OFFLINE_NETS` and trained by
``scripts/train_feature_net.py --net NAME``:

* ``fashion``: on the Fashion-MNIST training split (``fd_fashion``, ``cis_fashion``);
* ``mnist``: on 4,000 of the 5,000 real digits of ``mnist_5k`` (``fd_mnist``, ``cis_mnist``, and
  the digit classes that the ``modes`` metric counts).

``fd_<net>`` is the Frechet distance on its 128-d penultimate features (not "FID"), ``cis_<net>``
the classifier inception score from its softmax (not "IS"). They are comparable only with numbers
computed on the same weights file (its SHA-256 is recorded in the JSON beside it).

Input convention: images in [-1, 1], shape (N, 1, 28, 28). Three-channel images are averaged
to one channel; other resolutions are resized to 28x28 (bilinear, antialiased).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_cli.errors import RuntimeFailure

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "fashion_cnn.pt"
DEFAULT_INFO = WEIGHTS_DIR / "fashion_cnn.json"

INPUT_SIZE = 28


@dataclass(frozen=True)
class OfflineNet:
    """One shipped feature network: its files (``<stem>.pt``, ``<stem>.json`` in WEIGHTS_DIR) and
    what its training script needs to know (``flip``: random horizontal flips as augmentation)."""

    name: str
    stem: str
    trained_on: str
    flip: bool

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.pt"

    @property
    def info(self) -> Path:
        return WEIGHTS_DIR / f"{self.stem}.json"


#: The offline feature networks by name (metrics' ``features`` option, ``fd_<name>``, ...).
OFFLINE_NETS: dict[str, OfflineNet] = {
    "fashion": OfflineNet("fashion", "fashion_cnn", "Fashion-MNIST train (60,000)", flip=True),
    "mnist": OfflineNet("mnist", "mnist_cnn", "4,000 of the 5,000 MNIST digits of mnist_5k", flip=False),
}


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
    return load_offline_net("fashion", path, device)


def load_offline_net(name: str, path: str | Path | None = None,
                     device: str | torch.device = "cpu") -> FashionCNN:
    """The offline network ``name`` (OFFLINE_NETS) from its shipped weights or ``path``, loaded with
    ``weights_only=True``, in eval mode with gradients off."""
    path = Path(path) if path is not None else OFFLINE_NETS[name].weights
    if not path.is_file():
        raise RuntimeFailure(f"feature-network weights not found at {path}; run "
                             f"scripts/train_feature_net.py --net {name} to create them")
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = FashionCNN()
    net.load_state_dict(state)
    net.eval()
    net.requires_grad_(False)
    return net.to(device)


def feature_net_info(path: str | Path | None = None, name: str = "fashion") -> dict:
    """The JSON written beside the weights of ``name`` (accuracy, seed, epochs, command, sha256)."""
    path = Path(path) if path is not None else OFFLINE_NETS[name].info
    return json.loads(path.read_text())
