"""The report's figures (matplotlib, Agg): one per metric with every run's curve overlaid against
steps, and the last sample figure of each run side by side, labelled with its options.

Non-finite values (a diverged loss) leave gaps in their curve. Files are written to a temporary
name and renamed, so a viewer never sees half a PNG.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from pathlib import Path

from gan_cli.report.runs import Run, number

#: Runs per row of samples.png.
SAMPLE_COLUMNS = 4


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    fig.savefig(tmp)
    _pyplot().close(fig)
    tmp.replace(path)
    return path


def _plain(text: str) -> str:
    """``text`` shown as written: matplotlib reads ``$...$`` as mathematics (and fails on bad TeX)."""
    return text.replace("$", r"\$")


def figure_name(key: str) -> str:
    """``curve_<key>.png`` with anything but letters, digits, ``_``, ``-`` and ``.`` as ``_``."""
    return "curve_" + re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".png"


def curve_figure(runs: list[Run], key: str, path: Path, direction: bool | None = None) -> Path | None:
    """Every run's ``key`` against steps in one figure; None when no run logged it."""
    series = []
    for run in runs:
        points = [(r["step"], number(r.get(key))) for r in run.records]  # steps are ints (read_run)
        points = [(s, v if math.isfinite(v) else math.nan) for s, v in points if v is not None]
        if points:
            series.append((run.label, points))
    if not series:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.4), dpi=100)
    for label, points in series:
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=_plain(textwrap.shorten(label, 48)), linewidth=1.3,
                marker="." if len(xs) < 30 else None)
    arrow = {True: " (lower is better)", False: " (higher is better)"}.get(direction, "")
    ax.set_title(_plain(key) + arrow, fontsize=10)
    ax.set_xlabel("step", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def samples_figure(runs: list[Run], path: Path) -> Path | None:
    """The last sample figure of each run that has one, side by side; None when none has."""
    shown = [r for r in runs if r.last_sample is not None]
    if not shown:
        return None
    plt = _pyplot()
    cols = min(SAMPLE_COLUMNS, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.7 * rows), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, run in zip(axes.flat, shown, strict=False):
        try:
            ax.imshow(plt.imread(run.last_sample))
        except (OSError, ValueError, SyntaxError):  # a broken PNG: the panel says so
            ax.text(0.5, 0.5, "unreadable figure", ha="center", va="center")
        step = run.last_sample.stem.removeprefix("step_").lstrip("0") or "0"
        ax.set_title(_plain("\n".join(textwrap.wrap(f"{run.label} (step {step})", 36))), fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
