"""Never lose a run: exact resume, stop signals, atomic checkpoints, safe loading, clear errors.

What these tests pin down is described for users in docs/reliability.md.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_cli.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from gan_cli.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_RUNTIME
from gan_cli.training.resume import expand_resume_dir
from gan_cli.training.signals import slurm_requeue
from tests.conftest import (
    GAN_TRAIN,
    REPO,
    SMALL,
    SMALL_IMAGES,
    assert_resumed_exactly,
    last_ckpt,
    needs_fashion_mnist,
    read_metrics,
    run_cli,
)

# ---------------------------------------------------------------------------------------------
# Exact resume: N steps straight == N/2 steps + resume + N/2 steps, bitwise on the CPU.


@pytest.mark.slow  # three short runs: about 15 s on a quiet CPU, more on a shared one
def test_resume_began_run_dir_in_place_restores_k_t(tmp_path: Path):
    """BEGAN's k_t is state: resume=RUN_DIR continues the run in place with its own options."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = [*SMALL, "loss=began", "train.ckpt_every_steps=6"]
    assert run_cli([*base, "train.steps=12"], straight).returncode == 0
    assert run_cli([*base, "train.steps=6"], split).returncode == 0
    k_half = float(last_ckpt(split)["loss"]["k_t"])
    assert k_half > 0  # the controller moved: resuming must not reset it to k_init
    # Only resume= and the new length: the model, loss and data come from the run's overrides.
    proc = run_cli([f"resume={split}", "train.steps=12"], split)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resumed from" in (split / "train.log").read_text()
    assert_resumed_exactly(straight, split)
    assert float(last_ckpt(split)["loss"]["k_t"]) == float(last_ckpt(straight)["loss"]["k_t"])


@pytest.mark.slow
@needs_fashion_mnist
def test_resume_dcgan_on_images_from_a_checkpoint_file(tmp_path: Path):
    """256 images, batch 32: 8 batches per epoch, so the split at 6 and the end at 12 sit in
    different epochs; the data order (epoch, position) must survive the resume."""
    straight, first, second = tmp_path / "straight", tmp_path / "first", tmp_path / "second"
    base = [*SMALL_IMAGES, "train.ckpt_every_steps=6"]
    assert run_cli([*base, "train.steps=12"], straight).returncode == 0
    assert run_cli([*base, "train.steps=6"], first).returncode == 0
    assert last_ckpt(first)["data"]["epoch"] == 0
    # resume=FILE: the run continues from that checkpoint in a new run directory
    ckpt = first / "checkpoints" / "step_00000006.pt"
    proc = run_cli([*base, "train.steps=12", f"resume={ckpt}"], second)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert last_ckpt(second)["data"]["epoch"] == 1
    assert_resumed_exactly(straight, second)
    assert [r["step"] for r in read_metrics(second)] == [8, 12]


@pytest.mark.slow
def test_resume_auto_in_a_fresh_directory_starts_from_zero(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "train.steps=4", "resume=auto"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no checkpoint" in (run_dir / "train.log").read_text()
    assert last_ckpt(run_dir)["step"] == 4


def test_expand_resume_dir_reuses_the_runs_overrides(tmp_path: Path):
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(
        "- loss=began\n- train.steps=6\n- resume=auto\n- model=mlp\n")
    argv = expand_resume_dir([f"resume={run_dir}", "train.steps=12"])
    assert argv == ["loss=began", "model=mlp", f"resume={run_dir}", "train.steps=12",
                    f"hydra.run.dir={run_dir.resolve()}"]
    assert expand_resume_dir(["resume=auto", "x=1"]) == ["resume=auto", "x=1"]
    given = expand_resume_dir([f"resume={run_dir}", "hydra.run.dir=/elsewhere"])
    assert given[-1] == "hydra.run.dir=/elsewhere"


# ---------------------------------------------------------------------------------------------
# Atomic checkpoints and keep-last-K.

_WRITER = """
import sys, torch
from pathlib import Path
from gan_cli.checkpoint import save_checkpoint
d = Path(sys.argv[1])
big = torch.randn(6_000_000, generator=torch.Generator().manual_seed(0))  # 24 MB: a write
# takes long enough to be interrupted
step = 0
while True:
    step += 1
    save_checkpoint({"step": step, "G": {"w": big + step}}, d, step, keep=2)
    print(step, flush=True)
"""


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_leaves_the_previous_one(tmp_path: Path):
    ckpt_dir = tmp_path / "checkpoints"
    big = torch.randn(6_000_000, generator=torch.Generator().manual_seed(0))  # the writer's
    left_temp = False
    for _attempt in range(5):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(ckpt_dir)],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert proc.stdout.readline().strip() == "1"  # one complete checkpoint exists
            deadline = time.monotonic() + 60
            while not any(p.name.startswith(".last.pt.tmp-") for p in ckpt_dir.iterdir()):
                assert time.monotonic() < deadline, "the writer never started a second write"
            proc.send_signal(signal.SIGKILL)  # mid-write
        finally:
            proc.kill()
            proc.wait()
        temps = [p for p in ckpt_dir.iterdir() if ".tmp-" in p.name]
        left_temp = left_temp or bool(temps)
        # the previous complete checkpoint survives, and a temp file is never taken for one
        assert latest_checkpoint(ckpt_dir) == ckpt_dir / "last.pt"
        state = load_checkpoint(ckpt_dir / "last.pt")
        # a complete write of one step: every value is the writer's big + step
        assert state["step"] >= 1
        assert torch.equal(state["G"]["w"], big + state["step"])
        for p in ckpt_dir.glob("step_*.pt"):  # each numbered checkpoint holds its own step
            numbered = load_checkpoint(p)
            assert numbered["step"] == int(p.stem.split("_")[1])
            assert torch.equal(numbered["G"]["w"], big + numbered["step"])
        remove_stale_temp_files(ckpt_dir)
        assert not [p for p in ckpt_dir.iterdir() if ".tmp-" in p.name]
        if left_temp:
            break
    assert left_temp, "no attempt killed the writer in the middle of a write"


