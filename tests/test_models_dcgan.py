"""DCGAN / conditional DCGAN: shapes, the paper's architecture rules, init, conditioning."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gan_cli.models.dcgan import Discriminator, Generator, init_dcgan_weights, start_size
from tests.test_config import assert_refused

Z = 8
W = 8  # small widths keep the file fast on a shared CPU
N = 3
RESOLUTIONS = [16, 28, 32, 64]
CHANNELS = [1, 3]


def leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if not list(m.children())]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- layout and shapes


@pytest.mark.parametrize(
    ("side", "expected"), [(8, (4, 1)), (16, (4, 2)), (28, (7, 2)), (32, (4, 3)), (48, (6, 3)), (64, (4, 4)), (18, (9, 1))]
)
def test_start_size(side, expected):
    assert start_size(side) == expected


@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("c", CHANNELS)
def test_generator_shape(res, c):
    g = Generator(z_dim=Z, data_shape=(c, res, res), width=W)
    assert g.num_classes == 0
    assert g(torch.randn(N, Z)).shape == (N, c, res, res)


@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("c", CHANNELS)
def test_discriminator_shape(res, c):
    d = Discriminator(data_shape=(c, res, res), width=W)
    assert d.num_classes == 0
    out = d(torch.randn(N, c, res, res))
    assert out.shape == (N,)


@pytest.mark.parametrize("res", [16, 28])
@pytest.mark.parametrize("c", CHANNELS)
def test_reconstruction_shape(res, c):
    d = Discriminator(data_shape=(c, res, res), width=W, output="reconstruction")
    x = torch.randn(N, c, res, res)
    assert d(x).shape == x.shape


def test_reconstruction_concat_and_bottleneck():
    d = Discriminator(
        data_shape=(1, 16, 16), num_classes=4, width=W, output="reconstruction",
        conditioning="concat", bottleneck_dim=5,
    )
    assert d.bottleneck.out_channels == 5
    x = torch.randn(N, 1, 16, 16)
    assert d(x, torch.tensor([0, 1, 2])).shape == x.shape


def test_backward_reaches_all_parameters():
    g = Generator(z_dim=Z, data_shape=(3, 16, 16), num_classes=4, width=W, conditional=True)
    d = Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W, conditioning="projection")
    y = torch.tensor([0, 1, 3])
    d(g(torch.randn(N, Z), y), y).sum().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


# ---------------------------------------------------------------- architecture guidelines


@pytest.mark.parametrize("res", RESOLUTIONS)
def test_generator_follows_guidelines(res):
    g = Generator(z_dim=Z, data_shape=(3, res, res), width=W)
    mods = leaves(g)
    allowed = (nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.Tanh)
    assert all(isinstance(m, allowed) for m in mods), [type(m) for m in mods]
    assert not any(isinstance(m, (nn.Linear, nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) for m in mods)
    convs = [m for m in mods if isinstance(m, nn.ConvTranspose2d)]
    # first layer: 1x1 latent -> s x s; then stride-2 doublings; channels halve down to width
    s, k = start_size(res)
    assert len(convs) == k + 1
    assert convs[0].kernel_size == (s, s) and convs[0].stride == (1, 1)
    assert all(m.stride == (2, 2) for m in convs[1:])
    assert [m.out_channels for m in convs[:-1]] == [W * 2 ** j for j in reversed(range(k))]
    assert convs[-1].out_channels == 3
    # every hidden layer: conv -> BN -> ReLU; output layer: conv -> tanh, no BN
    for i, m in enumerate(mods[:-2]):
        if isinstance(m, nn.ConvTranspose2d):
            assert isinstance(mods[i + 1], nn.BatchNorm2d) and isinstance(mods[i + 2], nn.ReLU)
    assert isinstance(mods[-2], nn.ConvTranspose2d) and isinstance(mods[-1], nn.Tanh)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in mods) == len(convs) - 1


@pytest.mark.parametrize("res", RESOLUTIONS)
def test_discriminator_follows_guidelines(res):
    d = Discriminator(data_shape=(3, res, res), width=W)
    mods = leaves(d)
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU)
    assert all(isinstance(m, allowed) for m in mods), [type(m) for m in mods]
    assert not any(isinstance(m, (nn.Linear, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)) for m in mods)
    assert all(m.negative_slope == 0.2 for m in mods if isinstance(m, nn.LeakyReLU))
    convs = [m for m in mods if isinstance(m, nn.Conv2d)]
    s, k = start_size(res)
    assert len(convs) == k + 1
    assert all(m.stride == (2, 2) for m in convs[:-1])
    assert [m.out_channels for m in convs[:-1]] == [W * 2 ** j for j in range(k)]
    head = convs[-1]
    assert head is mods[-1] and head.kernel_size == (s, s) and head.padding == (0, 0) and head.out_channels == 1
    # input layer: conv -> LeakyReLU, no BN; the other trunk layers: conv -> BN -> LeakyReLU
    assert mods[0] is convs[0] and isinstance(mods[1], nn.LeakyReLU)
    for i, m in enumerate(mods[:-1]):
        if isinstance(m, nn.Conv2d) and i > 0:
            assert isinstance(mods[i + 1], nn.BatchNorm2d) and isinstance(mods[i + 2], nn.LeakyReLU)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in mods) == k - 1


def test_no_linear_in_conditional_generator():
    g = Generator(z_dim=Z, data_shape=(1, 28, 28), num_classes=10, width=W, conditional=True)
    assert not any(isinstance(m, nn.Linear) for m in g.modules())
    assert g.embed.weight.shape == (10, Z)  # embed_dim defaults to z_dim
    g2 = Generator(z_dim=Z, data_shape=(1, 28, 28), num_classes=10, width=W, conditional=True, embed_dim=3)
    assert g2.net[0].in_channels == Z + 3


# ---------------------------------------------------------------- weight init


def test_weight_init_statistics():
    g = Generator(z_dim=100, data_shape=(3, 64, 64), width=64)  # the paper's 64x64 model
    first = g.net[0].weight  # (100, 512, 4, 4): 819,200 draws
    assert abs(first.mean().item()) < 0.002
    assert 0.018 < first.std().item() < 0.022
    bn = g.net[1]
    assert 0.98 < bn.weight.mean().item() < 1.02
    assert 0.014 < bn.weight.std().item() < 0.026
    assert torch.count_nonzero(bn.bias) == 0
    d = Discriminator(data_shape=(3, 64, 64), width=64)
    wide = d.trunk[-3].weight  # (512, 256, 4, 4)
    assert abs(wide.mean().item()) < 0.002
    assert 0.018 < wide.std().item() < 0.022
    assert torch.count_nonzero(d.head.bias) == 0 and torch.count_nonzero(d.trunk[0].bias) == 0


def test_init_function_on_its_own():
    conv = nn.Conv2d(64, 64, 5)
    bn = nn.BatchNorm2d(64)
    init_dcgan_weights(conv)
    init_dcgan_weights(bn)
    assert 0.018 < conv.weight.std().item() < 0.022
    assert torch.count_nonzero(conv.bias) == 0
    assert torch.count_nonzero(bn.bias) == 0 and abs(bn.weight.mean().item() - 1) < 0.02


# ---------------------------------------------------------------- output range


def test_bounded_output_range():
    z = torch.randn(N, Z)
    g = Generator(z_dim=Z, data_shape=(1, 16, 16), width=W, bounded=True)
    free = Generator(z_dim=Z, data_shape=(1, 16, 16), width=W, bounded=False)
    free.load_state_dict(g.state_dict())  # same weights; only the tanh differs
    with torch.no_grad():
        for model in (g, free):
            model.net[-2 if model.bounded else -1].weight.mul_(100.0)  # large pre-activations
        bounded_out, free_out = g(z), free(z)
    assert bounded_out.abs().max() <= 1.0
    assert free_out.abs().max() > 1.0
    assert not any(isinstance(m, nn.Tanh) for m in free.modules())
    assert torch.allclose(bounded_out, torch.tanh(free_out), atol=1e-6)


# ---------------------------------------------------------------- conditioning


def test_conditional_generator_uses_label():
    g = Generator(z_dim=Z, data_shape=(1, 16, 16), num_classes=5, width=W, conditional=True).eval()
    assert g.num_classes == 5
    z = torch.randn(N, Z)
    a = g(z, torch.tensor([0, 1, 2]))
    b = g(z, torch.tensor([3, 4, 0]))
    assert not torch.allclose(a, b)
    assert torch.equal(a, g(z, torch.tensor([0, 1, 2])))
    with pytest.raises(ValueError, match="without labels"):
        g(z)


def test_unconditional_generator_ignores_label():
    g = Generator(z_dim=Z, data_shape=(1, 16, 16), num_classes=5, width=W).eval()
    assert g.num_classes == 0
    z = torch.randn(N, Z)
    a = g(z, torch.tensor([0, 1, 2]))
    assert torch.equal(a, g(z, torch.tensor([3, 4, 0])))
    assert torch.equal(a, g(z))


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_labels_reach_discriminator(conditioning):
    d = Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W, conditioning=conditioning).eval()
    assert d.num_classes == 4
    x = torch.randn(N, 3, 16, 16)
    a = d(x, torch.tensor([0, 1, 2]))
    b = d(x, torch.tensor([3, 0, 1]))
    assert a.shape == (N,)
    assert (a - b).abs().min() > 0  # every sample's score moves
    with pytest.raises(ValueError, match="without labels"):
        d(x)


def test_unconditional_discriminator_ignores_label():
    d = Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W).eval()
    assert d.num_classes == 0
    x = torch.randn(N, 3, 16, 16)
    assert torch.equal(d(x, torch.tensor([0, 1, 2])), d(x))


def test_concat_adds_label_channels():
    d = Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W, conditioning="concat")
    assert d.trunk[0].in_channels == 3 + 4


def test_projection_term_is_inner_product():
    d = Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W, conditioning="projection").eval()
    with torch.no_grad():
        d.embed.weight.normal_()  # make the projection term clearly non-zero
    x = torch.randn(N, 3, 16, 16)
    y = torch.tensor([2, 0, 3])
    with torch.no_grad():
        score = d(x, y)
        h = d.trunk(x)  # (N, F, s, s)
        assert h.shape == (N, d.features_dim, 4, 4)
        unconditional = d.head(h).reshape(N)
        pooled = h.sum(dim=(2, 3))
        by_hand = torch.stack([torch.dot(d.embed.weight[y[i]], pooled[i]) for i in range(N)])
    assert by_hand.abs().min() > 1e-3
    assert torch.allclose(score - unconditional, by_hand, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("shape", "text"),
    [
        ((3, 30, 32), "30x32"),
        ((3, 2, 2), "2x2"),
        ((3, 4, 4), "4x4"),
        ((3, 7, 7), "7x7"),
        ((3, 31, 31), "31x31"),
        ((3, 0, 0), "0x0"),
        ((3, -8, -8), "-8x-8"),
        ((3, 28.0, 28.0), "28.0"),
        ((784,), "(784,)"),
    ],
)
def test_bad_resolution_raises(shape, text):
    for build in (
        lambda: Generator(z_dim=Z, data_shape=shape, width=W),
        lambda: Discriminator(data_shape=shape, width=W),
        lambda: Discriminator(data_shape=shape, width=W, output="reconstruction"),
    ):
        with pytest.raises(ValueError) as info:
            build()
        message = str(info.value)
        assert text in message and "supported" in message and "even integer >= 8" in message


def test_other_configuration_errors():
    with pytest.raises(ValueError, match="num_classes > 0"):
        Generator(z_dim=Z, data_shape=(1, 16, 16), width=W, conditional=True)
    with pytest.raises(ValueError, match="num_classes > 0"):
        Discriminator(data_shape=(1, 16, 16), width=W, conditioning="concat")
    with pytest.raises(ValueError, match="output must be one of"):
        Discriminator(data_shape=(1, 16, 16), width=W, output="energy")
    with pytest.raises(ValueError, match="projection"):
        Discriminator(data_shape=(1, 16, 16), num_classes=2, width=W, output="reconstruction", conditioning="projection")
    with pytest.raises(ValueError, match="channel count"):
        Generator(z_dim=Z, data_shape=(0, 16, 16), width=W)


@pytest.mark.parametrize("override, match", [
    ("model.discriminator.conditioning=onehot", r"model\.discriminator\.conditioning.*must be one of"),
    ("model.discriminator.norm=instance", r"model\.discriminator\.norm.*must be one of"),
    ("model.generator.width=0", r"model\.generator\.width.*must be > 0"),
    ("model.discriminator.width=0", r"model\.discriminator\.width.*must be > 0"),
    ("model.z_dim=0", r"model\.z_dim.*must be > 0"),
    ("model.generator.embed_dim=0", r"model\.generator\.embed_dim.*must be > 0 or null"),
    ("model.discriminator.bottleneck_dim=0", r"model\.discriminator\.bottleneck_dim.*must be > 0 or null"),
    ("model.discriminator.feature_dim=0", r"model\.discriminator\.feature_dim.*must be > 0 or null"),
])
def test_the_schema_refuses_bad_options(override, match):
    assert_refused(["model=dcgan", override], match)


# ---------------------------------------------------------------- memory format, autocast, no host sync


def _models():
    yield Generator(z_dim=Z, data_shape=(3, 16, 16), num_classes=4, width=W, conditional=True), "g"
    yield Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W, conditioning="concat"), "d"
    yield Discriminator(data_shape=(3, 16, 16), num_classes=4, width=W, conditioning="projection"), "d"
    yield Discriminator(data_shape=(3, 16, 16), width=W, output="reconstruction"), "d"


def _inputs(kind):
    y = torch.tensor([0, 3, 1])
    return (torch.randn(N, Z), y) if kind == "g" else (torch.randn(N, 3, 16, 16), y)


@pytest.mark.parametrize("index", range(4))
def test_channels_last_matches_contiguous(index):
    model, kind = list(_models())[index]
    inp, y = _inputs(kind)
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
    cl_inp = inp.contiguous(memory_format=torch.channels_last) if inp.dim() == 4 else inp
    with torch.no_grad():
        ref = model(inp, y)
        out = cl_model(cl_inp, y)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
@pytest.mark.parametrize("index", range(4))
def test_autocast_bf16_cpu(index):
    model, kind = list(_models())[index]
    inp, y = _inputs(kind)
    # oneDNN's AMX bf16 kernels for strided transposed convolutions die with SIGILL on some
    # (virtualised) CPUs that advertise AMX; PyTorch's native kernels are used here instead.
    # The model code under test (dtypes under autocast) is the same either way.
    with torch.backends.mkldnn.flags(enabled=False), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(inp, y)
    assert torch.isfinite(out.float()).all()
    if kind == "g" or model.output == "reconstruction":
        assert out.dtype == torch.bfloat16  # autocast did run the convolutions in bf16
    with torch.backends.mkldnn.flags(enabled=False):
        out.float().sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("index", range(4))
def test_forward_runs_on_meta_tensors(index):
    """Meta tensors have no values: any .item() or branch on a tensor value would fail here."""
    with torch.device("meta"):
        model, kind = list(_models())[index]
    inp, y = _inputs(kind)
    out = model(inp.to("meta"), y.to("meta"))
    assert out.device.type == "meta"
    assert out.shape == ((N, 3, 16, 16) if kind == "g" or model.output == "reconstruction" else (N,))
