"""PacGAN packing (Lin et al. 2018): shapes, which samples share a pack, errors, real models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_cli.models import dcgan, mlp
from gan_cli.models.pack import Packed, packed_shape
from tests.test_config import assert_refused


class Recorder(nn.Module):
    """A discriminator that keeps its (packed) input and scores each packed sample by a
    position-dependent sum, sum_j (j + 1) * v_j over its flattened values v."""

    def __init__(self, output="score"):
        super().__init__()
        self.output = output
        self.num_classes = 0
        self.seen = None

    def forward(self, x, y=None):
        self.seen = x.clone()
        if self.output == "reconstruction":
            return x
        v = x.flatten(1)
        weights = torch.arange(1, v.shape[1] + 1, dtype=v.dtype)
        return v @ weights


@pytest.mark.parametrize("shape, pack, expected", [
    ((3, 8, 8), 2, (6, 8, 8)),
    ((1, 28, 28), 4, (4, 28, 28)),
    ((2,), 4, (8,)),
    ((2,), 1, (2,)),
])
def test_packed_shape(shape, pack, expected):
    assert packed_shape(shape, pack) == expected


@pytest.mark.parametrize("pack", ["0", "-1", "2.0", "true"])
def test_the_schema_refuses_bad_packs(pack):
    # 0 and -1 by validate, 2.0 and true by composition (pack is an int); "2" composes as 2
    assert_refused(["model=mlp", f"model.discriminator.pack={pack}"], r"model\.discriminator\.pack")


def test_vectors_pack_consecutive_samples_in_order():
    # 6 samples of 2D, x_i = (10 i, 10 i + 1); pack 3: packs {0, 1, 2} and {3, 4, 5}
    x = torch.tensor([[10.0 * i, 10.0 * i + 1] for i in range(6)])
    inner = Recorder()
    scores = Packed(inner, 3)(x)
    assert inner.seen.tolist() == [[0, 1, 10, 11, 20, 21], [30, 31, 40, 41, 50, 51]]
    # weights 1..6: pack 0: 0*1 + 1*2 + 10*3 + 11*4 + 20*5 + 21*6 = 2 + 30 + 44 + 100 + 126 = 302
    # pack 1: 30 + 62 + 120 + 164 + 250 + 306 = 932
    assert scores.tolist() == [302.0, 932.0]


def test_images_pack_along_channels_keeping_each_sample_whole():
    # 4 images (C=2, H=1, W=2), x[i, c, 0, w] = 100 i + 10 c + w; pack 2: (2, 4, 1, 2) with
    # packed[k, j * C + c] = x[k * 2 + j, c]
    x = torch.tensor([[[[100.0 * i + 10 * c + w for w in range(2)]] for c in range(2)] for i in range(4)])
    inner = Recorder()
    out = Packed(inner, 2)(x)
    assert out.shape == (2,)
    assert inner.seen.shape == (2, 4, 1, 2)
    for k in range(2):
        for j in range(2):
            for c in range(2):
                assert torch.equal(inner.seen[k, j * 2 + c], x[k * 2 + j, c]), (k, j, c)


def test_changing_one_sample_changes_only_its_own_pack():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, generator=g)
    D = Packed(Recorder(), 2)
    before = D(x)
    x2 = x.clone()
    x2[5] += 1.0  # sample 5 lives in pack 2 (samples 4, 5)
    changed = (D(x2) != before).tolist()
    assert changed == [False, False, True, False]


def test_channels_last_input_gives_the_same_scores():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 2, 8, 8, generator=g)
    D = Packed(Recorder(), 2)
    torch.testing.assert_close(D(x.contiguous(memory_format=torch.channels_last)), D(x))


def test_reconstruction_is_unpacked_to_the_input_shape():
    x = torch.arange(24.0).reshape(6, 1, 2, 2)
    out = Packed(Recorder(output="reconstruction"), 3)(x)
    assert torch.equal(out, x)  # the identity "autoencoder" gives each sample back in place


def test_batch_not_divisible_by_pack_is_refused():
    with pytest.raises(ValueError, match="divisible by 4"):
        Packed(Recorder(), 4)(torch.zeros(6, 2))


def test_conditions_are_refused():
    with pytest.raises(ValueError, match="unconditional"):
        Packed(Recorder(), 2)(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    conditional = mlp.Discriminator(data_shape=(4,), num_classes=3, conditional=True)
    with pytest.raises(ValueError, match="num_classes=3"):
        Packed(conditional, 2)


def test_with_the_mlp_discriminator_scores_and_gradients():
    torch.manual_seed(0)
    inner = mlp.Discriminator(data_shape=packed_shape((2,), 4), hidden=[8, 8])
    D = Packed(inner, 4)
    assert D.num_classes == 0 and D.output == "score"
    x = torch.randn(8, 2)
    scores = D(x)
    assert scores.shape == (2,)
    torch.testing.assert_close(scores, inner(x.reshape(2, 8)))
    scores.sum().backward()
    assert all(p.grad is not None for p in D.parameters())
    assert all(k.startswith("inner.") for k in D.state_dict())


def test_with_the_dcgan_discriminator_and_features():
    torch.manual_seed(0)
    D = Packed(dcgan.Discriminator(data_shape=packed_shape((1, 16, 16), 2), width=4), 2)
    assert D(torch.randn(6, 1, 16, 16)).shape == (3,)
    F = Packed(dcgan.Discriminator(data_shape=packed_shape((1, 16, 16), 2), width=4,
                                   output="features", feature_dim=5), 2)
    assert F.output == "features"
    assert F(torch.randn(6, 1, 16, 16)).shape == (3, 5)
