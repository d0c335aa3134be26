"""Hydra multirun sweeps through the real CLI: the basic launcher, Optuna, joblib, submitit."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from gan_cli.checkpoint import load_checkpoint
from gan_cli.cli import CONF_DIR
from gan_cli.config import register_configs
from tests.conftest import GAN_TRAIN, REPO, SMALL, read_metrics
from tests.inprocess import needs_subprocess, run_in_process

TINY = [a for a in SMALL if not a.startswith(("train.steps", "train.log_every"))] + [
    "train.steps=4", "train.log_every_steps=2"]


def run_sweep(args: list[str], sweep_dir: Path, timeout: float = 300,
              in_process: bool | None = None) -> subprocess.CompletedProcess:
    """``gan-train args`` (a multirun) into ``sweep_dir``. In this process (tests/inprocess.py) where
    Hydra's own sweepers run the jobs one after another here; in a process of its own where a
    launcher starts processes or W&B runs (``needs_subprocess``), or ``in_process=False``."""
    if in_process is None:
        in_process = not needs_subprocess([a for a in args if a not in ("-m", "--multirun")], None)
    if in_process:
        return run_in_process("gan-train", [*args, f"hydra.sweep.dir={sweep_dir}"], sweep_dir.parent)
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([*GAN_TRAIN, *args, f"hydra.sweep.dir={sweep_dir}"],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=sweep_dir.parent)


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


@pytest.mark.slow
def test_multirun_2x2_gives_4_numbered_run_directories(tmp_path: Path):
    sweep = tmp_path / "sweep"
    proc = run_sweep(["-m", *TINY, "loss=ns,lsgan", "optimizer.lr_d=1e-4,2e-4"], sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dirs = job_dirs(sweep)
    assert [d.name for d in dirs] == ["0", "1", "2", "3"]
    seen = set()
    for d in dirs:
        ckpt = load_checkpoint(d / "checkpoints" / "last.pt")
        assert ckpt["step"] == 4
        assert read_metrics(d)[-1]["step"] == 4
        seen.add((ckpt["config"]["loss"]["_target_"], ckpt["config"]["optimizer"]["lr_d"]))
    assert seen == {(f"gan_cli.losses.{loss}", lr) for loss in ("NonSaturating", "LSGAN")
                    for lr in (1e-4, 2e-4)}


@pytest.mark.slow
def test_a_failed_job_does_not_stop_the_sweep_but_sets_the_exit_status(tmp_path: Path):
    sweep = tmp_path / "sweep"
    proc = run_sweep(["-m", *TINY, "model.generator.conditional=true,false"], sweep)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "conditional model needs a dataset with labels" in proc.stderr
    assert (sweep / "1" / "checkpoints" / "last.pt").is_file()  # the good job still ran


@pytest.mark.slow
def test_optimized_metric_must_be_a_logged_statistic(tmp_path: Path):
    sweep = tmp_path / "sweep"
    proc = run_sweep(["-m", *TINY, "optimized_metric=fid"], sweep)
    assert proc.returncode == 2
    assert "optimized_metric='fid' is not among the run's logged statistics" in proc.stderr
    assert "loss_g" in proc.stderr


@pytest.mark.slow
def test_optuna_preset_runs_trials_and_reports_the_best_parameters(tmp_path: Path):
    sweep = tmp_path / "sweep"
    proc = run_sweep(["hparams_search=ring8_optuna", "hydra.sweeper.n_trials=3", *TINY,
                      "train.batch_size=32", "metrics.every_steps=1000"], sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(job_dirs(sweep)) == 3
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == {"optimizer.lr_g", "model.z_dim"}
    assert 1e-5 <= results["best_params"]["optimizer.lr_g"] <= 1e-3
    assert results["best_params"]["model.z_dim"] in (2, 8, 64)
    # the best value is the largest high-quality fraction measured at the trials' last steps
    values = [read_metrics(d)[-1]["high_quality_fraction"] for d in job_dirs(sweep)]
    assert results["best_value"] == pytest.approx(max(values))


# An Optuna search with one trial that must fail: two learning rates, one of which (1e30)
# diverges at step 2. Optuna's random sampler with seed 0 draws 1e30, then 1e-4 (checked with
# optuna 2.10 before writing this; the test asserts one trial trained). Both trials are one batch
# (n_jobs=2), so the failure rate is 1/2. (The grid sampler would draw both values for sure, but
# in a random order, and the plugin crashes when the grid's last trial fails.)
FAILING_TRIAL = ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=random",
                 "hydra.sweeper.sampler.seed=0", "optimizer.lr_g=choice(1e-4,1e30)",
                 "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2", *TINY]


@pytest.mark.slow  # two trials each
@pytest.mark.parametrize("max_rate,tolerated", [(0.5, True), (0.25, False)])
def test_optuna_failed_trials_count_against_max_failure_rate(tmp_path: Path, max_rate: float,
                                                             tolerated: bool):
    """Failed trials are counted per batch of n_jobs trials: 1 of 2 is within a rate of 0.5 (the
    search finishes, exit 0, the best trial is the one that trained) and beyond 0.25 (the search
    stops with the failed trial's status and message)."""
    sweep = tmp_path / "sweep"
    proc = run_sweep([*FAILING_TRIAL, f"hydra.sweeper.max_failure_rate={max_rate}"], sweep)
    assert "training diverged" in proc.stderr
    dirs = job_dirs(sweep)
    assert len(dirs) == 2  # both trials of the batch ran
    trained = [d for d in dirs if (d / "checkpoints" / "last.pt").is_file()]
    assert len(trained) == 1
    if tolerated:
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
        assert results["best_params"] == {"optimizer.lr_g": 1e-4}
        assert results["best_value"] == pytest.approx(read_metrics(trained[0])[-1]["loss_g"])
    else:
        assert proc.returncode == 1, proc.stderr[-3000:]  # the diverged trial's status
        assert not (sweep / "optimization_results.yaml").exists()


@pytest.mark.slow  # a sweep of two W&B runs
def test_wandb_runs_of_a_sweep_are_grouped_under_the_sweep_directory(tmp_path: Path):
    """Each job is its own W&B run, finished (exit record) before the next starts, grouped
    under the sweep directory's name."""
    import json
    import sys

    sweep = tmp_path / "sweep-20260101"
    args = [a for a in TINY if not a.startswith("logger=")]
    proc = run_sweep(["-m", *args, "logger=wandb", "loss=ns,hinge"], sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wandb_cli = Path(sys.executable).parent / "wandb"
    runs = []
    for d in job_dirs(sweep):
        (offline,) = (d / "wandb").glob("offline-run-*")
        out = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", str(offline)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        run = next(r["run"] for r in records if r.get("type") == "run")
        exits = [r["exit"] for r in records if r.get("type") == "exit"]
        assert exits and exits[0]["exit_code"] == 0, d
        runs.append(run)
    assert [r["run_group"] for r in runs] == ["sweep-20260101"] * 2
    assert len({r["run_id"] for r in runs}) == 2
    assert [r["config"]["update"]["loss"]["_target_"] for r in runs] == [
        "gan_cli.losses.NonSaturating", "gan_cli.losses.Hinge"]


@pytest.mark.slow
def test_parallel_launcher_runs_jobs_in_separate_processes(tmp_path: Path):
    sweep = tmp_path / "sweep"
    proc = run_sweep(["-m", "hydra/launcher=parallel", *TINY, "loss=ns,hinge"], sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [d.name for d in job_dirs(sweep)] == ["0", "1"]
    for d in job_dirs(sweep):
        assert (d / "checkpoints" / "last.pt").is_file()


def _compose(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_submitit_launchers_compose():
    """The cluster is not here: check what would be submitted."""
    cfg = _compose(["hydra/launcher=submitit_slurm", "hydra.launcher.nodes=2"])
    assert cfg.hydra.launcher._target_ == (
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher")
    assert cfg.hydra.launcher.nodes == 2
    # slurm_ddp sizes the job from the hardware group: one task (= one DDP rank) per GPU
    cfg = _compose(["hydra/launcher=slurm_ddp", "hardware=slurm", "hardware.nodes=3",
                    "hardware.devices=4", "hydra.launcher.partition=gpu"])
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (3, 4, 4)
    assert launcher["partition"] == "gpu"
    assert cfg.hardware.device == "cuda" and cfg.hardware.backend == "auto"


def test_submitit_launcher_config_prints_from_the_cli(tmp_path: Path):
    sweep = tmp_path / "sweep"
    # (Hydra refuses --cfg together with -m: the launcher config prints without it). Nothing
    # starts: the command runs in this process
    proc = run_in_process("gan-train", ["hydra/launcher=slurm_ddp", "hardware=slurm", "hardware.nodes=2",
                                        f"hydra.sweep.dir={sweep}", "--cfg", "all", "--package",
                                        "hydra.launcher", "--resolve"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    launcher = yaml.safe_load(proc.stdout)  # the node itself, under a "# @package" line
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 8, 8)
    assert launcher["submitit_folder"] == f"{sweep}/.submitit/%j"
    assert not sweep.exists()  # nothing was submitted or run
