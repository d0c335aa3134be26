"""The 2D training view (gan_cli/data/toy_view.py, ToySource.save_figure) and what a run writes with
it: D's field, the gradient arrows, G's manifold, the GIF over training, curves.png."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from gan_cli.data.toy import ring_of_gaussians
from gan_cli.data.toy_view import (
    compute_layers,
    d_field,
    d_gradients,
    manifold_latents,
    manifold_lines,
    scores_points,
)
from gan_cli.models.mlp import Discriminator, Generator
from gan_cli.models.pack import Packed
from tests.conftest import SMALL, run_cli


def small_d() -> nn.Module:
    torch.manual_seed(0)
    return Discriminator(data_shape=(2,), hidden=[16, 16])


def test_the_field_is_d_evaluated_point_by_point():
    D = small_d()
    xs, ys = torch.linspace(-2, 2, 5), torch.linspace(-1, 3, 4)
    field = d_field(D, xs, ys)
    assert field.shape == (4, 5)  # rows: y, columns: x
    with torch.no_grad():
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                assert float(field[i, j]) == pytest.approx(float(D(torch.tensor([[x, y]]))[0]), abs=1e-6)


def test_arrows_are_the_gradient_of_d():
    # a linear D: grad_x (w . x + b) = w at every point
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -3.0]]))
        lin.bias.fill_(0.5)
    D = nn.Sequential(lin, nn.Flatten(0))
    points = torch.randn(6, 2)
    assert d_gradients(Scores(D), points).tolist() == [[2.0, -3.0]] * 6
    # a non-linear D: each arrow is autograd's gradient of D at that point alone
    D = small_d()
    grads = d_gradients(D, points)
    for p, g in zip(points, grads, strict=True):
        x = p[None].clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(D(x).sum(), x)
        assert torch.allclose(g, expected[0], atol=1e-6)
    assert all(q.grad is None for q in D.parameters())  # D's weights get no gradient


class Scores(nn.Module):
    """A D(x, y=None) around a plain module."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x, y=None):
        return self.net(x)


def test_the_view_changes_no_state_of_training():
    D, G = small_d(), Generator(z_dim=2, data_shape=(2,), hidden=[16])
    D.train(), G.train()
    before = [t.clone() for t in (*D.state_dict().values(), *G.state_dict().values())]
    fake, real = G(torch.randn(50, 2)).detach(), torch.randn(50, 2)
    rng = torch.get_rng_state()
    compute_layers(fake, real, (-3, 3), (-3, 3), D=D, G=G, z_dim=2, y=None, field=True,
                   field_points=8, arrows=10, manifold=True)
    assert torch.equal(torch.get_rng_state(), rng)
    after = [*D.state_dict().values(), *G.state_dict().values()]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert D.training and G.training  # modes restored


def test_the_field_is_centred_between_real_and_fake_scores():
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0]]))
        lin.bias.zero_()
    D = Scores(nn.Sequential(lin, nn.Flatten(0)))
    real, fake = torch.tensor([[2.0, 0.0], [4.0, 1.0]]), torch.tensor([[-1.0, 5.0], [1.0, 2.0]])
    layers = compute_layers(fake, real, (-1, 1), (-1, 1), D=D, G=None, z_dim=None, y=None, field=True,
                            field_points=3, arrows=0, manifold=False)
    assert layers.centre == pytest.approx((3.0 + 0.0) / 2)  # mean D(real) = 3, mean D(fake) = 0
    assert layers.field[0].tolist() == pytest.approx([-1.0, 0.0, 1.0])  # D(x) = x_1 along a row
    assert layers.arrows is None and layers.lines is None


def test_manifold_latents():
    (line,) = manifold_latents(1, points=5)
    assert line[:, 0].tolist() == pytest.approx([-2.0, -1.0, 0.0, 1.0, 2.0])
    lines = manifold_latents(2, lines=3, points=4)
    assert len(lines) == 6  # 3 lines of constant z_1 and 3 of constant z_2
    assert {tuple(torch.unique(z[:, 1 - a]).tolist()) for z, a in zip(lines, [0, 1] * 3, strict=True)} == {
        (-2.0,), (0.0,), (2.0,)}
    sliced = manifold_latents(5, lines=3, points=4)
    assert all(torch.equal(z[:, 2:], torch.zeros(4, 3)) for z in sliced)  # the other coordinates 0
    G = Generator(z_dim=2, data_shape=(2,), hidden=[8])
    drawn = manifold_lines(G, 2, lines=3, points=4)
    with torch.no_grad():
        assert torch.allclose(drawn[1], G(lines[1]), atol=1e-6)


