"""ProGAN (gan_cli/models/progan.py): shapes per phase, fade-in, the paper's layer rules, speed."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.models.progan import Discriminator, Generator
from gan_cli.models.style_layers import EqualizedConv2d, EqualizedLinear, pixel_norm

Z = 8
SMALL = {"channel_base": 64, "channel_max": 16}  # 16 channels up to 4 px, 8 at 8 px, 4 at 16 px, ...
DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_g(side=16, c=3, **kw):
    return Generator(z_dim=Z, data_shape=(c, side, side), **{**SMALL, **kw}).double()


def small_d(side=16, c=3, **kw):
    return Discriminator(data_shape=(c, side, side), **{**SMALL, **kw}).double()


# ---------------------------------------------------------------- shapes in every phase


@pytest.mark.parametrize(("side", "start"), [(4, 4), (8, 4), (16, 4), (32, 4), (28, 7)])
@pytest.mark.parametrize("c", [1, 3])
def test_shapes_in_every_phase(side, start, c):
    G = small_g(side, c, start_resolution=start)
    D = small_d(side, c, start_resolution=start)
    assert G.num_classes == 0 and D.num_classes == 0
    z = torch.randn(4, Z, dtype=DT)
    assert G(z).shape == (4, c, side, side)  # fully grown by default
    for r in G.resolutions:
        for alpha in (0.0, 0.5, 1.0):
            G.set_phase(r, alpha)
            D.set_phase(r, alpha)
            x = G(z)
            assert x.shape == (4, c, r, r)
            assert D(x).shape == (4,)


def test_state_dict_shapes_identical_across_phases():
    G, D = small_g(32), small_d(32)
    ref = {k: v.shape for k, v in [*G.state_dict().items(), *D.state_dict().items()]}
    other_g, other_d = small_g(32), small_d(32)
    for r in (4, 8, 16, 32):
        G.set_phase(r, 0.5)
        D.set_phase(r, 0.5)
        assert {k: v.shape for k, v in [*G.state_dict().items(), *D.state_dict().items()]} == ref
        other_g.load_state_dict(G.state_dict())  # strict: a checkpoint of any phase loads into any phase
        other_d.load_state_dict(D.state_dict())


# ---------------------------------------------------------------- fade-in


def _grown_by_hand(G: Generator, z: torch.Tensor, r: int) -> torch.Tensor:
    """The new block's output at side r, written out from the layers: alpha = 1."""
    s = G.resolutions[0]
    x = pixel_norm(z)
    x = pixel_norm(F.leaky_relu(G.dense(x).reshape(len(z), -1, s, s), 0.2))
    x = pixel_norm(F.leaky_relu(G.conv(x), 0.2))
    for block in G.blocks[: G.resolutions.index(r)]:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = pixel_norm(F.leaky_relu(block.conv0(x), 0.2))
        x = pixel_norm(F.leaky_relu(block.conv1(x), 0.2))
    return G.to_rgb[str(r)](x)


@pytest.mark.parametrize("r", [8, 16])
def test_generator_fade_in(r):
    G = small_g(16).eval()
    z = torch.randn(3, Z, dtype=DT)
    G.set_phase(r // 2, 1.0)
    low = G(z)
    G.set_phase(r, 0.0)
    at_0 = G(z)
    G.set_phase(r, 1.0)
    at_1 = G(z)
    # alpha 0: the lower-resolution output upsampled by nearest neighbour (each pixel a 2x2 block)
    assert torch.allclose(at_0, low.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3))
    # alpha 1: the new block's output alone
    assert torch.allclose(at_1, _grown_by_hand(G, z, r))
    assert (at_1 - at_0).abs().max() > 1e-3
    G.set_phase(r, 0.25)
    assert torch.allclose(G(z), 0.75 * at_0 + 0.25 * at_1)


