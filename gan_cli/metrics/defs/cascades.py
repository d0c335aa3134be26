"""The multi-stage generators' figures, drawn by gan-eval (each cascade names its own in
``default_metrics``) from a stream seeded by ``figure_seed`` into ``figure_dir``.

* ``lapgan_levels`` (Denton et al. 2015, fig. 1): ``lapgan_levels.png``, a row per sample (per class
  when conditional): the coarse image, then per level the high-pass and the image it makes.
* ``singan_figures`` (Shaham et al. 2019, figs. 1, 5): ``singan_samples.png``, the image and its
  reconstruction through z*, samples, samples at other ``aspect_ratios`` ((height, width) factors);
  reports ``singan_rec_rmse`` = sqrt(mean((x_rec - x)^2)) in [-1, 1] pixel units.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gan_cli.errors import ConfigError
from gan_cli.latents import sample_latents
from gan_cli.metrics.context import EvalContext, Key, Metric
from gan_cli.metrics.defs.sifid import training_image
from gan_cli.seeding import derive_seed


def _stream(ctx: EvalContext, opts: dict, name: str) -> tuple[torch.Generator, torch.device]:
    device = next(ctx.generator.parameters()).device
    seed = derive_seed(int(opts.get("figure_seed", 0)), name)
    return torch.Generator(device=device).manual_seed(seed), device


@torch.no_grad()
def lapgan_levels(ctx: EvalContext, opts: dict) -> dict[str, float]:
    from gan_cli.data.figures import save_sampling_figure
    from gan_cli.models.lapgan import LAPGANCascade

    G = ctx.generator
    if not isinstance(G, LAPGANCascade):
        raise ConfigError(f"lapgan_levels draws a LAPGAN cascade; this generator is a {type(G).__name__}")
    g, device = _stream(ctx, opts, "lapgan_levels")
    y = torch.arange(G.num_classes, device=device) if G.num_classes else None
    n = G.num_classes or int(opts.get("num_rows", 8))
    z = sample_latents(n, G.z_dim, generator=g, device=device)
    path = Path(opts.get("figure_dir", ".")) / "lapgan_levels.png"
    save_sampling_figure(G.levels(z, y), path)
    ctx.record("lapgan_levels", figure=str(path), num_samples=n, levels=G.num_levels)
    return {}


@torch.no_grad()
def singan_figures(ctx: EvalContext, opts: dict) -> dict[str, float]:
    from gan_cli.data.figures import save_image_rows
    from gan_cli.models.singan import SinGANCascade

    G = ctx.generator
    if not isinstance(G, SinGANCascade):
        raise ConfigError(f"singan_figures draws a SinGAN cascade; this generator is a {type(G).__name__}")
    training_image(ctx.data)  # a single_image source
    g, device = _stream(ctx, opts, "singan_figures")
    real = ctx.data.image(G.num_scales - 1).to(device)  # the image at the cascade's finest scale
    rec = G.reconstruct(G.num_scales - 1)
    rows = [torch.cat([real, rec]), G.sample(int(opts.get("num_samples", 4)), generator=g)]
    ratios = [tuple(r) for r in opts.get("aspect_ratios", [(1.0, 2.0), (1.5, 1.0)])]
    for scale_h, scale_w in ratios:
        count = max(1, round(4 / max(scale_w, 1.0)))  # about as wide as the training-size row
        rows.append(G.sample(count, scale_h, scale_w, generator=g))
    path = save_image_rows(rows, Path(opts.get("figure_dir", ".")) / "singan_samples.png")
    ctx.record("singan_figures", figure=str(path), aspect_ratios=[list(r) for r in ratios],
               image=f"{ctx.data.name} at {real.shape[-2]}x{real.shape[-1]}")
    return {"singan_rec_rmse": float((rec - real).square().mean().sqrt())}


DEFINES = (
    Metric("lapgan_levels", lapgan_levels, (), figure=True),
    Metric("singan_figures", singan_figures, (Key("singan_rec_rmse", lower_is_better=True),),
           figure=True),
)
