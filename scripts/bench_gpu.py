"""GPU benchmark: one call on a GPU machine, under ten minutes; a JSON file and a Markdown table.

Run it with scripts/bench_gpu.sh on a machine with one or more CUDA GPUs. Every case prints one
line as it finishes; a case that cannot be built is recorded as "not available", one that fails
as "failed: ..." and one that no longer fits the time budget (``--budget-s``) as "skipped", and
the others go on. At the end the results go to a JSON file and, as a Markdown table, into
docs/performance.md between the marker comments ``<!-- gpu-table -->`` and
``<!-- /gpu-table -->``.

    case       what                                                           reported
    dcgan64    DCGAN 64 px, width 64, z 100, ns loss, Adam, batch 128         images/s, peak memory,
               (Radford et al. 2016's batch): the plain loop of               gan-cli / plain fp32
               scripts/bench_train.py in fp32, gan-cli in fp32 (repeats
               alternating with the plain loop), gan-cli in bf16 +
               channels_last + torch.compile (one run)
    sngan32    SNGAN (Miyato et al. 2018) at 32 px, the paper's widths         images/s, peak memory,
               G 256 / D 128, hinge, 5 D steps, Adam (0, 0.9), batch 64:      gan-cli / plain fp32
               plain loop and gan-cli, fp32
    ddp        dcgan64 through ``gan-train`` (a subprocess): hardware=gpu     images/s of each, scaling
               against hardware=ddp hardware.devices=N (nccl) on the N GPUs   efficiency
               present, batch 128 per GPU (global batch N x 128)
    stylegan2  StyleGAN2 (Karras et al. 2020) at 32, 64 and 128 px, gan-cli   s/kimg, peak memory
               fp32 (and bf16 at 128 px), batch 32, in the setting of the
               published figure below

Scaling efficiency = (images/s on N GPUs) / (N x images/s on one GPU): 1 when N GPUs train N
times as fast; with one GPU present the case is "not available". s/kimg = 1000 / (real images
shown to D per second), the unit of stylegan2-ada-pytorch's logs.

The published figure: NVlabs/stylegan2-ada-pytorch, README, "Expected training time": 12.8-13.7
s/kimg at 128x128 on one Tesla V100, with its default ``--cfg=auto --aug=ada
--metrics=fid50k_full``. For one GPU at 128 px ``auto`` means (its train.py): batch 32,
channel_base 16384 (``fmaps`` 0.5), channel_max 512, 2 mapping layers, minibatch-stddev group 4,
Adam 0.0025 with betas (0, 0.99), R1 gamma = 0.0002 x 128^2 / 32 = 0.1024 every 16 D steps, path
length regularisation (weight 2) every 4 G steps, EMA of G with a 10 kimg half-life, style
mixing 0.9; fp16 in the 4 highest resolutions (conv_clamp 256) and ADA augmentation. gan-cli's
case uses the same networks, batch, optimizer and regularisation; it has no ADA, and runs fp32
(TF32 convolutions, torch's default) or bf16 autocast where theirs runs fp16 layers.

The data are a temporary folder of generated PNG files (scripts/bench_data.py's smooth random
colour fields, 128 px) read into GPU memory (``dataset=image_folder dataset.in_memory=true``,
resized to each case's side): the GPU machine has no dataset installed, and the pixels' content
does not change the speed. Timing as in scripts/bench_train.py: the second half of a run of
2 x steps generator steps; peak memory is ``torch.cuda.max_memory_allocated`` over the whole
run (building, training, the final figure and checkpoint), data on the device included.

    python scripts/bench_gpu.py                              # every case; docs/performance.md
    python scripts/bench_gpu.py --json $OUT/bench_gpu.json --markdown docs/performance.md
    python scripts/bench_gpu.py --dry    # every case on the CPU, tiny sizes and steps, compile
                                         # off (a cold compile takes ~40 s on a CPU), gloo DDP on
                                         # 2 processes; writes to a temporary folder (CI)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from gan_cli.build import build_discriminator, build_generator, build_regularizers
from gan_cli.data.base import DataInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import write_png_folder  # noqa: E402 - the script's own directory
from bench_train import (  # noqa: E402
    Case,
    bench_overrides,
    compose_config,
    gan_cli_imgs_per_s,
    reference_imgs_per_s,
    summarize,
)

REPO = Path(__file__).resolve().parents[1]
MARK_START, MARK_END = "<!-- gpu-table -->", "<!-- /gpu-table -->"
PUBLISHED_128_S_PER_KIMG = (12.8, 13.7)  # stylegan2-ada-pytorch README, 128x128, 1 V100
PUBLISHED_SOURCE = ("NVlabs/stylegan2-ada-pytorch README, \"Expected training time\": 128x128, "
                    "1 Tesla V100, --cfg=auto --aug=ada (batch 32, fp16 in the 4 highest "
                    "resolutions)")


@dataclass(frozen=True)
class Settings:
    """Sizes and lengths of every case: the GPU run, or --dry's tiny CPU run."""

    device: str = "cuda"
    folder_images: int = 2048
    folder_side_px: int = 128
    load_workers: int = 8  # DataLoader workers that read the folder into memory once
    dcgan_side_px: int = 64
    dcgan_width: int = 64
    dcgan_batch: int = 128
    dcgan_steps: int = 300
    sngan_side_px: int = 32
    sngan_widths: tuple[int, int] = (256, 128)  # G, D (Miyato et al. 2018 on CIFAR-10)
    sngan_batch: int = 64
    sngan_steps: int = 100
    repeats: int = 3  # plain loop / gan-cli fp32 pairs per case
    compile: bool = True
    ddp_processes: int | None = None  # None = every visible GPU
    stylegan2_sides_px: tuple[int, ...] = (32, 64, 128)
    stylegan2_batch: int = 32
    stylegan2_channel_base: int = 16384
    stylegan2_channel_max: int = 512
    stylegan2_steps: int = 64  # a multiple of R1's interval 16 and path length's 4
    stylegan2_extra: tuple[str, ...] = ()


