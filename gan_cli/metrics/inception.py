"""The Inception-v3 path: find the weights without hanging, then FID / IS / KID / PR features.

The network is torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's
``FeatureExtractorInceptionV3``, the port of the TF FID Inception), always given an explicit
``feature_extractor_weights_path``: ``resolve_inception_weights`` is called first; it downloads a
missing file itself (checked against its SHA-256, written atomically) or raises
``MissingWeightsError``, before any torchmetrics object that would try to download is constructed.

The file is torch-fidelity's ``URL_INCEPTION_V3``, stored where ``torch.hub`` puts it:
``<torch.hub.get_dir()>/checkpoints/weights-inception-2015-12-05-6726825d.pth``
(``torch.hub.get_dir()`` is ``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``); that is the
second place looked at, after ``inception_weights=PATH``.

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
URL_ENV = "GAN_CLI_INCEPTION_URL"  # overrides the default URL (the test suite points it at 127.0.0.1)
DOWNLOAD_TIMEOUT_S = 30.0  # per socket operation: an offline machine fails fast, never hangs


class MissingWeightsError(RuntimeFailure):
    """The Inception weights file is not on disk and could not be downloaded (exit status 1)."""


def inception_weights_url(url: str | None = None) -> str:
    """``url``, else $GAN_CLI_INCEPTION_URL, else torch-fidelity's ``URL_INCEPTION_V3``."""
    if url:
        return url
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    except ImportError:  # torch-fidelity not installed: the same constant
        return _FALLBACK_URL
    return URL_INCEPTION_V3


def inception_weights_filename() -> str:
    """The file name the code loads from the hub cache: 'weights-inception-2015-12-05-6726825d.pth'
    (torch-fidelity's; pytorch-fid's pt_inception-*.pth is another file)."""
    return os.path.basename(urlparse(_FALLBACK_URL).path)


def hub_cache_path() -> Path:
    """Where torchmetrics/torch-fidelity would download the weights to (honours TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / inception_weights_filename()


def expected_digest(url: str, sha256: str | None = None) -> str | None:
    """``sha256`` (a hex prefix or the full digest), else the hash in the URL's file name by torch
    hub's convention (``-<sha256 prefix>.pth``, ``torch.hub.HASH_REGEX``: '6726825d'), else None."""
    if sha256:
        return sha256.lower()
    found = torch.hub.HASH_REGEX.search(os.path.basename(urlparse(url).path))
    return found.group(1) if found and found.group(1) else None


def download_weights(url: str, dst: Path, sha256: str | None = None,
                     timeout_s: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download ``url`` to ``dst``: torch hub's ``download_url_to_file`` (a ``.partial`` file in
    dst's folder, removed on any failure, renamed onto ``dst`` only after the SHA-256 matched).
    Raises MissingWeightsError when the download fails or no digest is known."""
    digest = expected_digest(url, sha256)
    if digest is None:
        raise MissingWeightsError(f"no SHA-256 to check {url} against: its file name carries none "
                                  "(torch hub's -<hash>.pth); set inception_sha256")
    dst.parent.mkdir(parents=True, exist_ok=True)
    import socket

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # urllib's urlopen inside torch hub takes no timeout
    try:
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=digest, progress=False)
    except Exception as exc:  # network failures and a wrong digest come in many types
        raise MissingWeightsError(f"could not download {url} ({exc}); download it elsewhere and "
                                  f"put it at {dst}, or pass inception_weights=PATH") from exc
    finally:
        socket.setdefaulttimeout(old)
    return dst


def resolve_inception_weights(path: str | os.PathLike | None = None, allow_download: bool = True,
                              url: str | None = None, sha256: str | None = None) -> Path:
    """Return the Inception weights file: ``path`` if it exists, else the torch hub cache file;
    with neither, download ``inception_weights_url(url)`` into the hub cache (checked against
    ``expected_digest(url, sha256)``) when ``allow_download``, else raise ``MissingWeightsError``
    with one message saying where to put the file."""
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
    url = inception_weights_url(url)
    if allow_download:
        try:
            return download_weights(url, hub, sha256)
        except MissingWeightsError as exc:
            raise MissingWeightsError(f"Inception-v3 weights for FID/IS/KID not found (looked at: "
                                      f"{', '.join(tried)}); {exc}") from exc.__cause__
    raise MissingWeightsError(
        f"Inception-v3 weights for FID/IS/KID not found (looked at: {', '.join(tried)}); download "
        f"{url} and put it at {hub} (the torch hub cache; set TORCH_HOME to move it), or pass "
        "inception_weights=PATH, or let gan-cli download it (allow_download=true). fd_fashion and "
        "cis_fashion use the shipped offline network and need no download."
    )


OPTION_KEYS = ("inception_weights", "allow_download", "inception_url", "inception_sha256", "inception_resize")


def weights_from_options(opts: dict) -> Path:
    """``resolve_inception_weights`` with a metric's options (inception_weights, allow_download,
    inception_url, inception_sha256)."""
    return resolve_inception_weights(opts.get("inception_weights"), bool(opts.get("allow_download", True)),
                                     opts.get("inception_url"), opts.get("inception_sha256"))


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


RESIZES = {"tf1": False, "antialias": True}  # inception_resize -> torchmetrics' antialias flag


class InceptionFeatures(nn.Module):
    """torchmetrics' Inception (always in eval mode) returning pool features and class probs.

    ``resize`` to 299x299: "tf1", torch-fidelity's TF1-compatible bilinear resize (the original
    FID code's: FIDs comparable with torch-fidelity's and published ones), or "antialias",
    torchmetrics' default (bilinear with antialiasing; Parmar et al. 2022 on why they differ).
    """

    def __init__(self, weights_path: str | os.PathLike, resize: str = "tf1") -> None:
        super().__init__()
        _require_torch_fidelity()
        from torchmetrics.image.fid import NoTrainInceptionV3

        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {sorted(RESIZES)}, got {resize!r}")
        self.weights_path = Path(weights_path)
        check_plain_state_dict(self.weights_path)
        self.net = NoTrainInceptionV3(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(self.weights_path),
            antialias=RESIZES[resize],
        )
        self.resize = "bilinear-antialias" if RESIZES[resize] else "bilinear-tf1"
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


def torchmetrics_fid(weights: str | os.PathLike | None = None, allow_download: bool = True, **kwargs):
    """A ready torchmetrics ``FrechetInceptionDistance`` (feature=2048) on resolved weights, for
    callers who want the plain torchmetrics object (update with uint8 images, see ``to_uint8_rgb``)."""
    path = resolve_inception_weights(weights, allow_download)
    _require_torch_fidelity()
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(path), **kwargs)
