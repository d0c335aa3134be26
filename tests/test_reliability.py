"""Untrusted files never act, distributed runs stop cleanly, documented commands train correctly
(issue 13): one test per defect, each failing before its fix. docs/reliability.md's table of bad
inputs lists them."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gan_cli.checkpoint import load_checkpoint
from gan_cli.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_RUNTIME, ConfigError, RuntimeFailure
from tests.conftest import GAN_TRAIN, REPO, SMALL, SMALL_IMAGES, injected_env, read_metrics, run_cli
from tests.inprocess import run_in_process
from tests.test_training_extensions import compose_train

HAVE_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist").is_dir()
DDP = ["hardware=ddp", "hardware.device=cpu", "hardware.devices=2"]


def last_ckpt(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def run_eval(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """gan-eval in this process (tests/inprocess.py): what it refuses, not its process, is tested."""
    return run_in_process("gan-eval", args, cwd)


# ---------------------------------------------------------------------------------------------
# 1. A checkpoint or a run directory names a callable that writes files: refused, nothing runs.


@pytest.mark.parametrize("where, node", [
    ("dataset", {"_target_": "numpy.save", "file": "PWNED", "arr": [1, 2, 3]}),
    ("model", {"z_dim": 4, "generator": {"_target_": "numpy.save", "file": "PWNED", "arr": [1]},
               "discriminator": {"_target_": "gan_cli.models.mlp.Discriminator"}}),
    ("dataset", {"_target_": "gan_cli.data.toy.ring_of_gaussians",
                 "_args_": [{"_target_": "numpy.save", "file": "PWNED", "arr": [1]}]}),
])
@pytest.mark.slow
def test_a_checkpoint_naming_a_foreign_callable_is_refused_before_anything_runs(
        tmp_path: Path, toy_run: Path, where: str, node: dict):
    state = copy.deepcopy(last_ckpt(toy_run))
    pwned = tmp_path / "pwned.npy"
    node = copy.deepcopy(node)

    def aim(n):
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "file":
                    n[k] = str(pwned)
                aim(v)
        elif isinstance(n, list):
            for v in n:
                aim(v)
    aim(node)
    state["config"][where] = node
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)  # plain dicts, lists and strings: weights_only loading accepts it
    proc = run_eval([f"ckpt={evil}", f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-2000:]
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert ("_target_" in proc.stderr or "_args_" in proc.stderr)
    assert not pwned.exists(), "the checkpoint's callable ran"


def test_a_checkpoint_whose_config_does_not_fit_the_schema_is_refused(tmp_path: Path, toy_run):
    state = copy.deepcopy(last_ckpt(toy_run))
    state["config"]["model"]["generator"]["hidden"] = "not a list"
    evil = tmp_path / "bad.pt"
    torch.save(state, evil)
    proc = run_eval([f"ckpt={evil}", f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-2000:]
    assert "does not fit" in proc.stderr and "'model'" in proc.stderr


@pytest.mark.parametrize("extra,refused", [
    ({"_recursive_": False}, None),  # SinGAN's stages: how a trusted target gets its arguments
    ({"_convert_": "all"}, None),
    ({"_recursive_": "yes"}, "_recursive_"),  # not a bool: not the harmless switch
    ({"_partial_": True}, "_partial_"),
    ({"_args_": [1]}, "_args_"),
])
def test_which_hydra_keys_a_saved_config_may_hold(extra: dict, refused):
    from gan_cli.config import check_saved_config
    from gan_cli.errors import UntrustedConfigError

    config = {"model": {"stages": {"_target_": "gan_cli.models.stages.SinGANStages", **extra}}}
    if refused is None:
        check_saved_config(config, "a test")
    else:
        with pytest.raises(UntrustedConfigError, match=f"model.stages.{refused}"):
            check_saved_config(config, "a test")


@pytest.mark.parametrize("override", [
    "dataset._target_=numpy.save",
    "+dataset.file=PWNED",  # a key the schemas do not have: refused like the rest (issue 26)
    "hydra.callbacks.x._target_=numpy.save",
    "model.generator={_target_: numpy.save, file: PWNED, arr: [1]}",
])
def test_a_run_directorys_overrides_cannot_name_foreign_callables(tmp_path: Path, toy_run: Path,
                                                                  override: str):
    run_dir = tmp_path / "run"
    import shutil

    shutil.copytree(toy_run, run_dir)
    pwned = tmp_path / "pwned.npy"
    lines = (run_dir / ".hydra" / "overrides.yaml").read_text().splitlines()
    lines.append(f"- '{override.replace('PWNED', str(pwned))}'")
    (run_dir / ".hydra" / "overrides.yaml").write_text("\n".join(lines) + "\n")
    proc = run_cli([f"resume={run_dir}", "train.steps=14"], run_dir)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-2000:]
    assert "refused" in proc.stderr and "Traceback" not in proc.stderr
    assert not pwned.exists()


# ---------------------------------------------------------------------------------------------
# 2. A finished run started again (the documented resume=auto job script).


@pytest.mark.slow
def test_resuming_a_finished_run_exits_0_and_reports_its_last_statistics(tmp_path: Path):
    run_dir = tmp_path / "run"
    args = ["dataset=ring8", "model=mlp", "loss=ns", "logger=none", "train.steps=4",
            "hardware.num_threads=1", "resume=auto"]
    first = run_cli(args, run_dir)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli(args, run_dir)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "nothing to train" in (run_dir / "train.log").read_text()
    # in process: the returned statistics (what a sweeper optimises) are the run's last record
    cfg = compose_train("dataset=ring8", "model=mlp", "loss=ns", "logger=none", "train.steps=4",
                        "hardware.num_threads=1", "resume=auto")
    from gan_cli.training.loop import train

    last = train(cfg, run_dir)
    record = read_metrics(run_dir)[-1]
    assert last["step"] == 4 and last["loss_g"] == record["loss_g"]


@pytest.mark.parametrize("metrics", ["empty", "missing"])
@pytest.mark.slow
def test_a_finished_run_without_records_started_again_says_so_and_exits_0(tmp_path: Path,
                                                                          metrics: str):
    """Its metrics.jsonl emptied or deleted: nothing to report is not a configuration mistake."""
    run_dir = tmp_path / "run"
    args = [*SMALL, "train.steps=2", "resume=auto"]
    assert run_cli(args, run_dir).returncode == 0
    if metrics == "empty":
        (run_dir / "metrics.jsonl").write_text("")
    else:
        (run_dir / "metrics.jsonl").unlink()
    proc = run_cli(args, run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    log_text = (run_dir / "train.log").read_text()
    assert "nothing to train" in log_text and "no statistics to report" in log_text
    # in a sweep such a job has no value to optimise: it fails (a runtime failure, not a
    # configuration mistake), and the sweep goes on; a real typo is still a configuration mistake
    from gan_cli.cli import optimized_metric

    with pytest.raises(RuntimeFailure, match="no statistics to report"):
        optimized_metric({}, "loss_g")
    with pytest.raises(ConfigError, match="optimized_metric='fid'"):
        optimized_metric({"step": 2, "loss_g": 0.7}, "fid")


# ---------------------------------------------------------------------------------------------
# 3. Stop signals under DDP (two gloo ranks started by gan-train itself).


def start(args: list[str], run_dir: Path, env: dict | None = None, new_session: bool = False):
    full_env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([*GAN_TRAIN, *args, f"hydra.run.dir={run_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, cwd=run_dir.parent, start_new_session=new_session)


def signal_after_two_logs(proc, run_dir: Path, send) -> str:
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 240
    try:
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no training progress in 240 s"
            time.sleep(0.1)
        send(proc)
        return proc.communicate(timeout=240)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL) if proc.pid else proc.kill()
            proc.wait()


LONG_DDP = [*SMALL, *DDP, "train.steps=1000000", "train.log_every_steps=2",
            "train.ckpt_every_steps=100000", "train.sample_every_steps=100000"]


def fake_scontrol(tmp_path: Path) -> tuple[dict, Path]:
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol.calls"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "77"}, calls


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM to the parent", "SIGUSR1 to the parent",
                                 "SIGINT to the process group", "SIGHUP to the process group"])
def test_a_stop_signal_under_ddp_checkpoints_exits_3_and_resumes(tmp_path: Path, how: str):
    run_dir = tmp_path / "run"
    env, calls = fake_scontrol(tmp_path)
    args = [*LONG_DDP, *(["train.requeue=true"] if "USR1" in how else [])]
    proc = start(args, run_dir, env=env, new_session=True)
    sig = getattr(signal, how.split()[0])
    # Ctrl-C in a terminal, or the terminal closing (the shell sends SIGHUP to each of its jobs):
    # every process of the group gets it, the workers too
    if "group" in how:
        err = signal_after_two_logs(proc, run_dir, lambda p: os.killpg(p.pid, sig))
    else:
        err = signal_after_two_logs(proc, run_dir, lambda p: p.send_signal(sig))
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "Traceback" not in err and "error" not in err.lower(), err[-3000:]
    stopped = last_ckpt(run_dir)["step"]
    assert stopped >= 4 and f"holds step {stopped}" in err
    if "USR1" in how:
        assert calls.read_text().split() == ["requeue", "77"] and "requeued" in err
    else:
        assert not calls.exists()  # SIGTERM, SIGINT and SIGHUP never requeue
    resumed = run_cli([f"resume={run_dir}", f"train.steps={stopped + 4}"], run_dir, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert last_ckpt(run_dir)["step"] == stopped + 4


@pytest.mark.slow
def test_a_second_ctrl_c_under_ddp_lets_the_stop_checkpoint_finish(tmp_path: Path):
    """Ctrl-C in a terminal (SIGINT to the whole process group) during step 3, then again while
    rank 0 writes the stop's checkpoint (slowed down here): the parent waits for its workers
    instead of exiting 130 under them, the checkpoint is written, and the run exits 3."""
    run_dir = tmp_path / "run"
    env = injected_env(tmp_path, textwrap.dedent("""
        import os, signal, time
        from gan_cli.training import outputs as _outputs, step as _step
        from gan_cli.training.signals import SAME_CTRL_C_S

        _call, _save = _step.GANStep.__call__, _outputs.save_checkpoint

        def _ctrl_c_in_step_3(self, pair, step, plan):
            _call(self, pair, step, plan)
            if step + 1 == 3 and int(os.environ.get("RANK", 0)) == 0:
                os.killpg(os.getpgid(0), signal.SIGINT)

        def _ctrl_c_while_saving(state, ckpt_dir, step, keep, **kw):
            time.sleep(SAME_CTRL_C_S + 0.3)
            os.killpg(os.getpgid(0), signal.SIGINT)
            time.sleep(0.3)
            return _save(state, ckpt_dir, step, keep, **kw)

        _step.GANStep.__call__ = _ctrl_c_in_step_3
        _outputs.save_checkpoint = _ctrl_c_while_saving
    """))
    proc = start(LONG_DDP, run_dir, env=env, new_session=True)
    try:
        err = proc.communicate(timeout=240)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "Traceback" not in err and "error" not in err.lower(), err[-3000:]
    stopped = last_ckpt(run_dir)["step"]
    # the ranks agree one step after either saw the signal; a handler that runs only once the
    # step's all-reduce has returned (a loaded machine) adds one more: 3 to 5, all a clean stop
    assert stopped in (3, 4, 5) and f"holds step {stopped}" in err


def test_ranks_agree_on_a_stop_one_step_after_any_of_them_got_it():
    """The agreement logic without processes: one step's lag, the same answer on every rank."""
    from gan_cli.training.signals import StopAgreement, StopSignals

    signals = StopSignals()
    agree = StopAgreement(signals)  # no group: a single process decides at once
    assert agree() is False
    signals.received = signal.SIGTERM
    assert agree() is True


