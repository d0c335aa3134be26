"""The mode-collapse table of PacGAN (Lin et al. 2018, Table 1) for every loss, on ring8 and grid25.

The protocol of PacGAN's Table 1 (taken from VEEGAN, Srivastava et al. 2017): after training,
2,500 generated samples; a sample is *high quality* when it lies within 3 standard deviations of
its nearest mode; a mode is *captured* when at least one high-quality sample has it as nearest
mode; and the reverse KL divergence KL(q || u) of the high-quality samples' mode histogram q
against the uniform u. Here those are the ``modes`` metric of gan_cli/metrics/toy.py, computed by
gan-train itself at the last step (``modes_captured``, ``high_quality_fraction``, ``reverse_kl``
in the last record of ``metrics.jsonl``).

Every run is one ``gan-train`` subprocess through the real command line, one thread (``--jobs``
of them at a time, default 1); its CPU time (user + system, the whole process: imports, building,
training, metrics, figures, checkpoints) is that process's own, from ``os.wait4``. The rows:

* ``tuned``: the tuned default, exactly ``gan-train model=mlp dataset=ring8`` (``grid25``);
* ``untuned``: the same command as it ran before the tuning (``UNTUNED`` below), for its CPU time
  and numbers;
* one row per loss: ``gan-train experiment=pacgan_<dataset> loss=<loss>``, the loss as its paper
  defines it (this project's conf/loss/ defaults: n_critic, penalty weights) on the tuned
  default's network, optimizer, EMA and run length (conf/experiment/pacgan_ring8.yaml says where
  every number comes from);
* PacGAN's own remedy on the same base: the non-saturating loss with D judging 2 (ring) or 4
  (grid) samples at once, the paper's PacGAN2 and PacGAN4 rows.

Usage::

    python scripts/reproduce_toy.py --seeds 10 --rows tuned          # the tuned rows, 10 seeds
    python scripts/reproduce_toy.py --seeds 10 --rows tuned --jobs 2 # two runs at a time
    python scripts/reproduce_toy.py --seeds 3                        # every row, 3 seeds
    python scripts/reproduce_toy.py --quick                          # 1 seed, a few steps
    python scripts/reproduce_toy.py --list                           # the rows and their commands

Finished runs are kept under ``--runs`` (one directory per dataset, row and seed, with a
``result.json``) and reused when the table is made again; ``--fresh`` reruns them. The table
(Markdown) goes to stdout and to ``<runs>/table.md``; every run's numbers to ``<runs>/runs.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's gan_cli
from gan_cli.scripts import studies  # noqa: E402  (what this script shares with loss_study.py)
from gan_cli.scripts.studies import spread  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("ring8", "grid25")
# PacGAN's Table 1 (Lin et al. 2018; its GAN rows are VEEGAN's Table 1, Srivastava et al. 2017):
# modes captured, high-quality samples (%), reverse KL; means over 10 runs, 2,500 samples each.
PAPER = {
    "ring8": [("GAN (Lin et al. 2018, Table 1)", 6.3, 98.2, 0.45),
              ("PacGAN2 (Lin et al. 2018, Table 1)", 7.9, 95.6, 0.07)],
    "grid25": [("GAN (Lin et al. 2018, Table 1)", 17.3, 94.8, 0.70),
               ("PacGAN4 (Lin et al. 2018, Table 1)", 24.8, 93.6, 0.04),
               ("VEEGAN (Srivastava et al. 2017, Table 1)", 24.6, 40.0, 0.25)],
}
NUM_MODES = {"ring8": 8, "grid25": 25}
# the prefix of the metrics of the samples kept by the Jacobian threshold (metrics.jacobian_threshold)
JACOBIAN = "jacobian/"
# PacGAN's packing degree in its table's best row for each dataset
PACK = {"ring8": 2, "grid25": 4}
QUICK = ["train.steps=20", "train.batch_size=64", "train.log_every_steps=10",
         "train.sample_every_steps=20", "train.ckpt_every_steps=20", "metrics.every_steps=20"]


@dataclass(frozen=True)
class Row:
    """One row of the table: a name, and the gan-train overrides for a dataset."""

    name: str
    overrides: tuple[str, ...]  # "{ds}" is replaced by the dataset's name, "{pack}" by PACK[ds]
    note: str = ""

    def args(self, dataset: str) -> list[str]:
        return [o.format(ds=dataset, pack=PACK[dataset]) for o in self.overrides]


LOSS_ROWS = [
    ("minimax", "Goodfellow et al. 2014"), ("ns", "Goodfellow et al. 2014"),
    ("wgan", "Arjovsky et al. 2017"), ("wgan_gp", "Gulrajani et al. 2017"),
    ("lsgan", "Mao et al. 2017"), ("dragan", "Kodali et al. 2017"),
    ("began", "Berthelot et al. 2017"), ("hinge", "Lim & Ye 2017"),
]
FGAN = ["kl", "reverse_kl", "js", "pearson", "hellinger"]
# what `gan-train model=mlp dataset=<ds>` ran before the 2D mixtures got tuned defaults (commit
# e895530's parent): the non-saturating loss, Adam 2e-4 (betas 0.5 / 0.999), MLPs 3 x 256 with
# ReLU (D seeing x as given), z of 64, no EMA,
# 5,000 steps of 256 with a figure every 500, the plain metrics only (no Jacobian-threshold
# pass, which with z of 64 costs 64 forward-mode passes per batch): the CPU time the tuned
# default must beat
UNTUNED = ("loss=ns", "optimizer.lr_g=2e-4", "optimizer.lr_d=2e-4", "ema.half_life_kimg=null",
           "model.z_dim=64", "model.generator.hidden=[256,256,256]",
           "model.generator.activation=relu", "model.discriminator.hidden=[256,256,256]",
           "train.steps=5000", "train.sample_every_steps=500", "metrics.jacobian_threshold=null",
           "optimizer.betas=[0.5,0.999]", "model.discriminator.input_scale=1.0")
ROWS: list[Row] = [
    Row("tuned", ("model=mlp", "dataset={ds}"), "the tuned default"),
    Row("untuned", ("model=mlp", "dataset={ds}", *UNTUNED), "the defaults before issue 17"),
    Row("r1_every_step", ("model=mlp", "dataset={ds}", "loss.r_interval=1"),
        "the tuned default with R1 on every D update, not lazily on one in 16"),
    Row("uniform_latent", ("model=mlp", "dataset={ds}", "model.generator.latent=uniform"),
        "the tuned default with G's first layer seeing 2 Phi(z) - 1, uniform on (-1, 1)"),
    *[Row(loss, ("experiment=pacgan_{ds}", f"loss={loss}"), ref) for loss, ref in LOSS_ROWS],
    *[Row(f"fgan_{d}", ("experiment=pacgan_{ds}", "loss=fgan", f"loss.divergence={d}"),
          "Nowozin et al. 2016") for d in FGAN],
    Row("mmd", ("experiment=pacgan_{ds}", "loss=mmd"), "Li et al. 2017"),
    Row("pacgan", ("experiment=pacgan_{ds}", "loss=ns", "model.discriminator.pack={pack}"),
        "Lin et al. 2018: ns with D on packs of {pack}"),
]


@dataclass
class Result:
    """One finished run: the protocol's numbers from its last metrics record, and its CPU time."""

    dataset: str
    row: str
    seed: int
    modes: float
    num_modes: float
    high_quality: float  # fraction in [0, 1]
    reverse_kl: float  # NaN when no sample is high quality
    cpu_s: float
    wall_s: float
    command: str
    extra: dict = field(default_factory=dict)


