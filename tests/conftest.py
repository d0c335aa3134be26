"""Shared fixtures: the real CLI in a subprocess, and the real config composed in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.inprocess import needs_subprocess, run_in_process

REPO = Path(__file__).resolve().parents[1]
GAN_TRAIN = [sys.executable, "-m", "gan_cli.cli"]
# conf/tiny/: a few seconds on a CPU, the same settings a user gets with `gan-train tiny=toy`.
SMALL = ["tiny=toy"]  # the MLP on ring8, 12 steps of batch 32, no W&B, no metrics, one thread
SMALL_IMAGES = ["tiny=images"]  # a narrow DCGAN on 256 real Fashion-MNIST images


def _hear_hangups_in_children() -> None:
    """A suite started under nohup (or by anything that ignores SIGHUP) passes the ignored SIGHUP
    on to every process it starts, across exec, and gan-train keeps an ignored signal ignored on
    purpose (training/signals.py): the tests that send SIGHUP would see runs that never stop. A
    handler that does nothing keeps this process as deaf to hangups as nohup asked, and exec
    resets a handled signal to its default in the children."""
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


_hear_hangups_in_children()

# Fashion-MNIST as Debian's dataset-fashion-mnist installs it (`make data`)
HAVE_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist").is_dir()
needs_fashion_mnist = pytest.mark.skipif(not HAVE_FASHION_MNIST,
                                         reason="needs Debian's dataset-fashion-mnist (make data)")


# Threads: the suite runs in pytest-xdist workers (`make test`: -n 2 on this 2-core machine). Each
# worker, and every process it starts, with torch's default of one thread per core would ask for
# twice the cores there are, and OpenMP's threads then wait on each other (two 2-thread torch
# processes on 2 cores run about tenfold slower). Each worker gets cores // workers threads, unless
# the environment says otherwise.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# No test may reach the real Inception URL (CI has no internet, and gan-eval downloads missing
# weights by default): every download, in this process and in the CLI's subprocesses, goes to a
# closed port on 127.0.0.1 unless a test names its own server (inception_url=...).
os.environ["GAN_CLI_INCEPTION_URL"] = "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth"

# A suite started in the background by a non-interactive shell (`cmd &`) inherits SIGINT ignored,
# every command it starts too, and gan-train then leaves SIGINT ignored as `nohup` asks (measured:
# the Ctrl-C tests exited 0 that way). The tests of Ctrl-C need it delivered: the pytest process
# takes Python's default handler back, which its subprocesses see as the default action.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_cli(args: list[str], run_dir: Path, *, timeout: float = 300, env: dict | None = None,
            cwd: Path | None = None, in_process: bool | None = None,
            prog: str = "gan-train") -> subprocess.CompletedProcess:
    """Run ``prog`` (gan-train, gan-eval or gan-sample) with ``args`` into ``run_dir``; return the
    finished process.

    ``in_process``: run the command inside this process (tests/inprocess.py: the same entry point,
    status and output, without a new interpreter); None decides by ``needs_subprocess``: DDP,
    SLURM, W&B and injected environments get a process of their own."""
    if in_process is None:
        in_process = not needs_subprocess(args, env)
    if in_process:
        return run_in_process(prog, [*args, f"hydra.run.dir={run_dir}"], cwd or run_dir.parent, env)
    # PYTHONPATH: the subprocess imports this checkout's gan_cli, whatever is installed
    full_env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    command = GAN_TRAIN if prog == "gan-train" else [str(Path(sys.executable).parent / prog)]
    return subprocess.run([*command, *args, f"hydra.run.dir={run_dir}"], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or run_dir.parent)


def read_metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def last_ckpt(run_dir: Path) -> dict:
    from gan_cli.checkpoint import load_checkpoint

    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


# Exact resume: the keys of a checkpoint that may differ between a run that never stopped and
# one that was stopped and resumed, each with the reason. Nothing else may differ.
RESUME_MAY_DIFFER = {
    "config.resume": "the resumed invocation's own resume= option (null in the straight run)",
}


def assert_same_checkpoint(a: dict, b: dict, may_differ: dict[str, str] = RESUME_MAY_DIFFER,
                           where: str = "") -> None:
    """Every tensor and value of two checkpoints (nested dicts, lists, tuples) is bitwise equal:
    the same keys, tensors of the same dtype, shape and values, the same numbers and strings.

    ``may_differ`` maps dotted paths (``config.resume``, ``opt_d.state.0.exp_avg``) to the
    reason they may differ; every other path is compared.
    """
    import torch

    if where in may_differ:
        return
    at = where or "<checkpoint>"
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), f"{at}: tensor vs {type(b).__name__}"
        assert a.dtype == b.dtype and a.shape == b.shape, f"{at}: {a.dtype} {tuple(a.shape)} vs " \
                                                          f"{b.dtype} {tuple(b.shape)}"
        assert torch.equal(a, b), f"{at}: values differ (max |a - b| " \
                                  f"{(a.double() - b.double()).abs().max().item():.3g})"
    elif isinstance(a, dict):
        assert isinstance(b, dict), f"{at}: dict vs {type(b).__name__}"
        assert a.keys() == b.keys(), f"{at}: keys {sorted(map(str, a.keys() ^ b.keys()))} in one only"
        for k in a:
            assert_same_checkpoint(a[k], b[k], may_differ, f"{where}.{k}" if where else str(k))
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{at}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_checkpoint(x, y, may_differ, f"{where}.{i}")
    else:
        both_nan = isinstance(a, float) and isinstance(b, float) and a != a and b != b
        assert type(a) is type(b) and (a == b or both_nan), f"{at}: {a!r} vs {b!r}"


def assert_resumed_exactly(straight: Path, resumed: Path) -> dict:
    """The last checkpoints of a run that never stopped and of a stopped-and-resumed run are
    the same in every tensor and value (``RESUME_MAY_DIFFER`` aside); returns the resumed one."""
    a, b = last_ckpt(straight), last_ckpt(resumed)
    assert_same_checkpoint(a, b)
    return b


def injected_env(tmp_path: Path, code: str) -> dict:
    """Environment that runs ``code`` at the start of every Python process of a CLI run (the
    command and its DDP workers), as a ``sitecustomize`` module: the tests' way to plant a
    fault (a NaN, a failing W&B call, a signal at a chosen step) in the real command."""
    hook = tmp_path / "inject"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": f"{hook}{os.pathsep}{REPO}"}


@pytest.fixture
def cli():
    return run_cli


# Runs that several test files read, trained once per session (per xdist worker)


@pytest.fixture(scope="session")
def fashion_dcgan_run(tmp_path_factory) -> Path:
    """The default experiment shrunk (tiny=images: DCGAN of width 8 on 256 Fashion-MNIST images),
    2 steps, each logged: test_train_images, test_eval_cli and test_probe read its directory."""
    if not HAVE_FASHION_MNIST:
        pytest.skip("needs Debian's dataset-fashion-mnist (make data)")
    run_dir = tmp_path_factory.mktemp("fashion_dcgan") / "run"
    proc = run_cli([*SMALL_IMAGES, "train.steps=2", "train.log_every_steps=1"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def fashion_cdcgan_run(tmp_path_factory) -> Path:
    """The class-conditional DCGAN (width 8) on 256 Fashion-MNIST images, 2 steps, each logged, its
    figure of 30 samples (3 a class): test_train_images, test_eval_cli and test_sample read it."""
    if not HAVE_FASHION_MNIST:
        pytest.skip("needs Debian's dataset-fashion-mnist (make data)")
    run_dir = tmp_path_factory.mktemp("fashion_cdcgan") / "run"
    proc = run_cli([*SMALL_IMAGES, "model=cdcgan", "model.generator.width=8",
                    "model.discriminator.width=8", "train.steps=2", "train.log_every_steps=1",
                    "train.figure_samples=30"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> Path:
    """A finished ``tiny=toy`` run (12 steps), trained once per session (per xdist worker) for the
    tests that read it or copy it; none may change it."""
    run_dir = tmp_path_factory.mktemp("toy") / "run"
    proc = run_cli(SMALL, run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def pytest_collection_modifyitems(config, items):
    """Modules with the most slow tests run first; tests marked gpu are skipped where no CUDA device
    is visible.

    The order is for pytest-xdist's work stealing (`make test`: --dist worksteal): each worker
    takes a contiguous half of the collection and an idle one steals the tail of the other's
    queue, so the long tests must not be left for the end, when one worker would run them alone.
    A module's tests stay together and in their order (their module-scoped fixtures run once)."""
    by_module: dict[str, list] = {}
    for item in items:
        by_module.setdefault(item.nodeid.split("::")[0], []).append(item)
    slow = {m: sum("slow" in it.keywords for it in its) for m, its in by_module.items()}
    items[:] = [it for m in sorted(by_module, key=lambda m: -slow[m]) for it in by_module[m]]
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
