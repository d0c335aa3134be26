"""DDP through the real CLI on CPU (gloo): gan-train's own workers and torchrun's, 2 ranks each.

The DDP runs take 20-40 s on a 2-core machine (every rank imports torch), so they are marked slow;
the checks that end before any worker starts are slow too when they run gan-train itself (a process
of its own per DDP case, or a short training run: 2-6 s each in the whole suite).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_cli.checkpoint import load_checkpoint
from gan_cli.launch import Ranks, _export_slurm_rendezvous, _slurm_master_addr, env_ranks
from tests.conftest import (
    GAN_TRAIN,
    REPO,
    SMALL,
    SMALL_IMAGES,
    injected_env,
    needs_fashion_mnist,
    read_metrics,
    run_cli,
)

DDP_CPU = ["hardware=ddp", "hardware.device=cpu", "hardware.devices=2", "hardware.num_threads=1"]


def _nets(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def _assert_same_weights(a: dict, b: dict) -> None:
    for net in ("G", "D"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            torch.testing.assert_close(a[net][k], b[net][k], msg=f"{net}.{k}")


# ---------------------------------------------------------------------------------------------
# Two ranks started by gan-train itself.


SPECTRAL_EMA = ["model.discriminator.spectral_norm=true", "model.generator.spectral_norm=true",
                "ema.half_life_kimg=0.2"]


@pytest.mark.slow
@pytest.mark.parametrize("loss,extra", [("ns", []), ("began", []), ("hinge", SPECTRAL_EMA)],
                         ids=["ns", "began", "hinge-spectral_norm-ema"])
def test_two_cpu_ranks_equal_one_process_with_the_same_global_batch(tmp_path: Path, loss: str,
                                                                    extra: list):
    """Each rank keeps its strided share of the global batch of data and noise, and DDP averages
    the gradients, so 2 ranks train (to float tolerance) the weights 1 process trains; BEGAN's
    k_t follows the rank-averaged losses and so stays equal too. The MLP has no batch norm.
    With spectral norm, the power iteration's u and v (buffers, broadcast from rank 0 at every
    forward) and the EMA of G match the single process too."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    args = [*SMALL, f"loss={loss}", "seed=5", *extra]
    proc = run_cli(args, single)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli([*args, *DDP_CPU], ddp)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # every rank ended with bitwise the same parameters and loss state (checked across ranks
    # by the run itself, which fails otherwise)
    log_text = (ddp / "train.log").read_text()
    assert "bitwise identical on all 2 ranks" in log_text
    # rank 0 alone wrote: one metrics file with one record per logging step
    assert [r["step"] for r in read_metrics(ddp)] == [4, 8, 12]

    a, b = _nets(single), _nets(ddp)
    _assert_same_weights(a, b)
    if extra:
        assert any(k.endswith("parametrizations.weight.original") for k in b["D"])
        assert any(k.endswith("_u") for k in b["D"])  # compared above with the weights
        for k in a["G_ema"]:
            torch.testing.assert_close(a["G_ema"][k], b["G_ema"][k], msg=f"G_ema.{k}")
    if loss == "began":
        torch.testing.assert_close(a["loss"]["k_t"], b["loss"]["k_t"])
        assert float(b["loss"]["k_t"]) > 0
    for ra, rb in zip(read_metrics(single), read_metrics(ddp), strict=True):
        assert ra["loss_d"] == pytest.approx(rb["loss_d"], rel=1e-4, abs=1e-6)
        assert ra["loss_g"] == pytest.approx(rb["loss_g"], rel=1e-4, abs=1e-6)
    # the saved config has both batch figures: the global one and each rank's share
    assert b["config"]["train"]["batch_size"] == 32
    assert b["config"]["train"]["batch_per_device"] == 16
    assert a["config"]["train"]["batch_per_device"] is None  # single process: not derived


