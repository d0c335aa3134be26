"""gan-sample: what a checkpoint's generator makes, without writing Python.

The generator is rebuilt by :func:`gan_cli.build.generator_from_checkpoint` and runs in eval mode
under ``torch.no_grad``; one ``mode=`` per call writes into the run directory, with
``sample.json`` listing what was written (every option: SampleConfig, config/commands.py):

* ``export``: ``n`` samples as PNGs (``labels.csv`` for a conditional G) or one ``samples.npz``
  (``images`` uint8 NHWC, ``z``, ``labels``, ``inputs``); 2D points as ``samples.npz`` or ``.csv``.
* ``grid``: ``n`` samples in the data's own figure: ``grid.png``.
* ``interp``: latent walks (White 2016), one row per walk through the latents of ``seeds`` or
  between two random latents, ``steps`` images per segment: ``interp.png``, ``.gif``, ``.mp4``.
  The latent of seed s is the first draw of a CPU generator seeded with s. lerp(a, b, t) =
  (1 - t) a + t b; slerp walks the great circle between the directions while the norm moves
  linearly (lerp's midpoints are atypically short under a Gaussian prior).
* ``arithmetic``: DCGAN's vector arithmetic (Radford et al. 2016, figure 7): ``candidates.png`` to
  pick from, then with ``select=[[A], [B], [C]]`` Y = mean(A) - mean(B) + mean(C), drawn at the
  centre of a 3 x 3 block of G(Y + u), u uniform in [-perturb, perturb]: ``arithmetic.png``.
* ``classes``: one row per class, one fixed z per column: ``classes.png``.
* ``mixing`` / ``psi``: StyleGAN's style-mixing and truncation-psi figures (style_figures.py).

A conditional G gets ``label`` or the classes in turn; an image-conditioned G (pix2pix)
translates inputs of the data (``split=test``: held-out ones), and exports keep the inputs.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from gan_cli.animation import to_uint8, write_gif, write_mp4
from gan_cli.errors import ConfigError, RuntimeFailure
from gan_cli.latents import draw_smooth, sample_latents
from gan_cli.models import takes_condition
from gan_cli.seeding import derive_seed

log = logging.getLogger("gan_cli")

#: Images in a GIF frame are enlarged (nearest neighbour) to at least this side (px).
MIN_FRAME_SIDE = 256


# ---------------------------------------------------------------------------------------------
# Latents and interpolation.


def latent_of_seed(seed: int, z_dim: int, truncation: float | None = None,
                   method: str = "resample") -> Tensor:
    """The latent a seed names: the first draw of a CPU generator seeded with ``seed``, (z_dim,)."""
    g = torch.Generator().manual_seed(int(seed))
    return sample_latents(1, z_dim, generator=g, truncation=truncation, method=method)[0]


def lerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Linear interpolation ``(1 - t) a + t b`` for each t: (T,) -> (T, *a.shape)."""
    t = t.reshape(-1, *([1] * a.dim())).to(a.dtype)
    return (1 - t) * a + t * b


