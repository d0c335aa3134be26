"""gan-report (gan_cli/report/): run directories read as data, the table, the files it writes,
the sweep's job names, training.html's data; the real CLI runs are in test_report_cli.py and the
browser checks in test_report_browser.py."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gan_cli.report.callback import sweep_job_name, swept_keys
from gan_cli.report.command import main
from gan_cli.report.pages import training_data, write_training_page
from gan_cli.report.runs import read_run
from gan_cli.report.table import build_table, csv_text, markdown
from gan_cli.rundir import lock_run_dir, unlock_run_dir
from tests.conftest import REPO

LOG = "[2026-12-07 08:00:{s:02d},000][gan_cli][{level}] - {message}\n"


def png(path: Path, shade: float = 0.5) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.full((8, 8), shade), cmap="viridis", vmin=0, vmax=1)


def make_run(path: Path, overrides: list[str], *, records: list[dict], loss: str = "ns",
             lr_d: float = 2e-4, steps: int = 300, log: list[tuple[str, str]] = (),
             samples: tuple[int, ...] = (), sessions: list[dict] = (), tail: str = "") -> Path:
    """A run directory as gan-train leaves one: .hydra/ files, metrics.jsonl, train.log, ..."""
    hydra = path / ".hydra"
    hydra.mkdir(parents=True)
    (hydra / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (hydra / "config.yaml").write_text(yaml.safe_dump(
        {"train": {"steps": steps}, "optimizer": {"lr_d": lr_d}, "loss": {"_target_": loss}}))
    (hydra / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"choices": {"loss": loss, "model": "mlp", "dataset": "ring8"}}}}))
    (path / "metrics.jsonl").write_text(
        "".join(json.dumps({"kimg": r["step"] * 0.256, **r}) + "\n" for r in records) + tail)
    (path / "train.log").write_text("".join(LOG.format(s=i, level=lv, message=m)
                                            for i, (lv, m) in enumerate(log)))
    for step in samples:
        png(path / "samples" / f"step_{step:08d}.png", step / 1000)
    if sessions:
        (path / "sessions.jsonl").write_text("".join(json.dumps(s) + "\n" for s in sessions))
    return path


def three_runs(sweep: Path) -> list[Path]:
    """ns / lsgan / lsgan with lr_d=1e-4: loss and optimizer.lr_d differ, model=mlp does not."""
    a = make_run(sweep / "0", ["loss=ns", "model=mlp"], records=[
        {"step": 100, "loss_d": 1.3, "loss_g": 0.7, "modes_captured": 5, "reverse_kl": 0.9},
        {"step": 200, "loss_d": 1.2, "loss_g": 0.8, "modes_captured": 8, "reverse_kl": 0.2},
        {"step": 300, "loss_d": 1.1, "loss_g": 0.9, "modes_captured": 7, "reverse_kl": 0.4,
         "jacobian/reverse_kl": 0.05, "jacobian/num_modes": 8}],
        log=[("INFO", "done: 300 steps")], samples=(100, 300),
        sessions=[{"wall_s": 60.0, "cpu_s": 50.0}, {"wall_s": 30.5, "cpu_s": 20.0}])
    b = make_run(sweep / "1", ["loss=lsgan", "model=mlp"], loss="lsgan", records=[
        {"step": 100, "loss_d": 0.4, "loss_g": 0.3, "modes_captured": 6, "reverse_kl": 0.5},
        {"step": 200, "loss_d": 0.3, "loss_g": 0.2, "modes_captured": 6, "reverse_kl": 0.1},
        {"step": 300, "loss_d": 0.2, "loss_g": 0.1, "modes_captured": 6, "reverse_kl": 0.3}],
        samples=(300,))
    c = make_run(sweep / "2", ["loss=lsgan", "model=mlp", "optimizer.lr_d=1e-4"], loss="lsgan",
                 lr_d=1e-4, records=[
        {"step": 100, "loss_d": 0.5, "loss_g": 0.6, "modes_captured": 3, "reverse_kl": 1.5},
        {"step": 200, "loss_d": float("nan"), "loss_g": float("inf")}],
        log=[("INFO", "step 100"), ("ERROR", "training diverged: loss_d is not finite (NaN or inf) "
                                             "at step 150; stopped before writing a checkpoint")],
        tail='{"step": 250, "kimg": 6')  # a half-written last line
    return [a, b, c]


def test_table_shows_the_differing_options_and_each_metrics_last_and_best_with_its_step(tmp_path):
    runs = [read_run(p) for p in three_runs(tmp_path / "sweep")]
    table = build_table(runs)
    assert list(table.options) == ["loss", "optimizer.lr_d"]  # model=mlp is the same everywhere
    # a run that does not override lr_d shows its own value (config.yaml), 2e-4 == 0.0002
    assert [r.options for r in runs] == [{"loss": "ns", "optimizer.lr_d": "0.0002"},
                                         {"loss": "lsgan", "optimizer.lr_d": "0.0002"},
                                         {"loss": "lsgan", "optimizer.lr_d": "1e-4"}]
    assert [r.label for r in runs] == ["loss=ns optimizer.lr_d=0.0002",
                                       "loss=lsgan optimizer.lr_d=0.0002",
                                       "loss=lsgan optimizer.lr_d=1e-4"]
    # num_modes has no direction: not a metric column
    assert table.metrics == ["modes_captured", "reverse_kl", "jacobian/reverse_kl"]
    assert table.losses == ["loss_d", "loss_g"] and table.directions["jacobian/reverse_kl"] is True
    rows = list(csv.DictReader(csv_text(table).splitlines()))
    assert len(rows) == 3
    first, second, third = rows
    assert (first["modes_captured_last"], first["modes_captured_best"], first["modes_captured_best_step"]) \
        == ("7", "8", "200")  # higher is better
    assert (first["reverse_kl_last"], first["reverse_kl_best"], first["reverse_kl_best_step"]) \
        == ("0.4", "0.2", "200")  # lower is better
    assert second["modes_captured_best_step"] == "100"  # equal values: the earliest step
    assert (third["loss_d"], third["loss_g"]) == ("nan", "inf")  # the last values, as logged
    assert third["reverse_kl_best"] == "1.5" and third["steps"] == "200"  # the half line skipped
    assert (first["wall_s"], first["cpu_s"]) == ("90.5", "70")  # two sessions summed
    assert [r["status"] for r in rows] == ["finished", "finished", "diverged"]
    assert "training diverged: loss_d is not finite" in third["note"]
    md = markdown(table).splitlines()
    assert len(md) == 2 + 3 and md[0].split("|")[1].strip() == "run"
    assert "8 @ 200" in md[2] and "0.2 @ 200" in md[2] and "1m30s" in md[2]
    assert len({len(line) for line in md}) == 1  # aligned columns


@pytest.mark.parametrize("key,order", [("modes_captured", ["0", "1", "2"]),  # best 8, 6, 3
                                       ("reverse_kl", ["1", "0", "2"]),  # best 0.1, 0.2, 1.5
                                       ("loss_g", ["1", "0", "2"])])  # last 0.1, 0.9, inf last
def test_sort_orders_the_rows_best_first_by_the_metrics_direction(tmp_path, key, order):
    table = build_table([read_run(p) for p in three_runs(tmp_path / "s")], sort=key)
    assert [r.name for r in table.runs] == order


def test_every_way_a_run_ends_is_a_status_never_a_crash(tmp_path):
    records = [{"step": 40, "loss_d": 1.0, "loss_g": 1.0}]
    finished = make_run(tmp_path / "finished", [], steps=40, records=records)
    stopped = make_run(tmp_path / "stopped", [], records=records, log=[(
        "WARNING", "stopped by SIGTERM at step 40/300; checkpoint /x/last.pt holds step 40; "
                   "continue with: gan-train resume=/x")])
    diverged = make_run(tmp_path / "diverged", [], records=records, log=[(
        "ERROR", "training diverged: loss_g is not finite (NaN or inf) at step 41")])
    failed = make_run(tmp_path / "failed", [], records=[], log=[(
        "ERROR", "conditional model needs a dataset with labels")])
    killed = make_run(tmp_path / "killed", [], records=records, log=[("INFO", "step 40/300")])
    running = make_run(tmp_path / "running", [], records=records)
    broken = tmp_path / "broken"  # garbage everywhere
    (broken / ".hydra").mkdir(parents=True)
    (broken / ".hydra" / "config.yaml").write_text("{{{ not yaml")
    (broken / ".hydra" / "overrides.yaml").write_text("!!python/object:os.system 'echo pwned'")
    (broken / "metrics.jsonl").write_bytes(b"\xff\xfe[1, 2]\n{\"step\": \"x\"}\n")
    lock_run_dir(running)  # held by this process, as a training run holds it
    try:
        runs = {p.name: read_run(p) for p in (finished, stopped, diverged, failed, killed, running,
                                               broken)}
    finally:
        unlock_run_dir(running)
    status = {name: run.status for name, run in runs.items()}
    assert status == {"finished": "finished", "stopped": "stopped at step 40",
                      "diverged": "diverged", "failed": "failed", "killed": "stopped at step 40",
                      "running": "running", "broken": "failed"}
    assert runs["failed"].note == "conditional model needs a dataset with labels"
    assert runs["stopped"].note == "stopped by SIGTERM at step 40/300"
    assert "no record" in runs["killed"].note
    table = build_table(list(runs.values()))
    assert len(markdown(table).splitlines()) == 2 + 7


@pytest.mark.slow
def test_gan_report_writes_its_files_into_out_and_prints_the_table(tmp_path, capsys):
    three_runs(tmp_path / "sweep")
    assert main([str(tmp_path / "sweep"), "sort=reverse_kl"]) == 0  # out: the sweep directory
    printed = capsys.readouterr().out
    out = tmp_path / "sweep"
    names = {p.name for p in out.iterdir() if p.is_file()}
    assert {"runs.csv", "runs.md", "report.html", "samples.png", "curve_loss_d.png", "curve_loss_g.png",
            "curve_modes_captured.png", "curve_reverse_kl.png", "curve_jacobian_reverse_kl.png"} <= names
    assert (out / "runs.md").read_text() in printed
    rows = list(csv.DictReader((out / "runs.csv").read_text().splitlines()))
    assert [r["dir"] for r in rows] == [str(out / n) for n in ("1", "0", "2")]
    page = (out / "report.html").read_text()
    assert page.count("<tr data-dir=") == 3 and page.count('src="data:image/png;base64,') == 5 + 2
    assert "http://" not in page.replace('"http://www.w3.org/2000/svg"', "") and "https://" not in page
    # a glob of run directories, out= elsewhere: the same rows
    assert main([str(tmp_path / "sweep" / "[01]"), f"out={tmp_path / 'r'}"]) == 0
    assert len((tmp_path / "r" / "runs.csv").read_text().splitlines()) == 1 + 2


def test_user_mistakes_end_with_one_line_and_their_exit_status(tmp_path, capsys):
    three_runs(tmp_path / "sweep")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "gan_cli.report.command", str(tmp_path / "nothing")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"gan-report: error: no runs found at {tmp_path / 'nothing'} (a run directory holds "
        f".hydra/config.yaml, metrics.jsonl or checkpoints/; a sweep directory holds run directories)"]
    (tmp_path / "file").write_text("x")
    cases = [([str(tmp_path / "sweep"), "colour=red"], 2, "unknown option 'colour'"),
             ([str(tmp_path / "sweep"), "sort=fid"], 2, "sort=fid: not a metric of these runs"),
             ([str(tmp_path / "sweep"), f"out={tmp_path / 'file' / 'sub'}"], 1,
              f"cannot write the report into out={tmp_path / 'file' / 'sub'}"),
             ([], 2, "no PATH given")]
    for argv, code, words in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and words in err, err


def test_a_sweeps_job_is_named_after_the_overrides_the_sweep_varies(tmp_path):
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {"task": [
        "loss=ns,lsgan", "model=mlp", "train.steps=300", "optimizer.lr_d=range(1,3)"]}}}))
    job = ["loss=lsgan", "model=mlp", "train.steps=300", "optimizer.lr_d=2"]
    assert sweep_job_name(job, tmp_path) == "loss=lsgan optimizer.lr_d=2"
    # Optuna's search space (hydra.sweeper.params); no multirun.yaml
    assert sweep_job_name(["optimizer.lr_g=0.0003", "model.z_dim=8", "tiny=toy"], tmp_path / "x",
                          {"optimizer.lr_g": "tag(log, interval(1e-5, 1e-3))",
                           "model.z_dim": "choice(2, 8, 64)"}) == "optimizer.lr_g=0.0003 model.z_dim=8"
    assert sweep_job_name(["tiny=toy"], tmp_path / "x") is None  # nothing swept: the dir's name
    assert swept_keys(["+a=1,2", "b=3", "c='x,y'"], None) == ["a"]  # a quoted comma is no sweep


def test_training_page_holds_the_frames_and_curves_and_escapes_its_data(tmp_path):
    run = make_run(tmp_path / "run", [], records=[
        {"step": 100, "loss_d": 1.0, "loss_g": float("nan"), "modes_captured": 4},
        {"step": 200, "loss_d": 0.5, "loss_g": 2.0, "modes_captured": 8,
         "</script><script>alert(1)</script>": 1.0}], samples=(100, 200))
    data = training_data(run)
    assert data["frames"] == [{"step": 100, "src": "samples/step_00000100.png"},
                              {"step": 200, "src": "samples/step_00000200.png"}]
    assert data["panels"]["losses"] == {"loss_d": [[100, 1.0], [200, 0.5]],
                                        "loss_g": [[100, None], [200, 2.0]]}  # NaN: a gap
    assert data["panels"]["modes_captured"] == {"modes_captured": [[100, 4.0], [200, 8.0]]}
    page = write_training_page(run).read_text()
    assert page.count("</script>") == 2  # the data and the code; the key's own is escaped
    embedded = page.split('type="application/json">')[1].split("</script>")[0]
    assert json.loads(embedded) == data


def test_a_full_disk_while_writing_the_training_page_names_it_and_leaves_no_temporary_file(
        tmp_path, monkeypatch):
    import errno
    from pathlib import PosixPath

    run = make_run(tmp_path / "run", [], records=[{"step": 6, "loss_d": 1.0}], samples=(6,))
    write_training_page(run)
    before = (run / "training.html").read_text()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(PosixPath, "replace", full)
    with pytest.raises(OSError) as caught:
        write_training_page(run)
    assert caught.value.filename == str(run / "training.html")
    assert caught.value.strerror == "No space left on device"
    assert sorted(p.name for p in run.iterdir() if p.is_file()) == ["metrics.jsonl", "train.log",
                                                                     "training.html"]
    assert (run / "training.html").read_text() == before  # the last good page stays


@pytest.mark.parametrize("enabled", [True, False])
def test_the_sweep_callback_writes_the_report_and_prints_the_table_at_the_sweeps_end(
        tmp_path, capsys, enabled):
    from omegaconf import OmegaConf

    from gan_cli.report.callback import SweepReport

    three_runs(tmp_path / "sweep")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    callback = SweepReport(enabled=enabled)
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)
    out = capsys.readouterr().out
    if enabled:
        assert f"sweep {tmp_path / 'sweep'}: 3 runs" in out
        assert (tmp_path / "sweep" / "runs.md").read_text() in out
        assert len((tmp_path / "sweep" / "runs.csv").read_text().splitlines()) == 1 + 3
    else:
        assert out == "" and not (tmp_path / "sweep" / "runs.csv").exists()
    callback.on_multirun_end(config)  # once only (the exit handler is no second report)
    assert capsys.readouterr().out == ""


def test_runs_with_the_same_options_are_told_apart_by_their_directories(tmp_path):
    records = [{"step": 4, "loss_d": 1.0, "loss_g": 1.0}]
    runs = [read_run(make_run(tmp_path / sweep / "0", ["loss=ns"], records=records))
            for sweep in ("a", "b")]
    runs.append(read_run(make_run(tmp_path / "c" / "0", ["loss=hinge"], records=records)))
    build_table(runs)
    assert [r.label for r in runs] == ["loss=ns (a/0)", "loss=ns (b/0)", "loss=hinge"]
    same = [read_run(make_run(tmp_path / s / "1", [], records=records)) for s in ("d", "e")]
    build_table(same)
    assert [r.label for r in same] == ["d/1", "e/1"]  # no option differs: the directories


@pytest.mark.slow
def test_hostile_run_directories_are_rows_never_a_traceback(tmp_path, capsys):
    """What a run directory from someone else may hold (review of issue 29): steps that are NaN,
    infinite, negative or fractional, digits that are not ASCII, YAML and JSON nested past the
    parsers, a log stamp of no real date, config keys of mixed types, ``$`` (matplotlib's
    mathematics) and HTML in option values and metric keys. Every run is a row; the page escapes."""
    sweep = tmp_path / "sweep"
    make_run(sweep / "0", ["loss=$\\frac{", "optimizer.lr_d=<b>&\"x\"</b>"], records=[
        {"step": 10, "loss_d": 1.0, "loss_$\\frac{": 2.0}],
        tail='{"step": NaN, "loss_d": 1}\n{"step": Infinity, "loss_d": 1}\n{"step": -3, "loss_d": 1}\n'
             '{"step": 2.5, "loss_d": 1}\n' + "[" * 100_000 + "\n")
    odd = make_run(sweep / "1", ["loss=ns"], records=[{"step": 20, "loss_d": 0.5}])
    (odd / ".hydra" / "config.yaml").write_text(
        "train: {steps: .nan}\noptimizer: {1: a, b: c}\n")
    (odd / "checkpoints").mkdir()
    (odd / "checkpoints" / "step_².pt").write_bytes(b"")
    png(odd / "samples" / "step_².png")
    (odd / "train.log").write_text(LOG.format(s=0, level="INFO", message="start").replace("12-07", "13-45")
                                   + LOG.format(s=5, level="INFO", message="step 20/300"))
    deep = make_run(sweep / "2", ["loss=lsgan"], records=[{"step": 30, "loss_d": 0.2}])
    (deep / ".hydra" / "config.yaml").write_text("[" * 100_000)
    (deep / ".hydra" / "overrides.yaml").write_text("a: " * 50_000 + "b")

    assert main([str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    runs = {p.name: read_run(p) for p in (sweep / "0", odd, deep)}
    assert [r["step"] for r in runs["0"].records] == [10]  # the NaN / inf / -3 / 2.5 steps dropped
    assert runs["1"].steps == 20 and runs["1"].total_steps is None and runs["1"].wall_s is None
    rows = list(csv.DictReader((sweep / "runs.csv").read_text().splitlines()))
    assert len(rows) == 3
    page = (sweep / "report.html").read_text()
    assert "<b>&" not in page and "&lt;b&gt;&amp;&quot;x&quot;&lt;/b&gt;" in page
    assert (sweep / "curve_loss_d.png").is_file()
