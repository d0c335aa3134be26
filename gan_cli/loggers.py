"""Loggers: the ``logger`` config group's targets (W&B, none). They receive records and image
paths from :class:`gan_cli.stats.RunLog`; a failing W&B never stops training."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("gan_cli")


class NullLogger:
    """logger=none: nothing beyond the run directory's own files."""

    def start(self, *, run_dir: Path, config: dict, name: str, group: str | None) -> None:
        pass

    def log(self, metrics: dict[str, float], step: int) -> None:
        pass

    def log_image(self, key: str, path: Path, step: int) -> None:
        pass

    def log_video(self, key: str, path: Path, step: int) -> None:
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

    def log_video(self, key: str, path: Path, step: int) -> None:
        if self.run is not None:
            try:
                # A GIF file path: W&B stores the file as it is (no moviepy needed for a path).
                self.run.log({key: self._wandb.Video(str(path), format=Path(path).suffix[1:])},
                             step=step)
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