def slerp(a: Tensor, b: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation of the directions, linear of the norms, at fractions t (T,) ->
    (T, *a.shape); a and b exactly at the ends; lerp of the directions where sin(W) < eps.

    slerp(a, b, t) = ((1 - t) |a| + t |b|) (sin((1 - t) W) a/|a| + sin(t W) b/|b|) / sin W,
    cos W = (a/|a|) . (b/|b|)
    """
    shape = a.shape
    a64, b64 = a.reshape(-1).double(), b.reshape(-1).double()
    na, nb = a64.norm(), b64.norm()
    ua, ub = a64 / na, b64 / nb
    omega = torch.arccos((ua @ ub).clamp(-1.0, 1.0))
    t64 = t.reshape(-1, 1).double()
    if torch.sin(omega) < eps:
        direction = (1 - t64) * ua + t64 * ub
        direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-30)
    else:
        direction = (torch.sin((1 - t64) * omega) * ua + torch.sin(t64 * omega) * ub) / torch.sin(omega)
    out = ((1 - t64) * na + t64 * nb) * direction
    out[t64[:, 0] == 0] = a64
    out[t64[:, 0] == 1] = b64
    return out.to(a.dtype).reshape(len(t64), *shape)


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


def walk(latents: Tensor, steps: int, method: str = "slerp") -> Tensor:
    """A walk through ``latents`` (K, z_dim) in order: ``steps`` points per segment, both ends
    included and shared between segments: ((K - 1) * (steps - 1) + 1, z_dim)."""
    if len(latents) < 2 or steps < 2:
        raise ValueError(f"a walk needs at least 2 latents and 2 steps, got {len(latents)} and {steps}")
    t = torch.linspace(0, 1, steps)
    parts = [INTERPOLATIONS[method](latents[k], latents[k + 1], t)[(1 if k else 0):]
             for k in range(len(latents) - 1)]
    return torch.cat(parts)


# ---------------------------------------------------------------------------------------------
# Drawing from G.


@torch.no_grad()
def generate(G: nn.Module, z: Tensor, y: Tensor | None, batch_size: int = 250) -> Tensor:
    """G's samples of latents ``z`` (and conditions ``y``) in batches, float32 on the CPU."""
    device = next(iter(G.parameters()), torch.empty(0)).device
    out = []
    for start in range(0, len(z), batch_size):
        zb = z[start:start + batch_size].to(device)
        yb = None if y is None else y[start:start + batch_size].to(device)
        out.append(G(zb, yb).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def conditions(G: nn.Module, data: Any, n: int, *, label: int | None = None,
               generator: torch.Generator | None = None, by_row: int | None = None) -> Tensor | None:
    """What G is conditioned on for ``n`` samples: ``label`` (None: classes in turn, or in blocks
    of ``by_row``), input images of ``data`` drawn with ``generator``, or None."""
    if G.num_classes:
        if label is not None:
            if not 0 <= label < G.num_classes:
                raise ConfigError(f"label={label}: this generator has classes 0..{G.num_classes - 1}")
            return torch.full((n,), int(label), dtype=torch.int64)
        if by_row:
            return (torch.arange(n) // by_row) % G.num_classes
        return torch.arange(n) % G.num_classes
    if label is not None:
        raise ConfigError(f"label={label}: this checkpoint's generator is not class-conditional")
    if takes_condition(G):
        if hasattr(data, "conditions"):
            return data.conditions(n, generator).cpu()
        if hasattr(data, "figure_batch"):
            return data.figure_batch(n).y.cpu()
        raise RuntimeFailure("this generator translates inputs, and its data source offers none "
                             "(no conditions() or figure_batch())")
    return None


@dataclass
class Arithmetic:
    """Each group's samples (k_i, C, H, W), G of each group's mean latent (3, C, H, W), and the
    3 x 3 result (9, C, H, W; G(Y) at index 4) with its latents (9, z_dim)."""

    groups: list[Tensor]
    means: Tensor
    result: Tensor
    z_result: Tensor


@torch.no_grad()
def vector_arithmetic(G: nn.Module, z: Tensor, select: Sequence[Sequence[int]], *, perturb: float,
                      generator: torch.Generator, y: Tensor | None = None) -> Arithmetic:
    """``Y = mean(z[A]) - mean(z[B]) + mean(z[C])`` over the candidates' latents ``z`` (N, z_dim)
    and G's images around it, u uniform in [-perturb, perturb] from ``generator``; ``y``: one
    condition (1,) for every image, or None."""
    if len(select) != 3:
        raise ConfigError(f"select needs three groups (A - B + C), got {len(select)}")
    for group in select:
        bad = [i for i in group if not 0 <= int(i) < len(z)]
        if bad:
            raise ConfigError(f"select: indices {bad} are not in the candidates 0..{len(z) - 1}")
    idx = [torch.as_tensor([int(i) for i in group]) for group in select]
    means = torch.stack([z[i].mean(0) for i in idx])
    target = means[0] - means[1] + means[2]
    noise = (torch.rand(9, z.shape[1], generator=generator) * 2 - 1) * perturb
    noise[4] = 0.0  # the centre is Y itself
    z_result = target + noise

    def draw(codes: Tensor) -> Tensor:
        return generate(G, codes, None if y is None else y.expand(len(codes)))

    return Arithmetic(groups=[draw(z[i]) for i in idx], means=draw(means), result=draw(z_result),
                      z_result=z_result)


# ---------------------------------------------------------------------------------------------
# The command.


def sample(cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """``gan-sample``: rebuild the checkpoint's G and run ``cfg.mode``; returns sample.json's record."""
    from gan_cli.build import generator_from_checkpoint, select_device

    device = select_device(OmegaConf.create({"device": cfg.device}))
    rebuilt = generator_from_checkpoint(cfg.ckpt, device=device, use_ema=cfg.use_ema, split=cfg.split,
                                        data_root=cfg.data_root, download=cfg.data_download)
    G, data = rebuilt.G, rebuilt.data
    z_dim = int(getattr(G, "z_dim", rebuilt.config.model.z_dim))
    run_dir.mkdir(parents=True, exist_ok=True)
    session = Session(cfg, G, data, z_dim, run_dir)
    written = MODES[cfg.mode](session)
    record = {"checkpoint": str(Path(cfg.ckpt).resolve()), "step": rebuilt.step,
              "generator": rebuilt.which, "mode": cfg.mode,
              "options": OmegaConf.to_container(cfg, resolve=True),
              "files": [str(p) for p in written]}
    (run_dir / "sample.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    for path in written:
        print(f"gan-sample: wrote {path}")
    return record


@dataclass
class Session:
    """What every mode needs: the options, G, the data, the latent size, the output folder."""

    cfg: DictConfig
    G: nn.Module
    data: Any
    z_dim: int
    run_dir: Path

    @property
    def images(self) -> bool:
        return len(self.data.info.shape) == 3

    def latents(self, n: int, stream: str) -> Tensor:
        """``n`` latents of the run's ``seed`` for a named use (truncated when asked)."""
        g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, stream))
        return sample_latents(n, self.z_dim, generator=g, truncation=self.cfg.truncation,
                              method=self.cfg.truncation_method)

    def seed_latents(self, seeds: Sequence[int]) -> Tensor:
        return torch.stack([latent_of_seed(s, self.z_dim, self.cfg.truncation,
                                           self.cfg.truncation_method) for s in seeds])

    def conditions(self, n: int, by_row: int | None = None) -> Tensor | None:
        g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, "conditions"))
        return conditions(self.G, self.data, n, label=self.cfg.label, generator=g, by_row=by_row)

    def need_images(self) -> None:
        if not self.images:
            raise ConfigError(f"mode={self.cfg.mode} draws images; this checkpoint's data are "
                              f"{self.data.info.shape}-shaped points: use mode=export or mode=grid")


def _export(s: Session) -> list[Path]:
    n, fmt = int(s.cfg.n), s.cfg.format
    if s.cfg.get("jacobian_threshold") is not None:
        z, y = smooth_export_latents(s)
    else:
        z, y = s.latents(n, "export"), s.conditions(n)
    x = generate(s.G, z, y, s.cfg.batch_size)
    labels = y if s.G.num_classes else None
    inputs = y if y is not None and not s.G.num_classes else None
    if not s.images:
        return [export_points(x, z, labels, s.run_dir, fmt)]
    if fmt == "csv":
        raise ConfigError("format=csv is for 2D points; images: format=png or format=npz")
    return [export_images(x, z, labels, inputs, s.run_dir, fmt)]


def smooth_export_latents(s: Session) -> tuple[Tensor, None]:
    """``n`` latents kept by the Jacobian threshold (``jacobian_threshold``), batch by batch
    (``batch_size``: the median is each batch's), from the run's ``export`` stream."""
    if s.G.num_classes or takes_condition(s.G):
        raise ConfigError("jacobian_threshold applies to an unconditional generator; this one "
                          "takes labels or input images")
    device = _device(s.G)
    g = torch.Generator(device=device).manual_seed(derive_seed(s.cfg.seed, "export"))

    def draw(m: int) -> tuple[Tensor, None]:
        return sample_latents(m, s.z_dim, generator=g, device=device, truncation=s.cfg.truncation,
                              method=s.cfg.truncation_method), None

    n, batch, out = int(s.cfg.n), int(s.cfg.batch_size), []
    for start in range(0, n, batch):
        z, _ = draw_smooth(s.G, draw, min(batch, n - start), s.cfg.jacobian_threshold)
        out.append(z.cpu())
    return torch.cat(out), None


def export_points(x: Tensor, z: Tensor, labels: Tensor | None, out_dir: Path, fmt: str) -> Path:
    """2D points as ``samples.npz`` (points, z[, labels]) or ``samples.csv`` (x0, x1[, label])."""
    if fmt == "png":
        raise ConfigError("format=png is for images; 2D points: format=npz or format=csv")
    points = x.reshape(len(x), -1).numpy().astype(np.float32)
    if fmt == "npz":
        path = out_dir / "samples.npz"
        arrays = {"points": points, "z": z.numpy().astype(np.float32)}
        if labels is not None:
            arrays["labels"] = labels.numpy().astype(np.int64)
        np.savez(path, **arrays)
        return path
    path = out_dir / "samples.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"x{i}" for i in range(points.shape[1])] + (["label"] if labels is not None else []))
        for i, row in enumerate(points):
            writer.writerow([repr(float(v)) for v in row] + ([int(labels[i])] if labels is not None else []))
    return path


def export_images(x: Tensor, z: Tensor, labels: Tensor | None, inputs: Tensor | None, out_dir: Path,
                  fmt: str) -> Path:
    """Images as a folder of PNGs (``samples/000000.png`` ..., ``labels.csv``, ``inputs/``) or one
    ``samples.npz`` (images uint8 (N, H, W, C), z, labels, inputs)."""
    from PIL import Image

    pixels = to_uint8(x).numpy()
    if fmt == "npz":
        path = out_dir / "samples.npz"
        arrays = {"images": pixels, "z": z.numpy().astype(np.float32)}
        if labels is not None:
            arrays["labels"] = labels.numpy().astype(np.int64)
        if inputs is not None:
            arrays["inputs"] = to_uint8(inputs).numpy()
        np.savez(path, **arrays)
        return path
    folder = out_dir / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(len(pixels) - 1)))
    names = [f"{i:0{width}d}.png" for i in range(len(pixels))]
    for name, image in zip(names, pixels, strict=True):
        Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(folder / name)
    if labels is not None:
        with open(folder / "labels.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "label"])
            writer.writerows(zip(names, labels.tolist(), strict=True))
    if inputs is not None:
        (out_dir / "inputs").mkdir(exist_ok=True)
        for name, image in zip(names, to_uint8(inputs).numpy(), strict=True):
            Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(out_dir / "inputs" / name)
    return folder


def _grid(s: Session) -> list[Path]:
    n = int(s.cfg.n)
    per_class = max(1, n // s.G.num_classes) if s.G.num_classes and s.cfg.label is None else None
    if per_class:
        n = per_class * s.G.num_classes
    y = s.conditions(n, by_row=per_class)
    x = generate(s.G, s.latents(n, "grid"), y, s.cfg.batch_size)
    path = s.run_dir / "grid.png"
    if y is not None and not s.G.num_classes:  # inputs beside the outputs
        s.data.save_figure(x, path, inputs=y)
    else:
        s.data.save_figure(x, path, labels=y if per_class else None)
    return [path]


def _interp(s: Session) -> list[Path]:
    s.need_images()
    cfg = s.cfg
    if cfg.seeds is not None:
        rows = [s.seed_latents(cfg.seeds)]
    else:
        ends = s.latents(2 * cfg.rows, "interp")
        rows = [ends[2 * r: 2 * r + 2] for r in range(cfg.rows)]
    paths = torch.stack([walk(r, cfg.steps, cfg.interp) for r in rows])  # (rows, T, z_dim)
    n_rows, frames = paths.shape[:2]
    y = s.conditions(n_rows)  # one condition per row, kept along the walk
    y_all = None if y is None else y.repeat_interleave(frames, dim=0)
    x = generate(s.G, paths.reshape(n_rows * frames, -1), y_all, cfg.batch_size)
    from gan_cli.data.figures import save_image_grid

    strip = save_image_grid(x, s.run_dir / "interp.png", nrow=frames)
    x = x.reshape(n_rows, frames, *x.shape[1:])
    per_frame = [frame_image(x[:, j]) for j in range(frames)]
    written = [strip, write_gif(per_frame, s.run_dir / "interp.gif", cfg.fps)]
    if cfg.mp4:
        mp4 = write_mp4(per_frame, s.run_dir / "interp.mp4", cfg.fps)
        written += [mp4] if mp4 is not None else []
    return written


def frame_image(images: Tensor, min_side: int = MIN_FRAME_SIDE, padding: int = 2) -> np.ndarray:
    """One animation frame: ``images`` (N, C, H, W) in [-1, 1] in a near-square grid, enlarged
    (nearest neighbour) so that its shorter side is at least ``min_side``; uint8 (H', W', 3)."""
    from torchvision.utils import make_grid

    nrow = max(1, math.ceil(math.sqrt(len(images))))
    grid = make_grid(images.float().add(1).mul(0.5).clamp(0, 1), nrow=nrow, padding=padding)
    scale = max(1, math.ceil(min_side / min(grid.shape[1:])))
    if scale > 1:
        grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    pixels = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(pixels)


def _arithmetic(s: Session) -> list[Path]:
    s.need_images()
    cfg = s.cfg
    z = s.latents(cfg.candidates, "arithmetic")
    y = None
    if s.G.num_classes or takes_condition(s.G):
        y = s.conditions(1)  # one class (label, else 0) or one input for every image
    x = generate(s.G, z, None if y is None else y.expand(len(z), *y.shape[1:]), cfg.batch_size)
    written = [draw_candidates(x, s.run_dir / "candidates.png")]
    if cfg.select is None:
        log.info("candidates.png holds %d numbered samples of seed=%d: pick three groups and run "
                 "gan-sample ckpt=%s mode=arithmetic seed=%d select=[[a,b,c],[d,e,f],[g,h,i]] "
                 "(A - B + C)", len(x), cfg.seed, cfg.ckpt, cfg.seed)
        return written
    select = [list(group) for group in cfg.select]
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "perturb"))
    result = vector_arithmetic(s.G, z, select, perturb=cfg.perturb, generator=g, y=y)
    written.append(draw_arithmetic(result, select, s.run_dir / "arithmetic.png"))
    return written


