"""What the console shows: the end-of-run summary, the progress bar's line and the metrics line
above it, the piped lines (with the 2D runs' high-quality share), and no warning from the
Jacobian metric."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pytest
import torch

from gan_cli.latents import jacobian_sq_norms
from gan_cli.loggers import NullLogger
from gan_cli.stats import RunLog, run_summary
from tests.conftest import SMALL, run_cli


def test_summary_prints_every_value_it_is_given_and_the_best_with_their_steps(tmp_path: Path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "curves.png").write_bytes(b"")
    (tmp_path / "wandb" / "offline-run-20260101_000000-abc").mkdir(parents=True)
    final = {"step": 500, "kimg": 16.0, "loss_d": 1.2345678, "loss_g": 0.5, "fid": 12.5,
             "best/fid": 11.25, "best/fid_step": 400, "peak_rss_mib": 812.0, "peak_cuda_mib": 0.0}
    text = run_summary(final, tmp_path, 500)
    assert text.startswith("done: 500 steps of train.steps=500;")
    for shown in ("loss_d=1.235", "loss_g=0.5", "fid=12.5", "peak_rss_mib=812", "peak_cuda_mib=0"):
        assert shown in text, text
    assert "best:       fid=11.25 (step 400)" in text
    assert "best/" not in text
    assert f"figures:    {tmp_path / 'samples'}, {tmp_path / 'curves.png'}" in text
    assert f"checkpoint: {tmp_path / 'checkpoints' / 'last.pt'}" in text
    assert f"wandb sync {tmp_path / 'wandb' / 'offline-run-20260101_000000-abc'}" in text
    assert f"gan-train resume={tmp_path} train.steps=" in text
    assert f"gan-eval ckpt={tmp_path / 'checkpoints' / 'last.pt'}" in text
    assert f"gan-sample ckpt={tmp_path / 'checkpoints' / 'last.pt'}" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_keeps_to_losses_and_speed_and_metrics_get_a_whole_line(tmp_path: Path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    shown = ("fid", "fd_fashion", "is_mean", "cis_fashion_mean", "kid_mean", "modes_captured")
    runlog = RunLog(tmp_path, NullLogger(), total_steps=10, start_step=0, shown=shown)
    runlog._bar.fp = terminal  # tqdm wrote to the stderr it found at construction
    runlog.write({"step": 5, "kimg": 1.0, "loss_d": 1.0, "loss_g": 2.0, "imgs_per_s": 100.0})
    runlog.write({"step": 10, "kimg": 2.0, "loss_d": 1.0, "loss_g": 2.0, "imgs_per_s": 100.0,
                  "fid": 10.0, "fd_fashion": 20.0, "is_mean": 3.0, "cis_fashion_mean": 4.0,
                  "kid_mean": 0.01, "modes_captured": 8})
    runlog.close()
    out = terminal.getvalue()
    assert "step 10: fid=10 fd_fashion=20 is_mean=3 cis_fashion_mean=4 kid_mean=0.01 modes_captured=8" in out
    bars = [part for part in out.replace("\r", "\n").splitlines() if "loss_d" in part]
    assert bars and all("fid" not in bar for bar in bars)


def test_jacobian_norms_are_exact_and_warn_nothing():
    torch.manual_seed(0)
    z = torch.randn(5, 3, dtype=torch.float64)
    for out_dim in (2, 7):  # rows (output <= z_dim) and columns (output > z_dim)
        G = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, out_dim))
        G = G.double()
        expected = [float(torch.autograd.functional.jacobian(G, z[i]).pow(2).sum()) for i in range(5)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = jacobian_sq_norms(G, z)
        assert got.tolist() == pytest.approx(expected, rel=1e-6)
    G = torch.nn.Linear(3, 2, bias=False)  # a linear map: ||W||_F^2 at every latent, by hand
    with torch.no_grad():
        G.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]]))
    assert jacobian_sq_norms(G, torch.randn(4, 3)).tolist() == pytest.approx([15.0] * 4)


@pytest.mark.slow
def test_piped_run_shows_the_high_quality_share_and_ends_with_the_summary(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "metrics.every_steps=12", "metrics.num_samples=500"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    step_line = next(line for line in out.splitlines() if "step 12/12" in line)
    assert "modes_captured=" in step_line and "high_quality_fraction=" in step_line
    assert "done: 12 steps of train.steps=12" in out
    assert f"gan-eval ckpt={run_dir / 'checkpoints' / 'last.pt'}" in out
    assert "Warning" not in out
