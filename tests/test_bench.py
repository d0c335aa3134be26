"""The benchmarks (scripts/bench_train.py, bench_data.py, bench_gpu.py; docs/performance.md): their
formulas and reference loops by hand, and each script end to end in its --dry mode."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_data  # noqa: E402
import bench_gpu  # noqa: E402
import bench_train  # noqa: E402

from tests.inprocess import call_in_process  # noqa: E402

# -----------------------------------------------------------------------------------------------
# Tiny stand-ins for G and D whose outputs are known by hand.


class LinearD(nn.Module):
    """D(x) = <w, x>, one score per sample: its input gradient is w everywhere."""

    def __init__(self, w: tuple[float, float]) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.lin(x).squeeze(1)


class ConstantG(nn.Module):
    """G(z) = the same point p for every z (p a parameter, so the G step has a graph)."""

    def __init__(self, point: tuple[float, float]) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(point))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.p.expand(len(z), 2)


def frozen_optimizers(G: nn.Module, D: nn.Module) -> tuple[torch.optim.SGD, torch.optim.SGD]:
    """SGD with learning rate 0: the steps run, the weights (and so the losses) stay put."""
    return torch.optim.SGD(G.parameters(), lr=0.0), torch.optim.SGD(D.parameters(), lr=0.0)


REAL, FAKE = (1.0, 0.0), (0.0, 1.0)  # D(real) = w[0], D(fake) = w[1]


def real_batches(batch: int = 4) -> bench_train.EpochBatches:
    return bench_train.EpochBatches(torch.tensor([REAL] * 8), batch)


# -----------------------------------------------------------------------------------------------
# The reference loops compute the losses they are documented to compute.


def test_dcgan_reference_step_is_the_bce_game_by_hand():
    # w = (ln 3, ln 3): D(real) = D(fake) = ln 3.
    # loss_d = softplus(-ln 3) + softplus(ln 3) = ln(1 + 1/3) + ln(1 + 3) = ln(16/3)
    # loss_g = softplus(-ln 3) = ln(4/3); the three printed D means are ln 3.
    G, D = ConstantG(FAKE), LinearD((math.log(3), math.log(3)))
    opt_g, opt_d = frozen_optimizers(G, D)
    step = bench_train.dcgan_step(G, D, opt_g, opt_d, real_batches(), 5, 4, torch.device("cpu"))
    err_d, err_g, d_x, d_g_z1, d_g_z2 = step()
    assert err_d == pytest.approx(math.log(16 / 3), rel=1e-6)
    assert err_g == pytest.approx(math.log(4 / 3), rel=1e-6)
    assert (d_x, d_g_z1, d_g_z2) == pytest.approx((math.log(3),) * 3, rel=1e-6)


def test_wgan_gp_reference_step_by_hand():
    # w = (3, 4): D(real) = 3, D(fake) = 4, ||grad D|| = 5 at every interpolate, so
    # d_cost = 4 - 3 + 10 (5 - 1)^2 = 161 and g_cost = -D(fake) = -4.
    G, D = ConstantG(FAKE), LinearD((3.0, 4.0))
    opt_g, opt_d = frozen_optimizers(G, D)
    real = lambda: torch.tensor([REAL] * 4)
    step = bench_train.wgan_gp_step(G, D, opt_g, opt_d, real, 5, 4, 2, 10.0, torch.device("cpu"))
    d_cost, g_cost = step()
    assert d_cost == pytest.approx(161.0, rel=1e-6)
    assert g_cost == pytest.approx(-4.0, rel=1e-6)
    assert not any(p.requires_grad for p in D.parameters())  # D frozen for the G step
    assert G.p.grad.tolist() == pytest.approx([-3.0, -4.0])  # d(-<w, p>)/dp = -w


def test_hinge_reference_step_by_hand():
    # w = (1, 2): relu(1 - D(real)) = relu(0) = 0, relu(1 + D(fake)) = 3; loss_g = -D(fake) = -2.
    G, D = ConstantG(FAKE), LinearD((1.0, 2.0))
    opt_g, opt_d = frozen_optimizers(G, D)
    step = bench_train.hinge_step(G, D, opt_g, opt_d, real_batches(), 5, 4, 2, torch.device("cpu"))
    loss_d, loss_g = step()
    assert loss_d == pytest.approx(3.0)
    assert loss_g == pytest.approx(-2.0)


def test_epoch_batches_visit_every_row_once_per_epoch():
    torch.manual_seed(0)
    x = torch.arange(10, dtype=torch.float32)
    batches = bench_train.EpochBatches(x, 3)
    first_epoch = torch.cat([batches.next() for _ in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # 3 batches of 3, no repeat; row 10 dropped
    assert batches.next().tolist() != [] and batches.position == 3  # a new epoch began


def test_ring_sampler_draws_the_ring_of_gaussians():
    torch.manual_seed(0)
    points = bench_train.ring_sampler(8, 2.0, 1e-6, 4000, torch.device("cpu"))()
    assert points.shape == (4000, 2)
    assert points.norm(dim=1) == pytest.approx(torch.full((4000,), 2.0), abs=1e-4)
    k = torch.atan2(points[:, 1], points[:, 0]) * 8 / (2 * math.pi)  # centre k at angle 2 pi k / 8
    assert (k - k.round()).abs().max() < 1e-4
    assert set((k.round() % 8).long().tolist()) == set(range(8))


# -----------------------------------------------------------------------------------------------
# Summaries and formulas.


def test_summarize_takes_the_median_of_paired_ratios():
    # ratios 110/100, 180/200, 330/300 = 1.1, 0.9, 1.1 -> median 1.1; the ratio of the medians
    # (180 / 200 = 0.9) would differ: the pairs are what is compared.
    s = bench_train.summarize([100.0, 200.0, 300.0], [110.0, 180.0, 330.0])
    assert s.ratio == pytest.approx(1.1)
    assert (s.gan_cli_median, s.reference_median) == (180.0, 200.0)
    assert s.gan_cli_range == (110.0, 330.0) and s.reference_range == (100.0, 300.0)
    assert s.ratio_range == pytest.approx((0.9, 1.1))
    with pytest.raises(ValueError):
        bench_train.summarize([1.0], [])


def test_summary_lines_start_with_the_ratio_line():
    result = {"steps": 40, "repeats": 3,
              "summary": bench_train.summarize([100.0, 200.0, 300.0], [110.0, 180.0, 330.0]).__dict__}
    lines = bench_train.summary_lines("dcgan28", result)
    assert lines[0] == "ratio dcgan28 1.10"
    assert "gan-cli 180.0/s (110.0..330.0)" in lines[1] and "reference 200.0/s (100.0..300.0)" in lines[1]


def test_gpu_formulas_by_hand():
    assert bench_gpu.s_per_kimg(250.0) == pytest.approx(4.0)  # 1000 images in 4 s
    assert bench_gpu.scaling_efficiency(1800.0, 1000.0, 2) == pytest.approx(0.9)
    assert bench_gpu.r1_gamma_auto(128, 32) == pytest.approx(0.1024)  # 0.0002 * 16384 / 32


def test_replace_between_markers():
    text = "intro\n<!-- gpu-table -->\nold table\n<!-- /gpu-table -->\noutro\n"
    assert bench_gpu.replace_between_markers(text, "| new |\n") == (
        "intro\n<!-- gpu-table -->\n| new |\n<!-- /gpu-table -->\noutro\n")
    with pytest.raises(ValueError):
        bench_gpu.replace_between_markers("no markers", "x")
    with pytest.raises(ValueError):
        bench_gpu.replace_between_markers("<!-- /gpu-table -->\n<!-- gpu-table -->\n", "x")
    # the real file has them
    bench_gpu.replace_between_markers((REPO / "docs" / "performance.md").read_text(), "x")


def fail_with(error: Exception):
    def fn():
        raise error

    return fn


def test_recorder_keeps_going_after_a_case_fails(capsys):
    rec = bench_gpu.Recorder(budget_s=600)
    ok = rec.attempt("a", "v", lambda: [bench_gpu.Row("a", "v", imgs_per_s=1.0)])
    missing = rec.attempt("b", "v", lambda: [], check=fail_with(KeyError("model=x")))
    failed = rec.attempt("c", "v", fail_with(RuntimeError("out of memory")))
    assert ok[0].status == "ok"
    assert missing[0].status == "not available: KeyError: 'model=x'"
    assert failed[0].status == "failed: RuntimeError: out of memory"
    late = bench_gpu.Recorder(budget_s=0).attempt("d", "v", lambda: pytest.fail("must not run"))
    assert late[0].status.startswith("skipped")
    assert [r.case for r in rec.rows] == ["a", "b", "c"]
    assert "failed: RuntimeError: out of memory" in capsys.readouterr().out


def test_markdown_table_has_one_line_per_row():
    rows = [bench_gpu.Row("dcgan64", "gan-cli fp32", imgs_per_s=1000.0, imgs_per_s_range=(900.0, 1100.0),
                          vs_plain_fp32=1.25, peak_mem_gib=1.5),
            bench_gpu.Row("ddp", "gan-train, N GPUs", status="not available: 1 GPU")]
    table = bench_gpu.markdown(rows, "header").splitlines()
    assert table[0] == "header"
    assert table[4] == "| dcgan64 | gan-cli fp32 | 1000.0 (900..1100) | 1.25 |  |  | 1.50 |  |"
    assert table[5].startswith("| ddp | gan-train, N GPUs | not available: 1 GPU |")


def test_png_folder_and_timed_source(tmp_path: Path):
    from PIL import Image

    paths = bench_data.write_png_folder(tmp_path, 3, 16)
    assert [p.name for p in paths] == ["000000.png", "000001.png", "000002.png"]
    with Image.open(paths[0]) as im:
        assert im.size == (16, 16) and im.mode == "RGB"

    class Source:
        info = "facts"

        def next(self):
            return "batch"

    timed = bench_data.TimedSource(Source(), torch.device("cpu"))
    assert (timed.next(), timed.next(), timed.info) == ("batch", "batch", "facts")
    assert len(timed.wait_s) == 2 and all(t >= 0 for t in timed.wait_s)


# -----------------------------------------------------------------------------------------------
# The scripts end to end (--dry: tiny networks, two steps).


def run_script(args: list[str], tmp_path: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def run_main(script, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """``script.main(args)`` in this process (tests/inprocess.py: the script end to end, its status
    and output, without a new interpreter importing torch; threads, random streams, environment
    and working directory restored), for the scripts that start no DataLoader workers."""
    proc = call_in_process(lambda: script.main(args), [script.__file__, *args], tmp_path,
                           {"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_bench_train_dry_prints_a_ratio_line_per_case(tmp_path: Path):
    out = tmp_path / "train.json"
    proc = run_main(bench_train, ["--dry", "--threads", "1", "--json", str(out)], tmp_path)
    ratios = dict(re.findall(r"^ratio (\w+) (\d+\.\d\d)$", proc.stdout, flags=re.M))
    assert set(ratios) == {"dcgan28", "dcgan64", "toy", "sngan32"}
    assert all(float(r) > 0 for r in ratios.values())
    results = json.loads(out.read_text())["cases"]
    assert all(len(c["reference"]) == len(c["gan_cli"]) == 1 for c in results.values())


@pytest.mark.slow
def test_bench_models_dry_prints_speed_and_peak_memory_per_family(tmp_path: Path):
    proc = run_script([str(SCRIPTS / "bench_models.py"), "--dry"], tmp_path)
    rows = re.findall(r"^(\w+) +([\d.]+) +([\d.]+) +([\d.]+) +([\d,]+)$", proc.stdout, flags=re.M)
    assert [r[0] for r in rows] == ["dcgan", "stylegan2"], proc.stdout
    for _, cpu, wall, step_s, rss in rows:
        assert float(cpu) > 0 and float(wall) > 0 and float(step_s) > 0
        assert int(rss.replace(",", "")) > 100  # MiB: torch alone takes more
    assert proc.stdout.startswith("machine: ")


@pytest.mark.slow
def test_bench_models_parts_dry_times_each_part_of_a_stylegan2_step(tmp_path: Path):
    proc = run_script([str(SCRIPTS / "bench_models.py"), "--parts", "--dry"], tmp_path)
    parts = dict(re.findall(r"^(\S.*?) +(\d+\.\d\d +\d+\.\d\d)$", proc.stdout, flags=re.M))
    assert {"G forward (graph)", "D backward", "lazy R1: gradients", "lazy PathLength: term",
            "plain step (the first five)"} <= parts.keys(), proc.stdout


@pytest.mark.slow
def test_bench_data_dry_reports_each_source_share(tmp_path: Path):
    proc = run_script([str(SCRIPTS / "bench_data.py"), "--dry", "--threads", "1"], tmp_path)
    shares = dict(re.findall(r"^share (\w+) (\d+\.\d)%$", proc.stdout, flags=re.M))
    assert set(shares) == set(bench_data.SOURCES)


@pytest.mark.slow
def test_bench_gpu_dry_runs_every_case_and_fills_the_table(tmp_path: Path):
    doc = (REPO / "docs" / "performance.md").read_text()
    md, out = tmp_path / "performance.md", tmp_path / "gpu.json"
    md.write_text(doc)
    run_main(bench_gpu, ["--dry", "--threads", "1", "--json", str(out), "--markdown", str(md)], tmp_path)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["case"], r["status"]) for r in rows if r["status"] != "ok"] == []
    assert {r["case"] for r in rows} == {"dcgan16", "sngan16", "stylegan2_32", "stylegan2_16",
                                         "stylegan2_8", "ddp"}
    assert all(r["s_per_kimg"] == pytest.approx(1000 / r["imgs_per_s"]) for r in rows
               if r["case"].startswith("stylegan2"))
    ddp = [r for r in rows if r["case"] == "ddp"]
    assert ddp[1]["scaling_efficiency"] == pytest.approx(ddp[1]["imgs_per_s"] / (2 * ddp[0]["imgs_per_s"]))
    filled = md.read_text()
    start, end = filled.index(bench_gpu.MARK_START), filled.index(bench_gpu.MARK_END)
    assert filled[:start] == doc[:doc.index(bench_gpu.MARK_START)]  # outside the markers: unchanged
    assert filled[end:] == doc[doc.index(bench_gpu.MARK_END):]
    assert filled[start:end].count("\n| ") == len(rows) + 1  # the header row and one per result
