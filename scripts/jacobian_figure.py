"""What the Jacobian threshold keeps and drops, for a checkpoint trained on a 2D mixture.

Draws ``--n`` latents from the same stream gan-train's metrics use (the run's ``eval_z``), in
batches of ``--batch-size`` as the sampler does, and splits them by the rule of
``gan_cli.latents.smooth_latents``: kept where ``||dG/dz||_F <= threshold x the batch's median``.
The figure shows the real modes (their 3-std circles: the high-quality zone of PacGAN's protocol),
the kept samples and the dropped ones; its title gives the high-quality share of each, computed by
the ``modes`` metric's own function. Usage::

    python scripts/jacobian_figure.py --ckpt <run>/checkpoints/last.pt --out jacobian.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def split_samples(G, z_dim: int, n: int, batch_size: int, threshold: float, seed: int):
    """(points, kept mask): ``n`` samples of G from the run's evaluation stream, each batch's
    latents kept or dropped by the Jacobian threshold."""
    from gan_cli.latents import sample_latents, smooth_latents
    from gan_cli.seeding import derive_seed

    g = torch.Generator().manual_seed(derive_seed(seed, "eval_z"))
    points, kept = [], []
    for start in range(0, n, batch_size):
        z = sample_latents(min(batch_size, n - start), z_dim, generator=g)
        mask = torch.zeros(len(z), dtype=torch.bool)
        mask[smooth_latents(G, z, None, threshold)] = True
        kept.append(mask)
        with torch.no_grad():
            points.append(G(z).reshape(len(z), -1))
    return torch.cat(points), torch.cat(kept)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, required=True, help="a checkpoint trained on ring8 or grid25")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--threshold", type=float, default=10.0, help="multiple of the batch median")
    p.add_argument("--n", type=int, default=2500, help="samples (PacGAN's protocol: 2,500)")
    p.add_argument("--batch-size", type=int, default=250, help="the sampler's batch (its median)")
    p.add_argument("--seed", type=int, default=None, help="latent stream; default: the run's seed")
    args = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_cli.build import generator_from_checkpoint
    from gan_cli.metrics.toy import mode_metrics

    rebuilt = generator_from_checkpoint(args.ckpt, device=torch.device("cpu"))
    G, data = rebuilt.G.eval(), rebuilt.data
    if getattr(data, "modes", None) is None:
        p.error(f"{args.ckpt} was not trained on a mixture with modes (ring8, grid25)")
    seed = int(rebuilt.config.seed) if args.seed is None else args.seed
    x, kept = split_samples(G, G.z_dim, args.n, args.batch_size, args.threshold, seed)
    plain = mode_metrics(x, data.modes, data.mode_std)
    smooth = mode_metrics(x[kept], data.modes, data.mode_std)

    fig, ax = plt.subplots(figsize=(5.6, 6.0))
    for centre in data.modes.tolist():
        ax.add_patch(plt.Circle(centre, 3 * data.mode_std, fill=False, color="tab:orange", lw=0.8))
    ax.scatter(*x[~kept].T, s=6, marker="x", lw=0.6, color="tab:red",
               label=f"dropped ({1 - kept.float().mean():.0%})")
    ax.scatter(*x[kept].T, s=2, color="tab:blue", label=f"kept ({kept.float().mean():.0%})")
    ax.plot([], [], color="tab:orange", lw=0.8, label="3 std of each mode")
    ax.set_aspect("equal")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=3, fontsize=8, frameon=False)
    ax.set_title(f"step {rebuilt.step}, {args.n:,} samples: high quality "
                 f"{100 * plain['high_quality_fraction']:.1f}% of all, "
                 f"{100 * smooth['high_quality_fraction']:.1f}% of the kept\n"
                 f"modes {plain['modes_captured']:.0f} / {smooth['modes_captured']:.0f} of "
                 f"{len(data.modes)}; ||dG/dz|| <= {args.threshold:g} x batch median", fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {plain} -> kept {smooth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
