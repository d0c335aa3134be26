"""The stabilised architectures: spectral norm, the ResNet family (resnet, sngan, sagan, biggan),
conditional batch norm, the projection discriminator and self-attention."""

from __future__ import annotations

import io

import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn

from gan_cli.build import build_network
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.models.layers import (
    ConditionalBatchNorm2d,
    SelfAttention2d,
    apply_spectral_norm,
    spectral_norm_layers,
)
from gan_cli.models.resnet import DBlock, Discriminator, GBlock, Generator

RESNETS = ("resnet", "sngan", "sagan", "biggan")
RESOLUTIONS = (28, 32, 64, 128)


def model_cfg(name: str, overrides: list[str] = ()):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={name}", *overrides])
    validate(cfg)
    return cfg.model


def build_pair(name: str, shape: tuple, num_classes: int, width: int = 16, extra: list[str] = ()):
    m = model_cfg(name, [f"model.generator.width={width}", f"model.discriminator.width={width}",
                         *extra])
    G = build_network(m.generator, "model.generator", z_dim=m.z_dim, data_shape=shape,
                      num_classes=num_classes, bounded=True)
    D = build_network(m.discriminator, "model.discriminator", data_shape=shape,
                      num_classes=num_classes, output="score")
    return m, G, D


def sigma_max(layer: nn.Module) -> float:
    w = layer.weight  # the normalised weight (the parametrization's output)
    if isinstance(layer, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item()


# ---------------------------------------------------------------------------------------------
# Spectral norm


@pytest.mark.parametrize("model", ["dcgan", "mlp", "sngan", "biggan"])
@pytest.mark.slow
def test_spectral_norm_makes_every_weight_1_lipschitz(model):
    """After a few training-mode forwards (one power iteration each), sigma_max(W / sigma) ~ 1."""
    torch.manual_seed(0)
    shape = (2,) if model == "mlp" else (1, 16, 16)
    extra = [] if model in ("sngan", "biggan") else ["model.discriminator.spectral_norm=true",
                                                       "model.generator.spectral_norm=true"]
    if model in ("dcgan", "mlp"):
        m = model_cfg(model, extra)
        G = build_network(m.generator, "g", z_dim=m.z_dim, data_shape=shape, num_classes=0, bounded=True)
        D = build_network(m.discriminator, "d", data_shape=shape, num_classes=0, output="score")
    else:
        m, G, D = build_pair(model, shape, 0)
    layers = spectral_norm_layers(D)
    kinds = {type(x) for x in D.modules() if isinstance(x, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d))}
    assert layers and all(any(isinstance(x, k) for x in layers) for k in kinds)  # every weight kind
    for _ in range(100):  # one power iteration per training-mode forward
        D(torch.randn(8, *shape))
        G(torch.randn(8, m.z_dim))
    D.eval(), G.eval()
    for net in (G, D):
        for layer in spectral_norm_layers(net):
            assert sigma_max(layer) == pytest.approx(1.0, abs=1e-2), layer
    if model == "sngan":  # SNGAN: D only
        assert not spectral_norm_layers(G)


def test_spectral_norm_state_survives_save_and_load():
    torch.manual_seed(0)
    _, _, D = build_pair("sngan", (3, 32, 32), 10)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for _ in range(3):
        D(x, y)
    buf = io.BytesIO()
    torch.save(D.state_dict(), buf)
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    assert any(k.endswith("parametrizations.weight.original") for k in state)
    assert any(k.endswith("_u") for k in state) and any(k.endswith("_v") for k in state)
    torch.manual_seed(1)  # a different start for the fresh model's u, v
    _, _, D2 = build_pair("sngan", (3, 32, 32), 10)
    D2.load_state_dict(state)
    D.eval(), D2.eval()
    assert torch.equal(D(x, y), D2(x, y))  # same u, v: the same normalised weights
    D.train(), D2.train()
    assert torch.equal(D(x, y), D2(x, y))  # and the same next power iteration


def test_spectral_norm_skips_exempt_tables_and_is_idempotent():
    G = Generator(z_dim=16, data_shape=(3, 32, 32), num_classes=10, width=16,
                  shared_embedding_dim=8, hierarchical_z=True)
    apply_spectral_norm(G)
    n = len(spectral_norm_layers(G))
    apply_spectral_norm(G)
    assert len(spectral_norm_layers(G)) == n
    assert G.shared not in spectral_norm_layers(G)  # BigGAN's shared embedding is not normalised
    assert G.input in spectral_norm_layers(G)


# ---------------------------------------------------------------------------------------------
# The ResNet family: shapes, at every resolution, conditional and not


@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("name", RESNETS)
@pytest.mark.parametrize("num_classes", [0, 10])
@pytest.mark.slow
def test_resnet_models_at_every_resolution(name, res, num_classes):
    torch.manual_seed(0)
    channels = 1 if res == 28 else 3
    shape = (channels, res, res)
    m, G, D = build_pair(name, shape, num_classes, width=8 if res == 128 else 16)
    conditional = num_classes > 0 and name != "resnet"  # model=resnet is unconditional
    assert G.num_classes == D.num_classes == (num_classes if conditional else 0)
    z = torch.randn(3, m.z_dim)
    y = torch.tensor([0, 1, 2]) if conditional else None
    x = G(z, y)
    assert x.shape == (3, *shape)
    assert x.abs().max() <= 1  # tanh: the data are bounded
    assert D(x, y).shape == (3,)
    # the architecture: residual up-blocks in G, down-blocks in D, attention where the preset says
    assert sum(isinstance(b, GBlock) for b in G.modules()) == {28: 2, 32: 3, 64: 4, 128: 5}[res]
    assert isinstance(D.blocks[0], DBlock) and D.blocks[0].first
    has_attention = name in ("sagan", "biggan")
    assert any(isinstance(b, SelfAttention2d) for b in G.modules()) == has_attention
    assert any(isinstance(b, SelfAttention2d) for b in D.modules()) == has_attention
    if has_attention:
        assert G.attention_side == D.attention_side == res // 2
    if name == "biggan":
        assert len(G.z_chunks) == G.blocks.__len__() + 1 and sum(G.z_chunks) == m.z_dim
        assert (G.shared is not None) == conditional


