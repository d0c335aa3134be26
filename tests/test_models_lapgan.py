"""LAPGAN: the pyramid operators by hand, exact reconstruction, level batches, networks, cascade."""

from __future__ import annotations

import pytest
import torch

from gan_cli import losses
from gan_cli.data.base import Batch
from gan_cli.data.figures import save_sampling_figure
from gan_cli.data.pyramids import (
    downsample,
    gaussian_pyramid,
    laplacian_pyramid,
    level_shapes,
    reconstruct,
    upsample,
)
from gan_cli.errors import ConfigError
from gan_cli.models.lapgan import (
    CoarseDiscriminator,
    CoarseGenerator,
    LAPGANCascade,
    LevelCondition,
    LevelDiscriminator,
    LevelGenerator,
    prepare,
)
from gan_cli.models.layers import apply_spectral_norm, spectral_norm_layers
from tests.test_training_extensions import compose_train

Z = 6
N = 3


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build_levels(data_shape, levels=3, num_classes=0, conditional=None):
    """[G_0, ..., G_K] and [D_0, ..., D_K], small."""
    shapes = level_shapes(data_shape, levels)
    gens = [LevelGenerator(z_dim=Z, data_shape=s, num_classes=num_classes, width=8, conditional=conditional)
            for s in shapes[:-1]]
    gens.append(CoarseGenerator(z_dim=Z, data_shape=shapes[-1], num_classes=num_classes, hidden=[16],
                                conditional=conditional))
    discs = [LevelDiscriminator(data_shape=s, num_classes=num_classes, width=8, conditional=conditional)
             for s in shapes[:-1]]
    discs.append(CoarseDiscriminator(data_shape=shapes[-1], num_classes=num_classes, hidden=[16],
                                     conditional=conditional))
    return gens, discs


# ---------------------------------------------------------------- the operators, by hand


def test_downsample_is_the_1331_filter_with_renormalised_borders():
    # rows constant, columns v = j^2 = 0 1 4 9 16 25 36 49: coarse column i is centred at 2i + 1/2
    # i = 1: (v1 + 3 v2 + 3 v3 + v4) / 8 = (1 + 12 + 27 + 16) / 8 = 7
    # i = 2: (v3 + 3 v4 + 3 v5 + v6) / 8 = (9 + 48 + 75 + 36) / 8 = 21
    # i = 0: v_-1 is missing: (3 v0 + 3 v1 + v2) / 7 = (0 + 3 + 4) / 7 = 1
    # i = 3: v_8 is missing: (v5 + 3 v6 + 3 v7) / 7 = (25 + 108 + 147) / 7 = 40
    x = (torch.arange(8.0) ** 2).expand(1, 1, 4, 8)
    out = downsample(x)
    assert out.shape == (1, 1, 2, 4)
    torch.testing.assert_close(out[0, 0], torch.tensor([[1.0, 7.0, 21.0, 40.0]] * 2))


def test_downsample_is_separable():
    # an impulse at fine (2, 2): fine row 2 is tap 4 (weight 1, renormalised by 7) of coarse row 0
    # and tap 2 (weight 3/8) of coarse row 1; coarse rows 2, 3 do not reach it. Same for columns.
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 2, 2] = 1.0
    profile = torch.tensor([1 / 7, 3 / 8, 0.0, 0.0])
    torch.testing.assert_close(downsample(x)[0, 0], torch.outer(profile, profile))


def test_upsample_is_bilinear_with_half_pixel_centres():
    # J = 1 5 2: u[0] = J0 (border) = 1, u[1] = (3*1 + 5)/4 = 2, u[2] = (1 + 3*5)/4 = 4,
    # u[3] = (3*5 + 2)/4 = 4.25, u[4] = (5 + 3*2)/4 = 2.75, u[5] = J2 (border) = 2
    j = torch.tensor([1.0, 5.0, 2.0]).expand(1, 1, 2, 3)
    out = upsample(j)
    assert out.shape == (1, 1, 4, 6)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([1.0, 2.0, 4.0, 4.25, 2.75, 2.0]))


def test_odd_side_cannot_be_halved():
    with pytest.raises(ValueError, match="even sides"):
        downsample(torch.zeros(1, 1, 7, 8))


# ---------------------------------------------------------------- pyramids


