"""The pix2pix presets compose, validate and build: model=pix2pix with the paired datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

import gan_cli
from gan_cli.config import register_configs, validate
from gan_cli.data.idx import DEBIAN_FASHION_MNIST
from gan_cli.errors import ConfigError
from gan_cli.losses import L1Reconstruction
from gan_cli.models.pix2pix import PatchDiscriminator, UNetGenerator

CONF_DIR = Path(gan_cli.__file__).parent / "conf"


def compose_cfg(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def build(node, **runtime):
    """A network from its config node, as the loop builds it (spectral_norm is the loop's key)."""
    spec = OmegaConf.to_container(node, resolve=True)
    spec.pop("spectral_norm", None)
    return instantiate(spec, **runtime)


def test_model_pix2pix_defaults_are_the_papers():
    cfg = compose_cfg(["model=pix2pix", "dataset=fashion_edges"])
    validate(cfg)
    m = cfg.model
    assert m.generator.dropout == 0.5 and m.generator.dropout_blocks == 3 and m.generator.dropout_at_eval
    assert m.discriminator.receptive_field == 70 and m.regularizers.l1.weight == 100.0
    assert cfg.dataset.task == "edges" and cfg.dataset.resolution == 32
    assert compose_cfg(["dataset=fashion_silhouette"]).dataset.task == "silhouette"


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is absent")
def test_pix2pix_builds_on_fashion_edges():
    cfg = compose_cfg(["model=pix2pix", "dataset=fashion_edges", "dataset.split=test", "dataset.limit=16",
                       "model.generator.width=4", "model.discriminator.width=4",
                       "model.discriminator.receptive_field=34"])
    validate(cfg)
    data = instantiate(cfg.dataset, batch_size=4, device="cpu", seed=0, rank=0, world_size=1)
    info = data.info
    G = build(cfg.model.generator, z_dim=cfg.model.z_dim, data_shape=info.shape,
              num_classes=info.num_classes, bounded=info.bounded, input_channels=info.input_shape[0])
    D = build(cfg.model.discriminator, data_shape=info.shape, num_classes=info.num_classes,
              output="score", input_channels=info.input_shape[0])
    assert isinstance(G, UNetGenerator) and isinstance(D, PatchDiscriminator)
    assert G.num_classes == D.num_classes == 0
    batch = data.next()
    fake = G(torch.randn(4, cfg.model.z_dim), batch.y)
    assert fake.shape == batch.x.shape == (4, 1, 32, 32)
    assert D(fake, batch.y).shape == (4 * D.patches,)
    l1 = instantiate(cfg.model.regularizers.l1)
    assert isinstance(l1, L1Reconstruction) and l1.weight == 100.0


def test_paired_folder_needs_a_path_and_builds(tmp_path):
    Image.fromarray(np.zeros((8, 16, 3), dtype=np.uint8)).save(tmp_path / "0.png")
    cfg = compose_cfg(["dataset=paired_folder"])
    assert OmegaConf.is_missing(cfg.dataset, "path")
    with pytest.raises(ConfigError, match="dataset.path"):
        validate(cfg)
    cfg = compose_cfg(["dataset=paired_folder", f"dataset.path={tmp_path}", "dataset.resolution=8"])
    validate(cfg)
    data = instantiate(cfg.dataset, batch_size=1, device="cpu", seed=0, rank=0, world_size=1)
    assert data.info.shape == data.info.input_shape == (3, 8, 8)


@pytest.mark.parametrize(("override", "key"), [
    ("model.discriminator.receptive_field=69", "model.discriminator.receptive_field"),
    ("model.generator.norm=layer", "model.generator.norm"),
    ("model.generator.dropout=1.0", "model.generator.dropout"),
    ("model.generator.num_downs=1", "model.generator.num_downs"),
    ("model.regularizers.l1.weight=-1", "model.regularizers.l1.weight"),
    ("dataset.task=canny", "dataset.task"),
    ("dataset.resolution=16", "dataset.resolution"),
])
def test_impossible_values_name_the_key(override, key):
    cfg = compose_cfg(["model=pix2pix", "dataset=fashion_edges", override])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)
