"""Training speed of the models at one resolution: images per CPU second and per wall second.

Each setting is trained in this process (``gan_cli.training.loop.train``, the loop gan-train runs)
twice, for N and for 2N generator steps from the same seed; the difference of the two runs' CPU
time (``time.process_time``) and wall time is the cost of N steps, so building, data loading,
warm-up, figures and checkpoints cancel out. A growing model (ProGAN, StyleGAN) is timed at the
full resolution: its schedule is shortened to one step per stage, so both runs reach the last
stage within their first steps. Images are the real images shown to D (``kimg`` in metrics.jsonl).

Settings are gan-train overrides; with none, the CPU presets and the default DCGAN at 32 px:

    python scripts/bench_models.py                       # the four models, 32 px, batch 32, 1 thread
    python scripts/bench_models.py --steps 40 "dcgan train.batch_size=64"

CPU time is the fairer figure on a machine shared with other jobs (wall time then measures the
other jobs too); both are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs, validate
from gan_cli.training.loop import train

COMMON = ["logger=none", "hardware.num_threads=1", "metrics.every_steps=0", "dataset.limit=4096",
          "train.sample_every_steps=1000000", "train.ckpt_every_steps=1000000"]
GROW_FAST = ["model.schedule.training_kimg=0.001", "model.schedule.transition_kimg=0"]
DEFAULTS = {
    "dcgan": [],
    "progan": ["experiment=progan_fashion_cpu", *GROW_FAST],
    "stylegan": ["experiment=stylegan_fashion_cpu", *GROW_FAST],
    "stylegan2": ["experiment=stylegan2_fashion_cpu"],
}


def compose_train(overrides: list[str]):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    validate(cfg)
    return cfg


def timed_run(overrides: list[str], steps: int, run_dir: Path) -> tuple[float, float, float]:
    """CPU seconds, wall seconds and real images shown of one run of ``steps`` steps."""
    cfg = compose_train([*overrides, f"train.steps={steps}", f"train.log_every_steps={steps}"])
    cpu, wall = time.process_time(), time.perf_counter()
    train(cfg, run_dir)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    return cpu, wall, record["kimg"] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="*", help='"name override override ..." (default: the four models)')
    parser.add_argument("--steps", type=int, default=30, help="N: the timed steps")
    parser.add_argument("--resolution", type=int, default=32, help="dataset.resolution (px)")
    parser.add_argument("--batch", type=int, default=32, help="train.batch_size")
    args = parser.parse_args()
    logging.getLogger("gan_cli").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    settings = ({s.split()[0]: s.split()[1:] for s in args.settings} if args.settings
                else {name: [f"model={name}", *ov] if name == "dcgan" else ov
                      for name, ov in DEFAULTS.items()})
    print(f"{args.steps} steps at {args.resolution} px, batch {args.batch}, one thread")
    print(f"{'setting':<12}{'img/s (CPU)':>12}{'img/s (wall)':>14}{'ms/step (CPU)':>15}")
    for name, overrides in settings.items():
        full = [*COMMON, f"dataset.resolution={args.resolution}", f"train.batch_size={args.batch}",
                *overrides]
        with tempfile.TemporaryDirectory() as tmp:
            c1, w1, n1 = timed_run(full, args.steps, Path(tmp) / "a")
            c2, w2, n2 = timed_run(full, 2 * args.steps, Path(tmp) / "b")
        images = n2 - n1
        print(f"{name:<12}{images / (c2 - c1):>12.1f}{images / (w2 - w1):>14.1f}"
              f"{1000 * (c2 - c1) / args.steps:>15.1f}", flush=True)


if __name__ == "__main__":
    main()
