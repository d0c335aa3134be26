"""What a run writes at its intervals, on rank 0: sample figures (with ``curves.png``, the 2D
view's D and G, the last step's ``training.gif``) and checkpoints; G_ema's standing BatchNorm
statistics recomputed at most once per step, before whichever needs them first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.animation import gif_of_pngs
from gan_cli.checkpoint import save_checkpoint
from gan_cli.curves import save_curves
from gan_cli.distributed import gather_objects, is_main
from gan_cli.errors import RuntimeFailure
from gan_cli.latents import fixed_latents
from gan_cli.models import takes_condition, truncates_in_w
from gan_cli.report.pages import write_training_page
from gan_cli.seeding import derive_seed, rng_state
from gan_cli.training.state import TrainState

log = logging.getLogger("gan_cli")


class StandingStats:
    """G_ema's own BatchNorm statistics (BigGAN's standing stats) over ``ema.bn_batches`` batches
    of latents derived from ``seed`` and the step, once per step that needs them."""

    def __init__(self, state: TrainState, ema_cfg: Any, z_dim: int, batch_size: int, seed: int,
                 device: torch.device) -> None:
        self.state = state
        self.batches = ema_cfg.bn_batches if ema_cfg is not None else 0
        self.z_dim, self.batch_size, self.seed, self.device = z_dim, batch_size, seed, device
        self.done_at = -1  # the step they were last recomputed at

    def __call__(self) -> None:
        pair, step = self.state.pair, self.state.step
        if pair.ema is None or not self.batches or self.done_at == step:
            return
        if takes_condition(pair.G) and not pair.G.num_classes:
            return  # an image-conditioned G needs inputs, not latents: G's statistics are kept
        pair.ema.recompute_batchnorm(self.z_dim, pair.G.num_classes, self.batches, self.batch_size,
                                     derive_seed(self.seed, f"standing_{step}"), self.device)
        self.done_at = step


class SampleFigures:
    """``samples_dir/step_<step>.png``: ``count`` samples of ``sampler()`` from fixed latents (one
    row per class for a conditional G). A growing G's images are upsampled (nearest) to the
    data's side; ``truncation`` is psi in W where G ``truncates_in_w``, else a bound on z. Noise
    G draws itself comes from the global generator seeded for figures and then restored, so a
    figure leaves the training's stream untouched."""

    def __init__(self, state: TrainState, sampler: Callable[[], nn.Module], samples_dir: Path, *,
                 count: int, z_dim: int, seed: int, device: torch.device,
                 truncation: float | None, method: str, autocast: Any, standing: StandingStats,
                 runlog: Any) -> None:
        self.state = state
        self.sampler = sampler
        self.samples_dir = samples_dir
        G = sampler()
        self.psi = truncation if truncates_in_w(G) else None
        self.z, self.y = fixed_latents(getattr(G, "z_dim", z_dim), G.num_classes, count, seed,
                                       device, None if self.psi is not None else truncation, method)
        self.figure_kwargs: dict[str, Any] = {}
        if takes_condition(G) and not G.num_classes:  # an image-conditioned G: fixed inputs
            batch = state.data.figure_batch(len(self.z))
            self.y = batch.y.to(device)
            self.figure_kwargs = {"inputs": batch.y, "targets": batch.x}
        self.autocast = autocast
        self.standing = standing
        self.runlog = runlog
        self.noise_seed = derive_seed(seed, "figure_noise")
        self.rng_devices = [device] if device.type == "cuda" else []

    def __call__(self) -> Path:
        """Draw and write this step's figure (and curves.png); a file that cannot be written (a
        full disk) is a RuntimeFailure that names it and the last good checkpoint."""
        try:
            return self._draw()
        except OSError as e:
            where = f" {e.filename}" if e.filename else ""
            raise RuntimeFailure(f"cannot write the sample figure of step {self.state.step}{where} "
                                 f"({e.strerror or e}); {self.state.nonfinite.kept()}") from None

    def _draw(self) -> Path:
        self.standing()
        G = self.sampler()
        was_training = G.training
        G.eval()
        with torch.no_grad(), self.autocast(), torch.random.fork_rng(devices=self.rng_devices):
            torch.manual_seed(self.noise_seed)
            fake = (G(self.z, self.y) if self.psi is None else G(self.z, self.y, psi=self.psi)).float()
        G.train(was_training)
        side = tuple(self.state.data.info.shape[-2:])
        if hasattr(G, "set_phase") and fake.dim() == 4 and tuple(fake.shape[-2:]) != side:
            fake = F.interpolate(fake, size=side, mode="nearest")  # a growing G in an early phase
        path = self.samples_dir / f"step_{self.state.step:08d}.png"
        data = self.state.data
        if self.figure_kwargs:
            data.save_figure(fake, path, **self.figure_kwargs)
        elif getattr(data, "figure_networks", False):  # the 2D training view draws D and G too
            data.save_figure(fake, path, labels=self.y, D=self.state.pair.D, G=G,
                             z_dim=getattr(G, "z_dim", self.z.shape[1]),
                             d_probability=getattr(self.state.pair.loss, "d_probability", False),
                             title=self.runlog.caption(self.state.step))
        else:
            data.save_figure(fake, path, labels=self.y)
        self.runlog.image("samples", path, self.state.step)
        run_dir = self.samples_dir.parent
        save_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
        if tuple(data.info.shape) == (2,):  # 2D data: the training view as a page (gan_cli/report)
            write_training_page(run_dir)
        final = self.state.step >= int(self.state.config.get("train", {}).get("steps", 0) or 0)
        if final and getattr(data, "animate_figures", False):
            gif = gif_of_pngs(sorted(self.samples_dir.glob("step_*.png")),
                              self.samples_dir / "training.gif")
            if gif is not None:
                self.runlog.video("training", gif, self.state.step)
        return path


class Checkpoints:
    """Checkpoints of the run, never of non-finite weights, written atomically by rank 0; ``keep``
    numbered ones besides last.pt."""

    def __init__(self, state: TrainState, ckpt_dir: Path, keep: int, standing: StandingStats,
                 resumed_from: Path | None = None) -> None:
        self.state = state
        self.ckpt_dir = ckpt_dir
        self.keep = keep
        self.standing = standing
        if resumed_from is not None:
            state.nonfinite.last_good = (resumed_from, state.step)

    @property
    def last_step(self) -> int:
        """The step of the last checkpoint written or resumed from (0 if none)."""
        return self.state.nonfinite.last_good[1]

    def write(self) -> Path | None:
        """Called by every rank (the ranks' RNG states are gathered); rank 0 writes."""
        state = self.state
        rng_ranks = gather_objects(rng_state())
        if not is_main():
            return None
        modules = {}
        for k, pair in enumerate(state.pairs):
            suffix = f"[{k}]" if len(state.pairs) > 1 else ""
            modules[f"G{suffix}"], modules[f"D{suffix}"] = pair.G, pair.D
        state.nonfinite.check(state.step, modules)  # never overwrite a good checkpoint with NaN
        self.standing()
        path = save_checkpoint(state.state_dict(rng_ranks), self.ckpt_dir, state.step, self.keep,
                               kept=state.nonfinite.kept())
        state.nonfinite.last_good = (path, state.step)
        return path
