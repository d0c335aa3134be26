"""pix2pix's L1 term: its value and gradient on fixed tensors, worked out by hand."""

from __future__ import annotations

import pytest
import torch

from gan_cli.losses import L1Reconstruction, RegContext

DT = torch.float64


def ctx(fake, real):
    never = lambda *a: pytest.fail("the L1 term must not call G or D")  # noqa: E731
    return RegContext(G=never, D=never, real=real, y=None, fake=fake, z=torch.zeros(1, 1))


def test_l1_value_and_gradient_by_hand():
    # |1 - 0| + |2 - 0| + |3 - 5| + |4 - 4| = 1 + 2 + 2 + 0 = 5 over 4 values: l1 = 1.25
    fake = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=DT, requires_grad=True)
    real = torch.tensor([[[[0.0, 0.0], [5.0, 4.0]]]], dtype=DT)
    term = L1Reconstruction(weight=100.0)
    loss, stats = term(ctx(fake, real))
    assert loss.dim() == 0 and loss.item() == pytest.approx(125.0)
    assert set(stats) == {"l1"} and stats["l1"].item() == pytest.approx(1.25)
    assert not stats["l1"].requires_grad
    loss.backward()
    # d/d fake of 100 * mean |fake - real| = 100 / 4 * sign(fake - real); sign(0) = 0
    expected = torch.tensor([[[[25.0, 25.0], [-25.0, 0.0]]]], dtype=DT)
    torch.testing.assert_close(fake.grad, expected)


def test_l1_mean_is_over_the_whole_batch():
    # two samples of 2 values: errors (0.5, 0.5) and (1.5, 2.5): mean 5 / 4 = 1.25, weight 2 -> 2.5
    fake = torch.tensor([[0.5, -0.5], [1.5, 0.0]], dtype=DT)
    real = torch.tensor([[0.0, 0.0], [0.0, 2.5]], dtype=DT)
    loss, stats = L1Reconstruction(weight=2.0)(ctx(fake, real))
    assert loss.item() == pytest.approx(2.5)
    assert stats["l1"].item() == pytest.approx(1.25)


def test_l1_is_a_generator_term_every_update():
    term = L1Reconstruction()
    assert term.net == "G" and term.interval == 1 and term.weight == 100.0  # the paper's lambda


def test_l1_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        L1Reconstruction()(ctx(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 5)))
