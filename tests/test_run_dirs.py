"""A checkpoint's paths are data; one run per directory (issue 26, sections 2 and 3).

* gan-eval and gan-sample rebuild a checkpoint's data from the user's own data root and download
  setting, never writing into the directory the checkpoint's ``dataset.root`` names nor
  downloading because the checkpoint says so;
* a run holds an OS lock on its run directory (``RUN_DIR/.lock``, fcntl.flock, its PID inside):
  a second run into the same directory exits 1 naming the holder's PID before writing anything,
  and the lock dies with its holder, even by SIGKILL;
* gan-eval and gan-sample refuse a training run's directory as their own (exit 2), so that run's
  ``.hydra/overrides.yaml`` stays its own and it still resumes.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_cli.checkpoint import load_checkpoint
from gan_cli.errors import EXIT_CONFIG, EXIT_RUNTIME
from tests.conftest import GAN_TRAIN, REPO, SMALL, SMALL_IMAGES, needs_fashion_mnist, run_cli


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every socket connection this process tries is recorded in the returned list and refused."""
    import socket

    tried: list = []

    def refuse(self, address, *args, **kwargs):
        tried.append(address)
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return tried


def run_tool(tool: str, args: list[str], out: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``gan-eval`` or ``gan-sample`` (``tool``: eval or sample) into ``out``, in this process
    (tests/inprocess.py: the same entry point, exit status and output)."""
    return run_cli(args, out, prog=f"gan-{tool}", env=env, in_process=True)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# ---------------------------------------------------------------------------------------------
# 1. A checkpoint's dataset.root and dataset.download are the user's business, not the file's.


@pytest.fixture(scope="module")
def images_run(tmp_path_factory) -> Path:
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (make data)")
    run_dir = tmp_path_factory.mktemp("images") / "run"
    proc = run_cli([*SMALL_IMAGES, "train.steps=2", "train.log_every_steps=1"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _aimed_checkpoint(tmp_path: Path, run_dir: Path, victim: Path, target: str | None = None) -> Path:
    """The run's checkpoint with its saved dataset.root at ``victim`` and dataset.download true."""
    state = copy.deepcopy(load_checkpoint(run_dir / "checkpoints" / "last.pt"))
    state["config"]["dataset"]["root"] = str(victim)
    state["config"]["dataset"]["download"] = True
    if target is not None:
        state["config"]["dataset"]["_target_"] = target
    path = tmp_path / "aimed.pt"
    torch.save(state, path)  # plain dicts and strings: weights-only loading accepts it
    return path


@needs_fashion_mnist
@pytest.mark.parametrize("tool, args", [
    ("sample", ["n=4", "format=npz"]),
    ("eval", ["metrics=[]", "probe=linear", "probe_train=64", "probe_test=64", "sweep_columns=0"]),
])
@pytest.mark.slow
def test_a_checkpoints_data_root_is_not_written_into(tmp_path: Path, images_run: Path, no_network,
                                                     tool, args):
    victim = tmp_path / "victim"
    victim.mkdir()
    user_root = tmp_path / "user_data"
    ckpt = _aimed_checkpoint(tmp_path, images_run, victim)
    env = {"GAN_CLI_DATA": str(user_root), "GAN_CLI_CACHE": str(tmp_path / "cache")}
    proc = run_tool(tool, [f"ckpt={ckpt}", *args], tmp_path / "out", env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert files_under(victim) == []  # Debian's Fashion-MNIST was not un-gzipped there (55 MB)
    assert (user_root / "FashionMNIST" / "raw").is_dir()  # but into the user's own data root
    assert not no_network


@needs_fashion_mnist
@pytest.mark.parametrize("tool", ["sample", "eval"])
def test_a_checkpoint_saying_download_true_downloads_nothing(tmp_path: Path, images_run: Path, no_network,
                                                             tool):
    """MNIST (same shapes as Fashion-MNIST) is found in no local source here: torchvision would
    create the checkpoint's root and download into it. The user's download setting (false by
    default) decides instead: nothing is fetched, nothing is created, one message, exit 1."""
    victim = tmp_path / "victim"
    victim.mkdir()
    ckpt = _aimed_checkpoint(tmp_path, images_run, victim, target="gan_cli.data.images.mnist")
    env = {"GAN_CLI_DATA": str(tmp_path / "user_data")}
    proc = run_tool(tool, [f"ckpt={ckpt}", "metrics=[]" if tool == "eval" else "n=4"], tmp_path / "out", env)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    assert "MNIST" in proc.stderr and "Traceback" not in proc.stderr
    assert "skipped" in proc.stderr  # the download source was skipped, not tried
    assert not no_network, no_network
    assert files_under(victim) == []


def test_only_the_keys_that_write_or_download_are_replaced():
    """The rule, by hand: root and download of the torchvision-style datasets become the user's;
    a folder dataset's path (read only) and every other key stay the checkpoint's."""
    from omegaconf import OmegaConf

    from gan_cli.build import local_dataset

    saved = OmegaConf.create({"_target_": "gan_cli.data.images.cifar10", "root": "/victim",
                              "download": True, "resolution": 32, "limit": 100})
    node = local_dataset(saved, data_root="/mine", download=False)
    assert (node.root, node.download, node.resolution, node.limit) == ("/mine", False, 32, 100)
    assert saved.root == "/victim"  # the caller's node is left alone
    folder = OmegaConf.create({"_target_": "gan_cli.data.images.image_folder", "path": "/photos"})
    assert local_dataset(folder, data_root="/mine", download=True) == folder
    pairs = OmegaConf.create({"_target_": "gan_cli.data.paired.fashion_pairs", "root": "/idx"})
    assert local_dataset(pairs, data_root="/mine", download=True).root == "/idx"  # read only
    default = local_dataset(saved, data_root=None, download=False)
    assert default.root == os.environ.get("GAN_CLI_DATA", "~/.cache/gan-cli/data")


# ---------------------------------------------------------------------------------------------
# 2. One run per directory.

HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(600)
"""


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """A process holding RUN_DIR/.lock as a run does (flock, its PID inside), until killed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir / ".lock")], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.mark.slow
def test_a_second_run_into_a_held_directory_exits_1_naming_the_holder(tmp_path: Path):
    run_dir = tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        proc = run_cli([*SMALL, "resume=auto"], run_dir)
        assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"PID {holder.pid}" in lines[0], proc.stderr
        assert str(run_dir) in lines[0] and "Traceback" not in proc.stderr
        # before anything was written: no .hydra/, no log, no metrics, no checkpoint
        assert files_under(run_dir) == [".lock"]
    finally:
        holder.kill()
        holder.wait()
    # the OS freed the lock with its holder (SIGKILL): the next run proceeds
    proc = run_cli([*SMALL, "resume=auto"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    assert (run_dir / ".lock").read_text().strip() != str(holder.pid)


@pytest.mark.slow  # a run of some seconds beside a second one
def test_two_real_runs_into_one_directory(tmp_path: Path):
    """A run made slow (many steps) holds its directory; a second gan-train resume=auto into it
    exits 1 naming the first's PID and leaves metrics.jsonl as the first writes it; after the
    first is killed (SIGKILL) the directory is free again."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    first = subprocess.Popen([*GAN_TRAIN, *SMALL, "resume=auto", "train.steps=1000000",
                              "train.ckpt_every_steps=1000000", f"hydra.run.dir={run_dir}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "metrics.jsonl").is_file():
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.2)
        second = run_cli([*SMALL, "resume=auto"], run_dir)
        assert second.returncode == EXIT_RUNTIME, second.stderr[-3000:]
        assert f"PID {first.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert not list(run_dir.glob("checkpoints/*.pt"))  # the second wrote no checkpoint
        assert first.poll() is None  # and the first goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # metrics.jsonl is the first run's alone: one record per logging step, in order
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if line.endswith("}")]
    assert steps == sorted(set(steps)) and steps
    proc = run_cli([*SMALL, "resume=auto"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow  # two gloo ranks started by gan-train, then a stop
def test_under_ddp_the_parent_holds_the_lock_and_the_workers_train(tmp_path: Path):
    """gan-train's DDP parent holds the lock; its workers (which never take it) train; a second
    run is turned away naming the parent; after the parent's stop (exit 3) the lock is free and
    the run resumes."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    parent = subprocess.Popen([*GAN_TRAIN, *SMALL, "hardware=ddp", "hardware.device=cpu",
                               "hardware.devices=2", "train.steps=1000000", "train.log_every_steps=2",
                               "train.ckpt_every_steps=1000000", f"hydra.run.dir={run_dir}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "metrics.jsonl").is_file():  # the workers train: no deadlock
            assert parent.poll() is None, parent.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no training progress in 240 s"
            time.sleep(0.2)
        assert (run_dir / ".lock").read_text().strip() == str(parent.pid)
        second = run_cli([*SMALL, "resume=auto"], run_dir)
        assert second.returncode == EXIT_RUNTIME and f"PID {parent.pid}" in second.stderr, second.stderr
        parent.send_signal(signal.SIGTERM)
        err = parent.communicate(timeout=240)[1]
        assert parent.returncode == 3, err[-3000:]
    finally:
        if parent.poll() is None:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait()
    stopped = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    proc = run_cli([f"resume={run_dir}", f"train.steps={stopped + 2}"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow  # two gloo ranks started by gan-train, whose parent is then killed
def test_the_workers_of_a_killed_ddp_parent_stop_with_a_checkpoint(tmp_path: Path):
    """SIGKILL to gan-train's DDP parent frees the directory's lock with it: its workers must not
    train on there. They stop (the rendezvous store dies with the parent) leaving a checkpoint, and
    a new run resumes. (A regression guard: this held before the lock came.)"""
    run_dir = tmp_path / "run"
    env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    parent = subprocess.Popen([*GAN_TRAIN, *SMALL, "hardware=ddp", "hardware.device=cpu",
                               "hardware.devices=2", "train.steps=1000000", "train.log_every_steps=2",
                               "train.ckpt_every_steps=1000000", f"hydra.run.dir={run_dir}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                              cwd=tmp_path, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while not (run_dir / "metrics.jsonl").is_file():
            assert parent.poll() is None and time.monotonic() < deadline, "the workers did not train"
            time.sleep(0.2)
        for children in Path(f"/proc/{parent.pid}/task").glob("*/children"):
            for pid in children.read_text().split():
                if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes() and \
                        b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    workers.append(int(pid))
        assert len(workers) == 2, workers
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 120
        while any(Path(f"/proc/{pid}").exists() and "Z" not in _state(pid) for pid in workers):
            assert time.monotonic() < deadline, "the workers of a dead parent went on training"
            time.sleep(0.2)
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    stopped = load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"]
    assert stopped > 0
    proc = run_cli([f"resume={run_dir}", f"train.steps={stopped + 2}"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.mark.slow
def test_a_multirun_job_whose_directory_is_held_fails_alone(tmp_path: Path):
    """Each job of a sweep holds its own directory: a held one fails (naming the holder), the
    others train, and the sweep's exit status says a job failed."""
    sweep = tmp_path / "sweep"
    holder = hold_lock(sweep / "0")
    try:
        env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        env.pop("HYDRA_FULL_ERROR", None)
        proc = subprocess.run([*GAN_TRAIN, "-m", *SMALL, "train.steps=4", "seed=0,1",
                               f"hydra.sweep.dir={sweep}"], capture_output=True, text=True, timeout=300,
                              env=env, cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    assert f"PID {holder.pid}" in proc.stderr and "job 0" in proc.stderr
    assert not (sweep / "0" / "metrics.jsonl").exists()
    assert (sweep / "1" / "checkpoints" / "last.pt").is_file()


def test_the_lock_is_taken_and_freed_by_one_function(tmp_path: Path):
    from gan_cli.errors import RuntimeFailure
    from gan_cli.rundir import lock_run_dir, unlock_run_dir

    run_dir = tmp_path / "run"
    lock_run_dir(run_dir)
    assert (run_dir / ".lock").read_text().strip() == str(os.getpid())
    lock_run_dir(run_dir)  # this process holds it already: nothing to do
    # another open file description (what another process has) cannot take it
    fd = os.open(run_dir / ".lock", os.O_RDWR)
    with pytest.raises(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    unlock_run_dir(run_dir)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free now; this description holds it
    try:
        with pytest.raises(RuntimeFailure, match=f"PID {os.getpid()}"):  # the PID in the file
            lock_run_dir(run_dir)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# 3. gan-eval / gan-sample pointed at a training run's directory.


@pytest.mark.parametrize("tool", ["sample", "eval"])
@pytest.mark.slow
def test_gan_sample_and_gan_eval_refuse_a_training_runs_directory(tmp_path: Path, toy_run: Path, tool):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(toy_run, run_dir)
    before = {p: p.read_bytes() for p in (run_dir / ".hydra").iterdir()}
    listing = files_under(run_dir)
    proc = run_tool(tool, [f"ckpt={run_dir / 'checkpoints' / 'last.pt'}"], run_dir)
    assert proc.returncode == EXIT_CONFIG, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "training run" in lines[0] and "hydra.run.dir" in lines[0], proc.stderr
    assert {p: p.read_bytes() for p in (run_dir / ".hydra").iterdir()} == before
    assert files_under(run_dir) == listing  # nothing written, not even a lock file
    # the run still resumes in place with its own options
    proc = run_cli([f"resume={run_dir}", "train.steps=14"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 14
