"""metrics.split: in-training metrics against another split of the data (Lucic et al. 2018's
10,000 test images), checked at composition and built beside the training data."""

from __future__ import annotations

import pytest
import torch

from gan_cli.build import build_data, build_split
from gan_cli.config import validate
from gan_cli.errors import ConfigError
from gan_cli.metrics.tracker import TrainingMetrics
from gan_cli.models.infogan import Generator
from tests.conftest import needs_fashion_mnist
from tests.test_config import compose_cfg


def test_a_split_on_data_without_splits_is_a_configuration_error():
    cfg = compose_cfg(["tiny=toy", "metrics.split=test"])
    with pytest.raises(ConfigError, match="metrics.split=test: this dataset has no splits"):
        validate(cfg)
    validate(compose_cfg(["tiny=images", "metrics.split=test"]))  # Fashion-MNIST has them
    assert build_split(compose_cfg(["tiny=images"]).dataset, None, 0) is None


@needs_fashion_mnist
@pytest.mark.slow
def test_the_tracker_compares_with_the_test_split(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path / "cache"))
    cfg = compose_cfg(["tiny=images", "metrics.split=test", "metrics.names=[fd_fashion]",
                       "metrics.num_samples=200", "metrics.num_real=200"])
    validate(cfg)
    data = build_data(cfg.dataset, batch_size=8, device="cpu", seed=0)
    test = build_split(cfg.dataset, "test", 0)
    assert cfg.dataset.split == "train"  # the training data's config is left as it was
    G = Generator(z_dim=8, data_shape=data.info.shape)
    tracker = TrainingMetrics(cfg.metrics, data, G, 8, torch.device("cpu"), 0, tmp_path,
                              reference=test)
    assert tracker.real.split == "test"
    first = next(iter(tracker.real.batches()))
    torch.testing.assert_close(first, next(iter(test.real_batches(200))))
    assert not torch.equal(first, next(iter(data.real_batches(200))))
    record = tracker(1)
    assert record["fd_fashion"] > 0 and record["best/fd_fashion_step"] == 1
    # without a reference: the training data, as before
    plain = TrainingMetrics(compose_cfg(["tiny=images"]).metrics, data, G, 8,
                            torch.device("cpu"), 0, tmp_path)
    assert plain.real.split == "train"
