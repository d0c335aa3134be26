"""Nearest-neighbour overfitting check: training images closest to generated ones (pixel L2).

Written by hand: a running top-k over batches of training images, so memory stays at one
(queries x batch) distance block plus the k best images per query. Distances are computed
exactly (no Gram-matrix shortcut), so an exact copy is found at distance 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor


def nearest_neighbours(
    queries: Tensor, train: Tensor | Iterable[Tensor], k: int = 5, batch_size: int = 2048
) -> tuple[Tensor, Tensor]:
    """For each query image, the ``k`` closest training images by L2 distance over pixels.

    ``train`` is a tensor (N, ...) or an iterable of such batches. Returns (distances (Q, k),
    neighbour images (Q, k, ...)), closest first.
    """
    q = queries.detach().to("cpu", torch.float32)
    qf = q.reshape(len(q), -1)
    if isinstance(train, Tensor):
        train = train.split(batch_size)
    best_d = torch.full((len(q), 0), float("inf"))
    best_x = torch.empty((len(q), 0, *q.shape[1:]))
    for batch in train:
        b = batch.detach().to("cpu", torch.float32)
        if b.shape[1:] != q.shape[1:]:
            raise ValueError(f"training images {tuple(b.shape[1:])} and queries "
                             f"{tuple(q.shape[1:])} differ in shape")
        d = torch.cdist(qf, b.reshape(len(b), -1), compute_mode="donot_use_mm_for_euclid_dist")
        cand_d = torch.cat([best_d, d], 1)
        cand_x = torch.cat([best_x, b.unsqueeze(0).expand(len(q), *b.shape)], 1)
        best_d, idx = cand_d.topk(min(k, cand_d.shape[1]), dim=1, largest=False)
        index = idx.view(*idx.shape, *([1] * (q.dim() - 1))).expand(-1, -1, *q.shape[1:])
        best_x = torch.gather(cand_x, 1, index)
    return best_d, best_x


def save_neighbour_figure(queries: Tensor, neighbours: Tensor, path: str | os.PathLike) -> Path:
    """Image grid: each row is a generated image followed by its neighbours (images in [-1, 1])."""
    from torchvision.utils import save_image

    q = queries.detach().to("cpu", torch.float32)
    rows = torch.cat([q.unsqueeze(1), neighbours.to(torch.float32)], 1)  # (Q, 1 + k, C, H, W)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(rows.flatten(0, 1), path, nrow=rows.shape[1], normalize=True, value_range=(-1, 1), padding=2)
    return path
