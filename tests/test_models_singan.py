"""SinGAN: scale sizes and the noise amplitude rule by hand, per-scale networks, the cascade, the
patch gradient penalty and the reconstruction regulariser by hand, and two scales trained a few
steps with them."""

from __future__ import annotations

import math

import pytest
import torch

from gan_cli import losses
from gan_cli.data.base import Batch
from gan_cli.data.pyramids import image_pyramid, resize_image, scale_sizes
from gan_cli.errors import ConfigError
from gan_cli.losses import RegContext, SinGANReconstruction, SinGANWGANGP, patch_gradient_penalty
from gan_cli.models.singan import (
    ScaleDiscriminator,
    ScaleGenerator,
    SinGANCascade,
    init_from_previous,
    noise_amplitude,
    prepare,
    scale_width,
)
from tests.test_training_extensions import compose_train

W = 8  # narrow networks keep the file fast


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def lively(net: torch.nn.Module) -> torch.nn.Module:
    """Unit-gain weights, so that an untrained network's output visibly depends on its inputs
    (at the N(0, 0.02) init, G's residual is ~1e-5 and any input-routing bug would hide in it)."""
    with torch.no_grad():
        for conv in (m for m in net.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.weight.normal_(0.0, 2.0 / conv.weight[0].numel() ** 0.5)
    return net


def build(sizes, c=3, width=W, batch_norm=True):
    gens = [lively(ScaleGenerator(data_shape=(c, *s), scale=n, width=width, batch_norm=batch_norm))
            for n, s in enumerate(sizes)]
    discs = [ScaleDiscriminator(data_shape=(c, *s), scale=n, width=width, batch_norm=batch_norm)
             for n, s in enumerate(sizes)]
    return gens, discs


def zero_residual(g: ScaleGenerator, bias: float = 0.0) -> None:
    """Make g's last convolution output the constant ``bias``: G(z, y) = y + tanh(bias)."""
    last = [m for m in g.body if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(bias)


# ---------------------------------------------------------------- scales, by hand


def test_scale_sizes_square():
    # 100 px, min 25, factor 0.75: N = ceil(log(25/100) / log(0.75)) = ceil(4.82) = 5 steps, and the
    # factor is adjusted to r = 0.25 ** (1/5) = 0.75786: 100 r^5 = 25, 100 r^4 = 32.99, 100 r^3 = 43.53,
    # 100 r^2 = 57.43, 100 r = 75.79
    assert scale_sizes(100, 100, 25, 250, 0.75) == [(25, 25), (33, 33), (44, 44), (57, 57), (76, 76),
                                                    (100, 100)]


def test_scale_sizes_shrink_to_max_size_and_keep_the_aspect_ratio():
    # 300 x 451 (skimage's chelsea), max 250: x 250/451 -> 166.3 x 250 -> (166, 250);
    # N = ceil(log(25/166) / log(0.75)) = ceil(6.58) = 7; r = (25/166) ** (1/7) = 0.76304;
    # heights 166 r^k, k = 7..0: 25, 32.76, 42.94, 56.27, 73.75, 96.65, 126.66, 166
    # widths  250 r^k:           37.65, 49.34, 64.67, 84.75, 111.07, 145.56, 190.76, 250
    assert scale_sizes(300, 451) == [(25, 38), (33, 49), (43, 65), (56, 85), (74, 111), (97, 146),
                                     (127, 191), (166, 250)]


@pytest.mark.slow
def test_scale_sizes_small_images():
    assert scale_sizes(20, 30) == [(20, 30)]  # shorter side <= min_size: one scale, not enlarged
    assert scale_sizes(40, 60, max_size=250)[-1] == (40, 60)  # never enlarged to max_size
    # 40 px: N = ceil(log(25/40) / log(0.75)) = ceil(1.63) = 2, r = 0.625 ** 0.5 = 0.7906:
    # 40 r = 31.62, 60 r = 47.43, 60 r^2 = 37.5 (rounded: 37 or 38 by float rounding; not checked)
    assert scale_sizes(40, 60)[0][0] == 25 and scale_sizes(40, 60)[1] == (32, 47)
    # factor outside (0, 1) and min_size > max_size: the schema's
    with pytest.raises(ConfigError, match="factor"):
        compose_train("dataset=single_image", "dataset.scale_factor=1.0")
    with pytest.raises(ConfigError, match="min_size"):
        compose_train("dataset=single_image", "dataset.min_size=300", "dataset.max_size=250")


def test_scale_width_doubles_every_four_scales_up_to_128():
    assert [scale_width(n) for n in range(13)] == [32] * 4 + [64] * 4 + [128] * 5


def test_noise_amplitude_by_hand():
    rec_up = torch.zeros(1, 1, 2, 2)
    real = torch.tensor([[[[1.0, -1.0], [3.0, 1.0]]]])
    # RMSE = sqrt((1 + 1 + 9 + 1) / 4) = sqrt(3)
    assert noise_amplitude(rec_up, real).item() == pytest.approx(0.1 * math.sqrt(3), rel=1e-6)
    assert noise_amplitude(rec_up, real, init=1.0).item() == pytest.approx(math.sqrt(3), rel=1e-6)
    # a batch of copies gives the same value
    assert noise_amplitude(rec_up, real.expand(4, -1, -1, -1)).item() == pytest.approx(0.1 * math.sqrt(3))


def test_image_pyramid_and_resize():
    x = torch.rand(1, 3, 60, 90) * 2.2 - 1.1
    sizes = scale_sizes(60, 90)
    pyr = image_pyramid(x, sizes)
    assert [tuple(p.shape[-2:]) for p in pyr] == sizes
    assert all(p.abs().max() <= 1.0 for p in pyr)
    assert resize_image(x, (60, 90)) is x
    const = torch.full((1, 3, 25, 37), 0.4)
    torch.testing.assert_close(resize_image(const, (33, 49)), torch.full((1, 3, 33, 49), 0.4))


# ---------------------------------------------------------------- networks


def test_generator_is_residual_and_scales_its_noise():
    g = ScaleGenerator(data_shape=(3, 25, 30), width=W).eval()
    z, y = torch.randn(2, 3, 25, 30), torch.randn(2, 3, 25, 30)
    a = g(z, y)
    assert a.shape == (2, 3, 25, 30)
    with torch.no_grad():
        g.noise_amp.fill_(0.0)  # sigma 0: the noise no longer reaches the output
    torch.testing.assert_close(g(z, y), g(torch.randn(2, 3, 25, 30), y))
    zero_residual(g)
    torch.testing.assert_close(g(z, y), y)  # g_n's output 0: the coarser image passes through


def test_generator_pads_once_and_keeps_the_size_at_any_shape():
    g = ScaleGenerator(data_shape=(3, 25, 25), width=W, depth=5, kernel_size=3)
    assert g.pad == 5
    convs = [m for m in g.body if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 5 and all(c.padding == (0, 0) for c in convs)
    assert g(torch.randn(1, 3, 40, 61), torch.zeros(1, 3, 40, 61)).shape == (1, 3, 40, 61)
    assert g(torch.randn(1, 1, 30, 30)).shape == (1, 3, 30, 30)  # one noise channel broadcasts
    z = torch.randn(2, 3, 25, 25)
    g.eval()
    torch.testing.assert_close(g(z.flatten(1)), g(z))  # the flat latent is the map
    assert g.z_dim == 3 * 25 * 25


def test_widths_and_depth_follow_the_scale():
    for scale, width in ((0, 32), (3, 32), (4, 64), (8, 128), (11, 128)):
        g = ScaleGenerator(data_shape=(3, 25, 25), scale=scale)
        d = ScaleDiscriminator(data_shape=(3, 25, 25), scale=scale)
        for net in (g, d):
            convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
            assert len(convs) == 5
            assert [m.out_channels for m in convs[:-1]] == [width] * 4
        assert [m for m in g.body if isinstance(m, torch.nn.Conv2d)][-1].out_channels == 3
        assert isinstance(g.body[-1], torch.nn.Tanh)


def test_reconstruction_noise_only_at_the_coarsest_scale():
    g0 = ScaleGenerator(data_shape=(3, 25, 25), scale=0)
    g1 = ScaleGenerator(data_shape=(3, 33, 33), scale=1)
    assert g0.z_rec.std() > 0.5 and torch.count_nonzero(g1.z_rec) == 0
    assert {"noise_amp", "z_rec"} <= set(g0.state_dict())


def test_discriminator_judges_11x11_patches():
    d = ScaleDiscriminator(data_shape=(3, 30, 34), width=W).eval()  # eval: BN does not mix positions
    assert d.patch_size == 11
    x = torch.randn(1, 3, 30, 34, requires_grad=True)
    scores = d.patch_scores(x)
    assert scores.shape == (1, 1, 20, 24)
    torch.testing.assert_close(d(x), scores.mean(dim=(1, 2, 3)))
    scores[0, 0, 5, 7].backward()
    touched = x.grad[0].abs().sum(0) > 0
    rows, cols = touched.nonzero(as_tuple=True)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (5, 15, 7, 17)  # an 11x11 window
    with pytest.raises(ValueError, match="smaller than the 11x11 patch"):
        ScaleDiscriminator(data_shape=(3, 10, 30))


def test_configuration_errors():
    singan = ("model=singan", "loss=singan_wgan_gp", "dataset=single_image")
    with pytest.raises(ConfigError, match="z_dim"):  # the schema's
        compose_train(*singan, "model.z_dim=100")
    with pytest.raises(ConfigError, match="odd"):
        compose_train(*singan, "model.generator.kernel_size=4")
    with pytest.raises(ValueError, match="output='score'"):
        ScaleDiscriminator(data_shape=(3, 25, 25), output="reconstruction")


def test_init_from_previous_copies_when_widths_agree():
    g0 = ScaleGenerator(data_shape=(3, 25, 25), scale=0, width=W)
    g1 = ScaleGenerator(data_shape=(3, 33, 33), scale=1, width=W)
    z_rec_1 = g1.z_rec.clone()
    assert init_from_previous(g1, g0)
    torch.testing.assert_close(g1.body[0].weight, g0.body[0].weight)
    assert torch.equal(g1.z_rec, z_rec_1)  # its own reconstruction noise (zeros), not z*
    g4 = ScaleGenerator(data_shape=(3, 50, 50), scale=4, width=W)
    before = g4.body[0].weight.clone()
    assert not init_from_previous(g4, g1)  # 16 channels against 8
    assert torch.equal(g4.body[0].weight, before)


# ---------------------------------------------------------------- the cascade


SIZES = [(25, 31), (32, 40)]


def test_cascade_chains_the_scales():
    gens, _ = build(SIZES)
    cascade = SinGANCascade(gens).eval()
    assert cascade.z_dim == 3 * (25 * 31 + 32 * 40) and cascade.data_shape == (3, 32, 40)
    assert cascade.num_classes == 0
    z = torch.randn(2, cascade.z_dim)
    z0 = z[:, : 3 * 25 * 31].reshape(2, 3, 25, 31)
    z1 = z[:, 3 * 25 * 31:].reshape(2, 3, 32, 40)
    by_hand = gens[1](z1, resize_image(gens[0](z0), (32, 40)))
    torch.testing.assert_close(cascade(z), by_hand)


def test_samples_at_other_sizes_and_aspect_ratios():
    gens, _ = build(SIZES)
    cascade = SinGANCascade(gens).eval()
    assert cascade.sample(2).shape == (2, 3, 32, 40)
    assert cascade.sample(2, scale_h=1.0, scale_w=2.0).shape == (2, 3, 32, 80)  # twice as wide
    assert cascade.sample(1, scale_h=0.5, scale_w=1.5).shape == (1, 3, 16, 60)
    assert cascade.sample(1, upto=0).shape == (1, 3, 25, 31)
    a = cascade.sample(1, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, cascade.sample(1, generator=torch.Generator().manual_seed(3)))


def test_reconstruction_path():
    gens, _ = build(SIZES)
    cascade = SinGANCascade(gens).eval()
    rec0 = gens[0](gens[0].z_rec)  # z* at the coarsest scale
    torch.testing.assert_close(cascade.reconstruct(0), rec0)
    rec1 = gens[1](torch.zeros(1, 3, 32, 40), resize_image(rec0, (32, 40)))  # zeros above
    torch.testing.assert_close(cascade.reconstruct(1), rec1)
    torch.testing.assert_close(cascade.reconstruction_input(1), resize_image(rec0, (32, 40)))
    assert torch.count_nonzero(cascade.reconstruction_input(0)) == 0


def test_begin_scale_sets_the_noise_amplitude_from_the_reconstruction_error():
    gens, _ = build(SIZES)
    zero_residual(gens[0], bias=math.atanh(0.5))  # G_0 outputs 0.5 everywhere: x^rec_0 = 0.5
    cascade = SinGANCascade(gens).eval()
    reg = SinGANReconstruction(alpha=10.0)
    assert cascade.begin_scale(0, torch.zeros(1, 3, 25, 31), reg) == 1.0  # sigma_0 = 1
    assert torch.equal(reg.z, gens[0].z_rec) and torch.count_nonzero(reg.y) == 0
    # real_1 = 0.5 +- 0.2 (checkerboard): up(x^rec_0) = 0.5, so RMSE = 0.2 and sigma_1 = 0.1 * 0.2
    sign = (torch.arange(32)[:, None] + torch.arange(40)[None, :]) % 2 * 2 - 1
    real1 = (0.5 + 0.2 * sign.float()).expand(1, 3, 32, 40)
    sigma = cascade.begin_scale(1, real1, reg)
    assert sigma == pytest.approx(0.02, rel=1e-5)
    assert gens[1].noise_amp.item() == pytest.approx(0.02, rel=1e-5)
    assert gens[0].noise_amp.item() == 1.0
    assert torch.count_nonzero(reg.z) == 0
    torch.testing.assert_close(reg.y, torch.full((1, 3, 32, 40), 0.5))


def test_begin_scale_uses_the_reconstruction_not_a_random_sample():
    gens, _ = build(SIZES)
    cascade = SinGANCascade(gens).eval()
    with torch.no_grad():
        rec_up = resize_image(gens[0](gens[0].z_rec), (32, 40))  # up(G_0(z*)), composed by hand
        random_up = resize_image(gens[0](torch.randn(1, 3, 25, 31)), (32, 40))
    assert (random_up - rec_up).square().mean().sqrt() > 0.3  # noise changes G_0's output a lot
    sign = (torch.arange(32)[:, None] + torch.arange(40)[None, :]) % 2 * 2 - 1
    real1 = rec_up + 0.1 * sign.float()  # 0.1 away from the reconstruction everywhere: RMSE 0.1
    assert cascade.begin_scale(1, real1) == pytest.approx(0.1 * 0.1, rel=1e-4)


def test_prepare_gives_the_real_image_and_an_upsampled_coarser_sample():
    gens, _ = build(SIZES)
    for g in gens:
        g.eval()
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    b0 = prepare(0, Batch(x), [], sizes=SIZES)
    assert b0.x.shape == (2, 3, 25, 31)  # resized to scale 0
    assert torch.count_nonzero(b0.y) == 0
    torch.manual_seed(5)
    b1 = prepare(1, Batch(x), gens[:1], sizes=SIZES)
    assert b1.x is x
    torch.manual_seed(5)
    noise = torch.randn(2, 3, 25, 31)
    torch.testing.assert_close(b1.y, resize_image(gens[0](noise), (32, 40)))
    assert not b1.y.requires_grad
    with pytest.raises(ValueError, match="coarser generators"):
        prepare(1, Batch(x), [], sizes=SIZES)


# ---------------------------------------------------------------- SinGAN's gradient penalty


def linear_patch_critic(w: list[float]) -> ScaleDiscriminator:
    """A 1x1-patch critic whose patch score is w . (x + 10): conv1 = identity + 10 (inside the
    LeakyReLU's linear part for x in [-1, 1]), conv2 = w."""
    d = ScaleDiscriminator(data_shape=(3, 4, 4), width=3, depth=2, kernel_size=1, batch_norm=False)
    conv1, conv2 = [m for m in d.body if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        conv1.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
        conv1.bias.fill_(10.0)
        conv2.weight.copy_(torch.tensor(w).reshape(1, 3, 1, 1))
        conv2.bias.zero_()
    return d


class Wrapper(torch.nn.Module):
    """Stands for DistributedDataParallel: the model is its ``module``."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x, y=None):
        return self.module(x, y)


def test_patch_gradient_penalty_by_hand():
    d = linear_patch_critic([3.0, 4.0, 0.0])
    assert d.patch_size == 1 and d.patch_count(4, 4) == 16
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    # the summed patch scores S = sum over pixels of w . (x + 10): at every pixel dS/dx = w, |w| = 5
    # GP = (5 - 1)^2 = 16
    assert patch_gradient_penalty(d, x).item() == pytest.approx(16.0, rel=1e-5)
    assert patch_gradient_penalty(Wrapper(d), x).item() == pytest.approx(16.0, rel=1e-5)
    # the repo's penalty on the mean score: dD/dx = w / 16 per pixel, whole-image norm 5 / 4 = 1.25:
    # (1.25 - 1)^2 = 0.0625, a 256 times weaker pull on this critic
    assert losses.gradient_penalty(d, x).item() == pytest.approx(0.0625, rel=1e-5)


def test_singan_wgan_gp_loss_by_hand():
    d = linear_patch_critic([3.0, 4.0, 0.0])
    real, fake = torch.full((1, 3, 4, 4), 0.5), torch.full((1, 3, 4, 4), -0.5)
    loss_fn = SinGANWGANGP()
    assert loss_fn.gp_lambda == 0.1 and loss_fn.n_critic == 3 and loss_fn.double_backward
    loss, stats = loss_fn.d_loss(d, real, fake)
    # D(real) = 3 * 10.5 + 4 * 10.5 = 73.5, D(fake) = 7 * 9.5 = 66.5; loss = 66.5 - 73.5 + 0.1 * 16
    assert stats["wasserstein"].item() == pytest.approx(7.0, rel=1e-5)
    assert stats["gp"].item() == pytest.approx(16.0, rel=1e-5)
    assert loss.item() == pytest.approx(-7.0 + 1.6, rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in d.parameters())


# ---------------------------------------------------------------- the reconstruction regulariser


def test_reconstruction_loss_by_hand():
    g = ScaleGenerator(data_shape=(1, 2, 2), width=W, depth=2, batch_norm=False)
    zero_residual(g)  # G(z, y) = y
    reg = SinGANReconstruction(alpha=10.0)
    assert reg.net == "G" and reg.interval == 1
    reg.set_inputs(torch.randn(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
    real = torch.tensor([[[[1.0, -1.0], [3.0, 1.0]]]]).expand(4, -1, -1, -1)  # a batch of copies
    ctx = RegContext(G=g, D=None, real=real, y=None, fake=real, z=None)
    loss, stats = reg(ctx)
    # mean((0 - real)^2) = (1 + 1 + 9 + 1) / 4 = 3; alpha * 3 = 30
    assert stats["rec_mse"].item() == pytest.approx(3.0)
    assert loss.item() == pytest.approx(30.0)
    loss.backward()
    assert g.body[-2].bias.grad is not None  # the term trains G (tanh'(0) = 1: bias grad = -2 * 10 * mean)
    assert g.body[-2].bias.grad.item() == pytest.approx(10 * 2 * (0 - 1.0), rel=1e-5)


def test_reconstruction_state_and_errors():
    reg = SinGANReconstruction()
    with pytest.raises(RuntimeError, match="set_inputs"):
        reg(RegContext(G=None, D=None, real=torch.zeros(1), y=None, fake=None, z=None))
    reg.set_inputs(torch.ones(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))
    other = SinGANReconstruction()
    other.load_state_dict(reg.state_dict())
    assert torch.equal(other.z, reg.z) and torch.equal(other.y, reg.y)


# ---------------------------------------------------------------- the pieces together


def test_two_scales_train_a_few_steps_with_wgan_gp_and_reconstruction():
    """The multi-stage wiring the loop will do, by hand: begin_scale, prepare, the paper's loss,
    the reconstruction regulariser."""
    torch.set_num_threads(1)
    image = torch.rand(1, 3, 32, 40) * 2 - 1
    pyr = image_pyramid(image, SIZES)
    gens, discs = build(SIZES)
    cascade = SinGANCascade(gens)
    loss = SinGANWGANGP(gp_lambda=0.1, n_critic=1)
    reg = SinGANReconstruction(alpha=10.0)
    for k in range(len(SIZES)):
        if k > 0:
            gens[k - 1].eval().requires_grad_(False)
            init_from_previous(gens[k], gens[k - 1])
            init_from_previous(discs[k], discs[k - 1])
        cascade.begin_scale(k, pyr[k], reg)
        g, d = gens[k], discs[k]
        opt_g = torch.optim.Adam(g.parameters(), lr=5e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=5e-4, betas=(0.5, 0.999))
        first = None
        for _ in range(6):
            batch = cascade.prepare(k, Batch(pyr[k]))
            z = torch.randn(1, g.z_dim)
            fake = g(z, batch.y)
            d_loss, _ = loss.d_loss(d, batch.x, fake.detach(), batch.y)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            fake = g(z, batch.y)
            g_loss, _ = loss.g_loss(d, fake, batch.y)
            rec_loss, stats = reg(RegContext(G=g, D=d, real=batch.x, y=batch.y, fake=fake, z=z))
            first = stats["rec_mse"].item() if first is None else first
            opt_g.zero_grad()
            (g_loss + rec_loss).backward()
            opt_g.step()
        assert torch.isfinite(fake).all()
        assert stats["rec_mse"].item() < first  # the reconstruction term pulls G towards the image
    assert cascade.sample(1, scale_w=1.5).shape == (1, 3, 32, 60)
