"""gan_cli/scripts/loss_study.py and experiment=lucic_fashion: the rows compose, the setting is the
paper's, the table's arithmetic, and the quick mode end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from gan_cli.build import build_loss
from gan_cli.config import validate
from gan_cli.scripts import loss_study as ls
from tests.conftest import REPO
from tests.test_config import compose_cfg

LOSSES = ["minimax", "ns", "lsgan", "wgan", "wgan_gp", "dragan", "began", "hinge"]


@pytest.mark.parametrize("row", ls.ROWS, ids=lambda r: r.name)
@pytest.mark.slow
def test_every_row_composes_validates_and_builds_its_loss(row):
    cfg = compose_cfg(row.args())
    validate(cfg)
    assert cfg.loss._target_ == compose_cfg([f"loss={row.loss}"]).loss._target_
    assert build_loss(cfg.loss).n_critic == cfg.loss.n_critic  # the loss's own n_critic
    assert cfg.model.generator._target_ == "gan_cli.models.infogan.Generator"


def test_the_experiment_is_the_papers_setting():
    cfg = compose_cfg(["experiment=lucic_fashion"])
    validate(cfg)
    assert cfg.dataset._target_.endswith("fashion_mnist") and cfg.dataset.split == "train"
    assert cfg.loss._target_ == "gan_cli.losses.NonSaturating"
    assert cfg.model.z_dim == 64 and cfg.train.batch_size == 64
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.optimizer.lr_g == cfg.optimizer.lr_d == 1e-4
    assert list(cfg.optimizer.betas) == [0.5, 0.999]
    assert cfg.train.steps == ls.FULL_STEPS == 20 * 60000 // 64  # 20 epochs
    assert cfg.ema.half_life_kimg is None  # no EMA of G in the paper
    # once, at the end: 10,000 samples against the 10,000 test images; FID when weights exist
    m = cfg.metrics
    assert m.every_steps == cfg.train.steps and m.split == "test"
    assert m.num_samples == m.num_real == 10000
    assert list(m.names) == ["fid", "fd_fashion"]
    # a shorter run moves the evaluation with it
    assert compose_cfg(["experiment=lucic_fashion", "train.steps=300"]).metrics.every_steps == 300


def test_rows_are_the_papers_losses_with_its_fashion_mnist_fids():
    assert [r.name for r in ls.ROWS] == LOSSES
    fid = {r.name: r.paper_fid for r in ls.ROWS}
    # Lucic et al. 2018's best FIDs on Fashion-MNIST (as quoted by Dai & Wipf 2019, Table 1)
    assert fid == {"minimax": (29.6, 1.6), "ns": (26.5, 1.6), "lsgan": (30.7, 2.2),
                   "wgan": (21.5, 1.6), "wgan_gp": (24.5, 2.1), "dragan": (27.7, 1.2),
                   "began": (22.9, 0.9), "hinge": None}


def test_commands_and_run_directories():
    ns = next(r for r in ls.ROWS if r.name == "ns")
    assert ls.args_of(ns, 2, None, False) == [
        "experiment=lucic_fashion", "loss=ns", "seed=2", "logger=none", "hardware.num_threads=1"]
    assert "train.steps=300" in ls.args_of(ns, 0, 300, False)
    quick = ls.args_of(ns, 0, None, True, "/w/inception.pth")
    assert f"train.steps={ls.QUICK_STEPS}" in quick and "metrics.num_samples=1000" in quick
    assert quick[-1] == "metrics.inception_weights=/w/inception.pth"
    assert "train.steps=50" in ls.args_of(ns, 0, 50, True)
    # results are reused only for the same length and setting
    assert [ls.length_name(None, False), ls.length_name(300, False), ls.length_name(None, True),
            ls.length_name(50, True)] == ["full", "steps300", "quick", "quick-steps50"]


def _result(row, seed, fd, cpu, fid=math.nan, steps=300):
    return ls.Result(row=row, seed=seed, steps=steps, fd_fashion=fd, fid=fid, cpu_s=cpu,
                     wall_s=cpu, command="gan-train")


def test_table_rows_by_hand():
    results = [_result("ns", 0, 40.0, 100.0), _result("ns", 1, 50.0, 140.0),
               _result("hinge", 0, 70.0, 90.0, fid=30.25)]
    text = ls.table(results, [r for r in ls.ROWS if r.name in ("ns", "wgan", "hinge")])
    lines = text.splitlines()
    ns = next(line for line in lines if line.startswith("| ns |"))
    # fd 40, 50: mean 45, sample std sqrt(2 * 5^2 / 1) = 7.07; CPU 100, 140: mean 120, max 140
    assert ns == "| ns | 2 | 300 | 45.0 ± 7.1 | n/a (no Inception weights) | 120, 140 | 26.5 ± 1.6 |"
    hinge = next(line for line in lines if line.startswith("| hinge |"))
    assert hinge == "| hinge | 1 | 300 | 70.0 | 30.2 | 90, 90 | not in the study |"
    assert not any(line.startswith("| wgan |") for line in lines)  # no runs, no line
    assert "not FID" in text


@pytest.mark.slow
def test_quick_mode_runs_gan_train_and_writes_the_table(tmp_path):
    # 1 seed, 10 steps, two rows (ns, and wgan_gp: 5 critic steps with a gradient penalty through
    # a D without BatchNorm); metrics on 1,000 samples against 1,000 test images. About a minute.
    cmd = [sys.executable, "-m", "gan_cli.scripts.loss_study", "--quick",
           "--rows", "ns,wgan_gp", "--runs", str(tmp_path), "--jobs", "1"]
    # no Inception weights (an empty torch hub): FID is dropped, never downloaded
    env = {**os.environ, "PYTHONPATH": str(REPO), "GAN_CLI_CACHE": str(tmp_path / "cache"),
           "TORCH_HOME": str(tmp_path / "torch")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    quick = tmp_path / "quick"
    runs = json.loads((quick / "runs.json").read_text())
    assert [r["row"] for r in runs] == ["ns", "wgan_gp"]
    for r in runs:
        assert r["seed"] == 0 and r["steps"] == ls.QUICK_STEPS
        assert math.isfinite(r["fd_fashion"]) and r["fd_fashion"] > 0
        assert r["cpu_s"] > 1.0  # a whole gan-train process: imports alone take seconds
        assert r["command"].startswith("gan-train experiment=lucic_fashion ")
        run_dir = quick / r["row"] / "seed0"
        log = (run_dir / "output.log").read_text()
        assert "skipping fid during training" in log and math.isnan(r["fid"])
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [rec["step"] for rec in records if "fd_fashion" in rec] == [ls.QUICK_STEPS]
    table = (quick / "table.md").read_text()
    assert table.strip() == proc.stdout.strip()
    assert sum(line.startswith(("| ns |", "| wgan_gp |")) for line in table.splitlines()) == 2
    # a second call reuses the finished runs: same numbers, no new training
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert again.returncode == 0 and again.stdout == proc.stdout
