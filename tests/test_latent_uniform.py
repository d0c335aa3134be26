"""``model.generator.latent=uniform`` for every generator of a latent: G(z) is the normal-latent
G with the same weights fed 2 Phi(z) - 1 (gan_cli/latents.py's shape_latent, the one place)."""

from __future__ import annotations

import pytest
import torch

from gan_cli.build import build_generator
from gan_cli.config import validate
from gan_cli.data.base import DataInfo
from gan_cli.latents import LATENT_MAPS, shape_latent, uniform_latent
from tests.test_config import compose_cfg

# every model option whose generator draws a latent z (pix2pix takes an image, SinGAN noise maps)
MODELS = ["mlp", "dcgan", "cdcgan", "infogan", "resnet", "sngan", "sagan", "biggan", "progan",
          "stylegan", "stylegan2", "lapgan"]


def test_uniform_latent_by_hand():
    z = torch.tensor([[0.0, 1.0], [-1.0, 30.0]])
    # Phi(0) = 0.5 -> 0; Phi(1) = 0.8413447 -> 0.6826895; Phi(-1) -> -0.6826895; Phi(30) = 1 -> 1
    expected = torch.tensor([[0.0, 0.6826895], [-0.6826895, 1.0]])
    assert torch.allclose(uniform_latent(z), expected, atol=1e-6)


def test_the_schemas_names_are_the_maps():
    from gan_cli.config.model import LATENTS

    assert tuple(LATENT_MAPS) == LATENTS


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.slow
def test_every_generator_takes_the_uniform_latent(model):
    dataset = "ring8" if model == "mlp" else "mnist"
    cfg = compose_cfg([f"model={model}", f"dataset={dataset}", "model.generator.latent=uniform"])
    validate(cfg)
    info = DataInfo(shape=(2,) if model == "mlp" else (1, 28, 28),
                    num_classes=10 if model in ("cdcgan", "lapgan") else 0, bounded=model != "mlp")
    torch.manual_seed(0)
    G = build_generator(cfg.model, info).eval()
    cfg.model.generator.latent = "normal"
    plain = build_generator(cfg.model, info).eval()
    plain.load_state_dict(G.state_dict())
    z = torch.randn(4, G.z_dim) * 2
    y = torch.arange(4) % 10 if getattr(G, "num_classes", 0) else None
    with torch.no_grad():
        torch.manual_seed(1)  # the noise a StyleGAN G draws for itself
        out = G(z, y)
        torch.manual_seed(1)
        expected = plain(uniform_latent(z), y)
        torch.manual_seed(1)
        differs = plain(z, y)
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, differs, atol=1e-4)  # the map is really applied


def test_the_hook_leaves_the_state_dict_and_normal_alone():
    net = torch.nn.Linear(2, 1)
    keys = list(net.state_dict())
    assert shape_latent(net, "normal") is net and not net._forward_pre_hooks
    shape_latent(net, "uniform")
    assert list(net.state_dict()) == keys
    z = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(net(z), uniform_latent(z) @ net.weight.T + net.bias)