def test_discriminator_layout_follows_sngan_on_cifar():
    """32 px: optimised block 32->16, a block 16->8, two more at 8; sum pooling; linear head."""
    D = Discriminator(data_shape=(3, 32, 32), width=128)
    assert [b.downsample for b in D.blocks] == [True, True, False, False]
    assert [b.conv1.out_channels for b in D.blocks] == [128] * 4
    G = Generator(z_dim=128, data_shape=(3, 32, 32), width=256)
    assert G.input.out_features == 256 * 4 * 4
    assert [b.conv1.out_channels for b in G.blocks] == [256] * 3


def test_channel_multipliers_and_their_errors():
    G = Generator(z_dim=16, data_shape=(3, 64, 64), width=8, channel_multipliers=[16, 8, 4, 2, 1])
    assert [b.conv2.out_channels for b in G.blocks] == [64, 32, 16, 8]
    with pytest.raises(ValueError, match="5 positive integers"):
        Generator(z_dim=16, data_shape=(3, 64, 64), width=8, channel_multipliers=[4, 2, 1])
    with pytest.raises(ValueError, match=r"choose one of \[8, 16, 32, 64\]"):
        Generator(z_dim=16, data_shape=(3, 64, 64), width=8, attention=True, attention_resolution=12)
    with pytest.raises(ValueError, match="BEGAN"):
        Discriminator(data_shape=(3, 32, 32), output="reconstruction")
    with pytest.raises(ValueError, match="labelled"):
        Generator(z_dim=16, data_shape=(3, 32, 32), conditional=True)


# ---------------------------------------------------------------------------------------------
# Conditioning: conditional BN, the shared embedding, the projection discriminator


def test_conditional_batch_norm_depends_on_the_label():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, num_classes=3)
    with torch.no_grad():
        cbn.gain.weight.copy_(torch.tensor([[1.0] * 4, [2.0] * 4, [3.0] * 4]))
        cbn.bias.weight.copy_(torch.tensor([[0.0] * 4, [1.0] * 4, [-1.0] * 4]))
    x = torch.randn(6, 4, 5, 5)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    normed = nn.functional.batch_norm(x, None, None, training=True)
    out = cbn(x, y)
    gain = torch.tensor([1.0, 2.0, 3.0])[y][:, None, None, None]
    bias = torch.tensor([0.0, 1.0, -1.0])[y][:, None, None, None]
    torch.testing.assert_close(out, normed * gain + bias)


@pytest.mark.parametrize("name", ["sngan", "biggan"])
def test_changing_the_label_changes_the_generated_image(name):
    torch.manual_seed(0)
    m, G, _ = build_pair(name, (3, 32, 32), 10)
    # Move the class-dependent parameters away from their neutral start (gain 1, bias 0 tables)
    with torch.no_grad():
        for mod in G.modules():
            if isinstance(mod, ConditionalBatchNorm2d) and mod.mode == "class":
                mod.gain.weight.normal_(1.0, 0.5)
                mod.bias.weight.normal_(0.0, 0.5)
    G.eval()
    z = torch.randn(1, m.z_dim).repeat(2, 1)
    x = G(z, torch.tensor([3, 7]))
    assert not torch.allclose(x[0], x[1], atol=1e-4)
    torch.testing.assert_close(G(z, torch.tensor([3, 3]))[1], x[0])  # same label, same image


def test_projection_term_is_the_inner_product_of_embedding_and_features():
    torch.manual_seed(0)
    D = Discriminator(data_shape=(3, 32, 32), num_classes=10, width=16, conditioning="projection")
    x, y = torch.randn(5, 3, 32, 32), torch.tensor([0, 3, 3, 9, 1])
    h = D.features(x)
    expected = D.head(h).flatten() + (D.embed.weight[y] * h).sum(dim=1)
    torch.testing.assert_close(D(x, y), expected)
    # the label enters only through that term: the difference between two labels is <e_a - e_b, h>
    y2 = torch.tensor([1, 3, 4, 9, 2])
    diff = D(x, y) - D(x, y2)
    torch.testing.assert_close(diff, ((D.embed.weight[y] - D.embed.weight[y2]) * h).sum(dim=1))
    assert not torch.allclose(diff[[0, 2, 4]], torch.zeros(3))


def test_self_attention_starts_as_the_identity_and_mixes_positions_when_gamma_moves():
    torch.manual_seed(0)
    attn = SelfAttention2d(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attn(x), x)  # gamma = 0
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    x2 = x.clone()
    x2[:, :, 0, 0] += 5.0  # one position changes ...
    delta = (attn(x2) - attn(x) - (x2 - x)).abs().sum(dim=1)
    assert delta[:, 7, 7].min() > 0  # ... and a far position's output moves with it


@pytest.mark.slow
def test_gradient_penalty_double_backward_through_attention_and_spectral_norm():
    torch.manual_seed(0)
    _, _, D = build_pair("sagan", (3, 32, 32), 0)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty.backward()
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad and p.dim() > 1)
