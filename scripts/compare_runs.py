"""Behaviour unchanged: record short runs of a set of configurations, then compare two records.

Each configuration in CONFIGS runs through the real CLI (``python -m gan_cli.cli``) in a
subprocess on one CPU thread, into its own temporary run directory, with no W&B and offline data
only (Debian's Fashion-MNIST, the toy sets, scikit-image's rocket). ``record`` keeps each run's
metrics.jsonl and checkpoints/last.pt in OUT_DIR/NAME/; ``compare`` checks that two records hold
the same metrics (wall-clock fields dropped) and bitwise the same checkpoints.

    export PYTHONPATH=$PWD OMP_NUM_THREADS=1 WANDB_SILENT=true
    # the reference, on the code before a restructure (about 2-4 minutes on one CPU core):
    .venv/bin/python scripts/compare_runs.py record /work/behaviour/before
    # the same on the code after it, then the comparison (exit status 1 if anything differs):
    .venv/bin/python scripts/compare_runs.py record /work/behaviour/after
    .venv/bin/python scripts/compare_runs.py compare /work/behaviour/before /work/behaviour/after
    # a few configurations only:
    .venv/bin/python scripts/compare_runs.py record /tmp/rec --only default singan

The record runs the gan_cli of the checkout this script lies in (its PYTHONPATH is set to it).
In a checkpoint, differences in the saved config's ``_target_`` strings (a class may move), in
path or time fields and in the order of the config's or a metrics record's keys are reported, not
counted; everything else must be equal (a state dict's key order included).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# Shared shrinkers. Every run: one thread, no W&B, figures and checkpoints only at the last step.
QUIET = ["logger=none", "hardware.num_threads=1", "train.sample_every_steps=1000",
         "train.ckpt_every_steps=1000"]
# Narrow networks on 256 real Fashion-MNIST images (tests/test_train_resnet.py's TINY)
SMALL_IMAGES = ["dataset.limit=256", "train.batch_size=16", "model.generator.width=8",
                "model.discriminator.width=8"]
# 6 steps, logged at 3 and 6, the dataset's default metrics (fd_fashion, cis_fashion, pr on the
# shipped Fashion-MNIST CNN) at step 6 on a few samples
IMAGE_RUN = ["train.steps=6", "train.log_every_steps=3", "metrics.every_steps=6",
             "metrics.num_samples=64", "metrics.num_real=128"]
STYLE_SMALL = ["model.generator.channel_base=112", "model.generator.channel_max=16",
               "model.discriminator.channel_base=112", "model.discriminator.channel_max=16",
               "model.z_dim=16", "model.generator.w_dim=16", "model.generator.mapping_layers=2"]

# name -> gan-train overrides (QUIET is added to each)
CONFIGS: dict[str, list[str]] = {
    # DCGAN on Fashion-MNIST, the non-saturating loss, Adam: gan-train with no overrides
    "default": [*SMALL_IMAGES, *IMAGE_RUN],
    # ring8's tuned recipe (MLP, ns + lazy R1 every 16 steps, EMA, the mode metrics with the
    # Jacobian threshold), its own batch of 256
    "ring8_tuned": ["dataset=ring8", "train.steps=20", "train.log_every_steps=5",
                    "metrics.every_steps=10"],
    "wgan_gp_dcgan": ["loss=wgan_gp", "model=dcgan", *SMALL_IMAGES, *IMAGE_RUN],
    "began": ["loss=began", *SMALL_IMAGES, *IMAGE_RUN],
    # lr_g and lr_d decay linearly to 0 over the 6 steps (lr_g, lr_d logged)
    "cdcgan_hinge_decay": ["model=cdcgan", "loss=hinge", "optimizer.lr_decay=linear",
                           *SMALL_IMAGES, *IMAGE_RUN],
    "sngan_ema": ["model=sngan", "loss=hinge", "ema.half_life_kimg=0.1", *SMALL_IMAGES, *IMAGE_RUN],
    "stylegan2": ["experiment=stylegan2_fashion_cpu", *STYLE_SMALL, "dataset.limit=256",
                  "train.batch_size=16", "train.steps=4", "train.log_every_steps=2",
                  "metrics.every_steps=4", "metrics.num_samples=64", "metrics.num_real=128"],
    # three levels of 2 steps each (tests/test_train_cascade.py's LAPGAN, shorter)
    "lapgan": ["experiment=lapgan_fashion", "dataset.limit=128", "train.batch_size=16",
               "train.steps=6", "train.log_every_steps=2", "metrics.every_steps=6",
               "metrics.num_samples=64", "metrics.num_real=128"],
    # rocket at 64 px: three scales of 2 steps each, SiFID at the end
    "singan": ["experiment=singan_cpu", "dataset.max_size=64", "train.steps=6",
               "train.log_every_steps=2", "metrics.every_steps=6"],
    # edges -> Fashion-MNIST (tests/test_train_pix2pix.py's TINY), paired metrics at step 4
    "pix2pix": ["experiment=pix2pix_fashion", "dataset.limit=80", "train.batch_size=16",
                "model.generator.width=4", "model.discriminator.width=4", "train.steps=4",
                "train.log_every_steps=2", "metrics.every_steps=4", "metrics.num_samples=64"],
    # a DataLoader with one worker instead of one tensor in memory; 64 images cross epochs
    "streamed": ["dataset.in_memory=false", "dataset.num_workers=1", "dataset.limit=64",
                 "train.batch_size=16", "model.generator.width=8", "model.discriminator.width=8",
                 *IMAGE_RUN],
}

# metrics.jsonl keys measured by the wall clock or the machine (imgs_per_s, peak_rss_mib:
# gan_cli/training/loop.py)
WALL_CLOCK = re.compile(r"per_s$|_mib$|(^|[_/])(time|seconds|elapsed|timestamp)($|[_/])")


# ---------------------------------------------------------------------------------------------
# record


def record(out_dir: Path, names: list[str]) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled",
           "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    failed, t_all = [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compare_runs_") as tmp:
        env["GAN_CLI_CACHE"] = str(Path(tmp) / "cache")  # reference statistics computed afresh
        for name in names:
            overrides = [*QUIET, *CONFIGS[name]]
            run_dir, dest = Path(tmp) / name, out_dir / name
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "gan_cli.cli", *overrides,
                                   f"hydra.run.dir={run_dir}"], capture_output=True, text=True,
                                  env=env, cwd=tmp, timeout=900)
            seconds = time.perf_counter() - t0
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir()
            (dest / "overrides.txt").write_text("\n".join(overrides) + "\n")
            if proc.returncode != 0:
                failed.append(name)
                print(f"{name}: FAILED (exit {proc.returncode}, {seconds:.1f} s)\n{proc.stderr[-3000:]}")
                continue
            shutil.copy(run_dir / "metrics.jsonl", dest / "metrics.jsonl")
            shutil.copy(run_dir / "checkpoints" / "last.pt", dest / "last.pt")
            print(f"{name}: {seconds:.1f} s", flush=True)
    print(f"recorded {len(names) - len(failed)}/{len(names)} in {out_dir} "
          f"({time.perf_counter() - t_all:.0f} s)")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# compare


def _is_time_key(path: str) -> bool:
    return bool(WALL_CLOCK.search(path.rsplit(".", 1)[-1]))


def compare_values(a: Any, b: Any, where: str, diffs: list[str], notes: list[str]) -> None:
    """Append to ``diffs`` every path where ``a`` and ``b`` differ (tensors bitwise, with dtype
    and shape); to ``notes`` the allowed ones (config ``_target_`` strings, paths, times)."""
    import torch

    at = where or "<root>"
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            diffs.append(f"{at} (tensor vs {type(b if isinstance(a, torch.Tensor) else a).__name__})")
        elif a.dtype != b.dtype or a.shape != b.shape:
            diffs.append(f"{at} ({a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)})")
        elif not torch.equal(a, b):
            diffs.append(f"{at} (values)")
    elif isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() ^ b.keys(), key=str):
            diffs.append(f"{where + '.' if where else ''}{k} (in {'A' if k in a else 'B'} only)")
        if a.keys() == b.keys() and list(a) != list(b):  # a state dict's order is its modules'
            order = f"{at} (key order: {_short(list(a))} vs {_short(list(b))})"
            (notes if where.startswith(("config", "metrics.jsonl")) else diffs).append(order)
        for k in (k for k in a if k in b):
            compare_values(a[k], b[k], f"{where}.{k}" if where else str(k), diffs, notes)
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and type(a) is type(b):
        if len(a) != len(b):
            diffs.append(f"{at} (length {len(a)} vs {len(b)})")
        else:
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                compare_values(x, y, f"{where}.{i}", diffs, notes)
    else:
        both_nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        if type(a) is type(b) and (a == b or both_nan):
            return
        allowed = (where.startswith("config.") and where.endswith("._target_")) or _is_time_key(where) \
            or (isinstance(a, str) and isinstance(b, str) and a.startswith("/") and b.startswith("/"))
        (notes if allowed else diffs).append(f"{at} ({_short(a)} vs {_short(b)})")


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width] + "..."


def compare_metrics(a: Path, b: Path, diffs: list[str], notes: list[str]) -> None:
    """Every record of two metrics.jsonl files, wall-clock keys dropped; a different key order
    within a record is reported in ``notes``."""
    lines_a, lines_b = a.read_text().splitlines(), b.read_text().splitlines()
    if len(lines_a) != len(lines_b):
        diffs.append(f"metrics.jsonl ({len(lines_a)} vs {len(lines_b)} lines)")
    for i, (la, lb) in enumerate(zip(lines_a, lines_b, strict=False), 1):  # extra lines: counted above
        ra, rb = (({k: v for k, v in json.loads(line).items() if not WALL_CLOCK.search(k)})
                  for line in (la, lb))
        compare_values(ra, rb, f"metrics.jsonl:{i}", diffs, notes)


def compare_config(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """Differences and allowed differences of one configuration's two records."""
    import torch

    diffs: list[str] = []
    notes: list[str] = []
    for d in (a, b):
        missing = [f for f in ("overrides.txt", "metrics.jsonl", "last.pt") if not (d / f).is_file()]
        if missing:
            return [f"{d}: missing {', '.join(missing)}"], notes
    if (a / "overrides.txt").read_text() != (b / "overrides.txt").read_text():
        diffs.append("overrides.txt (the runs used different overrides)")
    compare_metrics(a / "metrics.jsonl", b / "metrics.jsonl", diffs, notes)
    ckpt_a = torch.load(a / "last.pt", map_location="cpu", weights_only=True)
    ckpt_b = torch.load(b / "last.pt", map_location="cpu", weights_only=True)
    ckpt_diffs: list[str] = []
    compare_values(ckpt_a, ckpt_b, "", ckpt_diffs, notes)
    diffs.extend(f"last.pt:{d}" for d in ckpt_diffs)
    return diffs, notes


def compare(a: Path, b: Path, names: list[str], shown: int = 4) -> int:
    status = 0
    for name in names:
        diffs, notes = compare_config(a / name, b / name)
        if diffs:
            status = 1
            more = f", ... ({len(diffs) - shown} more)" if len(diffs) > shown else ""
            counted = f"{len(diffs)} difference{'s' if len(diffs) > 1 else ''}"
            print(f"{name}: {counted}: {'; '.join(diffs[:shown])}{more}")
        else:
            print(f"{name}: identical")
        for note in notes:
            print(f"  {name}: allowed difference (reported only): {note}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="run every configuration, keep metrics.jsonl and last.pt")
    rec.add_argument("out_dir", type=Path)
    cmp = sub.add_parser("compare", help="compare two records; exit 1 if any configuration differs")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    for p in (rec, cmp):
        p.add_argument("--only", nargs="+", choices=sorted(CONFIGS), metavar="NAME",
                       help=f"these configurations only (of {', '.join(CONFIGS)})")
    args = parser.parse_args(argv)
    names = args.only or list(CONFIGS)
    if args.command == "record":
        return record(args.out_dir, names)
    return compare(args.a, args.b, names)


if __name__ == "__main__":
    sys.exit(main())