def args_of(row: Row, dataset: str, seed: int, quick: bool) -> list[str]:
    """The gan-train overrides of one run (one thread, no W&B)."""
    return [*row.args(dataset), f"seed={seed}", *studies.RUN_ARGS, *(QUICK if quick else [])]


def shown_command(row: Row, dataset: str, seed: int, quick: bool) -> str:
    """What a user types for the run (gan-train, without the run directory)."""
    return studies.shown_command(args_of(row, dataset, seed, quick))


def last_metrics(run_dir: Path) -> dict:
    """The last record of ``metrics.jsonl`` that holds the modes metric."""
    return studies.last_metrics(run_dir, "modes_captured", "modes metric")


def run_one(row: Row, dataset: str, seed: int, runs: Path, quick: bool, fresh: bool) -> Result:
    """Run (or reuse) one gan-train run and return its result."""
    run_dir = runs / dataset / row.name / f"seed{seed}"
    result_file = run_dir / "result.json"
    if result_file.exists() and not fresh:
        return Result(**json.loads(result_file.read_text()))
    try:
        cpu_s, wall_s = studies.run_gan_train(args_of(row, dataset, seed, quick), run_dir)
    except studies.RunDiverged as e:  # no generator at the end: no mode, no high-quality sample
        result = Result(dataset=dataset, row=row.name, seed=seed, modes=0.0,
                        num_modes=float(NUM_MODES[dataset]), high_quality=0.0,
                        reverse_kl=float("nan"), cpu_s=e.cpu_s, wall_s=e.wall_s,
                        command=shown_command(row, dataset, seed, quick),
                        extra={"diverged": e.message})
        result_file.write_text(json.dumps(vars(result), indent=1))
        return result
    m = last_metrics(run_dir)
    extra: dict = {"step": m["step"]}
    if f"{JACOBIAN}modes_captured" in m:  # the run's metrics.jacobian_threshold was on
        extra["jacobian"] = {k: m.get(f"{JACOBIAN}{k}") for k in
                             ("modes_captured", "high_quality_fraction", "reverse_kl")}
    result = Result(dataset=dataset, row=row.name, seed=seed, modes=m["modes_captured"],
                    num_modes=m["num_modes"], high_quality=m["high_quality_fraction"],
                    reverse_kl=_float(m.get("reverse_kl")), cpu_s=cpu_s,
                    wall_s=wall_s, command=shown_command(row, dataset, seed, quick),
                    extra=extra)
    result_file.write_text(json.dumps(vars(result), indent=1))
    return result


