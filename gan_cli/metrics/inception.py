"""The Inception-v3 path: find the weights without hanging, then FID / IS / KID / PR features.

The network is torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's
``FeatureExtractorInceptionV3``, the port of the TF FID Inception), always given an explicit
``feature_extractor_weights_path``: ``resolve_inception_weights`` is called first and raises
``MissingWeightsError`` when the file is absent and downloading is not allowed, before any
torchmetrics object that would try to download is constructed.

torch-fidelity downloads ``URL_INCEPTION_V3`` with ``torch.hub.load_state_dict_from_url``, which
stores it as ``<torch.hub.get_dir()>/checkpoints/weights-inception-2015-12-05-6726825d.pth``
(``torch.hub.get_dir()`` is ``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``); that is the
second place looked at.

One forward pass gives both the 2048-d pool features (FID, KID, PR) and the 1008 unbiased
logits (IS, softmax as in torchmetrics' ``InceptionScore``); this calls the module's
``_torch_fidelity_forward`` (torchmetrics 1.9), the method its own ``forward`` wraps, because
``forward`` returns only the first requested feature. The FID value itself is torchmetrics'
``_compute_fid`` applied to our float64 statistics.

torch-fidelity loads the weights file with ``torch.load(weights_only=False)``, which can run
code from a malicious pickle; ``InceptionFeatures`` therefore first opens the file itself with
``weights_only=True`` (memory-mapped where the format allows) and refuses anything that is not a
plain tensor state dict.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from gan_cli.errors import RuntimeFailure

# The URL torch-fidelity 0.4 uses (its URL_INCEPTION_V3); read from the package when installed.
_FALLBACK_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"


class MissingWeightsError(RuntimeFailure):
    """The Inception weights file is not on disk and downloading is not allowed (exit status 1)."""


def inception_weights_url() -> str:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    except ImportError:  # torch-fidelity not installed: the same constant
        return _FALLBACK_URL
    return URL_INCEPTION_V3


def inception_weights_filename() -> str:
    """The file name torch hub stores the download under: 'weights-inception-2015-12-05-6726825d.pth'."""
    return os.path.basename(urlparse(inception_weights_url()).path)


def hub_cache_path() -> Path:
    """Where torchmetrics/torch-fidelity would download the weights to (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / inception_weights_filename()


def resolve_inception_weights(path: str | os.PathLike | None = None, allow_download: bool = False) -> Path:
    """Return the Inception weights file: ``path`` if it exists, else the torch hub cache file;
    with neither, download into the hub cache when ``allow_download``, else raise
    ``MissingWeightsError`` with one message saying where to put the file."""
    tried = []
    if path is not None:
        p = Path(path).expanduser()
        if p.is_file():
            return p
        tried.append(str(p))
    hub = hub_cache_path()
    if hub.is_file():
        return hub
    tried.append(str(hub))
    if allow_download:
        hub.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(inception_weights_url(), str(hub), progress=False)
        except Exception as exc:  # network failures come in many types
            raise MissingWeightsError(
                f"could not download the Inception weights from {inception_weights_url()} ({exc}); "
                f"put the file at {hub} instead"
            ) from exc
        return hub
    raise MissingWeightsError(
        f"Inception-v3 weights for FID/IS/KID not found (looked at: {', '.join(tried)}); download "
        f"{inception_weights_url()} on a machine with network access and put it at {hub} "
        "(the torch hub cache; set TORCH_HOME to move it) or pass its path as the Inception weights "
        "option. fd_fashion and cis_fashion use the shipped offline network and need no download."
    )


def _require_torch_fidelity() -> None:
    from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE

    if not _TORCH_FIDELITY_AVAILABLE:
        raise RuntimeFailure("the Inception metrics need torch-fidelity: pip install torch-fidelity")


def to_uint8_rgb(x: Tensor) -> Tensor:
    """Images in [-1, 1] (N, 1 or 3, H, W) -> uint8 RGB in [0, 255], as the Inception expects."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(x.shape)}")
    u = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return u.expand(-1, 3, -1, -1) if u.shape[1] == 1 else u


def file_digest(path: str | os.PathLike, n: int = 12) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def check_plain_state_dict(path: Path) -> None:
    """Raise RuntimeFailure unless ``path`` loads with ``weights_only=True`` as a dict of tensors."""
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # legacy (non-zip) serialisation cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeFailure(f"{path} is not a loadable plain state dict ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise RuntimeFailure(f"{path} does not hold a state dict of tensors")


class InceptionFeatures(nn.Module):
    """torchmetrics' Inception (always in eval mode) returning pool features and class probs.

    ``antialias=True`` is torchmetrics' default resize to 299 (bilinear with antialiasing);
    ``False`` is torch-fidelity's TF1-compatible bilinear resize (the original FID code's).
    """

    def __init__(self, weights_path: str | os.PathLike, antialias: bool = True) -> None:
        super().__init__()
        _require_torch_fidelity()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.weights_path = Path(weights_path)
        check_plain_state_dict(self.weights_path)
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(self.weights_path),
            antialias=antialias,
        )
        self.resize = "bilinear-antialias" if antialias else "bilinear-tf1"
        self.identity = f"inception2048-{file_digest(self.weights_path)}"

    @torch.no_grad()
    def forward(self, x: Tensor) -> dict[str, Tensor]:
        pool, logits = self.net._torch_fidelity_forward(to_uint8_rgb(x))
        return {"features": pool.float(), "probs": logits.double().softmax(1)}


def fid_from_stats(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """torchmetrics' FID formula (``torchmetrics.image.fid._compute_fid``) in float64."""
    from torchmetrics.image.fid import _compute_fid

    args = [torch.as_tensor(t, dtype=torch.float64) for t in (mu1, sigma1, mu2, sigma2)]
    return float(_compute_fid(*args))


def torchmetrics_fid(weights: str | os.PathLike | None = None, allow_download: bool = False, **kwargs):
    """A ready torchmetrics ``FrechetInceptionDistance`` (feature=2048) on resolved weights, for
    callers who want the plain torchmetrics object (update with uint8 images, see ``to_uint8_rgb``)."""
    path = resolve_inception_weights(weights, allow_download)
    _require_torch_fidelity()
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path), **kwargs)