def test_a_failing_write_keeps_the_old_checkpoint(tmp_path: Path, monkeypatch):
    save_checkpoint({"step": 1, "G": {"w": torch.ones(3)}}, tmp_path, 1, keep=0)

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="No space left"):
        save_checkpoint({"step": 2, "G": {"w": torch.zeros(3)}}, tmp_path, 2, keep=0)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_a_full_disk_behind_torchs_unexpected_pos_is_named(tmp_path: Path, monkeypatch):
    """torch's zip writer turns ENOSPC into ``RuntimeError: ... unexpected pos``, raised while the
    OSError is handled: the message says why. Here the numbered copy (written again where hard
    links fail) hits the full disk, after last.pt was written."""
    real_save = torch.save

    def save_on_a_full_disk(obj, f, *args, **kwargs):
        if ".step_" in f.name:
            try:
                raise OSError(28, "No space left on device")
            except OSError:  # as torch does: its RuntimeError has the OSError as context
                raise RuntimeError(  # noqa: B904
                    "[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
        return real_save(obj, f, *args, **kwargs)

    def no_hard_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    monkeypatch.setattr(os, "link", no_hard_links)
    with pytest.raises(CheckpointError) as caught:
        save_checkpoint({"step": 2, "G": {"w": torch.zeros(3)}}, tmp_path, 2, keep=1)
    monkeypatch.undo()
    assert str(caught.value) == (f"cannot write checkpoint {tmp_path / 'step_00000002.pt'} (No space "
                                 f"left on device); {tmp_path / 'last.pt'} holds step 2")
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_keep_last_k(tmp_path: Path):
    for keep, expected in ((0, []), (2, ["step_00000004.pt", "step_00000005.pt"])):
        d = tmp_path / f"keep{keep}"
        d.mkdir()
        (d / ".last.pt.tmp-999999999").write_bytes(b"junk")  # a dead writer's leftovers
        for step in range(1, 6):
            save_checkpoint({"step": step}, d, step, keep)
        assert sorted(p.name for p in d.glob("step_*")) == expected
        assert load_checkpoint(d / "last.pt")["step"] == 5
        assert latest_checkpoint(d) == d / "last.pt"
    stale = tmp_path / "keep0" / ".last.pt.tmp-999999999"
    assert remove_stale_temp_files(tmp_path / "keep0") == [stale]


# ---------------------------------------------------------------------------------------------
# Stop signals: a checkpoint at the next step boundary, exit status 3, then resume.


def start_cli(args: list[str], run_dir: Path, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.Popen([*GAN_TRAIN, *args, f"hydra.run.dir={run_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, cwd=run_dir.parent)


def signal_when_training(proc: subprocess.Popen, run_dir: Path, sig: int) -> tuple[str, str]:
    metrics = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + 120
    try:
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no training progress in 120 s"
            time.sleep(0.05)
        proc.send_signal(sig)
        return proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


LONG = [*SMALL, "train.steps=1000000", "train.log_every_steps=2", "train.ckpt_every_steps=100000",
        "train.sample_every_steps=100000"]


@pytest.mark.slow
def test_sigterm_checkpoints_exits_3_and_resume_finishes_exactly(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = start_cli(LONG, run_dir)
    _, err = signal_when_training(proc, run_dir, signal.SIGTERM)
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert "stopped by SIGTERM" in err and "Traceback" not in err
    stopped = last_ckpt(run_dir)["step"]
    assert stopped >= 4
    assert f"holds step {stopped}" in err
    # continue to the end (a shorter end than the original million steps)
    end = stopped + 5
    proc2 = run_cli([f"resume={run_dir}", f"train.steps={end}"], run_dir)
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert last_ckpt(run_dir)["step"] == end
    steps = [r["step"] for r in read_metrics(run_dir)]
    assert steps == sorted(set(steps)) and steps[-1] == end
    # and the stop cost nothing: the same steps straight give the same weights
    straight = tmp_path / "straight"
    assert run_cli([*LONG, f"train.steps={end}"], straight).returncode == 0
    assert_resumed_exactly(straight, run_dir)


@pytest.mark.slow
def test_sigusr1_under_slurm_requeues_with_scontrol(tmp_path: Path):
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol.calls"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    run_dir = tmp_path / "run"
    proc = start_cli([*LONG, "train.requeue=true"], run_dir,
                     env={"PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242"})
    _, err = signal_when_training(proc, run_dir, signal.SIGUSR1)
    assert proc.returncode == EXIT_INTERRUPTED, err[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    assert "requeued" in err
    assert last_ckpt(run_dir)["step"] >= 4


def test_slurm_requeue_command(tmp_path: Path, monkeypatch):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    assert slurm_requeue({}) is None and calls == []
    assert slurm_requeue({"SLURM_JOB_ID": "7"}) == "7"
    assert slurm_requeue({"SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "8",
                          "SLURM_ARRAY_TASK_ID": "3"}) == "8_3"
    assert calls == [["scontrol", "requeue", "7"], ["scontrol", "requeue", "8_3"]]


# ---------------------------------------------------------------------------------------------
# Non-finite values.


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path: Path):
    """lr_g = 1e30: G's weights reach ~1e30 after step 1, and D's scores overflow at step 2."""
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "optimizer.lr_g=1e30", "train.ckpt_every_steps=1",
                    "train.log_every_steps=4"], run_dir)
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    err = proc.stderr
    assert "training diverged" in err and "at step 2" in err and "Traceback" not in err
    assert "not finite" in err and "last good checkpoint" in err
    ckpt = last_ckpt(run_dir)
    assert ckpt["step"] == 1
    for net in ("G", "D"):
        assert all(torch.isfinite(v).all() for v in ckpt[net].values() if v.is_floating_point())
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "last.pt", "step_00000001.pt"]


@pytest.mark.slow
def test_nonfinite_skip_counts_skips_and_stops_when_nothing_trains(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "optimizer.lr_g=1e30", "train.nonfinite=skip"], run_dir)
    records = read_metrics(run_dir)
    assert records[0]["step"] == 4 and records[0]["nonfinite_skips"] > 0
    assert all(math.isfinite(v) for v in records[0].values())
    assert "updates skipped so far" in (run_dir / "train.log").read_text()
    # every update after that is skipped: the run says so instead of idling to the end
    assert proc.returncode == EXIT_RUNTIME, proc.stderr[-3000:]
    assert "was skipped" in proc.stderr


# ---------------------------------------------------------------------------------------------
# Loading never executes code.


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_by_resume(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "gan-cli/1", "step": 1, "G": _Exploit(marker)}, evil)
    proc = run_cli([*SMALL, f"resume={evil}"], tmp_path / "run")
    assert proc.returncode == EXIT_RUNTIME
    assert "refused to load" in proc.stderr and "execute code" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
    # a raw pickle (not torch's zip format) is refused as well
    import pickle

    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"x": _Exploit(marker)}))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Clear errors: exit status and message words through the real CLI, no traceback.


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("good") / "run"
    proc = run_cli([*SMALL, "train.steps=2", "train.log_every_steps=1"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def _file(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def _truncated(tmp: Path, good: Path) -> Path:
    data = (good / "checkpoints" / "last.pt").read_bytes()
    return _file(tmp, "truncated.pt", data[: len(data) // 2])


def _tensor_pt(tmp: Path, good: Path) -> Path:
    torch.save(torch.zeros(3), tmp / "tensor.pt")
    return tmp / "tensor.pt"


def _empty_dir(tmp: Path, good: Path) -> Path:
    (tmp / "empty_run").mkdir()
    return tmp / "empty_run"


def _a_file(tmp: Path, good: Path) -> Path:
    return _file(tmp, "a_file", b"x")


def _memory_cap(tmp: Path, good: Path) -> Path:
    """A ``sitecustomize`` folder that caps the command's address space at 16 GB, so that an
    absurd batch fails to allocate on any machine (and never makes one swap)."""
    folder = tmp / "memory_cap"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import resource\nresource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))\n")
    return folder


def _config_of(make):
    """A setup: the good run's checkpoint with its saved config replaced by ``make()``."""
    def setup(tmp: Path, good: Path) -> Path:
        state = load_checkpoint(good / "checkpoints" / "last.pt")
        state["config"] = make()
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(20000)  # the pickler recurses into a deeply nested config
        try:
            torch.save(state, tmp / "crafted.pt")
        finally:
            sys.setrecursionlimit(limit)
        return tmp / "crafted.pt"
    return setup


def _nested(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"a": node}
    return node


# (id, args; "{x}" is replaced by the setup's path, "{good}" by a finished run's directory,
#  setup or None, exit status, words in stderr, extra environment)
BAD_INPUTS = [
    ("unknown option", ["loss=foo"], None, EXIT_CONFIG, ["loss", "foo", "wgan_gp"], {}),
    ("mistyped key", ["train.step=5"], None, EXIT_CONFIG,
     ["unknown key 'train.step'", "Did you mean 'train.steps'"], {}),
    ("wrong type", ["train.steps=many"], None, EXIT_CONFIG, ["train.steps", "many"], {}),
    ("negative lr", ["optimizer.lr_d=-0.1"], None, EXIT_CONFIG,
     ["optimizer.lr_d=-0.1", "must be >= 0"], {}),  # lr_d=0: G against a frozen D
    ("zero batch", ["train.batch_size=0"], None, EXIT_CONFIG,
     ["train.batch_size=0", "must be > 0"], {}),
    ("bad nonfinite", ["train.nonfinite=ignore"], None, EXIT_CONFIG,
     ["train.nonfinite", "stop, skip"], {}),
    ("negative keep", ["train.keep_ckpts=-1"], None, EXIT_CONFIG, ["train.keep_ckpts"], {}),
    ("negative threads", ["hardware.num_threads=-1"], None, EXIT_CONFIG,
     ["hardware.num_threads=-1", "must be >= 0"], {}),
    ("batch not an integer", ["train.batch_size=1e10"], None, EXIT_CONFIG,
     ["train.batch_size=1e10", "Integer"], {}),
    ("batch too large for memory", ["train.batch_size=1000000000000"], _memory_cap, EXIT_RUNTIME,
     ["out of memory", "train.batch_size=1000000000000", "lower train.batch_size"],
     {"PYTHONPATH": f"{{x}}{os.pathsep}{REPO}"}),
    ("missing dataset", ["dataset=cifar10"], None, EXIT_RUNTIME,
     ["CIFAR-10", "could not be loaded", "dataset.root"], {"GAN_CLI_DATA": "{tmp}"}),
    ("image folder without path", ["dataset=image_folder"], None, EXIT_CONFIG,
     ["dataset.path is required"], {}),
    ("image folder missing", ["dataset=image_folder", "dataset.path={tmp}/nowhere"], None,
     EXIT_RUNTIME, ["dataset.path"], {}),
    pytest.param("bad resolution", ["dataset=fashion_mnist", "dataset.limit=64", "model=dcgan",
                                    "dataset.resolution=27"], None, EXIT_CONFIG,
                 ["model", "image side 27", "supported"], {}, marks=needs_fashion_mnist),
    pytest.param("no cuda", ["hardware=gpu"], None, EXIT_CONFIG, ["CUDA", "hardware=cpu"], {},
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")),
    ("missing checkpoint", ["resume={tmp}/nowhere/last.pt"], None, EXIT_RUNTIME,
     ["checkpoint not found"], {}),
    ("corrupt checkpoint", ["resume={x}"],
     lambda tmp, good: _file(tmp, "random.pt", os.urandom(4096)), EXIT_RUNTIME,
     ["cannot read checkpoint", "corrupt"], {}),
    ("truncated checkpoint", ["resume={x}"], _truncated, EXIT_RUNTIME,
     ["cannot read checkpoint", "truncated"], {}),
    ("not a checkpoint", ["resume={x}"], _tensor_pt, EXIT_RUNTIME,
     ["not a gan-cli checkpoint"], {}),
    ("incompatible checkpoint", ["resume={good}/checkpoints/last.pt",
                                 "model.generator.hidden=[64,64]"], None, EXIT_CONFIG,
     ["does not fit", "model.generator.hidden"], {}),
    ("checkpoint config a list", ["resume={x}"], _config_of(lambda: [1, 2]), EXIT_RUNTIME,
     ["refused", "not a mapping"], {}),
    ("checkpoint config an int", ["resume={x}"], _config_of(lambda: 7), EXIT_RUNTIME,
     ["refused", "not a mapping"], {}),
    ("checkpoint config nested deep", ["resume={x}"], _config_of(lambda: _nested(5000)),
     EXIT_RUNTIME, ["refused", "nested"], {}),
    ("run dir without checkpoints", ["resume={x}"], _empty_dir, EXIT_RUNTIME,
     ["no checkpoint in"], {}),
    ("unwritable run dir", ["hydra.run.dir={x}/run"], _a_file, EXIT_RUNTIME,
     ["cannot write the run directory"], {}),
]


@pytest.mark.parametrize("name,args,setup,status,words,env", BAD_INPUTS,
                         ids=[getattr(p, "values", p)[0] for p in BAD_INPUTS])
@pytest.mark.slow
def test_bad_input(tmp_path: Path, good_run: Path, name, args, setup, status, words, env):
    x = setup(tmp_path, good_run) if setup else None

    def fill(s: str) -> str:
        return s.format(x=x, tmp=tmp_path, good=good_run)

    args = [fill(a) for a in args]
    env = {k: fill(v) for k, v in env.items()}
    run_dir = tmp_path / "run"
    explicit = [a for a in args if a.startswith("hydra.run.dir=")]
    if explicit:  # run_cli appends its own hydra.run.dir; this case names the bad one itself
        run_dir = Path(explicit[0].partition("=")[2])
        args = [a for a in args if not a.startswith("hydra.run.dir=")]
    proc = run_cli([*SMALL, *args], run_dir, env=env, cwd=tmp_path)
    assert proc.returncode == status, proc.stderr[-3000:]
    for word in words:
        assert word in proc.stderr, (word, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    if name not in LISTING_MESSAGES:  # one line, not Hydra's or OmegaConf's several
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    assert proc.stderr.count(f"{GAN_TRAIN_PROG}:") == 1, proc.stderr[-3000:]


GAN_TRAIN_PROG = "gan-train"
#: The cases whose one message is a list, one item a line (with the reason).
LISTING_MESSAGES = {"missing dataset": "the sources tried, in order, one a line",
                    "image folder missing": "the sources tried, then what to do, one a line"}


def test_every_bad_input_is_a_row_of_the_reliability_table():
    """docs/reliability.md's table of bad inputs lists exactly these cases, with their statuses."""
    text = (REPO / "docs" / "reliability.md").read_text()
    section = text.split("### The cases of `BAD_INPUTS`")[1].split("\n#")[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[2].isdigit():
            rows[cells[0]] = int(cells[2])
    cases = {getattr(p, "values", p)[0]: getattr(p, "values", p)[3] for p in BAD_INPUTS}
    assert rows == cases


@pytest.mark.slow
def test_wandb_failing_to_start_falls_back_to_local_logging(tmp_path: Path):
    run_dir = tmp_path / "run"
    home = tmp_path / "home"  # no ~/.netrc, no W&B settings: online mode has no API key
    home.mkdir()
    args = [a for a in SMALL if not a.startswith("logger=")]
    env = {"HOME": str(home), "WANDB_API_KEY": "", "WANDB_BASE_URL": "http://127.0.0.1:9",
           "MPLCONFIGDIR": str(Path.home() / ".cache" / "matplotlib")}
    proc = run_cli([*args, "logger=wandb", "logger.mode=online", "logger.init_timeout_s=10",
                    "train.steps=4", "train.log_every_steps=2"], run_dir, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_text = (run_dir / "train.log").read_text()  # Hydra's console log goes to stdout
    assert "W&B could not start" in log_text and "logging locally only" in log_text
    assert "W&B could not start" in proc.stdout
    assert [r["step"] for r in read_metrics(run_dir)] == [2, 4]
    assert last_ckpt(run_dir)["step"] == 4
