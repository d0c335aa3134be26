"""gan-report through the real commands: a sweep reports itself at its end (also when a job
diverged), its jobs are named after their swept overrides, and a 2D run's training.html is
rewritten at its figure steps while it runs."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gan_cli.checkpoint import load_checkpoint
from gan_cli.report.command import main
from tests.conftest import GAN_TRAIN, REPO, SMALL
from tests.test_sweeps import TINY, run_sweep


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown table in ``text`` (cells stripped)."""
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]


@pytest.mark.slow
def test_a_sweep_prints_its_table_writes_its_report_and_names_its_runs(tmp_path: Path, capsys):
    sweep = tmp_path / "sweep"
    # W&B (offline) to see the runs' names there
    proc = run_sweep(["-m", *TINY, "logger=wandb", "loss=ns,lsgan"], sweep)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = table_rows(proc.stdout.split(f"sweep {sweep.absolute()}: 2 runs")[1])
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("loss=ns", "ns", "finished", "4/4"),
                                                         ("loss=lsgan", "lsgan", "finished", "4/4")]
    csv_rows = list(csv.DictReader((sweep / "runs.csv").read_text().splitlines()))
    assert [r["run"] for r in csv_rows] == ["loss=ns", "loss=lsgan"]
    assert all(float(r["cpu_s"]) > 0 and float(r["wall_s"]) >= float(r["cpu_s"]) * 0.5 for r in csv_rows)
    assert (sweep / "runs.md").is_file() and (sweep / "report.html").is_file()
    for job, name in (("0", "loss=ns"), ("1", "loss=lsgan")):
        assert load_checkpoint(sweep / job / "checkpoints" / "last.pt")["config"]["name"] == name
        wandb_files = list((sweep / job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(wandb_files) == 1 and name.encode() in wandb_files[0].read_bytes()
        assert (sweep / job / "training.html").is_file()  # ring8: the 2D training view
    # gan-report of that sweep directory: the same two rows
    (sweep / "runs.csv").unlink()
    assert main([str(sweep)]) == 0
    assert table_rows(capsys.readouterr().out) == rows
    assert len((sweep / "runs.csv").read_text().splitlines()) == 1 + 2


@pytest.mark.slow
def test_a_sweep_with_a_diverged_job_still_reports_it_as_a_row(tmp_path: Path):
    sweep = tmp_path / "sweep"
    # lr_g = 1e30 drives tiny=toy's ReLU G to inf at step 2 (tests/test_robustness.py). A process of
    # its own: the report of a sweep with a failed job is printed by the exit handler, at its exit
    proc = run_sweep(["-m", *TINY, "optimizer.lr_g=2e-4,1e30"], sweep, in_process=False)
    assert proc.returncode == 1, proc.stderr[-3000:]
    rows = table_rows(proc.stdout.split(f"sweep {sweep.absolute()}: 2 runs")[1])
    # (Hydra's sweep writes the values it expanded in its own spelling)
    assert [(r[0], r[2]) for r in rows] == [("optimizer.lr_g=0.0002", "finished"),
                                            ("optimizer.lr_g=1e+30", "diverged")]
    assert "training diverged" in rows[1][-1]  # the note: the run's own message
    assert "Traceback" not in proc.stderr


def _start(args: list[str], run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([*GAN_TRAIN, *args, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_training_page_is_rewritten_at_each_figure_step_while_the_run_runs(tmp_path: Path, capsys):
    run_dir = tmp_path / "run"
    proc = _start([*SMALL, "train.steps=1000000", "train.log_every_steps=2",
                   "train.sample_every_steps=2", "train.ckpt_every_steps=100000"], run_dir)
    page = run_dir / "training.html"
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while len(seen) < 3:  # three versions of the page, each with one more frame
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no training page in 240 s"
            if page.is_file():
                frames = page.read_text().count('"src": "samples/step_')
                if frames and (not seen or frames > seen[-1]):
                    seen.append(frames)
            time.sleep(0.05)
        assert seen == sorted(seen) and len(set(seen)) == 3
        assert main([str(run_dir), f"out={tmp_path / 'r1'}"]) == 0  # while it runs
        assert table_rows(capsys.readouterr().out)[0][1] == "running"
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=240)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err[-3000:]
    step = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert main([str(run_dir), f"out={tmp_path / 'r2'}"]) == 0
    row = table_rows(capsys.readouterr().out)[0]
    assert row[1] == f"stopped at step {step}" and row[2] == f"{step}/1000000"
    assert row[-1].startswith(f"stopped by SIGTERM at step {step}")


def test_gan_report_is_a_console_script():
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gan-report"] == "gan_cli.report.command:console_main"
    proc = subprocess.run([sys.executable, "-c", "from gan_cli.report.command import console_main; "
                           "import sys; sys.argv = ['gan-report', '--help']; console_main()"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0 and "usage: gan-report PATH... [out=DIR] [sort=KEY]" in proc.stdout
