"""What README.md and docs/reliability.md promise about the command itself, each through the real
``gan-train``: stop signals (SIGINT, a second Ctrl-C, SIGTERM that never requeues, a failing
``scontrol``), non-finite weights, W&B failing during a run, HYDRA_FULL_ERROR, ``--help`` and
``--cfg job``.

A signal or a fault at an exact step is planted in the real command by a ``sitecustomize``
module (tests/conftest.py's ``injected_env``), or with monkeypatch for a run in this process,
which wraps ``GANStep.__call__``: the event then happens during a known step, whatever the
machine's speed.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import yaml

from gan_cli.errors import EXIT_INTERRUPTED, EXIT_RUNTIME
from tests.conftest import GAN_TRAIN, REPO, SMALL, injected_env, last_ckpt, read_metrics, run_cli
from tests.inprocess import run_in_process

# Four short intervals: logs every 4 steps, a checkpoint at every step (the last good one is
# always the step before a fault).
BASE = [*SMALL, "train.steps=12", "train.ckpt_every_steps=1", "train.keep_ckpts=0"]


def at_step(step: int, body: str) -> str:
    """sitecustomize code that runs ``body`` inside generator step ``step`` (1-based), after its
    updates; ``pair`` (the networks) and ``os``, ``signal``, ``torch`` are in scope."""
    return textwrap.dedent("""
        import os, signal
        import torch
        from gan_cli.training import step as _step_module

        _original = _step_module.GANStep.__call__

        def _patched(self, pair, step, plan):
            _original(self, pair, step, plan)
            if step + 1 == {step}:
        {body}

        _step_module.GANStep.__call__ = _patched
    """).format(step=step, body=textwrap.indent(textwrap.dedent(body).strip(), " " * 8))


def fake_scontrol(tmp_path: Path, exit_code: int) -> tuple[dict, Path]:
    """A ``scontrol`` on PATH that records its arguments and exits with ``exit_code``."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol.calls"
    bin_dir.mkdir()
    script = bin_dir / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                      + (f'echo "scontrol: error: Invalid job id specified" >&2\nexit {exit_code}\n'
                         if exit_code else ""))
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242"}, calls


# ---------------------------------------------------------------------------------------------
# Stop signals (docs/reliability.md, "Stopping and preemption").


