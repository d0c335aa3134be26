"""The HTML pages, filled into the templates of ``gan_cli/report/templates/`` (no server, no
network: plain files that open from disk).

* ``report.html`` (gan-report): the run table, sortable by clicking a column, every figure and
  sample embedded as a ``data:`` URI, so the one file can be moved or mailed;
* ``training.html`` (every run on 2D data, rewritten at each figure step): the frames of the 2D
  training view (``samples/step_*.png``, beside it in the run directory) with play / pause and a
  step slider, and the run's curves (the panels of curves.png, gan_cli/curves.py) drawn in the
  page with a marker at the frame's step. It reads only the run's own files.

Every text from a run (labels, options, messages) is HTML-escaped; the training page's data is
JSON inside a ``<script type="application/json">`` with ``<`` escaped, so no value can close the
script element.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
from importlib import resources
from pathlib import Path

from gan_cli.report.table import Table, columns

#: Milliseconds per frame when the training view plays.
FRAME_MS = 400


def template(name: str) -> str:
    return resources.files("gan_cli.report").joinpath("templates", name).read_text(encoding="utf-8")


def fill(text: str, **parts: str) -> str:
    """The template's ``{{name}}`` slots filled in one pass (a value holding ``{{...}}`` stays)."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: parts[m.group(1)], text)


def write_atomic(path: Path, text: str) -> Path:
    """Write ``path`` through a temporary file in the same folder (a reader never sees half).

    An OSError (a full disk) removes the temporary file and is raised again naming ``path``, for
    the caller's one-line message (training/outputs.py: the figure step's, with the last good
    checkpoint)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two writers never share one
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    return path


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def table_html(table: Table) -> str:
    cols = columns(table)
    text_cols = {"run", "status", *table.options}
    head = "".join(f'<th class="{"text" if c.title in text_cols else "num"}" scope="col"'
                   f'{" data-first=descending" if c.higher_is_better else ""}>'
                   f"{html.escape(c.title).replace('_', '_<wbr>')}</th>" for c in cols)
    rows = []
    for i, run in enumerate(table.runs):
        cells = []
        for c in cols:
            value = c.values[i]
            attr = f' data-value="{value!r}"' if value is not None and math.isfinite(value) else ""
            cls = "text" if c.title in text_cols else "num"
            if c.title == "status":
                cls += " status-" + run.status.split()[0]
            title = f' title="{html.escape(run.note)}"' if c.title == "status" and run.note else ""
            cells.append(f'<td class="{cls}"{attr}{title}>{html.escape(c.texts[i])}</td>')
        rows.append(f'<tr data-dir="{html.escape(str(run.path))}">' + "".join(cells) + "</tr>")
    return f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>"


def report_page(table: Table, curves: list[tuple[str, Path]], samples: list[tuple[str, Path]],
                title: str, meta: str) -> str:
    """report.html's text: ``curves`` and ``samples`` are (caption, PNG) pairs, embedded."""
    figures = "\n".join(
        f'<figure><img src="{data_uri(p)}" alt="{html.escape(c)}"></figure>' for c, p in curves)
    shown = "\n".join(
        f'<figure><img src="{data_uri(p)}" alt="{html.escape(c)}"><figcaption>{html.escape(c)}'
        f"</figcaption></figure>" for c, p in samples)
    return fill(template("report.html"), title=html.escape(title), meta=html.escape(meta),
                table=table_html(table), curves=figures or "<p>no curves recorded</p>",
                samples=shown or "<p>no sample figures</p>")


def _finite_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def training_data(run_dir: Path) -> dict:
    """What training.html shows: its frames (relative paths) and its curves by panel, from the
    run's own ``samples/step_*.png`` and ``metrics.jsonl``."""
    from gan_cli.curves import curve_panels
    from gan_cli.report.runs import digits, number, read_jsonl, step_of

    frames = []
    for png in sorted((run_dir / "samples").glob("step_*.png")):
        step = digits(png.stem.removeprefix("step_"))
        if step is not None:
            frames.append({"step": step, "src": f"samples/{png.name}"})
    records = [r | {"step": step_of(r.get("step"))} for r in read_jsonl(run_dir / "metrics.jsonl")
               if step_of(r.get("step")) is not None and "kimg" in r]
    panels = {}
    for title, keys in curve_panels(records).items():
        panels[title] = {k: [[r["step"], _finite_or_none(r[k])] for r in records
                             if number(r.get(k)) is not None] for k in keys}
    return {"frames": frames, "panels": panels, "interval_ms": FRAME_MS}


def write_training_page(run_dir: str | Path) -> Path:
    """``RUN_DIR/training.html`` from the run's frames and records so far (atomic); an OSError
    (a full disk) is the caller's to report, like a figure's."""
    run_dir = Path(run_dir)
    data = training_data(run_dir)
    last = data["frames"][-1]["step"] if data["frames"] else 0
    payload = json.dumps(data, allow_nan=False).replace("<", "\\u003c")
    meta = (f"{len(data['frames'])} frames of the 2D training view, up to step {last}; "
            f"written at each figure step (reload to see new frames)")
    page = fill(template("training.html"), title=html.escape(f"{run_dir.name}: training"),
                meta=html.escape(meta), data=payload)
    return write_atomic(run_dir / "training.html", page)
