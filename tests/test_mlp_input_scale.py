"""The MLP discriminator's fixed input scale (model.discriminator.input_scale), used by grid25's
tuned MLP (conf/tuned/grid25_mlp.yaml): D sees x / s, and its reconstruction is in x's units."""

from __future__ import annotations

import torch

from gan_cli.models.mlp import Discriminator
from tests.test_config import assert_refused


def test_d_judges_x_divided_by_the_scale():
    torch.manual_seed(0)
    D = Discriminator(data_shape=(2,), hidden=[8, 8], input_scale=4.0)
    x = torch.tensor([[4.0, -8.0], [2.0, 0.0]])
    # the same network on x / 4 = [[1, -2], [0.5, 0]]
    assert torch.allclose(D(x), D.net(torch.tensor([[1.0, -2.0], [0.5, 0.0]])).squeeze(1))
    # so its input gradient is the unscaled network's divided by 4 (what R1 penalises)
    xg = x.clone().requires_grad_(True)
    D(xg).sum().backward()
    u = (x / 4).requires_grad_(True)
    D.net(u).sum().backward()
    assert torch.allclose(xg.grad, u.grad / 4)


def test_a_reconstruction_comes_back_in_x_units():
    torch.manual_seed(0)
    D = Discriminator(data_shape=(2,), hidden=[8], output="reconstruction", input_scale=2.0)
    x = torch.tensor([[2.0, 4.0]])
    assert torch.allclose(D(x), 2.0 * D.net(torch.tensor([[1.0, 2.0]])))


def test_scale_1_is_the_identity_and_a_bad_scale_is_refused():
    torch.manual_seed(0)
    D = Discriminator(data_shape=(2,), hidden=[8])
    x = torch.randn(5, 2)
    assert torch.equal(D(x), D.net(x).squeeze(1))
    assert_refused(["model=mlp", "model.discriminator.input_scale=0"], r"model\.discriminator\.input_scale")
