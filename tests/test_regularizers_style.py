"""ProGAN's drift term and StyleGAN2's path-length regulariser (gan_cli/losses/regularizers.py), by hand."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gan_cli.losses import Drift, PathLength, RegContext, lazy_factor
from gan_cli.models import stylegan2

DT = torch.float64


class LinearD(nn.Module):
    """D(x, y) = w . flatten(x) + b, recording the conditions it was given."""

    def __init__(self, w, b):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=DT))
        self.b = nn.Parameter(torch.tensor(b, dtype=DT))
        self.seen_y = []

    def forward(self, x, y=None):
        self.seen_y.append(y)
        return x.flatten(1) @ self.w + self.b


class LinearStyleG(nn.Module):
    """A generator linear in its styles: ws = (z A) repeated over L layers, img = sum_l ws_l M_l.

    Its Jacobian-vector product is known in closed form: d sum(img * y) / d ws_l = M_l y.
    """

    def __init__(self, num_ws=3, z_dim=2, w_dim=4, shape=(2, 3, 3)):
        super().__init__()
        self.num_ws, self.shape = num_ws, shape
        self.A = nn.Parameter(torch.randn(z_dim, w_dim, dtype=DT))
        self.M = nn.Parameter(torch.randn(num_ws, w_dim, math.prod(shape), dtype=DT))
        self.calls = []

    def forward(self, z, y=None, return_ws=False):
        self.calls.append((z.shape[0], y))
        ws = (z @ self.A)[:, None, :].repeat(1, self.num_ws, 1)
        img = torch.einsum("nlw,lwp->np", ws, self.M).reshape(len(z), *self.shape)
        return (img, ws) if return_ws else img


def ctx_for(G=None, D=None, real=None, y=None, z=None):
    return RegContext(G=G, D=D, real=real, y=y, fake=None, z=z)


# ---------------------------------------------------------------- drift


def test_drift_by_hand():
    D = LinearD([1.0, -1.0], 0.5)
    real = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=DT)
    reg = Drift()
    assert (reg.net, reg.interval, reg.epsilon) == ("D", 1, 0.001)
    loss, stats = reg(ctx_for(D=D, real=real, y="cond"))
    # scores 1.5, -1.5, 0.5: mean square (2.25 + 2.25 + 0.25) / 3 = 4.75 / 3
    assert loss.item() == pytest.approx(0.001 * 4.75 / 3, rel=1e-12)
    assert stats["drift"].item() == pytest.approx(loss.item()) and not stats["drift"].requires_grad
    assert D.seen_y == ["cond"]
    loss.backward()
    # d/dw = eps * 2/N * sum s_i x_i = 0.001 * 2/3 * (1.5 (1, 0) - 1.5 (0, 2) + 0.5 (1, 1))
    #      = 0.001 * 2/3 * (2, -2.5)
    assert D.w.grad.tolist() == pytest.approx([0.001 * 2 / 3 * 2.0, 0.001 * 2 / 3 * -2.5], rel=1e-12)
    assert D.b.grad.item() == pytest.approx(0.001 * 2 / 3 * 0.5, rel=1e-12)


def test_drift_epsilon():
    D = LinearD([2.0], 0.0)
    loss, _ = Drift(epsilon=0.1)(ctx_for(D=D, real=torch.tensor([[3.0]], dtype=DT)))
    assert loss.item() == pytest.approx(0.1 * 36.0)


# ---------------------------------------------------------------- path length


def _lengths_by_hand(M, y):
    """sqrt(mean over layers of |M_l y_n|^2) for every sample n: the closed form of the toy G."""
    grads = torch.einsum("lwp,np->nlw", M, y.flatten(1))
    return grads.square().sum(dim=2).mean(dim=1).sqrt()


def test_path_length_by_hand_and_its_gradient():
    torch.manual_seed(0)
    G = LinearStyleG()
    reg = PathLength()
    assert (reg.net, reg.interval, reg.weight, reg.decay, reg.batch_shrink) == ("G", 4, 2.0, 0.01, 2)
    z = torch.randn(6, 2, dtype=DT)
    labels = torch.arange(6)
    torch.manual_seed(7)
    loss, stats = reg(ctx_for(G=G, z=z, y=labels))
    # the noise the regulariser drew: the first draw after the seed, scaled by 1 / sqrt(H W) = 1/3
    torch.manual_seed(7)
    y = torch.randn(3, 2, 3, 3, dtype=DT) / 3.0
    n_seen, y_seen = G.calls[0]
    assert n_seen == 3 and torch.equal(y_seen, labels[:3])  # batch_shrink 2: the first 6 // 2 samples
    lengths = _lengths_by_hand(G.M.detach(), y)
    pl_mean = 0.0 + 0.01 * (lengths.mean() - 0.0)
    assert reg.pl_mean.item() == pytest.approx(pl_mean.item(), rel=1e-6)
    assert loss.item() == pytest.approx((2.0 * (lengths - pl_mean).square().mean()).item(), rel=1e-6)
    assert stats["pl_length"].item() == pytest.approx(lengths.mean().item(), rel=1e-6)
    # the gradient reaches G through the double backward, with pl_mean a constant
    loss.backward()
    M = G.M.detach().clone().requires_grad_(True)
    (2.0 * (_lengths_by_hand(M, y) - pl_mean.float()).square().mean()).backward()
    assert torch.allclose(G.M.grad, M.grad, rtol=1e-5, atol=1e-9)


def test_path_length_mean_is_a_moving_average_and_round_trips():
    torch.manual_seed(0)
    G = LinearStyleG()
    reg = PathLength(decay=0.5, batch_shrink=1)
    z = torch.randn(4, 2, dtype=DT)
    torch.manual_seed(1)
    reg(ctx_for(G=G, z=z))
    first = reg.pl_mean.clone()
    torch.manual_seed(2)
    loss2, _ = reg(ctx_for(G=G, z=z))
    torch.manual_seed(2)
    lengths2 = _lengths_by_hand(G.M.detach(), torch.randn(4, 2, 3, 3, dtype=DT) / 3.0)
    # pl_mean <- pl_mean + 0.5 (mean(lengths) - pl_mean)
    assert reg.pl_mean.item() == pytest.approx((first + 0.5 * (lengths2.mean() - first)).item(), rel=1e-6)
    restored = PathLength(decay=0.5, batch_shrink=1)
    restored.load_state_dict(reg.state_dict())
    assert restored.pl_mean.item() == reg.pl_mean.item()
    torch.manual_seed(3)
    a, _ = reg(ctx_for(G=G, z=z))
    torch.manual_seed(3)
    b, _ = restored(ctx_for(G=G, z=z))
    assert a.item() == b.item()


def test_path_length_on_stylegan2():
    torch.manual_seed(0)
    G = stylegan2.Generator(z_dim=8, data_shape=(3, 16, 16), w_dim=8, mapping_layers=2, channel_base=64,
                            channel_max=16)
    reg = PathLength()
    loss, stats = reg(ctx_for(G=G, z=torch.randn(4, 8), y=None))
    assert loss.dim() == 0 and torch.isfinite(loss) and stats["pl_length"] > 0
    (loss * reg.interval).backward()  # the loop's lazy scaling
    assert G.mapping.net[0].weight.grad.abs().sum() > 0
    assert G.synthesis.convs[0].conv.weight.grad.abs().sum() > 0


def test_lazy_interval_factors():
    # the loop builds G's optimizer with lr * 4/5 and betas ** (4/5) for PathLength's interval 4
    assert lazy_factor(PathLength().interval) == pytest.approx(0.8)
    assert 0.99 ** lazy_factor(4) == pytest.approx(math.exp(0.8 * math.log(0.99)))
