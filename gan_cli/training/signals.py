"""Stop signals: SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 become a checkpoint at the step
boundary; SLURM requeue on SIGUSR1. What a user can rely on is in docs/reliability.md.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping

log = logging.getLogger("gan_cli")

# SIGHUP: the terminal or ssh session closed (the shell sends it to each of its jobs).
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2")
# SIGUSR2 is how gan-train's own DDP parent relays any stop signal to its workers; the name of
# the signal the parent received travels separately (the parent requeues, the workers checkpoint).
# Anywhere else (a single process, torchrun, srun) SIGUSR2 is a stop like SIGTERM.
RELAY_SIGNAL = "SIGUSR2"
# a second SIGINT this soon after the first is the same Ctrl-C relayed by a launcher (torchrun
# forwards the terminal's SIGINT to workers that got it from the terminal already), not a second one
SAME_CTRL_C_S = 1.0

_relayed = False  # this process is a worker of gan-train's DDP parent (see relayed_by_parent)


def relayed_by_parent() -> None:
    """Mark this process as a worker that gan-train's DDP parent started: only here is a SIGUSR2
    the parent's relay of the stop signal it received."""
    global _relayed
    _relayed = True


def ignore_stop_signals() -> None:
    """The process exits 3 now, after a stop's checkpoint: a stop signal or a Ctrl-C arriving
    while it shuts down (after Python's own handlers are gone) must not turn that into death by a
    signal."""
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)


class Console:
    """The terminal of standard output and error. Once it hangs up (SIGHUP), every write fails
    with EIO and would turn a clean stop into exit 1: :meth:`detach_if_hung_up` points them at
    /dev/null (train.log keeps every line)."""

    def __init__(self) -> None:
        self.fds = [fd for fd in (1, 2) if _isatty(fd)]

    def detach_if_hung_up(self) -> None:
        hung_up = [fd for fd in self.fds if not _isatty(fd)]
        if not hung_up:
            return
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in hung_up:
                os.dup2(null, fd)
                self.fds.remove(fd)
        finally:
            os.close(null)


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


class StopSignals:
    """SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 as a flag the loop reads once per step; it
    then checkpoints and exits. A second Ctrl-C during a step (more than ``SAME_CTRL_C_S`` apart)
    raises KeyboardInterrupt; after :meth:`finish` (the stop's checkpoint) every signal is ignored
    until the process exits. Main thread only; elsewhere a no-op."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.finishing = False  # the stop's checkpoint is being written: nothing interrupts it
        self._at = 0.0  # when the first stop signal came (time.monotonic)
        self._previous: dict[int, object] = {}
        self._console = Console()

    def install(self) -> StopSignals:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in STOP_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                # an ignored signal (e.g. SIGINT of a `cmd &` background job, SIGHUP under nohup)
                # stays ignored
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def finish(self) -> None:
        """The run stops now (checkpoint, exit 3): from here on no signal interrupts it."""
        self.finishing = True

    def restore(self) -> None:
        if self.finishing:  # on its way to exit 3: a Ctrl-C now must not become KeyboardInterrupt
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        self._console.detach_if_hung_up()  # the terminal closed: SIGHUP, or a relayed stop
        if (self.received is not None and signum == signal.SIGINT and not self.finishing
                and time.monotonic() - self._at > SAME_CTRL_C_S):
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum
            self._at = time.monotonic()

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""

    @property
    def description(self) -> str:
        """The signal as a user sent it (a relayed one is the DDP parent's)."""
        if self.name == RELAY_SIGNAL and _relayed:
            return "a stop signal relayed by gan-train to its DDP workers"
        return self.name


def slurm_requeue(env: Mapping[str, str] | None = None) -> str | None:
    """``scontrol requeue <job>`` (``<array job>_<task>`` for an array) for this SLURM job; the job
    id, or None with the failure logged."""
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


class StopAgreement:
    """Whether every rank stops now, the same answer on every rank: the flag itself without DDP;
    under DDP an asynchronous all-reduce (MAX) of it on the gloo control group each step, whose
    result is read one step later, so all ranks stop after the same step."""

    def __init__(self, signals: StopSignals, group: object | None = None) -> None:
        self.signals = signals
        self.group = group
        self._pending: tuple | None = None

    def __call__(self) -> bool:
        flag = self.signals.received is not None
        if self.group is None:
            return flag
        import torch
        import torch.distributed as dist

        decided = False
        if self._pending is not None:
            value, work = self._pending
            work.wait()
            decided = bool(value.item())
        value = torch.tensor([int(flag)], dtype=torch.int32)
        work = dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.group, async_op=True)
        self._pending = (value, work)
        return decided

    def close(self) -> None:
        """Complete the last all-reduce (every rank calls it at the same point)."""
        if self._pending is not None:
            self._pending[1].wait()
            self._pending = None