DRY = Settings(device="cpu", folder_images=48, folder_side_px=32, load_workers=0, dcgan_side_px=16,
               dcgan_width=8, dcgan_batch=16, dcgan_steps=2, sngan_side_px=16, sngan_widths=(8, 8),
               sngan_batch=16, sngan_steps=2, repeats=1, compile=False, ddp_processes=2,
               stylegan2_sides_px=(8, 16, 32), stylegan2_batch=8, stylegan2_channel_base=64,
               stylegan2_channel_max=16, stylegan2_steps=2,
               stylegan2_extra=("model.z_dim=16", "model.generator.w_dim=16"))


@dataclass
class Row:
    """One line of the results.

    Attributes:
        case: dcgan64, sngan32, ddp, stylegan2_128, ...
        variant: what ran (plain loop fp32, gan-cli fp32, ...).
        status: ok | not available: why | failed: error | skipped: why.
        imgs_per_s: real samples shown to D per second (the median over repeats).
        imgs_per_s_range: (min, max) over repeats.
        vs_plain_fp32: gan-cli / the plain fp32 loop of the same case (median of paired repeats).
        s_per_kimg: 1000 / imgs_per_s.
        peak_mem_gib: torch.cuda.max_memory_allocated over the run, GiB (None off CUDA).
        scaling_efficiency: images/s on N GPUs / (N x images/s on one).
        note: what else the reader needs.
    """

    case: str
    variant: str
    status: str = "ok"
    imgs_per_s: float | None = None
    imgs_per_s_range: tuple[float, float] | None = None
    vs_plain_fp32: float | None = None
    s_per_kimg: float | None = None
    peak_mem_gib: float | None = None
    scaling_efficiency: float | None = None
    note: str = ""
    overrides: list[str] = field(default_factory=list)


# -----------------------------------------------------------------------------------------------
# Formulas.


def s_per_kimg(imgs_per_s: float) -> float:
    """Seconds per thousand real images shown to D."""
    return 1000.0 / imgs_per_s


def scaling_efficiency(imgs_per_s_n: float, imgs_per_s_1: float, n: int) -> float:
    """(images/s on ``n`` devices) / (``n`` x images/s on one): 1 = linear scaling."""
    return imgs_per_s_n / (n * imgs_per_s_1)


def r1_gamma_auto(side_px: int, batch: int) -> float:
    """stylegan2-ada-pytorch's ``--cfg=auto`` R1 weight: 0.0002 x side^2 / batch."""
    return 0.0002 * side_px**2 / batch


def replace_between_markers(text: str, body: str, start: str = MARK_START, end: str = MARK_END) -> str:
    """``text`` with what lies between the ``start`` and ``end`` lines replaced by ``body``.

    Raises:
        ValueError: a marker is missing, or ``end`` comes before ``start``.
    """
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i:
        raise ValueError(f"the markers {start} ... {end} are not both in the file, in that order")
    return text[: i + len(start)] + "\n" + body.strip("\n") + "\n" + text[j:]