def test_constant_image_has_zero_high_pass():
    x = torch.full((2, 3, 16, 16), 0.3)
    pyr = laplacian_pyramid(x, 3)
    assert [p.shape[-1] for p in pyr] == [16, 8, 4]
    for h in pyr[:-1]:
        torch.testing.assert_close(h, torch.zeros_like(h), atol=1e-6, rtol=0)
    torch.testing.assert_close(pyr[-1], torch.full((2, 3, 4, 4), 0.3))


def test_pyramids_follow_their_definition():
    x = torch.randn(2, 1, 28, 28)
    gauss = gaussian_pyramid(x, 3)
    lap = laplacian_pyramid(x, 3)
    assert [g.shape[-2:] for g in gauss] == [(28, 28), (14, 14), (7, 7)]
    assert gauss[0] is x
    torch.testing.assert_close(gauss[2], downsample(downsample(x)))
    torch.testing.assert_close(lap[0], x - upsample(downsample(x)))
    torch.testing.assert_close(lap[1], gauss[1] - upsample(gauss[2]))
    torch.testing.assert_close(lap[2], gauss[2])


@pytest.mark.parametrize(("shape", "levels"), [((2, 1, 28, 28), 3), ((2, 3, 32, 32), 3), ((1, 3, 32, 32), 4),
                                               ((1, 2, 16, 24), 3), ((1, 1, 8, 8), 1)])
def test_reconstruction_is_exact(shape, levels):
    x = torch.rand(shape) * 2 - 1
    pyr = laplacian_pyramid(x, levels)
    assert len(pyr) == levels
    torch.testing.assert_close(reconstruct(pyr), x, atol=1e-6, rtol=0)
    x64 = x.double()
    assert (reconstruct(laplacian_pyramid(x64, levels)) - x64).abs().max() < 1e-14


def test_level_shapes():
    assert level_shapes((1, 28, 28), 3) == [(1, 28, 28), (1, 14, 14), (1, 7, 7)]
    assert level_shapes((3, 32, 32), 3) == [(3, 32, 32), (3, 16, 16), (3, 8, 8)]
    with pytest.raises(ValueError, match="cannot be halved 3 times"):
        level_shapes((1, 28, 28), 4)  # 7 is odd
    with pytest.raises(ValueError, match="image data"):
        level_shapes((2,), 3)


# ---------------------------------------------------------------- level batches


@pytest.mark.parametrize("labelled", [True, False])
def test_prepare_outputs_sum_back_to_the_image(labelled):
    x = torch.rand(N, 3, 32, 32) * 2 - 1
    labels = torch.tensor([0, 4, 9]) if labelled else None
    gauss = gaussian_pyramid(x, 3)
    batches = [prepare(k, Batch(x, labels), levels=3) for k in range(3)]
    for k in range(2):
        h, cond = batches[k].x, batches[k].y
        assert isinstance(cond, LevelCondition)
        assert cond.labels is labels
        torch.testing.assert_close(cond.image, upsample(gauss[k + 1]))  # l_k = u(I_{k+1})
        torch.testing.assert_close(h + cond.image, gauss[k], atol=1e-6, rtol=0)  # h_k + l_k = I_k
    assert batches[2].y is labels  # the coarsest level: a plain batch
    torch.testing.assert_close(batches[2].x, gauss[2])
    torch.testing.assert_close(reconstruct([b.x for b in batches]), x, atol=1e-6, rtol=0)


def test_level_condition_moves_like_a_tensor():
    cond = LevelCondition(torch.zeros(2, 1, 4, 4), torch.tensor([1, 2]))
    moved = cond.to("meta", torch.float64)
    assert moved.image.device.type == moved.labels.device.type == "meta"
    assert moved.image.dtype == torch.float64 and moved.labels.dtype == torch.int64
    assert LevelCondition(torch.zeros(1, 1, 2, 2)).to(torch.float16).labels is None


def test_prepare_checks_the_level():
    with pytest.raises(ValueError, match="out of range"):
        prepare(3, Batch(torch.zeros(1, 1, 28, 28)), levels=3)


# ---------------------------------------------------------------- networks


@pytest.mark.parametrize(("data_shape", "sides"), [((1, 28, 28), [28, 14, 7]), ((3, 32, 32), [32, 16, 8])])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_network_shapes_at_every_level(data_shape, sides, num_classes):
    gens, discs = build_levels(data_shape, num_classes=num_classes)
    c = data_shape[0]
    y = torch.tensor([1, 2, 3]) if num_classes else None
    for k, side in enumerate(sides):
        assert gens[k].num_classes == discs[k].num_classes == num_classes
        z = torch.randn(N, Z)
        cond = y if k == 2 else LevelCondition(torch.randn(N, c, side, side), y)
        out = gens[k](z, cond)
        assert out.shape == (N, c, side, side)
        assert discs[k](out, cond).shape == (N,)


