"""Everything a run carries from one step to the next: ``TrainState.state_dict()`` is the checkpoint.

:class:`Pair` is one G/D pair with what trains it; :class:`TrainState` the pairs (one per stage)
with the data position, latent stream, counters and best metrics. A single pair's state is stored
at the top level (``G``, ``D``, ``G_ema``, ``opt_g``, ...; docs/reliability.md), several under
``stages`` with the stage in training under ``stage``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.build import (
    NETWORKS,
    build_discriminator,
    build_generator,
    build_loss,
    build_optimizers,
    build_regularizers,
)
from gan_cli.checkpoint import CheckpointMismatchError, pair_states_of
from gan_cli.distributed import wrap_ddp
from gan_cli.ema import EMA
from gan_cli.errors import ConfigError, cut
from gan_cli.latents import Noise
from gan_cli.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from gan_cli.training.nonfinite import NonFinitePolicy
from gan_cli.training.resume import config_differences

log = logging.getLogger("gan_cli")

@dataclass
class Pair:
    """One generator/discriminator pair and everything that trains it.

    ``G`` and ``D`` own the state dicts; ``G_fwd`` and ``D_fwd`` are what the step calls (the
    same modules, or their DDP / compiled wrappers).
    """

    G: nn.Module
    D: nn.Module
    loss: Any
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    ema: EMA | None = None
    regularizers: Sequence[Any] = ()
    G_fwd: Any = None
    D_fwd: Any = None
    ema_for_samples: bool = True  # ema.for_samples: figures and metrics use G_ema

    def __post_init__(self) -> None:
        self.G_fwd = self.G if self.G_fwd is None else self.G_fwd
        self.D_fwd = self.D if self.D_fwd is None else self.D_fwd

    @property
    def G_sample(self) -> nn.Module:
        """The generator figures and metrics use: G_ema when there is one (``ema.for_samples``)."""
        return self.ema.module if self.ema is not None and self.ema_for_samples else self.G

    def state_dict(self) -> dict[str, Any]:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict()}
        if self.ema is not None:
            state["G_ema"] = self.ema.state_dict()
        state.update({
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(),
            "loss": self.loss.state_dict(),
        })
        regs = {type(r).__name__: r.state_dict() for r in self.regularizers
                if hasattr(r, "state_dict")}
        if regs:
            state["regularizers"] = regs
        return state

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Load a pair's checkpointed state. The optimizers' state (moments, step counts) comes
        from the checkpoint, their settings (learning rates, betas, weight decay) from the
        configuration, so a resume can change them."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None and "G_ema" in state:
            self.ema.load_state_dict(state["G_ema"])
        elif self.ema is not None:  # EMA switched on at this resume: start the average from G
            self.ema.load_state_dict(state["G"])
            log.warning("%s has no G_ema (the EMA was off): the average starts from its G", path)
        for name in ("opt_g", "opt_d"):
            opt = getattr(self, name)
            settings = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, configured in zip(opt.param_groups, settings, strict=True):
                group.update(configured)
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.loss.load_state_dict(state["loss"])
        saved = state.get("regularizers") or {}
        for r in self.regularizers:
            if hasattr(r, "load_state_dict") and type(r).__name__ in saved:
                r.load_state_dict(saved[type(r).__name__])

    def reset_optimizers(self) -> None:
        """Forget the optimizers' moments (progressive growing does at each new resolution)."""
        for opt in (self.opt_g, self.opt_d):
            opt.state.clear()


