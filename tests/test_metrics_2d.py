"""The 2D sets' metrics: the energy distance and its floor, each mode's spread, precision/recall in
the data's coordinates, each against values worked out by hand; and gan-eval on a sine run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gan_cli.data.toy import ring_of_gaussians, sine
from gan_cli.metrics.registry import compute_metrics
from gan_cli.metrics.scores import precision_recall
from gan_cli.metrics.toy import mode_spread
from gan_cli.metrics.tracker import metric_options, real_data
from gan_cli.metrics.two_sample import energy_distance
from tests.conftest import SMALL, run_cli
from tests.inprocess import run_in_process

RUN = {"batch_size": 32, "device": "cpu", "seed": 0}


def test_energy_distance_by_hand():
    # X = {0}, Y = {1}: 2 |0 - 1| - 0 - 0 = 2
    assert energy_distance(torch.tensor([[0.0]]), torch.tensor([[1.0]])) == pytest.approx(2.0)
    # X = {0, 2}, Y = {1}: E|X-Y| = 1, E|X-X'| = (0 + 2 + 2 + 0) / 4 = 1 (pairs i = j included),
    # E|Y-Y'| = 0: 2 - 1 - 0 = 1
    assert energy_distance(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0]])) == pytest.approx(1.0)
    # 2D, Euclidean: X = {(0,0), (3,4)}, Y = {(0,0)}: E|X-Y| = 2.5, E|X-X'| = 10 / 4 = 2.5: 2.5
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert energy_distance(x, torch.tensor([[0.0, 0.0]])) == pytest.approx(2.5)
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-12)


def test_energy_distance_is_scipys_squared_in_1d():
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, generator=g), 0.5 + 2 * torch.randn(200, generator=g)
    ours = energy_distance(x[:, None], y[:, None])
    assert ours == pytest.approx(scipy_stats.energy_distance(x.numpy(), y.numpy()) ** 2, rel=1e-9)


def test_mode_spread_by_hand():
    modes = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    pts = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0],  # mode 0
                        [0.0, 7.0],  # nearest mode 0 but 7 std away: not counted
                        [10.0, 0.5]])  # mode 1 alone: fewer than 2 points
    r = mode_spread(pts, modes, std=1.0, radius=6.0)
    # mode 0: mean (0, 0), variance 0.5 per coordinate -> sqrt(0.5) / 1
    assert r[0].item() == pytest.approx(math.sqrt(0.5))
    assert math.isnan(r[1].item()) and math.isnan(r[2].item())
    # a mode's offset does not count: the same four points moved by (0.5, 0.5)
    assert mode_spread(pts[:4] + 0.5, modes, 1.0)[0].item() == pytest.approx(math.sqrt(0.5))


def test_precision_one_recall_zero_by_hand():
    """Precision 1 and recall 0 together can be right: k = 1 in 1D, real {0, 1, 2, 10}: radii 1, 1,
    1 and 8 (10's nearest real is 2). Generated {5, 5.5, 6, 6.5} lie 3.5-5 from 10, inside its
    ball: precision 1. Their radii are 0.5; every real point is >= 3 from them: recall 0."""
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0]])
    fake = torch.tensor([[5.0], [5.5], [6.0], [6.5]])
    assert precision_recall(real, fake, k=1) == (1.0, 0.0)
    # one generated point moved to -1.5: 1.5 from 0 (radius 1), 11.5 from 10 (radius 8): outside
    assert precision_recall(real, torch.tensor([[-1.5], [5.5], [6.0], [6.5]]), k=1)[0] == 0.75
    # collapsed samples inside the data: all four at 1.5 -> precision 1, radius 0 -> recall 0
    assert precision_recall(real[:3], torch.full((4, 1), 1.5), k=1) == (1.0, 0.0)


def _metrics(source, names, shift=(0.0, 0.0), n=2500):
    g = torch.Generator().manual_seed(123)
    sample = lambda m: source.draw(m, g) + torch.tensor(shift)  # noqa: E731
    options = metric_options(source, {"num_fake": n, "num_real": 10000, "device": "cpu"})
    provenance: dict = {}
    values = compute_metrics(names, sample, real_data(source, 10000, "train"), options, provenance)
    return values, provenance


def test_energy_on_sine_against_its_floor(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path))
    source = sine(**RUN)
    assert source.default_metrics == ("energy",)
    same, prov = _metrics(source, ["energy"])
    assert len(prov["energy"]["floor_pairs"]) == 3
    assert 0 < same["energy_distance_floor"] < 0.01
    assert same["energy_distance"] < 3 * same["energy_distance_floor"]  # drawn from the data itself
    shifted, _ = _metrics(source, ["energy"], shift=(0.0, 0.3))
    assert shifted["energy_distance"] > 10 * shifted["energy_distance_floor"]


def test_a_runs_later_evaluations_reuse_the_floor_and_give_the_same_numbers(tmp_path, monkeypatch):
    """The real points are the same at each evaluation of a run: the floor and the reference's
    self-distance are computed at the first (1 + 3 x 2 + 2 distance matrices), a later evaluation
    computes the generated sample's two, and every number is energy_distance's."""
    from gan_cli.metrics import two_sample
    from gan_cli.metrics.defs import two_sample as energy_def

    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path))
    monkeypatch.setattr(energy_def, "_FLOORS", {})
    calls = []
    mean_distance = two_sample._mean_distance
    monkeypatch.setattr(two_sample, "_mean_distance", lambda a, b: calls.append(1) or mean_distance(a, b))
    source = sine(**RUN)
    first, prov = _metrics(source, ["energy"])
    assert len(calls) == 9
    n = prov["energy"]["num_fake"]
    fake = source.draw(n, torch.Generator().manual_seed(1)) + torch.tensor([0.0, 0.3])
    drawn = []  # the sampler is asked for batches: hand out fake in order
    sampler = lambda m: drawn.append(m) or fake[sum(drawn) - m:sum(drawn)]  # noqa: E731
    second = compute_metrics(["energy"], sampler, real_data(source, 10000, "train"), {"num_fake": n})
    assert len(calls) == 11
    assert second["energy_distance_floor"] == first["energy_distance_floor"]
    real = torch.cat([b.double() for b in real_data(source, 10000, "train").batches()])[:4 * n]
    assert second["energy_distance"] == pytest.approx(energy_distance(fake, real[:n]), rel=1e-12)
    floors = [energy_distance(real[i:i + n], real[:n]) for i in (n, 2 * n, 3 * n)]
    assert prov["energy"]["floor_pairs"] == pytest.approx(floors, rel=1e-12)
    # other real points (ring8's): a floor of their own, never the sine's
    before = len(calls)
    ring, _ = _metrics(ring_of_gaussians(**RUN), ["energy"])
    assert len(calls) - before == 9 and ring["energy_distance_floor"] != first["energy_distance_floor"]


def test_ring8_spread_and_pr_in_data_space(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))  # no Inception anywhere
    source = ring_of_gaussians(**RUN)
    assert source.default_metrics == ("modes", "mode_spread", "energy")
    values, prov = _metrics(source, ["modes", "mode_spread", "pr"])
    assert values["modes_captured"] == 8
    assert 0.93 < values["mode_std_ratio_min"] <= values["mode_std_ratio_mean"] < 1.05
    assert len(prov["mode_spread"]["per_mode"]) == 8
    assert prov["pr"]["features"] == "data"
    assert values["precision"] > 0.9 and values["recall"] > 0.9
    # every mode squeezed to a third of its spread: high quality stays, the spread shows it
    centres = source.modes[torch.arange(2500) % 8]
    narrow = lambda m: centres[:m] + 0.3 * source.mode_std * torch.randn(m, 2)  # noqa: E731
    out = compute_metrics(["modes", "mode_spread"], narrow, real_data(source, 10000, "train"),
                          {"num_fake": 2500})
    assert out["high_quality_fraction"] == 1.0
    assert out["mode_std_ratio_min"] > 0.25 and out["mode_std_ratio_max"] < 0.35


@pytest.mark.slow
def test_gan_eval_on_a_sine_run_prints_the_energy_distance_and_its_floor(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "dataset=sine"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = run_dir / "checkpoints" / "last.pt"
    proc = run_in_process("gan-eval", [f"ckpt={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path,
                          {"GAN_CLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("energy_distance "))
    assert "real-vs-real floor" in line, proc.stdout


def test_too_few_real_samples_for_the_energy_floor_stop_the_run_before_it_starts(tmp_path):
    """energy reads 2 x 2,500 real points (its reference and one floor sample): metrics.num_real
    below that is refused at the start (exit 2), not at the first metrics step."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "metrics.every_steps=6", "metrics.num_real=1000"], run_dir)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "metrics.num_real=1000: the 'energy' metric reads 5000 real samples" in proc.stderr
    assert not (run_dir / "metrics.jsonl").exists() or not (run_dir / "metrics.jsonl").read_text().strip()