def test_level_generator_layout():
    g = LevelGenerator(z_dim=Z, data_shape=(3, 16, 16), num_classes=5, width=8, depth=3, noise_channels=2)
    convs = [m for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3
    assert convs[0].in_channels == 3 + 2 + 1  # l_k, two noise planes, the label plane
    assert convs[-1].out_channels == 3
    assert g.noise.out_features == 2 * 16 * 16
    assert not any(isinstance(m, torch.nn.Tanh) for m in g.modules())  # the high-pass is not squashed


def test_generator_uses_noise_image_and_labels():
    g = LevelGenerator(z_dim=Z, data_shape=(1, 14, 14), num_classes=4, width=8).eval()
    z, low = torch.randn(N, Z), torch.randn(N, 1, 14, 14)
    labels = torch.tensor([0, 1, 2])
    base = g(z, LevelCondition(low, labels))
    assert torch.equal(base, g(z, LevelCondition(low, labels)))
    for other in (g(torch.randn(N, Z), LevelCondition(low, labels)),
                  g(z, LevelCondition(torch.randn(N, 1, 14, 14), labels)),
                  g(z, LevelCondition(low, torch.tensor([3, 0, 1])))):
        assert (other - base).abs().flatten(1).max(1).values.min() > 0  # every sample moves
    with pytest.raises(ValueError, match="without labels"):
        g(z, low)


def test_unconditional_level_ignores_labels_and_takes_a_bare_image():
    g = LevelGenerator(z_dim=Z, data_shape=(1, 14, 14), num_classes=4, width=8, conditional=False).eval()
    assert g.num_classes == 0
    z, low = torch.randn(N, Z), torch.randn(N, 1, 14, 14)
    assert torch.equal(g(z, low), g(z, LevelCondition(low, torch.tensor([0, 1, 2]))))
    with pytest.raises(ValueError, match="LevelCondition"):
        g(z, torch.tensor([0, 1, 2]))


def test_discriminator_add_sees_the_sum_concat_sees_both():
    h, low, other = torch.randn(N, 3, 16, 16), torch.randn(N, 3, 16, 16), torch.randn(N, 3, 16, 16)
    add = LevelDiscriminator(data_shape=(3, 16, 16), width=8, combine="add")
    # the paper: l_k is added to h before the first convolution, so only h + l_k matters
    torch.testing.assert_close(add(h, low), add(h + low - other, other))
    cat = LevelDiscriminator(data_shape=(3, 16, 16), width=8, combine="concat")
    assert cat.trunk[0].in_channels == 6
    assert (cat(h, low) - cat(h + low - other, other)).abs().min() > 0


def test_discriminator_layout_halves_to_eight_or_less():
    for side, halvings in ((32, 2), (16, 1), (28, 2), (14, 1)):
        d = LevelDiscriminator(data_shape=(1, side, side), width=4)
        strided = [m for m in d.trunk if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
        assert len(strided) == halvings
        assert d.head.in_features == 4 * 2 ** halvings * (side // 2 ** halvings) ** 2
        # batch norm after each strided convolution by default (DCGAN's placement), none without
        norms = [m for m in d.trunk if isinstance(m, torch.nn.BatchNorm2d)]
        assert len(norms) == halvings
        plain = LevelDiscriminator(data_shape=(1, side, side), width=4, batch_norm=False)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())


def test_configuration_errors():
    with pytest.raises(ValueError, match="num_classes > 0"):
        LevelGenerator(z_dim=Z, data_shape=(1, 14, 14), conditional=True)
    with pytest.raises(ConfigError, match="combine"):  # the schema's
        compose_train("model=lapgan", "model.level_discriminator.combine=multiply")
    with pytest.raises(ValueError, match="output='score'"):
        LevelDiscriminator(data_shape=(1, 14, 14), output="reconstruction")
    with pytest.raises(ConfigError, match="odd"):
        compose_train("model=lapgan", "model.level_generator.kernel_size=4")
    with pytest.raises(ValueError, match="num_classes > 0"):
        CoarseGenerator(z_dim=Z, data_shape=(1, 7, 7), conditional=True)


def test_gradient_penalty_and_spectral_norm_take_a_level_condition():
    d = apply_spectral_norm(LevelDiscriminator(data_shape=(3, 16, 16), num_classes=4, width=8))
    assert len(spectral_norm_layers(d)) == 4  # 2 convolutions, the head, the label embedding
    g = LevelGenerator(z_dim=Z, data_shape=(3, 16, 16), num_classes=4, width=8)
    cond = LevelCondition(torch.randn(N, 3, 16, 16), torch.tensor([0, 1, 3]))
    real, fake = torch.randn(N, 3, 16, 16), g(torch.randn(N, Z), cond).detach()
    loss, stats = losses.WGANGP(gp_lambda=10.0).d_loss(d, real, fake, cond)
    loss.backward()
    assert stats["gp"] > 0
    assert all(p.grad is not None for p in d.parameters())


# ---------------------------------------------------------------- cascade


@pytest.mark.parametrize(("data_shape", "num_classes"), [((1, 28, 28), 10), ((3, 32, 32), 0)])
def test_cascade_samples_from_the_coarsest_level_up(data_shape, num_classes):
    gens, _ = build_levels(data_shape, num_classes=num_classes)
    cascade = LAPGANCascade(gens).eval()
    assert cascade.z_dim == 3 * Z and cascade.num_classes == num_classes
    assert cascade.data_shape == data_shape
    z = torch.randn(N, cascade.z_dim)
    y = torch.tensor([0, 5, 9]) if num_classes else None
    levels = cascade.levels(z, y)
    c, side = data_shape[0], data_shape[1]
    want = [(N, c, side // 4, side // 4), (N, c, side // 2, side // 2), (N, *data_shape)]
    assert [image.shape for image, _ in levels] == want
    # by hand: I_2 = G_2(z_2); I_1 = u(I_2) + G_1(z_1, u(I_2)); I_0 = u(I_1) + G_0(z_0, u(I_1))
    z0, z1, z2 = z[:, :Z], z[:, Z:2 * Z], z[:, 2 * Z:]
    i2 = gens[2](z2, y)
    h1 = gens[1](z1, LevelCondition(upsample(i2), y))
    i1 = upsample(i2) + h1
    h0 = gens[0](z0, LevelCondition(upsample(i1), y))
    i0 = upsample(i1) + h0
    for (image, high), (want_image, want_high) in zip(levels, [(i2, i2), (i1, h1), (i0, h0)], strict=True):
        torch.testing.assert_close(image, want_image)
        torch.testing.assert_close(high, want_high)
    torch.testing.assert_close(cascade(z, y), i0)


def test_each_level_has_its_own_latent_slice():
    gens, _ = build_levels((1, 28, 28))
    cascade = LAPGANCascade(gens).eval()
    z = torch.randn(N, cascade.z_dim)
    finer = z.clone()
    finer[:, :Z] = torch.randn(N, Z)  # only z_0, the finest level's
    a, b = cascade.levels(z), cascade.levels(finer)
    torch.testing.assert_close(a[0][0], b[0][0])
    torch.testing.assert_close(a[1][0], b[1][0])
    assert not torch.allclose(a[2][0], b[2][0])
    coarser = z.clone()
    coarser[:, 2 * Z:] = torch.randn(N, Z)  # z_K changes every level
    assert not torch.allclose(cascade.levels(coarser)[0][0], a[0][0])


def test_cascade_checks_shapes():
    gens, _ = build_levels((1, 28, 28))
    with pytest.raises(ValueError, match="do not halve"):
        LAPGANCascade([gens[0], gens[2]])
    with pytest.raises(ValueError, match=r"\(N, 18\)"):
        LAPGANCascade(gens)(torch.randn(N, 5))


def test_sampling_figure(tmp_path):
    gens, _ = build_levels((1, 28, 28))
    cascade = LAPGANCascade(gens).eval()
    with torch.no_grad():
        levels = cascade.levels(torch.randn(2, cascade.z_dim))
    assert len(levels) == 3 and not levels[-1][0].requires_grad
    cells = save_sampling_figure(levels, tmp_path / "cascade.png")
    assert (tmp_path / "cascade.png").stat().st_size > 0
    assert cells.shape == (2 * 5, 1, 28, 28)  # columns: I_2 | h_1 | I_1 | h_0 | I_0
    row = cells[:5]
    torch.testing.assert_close(row[0], levels[0][0][0].repeat_interleave(4, 1).repeat_interleave(4, 2))
    torch.testing.assert_close(row[4], levels[2][0][0])
    h0 = levels[2][1]
    torch.testing.assert_close(row[3], h0[0] / h0.abs().max())  # stretched by the column's largest |h|
    assert cells[3::5].abs().max() == pytest.approx(1.0)