def table(results: list[Result], rows: list[Row], datasets: list[str]) -> str:
    """One Markdown table: a line per dataset and row, mean ± std over seeds, with the paper's."""
    lines = ["| dataset | row | runs | modes (mean ± std, min) | high quality % (mean ± std, min) "
             "| reverse KL | runs with every mode and >= 97% HQ | CPU s per run (mean, max) |",
             "|---|---|---|---|---|---|---|---|"]
    for ds in datasets:
        for row in rows:
            rs = [r for r in results if r.dataset == ds and r.row == row.name]
            if not rs:
                continue
            lines.append(_line(ds, row.name, rs))
            if all("jacobian" in r.extra for r in rs):  # the same runs' Jacobian-threshold samples
                smooth = [replace(r, modes=r.extra["jacobian"]["modes_captured"],
                                  high_quality=r.extra["jacobian"]["high_quality_fraction"],
                                  reverse_kl=_float(r.extra["jacobian"]["reverse_kl"]), extra={})
                          for r in rs]
                lines.append(_line(ds, f"{row.name}, Jacobian threshold", smooth))
        modes, hq, rkl = data_itself(ds)
        lines.append(f"| {ds} | the data itself (2,500 real samples) | 10 | {spread(modes)} | "
                     f"{spread(hq, 100)}, min {100 * min(hq):.1f} | {spread(rkl, digits=3)} | | |")
        for name, modes, hq, rkl in PAPER.get(ds, []):
            lines.append(f"| {ds} | {name} | 10 | {modes} | {hq} | {rkl} | | |")
    return "\n".join(lines)


