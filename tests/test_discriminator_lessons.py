"""The seeds' discriminator lessons (shared/seeds/001 and 003): G against a frozen D
(``optimizer.lr_d=0``) and D retrained from scratch at given steps (``train.reset_d_at``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gan_cli.seeding import derive_seed
from gan_cli.training.reset import DiscriminatorReset
from tests.conftest import SMALL, assert_resumed_exactly, last_ckpt, run_cli


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_lr_d_zero_keeps_d_fixed_while_g_trains(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli([*SMALL, "optimizer.lr_d=0", "train.ckpt_every_steps=6"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from gan_cli.checkpoint import load_checkpoint

    at6 = load_checkpoint(run_dir / "checkpoints" / "step_00000006.pt")
    at12 = last_ckpt(run_dir)
    assert _same(at6["D"], at12["D"])  # D never moved
    assert not _same(at6["G"], at12["G"])  # G did


def test_reset_gives_the_seeded_fresh_weights_and_leaves_the_streams_alone():
    torch.manual_seed(1)

    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))

    D = build()
    opt = torch.optim.Adam(D.parameters())
    D(torch.randn(3, 2)).sum().backward()
    opt.step()
    pair = SimpleNamespace(D=D, opt_d=opt)
    tensors = [p for p in D.parameters()]
    reset = DiscriminatorReset([5, 9], seed=7, rebuild=lambda p: build())
    before = torch.random.get_rng_state()
    assert not reset(pair, 4) and opt.state  # not a reset step: nothing changes
    assert reset(pair, 5)
    assert torch.equal(torch.random.get_rng_state(), before)  # the training's stream untouched
    torch.manual_seed(derive_seed(7, "reset_d", 5))
    assert _same(D.state_dict(), build().state_dict())  # as built from the step's own seed
    assert [p for p in D.parameters()] == tensors  # the same tensors (what DDP holds)
    assert not opt.state  # the old D's Adam moments forgotten


@pytest.mark.slow
def test_reset_d_at_is_exact_under_resume(tmp_path: Path, toy_run: Path):
    """A reset at step 8, in a run resumed from step 6, gives the straight run's weights."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = [*SMALL, "train.ckpt_every_steps=6", "train.reset_d_at=[4,8]"]
    assert run_cli([*base, "train.steps=12"], straight).returncode == 0
    assert run_cli([*base, "train.steps=6"], split).returncode == 0
    proc = run_cli([*base, "train.steps=12", "resume=auto"], split)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_resumed_exactly(straight, split)
    assert "D starts again from scratch at step 8" in proc.stdout + proc.stderr
    no_reset = toy_run  # the same run without train.reset_d_at (tiny=toy checkpoints every 6 steps)
    assert not _same(last_ckpt(no_reset)["D"], last_ckpt(straight)["D"])  # the resets did happen


@pytest.mark.slow  # 2 gloo ranks: three processes that import torch
def test_reset_d_at_under_ddp_keeps_ranks_identical_and_equals_one_process(tmp_path: Path):
    from tests.test_distributed import DDP_CPU, _assert_same_weights, _nets

    single, ddp = tmp_path / "single", tmp_path / "ddp"
    args = [*SMALL, "train.reset_d_at=[4,8]", "seed=5"]
    assert run_cli(args, single).returncode == 0
    proc = run_cli([*args, *DDP_CPU], ddp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bitwise identical on all 2 ranks" in (ddp / "train.log").read_text()
    _assert_same_weights(_nets(single), _nets(ddp))  # the same fresh D on every rank as alone
