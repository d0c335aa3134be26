"""The 2D training view: what D and G do on 2D data, drawn at every sample interval.

After GAN Lab (Kahng, Thorat, Chau, Viégas, Wattenberg 2018, "GAN Lab: Understanding complex deep
generative models using interactive visual experimentation", IEEE TVCG), whose layers are:

* **D's field**: D on a grid of ``field_points`` x ``field_points`` points over the plot, as a
  background in a diverging colour map, purple ("fake") to green ("real"), on one colour scale
  for the whole run. Where D is a classifier (the loss's ``d_probability``: sigmoid
  cross-entropy), the probability sigmoid(score) = P(real) on [0, 1], centred at 1/2. Where D is
  a critic, its raw score centred at ``(mean D(real) + mean D(fake)) / 2`` over the points shown
  (WGAN's critic has no fixed zero) on a fixed half-width: ``critic_range``, by default half the
  plot's diagonal, the most a 1-Lipschitz critic can vary over the plot (beyond it saturates);
* **the optimal discriminator** (``optimal_d``, beside D): D* = p_data / (p_data + p_g) =
  sigmoid(log p_data - log p_g) on a grid 4x finer, with p_data the data's own density (the
  mixture's, analytic) and p_g a Gaussian kernel density of the generated points
  (scipy.stats.gaussian_kde, Scott's bandwidth), blank where both densities are negligible, and
  the contour D* = 1/2 drawn on both panels;
* **the gradient of D** at ``arrows`` generated points, grad_x D(x) by autograd, as arrows (the
  longest spans 12% of the plot's width, the others in proportion): the direction that raises
  D's score. For the usual losses G moves its points that way: the
  generator's loss is a decreasing function of D(G(z)) (-log sigmoid D for ns, -D for WGAN and
  hinge), so its gradient with respect to x = G(z) is a negative multiple of grad_x D;
* **G's manifold**: the image of a grid of latents: for z_dim 1 the curve G(t), t in
  [-extent, extent]; for z_dim 2 the images of the grid lines of [-extent, extent]^2; for larger
  z_dim the same grid on the plane of the first two latent coordinates, the others 0 (a slice
  through the manifold, labelled so);
* the real points (orange) and the generated ones (blue), as in every 2D figure.

Each layer is switched off by ``dataset.figure.*`` (gan_cli/config/data.py, ToyFigureConfig). D and G
run in eval mode without touching their weights, buffers or any random stream, so figures never
change training (a resumed run stays bitwise identical). D's layers need a D that scores single
points (``output`` "score", no PacGAN packing, no labels); other discriminators get the points
and the manifold only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

#: Half-width of the latent grid of G's manifold, in standard deviations of z.
MANIFOLD_EXTENT = 2.0
#: The longest gradient arrow's length as a fraction of the plot's width.
ARROW_SPAN = 0.12
#: D*'s grid is this many times finer than D's field (a mixture's modes are narrow).
OPTIMAL_D_REFINE = 4
#: Where p_data and p_g are both below this fraction of their peaks, D* (0/0 there) is not drawn.
NEGLIGIBLE = 1e-3


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Modules in eval mode inside the block, their own modes restored after."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def scores_points(D: nn.Module | None) -> bool:
    """Whether ``D`` gives one score per 2D point (what the field and the arrows need)."""
    return (D is not None and getattr(D, "output", "score") == "score"
            and getattr(D, "pack", 1) == 1 and not getattr(D, "num_classes", 0))


def grid_points(xlim: tuple[float, float], ylim: tuple[float, float], n: int) -> tuple[Tensor, Tensor]:
    """``n`` evenly spaced x and y coordinates spanning the limits (both ends included)."""
    return torch.linspace(xlim[0], xlim[1], n), torch.linspace(ylim[0], ylim[1], n)


def d_field(D: nn.Module, xs: Tensor, ys: Tensor, batch_size: int = 4096) -> Tensor:
    """D's raw score at every grid point: ``field[i, j] = D((xs[j], ys[i]))``, shape (len(ys), len(xs)).

    Args:
        D: a discriminator scoring single 2D points (eval mode is set here).
        xs, ys: the grid's coordinates.
        batch_size: points per forward pass.
    """
    device = _device(D)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")  # (len(ys), len(xs)) each
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(device)
    with evaluating(D), torch.no_grad():
        scores = torch.cat([D(p).float().reshape(-1) for p in points.split(batch_size)])
    return scores.cpu().reshape(len(ys), len(xs))


def d_gradients(D: nn.Module, points: Tensor) -> Tensor:
    """grad_x D(x) at each point (N, 2), by autograd; D's parameters get no gradient.

    D's score of a point depends on that point alone (eval mode, no batch coupling), so the
    gradient of the sum of the scores is each point's own gradient.
    """
    x = points.detach().to(_device(D), torch.float32).requires_grad_(True)
    with evaluating(D), torch.enable_grad():
        (grad,) = torch.autograd.grad(D(x).float().sum(), x)
    return grad.detach().cpu()


def manifold_latents(z_dim: int, lines: int = 11, points: int = 100,
                     extent: float = MANIFOLD_EXTENT) -> list[Tensor]:
    """The latent polylines whose images draw G's manifold (module docstring), each (points, z_dim).

    z_dim 1: one line from -extent to extent. Otherwise ``lines`` lines of constant z_1 and
    ``lines`` of constant z_2 over [-extent, extent]^2, every other coordinate 0.
    """
    t = torch.linspace(-extent, extent, points)
    if z_dim == 1:
        return [t[:, None]]
    out = []
    for c in torch.linspace(-extent, extent, lines):
        for axis in (0, 1):
            z = torch.zeros(points, z_dim)
            z[:, axis] = t
            z[:, 1 - axis] = c
            out.append(z)
    return out


def manifold_lines(G: nn.Module, z_dim: int, y: Tensor | None = None, **kwargs) -> list[Tensor]:
    """G's images of :func:`manifold_latents`, each (points, 2) on the CPU (eval mode, no grad)."""
    latents = manifold_latents(z_dim, **kwargs)
    device = _device(G)
    with evaluating(G), torch.no_grad():
        flat = torch.cat(latents).to(device)
        labels = None if y is None else y[:1].expand(len(flat)).to(device)
        images = G(flat, labels).float().cpu()
    return list(images.split([len(z) for z in latents]))


