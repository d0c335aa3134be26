"""The Inception path (weights resolution, torchmetrics Inception, FID/IS/KID/PR end to end).

No real Inception weights exist on this machine, so the weights file used here is FABRICATED:
a randomly initialised state dict with the keys and shapes of torch-fidelity's
FeatureExtractorInceptionV3. The metric values it gives are meaningless; these tests only check
that the plumbing runs (file found, network built without any download, numbers finite).
"""

from __future__ import annotations

import math
import socket
from unittest import mock

import pytest
import torch

from gan_cli.errors import RuntimeFailure
from gan_cli.metrics import (
    MissingWeightsError,
    RealData,
    compute_metrics,
    hub_cache_path,
    inception_weights_filename,
    resolve_inception_weights,
)

tf_fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")


def _no_network(*args, **kwargs):
    raise AssertionError("a test tried to download something")


@pytest.fixture(scope="module")
def fabricated_weights(tmp_path_factory):
    """FABRICATED Inception weights (random init, right keys/shapes); meaningless numbers."""
    with mock.patch.object(tf_fe, "load_state_dict_from_url", lambda *a, **k: {}), mock.patch.object(
        tf_fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None
    ):
        net = tf_fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path_factory.mktemp("fabricated") / "FABRICATED-random-inception-weights.pth"
    torch.save(net.state_dict(), path)
    return path


def test_weights_file_name_matches_torch_fidelity():
    assert inception_weights_filename() == "weights-inception-2015-12-05-6726825d.pth"
    assert tf_fe.URL_INCEPTION_V3.endswith("/" + inception_weights_filename())


def test_missing_weights_fail_fast_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", _no_network)
    monkeypatch.setattr(tf_fe, "load_state_dict_from_url", _no_network)
    # fast = no connection tried at all (a timeout would be the slow path), checked, not timed
    connects = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: connects.append(addr))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, addr: connects.append(addr) or 111)
    with pytest.raises(MissingWeightsError) as err:
        resolve_inception_weights(tmp_path / "nope.pth", allow_download=False)
    msg = str(err.value)
    assert str(hub_cache_path()) in msg and inception_weights_filename() in msg and "nope.pth" in msg
    assert isinstance(err.value, RuntimeFailure) and err.value.exit_code == 1
    # through the registry: the error comes before any generator sample or torchmetrics object
    sampled, read = [], []
    real = RealData("toyimages", "test", lambda: read.append(1) or iter([torch.zeros(2, 1, 28, 28)]))
    with pytest.raises(MissingWeightsError):
        compute_metrics(["fid"], lambda n: sampled.append(n) or torch.zeros(n, 1, 28, 28), real)
    assert sampled == [] and read == []
    assert connects == []


def test_pickled_code_is_refused_before_torch_fidelity_loads_it(tmp_path):
    from gan_cli.metrics.inception import InceptionFeatures

    bad = tmp_path / "bad.pth"
    torch.save({"w": torch.zeros(1), "obj": mock.sentinel}, bad)  # not a plain tensor dict
    with pytest.raises(RuntimeFailure):
        InceptionFeatures(bad)


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    hub = hub_cache_path()
    assert hub == tmp_path / "hub" / "checkpoints" / inception_weights_filename()
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"placeholder")
    assert resolve_inception_weights(None) == hub
    assert resolve_inception_weights(tmp_path / "missing.pth") == hub
    configured = tmp_path / "configured.pth"
    configured.write_bytes(b"placeholder")
    assert resolve_inception_weights(configured) == configured


def _real_and_sampler(n_real):
    g = torch.Generator().manual_seed(0)
    real_x = torch.rand(n_real, 1, 28, 28, generator=g) * 2 - 1
    return RealData.from_tensor("toyimages", "test", real_x, batch_size=n_real), lambda n: torch.rand(n, 1, 28, 28) * 2 - 1


