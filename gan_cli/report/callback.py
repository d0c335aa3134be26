"""Sweeps report themselves, and a sweep's jobs are named after their differing overrides.

:class:`SweepReport` is a Hydra callback (``hydra.callbacks.report`` in conf/train.yaml): when a
multirun ends it writes gan-report's files into the sweep directory and prints the table. Hydra's
basic sweeper re-raises a failed job's error once every job has run and then never calls
``on_multirun_end``; the callback therefore also registers itself to run at exit, so a sweep with
a failed or diverged job is reported too (that run a row with its status). A report that cannot
be written prints one warning line; it never changes the sweep's exit status.

:func:`sweep_job_name`: a job's name (W&B's run name, ``name`` in its saved config) is its
overrides of the keys the sweep varies, e.g. ``loss=lsgan``: those given as a sweep on the command
line (``loss=ns,lsgan``, ``range(...)``, ``choice(...)``; read from the sweep directory's
``multirun.yaml``, which the basic sweeper writes before any job) and those of
``hydra.sweeper.params`` (Optuna's search space). The run directory stays a number.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from gan_cli.rundir import load_yaml


def swept_keys(command_line: list[str], sweeper_params: dict | None) -> list[str]:
    """The keys a sweep varies: command-line sweeps, then the sweeper's own parameters."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    keys = []
    for text in command_line:
        try:
            override = parser.parse_override(str(text))
        except Exception:  # noqa: BLE001 - not an override Hydra accepts: not a swept key
            continue
        if override.is_sweep_override() and override.key_or_group not in keys:
            keys.append(override.key_or_group)
    keys += [str(k) for k in (sweeper_params or {}) if str(k) not in keys]
    return keys


def sweep_job_name(task_overrides: list[str], sweep_dir: Path,
                   sweeper_params: dict | None = None) -> str | None:
    """``key=value ...`` of the job's overrides whose key the sweep varies; None when none is
    known (the run keeps its directory's name)."""
    multirun = None
    try:
        multirun = load_yaml((sweep_dir / "multirun.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        pass
    command_line = []
    if isinstance(multirun, dict):
        task = ((multirun.get("hydra") or {}).get("overrides") or {}).get("task")
        command_line = [str(t) for t in task] if isinstance(task, list) else []
    keys = swept_keys(command_line, sweeper_params)
    plain = {o.partition("=")[0].lstrip("+~"): o for o in task_overrides}
    picked = [plain[k].lstrip("+~") for k in keys if k in plain]
    return " ".join(picked) or None


class SweepReport(Callback):
    """Hydra callback: at the end of a multirun, gan-report of its sweep directory, printed."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.sweep_dir: Path | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not self.enabled:
            return
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        atexit.register(self._report)  # a failed job: on_multirun_end is never called

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        atexit.unregister(self._report)
        self._report()

    def _report(self) -> None:
        sweep_dir, self.sweep_dir = self.sweep_dir, None
        if sweep_dir is None:
            return
        from gan_cli.errors import GanCliError
        from gan_cli.report.command import report
        from gan_cli.report.runs import find_runs

        runs = find_runs(sweep_dir)
        if not runs:
            return
        try:
            text = report(runs, sweep_dir, title=f"sweep {sweep_dir}")
        except (GanCliError, OSError) as e:
            print(f"gan-train: warning: the sweep's report could not be written: {e}", file=sys.stderr)
            return
        except Exception as e:  # noqa: BLE001 - a report never changes the sweep's outcome
            print(f"gan-train: warning: the sweep's report failed ({type(e).__name__}: {e})",
                  file=sys.stderr)
            return
        print(f"\nsweep {sweep_dir}: {len(runs)} runs (runs.csv, runs.md, report.html there)")
        print(text, end="", flush=True)
