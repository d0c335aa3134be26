"""The seeds' two discriminator lessons on ring8 (shared/seeds/001 and 003), as README figures:
G trained against a frozen D, and D retrained from scratch.

Both start from the same run: the tuned ring8 defaults for 2,000 steps (8/8 modes), then resumed
to step 3,000 either with ``optimizer.lr_d=0`` (D frozen) or with ``train.reset_d_at=[2000]``
(D from scratch at step 2,000). The figures show G itself (``ema.for_samples=false``), D's panel
of the 2D view at steps 2,000, 2,250, 2,500 and 3,000, titled with the modes metrics of the
steps that have them (every 500).

Usage::

    python scripts/discriminator_lessons.py OUT_DIR   # three gan-train runs, then the figures

writes OUT_DIR/{base,frozen,reset}/ (run directories) and docs/img/ring8_frozen_d.png,
docs/img/ring8_reset_d.png.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = ["model=mlp", "dataset=ring8", "seed=0", "hardware.num_threads=1", "logger=none",
          "metrics.every_steps=500", "dataset.figure.optimal_d=true", "ema.for_samples=false"]
STEPS = (2000, 2250, 2500, 3000)


def gan_train(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "gan_cli.cli", *COMMON, *args], check=True, cwd=ROOT)


def runs(out: Path) -> dict[str, Path]:
    base, frozen, reset = out / "base", out / "frozen", out / "reset"
    gan_train(["train.steps=2000", "train.sample_every_steps=500", f"hydra.run.dir={base}"])
    for run_dir, extra in ((frozen, "optimizer.lr_d=0"), (reset, "train.reset_d_at=[2000]")):
        shutil.copytree(base, run_dir, ignore=shutil.ignore_patterns(".lock", "training.gif"))
        gan_train([f"resume={run_dir}", "train.steps=3000", "train.sample_every_steps=250", extra])
    return {"frozen": frozen, "reset": reset}


def montage(run_dir: Path, out: Path, title: str) -> Path:
    """D's panel (the left half of each frame) at STEPS, side by side, with the modes metrics."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    records = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        records[record["step"]] = record
    fig, axes = plt.subplots(1, len(STEPS), figsize=(4.2 * len(STEPS), 4.0), dpi=100)
    for ax, step in zip(axes, STEPS, strict=True):
        with Image.open(run_dir / "samples" / f"step_{step:08d}.png") as frame:
            width, height = frame.size
            ax.imshow(frame.convert("RGB").crop((0, 30, width // 2, height)))
        r = records.get(step, {})
        metrics = (f": {r['modes_captured']:.0f}/8 modes, {100 * r['high_quality_fraction']:.0f}% "
                   f"high quality" if "modes_captured" in r else "")
        ax.set_title(f"step {step}{metrics}", fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("Usage::")[1].strip().splitlines()[0], file=sys.stderr)
        return 2
    done = runs(Path(args[0]).resolve())
    img = ROOT / "docs" / "img"
    print(montage(done["frozen"], img / "ring8_frozen_d.png",
                  "ring8: G trained against D frozen at step 2,000 (optimizer.lr_d=0)"))
    print(montage(done["reset"], img / "ring8_reset_d.png",
                  "ring8: D retrained from scratch at step 2,000 (train.reset_d_at=[2000])"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