def test_a_relayed_ctrl_c_is_not_a_second_ctrl_c():
    from gan_cli.training.signals import SAME_CTRL_C_S, StopSignals

    signals = StopSignals()
    signals._handle(signal.SIGINT, None)
    signals._handle(signal.SIGINT, None)  # the launcher's copy of the same Ctrl-C
    assert signals.received == signal.SIGINT
    signals._at -= SAME_CTRL_C_S + 0.1  # a second Ctrl-C, later
    with pytest.raises(KeyboardInterrupt):
        signals._handle(signal.SIGINT, None)


def test_once_the_stop_has_begun_no_ctrl_c_interrupts_it():
    """The handler without processes: a second Ctrl-C during a step raises KeyboardInterrupt;
    after finish() (the stop's checkpoint is next) it is ignored, and restore() leaves the
    handlers in place (a Ctrl-C while the process exits must not become KeyboardInterrupt)."""
    from gan_cli.training.signals import SAME_CTRL_C_S, StopSignals

    signals = StopSignals()
    signals._handle(signal.SIGINT, None)
    signals._at -= SAME_CTRL_C_S + 0.1
    signals.finish()
    signals._handle(signal.SIGINT, None)  # a second Ctrl-C, later: ignored
    signals._handle(signal.SIGTERM, None)
    assert signals.received == signal.SIGINT and signals.description == "SIGINT"
    signals._previous[signal.SIGINT] = signal.SIG_DFL  # what restore() would put back
    signals.restore()
    assert signals._previous == {signal.SIGINT: signal.SIG_DFL}  # nothing was restored


