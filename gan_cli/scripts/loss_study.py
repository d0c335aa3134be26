"""A loss study on Fashion-MNIST in the manner of Lucic et al. 2018 ("Are GANs Created Equal?").

Every loss of the paper that gan-cli has, on the paper's InfoGAN architecture, batch 64, z of 64,
Adam at one shared setting, 20 epochs, then the Frechet distance of 10,000 samples against the
10,000 test images: conf/experiment/lucic_fashion.yaml says where each number comes from and
where this departs from the paper. One row per loss, each run ``gan-train
experiment=lucic_fashion loss=<loss> seed=<s>``, the loss as conf/loss/ has it (its paper's
n_critic and penalty weights). The numbers are read from the run's last ``metrics.jsonl``
record: ``fd_fashion`` (the offline Fashion-MNIST CNN shipped with gan-cli) always, ``fid``
(Inception-v3, the paper's metric) when the weights are found (``--inception-weights``, or the
torch hub cache; nothing is downloaded).

Every run is one ``gan-train`` subprocess through the real command line, one thread (``--jobs``
of them at a time, default 1); its CPU time (user + system, the whole process: imports, building,
training, metrics, figures, checkpoints) is that process's own, from ``os.wait4``. Measured on
this project's 2-core machine (shared with other jobs): ``--steps 300`` took 162-184 s of CPU
per run for minimax, ns, lsgan, began and hinge (about 0.45 s per step, plus about 30 s for
start-up and the 10,000-sample evaluation); at that rate the full 18,750 steps would take about
2.5 hours per run for those losses (an estimate, not measured), and more for the n_critic = 5
losses (wgan, wgan_gp), whose generator steps each come after 5 critic steps.

The table puts Lucic et al.'s Fashion-MNIST FIDs beside each row: their best FID per loss (the
best of 100 hyperparameter settings from their wide search, rerun with 50 seeds; mean ± std), as
quoted from the paper by Dai & Wipf 2019 ("Diagnosing and Enhancing VAE Models", Table 1: every
row) and Zhang & Khoreva 2019 ("Progressive Augmentation of GANs", Table 2: every row but BEGAN,
the same values). The paper itself could not be opened here, so its table number is not given.
They are Inception FIDs after a hyperparameter search and 20 epochs; this table's ``fd_fashion``
is on another network and, with ``--steps``, after far shorter runs: compare rankings, not values.
The paper has no hinge loss.

Usage::

    python -m gan_cli.scripts.loss_study --seeds 3                     # every loss, 3 seeds, 18,750 steps
    python -m gan_cli.scripts.loss_study --seeds 1 --steps 300         # short runs for a CPU
    python -m gan_cli.scripts.loss_study --rows ns,wgan_gp --jobs 2    # two losses, two runs at a time
    python -m gan_cli.scripts.loss_study --quick                       # 1 seed, 10 steps, small metrics
    python -m gan_cli.scripts.loss_study --list                        # the rows and their commands

Finished runs are kept under ``--runs`` (one directory per length, loss and seed, with a
``result.json``) and reused when the table is made again; ``--fresh`` reruns them. The table
(Markdown) goes to stdout and to ``<runs>/<length>/table.md``; every run's numbers to
``runs.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from gan_cli.scripts import studies  # what this script shares with scripts/reproduce_toy.py
from gan_cli.scripts.studies import spread

REPO = studies.REPO
EXPERIMENT = "lucic_fashion"
FULL_STEPS = 18750  # conf/experiment/lucic_fashion.yaml's train.steps (20 epochs)
QUICK_STEPS = 10
# a smoke test of the pipeline: a figure and a checkpoint at the end, metrics on fewer samples
QUICK = ["train.log_every_steps=5", "train.sample_every_steps=10", "train.ckpt_every_steps=10",
         "metrics.num_samples=1000", "metrics.num_real=1000"]
PAPER_SOURCE = "Lucic et al. 2018, via Dai & Wipf 2019 Table 1"


@dataclass(frozen=True)
class Row:
    """One row of the table: a loss, its paper, and Lucic et al.'s Fashion-MNIST FID for it."""

    loss: str
    reference: str
    paper_fid: tuple[float, float] | None  # (mean, std) over 50 seeds; None: not in the study

    @property
    def name(self) -> str:
        return self.loss

    def args(self) -> list[str]:
        return [f"experiment={EXPERIMENT}", f"loss={self.loss}"]


ROWS: list[Row] = [
    Row("minimax", "Goodfellow et al. 2014", (29.6, 1.6)),  # the paper's "MM GAN"
    Row("ns", "Goodfellow et al. 2014", (26.5, 1.6)),  # "NS GAN"
    Row("lsgan", "Mao et al. 2017", (30.7, 2.2)),
    Row("wgan", "Arjovsky et al. 2017", (21.5, 1.6)),
    Row("wgan_gp", "Gulrajani et al. 2017", (24.5, 2.1)),
    Row("dragan", "Kodali et al. 2017", (27.7, 1.2)),
    Row("began", "Berthelot et al. 2017", (22.9, 0.9)),
    Row("hinge", "Lim & Ye 2017", None),
]


@dataclass
class Result:
    """One finished run: its last metrics record's distances, and its CPU time."""

    row: str
    seed: int
    steps: int  # generator steps trained (the record's step)
    fd_fashion: float
    fid: float  # NaN when no Inception weights were found
    cpu_s: float
    wall_s: float
    command: str


