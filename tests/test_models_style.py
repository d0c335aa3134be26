"""StyleGAN and StyleGAN2 (gan_cli/models/stylegan.py, stylegan2.py): styles, mixing, truncation,
noise, growing, the skip generator and the residual discriminator."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch
import torch.nn.functional as F

from gan_cli.models import progan, stylegan, stylegan2
from gan_cli.models.style_layers import adain, minibatch_std

Z = 8
SMALL = {"w_dim": 8, "mapping_layers": 2, "channel_base": 64, "channel_max": 16}
DT = torch.float64
MODELS = {"stylegan": stylegan.Generator, "stylegan2": stylegan2.Generator}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_g(kind, side=16, c=3, **kw):
    return MODELS[kind](z_dim=Z, data_shape=(c, side, side), **{**SMALL, **kw}).double()


def with_noise(G):
    """Non-zero noise strengths (they start at 0), so noise shows in the output."""
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise.strength"):
                p.fill_(0.5)
    return G


# ---------------------------------------------------------------- shapes and style counts


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize(("side", "start"), [(4, 4), (16, 4), (32, 4), (28, 7)])
def test_shapes_and_style_inputs(kind, side, start):
    G = small_g(kind, side, 1, start_resolution=start)
    k = len(G.resolutions) - 1  # doublings
    assert G.num_classes == 0 and G.num_ws == 2 * k + 2  # 18 at 1024 px from 4 px
    z = torch.randn(4, Z, dtype=DT)
    img, ws = G(z, return_ws=True)
    assert img.shape == (4, 1, side, side) and ws.shape == (4, G.num_ws, 8)
    assert len(G.layer_resolutions) == G.num_ws and G.layer_resolutions[-1] == side


def test_layer_resolutions():
    # StyleGAN: two styles per side; StyleGAN2: one at 4 px, then the toRGB of each side shares its
    # style with the first convolution of the next (NVIDIA's code), the last toRGB has its own
    assert small_g("stylegan", 16).layer_resolutions == [4, 4, 8, 8, 16, 16]
    assert small_g("stylegan2", 16).layer_resolutions == [4, 8, 8, 16, 16, 16]


@pytest.mark.parametrize("kind", MODELS)
def test_paper_default_widths(kind):
    with torch.device("meta"):  # 1024 px at the papers' widths, without allocating them
        G = MODELS[kind](z_dim=512, data_shape=(3, 1024, 1024))
    assert G.num_ws == 18 and len(G.mapping.net) == 16  # 8 layers, each with its activation
    if kind == "stylegan":  # channel_base 16384: 512 up to 32 px, 16 at 1024 px
        widths = [layer.adain.channels for layer in G.synthesis.layers]
        assert widths[::2] == [512] * 4 + [256, 128, 64, 32, 16]
    else:  # channel_base 32768: 512 up to 64 px, 32 at 1024 px
        widths = [layer.conv.weight.shape[0] for layer in G.synthesis.convs]
        assert widths[::2] == [512] * 5 + [256, 128, 64, 32]


# ---------------------------------------------------------------- style mixing


def _layer_outputs(G, kind):
    layers = G.synthesis.layers if kind == "stylegan" else G.synthesis.convs
    outs = []
    for layer in layers:
        layer.register_forward_hook(lambda m, i, o: outs.append(o))
    return outs


@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize("cut", [1, 3, 5])
def test_style_mixing_changes_only_the_layers_after_the_crossover(kind, cut):
    G = with_noise(small_g(kind, 16)).eval()
    outs = _layer_outputs(G, kind)
    ws_a, ws_b = G.mapping(torch.randn(2, Z, dtype=DT)), G.mapping(torch.randn(2, Z, dtype=DT))
    mixed = ws_a.clone()
    mixed[:, cut:] = ws_b[:, cut:]
    G.synthesize(ws_a, "const")
    pure = list(outs)
    outs.clear()
    G.synthesize(mixed, "const")
    # layer i uses style i: identical before the crossover, different from it on
    for i, (a, b) in enumerate(zip(pure, outs, strict=True)):
        if i < cut:
            assert torch.equal(a, b), i
        else:
            assert (a - b).abs().max() > 1e-6, i


@pytest.mark.parametrize("kind", MODELS)
def test_training_forward_mixes_two_latents(kind):
    G = small_g(kind, 16, mixing_prob=1.0).train()
    z = torch.randn(3, Z, dtype=DT)
    cuts = set()
    for seed in range(30):
        torch.manual_seed(seed)
        _, ws = G(z, return_ws=True)
        torch.manual_seed(seed)
        z2 = torch.randn_like(z)  # the forward's second latent is its first draw
        with torch.no_grad():
            w1, w2 = G.mapping(z, update_w_avg=False), G.mapping(z2, update_w_avg=False)
        from_first = [torch.allclose(ws[:, i], w1[:, i]) for i in range(G.num_ws)]
        cut = from_first.index(False)
        assert all(from_first[:cut]) and cut >= 1
        assert torch.allclose(ws[:, cut:], w2[:, cut:])
        cuts.add(cut)
    assert cuts == set(range(1, G.num_ws))
    # evaluation, or probability 0: one w for every layer
    for net in (copy.deepcopy(G).eval(), small_g(kind, 16, mixing_prob=0.0).train()):
        _, ws = net(z, return_ws=True)
        assert torch.equal(ws, ws[:, :1].expand_as(ws))


def test_growing_stylegan_mixes_among_active_layers():
    G = small_g("stylegan", 16, mixing_prob=1.0).train()
    G.set_phase(8, 0.5)
    assert G.synthesis.num_active_ws == 4
    z = torch.randn(2, Z, dtype=DT)
    for seed in range(20):
        torch.manual_seed(seed)
        _, ws = G(z, return_ws=True)
        assert not torch.allclose(ws[:, 4], ws[:, 0])  # the crossover is at 1, 2 or 3 < 4 active styles


# ---------------------------------------------------------------- truncation and w_avg


@pytest.mark.parametrize("kind", MODELS)
def test_psi_zero_gives_w_avg_for_every_z(kind):
    G = small_g(kind, 16).eval()
    with torch.no_grad():
        G.mapping.w_avg.normal_()
    _, ws = G(torch.randn(5, Z, dtype=DT), psi=0.0, return_ws=True)
    assert torch.allclose(ws, G.w_avg.expand_as(ws))
    a = G(torch.randn(2, Z, dtype=DT), psi=0.0, noise_mode="const")
    assert torch.allclose(a[0], a[1])  # the same image for every latent
    b = G(torch.randn(2, Z, dtype=DT), psi=0.7, noise_mode="const")
    assert not torch.allclose(b[0], b[1])


@pytest.mark.parametrize("kind", MODELS)
def test_w_avg_tracks_training_mapping_outputs(kind):
    G = small_g(kind, 8, mixing_prob=0.0)
    z = torch.randn(6, Z, dtype=DT)
    with torch.no_grad():
        w = G.mapping(z, update_w_avg=False)[:, 0]
    G.eval()(z)
    assert torch.count_nonzero(G.w_avg) == 0
    G.train()(z)
    assert torch.allclose(G.w_avg, (1 - 0.995) * w.mean(0))  # from 0: beta 0.995
    assert "mapping.w_avg" in G.state_dict()  # copied into G_ema with the other buffers


# ---------------------------------------------------------------- noise


@pytest.mark.parametrize("kind", MODELS)
def test_noise_modes(kind):
    G = with_noise(small_g(kind, 16)).eval()
    z = torch.randn(2, Z, dtype=DT)
    assert not torch.allclose(G(z), G(z))  # fresh noise every call
    assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
    quiet = small_g(kind, 16).eval()
    quiet.load_state_dict(G.state_dict())
    with torch.no_grad():
        for name, p in quiet.named_parameters():
            if name.endswith("noise.strength"):
                p.zero_()
    assert torch.allclose(G(z, noise_mode="none"), quiet(z))
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="fixed")


def test_noise_strength_per_channel_vs_per_layer():
    assert small_g("stylegan").synthesis.layers[0].noise.strength.shape == (16,)
    assert small_g("stylegan2").synthesis.convs[0].noise.strength.shape == ()


# ---------------------------------------------------------------- StyleGAN layer structure


def test_stylegan_layer_ends_in_adain_with_styles_from_w():
    G = with_noise(small_g("stylegan", 8)).eval()
    ws = G.mapping(torch.randn(3, Z, dtype=DT))
    outs = _layer_outputs(G, "stylegan")
    G.synthesize(ws, "const")
    for i, (layer, out) in enumerate(zip(G.synthesis.layers, outs, strict=True)):
        with torch.no_grad():
            style = layer.adain.affine(ws[:, i])
        c = out.shape[1]
        # AdaIN last: each feature map's mean is y_b = A_b w and its std y_s = 1 + A_s w
        assert torch.allclose(out.mean(dim=(2, 3)), style[:, c:], atol=1e-6), i
        assert torch.allclose(out.std(dim=(2, 3), unbiased=False), (1 + style[:, :c]).abs(), atol=1e-4), i
    assert torch.equal(G.synthesis.const.const, torch.ones_like(G.synthesis.const.const))


def test_stylegan_adain_input_by_hand():
    G = small_g("stylegan", 4).eval()
    layer = G.synthesis.layers[0]  # on the constant: noise (strength 0), bias, LeakyReLU, AdaIN
    with torch.no_grad():
        layer.bias.copy_(torch.linspace(-1, 1, 16))
    w = G.mapping(torch.randn(2, Z, dtype=DT))[:, 0]
    x = G.synthesis.const(2)
    style = layer.adain.affine(w)
    expected = adain(F.leaky_relu(x + layer.bias[None, :, None, None], 0.2), 1 + style[:, :16], style[:, 16:])
    assert torch.allclose(layer(x, w, "none"), expected)


def test_stylegan_grows_like_progan():
    G = small_g("stylegan", 16).eval()
    z = torch.randn(2, Z, dtype=DT)
    G.set_phase(8, 1.0)
    low = G(z, noise_mode="const")
    G.set_phase(16, 0.0)
    assert G(z, noise_mode="const").shape == (2, 3, 16, 16)
    assert torch.allclose(G(z, noise_mode="const"), low.repeat_interleave(2, 2).repeat_interleave(2, 3))
    G.set_phase(16, 1.0)
    full = G(z, noise_mode="const")
    fixed = small_g("stylegan", 16, progressive=False).eval()
    fixed.load_state_dict({k: v for k, v in G.state_dict().items() if not k.startswith(("synthesis.to_rgb.4",
                                                                                         "synthesis.to_rgb.8"))})
    assert torch.allclose(fixed(z, noise_mode="const"), full)  # alpha 1: the grown network alone
    shapes = {k: v.shape for k, v in G.state_dict().items()}
    G.set_phase(4, 1.0)
    assert {k: v.shape for k, v in G.state_dict().items()} == shapes


def test_stylegan_discriminator_is_progans():
    from gan_cli.config.model import StyleGANModelConfig

    assert StyleGANModelConfig().discriminator._target_ == "gan_cli.models.progan.Discriminator"
    D = progan.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16)
    G = small_g("stylegan", 16).float()
    assert D(G(torch.randn(4, Z))).shape == (4,)


# ---------------------------------------------------------------- StyleGAN2 structure


def _upfirdn_up(img):
    # NVIDIA's upsample2d: pixels at even positions of a zero image, padding 2 / 1, [1, 3, 3, 1] x 4
    n, c, h, w = img.shape
    z = torch.zeros(n, c, 2 * h, 2 * w, dtype=img.dtype)
    z[:, :, ::2, ::2] = img
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=img.dtype)
    return F.conv2d(F.pad(z, (2, 1, 2, 1)), (torch.outer(taps, taps) / 16).expand(c, 1, 4, 4), groups=c)


@pytest.mark.parametrize("upsample", ["transposed", "bilinear"])
def test_stylegan2_skip_generator_sums_upsampled_torgb_outputs(upsample):
    G = with_noise(small_g("stylegan2", 16, upsample=upsample)).eval()
    rgbs = []
    for rgb in G.synthesis.to_rgb:
        rgb.register_forward_hook(lambda m, i, o: rgbs.append(o))
    img = G(torch.randn(2, Z, dtype=DT), noise_mode="const")
    by_hand = rgbs[0]
    for rgb in rgbs[1:]:
        if upsample == "bilinear":
            by_hand = F.interpolate(by_hand, scale_factor=2, mode="bilinear", align_corners=False) + rgb
        else:
            by_hand = _upfirdn_up(by_hand) + rgb
    assert len(rgbs) == 3 and torch.allclose(img, by_hand)


def test_stylegan2_upsampling_layers():
    # transposed: the first layer of each side upsamples inside its convolution (NVIDIA's
    # conv2d_resample); bilinear: the layer upsamples its input, then convolves at the high side
    for upsample, conv_up, layer_up in (("transposed", 2, False), ("bilinear", 1, True)):
        convs = small_g("stylegan2", 16, upsample=upsample).synthesis.convs
        assert [(c.conv.up, c.up) for c in convs] == [(1, False)] + [(conv_up, layer_up), (1, False)] * 2


def test_stylegan2_convolutions_are_demodulated():
    G = small_g("stylegan2", 8, channel_base=256, channel_max=64).eval()
    conv = G.synthesis.convs[0].conv  # 64 -> 64 channels, 3x3
    w = torch.randn(2, 8, dtype=DT)
    x = torch.randn(2, 64, 34, 34, dtype=DT)
    out = conv(x, w)[:, :, 1:-1, 1:-1]
    assert torch.allclose(out.std(dim=(2, 3)), torch.ones(2, 64, dtype=DT), atol=0.08)
    assert not G.synthesis.to_rgb[0].conv.demodulate


def test_stylegan2_fused_and_unfused_modconv_give_the_same_generator():
    # model.generator.modconv: the same weights give the same images and parameter gradients
    G = with_noise(small_g("stylegan2", 16)).eval()  # eval: no style-mixing draw
    F_ = small_g("stylegan2", 16, modconv="fused").eval()
    F_.load_state_dict(G.state_dict())
    assert all(not m.fused for m in G.modules() if hasattr(m, "demodulate"))
    assert all(m.fused for m in F_.modules() if hasattr(m, "demodulate"))
    z = torch.randn(3, Z, dtype=DT)
    imgs = [net(z, noise_mode="const") for net in (G, F_)]
    torch.testing.assert_close(imgs[0], imgs[1], rtol=1e-10, atol=1e-12)
    for img in imgs:
        img.square().sum().backward()
    for (name, a), b in zip(G.named_parameters(), F_.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-12, msg=name)


def test_stylegan2_residual_block_by_hand():
    D = stylegan2.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16).double()
    block = D.blocks[0]  # 16 px -> 8 px, 4 -> 8 channels
    x = torch.randn(2, 4, 16, 16, dtype=DT)

    def act(t):
        return F.leaky_relu(t, 0.2) * math.sqrt(2)

    main = act(block.conv1(act(block.conv0(x))))
    assert torch.allclose(block(x), (block.skip(x) + main) / math.sqrt(2))
    assert block.skip.bias is None and block(x).shape == (2, 8, 8, 8)


def test_stylegan2_discriminator_uses_minibatch_stddev():
    D = stylegan2.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16).double().eval()
    feats = []
    D.conv.register_forward_hook(lambda m, i, o: feats.append(i[0]))
    x = torch.randn(4, 3, 16, 16, dtype=DT)
    base = D(x)
    h = feats[0][:, :-1]
    assert torch.allclose(feats[0], minibatch_std(h, 4, 1))
    x[1] += 1.0  # sample 0's score depends on sample 1 (one group of 4)
    assert (D(x)[0] - base[0]).abs() > 0


# ---------------------------------------------------------------- common behaviour


@pytest.mark.parametrize("kind", MODELS)
def test_tanh_output(kind):
    z = torch.randn(2, Z, dtype=DT)
    plain = small_g(kind, 8).eval()
    squashed = small_g(kind, 8, tanh_output=True).eval()
    squashed.load_state_dict(plain.state_dict())
    assert torch.allclose(squashed(z, noise_mode="const"), torch.tanh(plain(z, noise_mode="const")))


@pytest.mark.parametrize("kind", MODELS)
def test_gradient_reaches_every_parameter_and_the_styles(kind):
    G = small_g(kind, 16)
    D = stylegan2.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16).double()
    img, ws = G(torch.randn(4, Z, dtype=DT), return_ws=True)
    (grad,) = torch.autograd.grad(D(img).sum(), ws, retain_graph=True)
    assert grad.shape == ws.shape and grad.abs().sum() > 0  # path-length regularisation needs this
    D(img).sum().backward()
    idle = ("synthesis.to_rgb.4.", "synthesis.to_rgb.8.")  # StyleGAN's lower toRGBs, fully grown
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        if name.startswith(idle):
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("kind", MODELS)
def test_small_32px_step_is_fast(kind):
    torch.set_num_threads(1)
    G = MODELS[kind](z_dim=32, data_shape=(3, 32, 32), w_dim=32, mapping_layers=2, channel_base=512,
                     channel_max=64)
    D = (progan.Discriminator if kind == "stylegan" else stylegan2.Discriminator)(
        data_shape=(3, 32, 32), channel_base=512, channel_max=64)
    z = torch.randn(8, 32)
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        D(G(z)).sum().backward()
        best = min(best, time.perf_counter() - start)
    assert best < 1.0


@pytest.mark.parametrize("kind", MODELS)
def test_channels_last_matches_contiguous(kind):
    G = small_g(kind, 16).float().eval()
    D = stylegan2.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16).eval()
    z, x = torch.randn(4, Z), torch.randn(4, 3, 16, 16)
    cl_g = copy.deepcopy(G).to(memory_format=torch.channels_last)
    cl_d = copy.deepcopy(D).to(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(cl_g(z, noise_mode="const"), G(z, noise_mode="const"), atol=1e-5)
        assert torch.allclose(cl_d(x.contiguous(memory_format=torch.channels_last)), D(x), atol=1e-5)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("kind", MODELS)
def test_autocast_bf16_cpu(kind):
    G = small_g(kind, 16).float()
    D = stylegan2.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16)
    with torch.backends.mkldnn.flags(enabled=False), torch.autocast("cpu", dtype=torch.bfloat16):
        img = G(torch.randn(4, Z))
        out = D(img)
    assert img.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    with torch.backends.mkldnn.flags(enabled=False):
        out.float().sum().backward()


@pytest.mark.parametrize("kind", MODELS)
def test_forward_runs_on_meta_tensors(kind):
    """Meta tensors have no values: any .item() or branch on a tensor value would fail here."""
    with torch.device("meta"):
        G = MODELS[kind](z_dim=Z, data_shape=(3, 16, 16), **SMALL).train()
        D = stylegan2.Discriminator(data_shape=(3, 16, 16), channel_base=64, channel_max=16)
    if kind == "stylegan":
        G.set_phase(16, 0.5)
    out = D(G(torch.randn(4, Z, device="meta")))  # training mode: style mixing and w_avg update too
    assert out.device.type == "meta" and out.shape == (4,)


@pytest.mark.parametrize("kind", MODELS)
def test_errors(kind):
    with pytest.raises(ValueError, match="24x24"):
        MODELS[kind](z_dim=Z, data_shape=(1, 24, 24), start_resolution=4)
    with pytest.raises(ValueError, match="24x16"):
        MODELS[kind](z_dim=Z, data_shape=(1, 24, 16))
    # mixing_prob outside [0, 1]: the schema's (tests/test_config_style.py)
    with pytest.raises(ValueError, match="output"):
        stylegan2.Discriminator(data_shape=(1, 8, 8), output="reconstruction")
