"""scripts/toy_mode_report.py: per-mode offsets of G's samples and D's peak and gradient there,
against values worked out by hand, and the script on a real toy checkpoint."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import SMALL, run_cli

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("toy_mode_report", REPO / "scripts" / "toy_mode_report.py")
report = importlib.util.module_from_spec(spec)
sys.modules["toy_mode_report"] = report  # its dataclass looks its module up
spec.loader.exec_module(report)


def test_offsets_peak_and_gradient_by_hand():
    std = 0.1
    modes = torch.tensor([[0.0, 0.0], [4.0, 0.0]])
    # mode 0: four samples, one of them 0.35 from the centre (beyond 3 std, within 6); mode 1:
    # nothing near it
    points = torch.tensor([[0.2, -0.1], [0.1, -0.1], [0.35, 0.0], [0.2, -0.1]])  # 3rd: 3.5 std
    D = lambda x: -(x ** 2).sum(1)  # noqa: E731 - peaks at (0, 0): D(0) = 0, -9 std^2 on the 3-std circle
    rows = report.mode_report(points, modes, std, D)
    r0, r1 = rows
    assert r0.count == 4 and r0.high_quality == pytest.approx(3 / 4)
    mean = points.mean(0)  # (0.2125, -0.075)
    assert r0.offset_std == pytest.approx((mean[0].item() / std, mean[1].item() / std), abs=1e-5)
    assert r0.d_peak == pytest.approx(9 * std ** 2, rel=1e-5)  # 0 - (-(0.3)^2)
    assert r0.d_grad_norm == pytest.approx(2 * mean.norm().item(), rel=1e-5)  # grad = -2x
    # mode 1: D = -16 at its centre, -(16 + 0.09) on average over the circle (the cross term
    # 2 * 4 * 0.3 cos(a) averages to 0 over the circle's equally spaced angles)
    assert r1.count == 0 and math.isnan(r1.high_quality) and math.isnan(r1.d_grad_norm)
    assert r1.d_peak == pytest.approx(0.09, rel=1e-4)


@pytest.mark.slow
def test_the_script_reports_every_mode_of_a_toy_run(tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    assert run_cli([*SMALL, "dataset=grid25"], run_dir).returncode == 0
    assert report.main(["--ckpt", str(run_dir / "checkpoints" / "last.pt"), "--n", "500"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "step 12" in out[0] and "D peak" in out[1]
    assert len(out) == 2 + 25  # a line per mode of the grid
    assert report.main(["--ckpt", str(run_dir / "checkpoints" / "last.pt"), "--n", "500",
                        "--worst", "3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + 3
