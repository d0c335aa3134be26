"""pix2pix's U-Net and PatchGAN: skip shapes, the paper's layer lists, dropout as noise, and the
PatchGAN's receptive field measured from input gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_cli.config.model import PATCH_RECEPTIVE_FIELDS
from gan_cli.models.layers import apply_spectral_norm, spectral_norm_layers
from gan_cli.models.pix2pix import (
    PatchDiscriminator,
    UNetGenerator,
    patch_layers_for,
    receptive_field,
    receptive_field_of_layers,
    unet_depth,
)
from tests.test_config import assert_refused

W = 4  # small widths keep the file fast on a shared CPU
N = 2


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def channels(width: int, level: int) -> int:
    return width * min(2**level, 8)


# ---------------------------------------------------------------- U-Net


@pytest.mark.parametrize(("side", "depth"), [(256, 8), (64, 6), (32, 5), (28, 2), (48, 4), (12, 2)])
def test_unet_depth_halves_while_even(side, depth):
    assert unet_depth(side) == depth


@pytest.mark.parametrize(("side", "num_downs"), [(32, 6), (32, 1), (28, 3), (27, None), (30, None)])
def test_unet_depth_rejects_impossible(side, num_downs):
    with pytest.raises(ValueError, match="halvings"):
        unet_depth(side, num_downs)


@pytest.mark.parametrize(("side", "num_downs"), [(32, None), (64, None), (256, None), (28, None), (32, 3)])
def test_unet_skip_shapes(side, num_downs):
    """Encoder block i halves the side with width * min(2**i, 8) channels; decoder block j outputs
    exactly the shape of the encoder output it is concatenated with; the output is the target's."""
    g = UNetGenerator(z_dim=1, data_shape=(3, side, side), input_channels=1, width=W, num_downs=num_downs)
    n = g.depth
    assert n == unet_depth(side, num_downs)
    down_out, up_in, up_out = [], [], []

    def record(ins, outs):
        def hook(_module, inputs, output):
            if ins is not None:
                ins.append(tuple(inputs[0].shape))
            outs.append(tuple(output.shape))
        return hook

    for m in g.down:
        m.register_forward_hook(record(None, down_out))
    for m in g.up:
        m.register_forward_hook(record(up_in, up_out))
    out = g(torch.randn(N, 1), torch.randn(N, 1, side, side))
    assert out.shape == (N, 3, side, side)
    assert down_out == [(N, channels(W, i), side // 2 ** (i + 1), side // 2 ** (i + 1)) for i in range(n)]
    if num_downs is None and side in (32, 64, 256):
        assert down_out[-1][2:] == (1, 1)  # a power of two goes down to 1x1, as the paper's 256 px
    assert len(g.up) == n
    assert up_in[0] == down_out[-1]  # the bottleneck alone
    for j in range(1, n):  # after the bottleneck: [previous decoder output, skip] on channels
        skip = down_out[n - 1 - j]
        assert up_out[j - 1] == skip
        assert up_in[j] == (N, 2 * skip[1], skip[2], skip[3])
    assert up_out[-1] == (N, 3, side, side)


def test_unet_at_256_has_the_papers_layers():
    """Paper 6.1.1: encoder C64-C128-C256-C512-C512-C512-C512-C512, decoder CD512-CD1024-CD1024-
    C1024-C1024-C512-C256-C128 (counts of the decoder's inputs, skips included); no norm on the
    first encoder layer (nor, per the authors' erratum and code, on the 1x1 bottleneck)."""
    g = UNetGenerator(z_dim=100, data_shape=(3, 256, 256), width=64)
    enc = [b[0] for b in g.down]
    assert [c.out_channels for c in enc] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in enc)
    dec = [b[0] for b in g.up]
    assert all(isinstance(c, nn.ConvTranspose2d) and c.stride == (2, 2) for c in dec)
    assert [c.in_channels for c in dec] == [512, 1024, 1024, 1024, 1024, 512, 256, 128]
    assert dec[-1].out_channels == 3 and isinstance(g.up[-1][-1], nn.Tanh)
    norms = [sum(isinstance(m, nn.BatchNorm2d) for m in b) for b in g.down]
    assert norms == [0, 1, 1, 1, 1, 1, 1, 0]
    acts = [type(b[-1]) for b in g.down]
    assert acts[:-1] == [nn.LeakyReLU] * 7 and all(b[-1].negative_slope == 0.2 for b in g.down[:-1])
    assert all(isinstance(b[-1], nn.ReLU) for b in g.up[:-1])
    drops = [[m.p for m in b if type(m).__name__ == "_Dropout"] for b in g.up]
    assert drops == [[0.5]] * 3 + [[]] * 5  # CD512-CD1024-CD1024, then no dropout


def test_unet_skips_carry_the_input_past_a_dead_bottleneck():
    """With the bottleneck's weights zeroed, only the skip connections can carry the input: the
    output must still change with it (an encoder-decoder without skips would be constant)."""
    g = UNetGenerator(z_dim=1, data_shape=(1, 32, 32), width=W, dropout_at_eval=False).eval()
    with torch.no_grad():
        g.down[-1][0].weight.zero_()
        g.down[-1][0].bias.zero_()
        a = g(None, torch.randn(N, 1, 32, 32))
        b = g(None, torch.randn(N, 1, 32, 32))
    assert (a - b).abs().max() > 1e-3


def test_unet_ignores_z_and_keeps_dropout_at_eval():
    g = UNetGenerator(z_dim=8, data_shape=(1, 32, 32), width=W).eval()
    y, z1, z2 = torch.randn(N, 1, 32, 32), torch.randn(N, 8), torch.full((N, 8), 5.0)
    with torch.no_grad():
        torch.manual_seed(1)
        a = g(z1, y)
        torch.manual_seed(1)
        b = g(z2, y)  # another z, the same dropout masks
        c = g(z1, y)  # the same z, other dropout masks
    assert torch.equal(a, b)
    assert not torch.equal(a, c)  # the paper's noise: dropout at test time


def test_unet_dropout_off_at_eval_when_asked():
    g = UNetGenerator(z_dim=1, data_shape=(1, 32, 32), width=W, dropout_at_eval=False).eval()
    y = torch.randn(N, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(g(None, y), g(None, y))
        g.train()
        assert not torch.equal(g(None, y), g(None, y))  # still on in training


def test_unet_dropout_blocks_capped_by_depth():
    g = UNetGenerator(z_dim=1, data_shape=(1, 28, 28), width=W)  # 2 halvings: 1 hidden decoder block
    assert [any(type(m).__name__ == "_Dropout" for m in b) for b in g.up] == [True, False]


def test_unet_instance_norm_and_batch_of_one():
    g = UNetGenerator(z_dim=1, data_shape=(3, 32, 32), width=W, norm="instance")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in g.modules()) == 3 + 4  # 5 down - 2, 5 up - 1
    assert g(None, torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_unet_unbounded_output_is_linear():
    g = UNetGenerator(z_dim=1, data_shape=(1, 32, 32), width=W, bounded=False)
    assert not any(isinstance(m, nn.Tanh) for m in g.modules())


@pytest.mark.parametrize("kwargs", [dict(num_classes=10), dict(data_shape=(1, 32, 16)), dict(num_downs=9)])
def test_unet_bad_arguments(kwargs):
    args = dict(z_dim=1, data_shape=(1, 32, 32), width=W) | kwargs
    with pytest.raises(ValueError):
        UNetGenerator(**args)


def test_unet_checks_its_input():
    g = UNetGenerator(z_dim=1, data_shape=(3, 32, 32), input_channels=1, width=W)
    assert g.num_classes == 0 and g.takes_condition  # the step then passes y although unlabelled
    with pytest.raises(ValueError, match="input image"):
        g(torch.randn(N, 1))
    with pytest.raises(ValueError, match="input image"):
        g(torch.randn(N, 1), torch.randn(N, 3, 32, 32))  # 3 channels, 1 expected


# ---------------------------------------------------------------- receptive fields


def test_receptive_field_formula_by_hand():
    # 3x3 stride 1 twice: 1 + 2 + 2 = 5; then 2x2 stride 2: + 1 -> 6; 3x3 after it: + 2 * 2 -> 10
    assert receptive_field_of_layers([(3, 1, 1), (3, 1, 1), (2, 2, 1), (3, 1, 1)]) == 10
    assert receptive_field_of_layers([(3, 1, 2)]) == 5  # dilation 2
    # the paper's 70x70: C64 C128 C256 (4x4, stride 2), C512 (4x4, stride 1), 4x4 to one map:
    # 1 + 3 = 4, + 3*2 = 10, + 3*4 = 22, + 3*8 = 46, + 3*8 = 70
    assert receptive_field_of_layers([(4, 2, 1)] * 3 + [(4, 1, 1)] * 2) == 70


def test_patch_layers_for_the_papers_sizes():
    assert {rf: patch_layers_for(rf) for rf in (1, 16, 34, 70, 142, 286)} == {
        1: 0, 16: 1, 34: 2, 70: 3, 142: 4, 286: 5}
    with pytest.raises(ValueError, match="16, 34, 70"):
        patch_layers_for(69)
    # the config schema's list is the one the model accepts
    assert all(patch_layers_for(rf) >= 0 for rf in PATCH_RECEPTIVE_FIELDS)
    with pytest.raises(ValueError):
        patch_layers_for(2 * PATCH_RECEPTIVE_FIELDS[-1] + 2)  # the next size is not offered


@pytest.mark.parametrize("rf", [1, 16, 34, 70, 142, 286])
def test_patchgan_receptive_field_measured_from_gradients(rf):
    """The gradient of one central patch logit w.r.t. the judged image (and the input image) is
    non-zero exactly on an rf x rf window (D in eval mode: BatchNorm is then per position)."""
    side = 2 * rf + 32
    d = PatchDiscriminator(data_shape=(1, side, side), input_channels=1, receptive_field=rf, width=2)
    d = d.double().eval()
    assert receptive_field(d.net) == rf == d.receptive_field
    x = torch.randn(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 1, side, side, dtype=torch.float64, requires_grad=True)
    logits = d.patch_logits(x, y)
    h, w = logits.shape[2:]
    assert (h, w) == d.patch_shape
    logits[0, 0, h // 2, w // 2].backward()
    for grad in (x.grad[0, 0], y.grad[0, 0]):
        rows = grad.abs().sum(1).nonzero().flatten()
        cols = grad.abs().sum(0).nonzero().flatten()
        assert rows.max() - rows.min() + 1 == rf and cols.max() - cols.min() + 1 == rf
        assert rows.min() > 0 and cols.min() > 0 and rows.max() < side - 1  # not cut by the border
        assert int((grad != 0).sum()) == rf * rf  # every pixel of the window counts


def test_patchgan_70_at_256_is_the_papers_30x30_map():
    d = PatchDiscriminator(data_shape=(3, 256, 256), width=W)
    assert d.receptive_field == 70 and d.patch_shape == (30, 30) and d.patches == 900
    convs = [m for m in d.net if isinstance(m, nn.Conv2d)]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [c.out_channels for c in convs] == [W, 2 * W, 4 * W, 8 * W, 1]
    assert convs[0].in_channels == 6  # the (input, image) pair
    assert [type(m) for m in d.net[:2]] == [nn.Conv2d, nn.LeakyReLU]  # no norm on the first layer
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.net) == 3


def test_patchgan_scores_are_patches_flattened_sample_major():
    d = PatchDiscriminator(data_shape=(1, 64, 64), input_channels=2, receptive_field=34, width=W).eval()
    x, y = torch.randn(3, 1, 64, 64), torch.randn(3, 2, 64, 64)
    scores = d(x, y)
    assert scores.shape == (3 * d.patches,)
    per_sample = scores.view(3, -1)
    for i in range(3):  # sample i's patches, row-major, are row i
        torch.testing.assert_close(per_sample[i], d.patch_logits(x[i:i + 1], y[i:i + 1]).flatten())


def test_patchgan_judges_the_pair():
    d = PatchDiscriminator(data_shape=(1, 32, 32), receptive_field=16, width=W).eval()
    x = torch.randn(N, 1, 32, 32, requires_grad=True)
    y = torch.randn(N, 1, 32, 32, requires_grad=True)
    d(x, y).sum().backward()
    assert x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="input image"):
        d(x)


@pytest.mark.parametrize("kwargs", [dict(num_classes=10), dict(output="reconstruction"),
                                    dict(receptive_field=64), dict(receptive_field=286)])
def test_patchgan_bad_arguments(kwargs):
    args = dict(data_shape=(1, 32, 32), width=W) | kwargs  # 286 leaves no patch of 32 px
    with pytest.raises(ValueError):
        PatchDiscriminator(**args)


@pytest.mark.parametrize("override", [
    "model.generator.norm=layer", "model.generator.dropout=1.0", "model.generator.dropout_blocks=-1",
    "model.generator.width=0", "model.generator.num_downs=1", "model.discriminator.norm=group",
    "model.discriminator.width=0", "model.discriminator.receptive_field=64", "model.z_dim=0"])
def test_the_schema_refuses_bad_options(override):
    key = override.split("=")[0]
    assert_refused(["model=pix2pix", "dataset=fashion_edges", override], key.replace(".", r"\."))


def test_backward_reaches_all_parameters_and_spectral_norm_applies():
    g = UNetGenerator(z_dim=1, data_shape=(3, 32, 32), input_channels=1, width=W)
    d = PatchDiscriminator(data_shape=(3, 32, 32), input_channels=1, receptive_field=34, width=W)
    apply_spectral_norm(d)
    assert len(spectral_norm_layers(d)) == 4
    y = torch.randn(N, 1, 32, 32)
    d(g(None, y), y).mean().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
