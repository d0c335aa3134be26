"""The StyleGAN paper's figures (Karras et al. 2019) as image tensors: style mixing (fig. 3),
stochastic variation (fig. 4), truncation psi (fig. 8). Each takes a StyleGAN or StyleGAN2 generator,
runs it in eval mode under no_grad (its mode restored after) and returns a ``FigureGrid``;
``save_style_figures`` writes the three PNGs (gan-eval does, for every generator with ``synthesize``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["FigureGrid", "crossover_bands", "mixed_styles", "psi_sweep", "save_style_figures",
           "stochastic_variation", "style_mixing_figure"]

PAPER_PSIS = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)
BLANK = 1.0  # the empty corner cell of the style-mixing figure (white after save_image_grid)


@dataclass
class FigureGrid:
    """A figure's images (rows * nrow, C, H, W), row-major, and the facts a caption needs."""

    images: Tensor
    nrow: int
    info: dict = field(default_factory=dict)


@contextmanager
def _evaluating(G: nn.Module) -> Iterator[None]:
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        G.train(was_training)


def crossover_bands(layer_resolutions: Sequence[int]) -> dict[str, tuple[int, int]]:
    """The non-empty bands ``coarse|middle|fine -> (start, stop)`` of style indices: the paper's 4-8,
    16-32 and 64+ px from 64 px up; below, the sides split in three runs, the coarse the longest."""
    sides = sorted(set(layer_resolutions))
    if sides[-1] >= 64:
        groups = [[r for r in sides if r <= 8], [r for r in sides if 16 <= r <= 32],
                  [r for r in sides if r >= 64]]
    else:
        n = len(sides)
        sizes = [math.ceil(n / 3), math.ceil((n - math.ceil(n / 3)) / 2)]
        sizes.append(n - sum(sizes))
        groups = [sides[: sizes[0]], sides[sizes[0]: sizes[0] + sizes[1]], sides[sizes[0] + sizes[1]:]]
    bands = {}
    for name, group in zip(("coarse", "middle", "fine"), groups, strict=True):
        idx = [i for i, r in enumerate(layer_resolutions) if r in group]
        if idx:
            bands[name] = (idx[0], idx[-1] + 1)
    return bands


def mixed_styles(ws_a: Tensor, ws_b: Tensor, start: int, stop: int) -> Tensor:
    """A's styles with inputs ``start:stop`` taken from B (both (N, num_ws, w_dim))."""
    out = ws_a.clone()
    out[:, start:stop] = ws_b[:, start:stop]
    return out


def style_mixing_figure(G: nn.Module, z_a: Tensor, z_b: Tensor,
                        bands: dict[str, tuple[int, int]] | None = None, psi: float = 1.0) -> FigureGrid:
    """Fig. 3: a blank corner and B's images on top; per band and latent A, A's image and A's styles
    with that band from each B (fixed noise). ``1 + len(bands) * rows`` rows of ``1 + cols``."""
    bands = crossover_bands(G.layer_resolutions) if bands is None else bands
    with _evaluating(G):
        ws_a, ws_b = G.mapping(z_a, psi=psi), G.mapping(z_b, psi=psi)
        img_a, img_b = G.synthesize(ws_a, "const"), G.synthesize(ws_b, "const")
        rows = [torch.cat([torch.full_like(img_b[:1], BLANK), img_b])]
        for start, stop in bands.values():
            for i in range(len(z_a)):
                mixed = mixed_styles(ws_a[i: i + 1].expand_as(ws_b), ws_b, start, stop)
                rows.append(torch.cat([img_a[i: i + 1], G.synthesize(mixed, "const")]))
    return FigureGrid(torch.cat(rows), 1 + len(z_b), {"bands": dict(bands)})


def stochastic_variation(G: nn.Module, z: Tensor, columns: int = 4, std_draws: int = 32,
                         psi: float = 1.0, seed: int | None = 0) -> FigureGrid:
    """Fig. 4: per latent, ``columns`` images with fresh noise, then the per-pixel std over
    ``std_draws`` draws (-1 at 0, 1 at ``info["std_max"]``); ``seed`` None = the global RNG as it is."""
    if columns < 1 or std_draws < 2:
        raise ValueError(f"need columns >= 1 and std_draws >= 2, got {columns} and {std_draws}")
    devices = [z.device] if z.device.type == "cuda" else []
    with _evaluating(G), torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        ws = G.mapping(z, psi=psi)
        draws = torch.stack([G.synthesize(ws, "random") for _ in range(max(columns, std_draws))], dim=1)
    stat_dtype = torch.promote_types(draws.dtype, torch.float32)
    std = draws.to(stat_dtype).std(dim=1, unbiased=False).mean(dim=1, keepdim=True)  # (rows, 1, H, W)
    std_max = std.max().clamp_min(1e-12)
    std_img = (2.0 * std / std_max - 1.0).expand(-1, draws.shape[2], -1, -1).to(draws.dtype)
    images = torch.cat([draws[:, :columns], std_img[:, None]], dim=1).flatten(0, 1)
    return FigureGrid(images, columns + 1, {"std_max": float(std_max), "std_draws": std_draws})


def psi_sweep(G: nn.Module, z: Tensor, psis: Sequence[float] = PAPER_PSIS,
              truncation_cutoff: int | None = None) -> FigureGrid:
    """Fig. 8: one row per latent, one column per psi of ``w_avg + psi (w - w_avg)`` (fixed noise)."""
    with _evaluating(G):
        cols = [G.synthesize(G.mapping(z, psi=p, truncation_cutoff=truncation_cutoff), "const") for p in psis]
    return FigureGrid(torch.stack(cols, dim=1).flatten(0, 1), len(psis), {"psis": list(psis)})


def save_style_figures(G: nn.Module, out_dir: Path, *, seed: int, device: torch.device,
                       columns: int = 6, rows: int = 4) -> dict[str, str]:
    """Write style_mixing.png, stochastic_variation.png and psi_sweep.png into ``out_dir`` from latents
    derived from ``seed``; returns ``name -> path``."""
    from gan_cli.data.figures import save_image_grid
    from gan_cli.seeding import derive_seed

    g = torch.Generator(device=device).manual_seed(derive_seed(seed, "style_figures"))
    z_a, z_b, z_v = (torch.randn(n, G.mapping.z_dim, generator=g, device=device)
                     for n in (rows, columns, rows))
    figures = {
        "style_mixing": style_mixing_figure(G, z_a, z_b),
        "stochastic_variation": stochastic_variation(G, z_v, seed=derive_seed(seed, "style_noise")),
        "psi_sweep": psi_sweep(G, z_v),
    }
    paths = {}
    for name, fig in figures.items():
        path = save_image_grid(fig.images.float(), Path(out_dir) / f"{name}.png", nrow=fig.nrow)
        paths[name] = str(path)
    return paths
