"""The shipped offline Fashion-MNIST feature network and the fd_fashion / cis_fashion metrics."""

from __future__ import annotations

import math

import pytest
import torch

from gan_cli.data.idx import DEBIAN_FASHION_MNIST, load_mnist_like
from gan_cli.metrics import RealData, compute_metrics
from gan_cli.metrics.feature_net import DEFAULT_WEIGHTS, FashionCNN, feature_net_info, load_fashion_cnn

needs_data = pytest.mark.skipif(
    not (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(), reason="Fashion-MNIST IDX files not installed"
)


@pytest.fixture(scope="module")
def test_split():
    x, y = load_mnist_like("test")
    return x[::20], y[::20]  # 500 images spread over the whole test split


def test_weights_are_small_plain_state_dict():
    assert DEFAULT_WEIGHTS.stat().st_size < 1_000_000
    state = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    assert set(state) == set(FashionCNN().state_dict())
    info = feature_net_info()
    for field in ("test_accuracy", "seed", "epochs", "train_seconds", "command", "sha256"):
        assert field in info


def test_loaded_net_is_in_eval_mode():
    net = load_fashion_cnn()
    assert not net.training and all(not m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert torch.equal(net(x), net(x))  # dropout off, batch-norm running statistics
    f, logits = net.features_and_logits(x)
    assert f.shape == (5, 128) and logits.shape == (5, 10)


def test_other_resolutions_and_channels_are_accepted():
    net = load_fashion_cnn()
    assert net.features(torch.zeros(2, 3, 32, 32)).shape == (2, 128)


@needs_data
def test_accuracy_close_to_recorded(test_split):
    x, y = test_split
    net = load_fashion_cnn()
    with torch.no_grad():
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(feature_net_info()["test_accuracy"], abs=0.03)


@needs_data
def test_fd_fashion_and_cis_fashion_with_cached_reference(tmp_path, test_split):
    x, _ = test_split
    passes = []

    def batches():
        passes.append(1)
        return iter(x[:300].split(100))

    real = RealData("fashion_mnist", "test", batches)
    opts = {"num_fake": 100, "num_real": 300, "keep_features": 300, "batch_size": 100, "cache_dir": str(tmp_path),
            "cis_fashion": {"splits": 2}, "pr": {"features": "fashion"}}
    # "generator" that returns real test images: small fd, high recall and precision
    prov: dict = {}
    out = compute_metrics(["fd_fashion", "cis_fashion", "pr"], lambda n: x[300:300 + n], real, opts, provenance=prov)
    assert set(out) == {"fd_fashion", "cis_fashion_mean", "cis_fashion_std", "precision_fashion", "recall_fashion"}
    assert all(math.isfinite(v) for v in out.values())
    noise = compute_metrics(["fd_fashion"], lambda n: torch.rand(n, 1, 28, 28) * 2 - 1, real, opts)
    assert noise["fd_fashion"] > 5 * out["fd_fashion"]
    assert out["cis_fashion_mean"] > 3  # a classifier sure of its classes on real clothes
    assert len(passes) == 1  # reference statistics computed once, then read from the cache
    assert prov["fd_fashion"]["reference"]["split"] == "test"
    assert prov["fd_fashion"]["reference"]["num_samples_used"] == 300
    compute_metrics(["fd_fashion"], lambda n: x[:n], real, {**opts, "num_real": 200})
    assert len(passes) == 2  # a different sample count is a different key
