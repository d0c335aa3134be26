"""``curves.png``: a run's losses, statistics and metrics against kimg, from its ``metrics.jsonl``.

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

``step``, ``kimg`` and the tracker's ``best/...`` records are not curves. The x axis is kimg
(thousands of real samples shown to D).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

log = logging.getLogger("gan_cli")

NOT_CURVES = ("step", "kimg")
LOSSES = ("loss_d", "loss_g")
LEARNING_RATES = ("lr_g", "lr_d")
SPEED = ("imgs_per_s",)


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


def curve_data(records: list[dict], keys: list[str]) -> dict[str, tuple[list[float], list[float]]]:
    """key -> (kimg, value) of the records that hold a number for it."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for key in keys:
        xs = [float(r["kimg"]) for r in records if _is_number(r.get(key))]
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
    for ax, (name, curves) in zip(axes.flat, drawn.items(), strict=False):
        for key, (xs, ys) in curves.items():
            ax.plot(xs, ys, label=key, linewidth=1.2, marker="." if len(xs) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("kimg", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(curves) > 1:
            ax.legend(fontsize=7)
    if not panels:
        axes.flat[0].text(0.5, 0.5, "no records yet", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)  # a viewer never sees a half-written file
    return drawn


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
