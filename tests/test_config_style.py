"""model=progan / stylegan / stylegan2: the option files compose to the papers' settings, impossible
values are configuration errors naming the key, and the composed nodes build the networks."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir

from gan_cli.build import build_network
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.errors import ConfigError


def compose_model(*overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.slow
def test_paper_settings():
    progan = compose_model("model=progan").model
    assert (progan.z_dim, progan.generator.channel_base, progan.generator.use_pixel_norm,
            progan.discriminator.mbstd_group_size) == (512, 16384, True, 4)
    g = compose_model("model=stylegan").model.generator
    assert (g.mapping_layers, g.mapping_lr_multiplier, g.mixing_prob, g.progressive) == (8, 0.01, 0.9, True)
    style = compose_model("model=stylegan").model
    assert style.discriminator._target_ == "gan_cli.models.progan.Discriminator"
    s2 = compose_model("model=stylegan2").model
    widths = (s2.generator.channel_base, s2.discriminator.channel_base)
    assert widths == (32768, 32768) and s2.generator.w_avg_beta == 0.995


@pytest.mark.parametrize("override,key", [
    (["model=stylegan2", "model.generator.mixing_prob=1.5"], "model.generator.mixing_prob"),
    (["model=stylegan", "model.generator.mixing_prob=1.5"], "model.generator.mixing_prob"),
    (["model=stylegan2", "model.discriminator.architecture=skip"], "model.discriminator.architecture"),
    (["model=stylegan", "model.generator.w_avg_beta=1.0"], "model.generator.w_avg_beta"),
    (["model=progan", "model.discriminator.mbstd_group_size=-1"], "model.discriminator.mbstd_group_size"),
    (["model=progan", "model.generator.start_resolution=1"], "model.generator.start_resolution"),
    (["model=stylegan2", "model.discriminator.channel_max=0"], "model.discriminator.channel_max"),
])
def test_impossible_values_name_the_key(override, key):
    cfg = compose_model(*override)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(cfg)


@pytest.mark.parametrize("option", ["progan", "stylegan", "stylegan2"])
def test_composed_nodes_build_28px_networks(option):
    small = ["model.z_dim=8", "model.generator.channel_base=64", "model.generator.channel_max=16",
             "model.discriminator.channel_base=64", "model.discriminator.channel_max=16"]
    if option != "progan":
        small += ["model.generator.w_dim=8", "model.generator.mapping_layers=2"]
    cfg = compose_model(f"model={option}", *small)
    validate(cfg)
    G = build_network(cfg.model.generator, "model.generator", z_dim=8, data_shape=(1, 28, 28), num_classes=10,
                      bounded=True)
    D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=(1, 28, 28), num_classes=10,
                      output="score")
    assert G.resolutions == [7, 14, 28] and G.num_classes == 0 and D.num_classes == 0
    assert D(G(torch.randn(4, 8))).shape == (4,)
