"""model=infogan (gan_cli/models/infogan.py): Lucic et al. 2018's InfoGAN G and D, shaped by the
data, and its D without batch normalisation under a per-sample gradient penalty."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_cli.build import build_network, build_pair
from gan_cli.data.base import DataInfo
from gan_cli.models.infogan import Discriminator, Generator
from gan_cli.models.layers import spectral_norm_layers
from tests.test_config import assert_refused, compose_cfg

torch.set_num_threads(1)
SHAPES = [(1, 28, 28), (3, 28, 28), (3, 32, 32)]


def _batchnorms(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_generator_and_discriminator_shapes_follow_the_data(shape):
    torch.manual_seed(0)
    c, h, w = shape
    G = Generator(z_dim=64, data_shape=shape, num_classes=10, bounded=True)
    x = G(torch.randn(5, 64), torch.arange(5))  # labels are accepted and ignored
    assert x.shape == (5, c, h, w)
    assert x.abs().max() <= 1  # tanh for bounded data
    assert G.num_classes == 0
    # the paper's layers: FC 1024, FC 128 x H/4 x W/4, deconv to 64, deconv to C
    linears = [m for m in G.modules() if isinstance(m, nn.Linear)]
    deconvs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_features for m in linears] == [1024, 128 * (h // 4) * (w // 4)]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in deconvs] == [
        (64, (4, 4), (2, 2)), (c, (4, 4), (2, 2))]
    assert len(_batchnorms(G)) == 3 and isinstance(G.net[-1], nn.Tanh)

    D = Discriminator(data_shape=shape)
    assert D(x).shape == (5,)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride) for m in convs] == [
        (c, 64, (4, 4), (2, 2)), (64, 128, (4, 4), (2, 2))]
    assert [m.out_features for m in D.modules() if isinstance(m, nn.Linear)] == [1024, 1]
    assert [m.negative_slope for m in D.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 3
    assert len(_batchnorms(D)) == 2  # after the second convolution and the FC layer

    rec = Discriminator(data_shape=shape, output="reconstruction")  # BEGAN's autoencoder
    assert rec(x).shape == (5, c, h, w)
    assert Discriminator(data_shape=shape, output="features")(x).shape == (5, 1024)
    assert Discriminator(data_shape=shape, output="features", feature_dim=16)(x).shape == (5, 16)


def test_unbounded_data_get_a_linear_output_and_widths_are_options():
    G = Generator(z_dim=8, data_shape=(2, 12, 16), bounded=False, width=4, hidden=32)
    assert not any(isinstance(m, nn.Tanh) for m in G.modules())
    x = G(torch.randn(3, 8))
    assert x.shape == (3, 2, 12, 16)  # non-square, any multiple of 4
    D = Discriminator(data_shape=(2, 12, 16), width=4, hidden=32)
    assert D(x).shape == (3,)


@pytest.mark.parametrize("shape", [(1, 30, 30), (1, 28, 26), (2,), (0, 28, 28)])
def test_shapes_it_cannot_build_are_refused_with_what_it_supports(shape):
    with pytest.raises(ValueError, match="multiples of 4"):
        Generator(z_dim=8, data_shape=shape)
    with pytest.raises(ValueError, match="multiples of 4"):
        Discriminator(data_shape=shape)


def test_bad_options_are_refused():
    assert_refused(["model=infogan", "model.discriminator.norm=instance"], r"model\.discriminator\.norm")
    assert_refused(["model=infogan", "model.discriminator.penalty_norm=batch"],
                   r"model\.discriminator\.penalty_norm")
    with pytest.raises(ValueError, match="output"):
        Discriminator(data_shape=(1, 28, 28), output="logits")
    with pytest.raises(ValueError, match="feature_dim"):
        Discriminator(data_shape=(1, 28, 28), feature_dim=8)


def _pair(*overrides: str, shape=(1, 28, 28)):
    cfg = compose_cfg(["model=infogan", "model.generator.width=8", "model.generator.hidden=32",
                       "model.discriminator.width=8", "model.discriminator.hidden=32", *overrides])
    return build_pair(cfg, DataInfo(shape=shape, num_classes=10, bounded=True),
                      torch.device("cpu"), 8)


@pytest.mark.parametrize("loss", ["wgan_gp", "dragan", "ns_r1"])
def test_a_per_sample_gradient_penalty_gets_a_discriminator_without_batch_norm(loss):
    D = _pair(f"loss={loss}").D
    assert not _batchnorms(D)
    # Lucic et al. drop it (penalty_norm: none) rather than swap in layer norm
    assert not any(isinstance(m, (nn.GroupNorm, nn.LayerNorm)) for m in D.modules())
    D.train()
    x = torch.randn(6, 1, 28, 28)
    torch.testing.assert_close(D(x)[:1], D(x[:1]))  # a sample's score is its own, in training
    # the gradient of the batch's summed scores at sample 0 is sample 0's own gradient
    xr = x.clone().requires_grad_(True)
    (g_batch,) = torch.autograd.grad(D(xr).sum(), xr)
    x0 = x[:1].clone().requires_grad_(True)
    (g_alone,) = torch.autograd.grad(D(x0).sum(), x0)
    torch.testing.assert_close(g_batch[:1], g_alone)


@pytest.mark.parametrize("loss", ["ns", "minimax", "lsgan", "wgan", "hinge"])
def test_without_a_penalty_the_discriminator_keeps_infogans_batch_norm(loss):
    assert len(_batchnorms(_pair(f"loss={loss}").D)) == 2


def test_penalty_norm_layer_and_an_explicit_norm(caplog):
    D = _pair("loss=wgan_gp", "model.discriminator.penalty_norm=layer").D
    assert not _batchnorms(D)
    assert any(isinstance(m, nn.GroupNorm) for m in D.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in D.modules())
    # asked for explicitly: granted, with the project's warning
    assert len(_batchnorms(_pair("loss=wgan_gp", "model.discriminator.norm=batch").D)) == 2
    assert "norm=batch under" in caplog.text


@pytest.mark.parametrize("loss,output", [("began", (8, 1, 28, 28)), ("mmd", (8, 32))])
def test_the_losses_with_other_discriminator_outputs_build(loss, output):
    pair = _pair(f"loss={loss}")
    x = pair.G(torch.randn(8, 64))
    assert pair.D(x).shape == output


def test_spectral_norm_and_packing_are_applied_from_outside():
    cfg = compose_cfg(["model=infogan", "model.discriminator.spectral_norm=true",
                       "model.discriminator.pack=2"])
    D = build_network(cfg.model.discriminator, "model.discriminator", data_shape=(1, 28, 28),
                      num_classes=0, output="score")
    assert len(spectral_norm_layers(D)) == 4  # two convolutions, two linear layers
    assert D(torch.randn(6, 1, 28, 28)).shape == (3,)  # one score per pack of 2


def test_the_model_option_is_the_papers_setting():
    cfg = compose_cfg(["model=infogan"])
    assert cfg.model.z_dim == 64
    assert cfg.model.generator.width == cfg.model.discriminator.width == 64
    assert cfg.model.generator.hidden == cfg.model.discriminator.hidden == 1024
    assert cfg.model.discriminator.norm == "auto"
    assert cfg.model.discriminator.penalty_norm == "none"