@dataclass
class ViewLayers:
    """What a 2D figure draws besides the points (None: layer off or not available)."""

    xs: Tensor | None = None
    ys: Tensor | None = None
    field: Tensor | None = None  # (len(ys), len(xs)) raw scores, or P(real) when probability
    centre: float | None = None  # the colour map's centre (module docstring)
    half: float | None = None  # the colour map's half-width; None = the field's own largest
    probability: bool = False  # the field is P(real) (a classifier), not a critic's score
    optimal: tuple[Tensor, Tensor, Tensor] | None = None  # D*'s (xs, ys, values) (module docstring)
    arrow_points: Tensor | None = None  # (K, 2)
    arrows: Tensor | None = None  # (K, 2) grad_x D
    lines: list[Tensor] | None = None  # G's manifold polylines
    manifold_slice: bool = False  # the lines are a slice (z_dim > 2)


def compute_layers(fake: Tensor, real: Tensor, xlim: tuple[float, float], ylim: tuple[float, float],
                   *, D: nn.Module | None, G: nn.Module | None, z_dim: int | None, y: Tensor | None,
                   field: bool, field_points: int, arrows: int, manifold: bool,
                   probability: bool = False, critic_range: float | None = None,
                   log_density: Callable[[Tensor], Tensor] | None = None) -> ViewLayers:
    """Every enabled layer of the view (see the module docstring). ``probability``: D is a
    classifier (the field becomes sigmoid(score)); ``critic_range``: a critic's colour half-width
    (None = half the plot's diagonal); ``log_density``: log p_data of (N, 2) points, for D*."""
    layers = ViewLayers()
    if scores_points(D):
        if field:
            layers.xs, layers.ys = grid_points(xlim, ylim, field_points)
            layers.field = d_field(D, layers.xs, layers.ys)
            layers.probability = probability
            if probability:
                layers.field, layers.centre, layers.half = layers.field.sigmoid(), 0.5, 0.5
            else:
                with evaluating(D), torch.no_grad():
                    d_real = D(real.to(_device(D))).float().mean()
                    d_fake = D(fake.to(_device(D))).float().mean()
                layers.centre = float((d_real + d_fake) / 2)
                layers.half = critic_range or math.hypot(xlim[1] - xlim[0], ylim[1] - ylim[0]) / 2
        if arrows > 0:
            layers.arrow_points = fake[:arrows].detach().cpu().float()
            layers.arrows = d_gradients(D, layers.arrow_points)
    if manifold and G is not None and z_dim:
        layers.lines = manifold_lines(G, z_dim, y)
        layers.manifold_slice = z_dim > 2
    if log_density is not None:
        xs, ys = grid_points(xlim, ylim, field_points * OPTIMAL_D_REFINE)
        layers.optimal = (xs, ys, optimal_discriminator(log_density, fake, xs, ys))
    return layers