# -----------------------------------------------------------------------------------------------
# Measuring.


def with_peak_memory(fn: Callable[[], float], device: torch.device) -> tuple[float, float | None]:
    """``fn()`` and the peak GPU memory it allocated (GiB; None off CUDA)."""
    if device.type != "cuda":
        return fn(), None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    value = fn()
    return value, torch.cuda.max_memory_allocated(device) / 2**30


def data_overrides(folder: Path, side_px: int, s: Settings) -> list[str]:
    return ["dataset=image_folder", f"dataset.path={folder}", f"dataset.resolution={side_px}",
            "dataset.channels=3", "dataset.in_memory=true", f"dataset.num_workers={s.load_workers}"]


def hw(s: Settings, *extra: str) -> list[str]:
    return [f"hardware={'gpu' if s.device == 'cuda' else 'cpu'}", *extra]


def dcgan_case(folder: Path, s: Settings) -> Case:
    overrides = (*data_overrides(folder, s.dcgan_side_px, s), "model=dcgan", "loss=ns", "optimizer=adam",
                 f"model.generator.width={s.dcgan_width}", f"model.discriminator.width={s.dcgan_width}",
                 f"train.batch_size={s.dcgan_batch}")
    return Case(f"dcgan{s.dcgan_side_px}", overrides, "dcgan", s.dcgan_steps)


def sngan_case(folder: Path, s: Settings) -> Case:
    g, d = s.sngan_widths
    overrides = (*data_overrides(folder, s.sngan_side_px, s), "model=sngan",
                 "model.generator.conditional=false", "model.discriminator.conditioning=none",
                 f"model.generator.width={g}", f"model.discriminator.width={d}", "loss=hinge",
                 "loss.n_critic=5", "optimizer=adam", "optimizer.betas=[0.0,0.9]",
                 f"train.batch_size={s.sngan_batch}")
    return Case(f"sngan{s.sngan_side_px}", overrides, "hinge", s.sngan_steps)


def stylegan2_overrides(folder: Path, side_px: int, s: Settings) -> list[str]:
    """stylegan2-ada-pytorch's ``--cfg=auto`` setting for one GPU (see the module docstring)."""
    b = s.stylegan2_batch
    return [*data_overrides(folder, side_px, s), "model=stylegan2",
            f"model.generator.channel_base={s.stylegan2_channel_base}",
            f"model.discriminator.channel_base={s.stylegan2_channel_base}",
            f"model.generator.channel_max={s.stylegan2_channel_max}",
            f"model.discriminator.channel_max={s.stylegan2_channel_max}",
            "model.generator.mapping_layers=2", f"model.discriminator.mbstd_group_size={min(b, 4)}",
            # model=stylegan2 brings lazy R1 (every 16) and path length (every 4): the R1 weight
            # is set on its own regulariser node, not as the loss's r1_gamma (that would add a second R1)
            "loss=ns", f"model.regularizers.r1.gamma={r1_gamma_auto(side_px, b):.6g}",
            "optimizer=adam", "optimizer.lr_g=0.0025", "optimizer.lr_d=0.0025",
            "optimizer.betas=[0.0,0.99]", "ema.half_life_kimg=10", f"train.batch_size={b}",
            *s.stylegan2_extra]


def paired_rows(case: Case, s: Settings, device: torch.device, threads: int) -> list[Row]:
    """The plain fp32 loop and gan-cli fp32, ``s.repeats`` times, alternating."""
    overrides = [*case.overrides, *bench_overrides(case.steps, hw(s, f"hardware.num_threads={threads}"))]
    cfg = compose_config(overrides)
    figures: dict[str, list[float]] = {"plain": [], "gan-cli": []}
    peaks: dict[str, list[float]] = {"plain": [], "gan-cli": []}
    measures = {"plain": lambda: reference_imgs_per_s(case, cfg, device),
                "gan-cli": lambda: gan_cli_imgs_per_s(cfg)}
    for i in range(s.repeats):
        for side in (("plain", "gan-cli") if i % 2 == 0 else ("gan-cli", "plain")):
            value, peak = with_peak_memory(measures[side], device)
            figures[side].append(value)
            if peak is not None:
                peaks[side].append(peak)
    summary = summarize(figures["plain"], figures["gan-cli"])
    rows = []
    for side, variant in (("plain", "plain loop fp32"), ("gan-cli", "gan-cli fp32")):
        values = figures[side]
        median = statistics.median(values)
        rows.append(Row(case.name, variant, imgs_per_s=median, imgs_per_s_range=(min(values), max(values)),
                        vs_plain_fp32=summary.ratio if side == "gan-cli" else 1.0,
                        peak_mem_gib=max(peaks[side]) if peaks[side] else None,
                        note=f"{s.repeats} repeat(s) of {case.steps} timed steps", overrides=overrides))
    return rows


