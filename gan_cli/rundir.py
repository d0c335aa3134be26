"""One run per directory (docs/reliability.md, "One run per directory").

A run holds an OS lock on its run directory for its whole life: an exclusive ``fcntl.flock`` on
``RUN_DIR/.lock``, with its PID written inside for the message of a run that is turned away. The
OS frees the lock when the holder ends, however it ends (SIGKILL included), so a lock is never
stale and nothing has to clean it up; the file itself stays.

Where the lock is taken:

* a single run of gan-train, gan-eval or gan-sample: by :class:`RunDirGuard`, a Hydra callback
  (``hydra.callbacks.run_dir`` in conf/train.yaml, eval.yaml, sample.yaml) whose ``on_run_start``
  runs once Hydra has composed the config, which is the first moment the run directory is known,
  and before Hydra creates the directory's ``.hydra/`` files and log file. A run turned away has
  written nothing but the (empty or foreign) lock file;
* a job of a multirun (each in its own directory): at the start of gan-train's task function,
  after Hydra wrote that job's ``.hydra/``, and freed when the job ends;
* under DDP: the process that runs Hydra (gan-train's parent, torchrun's rank 0, rank 0 of each
  job under Hydra's submitit launcher). The workers gan-train spawns and torchrun's followers never
  run Hydra and never take it; the lock's descriptor is not inherited by child processes.

gan-eval and gan-sample also refuse a directory that holds a training run (exit 2): running there
would replace the run's ``.hydra/overrides.yaml``, after which ``gan-train resume=RUN_DIR`` would
continue it with the wrong options.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gan_cli.errors import ConfigError, GanCliError, RuntimeFailure

# libyaml's parser where PyYAML was built with it (its wheels are), with PyYAML's safe types: the
# pure-Python scanner's cost grows with the square of a file's nesting depth until the recursion
# limit ends it (measured: 1.6 s for a file of 100,000 '[' at the default limit, 16 s at 10,000),
# while libyaml refuses a file nested past depth 1,000 in milliseconds.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load(text)`` (the same types and errors) for the YAML files of a run directory,
    which may come from someone else."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader

LOCK_NAME = ".lock"
#: What gan-train writes into its run directory and gan-eval / gan-sample never do.
TRAINING_RUN_MARKS = ("checkpoints", "metrics.jsonl", "train.log")
#: How long a run turned away waits for the holder's PID to appear in the lock file (the holder
#: writes it just after taking the lock).
PID_WAIT_S = 1.0

_held: dict[Path, int] = {}  # run directory -> the descriptor of this process's lock on it


def lock_run_dir(run_dir: str | os.PathLike) -> None:
    """Take ``run_dir``'s lock for this process (creating the directory), or raise RuntimeFailure
    (exit 1) naming the PID of the process that holds it. Taking a lock this process already
    holds does nothing."""
    run_dir = Path(run_dir).absolute()
    if run_dir in _held:
        return
    path = run_dir / LOCK_NAME
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:  # the message of an unwritable run directory elsewhere (launch.py)
        raise RuntimeFailure(f"cannot write the run directory ({e.strerror or e}: {run_dir}); "
                             f"set hydra.run.dir to a writable directory") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        who = f"PID {holder}" if holder is not None else "a process that has not written its PID"
        raise RuntimeFailure(f"run directory {run_dir} is in use by another run ({who} holds "
                             f"{path}); wait for it to end, or give this run another "
                             f"hydra.run.dir") from None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as e:  # a full disk: Hydra would swallow the bare error and run unlocked
        os.close(fd)
        raise RuntimeFailure(f"cannot write the run directory ({e.strerror or e}: {path}); "
                             f"set hydra.run.dir to a writable directory") from None
    _held[run_dir] = fd


def unlock_run_dir(run_dir: str | os.PathLike) -> None:
    """Free this process's lock on ``run_dir`` (nothing when it holds none)."""
    fd = _held.pop(Path(run_dir).absolute(), None)
    if fd is not None:
        os.close(fd)  # closing the only descriptor of the lock frees it


def _holder(fd: int) -> int | None:
    """The PID written in a lock file that another process holds, waiting briefly for it."""
    deadline = time.monotonic() + PID_WAIT_S
    while True:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def refuse_training_run_dir(run_dir: str | os.PathLike, prog: str) -> None:
    """ConfigError (exit 2) when ``run_dir`` holds a training run (gan-eval, gan-sample)."""
    run_dir = Path(run_dir).absolute()
    found = [mark for mark in TRAINING_RUN_MARKS if (run_dir / mark).exists()]
    if found:
        raise ConfigError(f"hydra.run.dir={run_dir} is a training run's directory (it holds "
                          f"{found[0]}): {prog} would replace its .hydra/ files, and "
                          f"gan-train resume={run_dir} would then use the wrong options; give "
                          f"{prog} a directory of its own, or leave hydra.run.dir out")


def first_rank() -> bool:
    """False in a non-zero rank of a torchrun or srun job (RANK, SLURM_PROCID), True otherwise."""
    return all(os.environ.get(key, "0") == "0" for key in ("RANK", "SLURM_PROCID"))


class RunDirGuard(Callback):
    """Hydra callback: one run per directory, and gan-eval / gan-sample kept out of training runs'
    directories, checked before Hydra writes anything into the run directory.

    Args:
        command: train, eval or sample (the command the config belongs to).
    """

    def __init__(self, command: str) -> None:
        self.command = command
        self.run_dir: Path | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        prog = f"gan-{self.command}"
        # what run_job does first: the run directory may interpolate hydra:... and ${now:...}
        # (cached on this config, so run_job gets the same time)
        HydraConfig.instance().set_config(config)
        run_dir = Path(str(OmegaConf.select(config, "hydra.run.dir"))).absolute()
        try:
            if self.command != "train":
                refuse_training_run_dir(run_dir, prog)
            if first_rank():
                lock_run_dir(run_dir)
                self.run_dir = run_dir
        except GanCliError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            raise SystemExit(e.exit_code) from None

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.run_dir is not None:
            unlock_run_dir(self.run_dir)
            self.run_dir = None