def optimal_discriminator(log_density: Callable[[Tensor], Tensor], fake: Tensor, xs: Tensor,
                          ys: Tensor) -> Tensor:
    """D*(x) = p_data / (p_data + p_g) = sigmoid(log p_data - log p_g) on the grid (len(ys), len(xs)),
    p_g a Gaussian kernel density of ``fake`` (N, 2) (scipy.stats.gaussian_kde, Scott's rule);
    NaN where both densities are below NEGLIGIBLE of their peaks."""
    from scipy.stats import gaussian_kde

    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).double()
    log_pg = torch.from_numpy(gaussian_kde(fake.detach().double().cpu().numpy().T).logpdf(points.numpy().T))
    log_pd = log_density(points).double()
    d_star = (log_pd - log_pg).sigmoid()
    # where both densities are negligible (below NEGLIGIBLE of their peaks) D* is 0/0: left blank
    negligible = math.log(NEGLIGIBLE)
    empty = (log_pd < log_pd.max() + negligible) & (log_pg < log_pg.max() + negligible)
    return d_star.masked_fill(empty, math.nan).float().reshape(len(ys), len(xs))


def draw_layers(ax, layers: ViewLayers, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """Draw the field (with a colour bar), G's manifold and the arrows on a matplotlib axis."""
    from matplotlib.collections import LineCollection

    f = layers.field.numpy() if layers.field is not None else None
    finite = np.isfinite(f) if f is not None else None
    if f is not None and finite.any():  # a diverged D (non-finite scores) has no field to draw
        centre = layers.centre
        if centre is None or not math.isfinite(centre):
            centre = float(f[finite].mean())
        half = layers.half if layers.half is not None else float(np.abs(f[finite] - centre).max())
        label = ("D(x) = P(real), a classifier" if layers.probability
                 else "D(x), a critic's score: fake <-> real")
        _field(ax, layers.xs, layers.ys, f, centre, half, label,
               extend="neither" if layers.probability else "both")
    if layers.optimal is not None:
        _half_contour(ax, layers.optimal)
    if layers.lines is not None:
        segments = [line.numpy() for line in layers.lines]
        label = "G's manifold" + (" (slice z3.. = 0)" if layers.manifold_slice else "")
        ax.add_collection(LineCollection(segments, colors="0.25", linewidths=0.6, alpha=0.6,
                                         zorder=2, label=label))
    if layers.arrows is not None:
        p, g = layers.arrow_points.numpy(), layers.arrows.numpy()
        # the longest arrow spans ARROW_SPAN of the plot's width; the others in proportion
        longest = max(float(np.linalg.norm(g, axis=1).max()), 1e-12)
        scale = longest / (ARROW_SPAN * (xlim[1] - xlim[0]))
        ax.quiver(p[:, 0], p[:, 1], g[:, 0], g[:, 1], color="black", angles="xy", scale_units="xy",
                  scale=scale, width=0.003, alpha=0.75, zorder=4, label="grad D at G(z)")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)


def draw_optimal(ax, layers: ViewLayers, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
    """D* (a probability, on the classifier's scale) with its D* = 1/2 contour, on its own axis."""
    xs, ys, d_star = layers.optimal
    _field(ax, xs, ys, d_star.numpy(), 0.5, 0.5, "D*(x) = p_data / (p_data + p_g)", extend="neither")
    _half_contour(ax, layers.optimal)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)


def _half_contour(ax, optimal: tuple[Tensor, Tensor, Tensor]) -> None:
    """Where D* = 1/2 (p_data = p_g), dashed."""
    xs, ys, d_star = optimal
    values = d_star.numpy()
    if np.nanmin(values) < 0.5 < np.nanmax(values):
        ax.contour(xs.numpy(), ys.numpy(), values, levels=[0.5], colors="crimson", linewidths=0.9,
                   linestyles="dashed", zorder=2)


def _field(ax, xs: Tensor, ys: Tensor, f: np.ndarray, centre: float, half: float, label: str,
           extend: str) -> None:
    """A background field on the fixed scale centre +- half (PRGn, saturating beyond), with its bar."""
    from matplotlib.colors import TwoSlopeNorm

    # at least a relative 1e-6 either side, so that the norm's three values increase even for a
    # constant field far from 0 (a run whose D scores ~1e30)
    half = max(half, 1e-6 * max(1.0, abs(centre)))
    mesh = ax.pcolormesh(xs.numpy(), ys.numpy(), np.ma.masked_invalid(f), shading="auto", cmap="PRGn",
                         norm=TwoSlopeNorm(centre, centre - half, centre + half), alpha=0.55,
                         rasterized=True, zorder=0)
    bar = ax.figure.colorbar(mesh, ax=ax, fraction=0.046, pad=0.02, extend=extend)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _device(module: nn.Module) -> torch.device:
    return next(iter(module.parameters()), torch.empty(0)).device
