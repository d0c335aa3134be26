"""Per-mode report of a checkpoint trained on a 2D mixture (ring8, grid25): where G's samples of
each mode sit, and whether D can see it.

For each mode, over ``--n`` samples of G (G_ema where the run keeps one; latents from the run's
evaluation stream): of the samples whose nearest mode it is, the share within 3 std (PacGAN's high
quality); of those that also lie within 6 std, the count and the offset of their mean from the
centre in units of the data's std; then D's view (the checkpoint's D, built as training builds
it): its *peak*, the score at the centre minus the mean score on the circle of radius 3 std around
it (> 0: D marks the mode), and the norm of D's input gradient at the samples' mean (what G's
update gets there). A mode whose samples sit off-centre while D shows no peak and little gradient is one D
cannot resolve: grid25's corner modes before D saw x / 2.83 (RESULTS.md). Usage::

    python scripts/toy_mode_report.py --ckpt <run>/checkpoints/last.pt [--worst 8]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


@dataclass
class ModeRow:
    """One mode's line of the report (offsets and radii in units of the data's std)."""

    centre: tuple[float, ...]
    count: int  # samples within 6 std whose nearest mode this is
    high_quality: float  # of those nearest to this mode: the share within 3 std
    offset_std: tuple[float, ...]  # mean of the within-6-std samples minus the centre
    d_peak: float  # D(centre) - mean of D on the 3-std circle
    d_grad_norm: float  # ||grad_x D|| at the samples' mean (NaN without samples)


def mode_report(points: torch.Tensor, modes: torch.Tensor, std: float,
                D: Callable[[torch.Tensor], torch.Tensor], circle: int = 64) -> list[ModeRow]:
    """The rows of the report, one per mode, for samples ``points`` (N, 2) of a mixture with
    centres ``modes`` (M, 2) and per-mode ``std``; ``D`` maps (K, 2) points to (K,) scores."""
    points = points.detach().reshape(len(points), -1).float()
    modes = modes.detach().reshape(len(modes), -1).float()
    dist, nearest = torch.cdist(points, modes).min(1)
    angles = torch.arange(circle) * (2 * math.pi / circle)
    ring = 3 * std * torch.stack([angles.cos(), angles.sin()], dim=1)
    rows = []
    for k, centre in enumerate(modes):
        mine = nearest == k
        near = mine & (dist <= 6 * std)
        hq = float((dist[mine] <= 3 * std).float().mean()) if mine.any() else float("nan")
        with torch.no_grad():
            peak = float(D(centre[None]).reshape(-1)[0] - D(centre + ring).reshape(-1).mean())
        if near.any():
            mean = points[near].mean(0)
            at = mean[None].clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(D(at).sum(), at)
            offset, grad_norm = ((mean - centre) / std).tolist(), float(grad.norm())
        else:
            offset, grad_norm = [float("nan")] * len(centre), float("nan")
        rows.append(ModeRow(tuple(centre.tolist()), int(near.sum()), hq, tuple(offset), peak,
                            grad_norm))
    return rows


def format_rows(rows: list[ModeRow]) -> str:
    lines = [f"{'mode':>14} {'n':>6} {'HQ %':>6} {'offset (std)':>15} {'D peak':>8} {'|grad D|':>9}"]
    for r in rows:
        centre = "(" + ", ".join(f"{c:g}" for c in r.centre) + ")"
        offset = ", ".join(f"{o:+.1f}" for o in r.offset_std)
        lines.append(f"{centre:>14} {r.count:>6} {100 * r.high_quality:>6.1f} {offset:>15} "
                     f"{r.d_peak:>8.3f} {r.d_grad_norm:>9.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, required=True, help="a checkpoint trained on ring8 or grid25")
    p.add_argument("--n", type=int, default=10_000, help="samples of G")
    p.add_argument("--worst", type=int, default=0,
                   help="print only the modes with the lowest high-quality share (0: all)")
    p.add_argument("--seed", type=int, default=None, help="latent stream; default: the run's seed")
    args = p.parse_args(argv)

    from gan_cli.build import generator_from_checkpoint
    from gan_cli.checkpoint import load_checkpoint
    from gan_cli.evaluate import checkpoint_discriminator
    from gan_cli.latents import sample_latents
    from gan_cli.seeding import derive_seed

    device = torch.device("cpu")
    rebuilt = generator_from_checkpoint(args.ckpt, device=device)
    data = rebuilt.data
    if getattr(data, "modes", None) is None:
        p.error(f"{args.ckpt} was not trained on a mixture with modes (ring8, grid25)")
    state = load_checkpoint(args.ckpt)
    if "stages" in state:
        p.error(f"{args.ckpt} holds several stages; this report reads a single discriminator")
    D = checkpoint_discriminator(state, rebuilt.config, data.info, device, args.ckpt).eval()
    seed = int(rebuilt.config.seed) if args.seed is None else args.seed
    g = torch.Generator().manual_seed(derive_seed(seed, "eval_z"))
    with torch.no_grad():
        x = rebuilt.G(sample_latents(args.n, rebuilt.G.z_dim, generator=g))
    rows = mode_report(x, data.modes, data.mode_std, D)
    if args.worst:
        rows = sorted(rows, key=lambda r: r.high_quality)[: args.worst]
    print(f"{args.ckpt}: step {rebuilt.step}, {rebuilt.which}, {args.n:,} samples")
    print(format_rows(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
