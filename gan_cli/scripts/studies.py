"""What the study scripts share (reproduce_toy.py, loss_study.py): one gan-train run as a
subprocess with its own CPU time, the metrics it logged, the command a user would type, the
runs of a table side by side, and the mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

#: The checkout gan_cli sits in (its outputs/ holds the studies' runs); where gan-cli is installed
#: as a package, the working directory.
_CHECKOUT = Path(__file__).resolve().parents[2]
REPO = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
# every run: one thread, no W&B (the study's CPU times are per process and comparable)
RUN_ARGS = ("logger=none", "hardware.num_threads=1")

T = TypeVar("T")
R = TypeVar("R")


def shown_command(args: Iterable[str]) -> str:
    """What a user types for a run: ``gan-train`` and its overrides (without the run directory)."""
    return "gan-train " + " ".join(shlex.quote(a) for a in args)


class RunDiverged(RuntimeError):
    """gan-train stopped the run because training diverged (a non-finite loss or weights: exit
    status 1 with its "training diverged" message). A study records it as a result of the
    setting, not as a failure of the study.

    Attributes:
        cpu_s, wall_s: the run's CPU and wall time up to the stop.
        message: gan-train's one-line message (the step and the statistic).
    """

    def __init__(self, message: str, cpu_s: float, wall_s: float) -> None:
        super().__init__(message)
        self.message, self.cpu_s, self.wall_s = message, cpu_s, wall_s


def run_gan_train(args: list[str], run_dir: Path) -> tuple[float, float]:
    """Run ``gan-train <args>`` into ``run_dir`` (its output in ``run_dir/output.log``) and return
    its ``(cpu_s, wall_s)``: the CPU time (user + system) of that process alone, from
    ``os.wait4``, so runs side by side (``--jobs``) do not mix their times, and the wall time.

    Raises:
        RunDiverged: gan-train stopped the run because training diverged.
        RuntimeError: the run exited non-zero otherwise; the message has the command and its last
            lines.
    """
    cmd = [sys.executable, "-m", "gan_cli.cli", *args, f"hydra.run.dir={run_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    run_dir.mkdir(parents=True, exist_ok=True)
    log = run_dir / "output.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time, even among --jobs
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu_s, wall_s = usage.ru_utime + usage.ru_stime, time.perf_counter() - t0
    if proc.returncode != 0:
        lines = log.read_text().strip().splitlines()
        diverged = [line for line in lines if "training diverged" in line]
        if proc.returncode == 1 and diverged:
            raise RunDiverged(diverged[-1].removeprefix("gan-train: error: "), cpu_s, wall_s)
        tail = "\n".join(lines[-5:])
        raise RuntimeError(f"{' '.join(cmd)}\nexited with {proc.returncode}:\n{tail}")
    return cpu_s, wall_s


def last_metrics(run_dir: Path, key: str, what: str) -> dict:
    """The last record of ``run_dir/metrics.jsonl`` that holds ``key``.

    Raises:
        RuntimeError: no record has it; the message names ``what`` (the metric).
    """
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
               if line.strip()]
    with_key = [r for r in records if key in r]
    if not with_key:
        raise RuntimeError(f"{run_dir}/metrics.jsonl has no {what} (metrics.every_steps=0?)")
    return with_key[-1]


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """``mean ± std`` (sample std) of the values times ``scale``; one value alone has no spread;
    undefined (NaN) values are left out and counted; none defined: ``n/a``."""
    values = [v * scale for v in values]
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "n/a"
    mean = statistics.fmean(finite)
    text = f"{mean:.{digits}f}"
    if len(finite) > 1:
        text += f" ± {statistics.stdev(finite):.{digits}f}"
    if len(finite) < len(values):
        text += f" ({len(values) - len(finite)} undefined)"
    return text


def run_all(fn: Callable[[T], R], jobs: list[T], workers: int) -> list[R]:
    """``fn`` on every job, ``workers`` at a time (threads that wait on gan-train processes), in
    the jobs' order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, jobs))


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options every study script has: ``--fresh``, ``--jobs`` and ``--list``."""
    p.add_argument("--fresh", action="store_true", help="rerun runs that already have a result")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs at a time, one thread each (at most the CPU cores, for honest CPU times)")
    p.add_argument("--list", action="store_true", help="print the rows' commands and exit")


def selected_rows(p: argparse.ArgumentParser, rows: Sequence[T], spec: str) -> list[T]:
    """The rows ``--rows`` names (comma-separated, or ``all``), in the table's order; an unknown
    name ends the script with the parser's usage error listing the rows."""
    names = [r.name for r in rows]
    wanted = names if spec == "all" else spec.split(",")
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        p.error(f"unknown rows {unknown}; rows: {', '.join(names)}")
    return [r for r in rows if r.name in wanted]
