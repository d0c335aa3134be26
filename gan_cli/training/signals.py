"""Stop signals: SIGTERM, SIGINT and SIGUSR1 become a checkpoint at the step boundary; SLURM
requeue on SIGUSR1. What a user can rely on is in docs/reliability.md.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from collections.abc import Mapping

log = logging.getLogger("gan_cli")

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1")




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
