"""The data path: the share of gan-cli's training step spent waiting for data.

gan-cli has two image DataSources (gan_cli/data/sources.py): the *tensor path*, the whole
dataset as one uint8 tensor on the training device, a batch gathered and converted to [-1, 1]
on the device; and the *DataLoader path*, a torch DataLoader (with workers) whose uint8 batches
are copied to the device and converted there. This script trains gan-cli's real step
(``gan_cli.training.step.GANStep``, the networks, loss and optimizers built by
``gan_cli.build.build_pair``) on four sources:

    source         data                                               path        step
    cifar_tensor   synthetic uint8 50,000 x 3 x 32 x 32 (CIFAR-10's   tensor      DCGAN 32 px
                   size and shape; CIFAR-10 itself is not installed)
    cifar_loader   the same tensor through a DataLoader               DataLoader  DCGAN 32 px
    folder_loader  a temporary folder of 2,048 generated 64 x 64 RGB  DataLoader  DCGAN 64 px
                   PNG files (dataset=image_folder, its defaults)
    folder_tensor  the same folder read once into memory              tensor      DCGAN 64 px
                   (dataset.in_memory=true)

DCGAN: width 64, z 100, the non-saturating loss, Adam, batch 64 (the default experiment's step).
DataLoader workers: each dataset schema's default (``num_workers``: 0 for a tensor dataset out of
memory, 2 for an image folder; gan_cli/config/data.py), or ``--workers``. The generated images are
smooth random colour fields (8 x 8 noise upsampled bilinearly), so PNG decoding costs about what
it costs on photographs of that size; their content does not matter to the timing.

What is measured, per step after ``--warmup`` steps:

    data_wait_ms   host time inside the source's ``next()``: the DataLoader's wait for a batch
                   (its workers decode ahead of the step), the copy to the device and the
                   conversion to [-1, 1]; for the tensor path the gather and conversion
    step_ms        the whole generator step (its one D update included), data_wait_ms included
    share          data_wait_ms / step_ms

On a GPU the step is synchronised before and after each ``next()`` (so that data_wait_ms is the
data's own time and not the queue of earlier kernels) and at the end of each step; step_ms then
includes that synchronisation. The loop's statistics are flushed every 50 steps, as
``train.log_every_steps`` does by default.

    python scripts/bench_data.py                    # CPU, every source, 50 timed steps each
    python scripts/bench_data.py --threads 1 --workers 1
    python scripts/bench_data.py --device cuda
    python scripts/bench_data.py --dry              # tiny data and networks, 2 steps: checks it runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_cli.build import build_pair, configure_torch
from gan_cli.config.data import CIFAR10Config, ImageFolderConfig
from gan_cli.data.file_datasets import TensorDataset
from gan_cli.data.images import image_folder
from gan_cli.data.sources import LoaderImageSource, TensorImageSource
from gan_cli.latents import Noise
from gan_cli.stats import Collector
from gan_cli.training.curriculum import StepPlan
from gan_cli.training.nonfinite import NonFinitePolicy
from gan_cli.training.step import Autocast, GANStep

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import compose_config, machine_line  # noqa: E402 - the script's own directory

LOG_EVERY_STEPS = 50  # the collector's flush interval (train.log_every_steps' default for images)
SOURCES = ("cifar_tensor", "cifar_loader", "folder_loader", "folder_tensor")


@dataclass(frozen=True)
class Sizes:
    """How big the data and networks are (the full run, or --dry's tiny one)."""

    cifar_images: int = 50_000
    folder_images: int = 2_048
    width: int = 64  # DCGAN width (channels)
    batch_size: int = 64
    steps: int = 50
    warmup: int = 10


DRY = Sizes(cifar_images=512, folder_images=96, width=8, batch_size=16, steps=2, warmup=1)


def write_png_folder(folder: Path, count: int, side_px: int, seed: int = 0) -> list[Path]:
    """``count`` RGB PNG files ``side_px`` x ``side_px`` in ``folder``: smooth random colour
    fields (8 x 8 uniform noise upsampled bilinearly).

    Returns:
        The files' paths, in order.
    """
    g = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, count, 256):
        n = min(256, count - start)
        coarse = torch.rand(n, 3, 8, 8, generator=g)
        images = F.interpolate(coarse, size=(side_px, side_px), mode="bilinear", align_corners=False)
        pixels = (images * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        for i in range(n):
            path = folder / f"{start + i:06d}.png"
            Image.fromarray(np.ascontiguousarray(pixels[i])).save(path)
            paths.append(path)
    return paths


class TimedSource:
    """A DataSource whose ``next()`` is timed (host seconds, one entry per call); every other
    attribute is the wrapped source's."""

    def __init__(self, source: Any, device: torch.device) -> None:
        self.source = source
        self.device = device
        self.wait_s: list[float] = []

    def next(self) -> Any:
        _sync(self.device)
        t0 = time.perf_counter()
        batch = self.source.next()
        _sync(self.device)
        self.wait_s.append(time.perf_counter() - t0)
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.source, name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_source(name: str, sizes: Sizes, device: torch.device, tmp: Path, workers: int | None,
                seed: int = 0) -> tuple[Any, str]:
    """The DataSource ``name`` (see the module docstring) and a description of its data."""
    run = {"batch_size": sizes.batch_size, "device": device, "seed": seed}
    if name.startswith("cifar"):
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (sizes.cifar_images, 3, 32, 32), dtype=torch.uint8, generator=g)
        what = f"synthetic uint8 {sizes.cifar_images:,} x 3x32x32"
        if name == "cifar_tensor":
            return TensorImageSource(images, None, 0, name="synthetic CIFAR", **run), what
        num_workers = CIFAR10Config.num_workers if workers is None else workers
        return (LoaderImageSource(TensorDataset(images, None), (3, 32, 32), 0, num_workers=num_workers,
                                  name="synthetic CIFAR", **run),
                f"{what}, DataLoader, {num_workers} workers")
    folder = tmp / "png64"
    if not folder.is_dir():
        write_png_folder(folder, sizes.folder_images, 64, seed)
    what = f"{sizes.folder_images:,} PNG files 64x64 RGB"
    num_workers = ImageFolderConfig.num_workers if workers is None else workers
    in_memory = name == "folder_tensor"
    source = image_folder(str(folder), resolution=64, channels=3, in_memory=in_memory,
                          num_workers=num_workers, **run)
    return source, (f"{what}, read into memory" if in_memory else
                    f"{what}, DataLoader, {num_workers} workers")


