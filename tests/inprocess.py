"""gan-train, gan-eval and gan-sample run inside the test process, for the tests where the
subprocess is not what is under test: the same entry points (``gan_cli.cli.*_main``), the same
arguments, exit status, standard output and error, without the ~6 CPU seconds a new Python process
spends importing torch and Hydra.

Each call leaves the process as it found it: ``sys.argv``, the environment, the working directory,
the signal handlers, the logging handlers, torch's thread count, determinism flags and random
number generators, the warning filters, and the module-level state the commands keep
(``gan_cli.defaults.NOTES``); the command's warnings reach its standard error, as in a new process.
The exit handlers gan-cli registers (``atexit``: a sweep's report) run when the command returns,
as they would when its process exits.
Runs that need a process of their own (an injected ``sitecustomize``, DDP, SLURM, W&B, signals,
peak memory) go through the subprocess: ``run_cli(..., in_process=False)``, or by the rules of
:func:`needs_subprocess`.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import random
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

# arguments that start processes (DDP, SLURM) or services (W&B) or measure the process itself
SUBPROCESS_ARGS = ("hardware=ddp", "hardware=slurm", "hardware=gpu", "hardware.devices", "hardware.nodes",
                   "logger=wandb", "hydra/launcher", "-m", "--multirun")
# environment variables a test may set for an in-process run (they are set and restored around it;
# each is read when it is used, not when a module is imported)
IN_PROCESS_ENV = {"GAN_CLI_CACHE", "OMP_NUM_THREADS", "WANDB_SILENT", "GAN_CLI_INCEPTION_URL",
                  "GAN_CLI_DATA", "TORCH_HOME"}
_SIGNALS = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM")
            if hasattr(signal, n)]


def needs_subprocess(args: list[str], env: dict | None) -> bool:
    """Whether a command must run in a process of its own: it starts workers or W&B, or the test
    sets environment variables beyond those an in-process run can set and restore (PYTHONPATH
    with an injected sitecustomize, HYDRA_FULL_ERROR, ...)."""
    if env and set(env) - IN_PROCESS_ENV:
        return True
    return any(a == s or a.startswith(s) for a in [*_stored(args), *args] for s in SUBPROCESS_ARGS)


def _stored(args: list[str]) -> list[str]:
    """The overrides stored in the run directory that ``resume=RUN_DIR`` continues (gan-train
    reuses them: a DDP run resumes as a DDP run); [] when there is none or it is not a list."""
    import yaml

    resume = [a.partition("=")[2] for a in args if a.startswith("resume=")]
    path = Path(resume[-1]).expanduser() / ".hydra" / "overrides.yaml" if resume else None
    try:
        stored = yaml.safe_load(path.read_text()) if path is not None and path.is_file() else []
    except (OSError, ValueError, yaml.YAMLError, RecursionError):
        return []
    return [a for a in stored if isinstance(a, str)] if isinstance(stored, list) else []


@contextlib.contextmanager
def _isolated(argv: list[str], env: dict | None, cwd: Path):
    """Process state as it was before, whatever the command changed."""
    import torch

    from gan_cli import defaults

    saved_argv, saved_env, saved_cwd = sys.argv[:], dict(os.environ), os.getcwd()
    saved_signals = {s: signal.getsignal(s) for s in _SIGNALS}
    root = logging.getLogger()
    saved_root = (root.handlers[:], root.level)
    saved_loggers = {name: (lg.handlers[:], lg.level, lg.propagate, lg.disabled)
                     for name, lg in logging.root.manager.loggerDict.items()
                     if isinstance(lg, logging.Logger)}
    saved_torch = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                   torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_rng_state(),
                   random.getstate())
    import numpy as np

    saved_np = np.random.get_state()
    saved_notes = defaults.NOTES[:]
    sys.argv = argv
    os.environ.pop("HYDRA_FULL_ERROR", None)
    os.environ.update({"WANDB_SILENT": "true", **(env or {})})
    os.chdir(cwd)
    try:
        with _warnings_as_a_new_process():
            yield
    finally:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        for handler in root.handlers:  # the run's log file and console handlers
            if handler not in saved_root[0]:
                with contextlib.suppress(Exception):
                    handler.close()
        root.handlers[:], root.level = saved_root
        for name, lg in list(logging.root.manager.loggerDict.items()):
            if not isinstance(lg, logging.Logger):
                continue
            handlers, level, propagate, disabled = saved_loggers.get(name, ([], logging.NOTSET, True, False))
            for handler in lg.handlers:
                if handler not in handlers:
                    with contextlib.suppress(Exception):
                        handler.close()
            lg.handlers[:], lg.level, lg.propagate, lg.disabled = handlers, level, propagate, disabled
        for s, handler in saved_signals.items():
            if handler is not None:
                signal.signal(s, handler)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv = saved_argv
        threads, deterministic, dtype, grad, rng, py_rng = saved_torch
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_default_dtype(dtype)
        torch.set_grad_enabled(grad)
        torch.set_rng_state(rng)
        random.setstate(py_rng)
        np.random.set_state(saved_np)
        defaults.NOTES[:] = saved_notes


@contextlib.contextmanager
def _warnings_as_a_new_process():
    """Warnings printed on the command's standard error, filtered as a new interpreter filters
    them (DeprecationWarning outside __main__ ignored), instead of pytest's recorder, which would
    hide them from a test of what the command prints. The filters that ignore a warning stay."""
    import warnings

    with warnings.catch_warnings():
        warnings.filters[:] = [f for f in warnings.filters if f[0] == "ignore"]
        warnings.filterwarnings("default", category=DeprecationWarning, module="__main__", append=True)
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category, append=True)

        def show(message, category, filename, lineno, file=None, line=None):
            (file or sys.stderr).write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _exit_handlers():
    """gan-cli's own ``atexit`` handlers registered inside the block run at its end, last first
    (as at a process's exit, where they print into the command's output); other modules' go to
    the real ``atexit`` (a library first imported by the command registers its own clean-up)."""
    handlers: list[tuple] = []
    register, unregister = atexit.register, atexit.unregister

    def own(fn) -> bool:
        return (getattr(fn, "__module__", None) or "").startswith("gan_cli")

    def on_exit(fn, *args, **kwargs):
        if not own(fn):
            return register(fn, *args, **kwargs)
        handlers.append((fn, args, kwargs))
        return fn

    def forget(fn) -> None:
        handlers[:] = [h for h in handlers if h[0] != fn]
        unregister(fn)

    atexit.register, atexit.unregister = on_exit, forget
    try:
        yield
    finally:
        atexit.register, atexit.unregister = register, unregister
        while handlers:
            fn, args, kwargs = handlers.pop()
            try:
                fn(*args, **kwargs)
            except Exception:  # what Python prints for a failing exit handler; the status stays
                traceback.print_exc()


def call_in_process(main: Callable[[], object], argv: list[str], cwd: Path, env: dict | None = None
                    ) -> subprocess.CompletedProcess:
    """``main()`` run here as the program ``argv`` (``sys.argv``) in ``cwd`` with ``env`` added to the
    environment; returns what a subprocess would: exit status (``sys.exit``'s, or an int that
    ``main`` returns, as a console script passes it to ``sys.exit``), standard output and error."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with _isolated(argv, env, cwd), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err), _exit_handlers():
        try:
            result = main()
            code = result if isinstance(result, int) else 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except KeyboardInterrupt:
            traceback.print_exc()
            code = 130
        except BaseException:  # what Python prints for an uncaught exception, and its status
            traceback.print_exc()
            code = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def run_in_process(prog: str, args: list[str], cwd: Path, env: dict | None = None
                   ) -> subprocess.CompletedProcess:
    """``prog`` (gan-train, gan-eval or gan-sample) with ``args``, run here; returns what a
    subprocess would: exit status, standard output and standard error."""
    from gan_cli import cli

    main = {"gan-train": cli.train_main, "gan-eval": cli.eval_main, "gan-sample": cli.sample_main}[prog]
    return call_in_process(main, [prog, *args], cwd, env)
