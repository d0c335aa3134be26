"""gan-report: runs side by side, offline (README, "Comparing runs: gan-report").

* :mod:`gan_cli.report.runs`: a run directory read as data (its options, records, status, times);
* :mod:`gan_cli.report.table`: one row per run, the options that differ, best values, sorting,
  ``runs.csv`` / ``runs.md``;
* :mod:`gan_cli.report.figures`: every run's curve of each metric overlaid, the last samples side
  by side;
* :mod:`gan_cli.report.pages`: ``report.html`` and the 2D run's ``training.html`` (templates in
  ``templates/``);
* :mod:`gan_cli.report.command`: the ``gan-report`` command; :mod:`gan_cli.report.callback`: the
  Hydra callback that reports a sweep at its end, and the name of a sweep's job.

Nothing here imports torch at import time, executes or instantiates anything a run directory
holds: its files are parsed as YAML (safe loader) and JSON lines.
"""