def measure(source: TimedSource, step: Callable[[int], None], collector: Collector, sizes: Sizes,
            device: torch.device) -> dict[str, float]:
    """Run ``sizes.warmup`` then ``sizes.steps`` generator steps; the timed steps' means.

    Returns:
        ``data_wait_ms``, ``step_ms`` (means over the timed steps) and ``share`` (their ratio).
    """
    step_s: list[float] = []
    for i in range(sizes.warmup + sizes.steps):
        t0 = time.perf_counter()
        step(i)
        if (i + 1) % LOG_EVERY_STEPS == 0:
            collector.flush()  # the loop's host synchronisation at logging steps
        _sync(device)
        step_s.append(time.perf_counter() - t0)
    waits = source.wait_s[-sizes.steps:]  # one next() per step (n_critic = 1)
    data_wait_ms = 1000 * statistics.fmean(waits)
    step_ms = 1000 * statistics.fmean(step_s[-sizes.steps:])
    return {"data_wait_ms": data_wait_ms, "step_ms": step_ms, "share": data_wait_ms / step_ms}


def bench_source(name: str, sizes: Sizes, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Build ``name`` and gan-cli's DCGAN step at its resolution; measure the data's share."""
    device = torch.device(args.device)
    side = 32 if name.startswith("cifar") else 64
    cfg = compose_config([
        "model=dcgan", "loss=ns", "optimizer=adam", f"train.batch_size={sizes.batch_size}",
        f"model.generator.width={sizes.width}", f"model.discriminator.width={sizes.width}",
        f"hardware={'gpu' if device.type == 'cuda' else 'cpu'}",
        f"hardware.num_threads={args.threads}", "logger=none", *args.overrides])
    configure_torch(cfg.hardware, device)
    raw, what = make_source(name, sizes, device, tmp, args.workers)
    source = TimedSource(raw, device)
    pair = build_pair(cfg, source.info, device, sizes.batch_size)
    noise = Noise(torch.Generator(device=device).manual_seed(0), cfg.model.z_dim, device)
    collector = Collector()
    step_fn = GANStep(data=source, noise=noise,
                      nonfinite=NonFinitePolicy(cfg.train.nonfinite, device, tmp), collector=collector,
                      autocast=Autocast(cfg.hardware.precision, device),
                      channels_last=cfg.hardware.channels_last, ema_cfg=cfg.ema)
    b = sizes.batch_size
    result = measure(source, lambda i: step_fn(pair, i, StepPlan(0, b, b, None, (i + 1) * b)),
                     collector, sizes, device)
    return {"source": name, "data": what, "step": f"DCGAN {side} px, width {sizes.width}, "
            f"batch {sizes.batch_size}", **result}


def table_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """A Markdown table of the results and one ``share <source> X.X%`` line per source."""
    lines = ["| source | data | step | data_wait_ms | step_ms | share |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['source']} | {r['data']} | {r['step']} | {r['data_wait_ms']:.2f} | "
              f"{r['step_ms']:.1f} | {100 * r['share']:.1f}% |" for r in rows]
    lines.append("")
    lines += [f"share {r['source']} {100 * r['share']:.1f}%" for r in rows]
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", default=",".join(SOURCES),
                   help=f"comma-separated (default: all: {','.join(SOURCES)})")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=0, help=f"timed steps per source (default {Sizes.steps})")
    p.add_argument("--warmup", type=int, default=-1, help=f"untimed steps first (default {Sizes.warmup})")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--workers", type=int, default=None,
                   help="DataLoader workers for both loader sources (default: each schema's own)")
    p.add_argument("--dry", action="store_true", help="tiny data and networks, 2 steps: checks it runs")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("overrides", nargs="*", help="gan-train overrides for the step (hardware.*, ...)")
    args = p.parse_args(argv)
    sizes = DRY if args.dry else Sizes()
    if args.steps:
        sizes = Sizes(**{**sizes.__dict__, "steps": args.steps})
    if args.warmup >= 0:
        sizes = Sizes(**{**sizes.__dict__, "warmup": args.warmup})
    names = [n.strip() for n in args.sources.split(",") if n.strip()]
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        p.error(f"unknown source(s) {unknown}; choose from {list(SOURCES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(machine_line(device), flush=True)
    if args.dry:
        print("# --dry: tiny data and networks, 2 steps: the figures say nothing about speed")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        for name in names:
            rows.append(bench_source(name, sizes, args, Path(tmp)))
            r = rows[-1]
            print(f"{name}: data_wait {r['data_wait_ms']:.2f} ms / step {r['step_ms']:.1f} ms = "
                  f"{100 * r['share']:.1f}%  ({r['data']}; {r['step']})", flush=True)
    print()
    print("\n".join(table_lines(rows)))
    if args.json is not None:
        args.json.write_text(json.dumps({"machine": machine_line(device), "steps": sizes.steps,
                                         "warmup": sizes.warmup, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
