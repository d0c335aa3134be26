"""Keeping a run alive across preemption and divergence: stop signals, SLURM requeue, the
non-finite watch, and resuming a run directory in place.

The training loop uses these helpers; none of them synchronises the host with the device per
step. What a user can rely on is written down in docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("gan_cli")

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")


# ---------------------------------------------------------------------------------------------
# Stop signals.


class StopSignals:
    """Turns SIGTERM, SIGINT and SIGUSR1 into a flag that the loop reads once per step.

    The handler only records the signal; the loop finishes the step it is in, writes a
    checkpoint and exits. A second SIGINT (Ctrl-C twice) stops at once with KeyboardInterrupt;
    the last checkpoint is safe either way, since checkpoints are written atomically.
    Handlers can only be installed from the main thread; elsewhere this is a no-op.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in STOP_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                # an ignored signal (e.g. SIGINT of a `cmd &` background job) stays ignored
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


def slurm_requeue(env: Mapping[str, str] | None = None) -> str | None:
    """``scontrol requeue <job>`` for the SLURM job this process runs in; the job id or None.

    Array jobs are requeued as ``<array job>_<task>``. A failure is logged, never raised: the
    checkpoint is already written, and the user can requeue by hand.
    """
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        job = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    cmd = ["scontrol", "requeue", job]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", None) or str(e)
        log.warning("could not requeue SLURM job %s (`%s`: %s); requeue it by hand",
                    job, " ".join(cmd), str(detail).strip().splitlines()[0] if detail else e)
        return None
    log.info("requeued SLURM job %s (`%s`)", job, " ".join(cmd))
    return job


# ---------------------------------------------------------------------------------------------
# Non-finite values.


class NonFiniteWatch:
    """Remembers, on the device, the first step at which each watched statistic was not finite.

    ``add`` costs a handful of tiny device operations and no host synchronisation; ``first``
    reads the result (one transfer per group of statistics) and is called only where the loop
    synchronises anyway: at logging steps and before a checkpoint is written.
    """

    def __init__(self) -> None:
        self._first: dict[tuple[str, ...], torch.Tensor] = {}

    def add(self, stats: Mapping[str, torch.Tensor], step: int) -> None:
        keys = tuple(stats)
        if not keys:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in stats.values()])
        bad = ~torch.isfinite(values)
        first = self._first.get(keys)
        if first is None:
            first = torch.full(values.shape, -1, dtype=torch.int64, device=values.device)
        self._first[keys] = torch.where((first < 0) & bad, step, first)

    def first(self) -> tuple[int, str] | None:
        """(step, statistic) of the earliest non-finite value seen, or None."""
        found: list[tuple[int, str]] = []
        for keys, first in self._first.items():
            for key, step in zip(keys, first.tolist(), strict=True):
                if step >= 0:
                    found.append((step, key))
        if not found:
            return None
        step, _, key = min((s, not k.startswith("loss"), k) for s, k in found)  # losses first
        return step, key


def nonfinite_weights(modules: Mapping[str, nn.Module]) -> str | None:
    """The name of the first module with a non-finite parameter or float buffer, or None."""
    names, flags = [], []
    for name, module in modules.items():
        tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
        if tensors:
            names.append(name)
            flags.append(torch.stack([torch.isfinite(t).all() for t in tensors]).all())
    if not flags:
        return None
    ok = torch.stack(flags).tolist()  # one transfer
    bad = [n for n, good in zip(names, ok, strict=True) if not good]
    return bad[0] if bad else None


def update_is_finite(loss: torch.Tensor, params: Iterable[nn.Parameter], check_grads: bool) -> bool:
    """Whether a loss (and, when asked, the gradients it left) are finite: one host sync.

    Used by ``train.nonfinite=skip`` before each optimizer step. With an fp16 grad scaler the
    gradients are not checked here: the scaler itself skips steps with inf/NaN gradients.
    """
    values = [loss.detach().float().reshape(1)]
    if check_grads:
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            values.append(torch.stack(torch._foreach_norm(grads)).float())
    return bool(torch.isfinite(torch.cat(values)).all())


# ---------------------------------------------------------------------------------------------
# Resuming a run directory in place.


def expand_resume_dir(argv: list[str]) -> list[str]:
    """``resume=RUN_DIR`` (a directory): continue that run in that directory, with its options.

    Adds ``hydra.run.dir=RUN_DIR`` (unless the command line sets it) and puts the run's own
    overrides (``RUN_DIR/.hydra/overrides.yaml``) before the command line's, so that
    ``gan-train resume=RUN_DIR`` alone continues the run, and ``gan-train resume=RUN_DIR
    train.steps=20000`` extends it. Keys given on the command line win. Multirun (-m) is left
    alone. The loop then loads the latest checkpoint in RUN_DIR/checkpoints.
    """
    if any(a in ("-m", "--multirun") for a in argv):
        return argv
    resume = [a.partition("=")[2] for a in argv if a.partition("=")[0] == "resume"]
    if not resume or not Path(resume[-1]).expanduser().is_dir():
        return argv
    run_dir = Path(resume[-1]).expanduser().resolve()
    given = {_key(a) for a in argv if "=" in a}
    old: list[str] = []
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        try:
            from omegaconf import OmegaConf

            loaded = OmegaConf.to_container(OmegaConf.load(overrides))
        except Exception:  # noqa: BLE001 - unreadable: the command line alone decides
            loaded = []
        if isinstance(loaded, list):
            old = [str(a) for a in loaded if "=" in str(a) and _key(str(a)) not in given
                   and _key(str(a)) != "resume"]
    out = [*old, *argv]
    if "hydra.run.dir" not in given:
        out.append(f"hydra.run.dir={run_dir}")
    return out


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def trim_metrics(path: Path, step: int) -> int:
    """Drop records after ``step`` from metrics.jsonl (logged after the checkpoint a resume
    starts from, so they would otherwise appear twice); return how many were dropped."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record_step = json.loads(line).get("step", 0)
        except (ValueError, AttributeError):
            record_step = 0
        if record_step > step:
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


def config_differences(old: Mapping, new: Mapping, keys: Iterable[str]) -> list[str]:
    """``key: checkpoint X, now Y`` for each leaf under ``keys`` that differs."""
    out: list[str] = []

    def walk(a: object, b: object, path: str) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for k in sorted(set(a) | set(b), key=str):
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
        elif a != b:
            out.append(f"{path}: checkpoint {a!r}, now {b!r}")

    for key in keys:
        walk(old.get(key, {}), new.get(key, {}), key)
    return out
