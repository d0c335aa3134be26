"""Every loss trains the MLP on ring8 through the real CLI; the run-directory contract holds."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_cli.checkpoint import load_checkpoint
from tests.conftest import SMALL, assert_resumed_exactly, read_metrics, run_cli

LOSSES = ["minimax", "ns", "wgan", "wgan_gp", "lsgan", "dragan", "began", "hinge"]


def assert_run_dir_contract(run_dir: Path, steps: int) -> list[dict]:
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        assert (run_dir / ".hydra" / name).is_file()
    assert (run_dir / "train.log").is_file()
    pngs = sorted((run_dir / "samples").glob("*.png"))
    assert pngs and pngs[-1].name == f"step_{steps:08d}.png"
    assert pngs[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = read_metrics(run_dir)
    assert records and records[-1]["step"] == steps
    for r in records:
        assert {"step", "loss_d", "loss_g", "kimg", "imgs_per_s"} <= r.keys()
        assert all(math.isfinite(v) for v in r.values()), r
    # the run's peak memory: in its last record only, and on the console (training/memory.py)
    assert [r for r in records if "peak_rss_mib" in r] == records[-1:]
    assert records[-1]["peak_rss_mib"] > 100  # torch alone takes more; MiB, not KiB or bytes
    assert f"peak memory: RSS {records[-1]['peak_rss_mib']:,.0f} MiB" in (run_dir / "train.log").read_text()
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["step"] == steps
    for key in ("G", "D", "opt_g", "opt_d", "rng", "config", "loss", "data", "noise"):
        assert key in ckpt, key
    assert ckpt["opt_d"]["state"], "the optimizer state is saved, not just its settings"
    return records


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.slow
def test_every_loss_trains_mlp_on_ring8(tmp_path: Path, loss: str):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, f"loss={loss}", "model=mlp", "dataset=ring8"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = assert_run_dir_contract(run_dir, 12)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["config"]["loss"]["_target_"].endswith(
        {"minimax": "Minimax", "ns": "NonSaturating", "wgan": "WGAN", "wgan_gp": "WGANGP",
         "lsgan": "LSGAN", "dragan": "DRAGAN", "began": "BEGAN", "hinge": "Hinge"}[loss])
    if loss == "began":  # the equilibrium controller is logged
        assert {"k_t", "convergence"} <= records[-1].keys()
        assert 0 <= records[-1]["k_t"] <= 1
        assert 0 <= float(ckpt["loss"]["k_t"]) <= 1
        assert records[-1]["k_t"] > 0  # the controller moved k_t off k_init = 0
    if loss in ("wgan", "wgan_gp"):
        assert "wasserstein" in records[-1]
    if loss == "wgan":  # clipping held at the end of training
        assert all(v.abs().max() <= 0.01 + 1e-7 for v in ckpt["D"].values())


@pytest.mark.slow
def test_every_toy_dataset_trains(tmp_path: Path):
    for name in ("grid25", "sine", "swissroll"):
        run_dir = tmp_path / name
        proc = run_cli([*SMALL, f"dataset={name}", "train.steps=4", "train.log_every_steps=2"],
                       run_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert_run_dir_contract(run_dir, 4)


@pytest.mark.slow
def test_logging_intervals_and_checkpoints_kept(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "train.steps=12", "train.log_every_steps=3",
                    "train.sample_every_steps=5", "train.ckpt_every_steps=4",
                    "train.keep_ckpts=2"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["step"] for r in read_metrics(run_dir)] == [3, 6, 9, 12]
    assert [p.name for p in sorted((run_dir / "samples").glob("*.png"))] == [
        "step_00000005.png", "step_00000010.png", "step_00000012.png"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.pt", "step_00000008.pt", "step_00000012.pt"]


@pytest.mark.slow
def test_same_seed_same_weights_and_other_seed_differs(tmp_path: Path):
    weights = []
    for i, seed in enumerate((3, 3, 4)):
        run_dir = tmp_path / f"run{i}"
        assert run_cli([*SMALL, f"seed={seed}"], run_dir).returncode == 0
        weights.append(load_checkpoint(run_dir / "checkpoints" / "last.pt")["G"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path: Path):
    """N steps straight == N/2 steps, then resume for the other N/2 (bitwise, on CPU)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = [*SMALL, "loss=wgan_gp", "train.ckpt_every_steps=6"]
    assert run_cli([*base, "train.steps=12"], straight).returncode == 0
    assert run_cli([*base, "train.steps=6"], split).returncode == 0
    proc = run_cli([*base, "train.steps=12", "resume=auto"], split)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_resumed_exactly(straight, split)  # every tensor and value of the checkpoint
    # 4 and the last step (6) before the stop, then 8 and 12 after the resume
    assert [r["step"] for r in read_metrics(split)] == [4, 6, 8, 12]


@pytest.mark.slow
def test_wandb_offline_run_logs_config_losses_and_samples(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith("logger=")]
    proc = run_cli([*args, "logger=wandb"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    offline = sorted((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    wandb_cli = Path(sys.executable).parent / "wandb"
    out = subprocess.run([str(wandb_cli), "leet", "inspect", "--summary", "--json",
                          str(offline[0])], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    text = json.dumps(summary)
    assert summary["config"]["loss"]["_target_"] == "gan_cli.losses.NonSaturating"
    assert summary["config"]["train"]["steps"] == 12
    assert "loss_d" in text and "loss_g" in text and "samples" in text
    records = subprocess.run([str(wandb_cli), "leet", "inspect", "--json", str(offline[0])],
                             capture_output=True, text=True, timeout=120).stdout
    history = [json.loads(line) for line in records.splitlines() if '"history"' in line]
    assert len(history) >= 3  # one per logging step
