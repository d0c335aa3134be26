"""One row per run: the options that differ between the runs, the status, the steps, the times,
and for each metric its last value and its best with the step it was reached at.

* The options shown are the keys any run overrides (``.hydra/overrides.yaml``) whose value is not
  the same in every run; a run that does not override a key shows its own value of it (the group's
  option from ``hydra.yaml``, a key's from ``config.yaml``). A run's *label* is those options,
  ``loss=lsgan optimizer.lr_d=0.0001``, or its directory's name when none differ.
* Metrics: the keys of the metric registry (gan_cli/metrics/) that have a direction, and their
  ``jacobian/`` variants (metrics.jacobian_threshold). The best
  value is the lowest or the highest by that direction, non-finite values left out; the losses
  (``loss_d``, ``loss_g``) get their last value only.
* ``sort=KEY`` orders the rows best first by KEY's direction (rows without a value last); a key
  without a direction (a loss) in increasing order of its last value.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from gan_cli.errors import ConfigError
from gan_cli.report.runs import Run, comparable, config_value, number, override_items

LOSSES = ("loss_d", "loss_g")


def direction(key: str) -> bool | None:
    """True: lower is better, False: higher is, None: no direction (the metric registry's; a
    ``jacobian/`` key, the metric of the samples the Jacobian threshold keeps, has its metric's
    direction, as the training's tracker keeps its best)."""
    from gan_cli.metrics.registry import lower_is_better
    from gan_cli.metrics.tracker import JACOBIAN_PREFIX

    return lower_is_better(key.removeprefix(JACOBIAN_PREFIX))


def differing_options(runs: list[Run]) -> dict[str, list[str]]:
    """key -> each run's value text, for the overridden keys whose values are not all equal."""
    items = [override_items(r) for r in runs]
    keys: list[str] = []
    for its in items:
        keys += [k for k in its if k not in keys]
    out = {}
    for key in keys:
        texts, values = [], []
        for run, its in zip(runs, items, strict=True):
            if key in its:
                texts.append(its[key])
                values.append(comparable(its[key]))
            else:
                value = config_value(run, key)
                texts.append("" if value is None else _text(value))
                values.append(comparable(value))
        if len({repr(v) for v in values}) > 1:
            out[key] = texts
    return out


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def label_runs(runs: list[Run]) -> dict[str, list[str]]:
    """Set each run's label from the options that differ; returns those options."""
    options = differing_options(runs)
    for i, run in enumerate(runs):
        run.options = {k: v[i] for k, v in options.items()}
        run.label = " ".join(f"{k}={v}" for k, v in run.options.items()) or run.name
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in runs:  # the same options twice (or none differ): the directory tells them apart
        if seen[run.label] > 1:
            where = f"{run.path.parent.name}/{run.name}"
            run.label = where if run.label == run.name else f"{run.label} ({where})"
    return options


def metric_keys(runs: list[Run]) -> list[str]:
    """The registry's metric keys with a direction found in any run's records, first seen first."""
    keys: list[str] = []
    for run in runs:
        for record in run.records:
            for key, value in record.items():
                if key not in keys and number(value) is not None and not key.startswith("best/"):
                    keys.append(key)
    return [k for k in keys if k not in LOSSES and direction(k) is not None]


def loss_keys(runs: list[Run]) -> list[str]:
    return [k for k in LOSSES if any(k in r for run in runs for r in run.records)]


@dataclass
class Best:
    value: float
    step: int


def last_value(run: Run, key: str) -> float | None:
    for record in reversed(run.records):
        value = number(record.get(key))
        if value is not None:
            return value
    return None


def best_value(run: Run, key: str, lower: bool) -> Best | None:
    """The best finite value of ``key`` and its step (the earliest step among equal ones)."""
    best = None
    for record in run.records:
        value = number(record.get(key))
        if value is None or not math.isfinite(value):
            continue
        if best is None or (value < best.value if lower else value > best.value):
            best = Best(value, record["step"])
    return best


@dataclass
class Table:
    """The rows of a report, in order, and what they show."""

    runs: list[Run]
    options: dict[str, list[str]]
    losses: list[str]
    metrics: list[str]
    directions: dict[str, bool]

    def sortable_keys(self) -> list[str]:
        return [*self.metrics, *self.losses, "steps", "wall_s", "cpu_s"]


def build_table(runs: list[Run], sort: str | None = None) -> Table:
    """Label the runs, find their metrics, and order them by ``sort`` (a ConfigError, exit 2,
    names the keys it may be when it is none of them)."""
    options = label_runs(runs)
    metrics = metric_keys(runs)
    table = Table(runs=list(runs), options=options, losses=loss_keys(runs), metrics=metrics,
                  directions={k: bool(direction(k)) for k in metrics})
    if sort:
        sort_rows(table, sort)
    return table


def sort_rows(table: Table, key: str) -> None:
    if key not in table.sortable_keys():
        known = ", ".join(table.sortable_keys())
        raise ConfigError(f"sort={key}: not a metric of these runs; sortable: {known}")
    if key in table.directions:
        lower = table.directions[key]

        def value(run: Run) -> float | None:
            best = best_value(run, key, lower)
            if best is None:
                return None
            return best.value if lower else -best.value
    elif key in table.losses:
        def value(run: Run) -> float | None:
            v = last_value(run, key)
            return v if v is not None and math.isfinite(v) else None
    else:
        def value(run: Run) -> float | None:
            return float(getattr(run, key)) if getattr(run, key) is not None else None
    # stable: runs without a value keep their order after the others
    table.runs.sort(key=lambda r: (value(r) is None, value(r) if value(r) is not None else 0.0))


# ---------------------------------------------------------------------------------------------
# The cells.


def fmt(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def steps_text(run: Run) -> str:
    return f"{run.steps}/{run.total_steps}" if run.total_steps else str(run.steps)


@dataclass
class Column:
    """One column: its title, its text in each row, and the number it sorts by (HTML)."""

    title: str
    texts: list[str]
    values: list[float | None]
    higher_is_better: bool = False  # report.html's first click sorts it highest first


def columns(table: Table) -> list[Column]:
    """The table's columns (runs.md, the console, report.html); a metric's best value and its step
    share one cell, ``0.9375 @ 1200``, sorted by the value (runs.csv has them apart)."""
    runs = table.runs
    cols = [Column("run", [r.label for r in runs], [None] * len(runs))]
    for key in table.options:
        cells = [r.options[key] for r in runs]
        cols.append(Column(key, cells, [number(comparable(c)) for c in cells]))
    cols.append(Column("status", [r.status for r in runs], [None] * len(runs)))
    cols.append(Column("steps", [steps_text(r) for r in runs], [float(r.steps) for r in runs]))
    cols.append(Column("wall", [duration(r.wall_s) for r in runs], [r.wall_s for r in runs]))
    cols.append(Column("cpu", [duration(r.cpu_s) for r in runs], [r.cpu_s for r in runs]))
    for key in table.losses:
        values = [last_value(r, key) for r in runs]
        cols.append(Column(key, [fmt(v) for v in values], values))
    for key in table.metrics:
        lower = table.directions[key]
        last = [last_value(r, key) for r in runs]
        best = [best_value(r, key, lower) for r in runs]
        arrow = "↓" if lower else "↑"
        cols.append(Column(f"{key} last", [fmt(v) for v in last], last, not lower))
        cols.append(Column(f"{key} best {arrow} (step)",
                           [f"{fmt(b.value)} @ {b.step}" if b else "" for b in best],
                           [b.value if b else None for b in best], not lower))
    return cols


def markdown(table: Table) -> str:
    """The table as aligned Markdown (runs.md, and what the console shows)."""
    cols = columns(table)
    cols.append(Column("note", [r.note for r in table.runs], [None] * len(table.runs)))
    if not any(cols[-1].texts):
        cols.pop()
    cells = [[c.title.replace("|", "\\|"), *(t.replace("|", "\\|") for t in c.texts)] for c in cols]
    widths = [max(len(t) for t in col) for col in cells]

    def line(i: int) -> str:
        return "| " + " | ".join(col[i].ljust(w) for col, w in zip(cells, widths, strict=True)) + " |"

    rows = [line(0), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    rows += [line(i + 1) for i in range(len(table.runs))]
    return "\n".join(rows) + "\n"


def csv_text(table: Table) -> str:
    """runs.csv: one row per run; numbers unformatted (seconds, full precision), the directory
    and the note included."""
    runs = table.runs
    header = ["run", "dir", *table.options, "status", "steps", "total_steps", "wall_s", "cpu_s",
              *table.losses]
    for key in table.metrics:
        header += [f"{key}_last", f"{key}_best", f"{key}_best_step"]
    header.append("note")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for run in runs:
        row: list[object] = [run.label, str(run.path)]
        row += [run.options[key] for key in table.options]
        row += [run.status, run.steps, "" if run.total_steps is None else run.total_steps,
                _raw(run.wall_s), _raw(run.cpu_s)]
        row += [_raw(last_value(run, k)) for k in table.losses]
        for key in table.metrics:
            best = best_value(run, key, table.directions[key])
            row += [_raw(last_value(run, key)), _raw(best.value if best else None),
                    best.step if best else ""]
        row.append(run.note)
        writer.writerow(row)
    return out.getvalue()


def _raw(value: float | None) -> str:
    return "" if value is None else repr(float(value)) if not math.isfinite(value) else f"{value:.6g}"


def write_tables(table: Table, out: Path) -> tuple[Path, Path]:
    """runs.csv and runs.md in ``out``."""
    csv_path, md_path = out / "runs.csv", out / "runs.md"
    csv_path.write_text(csv_text(table), encoding="utf-8")
    md_path.write_text(markdown(table), encoding="utf-8")
    return csv_path, md_path
