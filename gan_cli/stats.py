"""Statistics: collected from the step as tensors, reduced at log time, written by rank 0.

Deep code never calls W&B (the loggers are in gan_cli/loggers.py). The step returns 0-dim
tensors; :class:`Collector` sums them on the device (no host synchronisation per step) and
:meth:`Collector.flush` turns the interval's means into floats with one transfer (averaged over
ranks under DDP). :class:`RunLog` then writes them to ``metrics.jsonl``, the console and the
configured logger (W&B or none).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from gan_cli.distributed import all_reduce_mean
from gan_cli.errors import RuntimeFailure
from gan_cli.sessions import SessionClock

log = logging.getLogger("gan_cli")


class Collector:
    """Running sums of named 0-dim tensors over one logging interval."""

    def __init__(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            value = value.detach().float()
            self._sums[key] = self._sums[key] + value if key in self._sums else value
            self._counts[key] = self._counts.get(key, 0) + 1

    def flush(self) -> dict[str, float]:
        """Means since the last flush, as floats (one device-to-host copy), then reset."""
        if not self._sums:
            return {}
        keys = sorted(self._sums)
        means = torch.stack([self._sums[k] / self._counts[k] for k in keys])
        values = all_reduce_mean(means).tolist()
        self._sums.clear()
        self._counts.clear()
        return dict(zip(keys, values, strict=True))


# ---------------------------------------------------------------------------------------------


class RunLog:
    """metrics.jsonl + console progress + the configured logger, written by rank 0 only.

    Args:
        run_dir: the run directory (metrics.jsonl goes there).
        logger: a logger of gan_cli/loggers.py (W&B or none).
        total_steps: the run's length, for the progress bar and ETA.
        enabled: False on ranks other than 0 (everything becomes a no-op).
        shown: keys the console line shows besides the losses and speed (the metrics' own,
            from the metric registry).
    """

    def __init__(self, run_dir: Path, logger: Any, *, total_steps: int, start_step: int,
                 enabled: bool = True, shown: tuple[str, ...] = ()):
        self.logger = logger
        self.enabled = enabled
        self.total_steps = total_steps
        self.path = run_dir / "metrics.jsonl"
        self._file = open(self.path, "a", encoding="utf-8") if enabled else None
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total_steps, initial=start_step, unit="step",
                             dynamic_ncols=True, leave=True)
        self._shown = (*_SHOWN, *shown)
        self._t0 = time.perf_counter()
        self._start_step = start_step
        self._clock = SessionClock(run_dir, start_step) if enabled else None  # sessions.jsonl
        self.last: dict[str, Any] = {}  # the last record written

    def write(self, record: dict[str, Any]) -> None:
        """One JSON line (must hold ``step``), the console line or bar, and the logger."""
        if not self.enabled:
            return
        step = record["step"]
        self._clock.last_step = step
        self.last = record
        try:
            self._file.write(json.dumps(record, allow_nan=True) + "\n")
            self._file.flush()
        except OSError as e:  # a full disk, a quota
            raise RuntimeFailure(f"cannot write {self.path} at step {step} ({e.strerror or e})") from None
        self.logger.log({k: v for k, v in record.items() if k != "step"}, step=step)
        elapsed = time.perf_counter() - self._t0
        done = step - self._start_step
        eta_s = elapsed / done * (self.total_steps - step) if done > 0 else math.nan
        shown = {k: record[k] for k in self._shown if k in record}
        if self._bar is not None:
            # the bar: the losses and the speed, short enough never to be cut; the metrics of a
            # metrics step on a line of their own above it (nothing cut)
            self._bar.n = step
            self._bar.set_postfix({k: f"{record[k]:.4g}" for k in _SHOWN if k in record}, refresh=True)
            metrics = {k: v for k, v in shown.items() if k not in _SHOWN}
            if metrics:
                self._bar.write(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items()),
                                file=self._bar.fp)
        else:
            text = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
            log.info("step %d/%d %s eta %s", step, self.total_steps, text, _duration(eta_s))

    def caption(self, step: int) -> str:
        """``step N`` and what the console shows of that step's record (the losses, the metrics;
        not the speed): a figure's title."""
        if self.last.get("step") != step:
            return f"step {step}"
        shown = [f"{k}={self.last[k]:.3g}" for k in self._shown if k in self.last and k not in SPEED_KEYS]
        return f"step {step}: " + " ".join(shown)

    def image(self, key: str, path: Path, step: int) -> None:
        if self.enabled:
            self.logger.log_image(key, path, step)

    def video(self, key: str, path: Path, step: int) -> None:
        """An animation file (GIF) to the logger (a W&B video)."""
        if self.enabled:
            self.logger.log_video(key, path, step)

    def close(self, exit_code: int = 0) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        self._clock.close(exit_code)
        try:
            self._file.close()
        except OSError as e:  # the last records could not be flushed (a full disk)
            if exit_code == 0:  # otherwise the run's own failure is the one to report
                self.logger.finish(1)
                raise RuntimeFailure(f"cannot write {self.path} ({e.strerror or e})") from None
        self.logger.finish(exit_code)


# what the console line shows of a record (metrics.jsonl and W&B get everything), besides the
# metrics' keys marked ``shown`` in the metric registry
_SHOWN = ("loss_d", "loss_g", "imgs_per_s")
SPEED_KEYS = ("imgs_per_s",)


def run_summary(final: dict[str, Any], run_dir: Path, total_steps: int) -> str:
    """The end-of-run summary: every value of ``final`` (the last record, with whatever else the
    run adds to it), the best metrics with their steps (``best/<key>`` and ``best/<key>_step``),
    where the figures, checkpoint and logger files are, and the commands to go on from here."""
    run_dir = Path(run_dir)
    step = final.get("step", "?")
    best_steps = {k for k in final if k.startswith("best/") and k.endswith("_step")}
    values = {k: v for k, v in final.items() if k != "step" and not k.startswith("best/")}
    lines = [f"done: {step} steps of train.steps={total_steps}; the run is in {run_dir}",
             "  final:      " + (" ".join(f"{k}={_short(v)}" for k, v in values.items()) or "-")]
    best = [f"{k[5:]}={_short(v)} (step {final[f'{k}_step']})" for k, v in final.items()
            if k.startswith("best/") and k not in best_steps and f"{k}_step" in final]
    if best:
        lines.append("  best:       " + ", ".join(best))
    figures = [str(p) for p in (run_dir / "samples", run_dir / "curves.png", run_dir / "training.html")
               if p.exists()]
    lines.append("  figures:    " + (", ".join(figures) or "-"))
    ckpt = run_dir / "checkpoints" / "last.pt"
    lines.append(f"  checkpoint: {ckpt}")
    wandb_runs = sorted((run_dir / "wandb").glob("*run-*"))
    if wandb_runs:
        upload = f" (upload: wandb sync {wandb_runs[-1]})" if "offline" in wandb_runs[-1].name else ""
        lines.append(f"  W&B run:    {wandb_runs[-1]}{upload}")
    events = sorted(run_dir.glob("*/events.out.tfevents.*"))  # logger.subdir: any folder name
    if events:
        lines.append(f"  TensorBoard: tensorboard --logdir {events[-1].parent}")
    lines += [f"  resume:     gan-train resume={run_dir} train.steps=<more than {step}>",
              f"  evaluate:   gan-eval ckpt={ckpt}",
              f"  sample:     gan-sample ckpt={ckpt}"]
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
