"""gan-eval through the real CLI on checkpoints written by gan-train, its errors, and the
metrics computed during training."""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_cli.build import generator_from_checkpoint
from gan_cli.seeding import derive_seed
from tests.conftest import SMALL, read_metrics, run_cli

HAS_FASHION = Path("/usr/share/datasets/fashion-mnist").is_dir()


def run_eval(args: list[str], run_dir: Path, tmp_path: Path,
             extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """``gan-eval`` with ``args`` into ``run_dir``, its cache under ``tmp_path``: in this process
    (tests/inprocess.py), or installed as a command in a new one where ``extra_env`` asks for what
    only a process of its own can have (an injected sitecustomize, TORCH_HOME, ...)."""
    return run_cli(args, run_dir, prog="gan-eval", cwd=tmp_path, timeout=600,
                   env={"GAN_CLI_CACHE": str(tmp_path / "cache"), **(extra_env or {})})


# ring8 with wider modes than its 0.02: after a few steps many samples are within 3 std of a
# mode, so the mode metrics are not all zero and can be checked by hand (measured: 30 steps at
# std 0.3 give 90% high-quality samples, 12 steps at std 0.5 some too)
RING = {"num_modes": 8, "radius": 2.0}


@pytest.fixture(scope="module")
def ring8_ckpt(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ring8") / "run"
    proc = run_cli([*SMALL, "train.steps=30", "dataset.std=0.3"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir / "checkpoints" / "last.pt"


def eval_stream(G: torch.nn.Module, n: int, z_dim: int, seed: int = 0,
                batch: int = 250) -> torch.Tensor:
    """The samples gan-eval and the in-training metrics draw, replayed with torch alone: one
    generator seeded from (seed, "eval_z"), batches of 250, each a latent block then (for a
    conditional G) a label block."""
    g = torch.Generator().manual_seed(derive_seed(seed, "eval_z"))
    out = []
    with torch.no_grad():
        for start in range(0, n, batch):
            m = min(batch, n - start)
            z = torch.randn(m, z_dim, generator=g)
            y = torch.randint(G.num_classes, (m,), generator=g) if G.num_classes else None
            out.append(G.eval()(z, y).float())
    return torch.cat(out)


def modes_by_hand(points: np.ndarray, std: float) -> dict[str, float]:
    """The PacGAN protocol in numpy: nearest of the 8 ring centres, high quality within 3 std,
    modes captured, and KL(q || uniform) of the high-quality histogram."""
    k = np.arange(RING["num_modes"])
    centres = RING["radius"] * np.stack([np.cos(2 * np.pi * k / 8), np.sin(2 * np.pi * k / 8)], 1)
    dist = np.sqrt(((points[:, None, :] - centres[None]) ** 2).sum(-1))
    nearest, good = dist.argmin(1), dist.min(1) <= 3 * std
    counts = np.bincount(nearest[good], minlength=8)
    q = counts[counts > 0] / good.sum()
    return {"modes_captured": float((counts > 0).sum()), "high_quality_fraction": good.mean(),
            "reverse_kl": float((q * np.log(q * 8)).sum())}


@pytest.mark.slow
def test_gan_eval_on_a_toy_checkpoint(tmp_path: Path, ring8_ckpt: Path):
    proc = run_eval([f"ckpt={ring8_ckpt}"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["step"] == 30
    values = result["metrics"]
    assert values["num_modes"] == 8
    assert result["provenance"]["modes"]["num_fake"] == 2500  # the protocol's count
    assert "modes_captured" in proc.stdout and "computed against" in proc.stdout
    # the same 2,500 samples judged here by hand
    G = generator_from_checkpoint(ring8_ckpt, device=torch.device("cpu")).G
    expected = modes_by_hand(eval_stream(G, 2500, G.z_dim).double().numpy(), std=0.3)
    assert 0 < expected["high_quality_fraction"] < 1  # a case with something to count
    assert values["modes_captured"] == expected["modes_captured"]
    assert values["high_quality_fraction"] == pytest.approx(expected["high_quality_fraction"],
                                                            abs=1e-12)
    assert values["reverse_kl"] == pytest.approx(expected["reverse_kl"], rel=1e-9)


@pytest.mark.skipif(not HAS_FASHION, reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.slow
def test_gan_eval_on_an_image_checkpoint_defaults_to_the_offline_feature_net(tmp_path: Path,
                                                                           fashion_dcgan_run: Path):
    run_dir = fashion_dcgan_run  # tiny=images, 2 steps (tests/conftest.py)
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
@pytest.mark.slow
def test_gan_eval_refuses_bad_checkpoints_with_exit_1(tmp_path: Path, make, words):
    path = make(tmp_path)
    proc = run_eval([f"ckpt={path}"], tmp_path / "eval", tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr


@pytest.mark.slow
def test_gan_eval_config_errors_exit_2(tmp_path: Path, ring8_ckpt: Path):
    for args, word in ([[], "ckpt is required"],
                       [[f"ckpt={ring8_ckpt}", "num_sample=5"], "num_samples"],
                       [[f"ckpt={ring8_ckpt}", "metrics=[fidd]"], "unknown metric"]):
        proc = run_eval(args, tmp_path / "eval", tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert word in proc.stderr, (word, proc.stderr)


@pytest.mark.slow
def test_metrics_during_training_keep_the_best_with_its_step(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith("metrics.")]
    proc = run_cli([*args, "train.steps=12", "metrics.every_steps=4", "ema.half_life_kimg=null",
                    "loss=ns", "optimizer.lr_g=2e-4", "optimizer.lr_d=2e-4", "dataset.std=0.5",
                    "model.generator.hidden=[256,256,256]",
                    "model.discriminator.hidden=[256,256,256]"], run_dir,
                   env={"GAN_CLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = [r for r in read_metrics(run_dir) if "modes_captured" in r]
    assert [r["step"] for r in evals] == [4, 8, 12]
    # the last evaluation, of the last checkpoint's G (no EMA), worked out by hand
    G = generator_from_checkpoint(run_dir / "checkpoints" / "last.pt",
                                  device=torch.device("cpu")).G
    expected = modes_by_hand(eval_stream(G, 2500, G.z_dim).double().numpy(), std=0.5)
    assert 0 < expected["high_quality_fraction"] < 1
    assert evals[-1]["modes_captured"] == expected["modes_captured"]
    assert evals[-1]["high_quality_fraction"] == pytest.approx(
        expected["high_quality_fraction"], abs=1e-12)
    assert evals[-1]["reverse_kl"] == pytest.approx(expected["reverse_kl"], rel=1e-9)
    best = max(r["modes_captured"] for r in evals)
    assert evals[-1]["best/modes_captured"] == best
    first = next(r["step"] for r in evals if r["modes_captured"] == best)
    assert evals[-1]["best/modes_captured_step"] == first
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["metrics"]["best"]["modes_captured"] == [best, first]


def replay_labels(n: int, z_dim: int = 100, seed: int = 0, batch: int = 250) -> torch.Tensor:
    """The labels of ``eval_stream`` for a 10-class G (its latent draws skipped over)."""
    g = torch.Generator().manual_seed(derive_seed(seed, "eval_z"))
    out = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        torch.randn(m, z_dim, generator=g)
        out.append(torch.randint(10, (m,), generator=g))
    return torch.cat(out)


def fashion_train_images(n: int) -> torch.Tensor:
    """The first ``n`` Fashion-MNIST training images in [-1, 1], read from Debian's IDX file
    with gzip and numpy (16-byte header, then 28 x 28 bytes per image)."""
    with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb") as f:
        raw = np.frombuffer(f.read(16 + n * 784), dtype=np.uint8)[16:]
    return torch.from_numpy(raw.astype(np.float64).reshape(n, 1, 28, 28) / 127.5 - 1.0)


def record_g_labels(monkeypatch) -> list:
    """A probe in DCGAN's generator: the labels of every call, in order (None for no labels)."""
    from gan_cli.models import dcgan

    labels, forward = [], dcgan.Generator.forward

    def probe(self, z, y=None):
        labels.append(None if y is None else y.detach().cpu().clone())
        return forward(self, z, y)

    monkeypatch.setattr(dcgan.Generator, "forward", probe)
    return labels


@pytest.mark.slow  # a training run and a gan-eval run
@pytest.mark.skipif(not HAS_FASHION, reason="needs Debian's dataset-fashion-mnist")
def test_gan_eval_on_a_conditional_generator(tmp_path: Path, monkeypatch, fashion_cdcgan_run: Path):
    """A class-conditional DCGAN: gan-eval gives G labels drawn with its latents (the stream
    replayed here), uniform over the 10 classes; the nearest-neighbour distances of its first 8
    samples to the 256 training images are worked out here from the raw IDX file."""
    ckpt = fashion_cdcgan_run / "checkpoints" / "last.pt"  # 2 steps (tests/conftest.py)
    calls = record_g_labels(monkeypatch)  # gan-eval runs in this process (run_eval)
    proc = run_eval([f"ckpt={ckpt}", "num_samples=300", "num_real=256", "batch_size=250"],
                    tmp_path / "eval", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = calls[:]  # gan-eval's calls only, not those below
    G = generator_from_checkpoint(ckpt, device=torch.device("cpu")).G
    assert G.num_classes == 10
    assert calls and all(y is not None for y in calls)  # every sample drawn with labels
    first = torch.cat(calls)[:300]  # the 300 samples of the feature metrics (250 + 50)
    assert torch.equal(first, replay_labels(300, G.z_dim))
    assert torch.bincount(first, minlength=10).min() >= 10  # every class, about 30 each
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    values = result["metrics"]
    assert result["generator"] == "G" and result["step"] == 2
    assert {"fd_fashion", "cis_fashion_mean", "precision_fashion", "recall_fashion"} <= set(values)
    assert all(math.isfinite(v) for v in values.values())
    queries = eval_stream(G, 8, G.z_dim).double().flatten(1)
    d = torch.cdist(queries, fashion_train_images(256).flatten(1)).min(1).values
    assert values["nn_distance_min"] == pytest.approx(d.min().item(), rel=1e-4)
    assert values["nn_distance_mean"] == pytest.approx(d.mean().item(), rel=1e-4)
