"""Schemas of the logger group (conf/logger/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from gan_cli.config.checks import (
    _one_of,
    _positive,
    _require,
)


@dataclass
class WandbLoggerConfig:
    _target_: str = "gan_cli.loggers.WandbLogger"
    project: str = "gan-cli"
    mode: str = "offline"  # offline (no account, no network) | online | disabled
    entity: Optional[str] = None  # W&B team or user; null = the account's default
    group: Optional[str] = None  # groups runs in the W&B UI; null = the sweep's directory in -m
    tags: list[str] = field(default_factory=list)
    init_timeout_s: float = 30.0  # give up on wandb.init after this long and log locally

    def __post_init__(self) -> None:
        _one_of(self, "mode", ("offline", "online", "disabled"))
        _positive(self, "init_timeout_s")


@dataclass
class TensorBoardLoggerConfig:
    _target_: str = "gan_cli.loggers.TensorBoardLogger"
    subdir: str = "tensorboard"  # the event files' folder inside the run directory
    flush_secs: float = 30.0  # seconds between writes of the events to disk (and at the end)

    def __post_init__(self) -> None:
        _require(bool(self.subdir) and "/" not in self.subdir and self.subdir not in (".", ".."),
                 "subdir", f"must be one folder name, got {self.subdir!r}")
        _positive(self, "flush_secs")


@dataclass
class WandbTensorBoardLoggerConfig(WandbLoggerConfig):
    _target_: str = "gan_cli.loggers.WandbTensorBoardLogger"
    tensorboard_subdir: str = "tensorboard"  # TensorBoard's folder inside the run directory
    flush_secs: float = 30.0  # seconds between TensorBoard's writes to disk

    def __post_init__(self) -> None:
        super().__post_init__()
        TensorBoardLoggerConfig(subdir=self.tensorboard_subdir, flush_secs=self.flush_secs)


@dataclass
class NoLoggerConfig:
    _target_: str = "gan_cli.loggers.NullLogger"


#: The options of conf/logger/ and their schemas.
LOGGERS: dict[str, type] = {
    "wandb": WandbLoggerConfig,
    "tensorboard": TensorBoardLoggerConfig,
    "wandb_tensorboard": WandbTensorBoardLoggerConfig,
    "none": NoLoggerConfig,
}
