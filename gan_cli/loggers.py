"""Loggers: the ``logger`` config group's targets (W&B, TensorBoard, both, none). They receive
records and image paths from :class:`gan_cli.stats.RunLog`; a failing logger never stops training."""

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


class TensorBoardLogger(NullLogger):
    """TensorBoard event files in ``<run_dir>/<subdir>`` (torch.utils.tensorboard), the same keys
    as W&B: scalars and the sample figures (on 2D data, the training view's frames) as images.

    Read them with ``tensorboard --logdir <run_dir>``."""

    def __init__(self, *, subdir: str = "tensorboard", flush_secs: float = 30.0):
        self.subdir, self.flush_secs = subdir, flush_secs
        self.writer: Any = None

    def start(self, *, run_dir: Path, config: dict, name: str, group: str | None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_dir) / self.subdir),
                                        flush_secs=int(self.flush_secs))
        except Exception as e:  # noqa: BLE001 - a missing tensorboard must not stop training
            log.warning("TensorBoard could not start (%s: %s); logging locally only",
                        type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            self.writer = None

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, global_step=step)

    def log_image(self, key: str, path: Path, step: int) -> None:
        if self.writer is not None:
            import imageio.v3 as iio

            from gan_cli.animation import rgb_frame

            self.writer.add_image(key, rgb_frame(iio.imread(path)), global_step=step, dataformats="HWC")

    def log_video(self, key: str, path: Path, step: int) -> None:
        """Nothing: an animation's frames are the sample figures, already logged under ``samples``
        at their steps (TensorBoard's step slider plays them)."""

    def finish(self, exit_code: int = 0) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()


class Loggers(NullLogger):
    """Several loggers at once (``logger=wandb_tensorboard``): every call goes to each."""

    def __init__(self, *, loggers: list[NullLogger]):
        self.loggers = list(loggers)

    def start(self, **kwargs: Any) -> None:
        for logger in self.loggers:
            logger.start(**kwargs)

    def log(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log(metrics, step)

    def log_image(self, key: str, path: Path, step: int) -> None:
        for logger in self.loggers:
            logger.log_image(key, path, step)

    def log_video(self, key: str, path: Path, step: int) -> None:
        for logger in self.loggers:
            logger.log_video(key, path, step)

    def finish(self, exit_code: int = 0) -> None:
        for logger in self.loggers:
            logger.finish(exit_code)


class WandbTensorBoardLogger(Loggers):
    """``logger=wandb_tensorboard``: W&B (WandbLogger's keys) and TensorBoard (``tensorboard_subdir``,
    ``flush_secs``) at once."""

    def __init__(self, *, tensorboard_subdir: str = "tensorboard", flush_secs: float = 30.0,
                 **wandb: Any):
        super().__init__(loggers=[WandbLogger(**wandb),
                                  TensorBoardLogger(subdir=tensorboard_subdir, flush_secs=flush_secs)])


# ---------------------------------------------------------------------------------------------
