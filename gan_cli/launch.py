"""Process launching for DDP: one process per device, started by gan-train or by torchrun/SLURM.

Three ways a run gets its processes (docs/scaling.md):

1. ``hardware.devices=N`` with no launcher: the Hydra process (the *parent*) validates the config,
   owns the run directory and starts N workers through torch's elastic launch API, each given
   the resolved config and the run directory; no worker runs Hydra.
2. ``torchrun ... -m gan_cli.cli`` or ``srun gan-train``: every process is a rank (torchrun's or
   SLURM's environment); rank 0 alone runs Hydra (the *leader*) and broadcasts each job's
   resolved config and run directory to the *followers*.
3. Hydra's submitit launcher: one task per GPU, each joining the group from SLURM's environment.

Only rank 0 writes. Shutdown is barrier -> destroy_process_group -> flush -> exit. A failing rank
exits with its documented status, the elastic agent stops the others, and the parent exits with it.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf

from gan_cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    ConfigError,
    GanCliError,
    Interrupted,
    RuntimeFailure,
)
from gan_cli.training.signals import RELAY_SIGNAL, SAME_CTRL_C_S, Console, relayed_by_parent

log = logging.getLogger("gan_cli")
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
EXIT_CTRL_C = 130  # a worker stopped by a second Ctrl-C during a step (as gan-train's own 130)
INIT_TIMEOUT_S = 600.0  # the process group's collective timeout; $GAN_CLI_DDP_TIMEOUT_S overrides it


# ---------------------------------------------------------------------------------------------
# The launcher's environment.


@dataclass(frozen=True)
class Ranks:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    source: str  # "torchrun" or "slurm"


def env_ranks(environ: dict | None = None) -> Ranks | None:
    """This process's place in a multi-process job started by torchrun or srun; None otherwise."""
    env = os.environ if environ is None else environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun, torch elastic, or set by hand
        world = int(env["WORLD_SIZE"])
        return Ranks(int(env["RANK"]), world, int(env.get("LOCAL_RANK", 0)),
                     int(env.get("LOCAL_WORLD_SIZE", world)), "torchrun")
    # Inside an srun step (a batch script itself has SLURM_NTASKS but is a single process).
    if "SLURM_PROCID" in env and "SLURM_STEP_ID" in env and "SLURM_NTASKS" in env:
        world = int(env["SLURM_NTASKS"])
        local_world = int(env.get("SLURM_NTASKS_PER_NODE", "0").split("(")[0] or 0)
        if not local_world:
            local_world = max(1, world // max(1, int(env.get("SLURM_JOB_NUM_NODES", 1))))
        return Ranks(int(env["SLURM_PROCID"]), world, int(env.get("SLURM_LOCALID", 0)),
                     local_world, "slurm")
    return None


def _slurm_master_addr(nodelist: str) -> str:
    """The first host of a SLURM node list such as ``gpu[03-05,07],cpu1``."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True,
                             text=True, timeout=30, check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    m = re.match(r"([^,\[]+)(?:\[([0-9]+))?", nodelist)
    if not m:
        raise RuntimeFailure(f"cannot read the first host of SLURM_JOB_NODELIST={nodelist!r}; "
                             "set MASTER_ADDR")
    return m.group(1) + (m.group(2) or "")


def _export_slurm_rendezvous(ranks: Ranks) -> None:
    """MASTER_ADDR/PORT (when absent) and RANK/WORLD_SIZE/LOCAL_RANK from SLURM's variables."""
    env = os.environ
    if "MASTER_ADDR" not in env:
        env["MASTER_ADDR"] = _slurm_master_addr(env.get("SLURM_JOB_NODELIST", "127.0.0.1"))
    if "MASTER_PORT" not in env:  # the same on every task of the job, different across jobs
        env["MASTER_PORT"] = str(20000 + int(env.get("SLURM_JOB_ID", 0)) % 20000)
    env.update(RANK=str(ranks.rank), WORLD_SIZE=str(ranks.world_size),
               LOCAL_RANK=str(ranks.local_rank), LOCAL_WORLD_SIZE=str(ranks.local_world_size))


def init_process_group(ranks: Ranks, backend: str | None = None) -> None:
    """Join the job's process group (from the environment); pick this rank's GPU first."""
    if dist.is_initialized():
        return
    if ranks.source == "slurm":
        _export_slurm_rendezvous(ranks)
    if backend is None:  # before the config is known: gloo for CPU tensors, nccl for GPU ones
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(ranks.local_rank % torch.cuda.device_count())
    timeout_s = float(os.environ.get("GAN_CLI_DDP_TIMEOUT_S", INIT_TIMEOUT_S))
    dist.init_process_group(backend=backend, init_method="env://",
                            timeout=datetime.timedelta(seconds=timeout_s))


def shutdown() -> None:
    """barrier -> destroy_process_group -> flush; without the barrier a rank can abort."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    logging.shutdown()


def backend_for(hw: DictConfig) -> str:
    if hw.backend != "auto":
        return hw.backend
    return "nccl" if hw.device == "cuda" else "gloo"


def setup_worker_logging(run_dir: Path | None, rank: int) -> None:
    """Console (and train.log) logging for a process that did not run Hydra: rank 0 logs INFO,
    the other ranks WARNING and above, prefixed with their rank."""
    fmt = LOG_FORMAT if rank == 0 else f"[rank {rank}]{LOG_FORMAT}"
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if run_dir is not None:
        handlers.append(logging.FileHandler(run_dir / "train.log", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(logging.Formatter(fmt))
        root.addHandler(h)
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)


# ---------------------------------------------------------------------------------------------
# The config facts of a distributed run, checked before any process starts.


def check_world(cfg: DictConfig, world_size: int) -> None:
    """Raise ConfigError when ``cfg`` cannot run on ``world_size`` processes."""
    hw = cfg.hardware
    from gan_cli.build import batch_per_device

    batch_per_device(cfg.train, world_size)
    if world_size > 1 and hw.device == "cuda" and backend_for(hw) == "gloo":
        log.warning("hardware.backend=gloo on GPUs is slow; nccl is the usual choice")


def _resolved(cfg: DictConfig, world_size: int) -> dict:
    """The config every rank trains with: resolved once, with the derived per-device batch."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container["train"]["batch_per_device"] = cfg.train.batch_size // world_size
    return container


# ---------------------------------------------------------------------------------------------
# Entry from the Hydra task function.

_LEADER = False  # set by lead_or_follow(): rank 0 of a torchrun/srun job, the one running Hydra
_in_job = False  # the leader has handed a job to the followers and not finished it


def train(cfg: DictConfig, run_dir: Path, group: str | None) -> dict[str, float]:
    """Run the training ``cfg`` describes, in this process or in the processes it needs."""
    from gan_cli.training.loop import train as run

    ranks = env_ranks()
    hw = cfg.hardware
    if ranks is not None and ranks.world_size > 1:
        check_world(cfg, ranks.world_size)
        if ranks.rank == 0 and hw.devices * hw.nodes not in (1, ranks.world_size):
            log.warning("%s started %d processes; hardware.devices=%d x hardware.nodes=%d is "
                        "not used", ranks.source, ranks.world_size, hw.devices, hw.nodes)
        resolved = _resolved(cfg, ranks.world_size)
        if _LEADER:  # torchrun/srun: hand the job to the waiting followers
            global _in_job
            _broadcast(("job", resolved, str(run_dir), group))
            last = run(OmegaConf.create(resolved), run_dir, group=group)
            _in_job = False
            return last
        # Hydra's submitit launcher: every task has the same config and run directory.
        init_process_group(ranks, backend_for(hw))
        if ranks.rank != 0:
            logging.getLogger().setLevel(logging.WARNING)
        try:
            last = run(OmegaConf.create(resolved), run_dir, group=group)
        except GanCliError as e:
            _die(e, ranks.rank)
        shutdown_group()
        return last
    if hw.devices > 1 or hw.nodes > 1:
        return spawn(cfg, run_dir, group)
    return run(cfg, run_dir, group=group)


def shutdown_group() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _die(e: GanCliError, rank: int) -> None:
    """A rank's user-facing failure: its message, then exit at once with its status (no barrier:
    the others may be blocked in a collective). A clean stop is reported by rank 0 alone."""
    if isinstance(e, Interrupted):
        if rank == 0:
            log.warning("%s", e)
            print(f"gan-train: {e}", file=sys.stderr, flush=True)
    else:
        log.error("%s", e)
        print(f"gan-train: error: [rank {rank}] {e}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(e.exit_code)


# ---------------------------------------------------------------------------------------------
# 1. gan-train starts the workers itself.


def spawn(cfg: DictConfig, run_dir: Path, group: str | None) -> dict[str, float]:
    """Start ``hardware.devices`` workers on this machine with torch elastic; return rank 0's
    last statistics. A failed worker ends the launch with its exit status."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    hw = cfg.hardware
    if hw.nodes > 1:
        raise ConfigError(
            f"hardware.nodes={hw.nodes}: gan-train starts processes on this machine only; for "
            "several machines run torchrun on each node or use SLURM (see docs/scaling.md)")
    if hw.device == "cuda":
        visible = torch.cuda.device_count()
        if visible < hw.devices:
            raise ConfigError(f"hardware.devices={hw.devices}, but only {visible} CUDA GPU(s) are "
                              "visible to PyTorch")
    check_world(cfg, hw.devices)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=hw.devices,
        run_id=str(uuid.uuid4()), rdzv_backend="c10d",
        rdzv_endpoint=f"127.0.0.1:{hw.master_port}",  # 0: a free port
        max_restarts=0, monitor_interval=0.1, start_method="spawn",
    )
    log.info("starting %d DDP workers (backend %s); run directory %s", hw.devices,
             backend_for(hw), run_dir)
    # torch elastic logs a failed worker with the agent's own traceback; gan-train reports it.
    elastic_log = logging.getLogger("torch.distributed.elastic")
    level = elastic_log.level
    elastic_log.setLevel(logging.CRITICAL)
    # The agent runs in a thread, so that this (main) thread keeps the signal handlers: torch
    # elastic installs its own only in the main thread, and would forward SIGTERM/SIGINT to the
    # workers and kill them 30 s later, while SIGUSR1 (SLURM's warning) would kill this process.
    # Here any stop signal is relayed to the workers as SIGUSR2; they checkpoint the step they are
    # in and exit 3, and this process requeues the job when asked and exits 3.
    _start_resource_tracker()
    relay = StopRelay().install()
    outcome: dict[str, Any] = {}

    def launch() -> None:
        try:
            outcome["results"] = elastic_launch(config, _worker)(_resolved(cfg, hw.devices),
                                                                 str(run_dir), group)
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread below
            outcome["error"] = e

    agent = threading.Thread(target=launch, name="gan-train-elastic-agent", daemon=True)
    try:
        agent.start()
        while agent.is_alive():
            agent.join(0.2)
    finally:
        relay.restore()
        elastic_log.setLevel(level)
    error = outcome.get("error")
    if isinstance(error, ChildFailedError):
        if _stopped_cleanly(error):
            raise _interrupted(relay, cfg, run_dir) from None
        if any(f.exitcode == EXIT_CTRL_C for f in error.failures.values()):
            raise KeyboardInterrupt  # a second Ctrl-C stopped a worker in a step: exit 130
        rank, failure = error.get_first_failure()
        code = failure.exitcode if failure.exitcode in (1, 2) else EXIT_RUNTIME
        detail = ""
        if failure.message and isinstance(failure.message, dict):
            msg = failure.message.get("message", {})
            detail = f": {msg.get('message', msg) if isinstance(msg, dict) else msg}"
        elif failure.exitcode < 0:
            detail = f": killed by signal {-failure.exitcode}"
        err = ConfigError if code == 2 else RuntimeFailure
        raise err(f"DDP worker rank {rank} failed with exit status {failure.exitcode}{detail} "
                  "(its own error is printed above); the other workers were stopped") from None
    if error is not None:
        raise error
    results = outcome["results"]
    return results[0] or {}


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (shared by the workers) with SIGHUP ignored, so a
    closing terminal does not kill it under the cleanly stopping workers."""
    from multiprocessing import resource_tracker

    if threading.current_thread() is not threading.main_thread():
        resource_tracker.ensure_running()
        return
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # inherited by the tracker's exec
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


class StopRelay:
    """The DDP parent's stop signals (SIGTERM, SIGINT, SIGUSR1, SIGHUP), relayed to the workers as
    SIGUSR2 and remembered (requeue on SIGUSR1). A second Ctrl-C reaches the workers as SIGINT
    (exit 130); a third makes the parent exit 130 at once, terminating the workers."""

    SIGNALS = ("SIGTERM", "SIGINT", "SIGUSR1", "SIGHUP")

    def __init__(self) -> None:
        self.received: str | None = None
        self._at = 0.0
        self._ctrl_c_relayed = False  # a second Ctrl-C was passed on to the workers
        self._previous: dict[int, object] = {}
        self._console = Console()

    def install(self) -> StopRelay:
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in self.SIGNALS:
            sig = getattr(signal, name, None)
            if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        self._console.detach_if_hung_up()  # the terminal closed: its SIGHUP
        name = signal.Signals(signum).name
        if self.received is None:
            self.received, self._at = name, time.monotonic()
            self._send(getattr(signal, RELAY_SIGNAL))
        elif name == "SIGINT" and time.monotonic() - self._at > SAME_CTRL_C_S:
            if self._ctrl_c_relayed:
                # A third Ctrl-C: the workers did not end on the second (one may be blocked in a
                # collective on a hung peer, where no Python handler runs): the parent ends the
                # run (exit 130) and torch's elastic agent terminates the workers.
                raise KeyboardInterrupt
            # A second Ctrl-C: the workers decide, as a single process does (during a step, stop
            # at once: exit 130; once the stop's checkpoint has begun, it finishes: exit 3). The
            # parent waits for them rather than exiting under a checkpoint being written.
            self._ctrl_c_relayed, self._at = True, time.monotonic()
            self._send(signal.SIGINT)

    @staticmethod
    def _send(sig: int) -> None:
        for pid in _worker_pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _worker_pids() -> list[int]:
    """This process's children that are multiprocessing workers (not its resource tracker)."""
    pids = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            pids += [int(p) for p in children.read_text().split()]
        except OSError:
            continue
    workers = []
    for pid in sorted(set(pids)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            workers.append(pid)
    return workers


def _stopped_cleanly(error: Any) -> bool:
    """The workers ended by a clean stop: a worker exits 3 only after rank 0 has written the
    checkpoint of the stopped step (every rank waits for it), and the others exited 3 too or were
    stopped by the agent on their way out."""
    codes = [f.exitcode for f in error.failures.values()]
    return EXIT_INTERRUPTED in codes and all(
        c in (EXIT_INTERRUPTED, -signal.SIGTERM, -signal.SIGKILL) for c in codes)


def _interrupted(relay: StopRelay, cfg: DictConfig, run_dir: Path) -> Interrupted:
    """The parent's report of a clean stop (rank 0 printed its own), after requeueing on SIGUSR1
    when train.requeue is set."""
    from gan_cli.training.signals import slurm_requeue

    how = relay.received or "a stop signal sent to the workers"
    requeued = slurm_requeue() if relay.received == "SIGUSR1" and cfg.train.requeue else None
    then = (f"SLURM job {requeued} was requeued and continues with resume=auto" if requeued
            else f"continue with: gan-train resume={run_dir}")
    return Interrupted(f"the DDP workers stopped ({how}) after writing a checkpoint of the step "
                       f"they were in ({run_dir / 'checkpoints' / 'last.pt'}); {then}")


def _worker(resolved: dict, run_dir: str, group: str | None) -> dict[str, float] | None:
    """One spawned rank: join the group, train, shut down. Returns rank 0's last statistics."""
    from gan_cli.training.loop import train as run

    ranks = env_ranks()
    assert ranks is not None, "torch elastic sets RANK and WORLD_SIZE"
    relayed_by_parent()  # a SIGUSR2 here is the parent's relay of its stop signal
    setup_worker_logging(Path(run_dir), ranks.rank)
    cfg = OmegaConf.create(resolved)
    _share_cpu_threads(cfg, ranks.local_world_size)
    try:
        init_process_group(ranks, backend_for(cfg.hardware))
        last = run(cfg, Path(run_dir), group=group)
    except GanCliError as e:
        _die(e, ranks.rank)
    except KeyboardInterrupt:  # a second Ctrl-C during a step: the parent says "interrupted"
        sys.stdout.flush()
        os._exit(EXIT_CTRL_C)
    shutdown()
    return last if ranks.rank == 0 else None


def _share_cpu_threads(cfg: DictConfig, local_world_size: int) -> None:
    """CPU workers split the cores (as torchrun's OMP_NUM_THREADS=1 does, less strictly)."""
    if cfg.hardware.device == "cpu" and not cfg.hardware.num_threads:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world_size))


# ---------------------------------------------------------------------------------------------
# 2. torchrun / srun: rank 0 leads (runs Hydra), the others follow.


def lead_or_follow() -> bool:
    """Called before Hydra. In a torchrun/srun job, join the process group; return True when this
    process must run Hydra (rank 0, or no multi-process job), False after a follower's work."""
    global _LEADER
    ranks = env_ranks()
    if ranks is None or ranks.world_size <= 1 or os.environ.get("SUBMITIT_EXECUTOR"):
        return True
    init_process_group(ranks)
    if ranks.rank == 0:
        _LEADER = True
        return True
    follow(ranks)
    return False


def is_leader() -> bool:
    return _LEADER


def leader_done(exit_code: int) -> None:
    """Rank 0 after Hydra: release the followers (or, after a failure inside a job, leave it to
    the launcher to stop them)."""
    if not _LEADER:
        return
    if exit_code != 0 and _in_job:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    _broadcast(("done", exit_code))
    if exit_code == 0:
        shutdown()
    else:
        dist.destroy_process_group()


def _broadcast(msg: tuple | None) -> Any:
    global _in_job
    box = [msg]
    dist.broadcast_object_list(box, src=0)
    _in_job = box[0] is not None and box[0][0] == "job"
    return box[0]


def follow(ranks: Ranks) -> None:
    """A follower: train every job rank 0 broadcasts, until it says done; then exit."""
    from gan_cli.training.loop import train as run

    setup_worker_logging(None, ranks.rank)
    while True:
        msg = _broadcast(None)
        if msg[0] == "done":
            code = msg[1]
            if code == 0:
                shutdown()
            else:
                dist.destroy_process_group()
            raise SystemExit(code)
        _, resolved, run_dir, group = msg
        setup_worker_logging(Path(run_dir), ranks.rank)
        cfg = OmegaConf.create(resolved)
        try:
            run(cfg, Path(run_dir), group=group)
        except GanCliError as e:
            _die(e, ranks.rank)
