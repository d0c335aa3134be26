"""Statistics: collected from the step as tensors, reduced at log time, written by rank 0.

Deep code never calls W&B. The step returns 0-dim tensors; :class:`Collector` sums them on the
device (no host synchronisation per step) and :meth:`Collector.flush` turns the interval's means
into floats with one transfer (averaged over ranks under DDP). :class:`RunLog` then writes them
to ``metrics.jsonl``, the console and the configured logger (W&B or none).
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
        return dict(zip(keys, values))


# ---------------------------------------------------------------------------------------------
# Loggers: the `logger` config group's targets.


class NullLogger:
    """logger=none: nothing beyond the run directory's own files."""

    def start(self, *, run_dir: Path, config: dict, name: str, group: str | None) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_image(self, key: str, path: Path, step: int) -> None:
        pass

    def finish(self, exit_code: int = 0) -> None:
        pass


class WandbLogger(NullLogger):
    """Weights & Biases, offline by default (no account, no network).

    The offline run lands in ``<run_dir>/wandb/offline-run-*``; ``wandb sync`` uploads it later.
    If W&B cannot start, the run goes on with local logging and says so.
    """

    def __init__(self, *, project: str = "gan-cli", mode: str = "offline", entity: str | None = None,
                 group: str | None = None, tags: list[str] | tuple = (),
                 init_timeout_s: float = 30.0):
        self.project, self.mode, self.entity = project, mode, entity
        self.group, self.tags, self.init_timeout_s = group, list(tags), init_timeout_s
        self.run: Any = None

    def start(self, *, run_dir: Path, config: dict, name: str, group: str | None) -> None:
        try:
            import wandb

            self._wandb = wandb
            settings = wandb.Settings(init_timeout=self.init_timeout_s, console="off",
                                      silent=True, x_disable_stats=True)
            self.run = wandb.init(project=self.project, entity=self.entity, mode=self.mode,
                                  dir=str(run_dir), config=config, name=name,
                                  group=self.group or group, tags=self.tags,
                                  settings=settings, reinit="finish_previous")
        except Exception as e:  # noqa: BLE001 - any W&B failure must not stop training
            log.warning("W&B could not start (%s: %s); logging locally only "
                        "(metrics.jsonl, samples/)", type(e).__name__, str(e).splitlines()[0])
            self.run = None

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.run is not None:
            try:
                self.run.log(metrics, step=step)
            except Exception as e:  # noqa: BLE001 - W&B failing mid-run must not stop training
                self._give_up(e)

    def log_image(self, key: str, path: Path, step: int) -> None:
        if self.run is not None:
            try:
                # A PNG file path: W&B reads the uint8 pixels (float tensors come out black).
                self.run.log({key: self._wandb.Image(str(path))}, step=step)
            except Exception as e:  # noqa: BLE001
                self._give_up(e)

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            try:
                run.finish(exit_code=exit_code)
            except Exception as e:  # noqa: BLE001
                log.warning("W&B could not finish the run (%s: %s)", type(e).__name__,
                            str(e).splitlines()[0] if str(e) else "")

    def _give_up(self, e: Exception) -> None:
        log.warning("W&B failed (%s: %s); logging locally only from now on (metrics.jsonl, "
                    "samples/)", type(e).__name__, str(e).splitlines()[0] if str(e) else "")
        run, self.run = self.run, None
        try:
            run.finish(exit_code=1, quiet=True)
        except Exception:  # noqa: BLE001
            pass


# ---------------------------------------------------------------------------------------------


class RunLog:
    """metrics.jsonl + console progress + the configured logger, written by rank 0 only.

    Args:
        run_dir: the run directory (metrics.jsonl goes there).
        logger: a NullLogger or WandbLogger.
        total_steps: the run's length, for the progress bar and ETA.
        enabled: False on ranks other than 0 (everything becomes a no-op).
    """

    def __init__(self, run_dir: Path, logger: NullLogger, *, total_steps: int, start_step: int,
                 enabled: bool = True):
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
        self._t0 = time.perf_counter()
        self._start_step = start_step

    def write(self, record: dict[str, Any]) -> None:
        """One JSON line (must hold ``step``), the console line or bar, and the logger."""
        if not self.enabled:
            return
        step = record["step"]
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        self._file.flush()
        self.logger.log({k: v for k, v in record.items() if k != "step"}, step=step)
        elapsed = time.perf_counter() - self._t0
        done = step - self._start_step
        eta_s = elapsed / done * (self.total_steps - step) if done > 0 else math.nan
        shown = {k: record[k] for k in _SHOWN if k in record}
        if self._bar is not None:
            self._bar.n = step
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=True)
        else:
            text = " ".join(f"{k}={v:.4g}" for k, v in shown.items())
            log.info("step %d/%d %s eta %s", step, self.total_steps, text, _duration(eta_s))

    def image(self, key: str, path: Path, step: int) -> None:
        if self.enabled:
            self.logger.log_image(key, path, step)

    def close(self, exit_code: int = 0) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        self._file.close()
        self.logger.finish(exit_code)


# what the console line shows of a record (metrics.jsonl and W&B get everything)
_SHOWN = ("loss_d", "loss_g", "imgs_per_s", "modes_captured", "reverse_kl", "fd_fashion",
          "cis_fashion_mean", "fid", "is_mean", "kid_mean")


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"