@pytest.mark.parametrize("r", [8, 16])
def test_discriminator_fade_in(r):
    D = small_d(16, mbstd_group_size=0).eval()
    x = torch.randn(4, 3, r, r, dtype=DT)
    D.set_phase(r // 2, 1.0)
    low = D(F.avg_pool2d(x, 2))
    D.set_phase(r, 0.0)
    # alpha 0: the lower-resolution D on the 2x2-averaged images
    assert torch.allclose(D(x), low)
    # alpha 1: the lower side's fromRGB is not used
    D.set_phase(r, 1.0)
    at_1 = D(x)
    with torch.no_grad():
        D.from_rgb[str(r // 2)].weight.mul_(3.0)
    assert torch.equal(D(x), at_1)
    D.set_phase(r, 0.0)
    assert not torch.allclose(D(x), low)  # ... which alpha 0 does use


def test_alpha_is_ignored_at_the_start_resolution():
    G = small_g(8)
    G.set_phase(4, 0.3)
    assert G.alpha == 1.0


def test_set_phase_errors():
    G, D = small_g(16), small_d(16)
    for net in (G, D):
        with pytest.raises(ValueError, match="not one of"):
            net.set_phase(12, 1.0)
        with pytest.raises(ValueError, match="alpha"):
            net.set_phase(8, 1.5)
    fixed = small_g(16, progressive=False)
    assert list(fixed.to_rgb) == ["16"]  # no lower-resolution toRGB
    with pytest.raises(ValueError, match="progressive=False"):
        fixed.set_phase(8, 1.0)
    fixed.set_phase(16, 1.0)


# ---------------------------------------------------------------- the paper's layer rules


def test_pixel_norm_on_z_and_after_every_convolution():
    G = small_g(16).eval()
    z = torch.randn(3, Z, dtype=DT)
    assert torch.allclose(G(z), G(5.0 * z))  # z is normalised first
    outs = []
    for block in G.blocks:
        block.register_forward_hook(lambda m, i, o: outs.append(o))
    G(z)
    for o in outs:  # every block's output: mean of squares over channels 1 at every pixel
        assert torch.allclose(o.square().mean(dim=1), torch.ones_like(o[:, 0]))
    no_norm = small_g(16, use_pixel_norm=False).eval()
    assert not torch.allclose(no_norm(z), no_norm(5.0 * z))


def test_every_weight_is_equalised_and_output_gains_are_one():
    G, D = small_g(16), small_d(16)
    layers = [m for net in (G, D) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(isinstance(m, (EqualizedConv2d, EqualizedLinear)) for m in layers)
    for rgb in G.to_rgb.values():  # toRGB: 1x1, linear (gain 1)
        assert rgb.kernel_size == (1, 1) and rgb.weight_gain == pytest.approx(1 / math.sqrt(rgb.in_channels))
    assert D.out.weight_gain == pytest.approx(1 / math.sqrt(D.out.in_features))
    assert G.dense.weight_gain == pytest.approx(math.sqrt(2) / 4 / math.sqrt(Z))  # a 4x4 conv's He constant
    # widths min(64 // r, 16): 16 at 4 px, 8 at 8 px, 4 at 16 px; D mirrors G
    assert [b.conv1.out_channels for b in G.blocks] == [8, 4]
    assert [b.conv1.out_channels for b in D.blocks] == [16, 8]


def test_minibatch_stddev_couples_samples_of_one_group():
    D = small_d(8).eval()
    x = torch.randn(8, 3, 8, 8, dtype=DT)
    base = D(x)
    x2 = x.clone()
    x2[4] += 1.0  # sample 4 is in group 4 mod 2 = 0 with samples 0, 2, 6
    moved = D(x2)
    assert (moved - base)[[0, 2, 6]].abs().min() > 0
    assert torch.equal(moved[[1, 3, 5, 7]], base[[1, 3, 5, 7]])
    no_mbstd = small_d(8, mbstd_group_size=0).eval()
    assert no_mbstd.conv.in_channels == 16 and D.conv.in_channels == 17


def test_tanh_output_only_when_asked_and_bounded():
    z = torch.randn(3, Z, dtype=DT)
    plain = small_g(8)
    squashed = small_g(8, tanh_output=True)
    squashed.load_state_dict(plain.state_dict())
    assert torch.allclose(squashed(z), torch.tanh(plain(z)))
    unbounded = Generator(z_dim=Z, data_shape=(3, 8, 8), bounded=False, tanh_output=True, **SMALL).double()
    unbounded.load_state_dict(plain.state_dict())
    assert torch.allclose(unbounded(z), plain(z))


def test_backward_reaches_the_active_parameters():
    G, D = small_g(16), small_d(16)
    G.set_phase(16, 0.5)
    D.set_phase(16, 0.5)
    D(G(torch.randn(4, Z, dtype=DT))).sum().backward()
    # fading 8 -> 16 uses the toRGB / fromRGB of 8 and 16; those of 4 wait for no gradient
    idle = {"to_rgb.4.weight", "to_rgb.4.bias", "from_rgb.4.weight", "from_rgb.4.bias"}
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        if name in idle:
            assert p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_errors():
    with pytest.raises(ValueError, match="24x24"):
        Generator(z_dim=Z, data_shape=(1, 24, 24), start_resolution=4)
    with pytest.raises(ValueError, match="24x24"):
        Discriminator(data_shape=(1, 24, 24), start_resolution=4)
    assert Generator(z_dim=Z, data_shape=(1, 28, 28), **SMALL).resolutions == [7, 14, 28]  # the default start
    with pytest.raises(ValueError, match="output"):
        Discriminator(data_shape=(1, 8, 8), output="reconstruction")


# ---------------------------------------------------------------- speed, memory format, no host sync


def test_small_32px_step_is_fast():
    torch.set_num_threads(1)
    G = Generator(z_dim=32, data_shape=(3, 32, 32), channel_base=512, channel_max=64)
    D = Discriminator(data_shape=(3, 32, 32), channel_base=512, channel_max=64)
    z = torch.randn(8, 32)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        D(G(z)).sum().backward()
        best = min(best, time.perf_counter() - start)
    assert best < 1.0


def test_channels_last_matches_contiguous():
    G, D = small_g(16).float().eval(), small_d(16).float().eval()
    G.set_phase(16, 0.5)
    D.set_phase(16, 0.5)
    z = torch.randn(4, Z)
    x = torch.randn(4, 3, 16, 16)
    cl_g = copy.deepcopy(G).to(memory_format=torch.channels_last)
    cl_d = copy.deepcopy(D).to(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(cl_g(z), G(z), atol=1e-5)
        assert torch.allclose(cl_d(x.contiguous(memory_format=torch.channels_last)), D(x), atol=1e-5)


def test_forward_runs_on_meta_tensors():
    """Meta tensors have no values: any .item() or branch on a tensor value would fail here."""
    with torch.device("meta"):
        G = Generator(z_dim=Z, data_shape=(3, 16, 16), **SMALL)
        D = Discriminator(data_shape=(3, 16, 16), **SMALL)
    G.set_phase(16, 0.5)
    D.set_phase(16, 0.5)
    out = D(G(torch.randn(4, Z, device="meta")))
    assert out.device.type == "meta" and out.shape == (4,)
