"""``curves.png``: a run's losses, statistics and metrics against steps, from its ``metrics.jsonl``.

Redrawn with every sample figure (gan_cli/training/outputs.py), so a run without W&B can be
watched from its directory; ``python -m gan_cli.curves RUN_DIR`` draws it for any run. The file
is read as data: one JSON object per line (``json.loads`` only; a line that is not a JSON object,
such as the half-written last line of a running job, is skipped).

Panels, one per group of keys (:func:`curve_panels`):

* ``losses``: loss_d and loss_g;
* one panel per other statistic the loss or the step reports (gp, wasserstein, k_t, ...), each
  on its own scale, except that statistics sharing the prefix before their first underscore
  share a panel (``d_*``: d_real and d_fake);
* ``learning rates``: lr_g and lr_d when a schedule logs them;
* one panel per metric score (fd_fashion, modes_captured, ...: the keys the metric registry
  gives a direction; their standard deviations and counts are left out);
* ``images/s``: the training speed.

``step``, ``kimg`` and the tracker's ``best/...`` records are not curves, nor is a series whose
values are all the same (no panel for it). The x axis is generator steps, with kimg (thousands of
real samples shown to D; n_critic of them per step) on a second axis above. Each series is drawn
raw and faint with an exponentially smoothed line over it (TensorBoard's debiased smoothing,
:data:`SMOOTHING`; a series of fewer than :data:`MIN_SMOOTHED` points as it is); a panel whose
positive values span more than :data:`LOG_SPAN` is on a log axis.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import numpy as np

from gan_cli.panels import place_panels

log = logging.getLogger("gan_cli")

# not drawn: the x axes, and the peak memory that only a run's last record holds (training/memory.py)
NOT_CURVES = ("step", "kimg", "peak_rss_mib", "cuda_max_allocated_mib")
LOSSES = ("loss_d", "loss_g")
LEARNING_RATES = ("lr_g", "lr_d")
SPEED = ("imgs_per_s",)
#: the weight of the past in the smoothed line (TensorBoard's slider; 0 = raw)
SMOOTHING = 0.6
#: fewer points than this (a metric's few evaluations) are drawn as they are, not smoothed
MIN_SMOOTHED = 10
#: a panel whose positive values span more than this ratio (max / min) gets a log y axis
LOG_SPAN = 100.0
#: margins and gaps around the panels, in inches: the panel's title and the kimg axis above it, the
#: step axis below it, the y tick labels and label to its left. Fixed rather than measured by
#: fig.tight_layout(), which draws the figure once more to measure its texts: half the CPU time
#: of each redraw of curves.png, on every sample step.
MARGIN_IN = {"left": 0.72, "right": 0.15, "top": 0.62, "suptitle": 0.3, "bottom": 0.5,
             "gap_w": 0.72, "gap_h": 1.12}


def read_records(path: str | Path) -> list[dict]:
    """The JSON objects of ``metrics.jsonl``, in order; lines that are not one are skipped."""
    records = []
    path = Path(path)
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "kimg" in record:
            records.append(record)
    return records


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def curve_panels(records: list[dict]) -> dict[str, list[str]]:
    """Panel title -> the keys it plots, in first-seen order (see the module docstring)."""
    from gan_cli.metrics.registry import lower_is_better, metric_of

    keys: list[str] = []
    for record in records:
        for key, value in record.items():
            curve = key not in NOT_CURVES and not key.startswith("best/") and _is_number(value)
            if curve and key not in keys:
                keys.append(key)
    keys = [k for k in keys if not _constant(records, k)]
    panels: dict[str, list[str]] = {}
    losses = [k for k in LOSSES if k in keys]
    if losses:
        panels["losses"] = losses
    metrics = [k for k in keys if metric_of(k) is not None]
    special = {*LOSSES, *LEARNING_RATES, *SPEED, *metrics}
    stats = [k for k in keys if k not in special]
    for key in stats:
        prefix = key.split("_")[0]
        family = [k for k in stats if k.split("_")[0] == prefix] if "_" in key else [key]
        title = f"{prefix}_*" if len(family) > 1 else key
        panels.setdefault(title, family)
    rates = [k for k in LEARNING_RATES if k in keys]
    if rates:
        panels["learning rates"] = rates
    for key in metrics:
        if lower_is_better(key) is not None:  # scores; their std and counts are not drawn
            panels[key] = [key]
    if SPEED[0] in keys:
        panels["images/s"] = list(SPEED)
    return panels


def _constant(records: list[dict], key: str) -> bool:
    """Whether ``key`` has two or more finite values, all the same (num_modes, a fixed k_t)."""
    values = [float(r[key]) for r in records if _is_number(r.get(key)) and math.isfinite(r[key])]
    return len(values) > 1 and len(set(values)) == 1


def smoothed(ys: list[float], weight: float = SMOOTHING) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average with weight ``weight`` on the past,
    debiased (divided by 1 - weight^n) so the first values are not pulled to 0; non-finite
    values stay as they are and are skipped by the average."""
    out, last, n = [], 0.0, 0
    for y in ys:
        if not math.isfinite(y):
            out.append(y)
            continue
        n += 1
        last = last * weight + (1 - weight) * y
        out.append(last / (1 - weight**n))
    return out


