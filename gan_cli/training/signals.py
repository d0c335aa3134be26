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
    """The terminal that standard output and error were written to when the run began.

    When the terminal (or the ssh session holding it) closes, the shell sends SIGHUP and every
    later write to the terminal fails with EIO: the stop's last message, a log line or Python's
    final flush then turned a clean stop into exit 1. :meth:`detach_if_hung_up`, called on each
    stop signal, points those descriptors at /dev/null once their terminal has hung up (a hung-up
    terminal no longer answers ``isatty``); the run directory's train.log keeps every log line.
    """

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
    """Turns SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 into a flag that the loop reads once
    per step.

    The handler only records the signal; the loop finishes the step it is in, writes a
    checkpoint and exits. A second SIGINT during a training step (Ctrl-C twice, more than
    ``SAME_CTRL_C_S`` apart) stops at once with KeyboardInterrupt; the last checkpoint is safe,
    since checkpoints are written atomically. Once the loop has called :meth:`finish` (it is at the
    step boundary, about to write the stop's checkpoint), every further signal is ignored: the
    stop that began completes, and :meth:`restore` leaves these handlers in place until the process
    exits. A console whose terminal closed is detached (:class:`Console`). Handlers can only be
    installed from the main thread; elsewhere this is a no-op.
    """

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


class StopAgreement:
    """Whether every rank stops now: the same answer on every rank, at every step.

    Without DDP it is the signal flag itself. Under DDP each rank starts, at every step, an
    asynchronous all-reduce (MAX) of its flag on the control group (gloo, CPU tensors: no GPU
    synchronisation) and reads the previous step's result: all ranks learn of a stop signal that
    reached any of them one step later, and stop after the same step, long before a launcher's
    kill timeout (torch elastic SIGKILLs 30 s after SIGTERM).
    """

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