# ---------------------------------------------------------------------------------------------
# 4. Gradient penalties and BatchNorm in D.


def _D_of(*overrides: str):
    from gan_cli.build import build_data, build_pair

    cfg = compose_train(*SMALL_IMAGES, *overrides)
    data = build_data(cfg.dataset, batch_size=8, device="cpu", seed=0)
    return build_pair(cfg, data.info, torch.device("cpu"), 8).D


@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("loss", ["wgan_gp", "dragan"])
@pytest.mark.slow
def test_a_penalty_loss_gets_a_dcgan_critic_without_batch_coupling(loss: str):
    D = _D_of(f"loss={loss}")
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in D.modules())  # layer norm instead
    D.train()
    x = torch.randn(6, 1, 28, 28)
    # each sample's score depends on that sample alone, in training mode
    torch.testing.assert_close(D(x)[:1], D(x[:1]))
    hinge = _D_of("loss=hinge")  # no penalty: DCGAN's own BatchNorm
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in hinge.modules())
    assert not torch.allclose(hinge.train()(x)[:1], hinge(x[:1]))  # batch-coupled


@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason="needs Debian's dataset-fashion-mnist")
def test_batchnorm_under_a_penalty_is_refused_with_what_to_set(caplog):
    from gan_cli.build import check_no_batch_coupling

    bn_critic = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.BatchNorm1d(4))
    with pytest.raises(ConfigError, match="model.discriminator.norm=layer"):
        check_no_batch_coupling(bn_critic, "WGANGP")  # a D without a norm option
    # asked for explicitly: granted, with a warning
    D = _D_of("loss=hinge", "loss.r1_gamma=1", "model.discriminator.norm=batch")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())
    assert "norm=batch under" in caplog.text


