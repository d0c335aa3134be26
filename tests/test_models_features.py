"""output="features" (MMD-GAN) on the MLP and DCGAN discriminators: the score head's input.

The score output's layout and values are unchanged (their own tests: test_models_dcgan.py);
here the features are checked against the score path of a discriminator with the same weights.
"""

from __future__ import annotations

import pytest
import torch

from gan_cli.models import dcgan, mlp
from tests.test_config import assert_refused

N = 3


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ---------------------------------------------------------------- MLP


def test_mlp_score_layout_is_unchanged():
    d = mlp.Discriminator(data_shape=(2,), hidden=[4, 5])
    # Linear, LeakyReLU, Linear, LeakyReLU, Linear(5 -> 1)
    assert list(d.state_dict()) == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias",
                                    "net.4.weight", "net.4.bias"]
    assert d(torch.randn(N, 2)).shape == (N,)


def test_mlp_features_are_the_input_of_the_score_layer():
    score_d = mlp.Discriminator(data_shape=(2,), hidden=[4, 5])
    feat_d = mlp.Discriminator(data_shape=(2,), hidden=[4, 5], output="features")
    # same hidden layers, no score layer
    state = {k: v for k, v in score_d.state_dict().items() if not k.startswith("net.4.")}
    feat_d.load_state_dict(state)
    x = torch.randn(N, 2)
    h = feat_d(x)
    assert h.shape == (N, 5)
    head = score_d.net[4]
    torch.testing.assert_close(h @ head.weight.T[:, 0] + head.bias, score_d(x))
    assert (h < 0).any() and (h > 0).any()  # after LeakyReLU: negative values are kept, scaled


def test_mlp_features_with_a_linear_head_and_labels():
    d = mlp.Discriminator(data_shape=(1, 4, 4), num_classes=3, conditional=True, hidden=[8],
                          output="features", feature_dim=6)
    x, y = torch.randn(N, 1, 4, 4), torch.tensor([0, 2, 1])
    out = d(x, y)
    assert out.shape == (N, 6)
    assert not torch.equal(out, d(x, torch.tensor([1, 0, 2])))  # the label is used
    out.sum().backward()
    assert all(p.grad is not None for p in d.parameters())


@pytest.mark.parametrize("model", ["mlp", "dcgan", "infogan"])
@pytest.mark.parametrize("value", ["0", "2.5"])
def test_the_schema_refuses_bad_feature_dims(model, value):
    assert_refused([f"model={model}", "loss=mmd", f"model.discriminator.feature_dim={value}"],
                   r"model\.discriminator\.feature_dim")


@pytest.mark.parametrize("kwargs, text", [
    ({"output": "score", "feature_dim": 4}, "output='features' only"),
    ({"output": "embedding"}, "features"),
])
def test_mlp_feature_errors(kwargs, text):
    with pytest.raises(ValueError, match=text):
        mlp.Discriminator(data_shape=(2,), hidden=[4], **kwargs)


# ---------------------------------------------------------------- DCGAN


def test_dcgan_features_are_the_flattened_last_feature_map():
    score_d = dcgan.Discriminator(data_shape=(1, 16, 16), width=4).eval()
    feat_d = dcgan.Discriminator(data_shape=(1, 16, 16), width=4, output="features").eval()
    feat_d.load_state_dict({k: v for k, v in score_d.state_dict().items() if not k.startswith("head.")})
    x = torch.randn(N, 1, 16, 16)
    with torch.no_grad():
        h = feat_d(x)
        # 16 px: two halvings to 4 x 4 with 8 channels -> 8 * 4 * 4 = 128 features
        assert h.shape == (N, score_d.features_dim * 4 * 4) == (N, 128)
        # the score head is a 4 x 4 convolution: a dot product with the flattened map
        by_hand = h @ score_d.head.weight.flatten() + score_d.head.bias
        torch.testing.assert_close(by_hand, score_d(x), rtol=1e-5, atol=1e-6)


def test_dcgan_features_with_a_code_layer():
    d = dcgan.Discriminator(data_shape=(3, 32, 32), width=4, output="features", feature_dim=10)
    x = torch.randn(N, 3, 32, 32)
    out = d(x)
    assert out.shape == (N, 10)
    assert d.head.out_channels == 10 and d.head.kernel_size == (4, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in d.parameters())
    # channels_last input gives the same features
    d.eval()
    with torch.no_grad():
        torch.testing.assert_close(d(x.contiguous(memory_format=torch.channels_last)), d(x),
                                   rtol=1e-4, atol=1e-5)


def test_dcgan_features_with_concat_labels():
    d = dcgan.Discriminator(data_shape=(1, 16, 16), num_classes=4, width=4, conditioning="concat",
                            output="features").eval()
    x = torch.randn(N, 1, 16, 16)
    with torch.no_grad():
        assert not torch.equal(d(x, torch.tensor([0, 1, 2])), d(x, torch.tensor([3, 3, 3])))


@pytest.mark.parametrize("kwargs, text", [
    ({"output": "features", "conditioning": "projection", "num_classes": 3}, "projection"),
    ({"output": "score", "feature_dim": 4}, "output='features' only"),
])
def test_dcgan_feature_errors(kwargs, text):
    with pytest.raises(ValueError, match=text):
        dcgan.Discriminator(data_shape=(1, 16, 16), width=4, **kwargs)