def _float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _line(ds: str, name: str, rs: list[Result]) -> str:
    """One table line: the numbers of ``rs`` (one row's runs on ``ds``) over their seeds."""
    modes = [r.modes for r in rs]
    hq = [r.high_quality for r in rs]
    full = sum(r.modes == r.num_modes and r.high_quality >= 0.97 for r in rs)
    cpu = [r.cpu_s for r in rs]
    diverged = sum("diverged" in r.extra for r in rs)
    runs = f"{len(rs)} ({diverged} diverged: 0 modes)" if diverged else f"{len(rs)}"
    return (f"| {ds} | {name} | {runs} | {spread(modes)} / {rs[0].num_modes:.0f}, "
            f"min {min(modes):.0f} | {spread(hq, 100)}, min {100 * min(hq):.1f} "
            f"| {spread([r.reverse_kl for r in rs], digits=3)} | {full}/{len(rs)} "
            f"| {statistics.fmean(cpu):.0f}, {max(cpu):.0f} |")


def data_itself(dataset: str, draws: int = 10) -> tuple[list[float], list[float], list[float]]:
    """The protocol's numbers for 2,500 samples of the data itself, ``draws`` times (seeds 0..):
    the ceiling of the table. In 2D, a sample lies within 3 std of its own mode with probability
    1 - exp(-9/2) = 98.9%, so no generator can be expected to beat about 98.9% high quality."""
    import torch

    from gan_cli.data.toy import grid_of_gaussians, ring_of_gaussians
    from gan_cli.metrics.toy import mode_metrics

    make = {"ring8": ring_of_gaussians, "grid25": grid_of_gaussians}[dataset]
    modes, hq, rkl = [], [], []
    for seed in range(draws):
        source = make(batch_size=2500, device="cpu", seed=seed)
        points = source.draw(2500, torch.Generator().manual_seed(seed))
        m = mode_metrics(points, source.modes, source.mode_std)
        modes.append(m["modes_captured"])
        hq.append(m["high_quality_fraction"])
        rkl.append(m["reverse_kl"])
    return modes, hq, rkl


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row (10 for the full table)")
    p.add_argument("--quick", action="store_true",
                   help="1 seed and a few steps per run (a smoke test of the whole pipeline)")
    p.add_argument("--rows", default="all", help="comma-separated row names (default: all)")
    p.add_argument("--datasets", default=",".join(DATASETS), help="ring8,grid25")
    p.add_argument("--runs", type=Path, default=REPO / "outputs" / "reproduce_toy",
                   help="where the runs, table.md and runs.json go")
    studies.add_run_options(p)
    args = p.parse_args(argv)

    rows = studies.selected_rows(p, ROWS, args.rows)
    datasets = args.datasets.split(",")
    if set(datasets) - set(DATASETS):
        p.error(f"datasets are {', '.join(DATASETS)}")
    seeds = range(1 if args.quick else args.seeds)
    runs = args.runs / "quick" if args.quick else args.runs

    if args.list:
        for ds in datasets:
            for row in rows:
                print(f"{ds:7s} {row.name:18s} {shown_command(row, ds, 0, args.quick)}")
        return 0

    def one(job: tuple[str, Row, int]) -> Result:
        ds, row, seed = job
        r = run_one(row, ds, seed, runs, args.quick, args.fresh)
        print(f"{ds} {row.name} seed {seed}: {r.modes:.0f}/{r.num_modes:.0f} modes, "
              f"{100 * r.high_quality:.1f}% high quality, reverse KL {r.reverse_kl:.3f}, "
              f"{r.cpu_s:.0f} s CPU", file=sys.stderr, flush=True)
        return r

    jobs = [(ds, row, seed) for ds in datasets for row in rows for seed in seeds]
    results = studies.run_all(one, jobs, args.jobs)
    text = table(results, rows, datasets)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "table.md").write_text(text + "\n")
    (runs / "runs.json").write_text(json.dumps([vars(r) for r in results], indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