# ---------------------------------------------------------------------------------------------
# 5. Resume on another machine shape.


@pytest.mark.slow
def test_a_ddp_checkpoint_resumes_on_one_process_with_a_warning(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, *DDP, "train.steps=8"], run_dir, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = last_ckpt(run_dir)
    assert ckpt["machine"] == {"world_size": 2, "device": "cpu"}
    assert len(ckpt["rng_ranks"]) == 2
    # every rank's global stream is saved: ranks >= 1 no longer replay rank 0's
    assert not torch.equal(ckpt["rng_ranks"][0]["torch"], ckpt["rng_ranks"][1]["torch"])
    # hardware=cpu, one device: a single process, run in this one
    resumed = run_cli([f"resume={run_dir}", "train.steps=12", "hardware=cpu",
                       "hardware.devices=1"], run_dir, timeout=400, in_process=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "no longer bitwise identical" in (run_dir / "train.log").read_text()
    assert last_ckpt(run_dir)["step"] == 12


@pytest.mark.slow
def test_a_gpu_checkpoint_resumes_on_the_cpu_with_a_warning(tmp_path: Path, toy_run: Path):
    """A checkpoint written on CUDA (its Philox noise state is 16 bytes, CUDA RNG states saved)
    continues on a CPU-only machine instead of failing as 'written for a different model'."""
    state = copy.deepcopy(last_ckpt(toy_run))
    state["machine"] = {"world_size": 1, "device": "cuda"}
    state["noise"] = torch.zeros(16, dtype=torch.uint8)
    for r in state["rng_ranks"]:
        r["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    gpu = tmp_path / "gpu.pt"
    torch.save(state, gpu)
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, f"resume={gpu}", "train.steps=16"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "written on 1 process(es) on cuda" in (run_dir / "train.log").read_text()
    assert last_ckpt(run_dir)["step"] == 16


# ---------------------------------------------------------------------------------------------
# 6. train.nonfinite=skip under DDP: the ranks agree on every skip.


def test_a_skip_on_any_rank_is_a_skip_on_every_rank(monkeypatch):
    from gan_cli.training import nonfinite

    policy = nonfinite.NonFinitePolicy("skip", torch.device("cpu"), Path("."))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    # this rank's update is finite, but another rank's is not (the all-reduce says so)
    monkeypatch.setattr(nonfinite, "any_rank", lambda flag, device: True)
    assert policy.allow("d", torch.tensor(1.0), [p], scaler) is False
    assert policy.skips == {"d": 1, "g": 0}
    monkeypatch.setattr(nonfinite, "any_rank", lambda flag, device: flag)
    assert policy.allow("g", torch.tensor(1.0), [p], scaler) is True


@pytest.mark.slow
def test_skip_mode_under_ddp_ends_without_a_hang(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, *DDP, "optimizer.lr_g=1e30", "train.nonfinite=skip"], run_dir,
                   timeout=400)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    assert "was skipped" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------
# 7. One bad image in a streamed run.


@pytest.fixture
def folder_with_a_bad_file(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(40):
        pixels = (torch.rand(16, 16, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    (folder / "017.png").write_bytes(b"not an image")
    return folder


IMAGE_FOLDER = ["tiny=images", "dataset=image_folder", "dataset.resolution=16",
                "dataset.num_workers=1", "dataset.in_memory=false", "train.batch_size=8"]


def test_a_bad_image_stops_a_streamed_run_with_one_message(tmp_path, folder_with_a_bad_file):
    proc = run_cli([*IMAGE_FOLDER, f"dataset.path={folder_with_a_bad_file}"], tmp_path / "run")
    assert proc.returncode == EXIT_RUNTIME
    assert "017.png" in proc.stderr and "on_bad_file=skip" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_on_bad_file_skip_trains_on_and_names_the_file(tmp_path, folder_with_a_bad_file):
    run_dir = tmp_path / "run"
    proc = run_cli([*IMAGE_FOLDER, f"dataset.path={folder_with_a_bad_file}",
                    "dataset.on_bad_file=skip"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "017.png" in (run_dir / "train.log").read_text() + proc.stdout + proc.stderr


def test_a_decompression_bomb_is_a_bad_file(tmp_path: Path, monkeypatch):
    from PIL import Image

    from gan_cli.data.file_datasets import BadImageFile, ImageFileDataset

    path = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4,096 pixels > 2 x 100: PIL refuses
    with pytest.raises(BadImageFile, match="bomb.png.*DecompressionBomb"):
        ImageFileDataset([path], 16, 3)[0]


@pytest.fixture
def folder_with_a_non_utf8_name(folder_with_a_bad_file: Path) -> Path:
    """The 40 images with 017.png (not an image) removed and a readable image whose name is the
    bytes ff fe, which are not UTF-8 (any byte but / and NUL may be in a POSIX file name)."""
    (folder_with_a_bad_file / "017.png").unlink()
    name = os.path.join(os.fsencode(folder_with_a_bad_file), b"\xff\xfe.png")
    with open(name, "wb") as f:
        f.write((folder_with_a_bad_file / "016.png").read_bytes())
    return folder_with_a_bad_file


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_an_ordinary_image(tmp_path, folder_with_a_non_utf8_name):
    """Streamed from the folder (the data's fingerprint hashes every name): it trains."""
    run_dir = tmp_path / "run"
    proc = run_cli([*IMAGE_FOLDER, f"dataset.path={folder_with_a_non_utf8_name}"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr


@pytest.mark.slow
def test_a_bad_file_whose_name_is_not_utf8_is_named_in_one_line(tmp_path,
                                                                folder_with_a_non_utf8_name):
    """Not an image and not a UTF-8 name: the one line names it with its bytes escaped, in the
    console and in train.log; with on_bad_file=skip the run trains on without it."""
    name = os.path.join(os.fsencode(folder_with_a_non_utf8_name), b"\xff\xfe.png")
    with open(name, "wb") as f:
        f.write(b"not an image")
    proc = run_cli([*IMAGE_FOLDER, f"dataset.path={folder_with_a_non_utf8_name}"],
                   tmp_path / "stop")
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "\\xff\\xfe.png" in proc.stderr and "on_bad_file=skip" in proc.stderr
    assert "\\xff\\xfe.png" in (tmp_path / "stop" / "train.log").read_text()
    skip = tmp_path / "skip"
    proc = run_cli([*IMAGE_FOLDER, f"dataset.path={folder_with_a_non_utf8_name}",
                    "dataset.on_bad_file=skip"], skip)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Logging error" not in proc.stderr
    assert "\\xff\\xfe.png" in (skip / "train.log").read_text()


# ---------------------------------------------------------------------------------------------
# 8. Reference statistics follow the data, not its name.


def test_reference_statistics_are_keyed_by_the_datas_content(tmp_path, folder_with_a_bad_file):
    from gan_cli.data.images import image_folder
    from gan_cli.data.sources import TensorImageSource
    from gan_cli.metrics.tracker import real_data

    g = torch.Generator().manual_seed(0)
    images = (torch.rand(20, 1, 8, 8, generator=g) * 255).to(torch.uint8)
    a = TensorImageSource(images, None, 0, batch_size=4)
    b = TensorImageSource(images.clone(), None, 0, batch_size=4)
    other = images.clone()
    other[3, 0, 2, 2] ^= 1  # one pixel of one image
    c = TensorImageSource(other, None, 0, batch_size=4)
    fa, fb, fc = (real_data(s, 20, "train").fingerprint for s in (a, b, c))
    assert fa == fb and fa != fc
    # a folder: another copy of a file changes the key (names, sizes and times)
    (folder_with_a_bad_file / "017.png").unlink()
    src = image_folder(path=str(folder_with_a_bad_file), resolution=16, batch_size=4)
    before = real_data(src, 10, "train").fingerprint
    time.sleep(0.01)
    (folder_with_a_bad_file / "005.png").write_bytes((folder_with_a_bad_file / "006.png").read_bytes())
    assert real_data(src, 10, "train").fingerprint != before


# ---------------------------------------------------------------------------------------------
# 9. Configuration errors that used to appear at the first evaluation.


@pytest.mark.parametrize("args, words", [
    (["metrics.names=[fid,bogus]"], ["metrics.names", "bogus"]),
    (["tiny=images", "metrics.num_samples=5"], ["metrics.num_samples=5", "Inception score"]),
])
def test_bad_metric_settings_stop_before_training(tmp_path: Path, args, words):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, *args], run_dir)
    assert proc.returncode == EXIT_CONFIG
    assert all(w in proc.stderr for w in words), proc.stderr
    assert not (run_dir / "metrics.jsonl").exists()  # nothing trained


def test_gan_eval_refuses_unknown_metrics_at_once(tmp_path: Path, toy_run: Path):
    proc = run_eval([f"ckpt={toy_run / 'checkpoints' / 'last.pt'}", "metrics=[bogus]",
                     f"hydra.run.dir={tmp_path / 'e'}"], tmp_path)
    assert proc.returncode == EXIT_CONFIG and "bogus" in proc.stderr


# ---------------------------------------------------------------------------------------------
# 10. Metrics under DDP: the other ranks wait for rank 0 outside the main group's collectives.


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason="needs Debian's dataset-fashion-mnist")
def test_ddp_ranks_wait_for_rank_0s_metrics_longer_than_the_collective_timeout(tmp_path: Path):
    run_dir = tmp_path / "run"
    # the first evaluation computes the reference statistics of 10,000 real images and the
    # features of 5,000 samples on rank 0 alone: longer than the main group's collective timeout,
    # set here to 3 s
    proc = run_cli([*SMALL_IMAGES, *DDP, "metrics.every_steps=6", "metrics.num_samples=5000",
                    "metrics.num_real=10000", "metrics.names=[fd_fashion]"], run_dir,
                   env={"GAN_CLI_DDP_TIMEOUT_S": "3", "GAN_CLI_CACHE": str(tmp_path / "cache")},
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = [r["step"] for r in read_metrics(run_dir) if "fd_fashion" in r]
    assert evaluated == [6, 12]


# ---------------------------------------------------------------------------------------------
# 11. Small ones.


def test_deterministic_on_cuda_sets_the_cublas_workspace(monkeypatch):
    from omegaconf import OmegaConf

    from gan_cli.build import configure_torch

    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "unset")  # recorded, so what configure_torch
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")  # exports is removed after the test
    hw = OmegaConf.create({"precision": "fp32", "num_threads": 0, "deterministic": True})
    try:
        configure_torch(hw, torch.device("cuda"))
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.slow
def test_extending_a_linear_decay_keeps_its_end_with_lr_decay_steps(tmp_path: Path):
    run_dir = tmp_path / "run"
    base = [*SMALL, "optimizer.lr_g=2e-4", "optimizer.lr_decay=linear", "train.log_every_steps=1"]
    assert run_cli([*base, "train.steps=8", "optimizer.lr_decay_steps=16"], run_dir).returncode == 0
    proc = run_cli([f"resume={run_dir}", "train.steps=12"], run_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lrs = {r["step"]: r["lr_g"] for r in read_metrics(run_dir)}
    # lr after step s was set before the update s-1 -> s: base * (1 - (s - 1) / 16), base 2e-4
    for s in range(1, 13):
        assert lrs[s] == pytest.approx(2e-4 * (1 - (s - 1) / 16))
    stretched = tmp_path / "stretched"
    assert run_cli([*base, "train.steps=8"], stretched).returncode == 0
    assert run_cli([f"resume={stretched}", "train.steps=12"], stretched).returncode == 0
    assert "the learning rates rise at this resume" in (stretched / "train.log").read_text()


def test_the_wandb_floor_has_reinit_finish_previous():
    text = (REPO / "pyproject.toml").read_text()
    floor = next(line for line in text.splitlines() if '"wandb>=' in line)
    version = tuple(int(p) for p in floor.split(">=")[1].split(",")[0].split("."))
    assert version >= (0, 19, 10)  # reinit="finish_previous": wandb 0.19.10's release notes


# ---------------------------------------------------------------------------------------------
# 12. A full disk: one line, exit 1, the last good checkpoint named and intact (issue 26).
# The fault is planted in the real command, run in this process, with monkeypatch: at one write,
# the file's descriptor is pointed at /dev/full, so that from then on every write to it fails with
# ENOSPC as on a full disk, through the same calls (torch's zip writer, Python's buffered file).

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def full_disk(f) -> None:
    f.flush()
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, f.fileno())
    os.close(full)


class FillsUp:  # a file whose disk is full after `room` more bytes
    def __init__(self, f, room):
        self.f, self.room = f, room

    def write(self, data):
        size = memoryview(data).nbytes
        if size > self.room:
            full_disk(self.f)
        self.room -= size
        return self.f.write(data)


@needs_dev_full
@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_write_names_the_last_good_one(tmp_path: Path, monkeypatch):
    run_dir = tmp_path / "run"
    real_save = torch.save

    def save_on_a_full_disk(obj, f, *args, **kwargs):
        if ".last.pt.tmp-" in str(getattr(f, "name", "")) and obj.get("step") == 12:
            f = FillsUp(f, room=4096)  # the disk fills in the middle of the file
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    proc = run_cli([*SMALL, "train.steps=12", "train.ckpt_every_steps=6"], run_dir, in_process=True)
    monkeypatch.undo()
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = run_dir / "checkpoints" / "last.pt"
    assert "No space left on device" in lines[0] and "step 12" in lines[0]
    assert f"the last good checkpoint is {last} (step 6)" in lines[0]
    assert last_ckpt(run_dir)["step"] == 6  # intact and loadable
    assert not [p.name for p in last.parent.iterdir() if ".tmp-" in p.name]  # no temp file left


@needs_dev_full
@pytest.mark.slow
def test_a_full_disk_while_writing_metrics_is_one_line(tmp_path: Path, monkeypatch):
    from gan_cli import stats

    run_dir = tmp_path / "run"
    real_write = stats.RunLog.write

    def write_on_a_full_disk(self, record):
        if record["step"] == 8:
            full_disk(self._file)
        return real_write(self, record)

    monkeypatch.setattr(stats.RunLog, "write", write_on_a_full_disk)
    proc = run_cli([*SMALL, "train.steps=12", "train.ckpt_every_steps=6"], run_dir, in_process=True)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "No space left on device" in lines[0] and "metrics.jsonl" in lines[0]
    assert last_ckpt(run_dir)["step"] == 6


@pytest.mark.slow
def test_a_full_disk_while_drawing_a_figure_is_one_line(tmp_path: Path, monkeypatch):
    import errno

    from gan_cli.data import toy

    run_dir = tmp_path / "run"
    real_save = toy.ToySource.save_figure

    def save_on_a_full_disk(self, x, path, *args, **kwargs):
        if path.name == "step_00000012.png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(self, x, path, *args, **kwargs)

    monkeypatch.setattr(toy.ToySource, "save_figure", save_on_a_full_disk)
    proc = run_cli([*SMALL, "train.steps=12", "train.ckpt_every_steps=6"], run_dir, in_process=True)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "No space left on device" in lines[0] and "step_00000012.png" in lines[0]
    assert f"the last good checkpoint is {run_dir / 'checkpoints' / 'last.pt'} (step 6)" in lines[0]


# ---------------------------------------------------------------------------------------------
# 13. Memory that cannot be allocated: one line naming the batch (the CPU case runs the real
# command: tests/test_robustness.py's BAD_INPUTS "batch too large for memory").


@pytest.mark.parametrize("error, where", [
    (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 74.51 GiB. GPU 0 has a "
                                 "total capacity of 79.19 GiB\nof which 3.2 GiB is free."), "the GPU"),
    (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                  "allocate memory: you tried to allocate 80000000000 bytes."), "this machine"),
    (MemoryError(), "this machine"),
])
def test_an_allocation_failure_is_one_line_naming_the_batch(monkeypatch, error, where):
    from omegaconf import OmegaConf

    from gan_cli.training import loop

    def raising(e: BaseException):
        def run(*args):
            raise e
        return run

    monkeypatch.setattr(loop, "_train", raising(error))
    cfg = OmegaConf.create({"train": {"batch_size": 10**10}})
    with pytest.raises(RuntimeFailure) as caught:
        loop.train(cfg, Path("unused"))
    message = str(caught.value)
    assert message.startswith(f"out of memory on {where} with train.batch_size=10000000000")
    assert "lower train.batch_size" in message and "\n" not in message
    # any other RuntimeError is a bug: it is not disguised as a lack of memory
    monkeypatch.setattr(loop, "_train", raising(RuntimeError("mat1 and mat2 shapes cannot be multiplied")))
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        loop.train(cfg, Path("unused"))