@dataclass
class TrainState:
    """The whole run: its pairs (one per stage), data, latent stream, non-finite policy, resolved
    config, the curriculum's ``real_nimg(step)``, the metrics tracker (rank 0) and counters."""

    pairs: list[Pair]
    data: Any
    noise: Noise
    nonfinite: NonFinitePolicy
    config: dict
    real_nimg: Callable[[int], float]
    metrics: Any = None
    step: int = 0
    stage: int = 0
    resumed_steps: int | None = None  # train.steps of the checkpoint resumed from

    @property
    def pair(self) -> Pair:
        """The pair being trained."""
        return self.pairs[self.stage]

    @property
    def nimg(self) -> int:
        """Real samples shown to D so far."""
        return int(self.real_nimg(self.step))

    def state_dict(self, rng_ranks: list[dict] | None = None) -> dict[str, Any]:
        """The checkpoint. ``rng_ranks``: every rank's global RNG states, in rank order (gathered
        by the caller under DDP); default: this process's."""
        rng_ranks = rng_ranks if rng_ranks is not None else [rng_state()]
        state: dict[str, Any] = {"step": self.step, "nimg": self.nimg}
        if len(self.pairs) == 1:
            state.update(self.pairs[0].state_dict())
        else:
            state["stage"] = self.stage
            state["stages"] = [p.state_dict() for p in self.pairs]
        state.update({
            "data": self.data.state_dict(),
            "noise": self.noise.state_dict(),
            "metrics": self.metrics.state_dict() if self.metrics is not None else {},
            "rng": rng_ranks[0],  # rank 0's; every rank's below
            "rng_ranks": rng_ranks,
            "machine": self.machine,
            "nonfinite_skips": self.nonfinite.state_dict(),
            "config": self.config,
        })
        return state

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Resume: load a checkpoint into the built objects; CheckpointMismatchError naming the
        options that differ when it does not fit, a warning when they differ but fit."""
        diffs = config_differences(state.get("config") or {}, self.config,
                                   ("model", "loss", "dataset", "optimizer"))
        try:
            pair_states = pair_states_of(state)
            if len(pair_states) != len(self.pairs):
                raise ValueError(f"{len(pair_states)} stage(s) saved, {len(self.pairs)} built")
            for pair, pair_state in zip(self.pairs, pair_states, strict=True):
                pair.load_state_dict(pair_state, path)
            self.data.load_state_dict(state["data"])
            same_machine = self._restore_random_streams(state, path)
        except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
            detail = cut(str(e).strip().splitlines()[0], 300) if str(e).strip() else type(e).__name__
            differ = ("; options that differ: " + "; ".join(diffs[:6])) if diffs else ""
            raise CheckpointMismatchError(
                f"{path} does not fit the configured model: it was written for a different model, "
                f"dataset or loss configuration{differ}. Resume with the run's own options "
                f"(resume=RUN_DIR reuses them) ({detail})") from None
        self.step = int(state["step"])
        if not same_machine:
            self._reseed(self.step)
        self.stage = int(state.get("stage", 0))
        self.resumed_steps = ((state.get("config") or {}).get("train") or {}).get("steps")
        self.nonfinite.load_state_dict(state.get("nonfinite_skips"))
        if self.metrics is not None:
            self.metrics.load_state_dict(state.get("metrics", {}))
        if diffs:
            log.warning("resuming %s with options that differ from the checkpoint's: %s",
                        path, "; ".join(diffs))

    @property
    def machine(self) -> dict[str, Any]:
        """The shape of the machine this run trains on: processes and device type."""
        return {"world_size": self.noise.world_size, "device": self.noise.device.type}

    def _restore_random_streams(self, state: dict[str, Any], path: Path) -> bool:
        """This rank's global RNG states and the latent stream, from a checkpoint written on the
        same machine shape (bitwise-exact resume). On another shape (another number of processes,
        or CPU <-> GPU) they cannot be restored: returns False, and the run goes on with fresh
        streams derived from the seed and the step, with a warning."""
        saved = _machine_of(state)
        if saved == self.machine:
            rank = self.noise.rank
            ranks = state.get("rng_ranks") or [state["rng"]]
            if rank < len(ranks):
                set_rng_state(ranks[rank])
                self.noise.load_state_dict(state["noise"])
                return True
        log.warning("%s was written on %d process(es) on %s, this run has %d on %s: training "
                    "continues (model, optimizers, data position restored) with fresh random "
                    "streams, so it is no longer bitwise identical to an uninterrupted run",
                    path, saved["world_size"], saved["device"], self.machine["world_size"],
                    self.machine["device"])
        return False

    def _reseed(self, step: int) -> None:
        """Fresh global and latent streams for this rank after a resume on another machine shape."""
        seed = int(self.config.get("seed", 0))
        seed_everything(derive_seed(seed, "resume", step, self.noise.rank) % 2**63)
        self.noise.generator.manual_seed(derive_seed(seed, "noise", "resume", step))


# ---------------------------------------------------------------------------------------------
# Building a pair from the config.

def _machine_of(state: dict[str, Any]) -> dict[str, Any]:
    """The machine shape a checkpoint was written on (older checkpoints: one rank, the device of
    its noise stream's state: 16 bytes for CUDA's Philox generator)."""
    if "machine" in state:
        return dict(state["machine"])
    noise = state.get("noise")
    device = "cuda" if torch.is_tensor(noise) and noise.numel() == 16 else "cpu"
    return {"world_size": 1, "device": device}


def build_pair(cfg: DictConfig, info: Any, device: torch.device, batch_per_device: int,
               **facts: Any) -> Pair:
    """G, D, the loss, the regularisers, the optimizers, the grad scalers and the EMA of G that
    ``cfg`` describes, placed on ``device`` and wrapped for the step (DDP, compile, NHWC).

    The order of construction is part of the run's reproducibility: G's and D's initial weights
    come from the global torch stream seeded by the loop.

    ``facts`` are a stage's extra constructor facts (``stages.network_kwargs``), given to both
    builders; among them ``networks`` may name the model's (generator, discriminator) config
    nodes this pair is built from (default ``("generator", "discriminator")``).
    """
    hw = cfg.hardware
    loss = build_loss(cfg.loss)
    regularizers = build_regularizers(cfg.loss, cfg.model)
    # a gradient penalty assumes each sample's score depends on that sample alone
    per_sample = getattr(loss, "double_backward", False) or any(
        getattr(r, "input_gradients", False) for r in regularizers if r.net == "D")
    G = build_generator(cfg.model, info, **facts).to(device)
    D = build_discriminator(cfg.model, info, loss.d_output, per_sample=per_sample, **facts).to(device)
    if per_sample and batch_per_device > 1:
        check_no_batch_coupling(D, type(loss).__name__, chosen=cfg.model.discriminator.get("norm"))
    if G.num_classes != D.num_classes:
        raise ConfigError(f"the generator uses {G.num_classes} classes and the discriminator "
                          f"{D.num_classes}: make both conditional or neither")
    d_node = facts.get("networks", NETWORKS)[1]
    pack = int(cfg.model[d_node].get("pack", 1))
    if batch_per_device % pack:
        raise ConfigError(f"model.{d_node}.pack={pack} must divide the batch per device "
                          f"({batch_per_device}): D judges groups of {pack} samples")
    opt_g, opt_d = build_optimizers(cfg.optimizer, G, D, regularizers)
    if hw.channels_last and len(info.shape) == 3:
        G, D = G.to(memory_format=torch.channels_last), D.to(memory_format=torch.channels_last)
    # The moving average of G (ema.half_life_kimg): figures and metrics use it when enabled.
    ema_cfg = cfg.get("ema")
    ema = EMA(G) if ema_cfg is not None and ema_cfg.half_life_kimg is not None else None
    # What the step calls (DDP wrappers when distributed); G and D keep the state dicts.
    G_fwd, D_fwd = wrap_ddp(G, D, hw, device,
                            find_unused_parameters=cfg.model.get("schedule") is not None)
    if hw.compile:
        G_fwd = torch.compile(G_fwd)
        if getattr(loss, "double_backward", False):
            log.warning(
                "hardware.compile: D is not compiled, since torch.compile does not support the "
                "double backward of %s's gradient penalty", type(loss).__name__)
        else:
            D_fwd = torch.compile(D_fwd)
    fp16 = hw.precision == "fp16"
    scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
    scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
    return Pair(G=G, D=D, loss=loss, opt_g=opt_g, opt_d=opt_d, scaler_g=scaler_g,
                scaler_d=scaler_d, ema=ema, regularizers=regularizers, G_fwd=G_fwd, D_fwd=D_fwd,
                ema_for_samples=bool(ema_cfg.for_samples) if ema is not None else True)


def check_no_batch_coupling(D: nn.Module, loss_name: str, chosen: str | None = None) -> None:
    """Refuse a discriminator with BatchNorm under a penalty on its input gradients: with it a
    sample's score depends on the whole batch, and the penalty no longer constrains one sample's
    gradient (Gulrajani et al. 2017 remove it from the critic). A user who set
    ``model.discriminator.norm=batch`` explicitly gets it, with a warning."""
    coupled = [name for name, m in D.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if coupled and chosen == "batch":
        log.warning("model.discriminator.norm=batch under %s: BatchNorm makes a sample's score "
                    "depend on its batch, so the penalty no longer constrains each sample's "
                    "gradient (Gulrajani et al. 2017 use layer norm: norm=auto)", loss_name)
    elif coupled:
        raise ConfigError(
            f"{loss_name} (or an R1/R2 term) penalises D's gradient at each sample, but "
            f"model.discriminator uses BatchNorm ({coupled[0]}), which makes a sample's score depend "
            f"on the rest of its batch; set model.discriminator.norm=layer (or none) where the model "
            f"has that option, or use a discriminator without batch normalisation")
