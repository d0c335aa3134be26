"""scripts/reproduce_toy.py: its rows compose, its table's arithmetic, and its quick mode end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from gan_cli.build import build_loss
from gan_cli.config import validate
from tests.conftest import REPO
from tests.test_config import compose_cfg

sys.path.insert(0, str(REPO / "scripts"))
import reproduce_toy as rt  # noqa: E402

# every row on ring8; on grid25 the rows whose overrides depend on the dataset
CASES = [(r, "ring8") for r in rt.ROWS] + [(r, "grid25") for r in rt.ROWS if r.name in ("tuned", "pacgan")]


@pytest.mark.parametrize("row, dataset", CASES, ids=lambda c: getattr(c, "name", c))
def test_every_row_composes_validates_and_builds_its_loss(row, dataset):
    cfg = compose_cfg(row.args(dataset))
    validate(cfg)
    builder = {"ring8": "ring_of_gaussians", "grid25": "grid_of_gaussians"}[dataset]
    assert cfg.dataset._target_ == f"gan_cli.data.toy.{builder}"
    assert cfg.model.generator._target_ == "gan_cli.models.mlp.Generator"
    loss = build_loss(cfg.loss)
    if row.name in ("tuned", "r1_every_step", "uniform_latent"):
        assert cfg.loss.r1_gamma > 0  # the tuned default: ns with R1, lazily on one D update in 16
        assert cfg.loss.r_interval == (1 if row.name == "r1_every_step" else 16)
        # and the metrics of the Jacobian-threshold samples beside the plain ones
        assert cfg.metrics.jacobian_threshold == 10
    else:
        assert cfg.loss.r1_gamma == 0  # the losses as their papers define them
    if row.name == "untuned":  # as the command ran before: no Jacobian-threshold pass to pay for
        assert cfg.metrics.jacobian_threshold is None
    # every row's run ends with the protocol's metric (the last step always evaluates)
    assert cfg.metrics.every_steps > 0
    assert loss.n_critic == cfg.loss.n_critic


def test_rows_cover_every_seed_loss_and_fgan_divergence():
    names = {r.name for r in rt.ROWS}
    for loss in ("minimax", "ns", "wgan", "wgan_gp", "lsgan", "dragan", "began", "hinge", "mmd"):
        assert loss in names
    for d in ("kl", "reverse_kl", "js", "pearson", "hellinger"):
        assert f"fgan_{d}" in names
    pack = next(r for r in rt.ROWS if r.name == "pacgan")
    assert "model.discriminator.pack=2" in pack.args("ring8")  # PacGAN2 on the ring
    assert "model.discriminator.pack=4" in pack.args("grid25")  # PacGAN4 on the grid


def _result(row, seed, modes, hq, rkl, cpu, dataset="ring8", num_modes=8.0):
    return rt.Result(dataset=dataset, row=row, seed=seed, modes=modes, num_modes=num_modes,
                     high_quality=hq, reverse_kl=rkl, cpu_s=cpu, wall_s=cpu, command="gan-train")


def test_the_jacobian_threshold_samples_get_a_line_of_their_own_from_the_same_runs():
    a = _result("tuned", 0, 8, 0.95, 0.01, 30.0)
    b = _result("tuned", 1, 7, 0.90, 0.05, 50.0)
    a.extra["jacobian"] = {"modes_captured": 8.0, "high_quality_fraction": 0.99, "reverse_kl": 0.02}
    b.extra["jacobian"] = {"modes_captured": 8.0, "high_quality_fraction": 0.97, "reverse_kl": None}
    text = rt.table([a, b], [r for r in rt.ROWS if r.name == "tuned"], ["ring8"])
    plain = next(line for line in text.splitlines() if "| tuned |" in line)
    assert "| 7.5 ± 0.7 / 8, min 7 | 92.5 ± 3.5, min 90.0 |" in plain and "| 0/2 | 40, 50 |" in plain
    smooth = next(line for line in text.splitlines() if "| tuned, Jacobian threshold |" in line)
    # HQ 99, 97: 98.0 ± 1.4; both runs have 8/8 and >= 97%; one reverse KL undefined; same CPU
    assert ("| 2 | 8.0 ± 0.0 / 8, min 8 | 98.0 ± 1.4, min 97.0 | 0.020 (1 undefined) | 2/2 | 40, 50 |"
            in smooth)
    # runs without it (metrics.jacobian_threshold off) get no such line
    c = _result("tuned", 2, 8, 0.95, 0.01, 30.0)
    assert "Jacobian" not in rt.table([a, c], [r for r in rt.ROWS if r.name == "tuned"], ["ring8"])


def test_spread_by_hand():
    # [1, 2, 3]: mean 2, sample std sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1
    assert rt.spread([1.0, 2.0, 3.0]) == "2.0 ± 1.0"
    # fractions shown as percent: [0.97, 0.99] -> 98.0 ± sqrt(2 * 1^2 / 1) = 1.414...
    assert rt.spread([0.97, 0.99], 100) == "98.0 ± 1.4"
    assert rt.spread([5.0]) == "5.0"  # one run has no spread
    # an undefined value (reverse KL with no high-quality sample) is left out and counted
    assert rt.spread([0.1, float("nan"), 0.3], digits=3) == "0.200 ± 0.141 (1 undefined)"
    assert rt.spread([float("nan")]) == "n/a"


def test_table_rows_by_hand():
    results = [_result("tuned", 0, 8, 0.99, 0.01, 30.0), _result("tuned", 1, 8, 0.96, 0.03, 50.0),
               _result("ns", 0, 3, 0.90, 1.2, 20.0)]
    text = rt.table(results, [r for r in rt.ROWS if r.name in ("tuned", "ns")], ["ring8"])
    lines = text.splitlines()
    tuned = next(line for line in lines if "| tuned |" in line)
    # modes 8, 8: 8.0 ± 0.0; HQ 99, 96: 97.5 ± 2.1, min 96.0; one of two runs has 8/8 and >= 97%
    # CPU 30, 50: mean 40, max 50
    assert "| 2 | 8.0 ± 0.0 / 8, min 8 | 97.5 ± 2.1, min 96.0 | 0.020 ± 0.014 | 1/2 | 40, 50 |" in tuned
    ns = next(line for line in lines if "| ns |" in line)
    assert "| 1 | 3.0 / 8, min 3 | 90.0, min 90.0 | 1.200 | 0/1 | 20, 20 |" in ns
    # the paper's rows follow the dataset's rows
    assert any("PacGAN2 (Lin et al. 2018, Table 1) | 10 | 7.9 | 95.6 | 0.07" in line for line in lines)
    assert not any("VEEGAN" in line for line in lines)  # VEEGAN's row belongs to the grid


@pytest.mark.parametrize("dataset,num_modes", [("ring8", 8), ("grid25", 25)])
def test_the_data_itself_scores_the_2d_gaussian_ceiling(dataset, num_modes):
    # a 2D Gaussian sample lies within 3 std of its centre with probability 1 - exp(-9/2)
    modes, hq, rkl = rt.data_itself(dataset, draws=4)
    assert modes == [num_modes] * 4
    ceiling = 1 - math.exp(-4.5)  # 0.98889
    assert all(abs(h - ceiling) < 4 * math.sqrt(ceiling * (1 - ceiling) / 2500) for h in hq)
    assert all(0 <= r < 0.02 for r in rkl)  # nearly uniform over the modes
    assert len(set(hq)) > 1  # four different draws


def test_last_metrics_takes_the_last_record_with_modes(tmp_path):
    records = [{"step": 10, "modes_captured": 3.0}, {"step": 20, "loss_d": 1.0},
               {"step": 30, "modes_captured": 5.0, "reverse_kl": float("nan")}, {"step": 30}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    last = rt.last_metrics(tmp_path)
    assert last["step"] == 30 and last["modes_captured"] == 5.0 and math.isnan(last["reverse_kl"])
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "loss_d": 0.5}) + "\n")
    with pytest.raises(RuntimeError, match="no modes metric"):
        rt.last_metrics(tmp_path)


@pytest.mark.slow
def test_quick_mode_runs_gan_train_and_writes_the_table(tmp_path):
    # 1 seed, 20 steps, three rows on ring8 (about 30 s: three gan-train processes)
    cmd = [sys.executable, str(REPO / "scripts" / "reproduce_toy.py"), "--quick",
           "--rows", "tuned,wgan_gp,mmd", "--datasets", "ring8", "--runs", str(tmp_path), "--jobs", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    quick = tmp_path / "quick"
    runs = json.loads((quick / "runs.json").read_text())
    assert [r["row"] for r in runs] == ["tuned", "wgan_gp", "mmd"]
    for r in runs:
        assert r["seed"] == 0 and r["num_modes"] == 8.0 and r["extra"]["step"] == 20
        assert 0 <= r["modes"] <= 8 and 0.0 <= r["high_quality"] <= 1.0
        assert r["cpu_s"] > 1.0  # a whole gan-train process: imports alone take seconds
        assert r["command"].startswith("gan-train ") and "seed=0" in r["command"]
        # the run directory is gan-train's own, with the metrics the row was read from
        assert (quick / "ring8" / r["row"] / "seed0" / "metrics.jsonl").exists()
    table = (quick / "table.md").read_text()
    assert table.strip() == proc.stdout.strip()
    # each run also logged the Jacobian threshold's metrics (the 2D mixtures' recipe): a second
    # line per row, from the same runs; + the data itself and the paper's two rows
    for r in runs:
        assert set(r["extra"]["jacobian"]) == {"modes_captured", "high_quality_fraction", "reverse_kl"}
    assert sum(line.startswith("| ring8 | ") for line in table.splitlines()) == 3 * 2 + 1 + 2
    assert "| ring8 | tuned, Jacobian threshold | 1 |" in table
    # a second call reuses the finished runs: same numbers, no new training
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == proc.stdout
