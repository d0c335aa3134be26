"""The figures of the StyleGAN papers, as image tensors (the caller writes them).

Karras, Laine, Aila 2019, "A Style-Based Generator Architecture for Generative Adversarial
Networks": figure 3 (style mixing), figure 4 (stochastic variation), figure 8 (truncation psi).

Each function takes a StyleGAN or StyleGAN2 generator (``gan_cli.models.stylegan`` /
``stylegan2``: ``G.mapping``, ``G.synthesize``, ``G.layer_resolutions``) and returns a
:class:`FigureGrid`: the images in G's output range, row-major, with the row length, ready for
``gan_cli.data.figures.save_image_grid(fig.images, path, nrow=fig.nrow)``. The generator runs in
eval mode (no style mixing, no update of ``w_avg``) under ``torch.no_grad`` and is put back in
its previous mode afterwards.

* :func:`style_mixing_figure`: a first row with the images of latents B, a first column with the
  images of latents A; each cell is A's styles with the styles of one band of layers (coarse,
  middle or fine) taken from B; one block of rows per band. Noise is each layer's fixed draw
  (``noise_mode="const"``), so only the styles differ between cells.
* :func:`stochastic_variation`: per latent, several images with the same w and fresh noise, then
  the per-pixel standard deviation over ``std_draws`` noise draws (averaged over channels, shown
  on a scale from -1 at 0 to 1 at the figure's largest std, ``info["std_max"]``).
* :func:`psi_sweep`: per latent, one image per psi of the truncation ``w_avg + psi (w - w_avg)``
  (the paper: 1, 0.7, 0.5, 0, -0.5, -1; psi 0 is the "mean" image, the same for every latent).

:func:`save_style_figures` draws the three with latents from a seed and writes them as PNGs
(gan-eval does, for every generator that has ``synthesize``).
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
    """Images of a figure, row-major.

    Args:
        images: (rows * nrow, C, H, W) in G's output range.
        nrow: images per row.
        info: facts a caption needs (the bands' style indices, the std scale, the psis).
    """

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
    """Which style inputs are coarse, middle and fine, as ``name -> (start, stop)`` index ranges.

    The paper's bands when the model reaches 64 px: coarse 4-8 px, middle 16-32 px, fine 64 px and
    up. Smaller models split their sides into three runs, the coarse one the longest (32 px: 4-8,
    16, 32; 16 px: 4, 8, 16); empty bands are left out.

    Args:
        layer_resolutions: the side each style input acts at (``G.layer_resolutions``), non-decreasing.

    Returns:
        An ordered dict of the non-empty bands.
    """
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
    """StyleGAN's figure 3: rows from latents A, columns from latents B, one row block per band.

    Args:
        G: a style generator.
        z_a: (rows, z_dim), the sources of the rows.
        z_b: (cols, z_dim), the sources of the columns.
        bands: ``name -> (start, stop)`` style ranges copied from B; None = :func:`crossover_bands`.
        psi: truncation in W for every image (1 = none).

    Returns:
        A grid of ``1 + len(bands) * rows`` rows and ``1 + cols`` columns: the corner blank, B's
        images along the top, then for each band and each A: A's image and its mixes with each B.
    """
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
    """StyleGAN's figure 4: the same w with different noise, and the per-pixel std over the noise.

    Args:
        G: a style generator.
        z: (rows, z_dim), one latent per row.
        columns: images shown per row, each with its own noise draw.
        std_draws: noise draws behind the std image (at least 2; the paper: 100).
        psi: truncation in W (1 = none).
        seed: seeds the noise draws (torch's global generator is restored afterwards); None =
            draw from the global generator as it is.

    Returns:
        A grid of ``rows`` rows and ``columns + 1`` columns: the draws, then the std image.
        ``info["std_max"]`` is the largest per-pixel std (in image units) the last column's white
        stands for.
    """
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
    """StyleGAN's figure 8: one row per latent, one column per psi (fixed noise).

    Args:
        G: a style generator whose ``w_avg`` has been tracked during training.
        z: (rows, z_dim).
        psis: the truncation values, left to right.
        truncation_cutoff: truncate only the first styles (None: all).

    Returns:
        A grid of ``rows`` rows and ``len(psis)`` columns.
    """
    with _evaluating(G):
        cols = [G.synthesize(G.mapping(z, psi=p, truncation_cutoff=truncation_cutoff), "const") for p in psis]
    return FigureGrid(torch.stack(cols, dim=1).flatten(0, 1), len(psis), {"psis": list(psis)})


def save_style_figures(G: nn.Module, out_dir: Path, *, seed: int, device: torch.device,
                       columns: int = 6, rows: int = 4) -> dict[str, str]:
    """Write ``style_mixing.png``, ``stochastic_variation.png`` and ``psi_sweep.png`` into ``out_dir``.

    Args:
        G: a style generator (in the phase it should be drawn in).
        out_dir: the folder (gan-eval's run directory).
        seed: the latents come from a stream derived from it (the same figures for the same seed).
        device: where G runs.
        columns: latents B of the style-mixing figure.
        rows: latents A of the style-mixing figure, rows of the other two.

    Returns:
        ``figure name -> path`` of the three files.
    """
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