def log_scale(values: list[float]) -> bool:
    """Whether a panel of these values wants a log axis: all finite ones positive, spanning
    more than LOG_SPAN."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > LOG_SPAN


def curve_data(records: list[dict], keys: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """key -> (step, value) of the records that hold a number for it."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for key in keys:
        xs = [float(r["step"]) for r in records if _is_number(r.get(key))]
        ys = [float(r[key]) for r in records if _is_number(r.get(key))]
        out[key] = (xs, ys)
    return out


def plot_curves(records: list[dict], path: str | Path, title: str = "") -> dict[str, dict]:
    """Draw the panels of ``records`` into ``path`` (PNG); returns panel -> curve_data, what was drawn.

    Non-finite values (a diverged loss) leave gaps in their curve.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = curve_panels(records)
    drawn = {title_: curve_data(records, keys) for title_, keys in panels.items()}
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    steps = [float(r["step"]) for r in records if _is_number(r.get("step"))]
    kimgs = [float(r["kimg"]) for r in records if _is_number(r.get("step"))]
    for ax, (name, curves) in zip(axes.flat, drawn.items(), strict=False):
        for k, (key, (xs, ys)) in enumerate(curves.items()):
            colour = f"C{k}"
            if len(xs) < MIN_SMOOTHED:  # a few points (metrics): drawn as they are, with markers
                ax.plot(xs, ys, color=colour, linewidth=1.2, marker=".", label=key)
                continue
            ax.plot(xs, ys, color=colour, linewidth=0.8, alpha=0.3)
            ax.plot(xs, smoothed(ys), color=colour, linewidth=1.4, label=key)
        values = [y for _, ys in curves.values() for y in ys]
        if log_scale(values):
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel(_y_label(name, list(curves)), fontsize=8)
        if len(steps) > 1 and steps[-1] > steps[0]:
            top = ax.secondary_xaxis("top", functions=(
                lambda x: _interp(x, steps, kimgs), lambda k: _interp(k, kimgs, steps)))
            top.set_xlabel("kimg", fontsize=7)
            top.tick_params(labelsize=6)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize=7)
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no records yet", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    m = MARGIN_IN
    place_panels(fig, rows, cols, left=m["left"], right=m["right"], bottom=m["bottom"],
                 top=m["top"] + (m["suptitle"] if title else 0.0), gap_w=m["gap_w"], gap_h=m["gap_h"])
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)  # a viewer never sees a half-written file
    return drawn


def _interp(x, xp: list[float], fp: list[float]):
    """np.interp, extended linearly past both ends (the axes' margins) by the end segments' slopes."""
    x = np.asarray(x, dtype=float)
    out = np.interp(x, xp, fp)
    for end, other in ((0, 1), (-1, -2)):
        run = xp[end] - xp[other]
        slope = (fp[end] - fp[other]) / run if run else 0.0
        outside = x < xp[0] if end == 0 else x > xp[-1]
        out = np.where(outside, fp[end] + (x - xp[end]) * slope, out)
    return out


def _y_label(panel: str, keys: list[str]) -> str:
    """The y axis's label: what the panel's values are, with their unit where they have one."""
    named = {"losses": "loss", "learning rates": "learning rate", "images/s": "real images / s"}
    return named.get(panel, keys[0] if len(keys) == 1 else panel)


def save_curves(metrics_path: str | Path, out: str | Path) -> Path | None:
    """``curves.png`` of a run's ``metrics.jsonl``; None (nothing drawn) before the first record."""
    records = read_records(metrics_path)
    if not records:
        return None
    plot_curves(records, out, title=f"{Path(metrics_path).parent.name}: step {records[-1].get('step', '?')}")
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m gan_cli.curves RUN_DIR``: (re)draw RUN_DIR/curves.png."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gan_cli.curves RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(args[0])
    path = save_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
    if path is None:
        print(f"no records in {run_dir / 'metrics.jsonl'}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