def test_only_a_discriminator_of_single_points_gets_the_d_layers():
    assert scores_points(small_d())
    assert not scores_points(Packed(Discriminator(data_shape=(4,)), 2))  # PacGAN judges pairs
    assert not scores_points(Discriminator(data_shape=(2,), output="reconstruction"))  # BEGAN
    assert not scores_points(None)


def test_each_layer_can_be_switched_off(tmp_path: Path):
    data = ring_of_gaussians(batch_size=8, device="cpu", seed=0,
                             figure={"field": False, "arrows": 0, "manifold": False, "gif": False})
    assert not data.figure_networks and not data.animate_figures
    full = ring_of_gaussians(batch_size=8, device="cpu", seed=0)
    assert full.figure_networks and full.animate_figures and full.figure["field_points"] == 64
    D, G = small_d(), Generator(z_dim=2, data_shape=(2,), hidden=[8])
    fake = G(torch.randn(40, 2)).detach()
    full.save_figure(fake, tmp_path / "view.png", D=D, G=G, z_dim=2)
    data.save_figure(fake, tmp_path / "plain.png", D=D, G=G, z_dim=2)
    with Image.open(tmp_path / "view.png") as a, Image.open(tmp_path / "plain.png") as b:
        assert a.size[0] > b.size[0]  # the field's colour bar widens the figure


@pytest.mark.slow
def test_a_toy_run_writes_the_view_the_gif_and_curves(tmp_path: Path, toy_run: Path):
    run_dir = toy_run  # gan-train tiny=toy
    with Image.open(run_dir / "samples" / "training.gif") as gif:
        assert gif.n_frames == 2  # the figures of steps 6 and 12
    assert (run_dir / "curves.png").is_file()
    run_dir = tmp_path / "off"
    proc = run_cli([*SMALL, "dataset.figure.gif=false", "dataset.figure.field=false"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (run_dir / "samples" / "training.gif").exists()
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_00000006.png",
                                                                       "step_00000012.png"]


@pytest.mark.slow
def test_the_training_gif_goes_to_wandb_as_a_video(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "logger=wandb"], run_dir, env={"WANDB_MODE": "offline"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    videos = list(run_dir.glob("wandb/offline-run-*/files/media/videos/training_12_*.gif"))
    assert len(videos) == 1
    assert videos[0].read_bytes() == (run_dir / "samples" / "training.gif").read_bytes()
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 12


@pytest.mark.parametrize("value,centre", [(1e30, 1e30), (float("nan"), None), (float("inf"), 1.0),
                                          (0.5, float("nan"))])
def test_a_diverged_d_still_gets_a_figure(value, centre):
    # a run with nonfinite=skip (lr 1e30) draws its figures with D's scores all equal to 1e30, or
    # non-finite: the colour norm's three values must still increase (they did not: matplotlib
    # raised "vmin, vcenter, vmax must increase monotonically" and the run died in its figure)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_cli.data.toy_view import ViewLayers, draw_layers

    xs, ys = torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 4)
    layers = ViewLayers(xs=xs, ys=ys, field=torch.full((4, 5), value), centre=centre)
    fig, ax = plt.subplots()
    try:
        draw_layers(ax, layers, (-1, 1), (-1, 1))
        meshes = ax.collections
        assert len(meshes) == (0 if value != value or value == float("inf") else 1)
    finally:
        plt.close(fig)


# --- one colour scale, classifier or critic, D*, the frame's title ------------------------------


def _linear_d(scale: float) -> nn.Module:
    lin = nn.Linear(2, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[scale, 0.0]]))
        lin.bias.zero_()
    return Scores(nn.Sequential(lin, nn.Flatten(0)))


def test_a_classifier_is_drawn_as_a_probability_on_a_fixed_scale():
    real, fake = torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])
    layers = compute_layers(fake, real, (-1, 1), (-1, 1), D=_linear_d(2.0), G=None, z_dim=None, y=None,
                            field=True, field_points=3, arrows=0, manifold=False, probability=True)
    # sigmoid(2 x) at x = -1, 0, 1, by hand: 0.1192, 0.5, 0.8808
    assert layers.field[0].tolist() == pytest.approx([0.119203, 0.5, 0.880797], abs=1e-6)
    assert (layers.centre, layers.half, layers.probability) == (0.5, 0.5, True)


