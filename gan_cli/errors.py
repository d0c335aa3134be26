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


#: The most characters of one value that an error message quotes from a config or a file (a
#: crafted checkpoint may hold a 50 MB string; a message shows its start and its length).
QUOTE_LIMIT = 200


def cut(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` itself when it is short, else its first ``limit`` characters and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def shown(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message: strings and containers cut to ``limit`` characters,
    nesting to a few levels (reprlib, so a deep or huge value costs nothing to show)."""
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlevel, short.maxlist, short.maxdict = 3, 8, 8
    return cut(short.repr(value), limit)