def _image_for_plot(x: Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> what imshow takes: (H, W) grey or (H, W, 3) in [0, 1]."""
    x = x.float().add(1).mul(0.5).clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def draw_candidates(x: Tensor, path: Path) -> Path:
    """The numbered grid to pick arithmetic groups from: image i carries the number i."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncol = max(1, math.ceil(math.sqrt(len(x))))
    nrow = math.ceil(len(x) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(1.1 * ncol, 1.1 * nrow), dpi=100, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(x):
            ax.imshow(_image_for_plot(x[i]), cmap="gray", vmin=0, vmax=1)
            ax.text(0.02, 0.98, str(i), transform=ax.transAxes, va="top", ha="left", fontsize=8,
                    color="black", bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "linewidth": 0})
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.99, 0.05, 0.05)
    fig.savefig(path)
    plt.close(fig)
    return path


def arithmetic_layout(groups: Sequence[int]) -> tuple[int, int]:
    """The figure's grid: rows = the largest group + 2 (a gap, then the means), columns =
    3 groups + 3 signs + 3 result columns."""
    return max(groups) + 2, 9


def draw_arithmetic(result: Arithmetic, select: Sequence[Sequence[int]], path: Path) -> Path:
    """DCGAN's figure 7 layout: columns A, B, C (their samples above, the image of their mean
    latent at the bottom), the signs -, +, =, then the 3 x 3 block around G(Y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = arithmetic_layout([len(g) for g in result.groups])
    widths = [1, 0.35, 1, 0.35, 1, 0.35, 1, 1, 1]
    fig, axes = plt.subplots(rows, cols, figsize=(sum(widths) * 1.2, rows * 1.2), dpi=100,
                             squeeze=False, gridspec_kw={"width_ratios": widths})
    for ax in axes.flat:
        ax.axis("off")
    for k, (name, images) in enumerate(zip("ABC", result.groups, strict=True)):
        col = 2 * k
        for i, image in enumerate(images):
            axes[i, col].imshow(_image_for_plot(image), cmap="gray", vmin=0, vmax=1)
            axes[i, col].set_title(f"{name}{select[k][i]}" if i == 0 else str(select[k][i]), fontsize=7)
        axes[rows - 1, col].imshow(_image_for_plot(result.means[k]), cmap="gray", vmin=0, vmax=1)
        axes[rows - 1, col].set_title(f"mean {name}", fontsize=7)
        axes[rows - 1, col + 1].text(0.5, 0.5, "-+="[k], ha="center", va="center", fontsize=18)
    top = rows - 3
    for j in range(9):
        ax = axes[top + j // 3, 6 + j % 3]
        ax.imshow(_image_for_plot(result.result[j]), cmap="gray", vmin=0, vmax=1)
        if j == 4:
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color("tab:red")
                spine.set_linewidth(2)
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
    axes[top, 7].set_title("Y = A - B + C (centre)", fontsize=7)
    fig.subplots_adjust(0.01, 0.01, 0.99, 0.93, 0.05, 0.3)
    fig.savefig(path)
    plt.close(fig)
    return path


def _classes(s: Session) -> list[Path]:
    s.need_images()
    C = s.G.num_classes
    if not C:
        raise ConfigError("mode=classes needs a class-conditional generator; this checkpoint's is "
                          "unconditional: use mode=grid")
    cols = int(s.cfg.columns)
    z = s.latents(cols, "classes").repeat(C, 1)  # the same z in every row's column j
    y = torch.arange(C).repeat_interleave(cols)
    from gan_cli.data.figures import save_image_grid

    x = generate(s.G, z, y, s.cfg.batch_size)
    return [save_image_grid(x, s.run_dir / "classes.png", nrow=cols)]


def _style(s: Session, figure: str) -> list[Path]:
    s.need_images()
    if not (hasattr(s.G, "mapping") and hasattr(s.G, "synthesize")):
        raise ConfigError(f"mode={s.cfg.mode} needs a style-based generator (with mapping and "
                          f"synthesize: model=stylegan or stylegan2); this checkpoint's is "
                          f"{type(s.G).__module__}.{type(s.G).__name__}")
    from gan_cli.data.figures import save_image_grid

    fig = style_figure(s.G, figure, s.latents(s.cfg.rows, "style_a").to(_device(s.G)),
                       s.latents(s.cfg.columns, "style_b").to(_device(s.G)), list(s.cfg.psis))
    name = {"mixing": "style_mixing.png", "psi": "psi_sweep.png"}[figure]
    return [save_image_grid(fig.images, s.run_dir / name, nrow=fig.nrow)]


def style_figure(G: nn.Module, figure: str, z_a: Tensor, z_b: Tensor, psis: Sequence[float]):
    """StyleGAN's figure 3 (``mixing``: rows from z_a, columns from z_b) or figure 8 (``psi``: one
    row per z_a, one column per psi), from gan_cli/style_figures.py."""
    from gan_cli.style_figures import psi_sweep, style_mixing_figure

    if figure == "mixing":
        return style_mixing_figure(G, z_a, z_b)
    return psi_sweep(G, z_a, psis)


def _device(G: nn.Module) -> torch.device:
    return next(iter(G.parameters()), torch.empty(0)).device


MODES = {
    "export": _export,
    "grid": _grid,
    "interp": _interp,
    "arithmetic": _arithmetic,
    "classes": _classes,
    "mixing": lambda s: _style(s, "mixing"),
    "psi": lambda s: _style(s, "psi"),
}