@pytest.mark.slow
def test_inception_end_to_end_explicit_path(tmp_path, monkeypatch, fabricated_weights):
    """fid, is, kid, pr on 3 generated + 3 real images, weights given explicitly (FABRICATED)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setattr(tf_fe, "load_state_dict_from_url", _no_network)
    real, sample = _real_and_sampler(n_real=3)
    opts = {
        "inception_weights": str(fabricated_weights), "num_fake": 3, "num_real": 3, "keep_features": 3,
        "batch_size": 3, "cache_dir": str(tmp_path / "cache"),
        "is": {"splits": 1}, "kid": {"subsets": 2, "subset_size": 3}, "pr": {"k": 1},
    }
    prov: dict = {}
    out = compute_metrics(["fid", "is", "kid", "pr"], sample, real, opts, provenance=prov)
    assert set(out) == {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall"}
    assert all(math.isfinite(v) for v in out.values())
    assert prov["fid"]["reference"]["split"] == "test" and prov["fid"]["reference"]["num_samples_used"] == 3
    assert prov["fid"]["reference"]["feature_net"].startswith("inception2048-")


@pytest.mark.slow
def test_inception_via_hub_cache_location(tmp_path, monkeypatch, fabricated_weights):
    """The FABRICATED file placed where torch hub would download it is found via TORCH_HOME."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(tf_fe, "load_state_dict_from_url", _no_network)
    hub = hub_cache_path()
    hub.parent.mkdir(parents=True)
    hub.symlink_to(fabricated_weights)
    from gan_cli.metrics import torchmetrics_fid

    fid = torchmetrics_fid()  # plain torchmetrics FrechetInceptionDistance on the resolved file
    assert not fid.inception.training
    # IS needs no real data and no 2048x2048 eigen-decomposition: the cheapest full pass
    out = compute_metrics(["is"], lambda n: torch.rand(n, 1, 28, 28) * 2 - 1, None,
                          {"num_fake": 2, "batch_size": 2, "is": {"splits": 1}})
    assert math.isfinite(out["is_mean"]) and out["is_mean"] >= 1.0 - 1e-9


class _Uint8Images(torch.utils.data.Dataset):
    """torch-fidelity's input: uint8 (3, H, W) images."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


@pytest.mark.slow
def test_fid_equals_torch_fidelity_on_the_same_images_and_weights(tmp_path, monkeypatch, fabricated_weights):
    """gan-cli's FID pipeline (uint8 quantisation, inception_resize=tf1, the network) gives
    torch-fidelity 0.4's features, and so its FID, on the same 48 + 48 RGB images with the same
    FABRICATED weights file. The fixture's default init shrinks the activations layer by layer to
    ~1e-7 (every FID ~1e-14); here every convolution and the FC layer get He init, which keeps
    their scale, so the features differ between images and the FID is far from 0. With 48 samples
    of 2048-d features, ~2000 eigenvalues of sigma1 sigma2 are rounding noise whose square roots add
    up differently in torch and numpy: the FIDs agree to 2% (measured 9.513 and 9.577); with more
    samples than dimensions the noise goes."""
    import torch_fidelity

    monkeypatch.setattr(tf_fe, "load_state_dict_from_url", _no_network)
    state = torch.load(fabricated_weights, weights_only=True)
    g = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if key.endswith("weight") and value.dim() in (2, 4):
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
    weights = tmp_path / "FABRICATED-he-init-inception-weights.pth"
    torch.save(state, weights)
    real_u8 = (torch.rand(48, 3, 32, 32, generator=g) * 256).to(torch.uint8)
    fake_u8 = (torch.rand(48, 3, 32, 32, generator=g) * 200).to(torch.uint8)  # darker: FID > 0
    to_float = lambda u: u.double().div(127.5).sub(1).float()  # noqa: E731 (what G would return)
    fake = to_float(fake_u8)
    real = RealData.from_tensor("toyrgb", "train", to_float(real_u8), batch_size=24)
    prov: dict = {}
    ours = compute_metrics(["fid"], lambda n: fake[:n], real, {
        "inception_weights": str(weights), "num_fake": 48, "num_real": 48,
        "keep_features": 48, "batch_size": 24, "cache_dir": str(tmp_path / "cache")}, provenance=prov)["fid"]
    theirs = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(fake_u8), input2=_Uint8Images(real_u8), fid=True, cuda=False,
        batch_size=24, verbose=False, cache=False, save_cpu_ram=True,  # save_cpu_ram: no workers
        feature_extractor_weights_path=str(weights))["frechet_inception_distance"]
    assert prov["fid"]["reference"]["resize"] == "bilinear-tf1"
    assert ours > 1.0, (ours, theirs)
    assert ours == pytest.approx(theirs, rel=2e-2, abs=0), (ours, theirs)
    # the pipelines themselves: the same features, and torchmetrics' antialiased resize gives others
    from gan_cli.metrics.inception import InceptionFeatures

    reference = tf_fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                  feature_extractor_weights_path=str(weights)).eval()
    with torch.no_grad():
        expected = reference(fake_u8[:8])[0]
    got = InceptionFeatures(weights, "tf1")(fake[:8])["features"]
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max()))
    other = InceptionFeatures(weights, "antialias")(fake[:8])["features"]
    assert not torch.allclose(other, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))
