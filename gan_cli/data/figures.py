"""Image-grid figures: the image data sources' ``save_figure`` and the cascades' figures."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F


def grid_layout(num_images: int, labels: torch.Tensor | None = None) -> int:
    """Images per row of the grid.

    With labels (sorted by class, the same count per class, as the training loop passes them)
    each class fills one row, so the row length is the count of the first class. Without labels
    the grid is as square as possible.
    """
    if num_images <= 0:
        raise ValueError("no images to draw")
    if labels is not None and labels.numel() > 0:
        per_class = int((labels.reshape(-1) == labels.reshape(-1)[0]).sum().item())
        return max(1, per_class)
    return max(1, math.ceil(math.sqrt(num_images)))


def save_image_grid(
    images: torch.Tensor,
    path: str | Path,
    labels: torch.Tensor | None = None,
    padding: int = 2,
    nrow: int | None = None,
) -> Path:
    """Write `images` (N, C, H, W), values in [-1, 1], as one PNG grid; returns the path.

    ``nrow`` (images per row) defaults to one row per class with labels, else a square grid.
    """
    from torchvision.utils import save_image

    if images.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if nrow is None:
        nrow = grid_layout(images.shape[0], None if labels is None else labels.detach().cpu())
    x = images.detach().to("cpu", torch.float32)
    # map [-1, 1] -> [0, 1] with clamping (no per-figure min/max rescaling: colours stay honest)
    x = x.add(1.0).mul_(0.5).clamp_(0.0, 1.0)
    save_image(x, path, nrow=nrow, padding=padding, format="png")
    return path


def save_image_rows(rows: list[torch.Tensor], path: str | Path, padding: int = 2) -> Path:
    """Write rows of images whose sizes differ from row to row as one PNG; returns the path.

    Row r shows ``rows[r]`` (N_r, C, H_r, W_r), values in [-1, 1], side by side; the rows are
    stacked top-down, left-aligned, on white (SinGAN's samples at other sizes and aspect ratios).
    """
    from torchvision.utils import make_grid, save_image

    if not rows:
        raise ValueError("no rows to draw")
    grids = [make_grid(r.detach().to("cpu", torch.float32).add(1.0).mul(0.5).clamp(0.0, 1.0),
                       nrow=len(r), padding=padding, pad_value=1.0) for r in rows]
    height = sum(g.shape[1] for g in grids)
    width = max(g.shape[2] for g in grids)
    canvas = torch.ones(3, height, width)
    top = 0
    for g in grids:
        canvas[:, top:top + g.shape[1], : g.shape[2]] = g
        top += g.shape[1]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(canvas, path, format="png")
    return path


def save_sampling_figure(levels: Sequence[tuple[torch.Tensor, torch.Tensor]],
                         path: str | Path) -> torch.Tensor:
    """LAPGAN's sampling figure (Denton et al. 2015, fig. 1) as one PNG from ``LAPGANCascade.levels``:
    a row per sample, columns ``I~_K | h~_{K-1} | I~_{K-1} | ... | h~_0 | I~_0``, cells enlarged
    (nearest) to full size, each high-pass column stretched by its largest magnitude (mid-grey = 0).

    Returns:
        The drawn cells (N * (2K + 1), C, H, W) in [-1, 1], row by row.
    """
    size = tuple(levels[-1][0].shape[-2:])

    def column(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.detach().float().cpu(), size=size, mode="nearest")

    columns = [column(levels[0][0])]
    for image, high in levels[1:]:
        h = column(high)
        columns += [h / h.abs().max().clamp_min(1e-8), column(image)]
    cells = torch.stack(columns, dim=1).flatten(0, 1)
    save_image_grid(cells, path, nrow=len(columns))
    return cells
