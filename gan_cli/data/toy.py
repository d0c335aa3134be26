"""2D toy distributions, the standard test beds for mode collapse.

Every builder is a Hydra ``_target_`` (see conf/dataset/*.yaml for the fixed definitions) and
returns a :class:`ToySource` that draws fresh points from the analytic distribution at every
step. Points are drawn from a generator of their own, seeded from the run's seed, so the data
order is reproducible and resumable; under DDP every rank draws the same global batch and keeps
its strided share, so N ranks see exactly the points one process would see.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch

from gan_cli.data.base import DataInfo
from gan_cli.panels import place_panels
from gan_cli.seeding import derive_seed

Sampler = Callable[[int, torch.Generator], torch.Tensor]


class ToySource:
    """A DataSource of 2D points.

    Args:
        sample: ``sample(n, generator) -> (n, 2)`` float tensor on the CPU.
        batch_size: points per step on this rank (the global batch is batch_size * world_size).
        device: where batches are delivered.
        seed: the run's seed; the data stream's own seed is derived from it.
        rank, world_size: this process's share of each batch.
        noise_std: std of isotropic Gaussian noise added to every point (data units).
        modes: (K, 2) centres of the mixture components, when the distribution has modes.
        mode_std: std of each component (data units), when it has modes.
        name: the distribution's name (keys cached reference statistics).
        figure: the layers of the sample figure (``dataset.figure``: field, field_points, arrows,
            manifold, gif; gan_cli/data/toy_view.py); None = all on, the defaults.

    Attributes:
        figure_networks: True when a layer needs D or G: the loop's figures then pass them to
            :meth:`save_figure` (gan_cli/training/outputs.py).
        animate_figures: the loop makes ``samples/training.gif`` of every figure at the last step.
    """

    figure_samples = 1000  # points in a sample figure unless train.figure_samples says otherwise

    def __init__(self, sample: Sampler, *, batch_size: int, device: str | torch.device, seed: int,
                 rank: int = 0, world_size: int = 1, noise_std: float = 0.0,
                 modes: torch.Tensor | None = None, mode_std: float | None = None,
                 name: str = "toy", figure: dict | None = None):
        self.info = DataInfo(shape=(2,), num_classes=0, bounded=False)
        self._sample = sample
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.noise_std = noise_std
        self.modes = modes
        self.mode_std = mode_std
        self.name = name
        # what gan-eval and in-training metrics compute by default (mode coverage needs modes); the
        # energy distance to real samples for every set; precision/recall in the data's coordinates
        self.default_metrics: tuple[str, ...] = (("modes", "mode_spread", "energy") if modes is not None
                                                 else ("energy",))
        self.metric_options: dict[str, dict] = {"pr": {"features": "data"}}
        self._generator = torch.Generator().manual_seed(derive_seed(seed, "data"))
        self.figure = {**figure_defaults(), **(figure or {})}
        self.figure_networks = bool(self.figure["field"] or self.figure["arrows"] or self.figure["manifold"])
        self.animate_figures = bool(self.figure["gif"])

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` fresh points (CPU) from the distribution, noise included."""
        g = generator if generator is not None else self._generator
        x = self._sample(n, g)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn(x.shape, generator=g)
        return x

    def next(self) -> tuple[torch.Tensor, None]:
        x = self.draw(self.batch_size * self.world_size)[self.rank :: self.world_size]
        return x.to(self.device, non_blocking=True), None

    def real_batches(self, num: int, batch_size: int = 500, split: str = "train"):
        """``num`` points in batches from a fixed stream (the same every call), for metrics."""
        g = torch.Generator().manual_seed(derive_seed(0, "real", self.name, split))
        for start in range(0, num, batch_size):
            yield self.draw(min(batch_size, num - start), g)

    def fingerprint(self, num: int) -> str:
        """The distribution's own name (its parameters): the samples are drawn from it."""
        return self.name

    def state_dict(self) -> dict:
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._generator.set_state(state["generator"])

    def log_density(self, points: torch.Tensor) -> torch.Tensor:
        """log p_data at (N, 2) points: the mixture's own (its modes, mode_std and noise_std), else
        a Gaussian kernel density of 5,000 points of the fixed real stream (scipy.stats.gaussian_kde)."""
        points = points.double()
        if self.modes is not None and self.mode_std is not None:
            var = self.mode_std**2 + self.noise_std**2
            sq = torch.cdist(points, self.modes.double()).pow(2)  # (N, K)
            log_k = -sq / (2 * var) - math.log(2 * math.pi * var)  # each mode's 2D Gaussian
            return torch.logsumexp(log_k, dim=1) - math.log(len(self.modes))
        from scipy.stats import gaussian_kde

        real = torch.cat(list(self.real_batches(5000))).double().numpy()
        return torch.from_numpy(gaussian_kde(real.T).logpdf(points.numpy().T))

    def save_figure(self, fake: torch.Tensor, path: Path, labels: torch.Tensor | None = None, *,
                    D: torch.nn.Module | None = None, G: torch.nn.Module | None = None,
                    z_dim: int | None = None, d_probability: bool = False,
                    title: str | None = None) -> Path:
        """Real points (orange) against generated ones (blue), same count of each; with ``D`` and
        ``G``, the training view's layers beneath them (gan_cli/data/toy_view.py), and with
        ``dataset.figure.optimal_d`` the optimal discriminator D* in a panel beside it.

        Args:
            fake: generated points (N, 2).
            path: the PNG to write.
            labels: the conditions G was given (used for G's manifold), or None.
            D: the discriminator: its field and gradient arrows; None = no D layers.
            G: the generator the points came from: its manifold; None = none.
            z_dim: G's latent size (for the manifold).
            d_probability: D is a classifier (the loss's ``d_probability``): drawn as P(real).
            title: the figure's title (the step and its metrics); None = the file's name.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from gan_cli.data.toy_view import compute_layers, draw_layers, draw_optimal

        path = Path(path)
        fake = fake.detach().float().cpu()
        real = self.draw(len(fake), torch.Generator().manual_seed(0))
        # The view is the real data's box plus a margin, so a generator that wanders off shows
        # up as points missing from the picture rather than as a shrunken real distribution.
        lo, hi = real.min(0).values, real.max(0).values
        pad = 0.25 * (hi - lo).max()
        xlim = (float(lo[0] - pad), float(hi[0] + pad))
        ylim = (float(lo[1] - pad), float(hi[1] + pad))
        f = self.figure
        layers = compute_layers(fake, real, xlim, ylim, D=D, G=G, z_dim=z_dim, y=labels,
                                field=f["field"], field_points=f["field_points"], arrows=f["arrows"],
                                manifold=f["manifold"], probability=d_probability,
                                critic_range=f["critic_range"],
                                log_density=self.log_density if f["optimal_d"] else None)
        width = 5.8 if layers.field is not None else 5
        panels = 2 if layers.optimal is not None else 1
        fig, axes = plt.subplots(1, panels, figsize=(width + 5.8 * (panels - 1), 5), dpi=100,
                                 squeeze=False)
        m, bars = MARGIN_IN, layers.field is not None
        place_panels(fig, 1, panels, left=m["left"], right=m["bar"] if bars else m["right"],
                     top=m["top"] + (m["suptitle"] if panels > 1 else 0.0), bottom=m["bottom"],
                     gap_w=m["gap"] + (m["bar"] if bars else 0.0))
        ax = axes[0, 0]
        draw_layers(ax, layers, xlim, ylim)
        if layers.optimal is not None:
            draw_optimal(axes[0, 1], layers, xlim, ylim)
            axes[0, 1].set_title("optimal D* (p_g: kernel density of G's points)", fontsize=9)
        for a in axes.flat:
            a.scatter(real[:, 0], real[:, 1], s=6, c="tab:orange", alpha=0.5, label="real",
                      linewidths=0, zorder=1)
            a.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:blue", alpha=0.8, label="generated",
                      linewidths=0, zorder=3)
            a.set_aspect("equal")
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
        if panels == 1:
            ax.set_title(title or path.stem, fontsize=9)
        else:
            ax.set_title("D", fontsize=9)
            fig.suptitle(title or path.stem, fontsize=10)
        fig.savefig(path)
        plt.close(fig)
        return path


# The figure's margins in inches, fixed: tight_layout drew the whole figure once more only to
# measure its texts, at every sample step of every 2D run. "bar": right of a panel with a colour
# bar (the field's), for the bar's ticks and label; "gap": between two panels, beside the bar
# (placed by gan_cli.panels.place_panels).
MARGIN_IN = {"left": 0.5, "right": 0.15, "bar": 0.8, "bottom": 0.4, "top": 0.35, "suptitle": 0.3,
             "gap": 0.55}


def figure_defaults() -> dict:
    """The layers of a 2D figure when the config names none: ToyFigureConfig's defaults."""
    from dataclasses import asdict

    from gan_cli.config.data import ToyFigureConfig

    return asdict(ToyFigureConfig())


