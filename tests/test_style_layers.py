"""Layers of ProGAN / StyleGAN / StyleGAN2 (gan_cli/models/style_layers.py) against hand values.

Expected numbers are worked out in the comments from the papers' formulas, never with the
function under test.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gan_cli.models.style_layers import (
    AdaIN,
    ConstantInput,
    EqualizedConv2d,
    EqualizedLinear,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    adain,
    blur,
    channels_at,
    default_start_resolution,
    downsample2x,
    minibatch_std,
    mix_styles,
    modulated_conv2d,
    pixel_norm,
    progressive_plan,
    upsample2x,
    upsample2x_fir,
)

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- shapes and widths


PLANS = [(4, 4, [4]), (32, 4, [4, 8, 16, 32]), (28, 7, [7, 14, 28]), (1024, 4, [4 * 2**i for i in range(9)]),
         (32, None, [4, 8, 16, 32]), (28, None, [7, 14, 28]), (48, None, [6, 12, 24, 48]), (4, None, [4]),
         (1024, None, [4 * 2**i for i in range(9)])]


@pytest.mark.parametrize(("side", "start", "sides"), PLANS)
def test_progressive_plan(side, start, sides):
    assert progressive_plan((3, side, side), start, "m") == (3, sides)


# start_resolution < 2 is the schema's (tests/test_config_style.py)
BAD_PLANS = [((1, 28, 28), 4), ((1, 24, 24), 4), ((1, 32, 16), 4), ((1, 32, 16), None), ((1, 2, 2), 4),
             ((784,), 4)]


@pytest.mark.parametrize(("shape", "start"), BAD_PLANS)
def test_progressive_plan_rejects(shape, start):
    with pytest.raises(ValueError, match="m:"):
        progressive_plan(shape, start, "m")


def test_default_start_resolution():
    # halve while even and the half is still >= 4
    sides = (4, 8, 32, 1024, 28, 48, 20, 7, 6)
    assert [default_start_resolution(s) for s in sides] == [4, 4, 4, 4, 7, 6, 5, 7, 6]


def test_channels_at_matches_the_papers():
    # ProGAN / StyleGAN: 512 up to 32 px, then 256, 128, 64, 32, 16 at 1024 px (ProGAN table 2)
    assert [channels_at(4 * 2**i, 16384, 512) for i in range(9)] == [512] * 4 + [256, 128, 64, 32, 16]
    # StyleGAN2 config F: 512 up to 64 px, 32 at 1024 px
    assert [channels_at(4 * 2**i, 32768, 512) for i in range(9)] == [512] * 5 + [256, 128, 64, 32]


# ---------------------------------------------------------------- equalised learning rate


def test_equalized_linear_weight_statistics_and_forward():
    layer = EqualizedLinear(512, 512)
    # stored N(0, 1): 262,144 draws, std within 1%
    assert layer.weight.std().item() == pytest.approx(1.0, abs=0.01)
    # He's constant sqrt(2 / fan_in) applied at run time: effective std sqrt(2/512) = 0.0625
    assert layer.weight_gain == pytest.approx(math.sqrt(2 / 512))
    assert (layer.weight * layer.weight_gain).std().item() == pytest.approx(0.0625, rel=0.01)
    x = torch.randn(3, 512)
    with torch.no_grad():
        layer.bias.fill_(0.5)
        expected = x @ (layer.weight * math.sqrt(2 / 512)).T + 0.5
        assert torch.allclose(layer(x), expected, atol=1e-5)


def test_equalized_linear_lr_multiplier():
    # mapping layers: gain 1, lr_mul 0.01: stored std 1/0.01 = 100, effective std 1/sqrt(256) = 0.0625;
    # the bias is used times 0.01, so bias_init 1 is stored as 100
    layer = EqualizedLinear(256, 256, gain=1.0, lr_multiplier=0.01, bias_init=1.0)
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.01)
    assert (layer.weight * layer.weight_gain).std().item() == pytest.approx(0.0625, rel=0.01)
    assert torch.allclose(layer.bias, torch.full((256,), 100.0))
    assert torch.allclose(layer(torch.zeros(2, 256)), torch.ones(2, 256))


def test_equalized_scaling_happens_at_run_time():
    """The gradient of the stored weight is c times that of the effective weight c * w (not c = 1)."""
    layer = EqualizedLinear(4, 3, bias=False).double()
    c = math.sqrt(2 / 4)
    x = torch.randn(5, 4, dtype=DT)
    g = torch.randn(5, 3, dtype=DT)
    (layer(x) * g).sum().backward()
    # d/dW_eff sum(g * x W_eff^T) = g^T x ; d/dw = c g^T x
    assert torch.allclose(layer.weight.grad, c * g.T @ x)


def test_equalized_conv_fan_in_counts_the_kernel():
    conv = EqualizedConv2d(64, 32, 3)
    # fan_in = 64 * 3 * 3 = 576: effective std sqrt(2/576) = 0.0589
    assert conv.weight_gain == pytest.approx(math.sqrt(2 / 576))
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.02)
    rgb = EqualizedConv2d(16, 3, 1, gain=1.0)
    assert rgb.weight_gain == pytest.approx(1 / 4)
    x = torch.randn(2, 64, 5, 5)
    with torch.no_grad():
        assert torch.allclose(conv(x), F.conv2d(x, conv.weight * math.sqrt(2 / 576), conv.bias, padding=1),
                              atol=1e-5)
    assert torch.count_nonzero(conv.bias) == 0


def test_blur_and_filtered_downsampling_by_hand():
    # [1, 3, 3, 1] / 8 per axis, zero padding 1, stride 2: an impulse at (2, 2) of an 8x8 image
    # reaches output rows/cols 0 (tap 1/8) and 1 (tap 3/8): out = outer((1/8, 3/8), (1/8, 3/8))
    x = torch.zeros(1, 1, 8, 8, dtype=DT)
    x[0, 0, 2, 2] = 1.0
    out = downsample2x(x, filtered=True)
    expected = torch.zeros(1, 1, 4, 4, dtype=DT)
    expected[0, 0, :2, :2] = torch.tensor([[1 / 64, 3 / 64], [3 / 64, 9 / 64]], dtype=DT)
    assert torch.allclose(out, expected)
    # gain 1: a constant image stays constant away from the zero-padded border
    assert torch.allclose(blur(torch.ones(1, 2, 6, 6, dtype=DT), padding=0), torch.ones(1, 2, 3, 3, dtype=DT))
    assert torch.equal(downsample2x(x), F.avg_pool2d(x, 2))


def test_halving_conv_is_blur_then_stride_two():
    conv = EqualizedConv2d(2, 3, 3, gain=1.0, down=True).double()
    x = torch.randn(2, 2, 8, 8, dtype=DT)
    with torch.no_grad():
        expected = F.conv2d(blur(x, padding=2), conv.weight / math.sqrt(18), conv.bias, stride=2)
        assert conv(x).shape == (2, 3, 4, 4)
        assert torch.allclose(conv(x), expected)


# ---------------------------------------------------------------- pixel norm


def test_pixel_norm_by_hand():
    # one pixel with features (3, 4): mean square (9 + 16) / 2 = 12.5 -> (3, 4) / sqrt(12.5)
    x = torch.tensor([3.0, 4.0], dtype=DT).reshape(1, 2, 1, 1)
    out = pixel_norm(x).flatten()
    assert out.tolist() == pytest.approx([3 / math.sqrt(12.5), 4 / math.sqrt(12.5)], rel=1e-7)


def test_pixel_norm_output_norm_is_sqrt_c_per_pixel():
    x = torch.randn(2, 16, 3, 5, dtype=DT) * 7.0
    out = pixel_norm(x)
    # convention: the mean of squares over the C channels is 1, i.e. the norm is sqrt(C) = 4
    assert torch.allclose(out.norm(dim=1), torch.full((2, 3, 5), 4.0, dtype=DT))
    z = torch.randn(3, 512, dtype=DT)
    assert torch.allclose(pixel_norm(z).norm(dim=1), torch.full((3,), math.sqrt(512), dtype=DT))


# ---------------------------------------------------------------- minibatch stddev


def test_minibatch_std_by_hand_with_strided_groups():
    # N = 8, G = 4: sample n belongs to group n mod 2; group 0 = samples 0, 2, 4, 6 hold 1, 2, 3, 5
    # (mean 2.75; squared deviations 3.0625, 0.5625, 0.0625, 5.0625; mean 2.1875 = population
    # variance) and group 1 = samples 1, 3, 5, 7 hold 7 everywhere (variance 0)
    x = torch.zeros(8, 1, 1, 1, dtype=DT)
    x[0::2, 0, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 5.0], dtype=DT)
    x[1::2] = 7.0
    out = minibatch_std(x, group_size=4)
    assert out.shape == (8, 2, 1, 1)
    assert torch.equal(out[:, :1], x)
    stat = out[:, 1, 0, 0]
    assert stat[0::2].tolist() == pytest.approx([math.sqrt(2.1875 + 1e-8)] * 4, rel=1e-9)
    assert stat[1::2].tolist() == pytest.approx([math.sqrt(1e-8)] * 4, rel=1e-6)


def test_minibatch_std_averages_over_features_and_pixels():
    # N = 4 (one group), C = 2, 1x2 pixels. Per-(feature, pixel) population stds:
    # (c0, p0): 1, 2, 3, 5 -> sqrt(2.1875); (c0, p1): 0, 0, 4, 4 -> mean 2, |dev| 2 -> 2;
    # (c1, p0): 0, 0, 0, 0 -> 0; (c1, p1): 1, -1, 1, -1 -> 1. Average of the four (+1e-8 inside).
    x = torch.zeros(4, 2, 1, 2, dtype=DT)
    x[:, 0, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 5.0])
    x[:, 0, 0, 1] = torch.tensor([0.0, 0.0, 4.0, 4.0])
    x[:, 1, 0, 1] = torch.tensor([1.0, -1.0, 1.0, -1.0])
    stds = [math.sqrt(2.1875 + 1e-8), math.sqrt(4 + 1e-8), math.sqrt(1e-8), math.sqrt(1 + 1e-8)]
    out = minibatch_std(x, group_size=4)
    assert out.shape == (4, 3, 1, 2)
    assert out[:, 2].flatten().tolist() == pytest.approx([sum(stds) / 4] * 8, rel=1e-9)
    # num_channels = 2: one statistic per channel group
    two = minibatch_std(x, group_size=4, num_channels=2)
    assert two[0, 2, 0, 0].item() == pytest.approx((stds[0] + stds[1]) / 2, rel=1e-9)
    assert two[0, 3, 0, 0].item() == pytest.approx((stds[2] + stds[3]) / 2, rel=1e-9)


def test_minibatch_std_group_size_limits():
    assert minibatch_std(torch.randn(3, 2, 2, 2), group_size=4).shape == (3, 3, 2, 2)  # G = min(4, 3)
    with pytest.raises(ValueError, match="divisible"):
        minibatch_std(torch.randn(6, 2, 2, 2), group_size=4)


# ---------------------------------------------------------------- AdaIN


def test_adain_by_hand():
    # feature map 1, 2, 3, 4: mu 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25;
    # with y_s = 2, y_b = 0.5: 2 * (v - 2.5) / sqrt(1.25) + 0.5
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=DT).reshape(1, 1, 2, 2)
    out = adain(x, torch.tensor([[2.0]], dtype=DT), torch.tensor([[0.5]], dtype=DT), eps=0.0)
    expected = [2 * (v - 2.5) / math.sqrt(1.25) + 0.5 for v in (1, 2, 3, 4)]
    assert out.flatten().tolist() == pytest.approx(expected, rel=1e-12)


def test_adain_normalises_each_sample_and_channel_separately():
    x = torch.randn(3, 4, 5, 5, dtype=DT) * torch.arange(1, 5, dtype=DT)[None, :, None, None] + 3.0
    y_s, y_b = torch.rand(3, 4, dtype=DT) + 0.5, torch.randn(3, 4, dtype=DT)
    out = adain(x, y_s, y_b)
    assert torch.allclose(out.mean(dim=(2, 3)), y_b)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), y_s, rtol=1e-6)


def test_adain_module_styles_come_from_w():
    layer = AdaIN(channels=2, w_dim=3).double()
    w = torch.randn(4, 3, dtype=DT)
    x = torch.randn(4, 2, 3, 3, dtype=DT)
    with torch.no_grad():
        style = w @ (layer.affine.weight * (1 / math.sqrt(3))).T + layer.affine.bias  # gain 1
        expected = adain(x, 1.0 + style[:, :2], style[:, 2:])
        assert torch.allclose(layer(x, w), expected)
        # no learned gain or bias in the normalisation itself
        assert [n for n, _ in layer.named_parameters()] == ["affine.weight", "affine.bias"]


# ---------------------------------------------------------------- modulated convolution


@pytest.mark.parametrize("fused", [False, True])
def test_modulated_conv_matches_per_sample_reference(fused):
    n, c_in, c_out = 3, 4, 5
    weight = torch.randn(c_out, c_in, 3, 3, dtype=DT)
    styles = torch.rand(n, c_in, dtype=DT) + 0.5
    x = torch.randn(n, c_in, 6, 6, dtype=DT)
    for demod in (False, True):
        out = modulated_conv2d(x, weight, styles, demodulate=demod, fused=fused)
        for i in range(n):
            wi = weight * styles[i][None, :, None, None]  # w'_jik = s_i w_jik
            if demod:  # w'' = w' / sqrt(sum over input channels and taps of w'^2 + eps)
                wi = wi / torch.sqrt((wi**2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
            assert torch.allclose(out[i: i + 1], F.conv2d(x[i: i + 1], wi, padding=1)), (i, demod)


def test_demodulation_gives_unit_output_std_for_unit_input():
    torch.manual_seed(1)
    n, c_in, c_out = 2, 16, 8
    weight = torch.randn(c_out, c_in, 3, 3, dtype=DT)
    styles = torch.rand(n, c_in, dtype=DT) * 3 + 0.1  # very unequal input-channel scales
    x = torch.randn(n, c_in, 66, 66, dtype=DT)
    out = modulated_conv2d(x, weight, styles, demodulate=True)[:, :, 1:-1, 1:-1]  # no zero padding
    # each (sample, channel): 4,096 values of variance sum(w''^2) = 1; the std estimate is within ~1.1%
    std = out.std(dim=(2, 3))
    assert torch.allclose(std, torch.ones_like(std), atol=0.05)
    plain = modulated_conv2d(x, weight, styles, demodulate=False)[:, :, 1:-1, 1:-1].std(dim=(2, 3))
    assert (plain - 1).abs().max() > 1.0  # without demodulation the scale follows the styles


def test_demodulation_removes_a_common_style_scale():
    weight = torch.randn(3, 2, 3, 3, dtype=DT)
    styles = torch.rand(2, 2, dtype=DT) + 0.5
    x = torch.randn(2, 2, 5, 5, dtype=DT)
    a = modulated_conv2d(x, weight, styles)
    assert torch.allclose(a, modulated_conv2d(x, weight, 10 * styles))
    assert torch.allclose(10 * modulated_conv2d(x, weight, styles, demodulate=False),
                          modulated_conv2d(x, weight, 10 * styles, demodulate=False))


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("kernel", [1, 3])
@pytest.mark.parametrize("demod", [False, True])
def test_fused_and_unfused_modulated_conv_agree_with_their_gradients(kernel, demod, up):
    # the grouped per-sample-kernel form and NVIDIA's training form (scaled input, shared kernel,
    # scaled output): equal values and equal gradients for x, the kernel and the styles, in float64
    torch.manual_seed(3)
    n, c_in, c_out = 4, 6, 5
    x0 = torch.randn(n, c_in, 7, 7, dtype=DT)
    w0 = torch.randn(c_out, c_in, kernel, kernel, dtype=DT)
    s0 = torch.randn(n, c_in, dtype=DT)  # signs too: the demodulation squares them
    results = []
    for fused in (False, True):
        x, w, s = (t.clone().requires_grad_() for t in (x0, w0, s0))
        out = modulated_conv2d(x, w, s, demodulate=demod, fused=fused, up=up)
        assert out.shape == (n, c_out, 7 * up, 7 * up)
        (out * torch.linspace(-1, 1, out.numel(), dtype=DT).reshape(out.shape)).sum().backward()
        results.append((out, x.grad, w.grad, s.grad))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# NVIDIA's upsampling convolution (conv2d_resample, up=2) and image upsampling (upfirdn2d.upsample2d).
# Per axis, a stride-2 transposed convolution puts input pixel i at 2i + t for kernel tap t; the
# filter is [1, 3, 3, 1] / 8 x 2 (gain 4 over two axes) with one pixel of zero padding. For an
# input row (a, b) that gives, from [0, 0, a, 0, b, 0, 0] (centre tap t = 1), (3a, 3a + b, a + 3b,
# 3b) / 4, and from [0, a, 0, b, 0, 0, 0] (corner tap t = 0), (3a + b, a + 3b, 3b, b) / 4. In 2D,
# out = A X A^T with A's rows those coefficients; for X = [[1, 2], [3, 4]]:
#   centre: A X = [[3, 6], [6, 10], [10, 14], [9, 12]] / 4, each row (u, v) -> (3u, 3u + v, u + 3v, 3v) / 4
#   corner: A X = [[6, 10], [10, 14], [9, 12], [3, 4]] / 4, each row (u, v) -> (3u + v, u + 3v, 3v, v) / 4
UP_CENTRE = [[9, 15, 21, 18], [18, 28, 36, 30], [30, 44, 52, 42], [27, 39, 45, 36]]  # / 16
UP_CORNER = [[28, 36, 30, 10], [44, 52, 42, 14], [39, 45, 36, 12], [13, 15, 12, 4]]  # / 16


@pytest.mark.parametrize("fused", [False, True])
def test_upsampling_modulated_conv_by_hand(fused):
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=DT).reshape(1, 1, 2, 2)
    ones = torch.ones(1, 1, dtype=DT)
    for tap, expected in (((1, 1), UP_CENTRE), ((0, 0), UP_CORNER)):
        w = torch.zeros(1, 1, 3, 3, dtype=DT)
        w[0, 0, tap[0], tap[1]] = 1.0
        out = modulated_conv2d(x, w, ones, demodulate=False, fused=fused, up=2)
        torch.testing.assert_close(out, torch.tensor(expected, dtype=DT).reshape(1, 1, 4, 4) / 16)


def test_image_upsampling_by_hand_and_bilinear_inside():
    # upfirdn2d.upsample2d: zeros between the pixels, padding 2 before and 1 after, the filter x 4:
    # per axis the centre-tap sequence above, so the same 4x4 as the centre tap
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=DT).reshape(1, 1, 2, 2)
    torch.testing.assert_close(upsample2x_fir(x), torch.tensor(UP_CENTRE, dtype=DT).reshape(1, 1, 4, 4) / 16)
    # inside the image it is bilinear upsampling; at the border bilinear repeats the edge
    # ((1, 2) -> (1, 1.25, 1.75, 2) where zeros beyond it give (0.75, 1.25, 1.75, 1.5))
    y = torch.randn(2, 3, 6, 6, dtype=DT)
    inside = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    torch.testing.assert_close(upsample2x_fir(y)[inside], upsample2x(y, filtered=True)[inside])
    assert not torch.allclose(upsample2x_fir(y), upsample2x(y, filtered=True))


def test_upsampling_conv_equals_zero_insertion_then_convolution():
    # conv2d_resample(up=2) spelled out the slow way, with several channels (the transposed
    # convolution takes the kernel's in/out channels swapped): x at even positions of a zero image,
    # the kernel flipped (a convolution) with two pixels of zero padding, then the filter x 4
    torch.manual_seed(5)
    x = torch.randn(2, 3, 5, 5, dtype=DT)
    w = torch.randn(4, 3, 3, 3, dtype=DT)
    z = torch.zeros(2, 3, 9, 9, dtype=DT)
    z[:, :, ::2, ::2] = x
    y = F.conv2d(z, w.flip([2, 3]), padding=2)  # 11 x 11
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=DT)
    expected = F.conv2d(y, (torch.outer(taps, taps) / 16).expand(4, 1, 4, 4), padding=1, groups=4)
    out = modulated_conv2d(x, w, torch.ones(2, 3, dtype=DT), demodulate=False, up=2)
    assert out.shape == (2, 4, 10, 10)
    torch.testing.assert_close(out, expected)


def test_modulated_conv_module_starts_with_unit_styles():
    layer = ModulatedConv2d(4, 2, 1, w_dim=3, demodulate=False).double()
    with torch.no_grad():
        layer.affine.weight.zero_()  # s = A w = bias = 1 (bias_init 1)
        x = torch.randn(2, 4, 3, 3, dtype=DT)
        out = layer(x, torch.randn(2, 3, dtype=DT))
        assert torch.allclose(out, F.conv2d(x, layer.weight / 2.0))  # 1 / sqrt(4 * 1 * 1)


# ---------------------------------------------------------------- noise, constant input


def test_noise_injection_per_channel_strength():
    layer = NoiseInjection(3).double()
    assert layer.strength.shape == (3,) and torch.count_nonzero(layer.strength) == 0
    x = torch.randn(2, 3, 4, 4, dtype=DT)
    assert torch.equal(layer(x), x)  # strength 0 at initialisation
    noise = torch.randn(2, 1, 4, 4, dtype=DT)
    with torch.no_grad():
        layer.strength.copy_(torch.tensor([0.0, 1.0, -2.0]))
        out = layer(x, noise)
    # channel c gets strength_c times the same single-channel noise image
    assert torch.allclose(out - x, torch.cat([0 * noise, noise, -2 * noise], dim=1))
    scalar = NoiseInjection(3, per_channel=False)
    assert scalar.strength.shape == ()


def test_constant_input():
    const = ConstantInput(5, 4)
    out = const(3)
    assert out.shape == (3, 5, 4, 4) and torch.equal(out, torch.ones(3, 5, 4, 4))
    out.sum().backward()
    assert torch.equal(const.const.grad, torch.full((5, 4, 4), 3.0))  # summed over the batch
    assert ConstantInput(5, 4, init="randn").const.std() > 0.5


# ---------------------------------------------------------------- mapping network, truncation, mixing


def test_mapping_normalises_z_and_broadcasts_w():
    net = MappingNetwork(z_dim=8, w_dim=6, num_layers=3, num_ws=5).eval()
    z = torch.randn(4, 8)
    ws = net(z)
    assert ws.shape == (4, 5, 6)
    assert torch.equal(ws[:, 0], ws[:, 4])
    assert torch.allclose(net(3.0 * z), ws, atol=1e-6)  # pixel norm on z: the scale of z is ignored
    assert len([m for m in net.net if isinstance(m, EqualizedLinear)]) == 3
    assert all(m.bias_gain == 0.01 for m in net.net if isinstance(m, EqualizedLinear))


def test_w_avg_is_a_moving_average_in_training_only():
    net = MappingNetwork(z_dim=4, w_dim=4, num_layers=2, num_ws=2, w_avg_beta=0.9).double()
    assert torch.count_nonzero(net.w_avg) == 0
    z1, z2 = torch.randn(6, 4, dtype=DT), torch.randn(6, 4, dtype=DT)
    w1 = net.eval()(z1)[:, 0]
    w2 = net(z2)[:, 0]
    assert torch.count_nonzero(net.w_avg) == 0  # eval mode: no update
    net.train()
    net(z1)
    net(z2)
    # w_avg <- 0.9 w_avg + 0.1 mean(w): 0.9 * (0.1 mean w1) + 0.1 mean w2
    assert torch.allclose(net.w_avg, 0.09 * w1.mean(0) + 0.1 * w2.mean(0))
    assert "w_avg" in net.state_dict()


def test_truncation_psi_zero_gives_w_avg_for_every_z():
    net = MappingNetwork(z_dim=4, w_dim=3, num_layers=2, num_ws=4).double().eval()
    with torch.no_grad():
        net.w_avg.copy_(torch.tensor([0.5, -1.0, 2.0]))
    z = torch.randn(5, 4, dtype=DT)
    assert torch.allclose(net(z, psi=0.0), net.w_avg.expand(5, 4, 3))
    w = net(z)
    # psi = 0.5: w_avg + 0.5 (w - w_avg)
    assert torch.allclose(net(z, psi=0.5), net.w_avg + 0.5 * (w - net.w_avg))
    cut = net(z, psi=0.0, truncation_cutoff=2)
    assert torch.allclose(cut[:, :2], net.w_avg.expand(5, 2, 3)) and torch.equal(cut[:, 2:], w[:, 2:])


def test_mix_styles_takes_the_other_latent_from_the_crossover():
    ws = torch.zeros(2, 6, 1)
    other = torch.ones(2, 6, 1)
    seen = set()
    for seed in range(60):
        torch.manual_seed(seed)
        mixed = mix_styles(ws, other, num_active=4, prob=1.0)[0, :, 0]
        cut = int((mixed == 0).sum())
        assert torch.equal(mixed, (torch.arange(6) >= cut).float())  # a prefix of ws, then other
        seen.add(cut)
    assert seen == {1, 2, 3}  # uniform in [1, num_active): never 0, never past the active layers
    assert torch.equal(mix_styles(ws, other, num_active=6, prob=0.0), ws)


def test_mix_styles_probability():
    torch.manual_seed(0)
    ws, other = torch.zeros(1, 4, 1), torch.ones(1, 4, 1)
    mixed = sum(bool(mix_styles(ws, other, 4, 0.9).any()) for _ in range(400))
    # binomial(400, 0.9): mean 360, std 6
    assert 340 <= mixed <= 380
