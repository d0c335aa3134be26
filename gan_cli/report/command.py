"""``gan-report PATH... [out=DIR] [sort=KEY]``: runs side by side (README, "Comparing runs").

PATH is a sweep directory (its numbered run directories), a run directory, or a glob of them
(quoted, or expanded by the shell). Writes into ``out`` (default: the sweep directory when one
PATH holds the runs, else the current directory) ``runs.csv``, ``runs.md``, one
``curve_<key>.png`` per metric, ``samples.png`` and ``report.html``, and prints the table.
``sort=KEY`` orders the rows best first by the metric KEY's direction (a loss: lowest first).

Exit statuses (gan_cli/errors.py): 0 written; 1 no run found at a PATH, or ``out`` cannot be
written; 2 an unknown option or a ``sort`` key the runs do not have. Each ends with one line on
stderr, ``gan-report: error: ...``, never a traceback.
"""

from __future__ import annotations

import glob
import re
import sys
from datetime import datetime
from pathlib import Path

from gan_cli.errors import ConfigError, GanCliError, RuntimeFailure, cut

USAGE = "usage: gan-report PATH... [out=DIR] [sort=KEY]"
OPTIONS = ("out", "sort")
OPTION = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)=(.*)$", re.S)


def parse_args(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Paths and ``key=value`` options; an argument that exists as a path is a path even when it
    looks like an option (a run directory named ``loss=lsgan``)."""
    paths, options = [], {}
    for arg in argv:
        m = OPTION.match(arg)
        if m and not Path(arg).exists():
            key, value = m.groups()
            if key not in OPTIONS:
                raise ConfigError(f"unknown option {key!r}; options: {', '.join(OPTIONS)} ({USAGE})")
            options[key] = value
        else:
            paths.append(arg)
    if not paths:
        raise ConfigError(f"no PATH given ({USAGE})")
    return paths, options


def expand(paths: list[str]) -> tuple[list[Path], Path | None]:
    """The run directories named by ``paths`` (in order, each once), and the directory that holds
    them when a single PATH was a sweep (or any directory of runs)."""
    from gan_cli.report.runs import find_runs, is_run_dir

    runs: list[Path] = []
    holder = None
    for text in paths:
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        found = []
        for match in matches:
            found += find_runs(Path(match))
        if not found:
            raise RuntimeFailure(f"no runs found at {cut(text)} (a run directory holds "
                                 f".hydra/config.yaml, metrics.jsonl or checkpoints/; a sweep "
                                 f"directory holds run directories)")
        if len(paths) == 1 and len(matches) == 1 and not is_run_dir(Path(matches[0])):
            holder = Path(matches[0])
        for path in found:
            if path.resolve() not in {r.resolve() for r in runs}:
                runs.append(path)
    return runs, holder


def report(run_dirs: list[Path], out: Path, sort: str | None = None, title: str | None = None) -> str:
    """Write the report of ``run_dirs`` into ``out``; returns the table (Markdown) it printed.

    Raises ConfigError for a ``sort`` key the runs lack, RuntimeFailure when ``out`` cannot be
    written.
    """
    from gan_cli.report.figures import curve_figure, figure_name, samples_figure
    from gan_cli.report.pages import report_page, write_atomic
    from gan_cli.report.runs import read_run
    from gan_cli.report.table import build_table, markdown, write_tables

    runs = [read_run(p) for p in run_dirs]
    table = build_table(runs, sort)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_tables(table, out)
        curves = []
        for key in [*table.losses, *table.metrics]:
            path = curve_figure(table.runs, key, out / figure_name(key), table.directions.get(key))
            if path is not None:
                curves.append((key, path))
        samples = [(f"{r.label} · {r.status}", r.last_sample) for r in table.runs
                   if r.last_sample is not None]
        samples_figure(table.runs, out / "samples.png")
        title = title or f"gan-report: {len(runs)} runs"
        meta = f"{datetime.now():%Y-%m-%d %H:%M}; " + ", ".join(str(p) for p in run_dirs[:6]) + (
            f" and {len(run_dirs) - 6} more" if len(run_dirs) > 6 else "")
        write_atomic(out / "report.html", report_page(table, curves, samples, title, meta))
    except OSError as e:
        where = e.filename or out
        raise RuntimeFailure(f"cannot write the report into out={out} ({e.strerror or e}: {where})") from None
    return markdown(table)


def main(argv: list[str] | None = None) -> int:
    """The ``gan-report`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE + "\n\n" + __doc__.split("\n\n", 1)[1].replace("``", "").strip())
        return 0
    try:
        paths, options = parse_args(argv)
        run_dirs, holder = expand(paths)
        out = Path(options["out"]) if options.get("out") else holder or Path.cwd()
        text = report(run_dirs, out, options.get("sort") or None)
    except GanCliError as e:
        print(f"gan-report: error: {e}", file=sys.stderr)
        return e.exit_code
    print(text, end="")
    print(f"gan-report: {len(run_dirs)} runs; wrote runs.csv, runs.md, report.html in {out}")
    return 0


def console_main() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    console_main()
