"""gan-eval through the real CLI on checkpoints written by gan-train, its errors, and the
metrics computed during training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, SMALL, SMALL_IMAGES, read_metrics, run_cli

GAN_EVAL = Path(sys.executable).parent / "gan-eval"
HAS_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir()


def run_eval(args: list[str], run_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "GAN_CLI_CACHE": str(tmp_path / "cache"),
           "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([str(GAN_EVAL), *args, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)


@pytest.fixture(scope="module")
def ring8_ckpt(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ring8") / "run"
    proc = run_cli([*SMALL, "train.steps=30"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir / "checkpoints" / "last.pt"


def test_gan_eval_on_a_toy_checkpoint(tmp_path: Path, ring8_ckpt: Path):
    proc = run_eval([f"ckpt={ring8_ckpt}"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["step"] == 30
    values = result["metrics"]
    assert values["num_modes"] == 8
    assert 0 <= values["modes_captured"] <= 8
    assert 0 <= values["high_quality_fraction"] <= 1
    assert result["provenance"]["modes"]["num_fake"] == 2500  # the protocol's count
    assert "modes_captured" in proc.stdout and "computed against" in proc.stdout


@pytest.mark.skipif(not HAS_FASHION, reason="needs Debian's dataset-fashion-mnist")
def test_gan_eval_on_an_image_checkpoint_defaults_to_the_offline_feature_net(tmp_path: Path):
    run_dir = tmp_path / "run"
    assert run_cli([*SMALL_IMAGES, "train.steps=2", "train.log_every_steps=1"],
                   run_dir).returncode == 0
    proc = run_eval([f"ckpt={run_dir / 'checkpoints' / 'last.pt'}", "num_samples=300",
                     "num_real=256", "batch_size=100"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    values = result["metrics"]
    assert {"fd_fashion", "cis_fashion_mean", "precision_fashion", "recall_fashion",
            "nn_distance_min"} <= values.keys()
    assert "fid" not in values and "is_mean" not in values  # never called FID / IS
    assert values["fd_fashion"] > 0 and 1 <= values["cis_fashion_mean"] <= 10
    ref = result["provenance"]["fd_fashion"]["reference"]
    assert ref["split"] == "train" and ref["num_samples_used"] == 256  # dataset.limit=256
    assert (tmp_path / "eval" / "nearest_neighbours.png").is_file()


@pytest.mark.parametrize("make,words", [
    (lambda p: p / "missing.pt", ["checkpoint not found"]),
    (lambda p: (p / "corrupt.pt").write_bytes(os.urandom(4096)) and p / "corrupt.pt",
     ["corrupt"]),
    (lambda p: torch.save(torch.zeros(3), p / "tensor.pt") or p / "tensor.pt",
     ["not a gan-cli checkpoint"]),
], ids=["missing", "corrupt", "not-a-checkpoint"])
def test_gan_eval_refuses_bad_checkpoints_with_exit_1(tmp_path: Path, make, words):
    path = make(tmp_path)
    proc = run_eval([f"ckpt={path}"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr


def test_gan_eval_config_errors_exit_2(tmp_path: Path, ring8_ckpt: Path):
    for args, word in ([[], "ckpt is required"],
                       [[f"ckpt={ring8_ckpt}", "num_sample=5"], "num_samples"],
                       [[f"ckpt={ring8_ckpt}", "metrics=[fidd]"], "unknown metric"]):
        proc = run_eval(args, tmp_path / "eval", tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert word in proc.stderr, (word, proc.stderr)


def test_metrics_during_training_keep_the_best_with_its_step(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith("metrics.")]
    proc = run_cli([*args, "train.steps=12", "metrics.every_steps=4"], run_dir,
                   env={"GAN_CLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = [r for r in read_metrics(run_dir) if "modes_captured" in r]
    assert [r["step"] for r in evals] == [4, 8, 12]
    best = max(r["modes_captured"] for r in evals)
    assert evals[-1]["best/modes_captured"] == best
    first = next(r["step"] for r in evals if r["modes_captured"] == best)
    assert evals[-1]["best/modes_captured_step"] == first
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["metrics"]["best"]["modes_captured"] == [best, first]