def length_name(steps: int | None, quick: bool) -> str:
    """The runs' sub-directory of a setting, so that results are reused only for the same one:
    full, steps<N>, quick or quick-steps<N>."""
    length = f"steps{steps}" if steps else "full"
    return ("quick" if steps is None else f"quick-{length}") if quick else length


def args_of(row: Row, seed: int, steps: int | None, quick: bool,
            inception_weights: str | None = None) -> list[str]:
    """The gan-train overrides of one run (one thread, no W&B)."""
    steps = QUICK_STEPS if quick and steps is None else steps
    return [*row.args(), f"seed={seed}", *studies.RUN_ARGS,
            *([f"train.steps={steps}"] if steps else []), *(QUICK if quick else []),
            *([f"metrics.inception_weights={inception_weights}"] if inception_weights else [])]


def run_one(row: Row, seed: int, runs: Path, steps: int | None, quick: bool, fresh: bool,
            inception_weights: str | None = None) -> Result:
    """Run (or reuse) one gan-train run and return its result."""
    run_dir = runs / row.name / f"seed{seed}"
    result_file = run_dir / "result.json"
    if result_file.exists() and not fresh:
        return Result(**json.loads(result_file.read_text()))
    args = args_of(row, seed, steps, quick, inception_weights)
    cpu_s, wall_s = studies.run_gan_train(args, run_dir)
    m = studies.last_metrics(run_dir, "fd_fashion", "fd_fashion metric")
    result = Result(row=row.name, seed=seed, steps=int(m["step"]), fd_fashion=float(m["fd_fashion"]),
                    fid=float(m.get("fid", math.nan)), cpu_s=cpu_s, wall_s=wall_s,
                    command=studies.shown_command(args))
    result_file.write_text(json.dumps(vars(result), indent=1))
    return result


def table(results: list[Result], rows: list[Row]) -> str:
    """One Markdown table: a line per loss, mean ± std over seeds, beside the paper's FID."""
    lines = ["| loss | runs | steps | fd_fashion (mean ± std) | FID (mean ± std) "
             "| CPU s per run (mean, max) | FID, Lucic et al. 2018 (Fashion-MNIST) |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        rs = [r for r in results if r.row == row.name]
        if not rs:
            continue
        steps = sorted({r.steps for r in rs})
        cpu = [r.cpu_s for r in rs]
        fid = spread([r.fid for r in rs])
        paper = (f"{row.paper_fid[0]} ± {row.paper_fid[1]}" if row.paper_fid is not None
                 else "not in the study")
        lines.append(
            f"| {row.name} | {len(rs)} | {', '.join(map(str, steps))} "
            f"| {spread([r.fd_fashion for r in rs])} "
            f"| {'n/a (no Inception weights)' if fid == 'n/a' else fid} "
            f"| {statistics.fmean(cpu):.0f}, {max(cpu):.0f} | {paper} |")
    lines += ["", f"fd_fashion: the offline Fashion-MNIST CNN's Frechet distance, G's samples against "
              f"the test split; not FID. Paper column: {PAPER_SOURCE} (best setting of a "
              f"hyperparameter search, 20 epochs, 50 seeds; Inception FID)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per row")
    p.add_argument("--steps", type=int, default=None,
                   help=f"generator steps per run (default: the experiment's {FULL_STEPS:,}); the "
                        "metrics run at the last step")
    p.add_argument("--quick", action="store_true",
                   help=f"1 seed, {QUICK_STEPS} steps (unless --steps), metrics on 1,000 samples: "
                        "a smoke test of the whole pipeline")
    p.add_argument("--rows", default="all", help="comma-separated losses (default: all)")
    p.add_argument("--inception-weights", default=None,
                   help="the Inception-v3 weight file for FID (default: the torch hub cache, if "
                        "the file is there; FID is left out without it)")
    p.add_argument("--runs", type=Path, default=REPO / "outputs" / "loss_study",
                   help="where the runs, table.md and runs.json go (a sub-directory per length)")
    studies.add_run_options(p)
    args = p.parse_args(argv)

    rows = studies.selected_rows(p, ROWS, args.rows)
    if args.steps is not None and args.steps < 1:
        p.error("--steps must be a positive number of generator steps")
    seeds = range(1 if args.quick else args.seeds)
    runs = args.runs / length_name(args.steps, args.quick)

    if args.list:
        for row in rows:
            cmd = studies.shown_command(args_of(row, 0, args.steps, args.quick, args.inception_weights))
            print(f"{row.name:8s} {cmd}")
        return 0

    def one(job: tuple[Row, int]) -> Result:
        row, seed = job
        r = run_one(row, seed, runs, args.steps, args.quick, args.fresh, args.inception_weights)
        fid = "" if math.isnan(r.fid) else f", FID {r.fid:.1f}"
        print(f"{row.name} seed {seed}: step {r.steps}, fd_fashion {r.fd_fashion:.1f}{fid}, "
              f"{r.cpu_s:.0f} s CPU", file=sys.stderr, flush=True)
        return r

    results = studies.run_all(one, [(row, seed) for row in rows for seed in seeds], args.jobs)
    text = table(results, rows)
    runs.mkdir(parents=True, exist_ok=True)
    (runs / "table.md").write_text(text + "\n")
    (runs / "runs.json").write_text(json.dumps([vars(r) for r in results], indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