def _mixture_sampler(centres: torch.Tensor, std: float) -> Sampler:
    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(centres), (n,), generator=g)
        return centres[idx] + std * torch.randn((n, 2), generator=g)

    return sample


def ring_of_gaussians(*, num_modes: int = 8, radius: float = 2.0, std: float = 0.02,
                      noise_std: float = 0.0, **run) -> ToySource:
    """``num_modes`` equal Gaussians centred evenly on a circle of ``radius`` (ring8)."""
    angles = torch.arange(num_modes, dtype=torch.float32) * (2 * math.pi / num_modes)
    centres = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    return ToySource(_mixture_sampler(centres, std), noise_std=noise_std, modes=centres,
                     mode_std=std, name=f"ring{num_modes}-r{radius}-s{std}", **run)


def grid_of_gaussians(*, per_side: int = 5, spacing: float = 2.0, std: float = 0.05,
                      noise_std: float = 0.0, **run) -> ToySource:
    """``per_side`` x ``per_side`` equal Gaussians on a grid centred at the origin (grid25)."""
    ticks = (torch.arange(per_side, dtype=torch.float32) - (per_side - 1) / 2) * spacing
    centres = torch.cartesian_prod(ticks, ticks)
    return ToySource(_mixture_sampler(centres, std), noise_std=noise_std, modes=centres,
                     mode_std=std, name=f"grid{per_side}x{per_side}-d{spacing}-s{std}", **run)


def sine(*, x_min: float = 0.0, x_max: float = 2 * math.pi, amplitude: float = 1.0,
         noise_std: float = 0.0, **run) -> ToySource:
    """x1 ~ U[x_min, x_max], x2 = amplitude * sin(x1): the lecture's toy example."""

    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        x1 = x_min + (x_max - x_min) * torch.rand(n, generator=g)
        return torch.stack([x1, amplitude * torch.sin(x1)], dim=1)

    return ToySource(sample, noise_std=noise_std, name="sine", **run)


def swiss_roll(*, t_min: float = 1.5 * math.pi, t_max: float = 4.5 * math.pi, scale: float = 0.2,
               noise_std: float = 0.05, **run) -> ToySource:
    """The 2D Swiss roll: t ~ U[t_min, t_max], x = scale * (t cos t, t sin t)."""

    def sample(n: int, g: torch.Generator) -> torch.Tensor:
        t = t_min + (t_max - t_min) * torch.rand(n, generator=g)
        return scale * torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)

    return ToySource(sample, noise_std=noise_std, name="swissroll", **run)