@pytest.mark.slow
def test_sigint_checkpoints_the_step_and_exits_3(tmp_path: Path):
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGINT)"))
    proc = run_cli(BASE, run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert "stopped by SIGINT at step 3/12" in proc.stderr and "Traceback" not in proc.stderr
    assert f"continue with: gan-train resume={run_dir}" in proc.stderr
    assert last_ckpt(run_dir)["step"] == 3


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_with_130(tmp_path: Path):
    """Ctrl-C twice within one step (the second more than SAME_CTRL_C_S later: sooner, it is the
    same Ctrl-C relayed by a launcher): no checkpoint of that step, exit 130, and the last
    checkpoint (step 2) still loads."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, at_step(3, """
        import time
        from gan_cli.training.signals import SAME_CTRL_C_S
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(SAME_CTRL_C_S + 0.3)
        os.kill(os.getpid(), signal.SIGINT)
    """))
    proc = run_cli(BASE, run_dir, env=env)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "gan-train: interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert last_ckpt(run_dir)["step"] == 2
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["last.pt"]  # no temp file


# The stop checkpoint is written slowly (0.2 s plus a pause) in the next tests: a Ctrl-C that comes
# while it is written, more than SAME_CTRL_C_S after the first (so not the same Ctrl-C relayed).
SLOW_STOP_CHECKPOINT = """
    import time
    from gan_cli.training import outputs as _outputs
    from gan_cli.training.signals import SAME_CTRL_C_S

    _save = _outputs.save_checkpoint

    def _slow_save(state, ckpt_dir, step, keep, **kw):
        if step == 3:  # the stop's checkpoint: a second Ctrl-C arrives while it is written
            time.sleep(SAME_CTRL_C_S + 0.3)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
        return _save(state, ckpt_dir, step, keep, **kw)

    _outputs.save_checkpoint = _slow_save
"""


@pytest.mark.parametrize("ckpt_every", [1, 100])
@pytest.mark.slow
def test_a_second_ctrl_c_while_the_stop_checkpoint_is_written_lets_it_finish(tmp_path: Path,
                                                                             ckpt_every: int):
    """Ctrl-C during step 3, then Ctrl-C again while the checkpoint of step 3 is written (the
    step's own scheduled checkpoint, or the one the stop writes): the stop that began finishes,
    exit 3, and the checkpoint holds step 3."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGINT)")
                       + textwrap.dedent(SLOW_STOP_CHECKPOINT))
    proc = run_cli([*BASE, f"train.ckpt_every_steps={ckpt_every}"], run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert "stopped by SIGINT at step 3/12" in proc.stderr and "Traceback" not in proc.stderr
    assert last_ckpt(run_dir)["step"] == 3
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["last.pt"]  # no temp file


@pytest.mark.slow
def test_a_ctrl_c_after_the_stop_checkpoint_does_not_change_exit_3(tmp_path: Path):
    """Two quick Ctrl-C on fast steps: the second one reaches the process after the checkpoint,
    while it closes its logs (here: inside RunLog.close) or exits (here: an atexit hook). It was
    death by SIGINT; the stop that began finishes with exit 3."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGINT)") + textwrap.dedent("""
        import atexit, time
        from gan_cli import stats as _stats

        _close = _stats.RunLog.close

        def _interrupted_close(self, exit_code=0):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            _close(self, exit_code)

        _stats.RunLog.close = _interrupted_close

        def _at_exit():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)

        atexit.register(_at_exit)
    """))
    proc = run_cli([*BASE, "train.ckpt_every_steps=100"], run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert "stopped by SIGINT at step 3/12" in proc.stderr and "Traceback" not in proc.stderr
    assert last_ckpt(run_dir)["step"] == 3


@pytest.mark.slow
def test_sighup_checkpoints_the_step_and_exits_3(tmp_path: Path):
    """SIGHUP (the terminal or ssh session closing, or `kill -HUP`) is a stop like SIGTERM."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGHUP)"))
    proc = run_cli(BASE, run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert "stopped by SIGHUP at step 3/12" in proc.stderr and "Traceback" not in proc.stderr
    assert last_ckpt(run_dir)["step"] == 3


@pytest.mark.parametrize("ddp", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["single", "ddp"])
def test_the_terminal_closing_checkpoints_and_exits_3(tmp_path: Path, ddp: bool):
    """gan-train runs in a terminal (a pseudo-terminal here, its controlling terminal), which then
    closes, as an ssh session does: SIGHUP to gan-train (under hardware=ddp, the parent relays it
    to its workers), and every later write to the terminal fails (EIO). The run checkpoints the
    step it is in and exits 3 (it exited 1, its last message unwritable); the stop is in
    train.log."""
    run_dir = tmp_path / "run"
    controller, terminal = pty.openpty()
    become_session_of_terminal = ("import fcntl, os, sys, termios; "
                                  "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                                  "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
    args = [*SMALL, "train.steps=1000000", "train.log_every_steps=2",
            "train.ckpt_every_steps=100000", "train.sample_every_steps=100000",
            *(["hardware=ddp", "hardware.device=cpu", "hardware.devices=2"] if ddp else [])]
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.Popen([sys.executable, "-c", become_session_of_terminal, *GAN_TRAIN[1:], *args,
                             f"hydra.run.dir={run_dir}"], stdin=terminal, stdout=terminal,
                            stderr=terminal, env=env, cwd=tmp_path, start_new_session=True)
    os.close(terminal)
    try:
        metrics, deadline = run_dir / "metrics.jsonl", time.monotonic() + 240
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, "no training progress"
            if select.select([controller], [], [], 0.05)[0]:
                os.read(controller, 1 << 16)  # what the terminal shows, read so it never fills
        os.close(controller)  # the terminal closes
        controller = -1
        assert proc.wait(timeout=120) == EXIT_INTERRUPTED, (run_dir / "train.log").read_text()[-3000:]
    finally:
        if controller >= 0:
            os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stopped, log_text = last_ckpt(run_dir)["step"], (run_dir / "train.log").read_text()
    assert stopped >= 4 and f"holds step {stopped}" in log_text
    said = "the DDP workers stopped (SIGHUP)" if ddp else f"stopped by SIGHUP at step {stopped}/"
    assert said in log_text


@pytest.mark.slow
def test_sigusr2_to_a_single_process_is_a_stop_named_as_such(tmp_path: Path):
    """SIGUSR2 is how gan-train's DDP parent relays a stop to its workers; sent to a single
    process (by hand, or by SLURM's --signal=USR2) it is a stop like SIGTERM, and the message says
    SIGUSR2, not a relay that never happened."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGUSR2)"))
    proc = run_cli(BASE, run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert "stopped by SIGUSR2 at step 3/12" in proc.stderr and "relayed" not in proc.stderr
    assert last_ckpt(run_dir)["step"] == 3


@pytest.mark.slow
def test_ctrl_c_before_training_exits_130(tmp_path: Path):
    """SIGINT while the data are being built (before the first step): exit 130, no checkpoint."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, textwrap.dedent("""
        import os, signal
        from gan_cli.training import loop as _loop

        _build_data = _loop.build_data

        def _interrupted(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            return _build_data(*args, **kwargs)

        _loop.build_data = _interrupted
    """))
    proc = run_cli(BASE, run_dir, env=env)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "gan-train: interrupted" in proc.stderr and "Traceback" not in proc.stderr
    assert not list((run_dir / "checkpoints").glob("*.pt"))


@pytest.mark.slow
def test_sigterm_never_requeues_even_with_requeue_on(tmp_path: Path):
    """scancel sends SIGTERM too: a cancelled job must stay cancelled."""
    run_dir = tmp_path / "run"
    env, calls = fake_scontrol(tmp_path, 0)
    env.update(injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGTERM)")))
    proc = run_cli([*BASE, "train.requeue=true"], run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert "stopped by SIGTERM at step 3/12" in proc.stderr
    assert "continue with: gan-train resume=" in proc.stderr and "requeued" not in proc.stderr
    assert not calls.exists()  # scontrol was never run
    assert last_ckpt(run_dir)["step"] == 3


@pytest.mark.slow
def test_a_failing_scontrol_is_a_warning_and_the_checkpoint_is_written(tmp_path: Path):
    run_dir = tmp_path / "run"
    env, calls = fake_scontrol(tmp_path, 1)
    env.update(injected_env(tmp_path, at_step(3, "os.kill(os.getpid(), signal.SIGUSR1)")))
    proc = run_cli([*BASE, "train.requeue=true"], run_dir, env=env)
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]  # it was tried
    log_text = (run_dir / "train.log").read_text()
    assert "could not requeue SLURM job 4242" in log_text and "Invalid job id" in log_text
    assert "stopped by SIGUSR1 at step 3/12" in proc.stderr and "Traceback" not in proc.stderr
    assert "continue with: gan-train resume=" in proc.stderr  # not "was requeued"
    assert last_ckpt(run_dir)["step"] == 3


# ---------------------------------------------------------------------------------------------
# Non-finite weights stop the run (losses are tested in test_robustness.py).


@pytest.mark.parametrize("mode", ["stop", "skip"])
def test_nonfinite_weights_stop_the_run_before_a_checkpoint(tmp_path: Path, monkeypatch, mode: str):
    """A weight of G becomes NaN during step 3 while every loss so far was finite: the
    checkpoint of step 3 is refused, exit 1, the last good checkpoint (step 2) stays. With
    train.nonfinite=skip too: non-finite weights always stop the run."""
    from gan_cli.training import step as step_module

    original = step_module.GANStep.__call__

    def nan_in_step_3(self, pair, step, plan):  # at_step(3, ...) for a run in this process
        original(self, pair, step, plan)
        if step + 1 == 3:
            with torch.no_grad():
                next(pair.G.parameters()).view(-1)[0] = float("nan")

    monkeypatch.setattr(step_module.GANStep, "__call__", nan_in_step_3)
    run_dir = tmp_path / "run"
    proc = run_cli([*BASE, f"train.nonfinite={mode}"], run_dir, in_process=True)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    err = proc.stderr
    assert "the weights of G are not finite (NaN or inf) at step 3" in err
    assert "last good checkpoint" in err and "(step 2)" in err and "Traceback" not in err
    assert last_ckpt(run_dir)["step"] == 2


# ---------------------------------------------------------------------------------------------
# W&B failing during a run (failing at start: test_robustness.py).


@pytest.mark.slow
def test_wandb_failing_during_the_run_falls_back_to_local_logging(tmp_path: Path):
    """W&B's Run.log raises from its second call on (the service died): a warning, then the run
    finishes with exit 0 and every record in metrics.jsonl."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, textwrap.dedent("""
        from wandb.sdk import wandb_run

        _log, _calls = wandb_run.Run.log, []

        def _failing_log(self, *args, **kwargs):
            _calls.append(1)
            if len(_calls) >= 2:
                raise RuntimeError("simulated: the W&B service is gone")
            return _log(self, *args, **kwargs)

        wandb_run.Run.log = _failing_log
    """))
    env["MPLCONFIGDIR"] = str(Path.home() / ".cache" / "matplotlib")
    args = [a for a in SMALL if not a.startswith("logger=")]
    proc = run_cli([*args, "logger=wandb", "train.steps=12"], run_dir, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_text = (run_dir / "train.log").read_text()
    assert "W&B failed (RuntimeError: simulated: the W&B service is gone)" in log_text
    assert "logging locally only from now on" in log_text
    assert log_text.count("W&B failed") == 1  # given up once, not once per record
    assert [r["step"] for r in read_metrics(run_dir)] == [4, 8, 12]
    assert last_ckpt(run_dir)["step"] == 12
    assert sorted((run_dir / "samples").glob("*.png"))[-1].name == "step_00000012.png"


# ---------------------------------------------------------------------------------------------
# Inception metrics without Inception weights, during training.


@pytest.mark.slow
def test_inception_metrics_are_skipped_with_a_warning_when_the_weights_are_missing(tmp_path):
    """An image folder's default metrics (FID, IS, KID, PR on Inception features) with no
    weights file anywhere (an empty TORCH_HOME): one warning, then the run trains to the end
    and logs its losses without those keys."""
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        pixels = (torch.rand(16, 16, generator=g) * 255).to(torch.uint8)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:03d}.png")
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith(("dataset=", "model=", "metrics."))]
    proc = run_cli([*args, "dataset=image_folder", f"dataset.path={folder}",
                    "dataset.resolution=16", "dataset.channels=1", "dataset.in_memory=true",
                    "model=dcgan", "model.generator.width=8", "model.discriminator.width=8",
                    "train.steps=4", "train.log_every_steps=2", "metrics.every_steps=2"],
                   run_dir, env={"TORCH_HOME": str(tmp_path / "torch_home"),
                                 "GAN_CLI_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_text = (run_dir / "train.log").read_text()
    assert log_text.count("skipping fid, is, kid, pr during training") == 1  # warned once
    assert "Inception" in log_text.split("skipping fid, is, kid, pr during training")[1]
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == [2, 4]
    assert all("loss_d" in r and not {"fid", "is_mean", "kid_mean", "precision"} & r.keys()
               for r in records)
    assert last_ckpt(run_dir)["step"] == 4


# ---------------------------------------------------------------------------------------------
# The command line: HYDRA_FULL_ERROR, --help, --cfg job.


def gan_train(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """gan-train with ``args`` exactly (no run directory added), in this process
    (tests/inprocess.py: the same entry point, exit status and output; HYDRA_FULL_ERROR is read
    when the command runs, and an exception it lets through is printed as Python prints it)."""
    return run_in_process("gan-train", args, cwd, env)


def test_hydra_full_error_shows_the_traceback_of_a_configuration_error(tmp_path: Path):
    proc = gan_train([*SMALL, "loss=foo", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path,
                     env={"HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr and "loss/foo" in proc.stderr


def test_hydra_full_error_shows_the_traceback_of_a_runtime_failure(tmp_path: Path):
    proc = gan_train([*SMALL, "dataset=cifar10", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path,
                     env={"HYDRA_FULL_ERROR": "1", "GAN_CLI_DATA": str(tmp_path / "empty")})
    assert proc.returncode == EXIT_RUNTIME
    assert "CIFAR-10" in proc.stderr and "could not be loaded" in proc.stderr
    assert "Traceback" in proc.stderr
    # without it: the one line only
    proc = gan_train([*SMALL, "dataset=cifar10", f"hydra.run.dir={tmp_path / 'run2'}"], tmp_path,
                     env={"GAN_CLI_DATA": str(tmp_path / "empty")})
    assert proc.returncode == EXIT_RUNTIME and "Traceback" not in proc.stderr


def test_help_lists_every_group_and_option(tmp_path: Path):
    from tests.test_config import options

    proc = gan_train(["--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed: dict[str, list[str]] = {}  # "  group (default: x)", then "    option  description"
    for line in proc.stdout.split("\n\n")[1].splitlines()[1:]:
        if not line.startswith("    "):
            listed[group := line.split()[0]] = []
        else:
            listed[group].append(line.split()[0])
    for group in ("loss", "model", "dataset", "optimizer", "hardware", "logger", "experiment"):
        assert listed[group] == options(group), group
    assert not list(tmp_path.iterdir())  # nothing written


def test_cfg_job_prints_the_composed_config_and_does_nothing(tmp_path: Path):
    proc = gan_train(["loss=wgan_gp", "loss.gp_lambda=5", "model=mlp", "--cfg", "job"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = yaml.safe_load(proc.stdout)
    assert cfg["loss"]["_target_"] == "gan_cli.losses.WGANGP" and cfg["loss"]["gp_lambda"] == 5
    assert cfg["model"]["generator"]["_target_"] == "gan_cli.models.mlp.Generator"
    assert cfg["train"]["steps"] > 0 and "hydra" not in cfg
    assert not list(tmp_path.iterdir())  # no run directory, no outputs/