@pytest.mark.slow
def test_lazy_r1_under_ddp_equals_one_process_with_the_same_global_batch(tmp_path: Path):
    """Issue 26: R1 on every 4th D update (lazy: its own backward and optimizer step, D updates
    0, 4 and 8 of 12) under 2 gloo ranks. The regularisation step's gradients are averaged over
    the ranks like the loss's, so the ranks stay bitwise identical (the run checks it) and train
    the weights and Adam states one process trains on the same global batch; a parameter R1
    gives no gradient (D's last bias) is left out of the R1 steps on 2 ranks as on 1 (its Adam
    step count is 12, the others' 15)."""
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    args = [*SMALL, "loss=ns_r1", "loss.r1_gamma=1", "loss.r_interval=4", "seed=5"]
    proc = run_cli(args, single)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_cli([*args, *DDP_CPU], ddp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bitwise identical on all 2 ranks" in (ddp / "train.log").read_text()
    assert all("r1" in r for r in read_metrics(ddp))

    a, b = _nets(single), _nets(ddp)
    _assert_same_weights(a, b)
    steps = {int(s["step"]) for s in a["opt_d"]["state"].values()}
    assert steps == {12, 15}, steps  # 12 loss steps, and 3 R1 steps for the parameters R1 reaches
    for i, sa in a["opt_d"]["state"].items():
        sb = b["opt_d"]["state"][i]
        assert int(sa["step"]) == int(sb["step"]), f"opt_d.state.{i}.step"
        for k in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sa[k], sb[k], msg=f"opt_d.state.{i}.{k}")
    for ra, rb in zip(read_metrics(single), read_metrics(ddp), strict=True):
        assert ra["r1"] == pytest.approx(rb["r1"], rel=1e-4, abs=1e-7)


