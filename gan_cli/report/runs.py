"""A run directory read as data: its options, its records, how it ended, its times.

Everything is read, nothing is executed: ``.hydra/overrides.yaml``, ``config.yaml`` and
``hydra.yaml`` with ``yaml.safe_load``'s types (through libyaml: :func:`gan_cli.rundir.load_yaml`);
``metrics.jsonl`` and ``sessions.jsonl`` line by line with ``json.loads`` (a line that is not a
JSON object, such as the half-written last line of a running job, is skipped); ``train.log`` as
text. A file that is missing or unreadable leaves its part of the run empty, never an exception:
a broken run is a row with its status.

Status (:func:`status_of`), in this order:

* ``running``: a process holds the run's lock (``RUN_DIR/.lock``, gan_cli/rundir.py), seen in
  ``/proc/locks`` without taking the lock;
* ``finished``: the steps done reach the config's ``train.steps``;
* from the last outcome line of ``train.log``: ``diverged`` (``training diverged``), ``stopped at
  step N`` (``stopped by SIG...``: a signal, checkpoint written), ``failed`` (any other error,
  whose message is the row's note);
* otherwise ``stopped at step N`` when steps were done (killed without a record: resumable from
  its last checkpoint), else ``failed`` (it never trained).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from gan_cli.rundir import LOCK_NAME, load_yaml
from gan_cli.sessions import SESSIONS_NAME

#: A directory holding any of these is a run directory.
RUN_MARKS = (".hydra/config.yaml", "metrics.jsonl", "checkpoints")
#: The first characters of a train.log line: ``[2026-12-07 08:20:52,439][gan_cli][INFO] - ...``
LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+\]\[[^\]]*\]\[(\w+)\] - (.*)$")
#: Most characters of a message shown in a row's note.
NOTE_LIMIT = 160


@dataclass
class Run:
    """What gan-report knows of one run directory."""

    path: Path
    overrides: list[str] = field(default_factory=list)  # .hydra/overrides.yaml, as written
    choices: dict[str, str] = field(default_factory=dict)  # group -> option (hydra.yaml)
    config: dict = field(default_factory=dict)  # .hydra/config.yaml
    records: list[dict] = field(default_factory=list)  # metrics.jsonl
    status: str = "failed"
    note: str = ""
    steps: int = 0
    total_steps: int | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    last_sample: Path | None = None
    options: dict[str, str] = field(default_factory=dict)  # the options that differ (the table's)
    label: str = ""  # those options as ``key=value ...``, or the directory's name

    @property
    def name(self) -> str:
        return self.path.name


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and any((path / mark).exists() for mark in RUN_MARKS)


def digits(text: str) -> int | None:
    """``text`` as a step or job number when it is ASCII digits only (``"²".isdigit()`` is True)."""
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def step_of(value: Any) -> int | None:
    """A record's step: a finite whole number >= 0 (JSON lets NaN and Infinity through), else None."""
    v = number(value)
    return int(v) if v is not None and math.isfinite(v) and v >= 0 and v == int(v) else None


def _numeric_first(path: Path) -> tuple:
    n = digits(path.name)
    return (0, n, "") if n is not None else (1, 0, path.name)


def find_runs(path: Path) -> list[Path]:
    """``path`` itself when it is a run directory, else its run subdirectories (a sweep: 0, 1,
    ... in numeric order; other names after them, sorted)."""
    if is_run_dir(path):
        return [path]
    if not path.is_dir():
        return []
    try:
        children = [p for p in path.iterdir() if is_run_dir(p)]
    except OSError:
        return []
    return sorted(children, key=_numeric_first)


def _yaml(path: Path) -> Any:
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError, ValueError):
        return None  # unreadable, not YAML, or nested past the parser


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; lines that are not one (a truncated last line) are
    skipped; a missing or unreadable file gives none."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def number(value: Any) -> float | None:
    """A record's value as a float (NaN and inf included), or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def lock_held(run_dir: Path) -> bool:
    """Whether a process holds ``run_dir``'s lock, read from /proc/locks (Linux) without taking
    it: taking it, even for an instant, could turn away a run that starts at that moment."""
    lock = run_dir / LOCK_NAME
    try:
        st = lock.stat()
        table = Path("/proc/locks").read_text()
        pid_text = lock.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return False
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        pid, where = parts[4], parts[5]
        # the device numbers of an overlay file system may differ: the inode and the lock file's
        # PID then identify it
        if where == device or (where.endswith(f":{st.st_ino}") and pid == pid_text):
            return True
    return False


def _log_outcome(run_dir: Path) -> tuple[str, str] | None:
    """(kind, message) of train.log's last outcome line: done, diverged, stopped or failed."""
    try:
        text = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    outcome = None
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        level, message = m.group(2), m.group(3)
        if message.startswith("done: "):
            outcome = ("done", message)
        elif "training diverged" in message:
            outcome = ("diverged", message)
        elif message.startswith("stopped by SIG"):
            outcome = ("stopped", message)
        elif level in ("ERROR", "CRITICAL"):
            outcome = ("failed", message)
    return outcome