def single_row(case_name: str, variant: str, overrides: list[str], device: torch.device,
               plain_fp32: float | None = None, note: str = "", kimg: bool = False) -> Row:
    """One gan-cli run of ``overrides`` (already holding bench_overrides); ``kimg``: report s/kimg."""
    cfg = compose_config(overrides)
    value, peak = with_peak_memory(lambda: gan_cli_imgs_per_s(cfg), device)
    return Row(case_name, variant, imgs_per_s=value, imgs_per_s_range=(value, value),
               vs_plain_fp32=value / plain_fp32 if plain_fp32 else None,
               s_per_kimg=s_per_kimg(value) if kimg else None, peak_mem_gib=peak, note=note,
               overrides=overrides)


def gan_train_imgs_per_s(overrides: list[str], timeout_s: float) -> float:
    """``gan-train overrides`` as a command (a subprocess, as a user runs it); the images/s of its
    last metrics.jsonl record."""
    with tempfile.TemporaryDirectory(prefix="bench-gpu-ddp-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true"}
        proc = subprocess.run([sys.executable, "-m", "gan_cli.cli", *overrides,
                               f"hydra.run.dir={tmp}/run"], capture_output=True, text=True,
                              timeout=timeout_s, env=env, cwd=tmp)
        if proc.returncode != 0:
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise RuntimeError(f"gan-train exited {proc.returncode}: {' / '.join(tail)}")
        lines = (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
    return float(json.loads(lines[-1])["imgs_per_s"])


def ddp_rows(case: Case, s: Settings, time_left_s: Callable[[], float]) -> list[Row]:
    """One process against N (DDP) through gan-train, batch per device fixed."""
    if s.device == "cuda":
        n = s.ddp_processes or torch.cuda.device_count()
        if n < 2:
            why = f"not available: {torch.cuda.device_count()} GPU visible, DDP needs 2 or more"
            return [Row("ddp", "gan-train, N GPUs (nccl)", status=why)]
        one, many = ["hardware=gpu"], ["hardware=ddp", f"hardware.devices={n}"]
        unit, units = "GPU", "GPUs"
    else:  # --dry: gloo processes on the CPU
        n = s.ddp_processes or 2
        one, many = ["hardware=cpu"], ["hardware=ddp", "hardware.device=cpu", f"hardware.devices={n}"]
        unit, units = "CPU process", "CPU processes"
    base = [o for o in case.overrides if not o.startswith("train.batch_size=")]
    batch = s.dcgan_batch
    common = bench_overrides(case.steps, [])
    single = [*base, f"train.batch_size={batch}", *common, *one]
    multi = [*base, f"train.batch_size={n * batch}", *common, *many]
    ips_1 = gan_train_imgs_per_s(single, timeout_s=max(60.0, time_left_s()))
    ips_n = gan_train_imgs_per_s(multi, timeout_s=max(60.0, time_left_s()))
    eff = scaling_efficiency(ips_n, ips_1, n)
    return [Row("ddp", f"gan-train, 1 {unit}", imgs_per_s=ips_1, imgs_per_s_range=(ips_1, ips_1),
                note=f"{case.name}, batch {batch}", overrides=single),
            Row("ddp", f"gan-train, {n} {units} (DDP)", imgs_per_s=ips_n, imgs_per_s_range=(ips_n, ips_n),
                scaling_efficiency=eff, note=f"{case.name}, batch {batch} per {unit} ({n * batch} global)",
                overrides=multi)]


def check_buildable(overrides: list[str], side_px: int) -> None:
    """Compose ``overrides`` and build their G, D and regularisers on the CPU (what "not
    available" means: the model or one of its options does not exist here)."""
    cfg = compose_config(overrides)
    info = DataInfo(shape=(3, side_px, side_px), bounded=True)
    build_generator(cfg.model, info)
    build_discriminator(cfg.model, info, "score")
    build_regularizers(cfg.loss, cfg.model)


# -----------------------------------------------------------------------------------------------
# Reporting.


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def row_line(r: Row) -> str:
    if r.status != "ok":
        return f"{r.case:14s} {r.variant:34s} {r.status}"
    parts = [f"{r.case:14s} {r.variant:34s} {r.imgs_per_s:10.1f} img/s"]
    if r.vs_plain_fp32 is not None:
        parts.append(f"{r.vs_plain_fp32:.2f}x plain fp32")
    if r.s_per_kimg is not None:
        parts.append(f"{r.s_per_kimg:.2f} s/kimg")
    if r.scaling_efficiency is not None:
        parts.append(f"scaling efficiency {r.scaling_efficiency:.2f}")
    if r.peak_mem_gib is not None:
        parts.append(f"peak {r.peak_mem_gib:.2f} GiB")
    return "  ".join(parts)


def markdown(rows: Sequence[Row], header: str) -> str:
    """The results as a Markdown table, under a line saying where and how they were measured."""
    lines = [header, "",
             "| case | variant | images/s (min..max) | vs plain fp32 | s/kimg | scaling efficiency "
             "| peak memory (GiB) | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.status != "ok":
            lines.append(f"| {r.case} | {r.variant} | {r.status} | | | | | {r.note} |")
            continue
        lo, hi = r.imgs_per_s_range or (r.imgs_per_s, r.imgs_per_s)
        spread = f" ({lo:.0f}..{hi:.0f})" if hi > lo else ""
        lines.append(f"| {r.case} | {r.variant} | {r.imgs_per_s:.1f}{spread} "
                     f"| {_fmt(r.vs_plain_fp32, '.2f')} | {_fmt(r.s_per_kimg, '.2f')} "
                     f"| {_fmt(r.scaling_efficiency, '.2f')} "
                     f"| {_fmt(r.peak_mem_gib, '.2f')} | {r.note} |")
    return "\n".join(lines)


def machine(device: torch.device) -> dict[str, Any]:
    info = {"host": platform.node(), "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device),
            "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# -----------------------------------------------------------------------------------------------
# The run.


class Recorder:
    """Runs the cases one after another and keeps their rows, whatever happens to each.

    Args:
        budget_s: no case starts once this many seconds have passed since construction.
    """

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.t0 = time.perf_counter()
        self.rows: list[Row] = []

    def time_left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def attempt(self, case: str, variant: str, fn: Callable[[], list[Row]],
                check: Callable[[], object] | None = None) -> list[Row]:
        """Record and print ``fn()``'s rows; one row "not available: ..." when ``check()`` (building
        the case) raises, "failed: ..." when ``fn`` does, "skipped: ..." once the budget is spent."""
        new: list[Row] = []
        if self.time_left_s() <= 0:
            new = [Row(case, variant, status=f"skipped: the {self.budget_s:.0f} s budget was spent")]
        for what, call in (("not available", check), ("failed", fn)):
            if new or call is None:
                continue
            try:
                result = call()
            except Exception as e:  # noqa: BLE001 - recorded; the other cases go on
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                new = [Row(case, variant, status=f"{what}: {type(e).__name__}: {first}"[:300])]
            else:
                new = result if call is fn else []
        for r in new:
            print(row_line(r), flush=True)
        self.rows.extend(new)
        return new


def run(s: Settings, folder: Path, budget_s: float, threads: int) -> list[Row]:
    """Every case in order of importance; each one's failure is recorded and the others go on.
    No case starts once ``budget_s`` seconds have passed."""
    device = torch.device(s.device)
    recorder = Recorder(budget_s)
    attempt = recorder.attempt

    threads_hw = f"hardware.num_threads={threads}"
    dcgan, sngan = dcgan_case(folder, s), sngan_case(folder, s)
    pair = attempt(dcgan.name, "plain loop / gan-cli fp32", lambda: paired_rows(dcgan, s, device, threads))
    plain = pair[0].imgs_per_s if pair[0].status == "ok" else None
    fast = ["hardware.precision=bf16", "hardware.channels_last=true",
            f"hardware.compile={'true' if s.compile else 'false'}"]
    variant = "gan-cli bf16 + channels_last" + (" + compile" if s.compile else " (compile off: --dry)")
    note = "one run" + ("; its untimed first half includes the compilation" if s.compile else "")
    attempt(dcgan.name, variant, lambda: [single_row(
        dcgan.name, variant, [*dcgan.overrides, *bench_overrides(dcgan.steps, hw(s, threads_hw, *fast))],
        device, plain, note=note)])
    attempt(sngan.name, "plain loop / gan-cli fp32", lambda: paired_rows(sngan, s, device, threads))
    # StyleGAN2 at the published side first (fp32, then bf16), then DDP, then the smaller sides.
    largest = max(s.stylegan2_sides_px)
    runs = [(largest, "gan-cli fp32", ()), (largest, "gan-cli bf16", ("hardware.precision=bf16",)), None,
            *[(side, "gan-cli fp32", ()) for side in sorted(s.stylegan2_sides_px, reverse=True)[1:]]]
    for spec in runs:
        if spec is None:
            attempt("ddp", "gan-train, 1 vs N", lambda: ddp_rows(dcgan, s, recorder.time_left_s))
            continue
        side, variant, extra = spec
        name = f"stylegan2_{side}"
        note = f"batch {s.stylegan2_batch}, channel_base {s.stylegan2_channel_base}"
        if extra:
            note += "; autocast bf16"
        if side == 128:
            low, high = PUBLISHED_128_S_PER_KIMG
            note += f"; published: {low}-{high} s/kimg on one V100 (fp16 layers, ADA)"
        overrides = [*stylegan2_overrides(folder, side, s),
                     *bench_overrides(s.stylegan2_steps, hw(s, threads_hw, *extra))]
        measure = lambda o=overrides, n=name, v=variant, t=note: [  # noqa: E731
            single_row(n, v, o, device, note=t, kimg=True)]
        attempt(name, variant, measure, check=lambda o=overrides, side=side: check_buildable(o, side))
    return recorder.rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry", action="store_true",
                   help="every case on the CPU with tiny sizes and steps, into a temporary folder")
    p.add_argument("--json", type=Path, help="results file (default: docs/performance_gpu.json; "
                   "--dry: a temporary folder)")
    p.add_argument("--markdown", type=Path, help="the file whose gpu-table markers get the table "
                   "(default: docs/performance.md; --dry: a temporary copy of it)")
    p.add_argument("--budget-s", type=float, default=420.0,
                   help="start no case once this many seconds have passed since the start (default "
                        "420: the last case then ends well within ten minutes)")
    p.add_argument("--repeats", type=int, default=0, help="plain/gan-cli fp32 pairs (default 3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    s = DRY if args.dry else Settings()
    if args.repeats:
        s = replace(s, repeats=args.repeats)
    if s.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA GPU is visible; run with --dry for the CPU check", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(s.device)
    tmp = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    json_path = args.json or (tmp / "bench_gpu.json" if args.dry else REPO / "docs" / "performance_gpu.json")
    md_path = args.markdown
    if md_path is None:
        md_path = REPO / "docs" / "performance.md"
        if args.dry:
            md_path = Path(shutil.copy(md_path, tmp / "performance.md"))
    replace_between_markers(md_path.read_text(), "")  # the markers are there: fail before the work
    info = machine(device)
    print(f"# {info}", flush=True)
    t0 = time.perf_counter()
    try:
        write_png_folder(tmp / "images", s.folder_images, s.folder_side_px)
        rows = run(s, tmp / "images", args.budget_s - (time.perf_counter() - t_start), args.threads)
    finally:
        shutil.rmtree(tmp / "images", ignore_errors=True)
        if not any(tmp in path.parents for path in (json_path, md_path)):
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed_s = time.perf_counter() - t0
    date = datetime.date.today().isoformat()
    where = info.get("gpu", info["cpu"]) + (f" x {info['gpus']}" if info["gpus"] > 1 else "")
    header = (f"Measured {date} by `scripts/bench_gpu.py{' --dry' if args.dry else ''}` on {where}, "
              f"torch {info['torch']}, CUDA {info['cuda']}; {elapsed_s:.0f} s in all. "
              f"Published StyleGAN2 figure: {PUBLISHED_SOURCE}.")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"machine": info, "date": date, "elapsed_s": elapsed_s,
                                     "dry": args.dry, "settings": asdict(s),
                                     "published_stylegan2_128_s_per_kimg": PUBLISHED_128_S_PER_KIMG,
                                     "published_source": PUBLISHED_SOURCE,
                                     "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    table = markdown(rows, header)
    print("\n" + table + "\n", flush=True)
    md_path.write_text(replace_between_markers(md_path.read_text(), table))
    print(f"bench_gpu: results in {json_path}; the table written into {md_path}", flush=True)
    return 1 if any(r.status.startswith("failed") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
