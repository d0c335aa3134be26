"""Metric sanity: how FD and IS react to real images disturbed more and more.

Heusel et al. 2017 ("GANs trained by a two time-scale update rule converge to a local Nash
equilibrium", figure 1 and appendix A1) disturb real images at rising levels and check that FID
rises with the disturbance, and show that the Inception Score does not always fall. This module
does the same on any feature network of the metric registry; ``gan_cli/scripts/metric_sanity.py`` runs
it on Fashion-MNIST with the offline feature network (``fd_fashion``, ``cis_fashion``), the
disturbed test images against the cached statistics of the training split, and draws one figure.

Disturbances of images x in [-1, 1], each at its levels (level 0 = the images as they are):

* ``gaussian_noise`` (alpha in 0, 0.25, 0.5, 0.75): ``(1 - alpha) x + alpha N``, N Gaussian noise
  rescaled per image to [-1, 1] (the paper: "scaled to [0, 255]");
* ``gaussian_blur`` (sigma in 0, 1, 2, 4 px): a Gaussian kernel of std sigma, ``2 ceil(3 sigma) + 1``
  taps, reflected at the borders (torchvision's ``gaussian_blur``);
* ``black_rectangles`` (alpha in 0, 0.25, 0.5, 0.75): five black squares of side
  ``round(alpha * side / 2)`` px at uniformly random positions inside each image (the paper: five
  rectangles whose size grows with alpha; the side's scale is this project's);
* ``swirl`` (strength in 0, 1, 2, 4): skimage's swirl (Heusel et al. use it) written with
  ``grid_sample``: the output pixel at distance r and angle theta from the centre takes the input
  at angle ``theta + strength exp(-r / (radius ln2 / 5))`` and the same r (bilinear, edge
  padding), radius = half the image side, the centre at the middle of the image;
* ``salt_and_pepper`` (alpha in 0, 0.1, 0.2, 0.3): each pixel, with probability alpha, set to black
  or white with equal odds;
* ``contamination`` (alpha in 0, 0.25, 0.5, 0.75): a random fraction alpha of the images replaced
  by images of another dataset (the paper: ImageNet into CelebA; here MNIST-5k into Fashion-MNIST).

Each disturbance draws from its own generator seeded from (seed, name, level), so a figure is
reproducible and levels do not share random draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gan_cli.seeding import derive_seed

Disturb = Callable[[Tensor, float, torch.Generator, "Tensor | None"], Tensor]


def gaussian_noise(x: Tensor, alpha: float, g: torch.Generator, other: Tensor | None = None) -> Tensor:
    """``(1 - alpha) x + alpha N``, N standard normal noise rescaled per image to [-1, 1]."""
    n = torch.randn(x.shape, generator=g)
    flat = n.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    n = ((flat - lo[:, None]) / (hi - lo)[:, None] * 2 - 1).reshape(x.shape)
    return (1 - alpha) * x + alpha * n


def gaussian_blur(x: Tensor, sigma: float, g: torch.Generator, other: Tensor | None = None) -> Tensor:
    """A Gaussian blur of std ``sigma`` px (``2 ceil(3 sigma) + 1`` taps); sigma 0 = unchanged."""
    from torchvision.transforms.functional import gaussian_blur as blur

    if sigma <= 0:
        return x.clone()
    k = 2 * math.ceil(3 * sigma) + 1
    k = min(k, 2 * (min(x.shape[-2:]) - 1) - 1)  # reflection padding must stay inside the image
    return blur(x, kernel_size=[k, k], sigma=[sigma, sigma])


def black_rectangles(x: Tensor, alpha: float, g: torch.Generator, other: Tensor | None = None,
                     count: int = 5) -> Tensor:
    """``count`` black squares of side ``round(alpha * side / 2)`` at random positions per image."""
    out = x.clone()
    h, w = x.shape[-2:]
    side = int(round(alpha * min(h, w) / 2))
    if side <= 0:
        return out
    tops = torch.randint(0, h - side + 1, (len(x), count), generator=g)
    lefts = torch.randint(0, w - side + 1, (len(x), count), generator=g)
    rows = torch.arange(h)[None, None, :, None]
    cols = torch.arange(w)[None, None, None, :]
    inside = ((rows >= tops[:, :, None, None]) & (rows < tops[:, :, None, None] + side)
              & (cols >= lefts[:, :, None, None]) & (cols < lefts[:, :, None, None] + side))
    mask = inside.any(dim=1, keepdim=True)  # (N, 1, H, W)
    return out.masked_fill(mask.expand_as(out), -1.0)


def swirl(x: Tensor, strength: float, g: torch.Generator | None = None, other: Tensor | None = None,
          radius: float | None = None) -> Tensor:
    """skimage.transform.swirl (rotation 0, centre of the image) for a batch, bilinear, edge padding.

    Args:
        x: images (N, C, H, W).
        strength: the swirl's strength (0 = unchanged).
        radius: its extent in px (skimage's ``radius``); None = half the shorter side.
    """
    if strength == 0:
        return x.clone()
    n, _, h, w = x.shape
    radius = min(h, w) / 2 if radius is None else radius
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    x0, y0 = (w - 1) / 2, (h - 1) / 2
    rho = torch.sqrt((xs - x0) ** 2 + (ys - y0) ** 2)
    decay = radius / 5 * math.log(2)
    theta = strength * torch.exp(-rho / decay) + torch.atan2(ys - y0, xs - x0)
    src_x, src_y = x0 + rho * torch.cos(theta), y0 + rho * torch.sin(theta)
    # pixel coordinates -> grid_sample's [-1, 1] (align_corners=True: -1 and 1 are pixel centres)
    grid = torch.stack([2 * src_x / (w - 1) - 1, 2 * src_y / (h - 1) - 1], dim=-1).to(x.dtype)
    return F.grid_sample(x, grid[None].expand(n, -1, -1, -1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def salt_and_pepper(x: Tensor, alpha: float, g: torch.Generator, other: Tensor | None = None) -> Tensor:
    """Each pixel (all channels) set to -1 or 1 with probability alpha, either with odds 1/2."""
    n, _, h, w = x.shape
    hit = torch.rand(n, 1, h, w, generator=g) < alpha
    value = torch.where(torch.rand(n, 1, h, w, generator=g) < 0.5, -1.0, 1.0).to(x.dtype)
    return torch.where(hit, value, x)


def contamination(x: Tensor, alpha: float, g: torch.Generator, other: Tensor | None = None) -> Tensor:
    """A random ``round(alpha N)`` of the N images replaced by the first images of ``other``."""
    if other is None:
        raise ValueError("contamination needs images of another dataset")
    k = int(round(alpha * len(x)))
    if k > len(other):
        raise ValueError(f"contamination at {alpha} needs {k} other images, got {len(other)}")
    out = x.clone()
    idx = torch.randperm(len(x), generator=g)[:k]
    out[idx] = other[:k].to(x.dtype)
    return out


@dataclass(frozen=True)
class Disturbance:
    """A disturbance with its levels (the first is 0, no disturbance) and the level's name."""

    apply: Disturb
    levels: tuple[float, ...]
    level_name: str


DISTURBANCES: dict[str, Disturbance] = {
    "gaussian_noise": Disturbance(gaussian_noise, (0.0, 0.25, 0.5, 0.75), "alpha"),
    "gaussian_blur": Disturbance(gaussian_blur, (0.0, 1.0, 2.0, 4.0), "sigma (px)"),
    "black_rectangles": Disturbance(black_rectangles, (0.0, 0.25, 0.5, 0.75), "alpha"),
    "swirl": Disturbance(swirl, (0.0, 1.0, 2.0, 4.0), "strength"),
    "salt_and_pepper": Disturbance(salt_and_pepper, (0.0, 0.1, 0.2, 0.3), "alpha"),
    "contamination": Disturbance(contamination, (0.0, 0.25, 0.5, 0.75), "alpha"),
}


def disturbed(name: str, x: Tensor, level: float, seed: int = 0, other: Tensor | None = None) -> Tensor:
    """``x`` disturbed by ``name`` at ``level``, from the stream of (seed, name, level)."""
    g = torch.Generator().manual_seed(derive_seed(seed, "sanity", name, level))
    return DISTURBANCES[name].apply(x, level, g, other)


def monotone(values: Sequence[float], rising: bool) -> bool:
    """Whether ``values`` never fall (``rising``) or never rise, level after level."""
    pairs = list(zip(values[:-1], values[1:], strict=True))
    return all(b >= a for a, b in pairs) if rising else all(b <= a for a, b in pairs)


def metric_sanity(real: Tensor, reference, options: dict, *, names: Sequence[str] = tuple(DISTURBANCES),
                  other: Tensor | None = None, seed: int = 0, fd: str = "fd_fashion",
                  score: str = "cis_fashion") -> dict[str, dict]:
    """FD and IS of ``real`` disturbed by each disturbance at each of its levels.

    Args:
        real: the images to disturb (N, C, H, W) in [-1, 1] (held-out real images).
        reference: the registry's RealData the Fréchet distance compares against.
        options: compute_metrics's options (device, batch_size, num_real, cache_dir, ...);
            num_fake is set to N.
        names: which disturbances.
        other: images of another dataset (for contamination).
        seed: seeds every disturbance's draws.
        fd, score: the registry's names of the Fréchet distance and the Inception-score metric.

    Returns:
        name -> {"levels", "level_name", fd: [...], f"{score}_mean": [...], "fd_rises": bool,
        "score_falls": bool}.
    """
    from gan_cli.metrics.registry import compute_metrics

    score_key = f"{score}_mean"
    out: dict[str, dict] = {}
    for name in names:
        d = DISTURBANCES[name]
        row: dict = {"levels": list(d.levels), "level_name": d.level_name, fd: [], score_key: []}
        for level in d.levels:
            images = disturbed(name, real, level, seed, other)
            cursor = [0]

            def sample(n: int, images: Tensor = images, cursor: list = cursor) -> Tensor:
                part = images[cursor[0]: cursor[0] + n]
                cursor[0] += n
                return part

            values = compute_metrics([fd, score], sample, reference, {**options, "num_fake": len(real)})
            row[fd].append(values[fd])
            row[score_key].append(values[score_key])
        row["fd_rises"] = monotone(row[fd], rising=True)
        row["score_falls"] = monotone(row[score_key], rising=False)
        out[name] = row
    return out


def plot_sanity(result: dict[str, dict], examples: dict[str, list[Tensor]], path, *, fd: str = "fd_fashion",
                score: str = "cis_fashion_mean", title: str = "") -> None:
    """Heusel et al.'s figure 1 layout: per disturbance a column with one image at every level,
    FD against the level, and the Inception-score variant against the level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result)
    fig, axes = plt.subplots(3, len(names), figsize=(2.6 * len(names), 6.6), dpi=100, squeeze=False,
                             gridspec_kw={"height_ratios": [0.55, 1, 1]})
    for j, name in enumerate(names):
        row = result[name]
        strip = torch.cat([e[0] for e in examples[name]], dim=-1)  # the first image at every level
        strip = strip.add(1).mul(0.5).clamp(0, 1)
        strip = strip[0] if strip.shape[0] == 1 else strip.permute(1, 2, 0)
        axes[0, j].imshow(strip.numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(name.replace("_", " "), fontsize=9)
        axes[0, j].axis("off")
        for ax, key, colour, ok in ((axes[1, j], fd, "tab:red", row["fd_rises"]),
                                    (axes[2, j], score, "tab:blue", row["score_falls"])):
            ax.plot(row["levels"], row[key], marker="o", color=colour)
            ax.set_xlabel(row["level_name"], fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            word = ("rises" if key == fd else "falls") if ok else ("not monotone")
            ax.set_title(word, fontsize=8, color="black" if ok else "tab:red")
        axes[1, j].set_ylabel(fd if j == 0 else "", fontsize=8)
        axes[2, j].set_ylabel(score if j == 0 else "", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