def _log_span_s(run_dir: Path) -> float | None:
    """Seconds between train.log's first and last timestamps (runs without sessions.jsonl)."""
    try:
        lines = (run_dir / "train.log").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    stamps = [m.group(1) for m in map(LOG_LINE.match, lines) if m]
    if len(stamps) < 2:
        return None
    fmt = "%Y-%m-%d %H:%M:%S"
    try:
        return (datetime.strptime(stamps[-1], fmt) - datetime.strptime(stamps[0], fmt)).total_seconds()
    except ValueError:  # a stamp of the right shape but no real date (month 13)
        return None


def _cut(text: str) -> str:
    return text if len(text) <= NOTE_LIMIT else text[:NOTE_LIMIT] + "..."


def status_of(run: Run, running: bool) -> tuple[str, str]:
    """(status, note) of a run (the module docstring gives the rules)."""
    if running:
        return "running", f"at step {run.steps}"
    if run.total_steps is not None and run.steps >= run.total_steps > 0:
        return "finished", ""
    outcome = _log_outcome(run.path)
    if outcome is not None:
        kind, message = outcome
        if kind == "diverged":
            return "diverged", _cut(message)
        if kind == "stopped":
            return f"stopped at step {run.steps}", _cut(message.split(";")[0])
        if kind == "failed":
            return "failed", _cut(message)
        if kind == "done" and run.total_steps is None:
            return "finished", ""
    if run.steps > 0:
        return f"stopped at step {run.steps}", "no record of how it ended (killed?)"
    return "failed", "no training step recorded"


def read_run(path: Path) -> Run:
    """Read one run directory; never raises for what the directory holds."""
    run = Run(path=path)
    hydra_dir = path / ".hydra"
    overrides = _yaml(hydra_dir / "overrides.yaml")
    if isinstance(overrides, list):
        run.overrides = [str(o) for o in overrides if isinstance(o, (str, int, float))]
    config = _yaml(hydra_dir / "config.yaml")
    run.config = config if isinstance(config, dict) else {}
    hydra_cfg = _yaml(hydra_dir / "hydra.yaml")
    choices = _dig(hydra_cfg, "hydra.runtime.choices")
    if isinstance(choices, dict):
        run.choices = {str(k): str(v) for k, v in choices.items()}
    run.records = [r | {"step": step_of(r.get("step"))} for r in read_jsonl(path / "metrics.jsonl")
                   if step_of(r.get("step")) is not None]  # the step as an int from here on
    run.total_steps = step_of(_dig(run.config, "train.steps"))
    steps = [r["step"] for r in run.records]
    ckpts = [n for p in (path / "checkpoints").glob("step_*.pt") if (n := digits(p.stem[5:])) is not None]
    run.steps = max(steps + ckpts, default=0)
    samples = sorted((path / "samples").glob("step_*.png"))
    run.last_sample = samples[-1] if samples else None
    running = lock_held(path)
    run.status, run.note = status_of(run, running)
    sessions = read_jsonl(path / SESSIONS_NAME)
    walls = [number(s.get("wall_s")) for s in sessions]
    cpus = [number(s.get("cpu_s")) for s in sessions]
    if sessions:
        run.wall_s = sum(w for w in walls if w is not None)
        run.cpu_s = sum(c for c in cpus if c is not None)
    else:
        run.wall_s = _log_span_s(path)
    if running:  # the session in progress: since it took the lock
        try:
            run.wall_s = (run.wall_s or 0.0) + max(0.0, time.time() - (path / LOCK_NAME).stat().st_mtime)
        except OSError:
            pass
    return run


def _dig(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def config_value(run: Run, key: str) -> Any:
    """The value of ``key`` (an override's key: a group or a dotted config key) in ``run``."""
    if key in run.choices:
        return run.choices[key]
    return _dig(run.config, key)


def override_items(run: Run) -> dict[str, str]:
    """key -> value text of the run's overrides (``+``, ``++`` and ``~`` prefixes dropped;
    Hydra's own ``hydra.*`` keys left out)."""
    out = {}
    for item in run.overrides:
        key, eq, value = item.partition("=")
        key = key.lstrip("+~")
        if eq and key and not key.startswith("hydra."):
            out[key] = value
    return out


def comparable(value: Any) -> Any:
    """An override's text and a config's value made comparable: ``2e-4`` and 0.0002 are one
    value, as are ``true`` and True, ``null`` and None."""
    if isinstance(value, str):
        text = value.strip()
        low = text.lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("null", "none", "~"):
            return None
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return text
    if isinstance(value, float) and value.is_integer() and not math.isinf(value):
        return int(value)
    if isinstance(value, (list, dict)):
        try:
            return json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError, RecursionError):  # keys of mixed types cannot be sorted
            return str(value)
    return value
