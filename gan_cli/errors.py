"""User-facing failures and the exit statuses they map to.

Exit statuses (documented in the README):
    0  success
    1  runtime failure: missing data, unreadable checkpoint, non-finite training, a crash
    2  configuration mistake: unknown key or option, impossible value, a checkpoint that does not
       fit the configured model; found before training
    3  interrupted: SIGTERM, SIGINT, SIGHUP, SIGUSR1 or SIGUSR2 stopped the run at a step
       boundary after a checkpoint of that step was written; `resume` continues it
       (docs/reliability.md)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 3


class GanCliError(Exception):
    """An error the user can fix; printed as one message, without a traceback."""

    exit_code = EXIT_RUNTIME


class ConfigError(GanCliError):
    """The configuration asks for something impossible (exit status 2)."""

    exit_code = EXIT_CONFIG


class RuntimeFailure(GanCliError):
    """Something outside the configuration failed: data, files, hardware (exit status 1)."""

    exit_code = EXIT_RUNTIME


class UntrustedConfigError(RuntimeFailure):
    """A config read back from a file (a checkpoint, a run directory's overrides) names something
    that is not one of gan-cli's own builders; nothing was built (exit status 1)."""


class DataNotFoundError(RuntimeFailure):
    """No source of a dataset worked; the message lists what was tried and what to do."""


class Interrupted(GanCliError):
    """A stop signal ended the run cleanly after a checkpoint (exit status 3)."""

    exit_code = EXIT_INTERRUPTED