def test_a_critic_keeps_one_colour_scale_however_large_its_scores_grow():
    real, fake = torch.tensor([[1.0, 0.0]]), torch.tensor([[-1.0, 0.0]])
    halves = []
    for scale in (1.0, 10.0):  # the scores of step 1,000 (about +-2) and of 10,000 (+-8)
        layers = compute_layers(fake, real, (-3, 3), (-4, 4), D=_linear_d(scale), G=None, z_dim=None,
                                y=None, field=True, field_points=3, arrows=0, manifold=False)
        halves.append(layers.half)
        assert not layers.probability
    assert halves == [5.0, 5.0]  # half the plot's diagonal: hypot(6, 8) / 2
    layers = compute_layers(fake, real, (-3, 3), (-4, 4), D=_linear_d(1.0), G=None, z_dim=None, y=None,
                            field=True, field_points=3, arrows=0, manifold=False, critic_range=2.5)
    assert layers.half == 2.5


def test_the_loss_says_whether_d_is_a_classifier():
    from gan_cli.losses import DRAGAN, LSGAN, WGAN, WGANGP, Hinge, Minimax, NonSaturating

    assert Minimax.d_probability and NonSaturating.d_probability and DRAGAN.d_probability
    assert not any(c.d_probability for c in (WGAN, WGANGP, Hinge, LSGAN))


def test_the_data_density_of_a_ring_worked_by_hand():
    data = ring_of_gaussians(num_modes=4, radius=2.0, std=0.5, batch_size=8, device="cpu", seed=0)
    # at the mode (2, 0): its own Gaussian 1/(2 pi 0.25), the nearest two at distance 2 sqrt 2
    # (exp(-8 / 0.5)), the far one at 4 (exp(-16 / 0.5)), each weighted 1/4
    by_hand = (1 + 2 * math.exp(-16.0) + math.exp(-32.0)) / (4 * 2 * math.pi * 0.25)
    got = data.log_density(torch.tensor([[2.0, 0.0]]))
    assert float(got[0]) == pytest.approx(math.log(by_hand), rel=1e-9)


def test_d_star_is_one_half_where_g_matches_the_data_and_blank_where_neither_is():
    from scipy.stats import gaussian_kde

    from gan_cli.data.toy_view import optimal_discriminator

    torch.manual_seed(0)
    fake = torch.randn(400, 2) * 0.3
    kde = gaussian_kde(fake.double().numpy().T)

    def same_as_g(points):
        return torch.from_numpy(kde.logpdf(points.double().numpy().T))

    xs = ys = torch.linspace(-6, 6, 25)
    d_star = optimal_discriminator(same_as_g, fake, xs, ys)
    shown = d_star[~d_star.isnan()]
    assert len(shown) > 0 and shown.tolist() == pytest.approx([0.5] * len(shown))  # p_data = p_g
    assert d_star[0, 0].isnan()  # a corner, far from both: 0 / 0


@pytest.mark.slow
def test_each_frame_is_titled_with_its_step_and_metrics_and_d_star_beside_d(tmp_path: Path,
                                                                            toy_run: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "dataset.figure.optimal_d=true", "metrics.every_steps=12",
                    "metrics.num_samples=500"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = toy_run  # gan-train tiny=toy
    for name in ("step_00000006.png", "step_00000012.png"):
        with Image.open(run_dir / "samples" / name) as a, Image.open(plain / "samples" / name) as b:
            assert a.size[0] > 1.8 * b.size[0] and a.size[1] == b.size[1]  # D* beside D


def test_run_log_caption_names_the_step_and_its_metrics(tmp_path: Path):
    from gan_cli.loggers import NullLogger
    from gan_cli.stats import RunLog

    runlog = RunLog(tmp_path, NullLogger(), total_steps=10, start_step=0, shown=("modes_captured",))
    runlog.write({"step": 10, "kimg": 1.0, "loss_d": 1.23456, "loss_g": 0.5, "imgs_per_s": 99.0,
                  "modes_captured": 8, "other": 3.0})
    runlog.close()
    assert runlog.caption(10) == "step 10: loss_d=1.23 loss_g=0.5 modes_captured=8"
    assert runlog.caption(11) == "step 11"  # no record of that step
