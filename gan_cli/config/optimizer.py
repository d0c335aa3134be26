"""Schemas of the optimizer group (conf/optimizer/): one torch.optim class, built twice (TTUR: own lrs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from gan_cli.config.checks import (
    _non_negative,
    _one_of,
    _positive,
    _require,
)


@dataclass
class OptimizerConfig:
    _target_: str = MISSING  # the torch.optim class
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # discriminator learning rate; 0 = D frozen (G trains against a fixed D;
    #                     its buffers, BatchNorm statistics or spectral-norm vectors, still update)
    weight_decay: float = 0.0
    # none | linear: both learning rates fall linearly to 0 at lr_decay_steps (WGAN-GP's and
    # SNGAN's CIFAR-10 setting); recomputed from the step each update, so a resume continues it
    # exactly
    lr_decay: str = "none"
    # the generator step at which the linear decay reaches 0; null = train.steps. Set it when a
    # run may later be extended (resume with a larger train.steps): with null the schedule is
    # stretched to the new length and the learning rates rise again at the resume
    lr_decay_steps: Optional[int] = None
    # the generator step at which the linear decay starts (the rates stay at their base until
    # then); 0 = from the first step. A late start anneals a run that has already converged: it
    # shrinks Adam's step, whose size does not fall with the gradient's
    lr_decay_start: int = 0
    # how torch applies the update to the parameters (the same arithmetic, to float rounding):
    # auto = fused (one kernel for all parameters, on CPU and GPU) where torch has it for this
    # optimizer and device, else foreach | fused | foreach (one op per kind, over all tensors) |
    # single (a Python loop over tensors: torch's CPU default). docs/performance.md measures them.
    implementation: str = "auto"

    def __post_init__(self) -> None:
        _positive(self, "lr_g")
        _non_negative(self, "lr_d", "weight_decay")
        _one_of(self, "lr_decay", ("none", "linear"))
        _one_of(self, "implementation", ("auto", "fused", "foreach", "single"))
        _require(self.lr_decay_steps is None or self.lr_decay_steps > 0, "lr_decay_steps",
                 f"must be > 0 or null, got {self.lr_decay_steps}")
        _require(self.lr_decay_start >= 0, "lr_decay_start",
                 f"must be >= 0, got {self.lr_decay_start}")
        _require(self.lr_decay_steps is None or self.lr_decay_start < self.lr_decay_steps,
                 "lr_decay_start", f"must be below lr_decay_steps ({self.lr_decay_steps}), got "
                 f"{self.lr_decay_start}")


@dataclass
class AdamConfig(OptimizerConfig):
    _target_: str = "torch.optim.Adam"
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # DCGAN's beta1 = 0.5
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                 f"must be two numbers in [0, 1), got {list(self.betas)}")
        _positive(self, "eps")


@dataclass
class SGDConfig(OptimizerConfig):
    _target_: str = "torch.optim.SGD"
    lr_g: float = 0.01
    lr_d: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")


@dataclass
class RMSpropConfig(OptimizerConfig):
    _target_: str = "torch.optim.RMSprop"
    lr_g: float = 5e-5  # the WGAN paper's setting
    lr_d: float = 5e-5
    alpha: float = 0.99  # smoothing constant of the squared-gradient average
    eps: float = 1e-8
    momentum: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        _require(0 < self.alpha < 1, "alpha", f"must be in (0, 1), got {self.alpha}")
        _require(0 <= self.momentum < 1, "momentum", f"must be in [0, 1), got {self.momentum}")


#: The options of conf/optimizer/ and their schemas.
OPTIMIZERS: dict[str, type] = {
    "adam": AdamConfig,
    "sgd": SGDConfig,
    "rmsprop": RMSpropConfig,
}