@pytest.mark.slow
def test_wgan_gp_double_backward_keeps_ranks_identical(tmp_path: Path):
    """The gradient penalty's autograd.grad(create_graph=True) runs inside DDP's D, default
    settings; the ranks still agree bitwise (the interpolation draws are per rank, so this run
    is not compared with a single process)."""
    run_dir = tmp_path / "ddp"
    proc = run_cli([*SMALL, "loss=wgan_gp", "train.steps=4", "train.log_every_steps=2",
                    *DDP_CPU], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bitwise identical on all 2 ranks" in (run_dir / "train.log").read_text()
    assert "gp" in read_metrics(run_dir)[-1]


# Every command of README.md and docs/scaling.md that starts DDP, as written but shortened (CPU,
# 2 gloo ranks, a few steps), and the defaults of each model family with a lazy regulariser or a
# second term on one network: each trains on 2 ranks and ends with identical replicas (issue 26).
QUICK = ["logger=none", "hardware.num_threads=1"]
QUICK_IMAGES = [*QUICK, "dataset.limit=64", "train.batch_size=16", "train.log_every_steps=1",
                "train.sample_every_steps=100", "train.ckpt_every_steps=100", "metrics.every_steps=0"]
DCGAN_NARROW = ["model.generator.width=8", "model.discriminator.width=8"]
STYLE_NARROW = ["model.z_dim=16", "model.generator.w_dim=16", "model.generator.channel_base=112",
                "model.generator.channel_max=16", "model.discriminator.channel_base=112",
                "model.discriminator.channel_max=16"]
ON_TWO_CPUS = {"hardware.device": "cpu", "hardware.devices": "2"}

# id: (the command as documented, what the test changes or adds, the statistics its terms log)
DDP_COMMANDS = {
    # docs/scaling.md, "DDP on CPU (gloo)": the 2D mixtures' recipe, lazy R1 every 16 D updates;
    # metrics at the last step as in the recipe
    "scaling-ring8": ("hardware=ddp hardware.device=cpu hardware.devices=2 dataset=ring8 model=mlp",
                      [*QUICK, "train.steps=20", "train.log_every_steps=10"], ["r1"]),
    # grid25's recipe (its own Adam betas) on the tuned MLP
    "grid25": ("hardware=ddp hardware.device=cpu hardware.devices=2 dataset=grid25 model=mlp",
               [*QUICK, "train.steps=20", "train.log_every_steps=10"], ["r1"]),
    # README, "More GPUs": the defaults (DCGAN on Fashion-MNIST), on 2 CPU processes
    "readme-defaults": ("hardware=ddp hardware.devices=4",
                        [*QUICK_IMAGES, *DCGAN_NARROW, "train.steps=2", ON_TWO_CPUS], []),
    # docs/scaling.md, "One machine, several GPUs": WGAN-GP's double backward on DCGAN; Fashion-MNIST
    # for CIFAR-10, which no package ships
    "scaling-wgan_gp": ("hardware=ddp hardware.devices=4 loss=wgan_gp model=dcgan dataset=cifar10",
                        [*QUICK_IMAGES, *DCGAN_NARROW, "train.steps=2", ON_TWO_CPUS,
                         {"dataset": "fashion_mnist"}], ["gp"]),
    # StyleGAN2: lazy R1 on D (every 16 D updates) and lazy path length on G (every 4 G updates)
    "stylegan2": ("experiment=stylegan2_fashion_cpu",
                  [*QUICK_IMAGES, *STYLE_NARROW, *DDP_CPU, "train.steps=5"], ["r1", "pl_length"]),
    # pix2pix: L1 on G's loss, a D conditioned on the input image
    "pix2pix": ("experiment=pix2pix_fashion",
                [*QUICK_IMAGES, *DCGAN_NARROW, *DDP_CPU, "train.steps=2"], ["l1"]),
    # InfoGAN's architecture (Lucic et al.'s; no code head here), BatchNorm in both networks
    "infogan": ("model=infogan", [*QUICK_IMAGES, *DCGAN_NARROW, "model.generator.hidden=32",
                                  "model.discriminator.hidden=32", *DDP_CPU, "train.steps=2"], []),
}


@pytest.mark.slow
@needs_fashion_mnist
def test_lazy_r1_on_a_growing_discriminator_under_ddp(tmp_path: Path):
    """StyleGAN's growing D (DDP with find_unused_parameters) with R1 on every 3rd D update:
    stages of 2 steps (7 px: 0-1, fade-in to 14 px: 2-3, 14 px: 4-5), so the R1 update of step 3
    reaches the 7 px input layer that step 4 no longer uses. The lazy update must stay outside
    DDP's reducer entirely (a .backward() through the bare D still marks that layer used, and the
    next step failed: "gradient which is undefined, but still allreduced")."""
    run_dir = tmp_path / "run"
    args = ["experiment=stylegan_fashion_cpu", *QUICK_IMAGES, *STYLE_NARROW,
            "model.generator.mapping_layers=2", "model.schedule.training_kimg=0.032",
            "model.schedule.transition_kimg=0.032", "model.regularizers.r1.interval=3",
            "train.steps=6", *DDP_CPU]
    proc = run_cli(args, run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bitwise identical on all 2 ranks" in (run_dir / "train.log").read_text()
    assert sum("r1" in r for r in read_metrics(run_dir)) == 2  # steps 0 and 3


def _shortened(command: str, changes: list) -> list[str]:
    """``command``'s overrides with ``changes`` applied: a dict sets its keys (replacing the
    command's value: Hydra refuses a key given twice), a string is added."""
    args = dict(a.split("=", 1) for a in command.split())
    for change in changes:
        args.update(change if isinstance(change, dict) else dict([change.split("=", 1)]))
    return [f"{k}={v}" for k, v in args.items()]


@pytest.mark.slow
@needs_fashion_mnist
@pytest.mark.parametrize("name", list(DDP_COMMANDS))
def test_documented_ddp_commands_and_family_defaults_train_on_two_ranks(tmp_path: Path, name: str):
    command, changes, stats = DDP_COMMANDS[name]
    args = _shortened(command, changes)
    assert "hardware.devices=2" in args and "hardware.device=cpu" in args, args
    run_dir = tmp_path / "run"
    proc = run_cli(args, run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log_text = (run_dir / "train.log").read_text()
    assert "starting 2 DDP workers" in log_text
    assert "bitwise identical on all 2 ranks" in log_text
    records = read_metrics(run_dir)
    for key in stats:  # each term ran (a lazy one at least once: D update 0, G step 0)
        assert any(key in r for r in records), (key, records[-1].keys())


@pytest.mark.slow
def test_a_config_error_inside_the_workers_exits_2_with_its_message(tmp_path: Path):
    """Found only when the workers build the model: the parent exits with the workers' status."""
    proc = run_cli([*SMALL, *DDP_CPU, "model.generator.conditional=true"], tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "conditional model needs a dataset with labels" in proc.stderr
    assert "DDP worker rank" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_a_killed_rank_brings_the_job_down_promptly(tmp_path: Path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    args = [*SMALL, *DDP_CPU, "train.steps=1000000", "train.log_every_steps=1000000",
            "train.sample_every_steps=1000000", "train.ckpt_every_steps=1000000"]
    parent = subprocess.Popen([*GAN_TRAIN, *args, f"hydra.run.dir={run_dir}"], cwd=tmp_path,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        workers = _wait_for_workers(parent.pid, 2, run_dir, timeout=120)
        os.kill(workers[-1], signal.SIGKILL)
        t0 = time.monotonic()
        _, err = parent.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.returncode == 1, err[-3000:]
    assert "killed by signal 9" in err and "the other workers were stopped" in err
    print(f"job down {elapsed:.1f} s after SIGKILL of one rank")
    # a hang guard, not a speed figure: the survivors must not wait out a collective's timeout
    # (minutes); 31 s was seen on the 2-core machine under load, so the bound leaves room
    assert elapsed < 55
    for pid in workers:  # no orphan left behind
        assert not Path(f"/proc/{pid}").exists() or "Z" in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except OSError:
        return "gone"


def _wait_for_workers(ppid: int, n: int, run_dir: Path, timeout: float) -> list[int]:
    """The spawned workers of ``ppid``, once training has started (rank 0 logged its models)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = run_dir / "train.log"
        if log.exists() and "parameters" in log.read_text():
            kids = []
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                    cmd = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat.split(")")[1].split()[1]) == ppid and b"spawn_main" in cmd:
                    kids.append(int(entry.name))
            if len(kids) >= n:
                return sorted(kids)
        time.sleep(0.5)
    raise AssertionError("the DDP workers did not start")


# BatchNorm under DDP: each rank normalises with its own share of the batch and keeps its own
# running statistics; the parameters stay identical (docs/scaling.md). A probe planted in every
# rank saves that rank's G and D state dicts where the run checks its replicas.
RANK_DUMP = """
import os
import torch
import torch.distributed as dist
from gan_cli.training import loop as _loop

_replica_state = _loop.replica_state

def _dumping(G, D, *rest):
    torch.save({"G": G.state_dict(), "D": D.state_dict()},
               os.path.join(os.environ["T19_DUMP"], f"rank{dist.get_rank()}.pt"))
    return _replica_state(G, D, *rest)

_loop.replica_state = _dumping
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs Debian's dataset-fashion-mnist (make data)")
def test_batchnorm_statistics_are_rank_local_and_parameters_identical(tmp_path: Path):
    """DCGAN (BatchNorm in G and D) on 256 Fashion-MNIST images, 2 gloo ranks: the running
    statistics differ between the ranks (each saw its own half of every batch), every parameter
    is bitwise the same on both, and the checkpoint holds rank 0's statistics."""
    run_dir, dumps = tmp_path / "ddp", tmp_path / "dumps"
    dumps.mkdir()
    env = injected_env(tmp_path, RANK_DUMP)
    env["T19_DUMP"] = str(dumps)
    proc = run_cli([*SMALL_IMAGES, "loss=ns", "train.steps=4", "train.log_every_steps=2",
                    *DDP_CPU], run_dir, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bitwise identical on all 2 ranks" in (run_dir / "train.log").read_text()
    ranks = [torch.load(dumps / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    ckpt = _nets(run_dir)
    for net in ("G", "D"):
        stats = [k for k in ranks[0][net] if k.endswith(("running_mean", "running_var"))]
        assert stats, f"{net} has no BatchNorm"
        for k in stats:  # rank-local statistics
            assert not torch.equal(ranks[0][net][k], ranks[1][net][k]), f"{net}.{k}"
            assert torch.equal(ckpt[net][k], ranks[0][net][k]), f"{net}.{k}"
        for k, v in ranks[0][net].items():  # identical parameters (and BN's step counters)
            if k not in stats:
                assert torch.equal(v, ranks[1][net][k]), f"{net}.{k}"


# What check_replicas (gan_cli/distributed.py) is fed in each of 2 gloo processes: the same
# tensors, then tensors that differ on rank 1 in one value by one float32 ulp.
_REPLICAS = """
import sys
import torch
import torch.distributed as dist
from gan_cli.distributed import check_replicas
from gan_cli.errors import RuntimeFailure

rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=rank, world_size=2)
same = {"G.w": torch.arange(6.0).reshape(2, 3), "D.b": torch.ones(4), "loss.k_t": torch.tensor(0.5)}
print("ranks", check_replicas(same), flush=True)
bias = torch.ones(4)
if rank == 1:
    bias[2] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))
try:
    check_replicas({**same, "D.b": bias})
    print("no error", flush=True)
except RuntimeFailure as e:
    print("error:", e, flush=True)
dist.destroy_process_group()
"""


@pytest.mark.slow  # two processes that import torch: about 25 s on a shared CPU
def test_check_replicas_names_the_tensors_that_differ(tmp_path: Path):
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _REPLICAS, str(rank), str(store)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for rank in (0, 1)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
        lines = out.splitlines()
        assert lines[0] == "ranks 2"  # equal replicas: the number of ranks
        assert lines[1] == ("error: the DDP replicas disagree after training in 1 tensor(s), "
                            "e.g. D.b: please report this bug")


# ---------------------------------------------------------------------------------------------
# Two nodes simulated with torchrun on localhost.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_nodes_on_localhost(tmp_path: Path):
    """Two torchrun agents (--nnodes=2, c10d rendezvous on 127.0.0.1), one rank each. Rank 0
    alone runs Hydra and hands the resolved config and its run directory to rank 1: one run
    directory, whatever the timestamps."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    args = [a for a in SMALL if not a.startswith("hardware.")] + ["hardware=cpu",
                                                                  "hardware.num_threads=1"]
    procs = []
    for node_rank in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2",
               "--nproc-per-node=1", f"--node-rank={node_rank}", "--rdzv-backend=c10d",
               f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=gan-cli-test",
               "--max-restarts=0", "-m", "gan_cli.cli", *args]
        procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    run_dirs = [p.parent for p in (tmp_path / "outputs").glob("*/*/.hydra")]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    assert "bitwise identical on all 2 ranks" in (run_dir / "train.log").read_text()
    ckpt = _nets(run_dir)
    assert ckpt["step"] == 12 and ckpt["config"]["train"]["batch_per_device"] == 16
    assert [r["step"] for r in read_metrics(run_dir)] == [4, 8, 12]


@pytest.mark.slow
def test_a_failing_torchrun_rank_exits_with_gan_trains_status(tmp_path: Path):
    """Under torchrun each rank that fails exits with gan-train's own status (2 for a
    configuration error found when the model is built) and prints its message; torchrun
    stops the job, prints its failure summary with that status and exits 1 itself."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    args = [a for a in SMALL if not a.startswith("hardware.")] + [
        "hardware=cpu", "hardware.num_threads=1", "model.generator.conditional=true"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2",
           "--max-restarts=0", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{_free_port()}",
           "-m", "gan_cli.cli", *args]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]  # torchrun's own status
    err = proc.stderr
    assert "gan-train: error:" in err and "conditional model needs a dataset with labels" in err
    assert "gan_cli.cli FAILED" in err  # torchrun's summary ...
    assert "exitcode  : 2" in err  # ... with the rank's status
    assert "exitcode  : 1" not in err


# ---------------------------------------------------------------------------------------------
# Checked before any worker starts (fast).


@pytest.mark.parametrize("extra,needle", [
    (["hardware.sync_batchnorm=true"], "SyncBatchNorm supports CUDA GPUs only"),
    (["hardware.backend=nccl"], "nccl runs on CUDA GPUs only"),
    (["hardware.devices=3"], "must be divisible by the number of processes (3)"),
    (["train.batch_per_device=8"],
     "train.batch_per_device=8 x 2 process(es) != train.batch_size=32"),
    (["hardware.nodes=2"], "torchrun on each node or use SLURM"),
])
@pytest.mark.slow
def test_impossible_ddp_settings_exit_2_before_starting_workers(tmp_path: Path, extra, needle):
    proc = run_cli([*SMALL, *DDP_CPU, *extra], tmp_path / "run")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert needle in proc.stderr
    assert "starting 2 DDP workers" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_batch_per_device_checked_on_one_process_too(tmp_path: Path):
    proc = run_cli([*SMALL, "train.batch_per_device=16"], tmp_path / "run")
    assert proc.returncode == 2 and "train.batch_per_device=16" in proc.stderr
    assert run_cli([*SMALL, "train.steps=2", "train.batch_per_device=32"],
                   tmp_path / "ok").returncode == 0


def test_ranks_from_torchrun_and_slurm_environments():
    assert env_ranks({}) is None
    r = env_ranks({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"})
    assert (r.rank, r.world_size, r.local_rank, r.local_world_size, r.source) == (
        3, 8, 1, 4, "torchrun")
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
             "SLURM_STEP_ID": "0", "SLURM_NTASKS_PER_NODE": "4(x2)", "SLURM_JOB_NUM_NODES": "2"}
    r = env_ranks(slurm)
    assert (r.rank, r.world_size, r.local_rank, r.local_world_size, r.source) == (
        5, 8, 1, 4, "slurm")
    # a batch script (no srun step) is one process, whatever the allocation's task count
    assert env_ranks({k: v for k, v in slurm.items() if k != "SLURM_STEP_ID"}) is None


def test_slurm_rendezvous_port_derived_from_the_job_id(monkeypatch):
    """MASTER_PORT = 20000 + job id mod 20000 (the same on every task of a job), MASTER_ADDR the
    first node, and the ranks exported for torch.distributed; a port already set is kept."""
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK",
                "LOCAL_WORLD_SIZE"):
        # set, then deleted: monkeypatch records the key and removes what the code under test
        # exports (a bare delenv of an absent key records nothing, and the exported ranks leaked
        # into every later subprocess of this pytest worker: gan-eval waited for rank 0 of 8)
        monkeypatch.setenv(key, "unset")
        monkeypatch.delenv(key)
    monkeypatch.setenv("PATH", "/nonexistent")  # no scontrol: the node list is parsed here
    monkeypatch.setenv("SLURM_JOB_ID", "135791")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[07-09]")
    _export_slurm_rendezvous(Ranks(5, 8, 1, 4, "slurm"))
    assert os.environ["MASTER_PORT"] == "35791"  # 20000 + 135791 % 20000 = 20000 + 15791
    assert os.environ["MASTER_ADDR"] == "gpu07"
    assert (os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"],
            os.environ["LOCAL_WORLD_SIZE"]) == ("5", "8", "1", "4")
    for job, port in (("40000", "20000"), ("59999", "39999")):  # the range's two ends
        monkeypatch.setenv("SLURM_JOB_ID", job)
        monkeypatch.delenv("MASTER_PORT")
        _export_slurm_rendezvous(Ranks(0, 8, 0, 4, "slurm"))
        assert os.environ["MASTER_PORT"] == port
    monkeypatch.setenv("MASTER_PORT", "29500")  # set by the user: kept
    _export_slurm_rendezvous(Ranks(0, 8, 0, 4, "slurm"))
    assert os.environ["MASTER_PORT"] == "29500"


def test_slurm_master_address_is_the_first_node():
    # scontrol is absent here: the fallback parser reads the first host
    assert _slurm_master_addr("gpu[03-05,07],cpu1") in ("gpu03",)
    assert _slurm_master_addr("node7") == "node7"
