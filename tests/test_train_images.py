"""Image GANs through the real CLI: every loss with DCGAN on a few hundred real Fashion-MNIST
images, the conditional DCGAN's class-per-row figures, and the default experiment's config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from gan_cli.checkpoint import load_checkpoint
from tests.conftest import SMALL_IMAGES, run_cli
from tests.test_train_cli import LOSSES, assert_run_dir_contract

pytestmark = pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                                reason="needs Debian's dataset-fashion-mnist (make data)")


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_dcgan_on_fashion_mnist(tmp_path: Path, loss: str):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, f"loss={loss}", "train.steps=4", "train.log_every_steps=2",
                    "train.sample_every_steps=4", "train.ckpt_every_steps=4"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_run_dir_contract(run_dir, 4)
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert ckpt["config"]["dataset"]["_target_"].endswith("fashion_mnist")
    assert any(k.endswith("weight") and v.dim() == 4 for k, v in ckpt["G"].items())  # convs


def test_default_experiment_is_dcgan_on_fashion_mnist(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, "train.steps=2", "train.log_every_steps=1"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = load_checkpoint(run_dir / "checkpoints" / "last.pt")["config"]
    assert cfg["model"]["generator"]["_target_"] == "gan_cli.models.dcgan.Generator"
    assert cfg["loss"]["_target_"] == "gan_cli.losses.NonSaturating"
    assert cfg["optimizer"]["_target_"] == "torch.optim.Adam"
    # the figure: an 8x8 grid of 28x28 images with 2 px padding
    png = Image.open(sorted((run_dir / "samples").glob("*.png"))[-1])
    assert png.size == (8 * 30 + 2, 8 * 30 + 2)


def test_conditional_dcgan_figure_has_one_row_per_class(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, "model=cdcgan", "model.generator.width=8",
                    "model.discriminator.width=8", "train.steps=2", "train.log_every_steps=1",
                    "train.figure_samples=30"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    png = Image.open(sorted((run_dir / "samples").glob("*.png"))[-1])
    assert png.size == (3 * 30 + 2, 10 * 30 + 2)  # 10 rows (classes) of 3 samples
    ckpt = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert "embed.weight" in ckpt["G"] and "embed.weight" in ckpt["D"]  # labels reach G and D
    assert ckpt["D"]["embed.weight"].shape[0] == 10


def test_conditional_model_on_unlabelled_data_is_a_config_error(tmp_path: Path):
    proc = run_cli([*SMALL_IMAGES, "model=cdcgan", "dataset=ring8", "model.z_dim=8"],
                   tmp_path / "run")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_channels_last_gives_the_same_training_on_cpu(tmp_path: Path):
    weights = []
    for i, flag in enumerate(("false", "true")):
        run_dir = tmp_path / f"run{i}"
        proc = run_cli([*SMALL_IMAGES, "train.steps=3", "train.log_every_steps=1",
                        f"hardware.channels_last={flag}"], run_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        weights.append(load_checkpoint(run_dir / "checkpoints" / "last.pt")["G"])
    for k in weights[0]:
        torch.testing.assert_close(weights[0][k], weights[1][k], rtol=1e-4, atol=1e-5)


def test_bf16_autocast_trains_on_cpu(tmp_path: Path):
    """bf16 on the CPU runs (oneDNN's AMX path is capped: see train.py) and stays finite."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, "train.steps=3", "train.log_every_steps=1",
                    "hardware.precision=bf16"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_run_dir_contract(run_dir, 3)


@pytest.mark.slow
def test_compile_trains_on_cpu(tmp_path: Path):
    """hardware.compile=true: torch.compile'd G and D train (cold compile takes tens of seconds)."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, "train.steps=2", "train.log_every_steps=1",
                    "hardware.compile=true"], run_dir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_run_dir_contract(run_dir, 2)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_gpu_mixed_precision_channels_last_compile(tmp_path: Path, precision: str):
    """The GPU options together: autocast (fp16 with grad scalers), channels_last, compile."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL_IMAGES, "hardware=gpu", f"hardware.precision={precision}",
                    "hardware.channels_last=true", "hardware.compile=true", "train.steps=4",
                    "train.log_every_steps=2"], run_dir, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_run_dir_contract(run_dir, 4)
