"""Everything a run carries from one step to the next: ``TrainState.state_dict()`` is the checkpoint.

:class:`TrainState` holds the pairs (one per stage; :class:`gan_cli.build.Pair`, built by
``build_pair``) with the data position, latent stream, counters and best metrics. A single pair's
state is stored at the top level (``G``, ``D``, ``G_ema``, ``opt_g``, ...; docs/reliability.md),
several under ``stages`` with the stage in training under ``stage``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan_cli.build import Pair
from gan_cli.checkpoint import CheckpointMismatchError, pair_states_of
from gan_cli.errors import cut
from gan_cli.latents import Noise
from gan_cli.seeding import derive_seed, rng_state, seed_everything, set_rng_state
from gan_cli.training.nonfinite import NonFinitePolicy
from gan_cli.training.resume import config_differences

log = logging.getLogger("gan_cli")

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
