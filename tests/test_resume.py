"""Exact resume through the real CLI, compared on the WHOLE checkpoint (tests/conftest.py's
``assert_same_checkpoint``): streamed data with a penalty loss, in-training metrics with an EMA
of G, compatible new options on resume, and the metrics.jsonl records a resume drops.

What these tests pin down is described for users in docs/reliability.md ("How to resume").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import (
    SMALL,
    SMALL_IMAGES,
    assert_resumed_exactly,
    last_ckpt,
    needs_fashion_mnist,
    read_metrics,
    run_cli,
)


def ok(args: list[str], run_dir: Path, env: dict | None = None) -> None:
    proc = run_cli(args, run_dir, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def same_records(a: list[dict], b: list[dict]) -> None:
    """metrics.jsonl of two runs: the same steps and the same values, speed and memory aside."""
    measured = ("imgs_per_s", "peak_rss_mib", "cuda_max_allocated_mib")
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b, strict=True):  # memory: in each session's last record (a resumed run's too)
        assert {k: v for k, v in ra.items() if k not in measured} == {
            k: v for k, v in rb.items() if k not in measured}, ra["step"]
    assert "peak_rss_mib" in a[-1] and "peak_rss_mib" in b[-1]


@pytest.mark.slow  # three runs of the image CLI: about 40 s on one shared CPU thread
@needs_fashion_mnist
def test_streamed_data_with_a_gradient_penalty_resumes_exactly(tmp_path: Path):
    """Streamed data (a DataLoader) with WGAN-GP: 12 steps straight == 6 + resume=auto + 6 in
    every tensor and value of the checkpoint. The DataLoader must not draw from the global torch
    RNG when its iterator is created (the interpolation draws come from that stream), and the
    data position must cross the epoch boundary (256 images, batch 32, 5 critic steps: an epoch
    every 1.6 generator steps)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    base = [*SMALL_IMAGES, "dataset.in_memory=false", "loss=wgan_gp", "seed=7",
            "train.ckpt_every_steps=6", "train.log_every_steps=3"]  # intervals end at the split
    ok([*base, "train.steps=12"], straight)
    ok([*base, "train.steps=6"], split)
    assert last_ckpt(split)["data"]["kind"] == "loader"  # streamed, not one tensor in memory
    ok([*base, "train.steps=12", "resume=auto"], split)
    assert "resumed from" in (split / "train.log").read_text()
    state = assert_resumed_exactly(straight, split)
    assert state["step"] == 12 and state["data"]["epoch"] == (12 * 5) // (256 // 32)
    same_records(read_metrics(straight), read_metrics(split))


@pytest.mark.slow  # four runs
def test_metrics_and_ema_resume_exactly(tmp_path: Path):
    """In-training metrics every 3 steps and an EMA of G: the best metric with its step, G_ema,
    nimg and every RNG come back, and the metrics logged after the resume are the ones the run
    that never stopped logged (the same samples were drawn for them). Modes of std 0.5 (not
    0.02): after a few steps some samples are within 3 std of a mode, so the mode metrics
    depend on which latents were drawn."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    args = [a for a in SMALL if not a.startswith("metrics.")]
    base = [*args, "loss=wgan_gp", "dataset.std=0.5", "ema.half_life_kimg=0.1",
            "metrics.every_steps=3", "train.ckpt_every_steps=6"]
    env = {"GAN_CLI_CACHE": str(tmp_path / "cache")}
    ok([*base, "train.steps=12"], straight, env)
    ok([*base, "train.steps=6"], split, env)
    # a copy of the step-6 checkpoint whose best modes_captured (8 of 8, at step 3) no later
    # evaluation of this short run can beat: the resumed run must keep it
    edited = last_ckpt(split)
    edited["metrics"]["best"]["modes_captured"] = [8.0, 3]
    torch.save(edited, tmp_path / "edited.pt")
    ok([f"resume={split}", "train.steps=12"], split, env)
    state = assert_resumed_exactly(straight, split)
    assert "G_ema" in state and state["metrics"]["best"], state["metrics"]
    assert state["nimg"] == 12 * 32 * 5
    evals = [r for r in read_metrics(split) if "modes_captured" in r]
    assert [r["step"] for r in evals] == [3, 6, 9, 12]
    assert evals[-1]["high_quality_fraction"] > 0  # the metrics after the resume saw samples
    same_records(read_metrics(straight), read_metrics(split))

    restored = tmp_path / "restored"
    ok([*base, "train.steps=12", f"resume={tmp_path / 'edited.pt'}"], restored, env)
    evals = [r for r in read_metrics(restored) if "modes_captured" in r]
    assert [r["step"] for r in evals] == [9, 12] and evals[-1]["modes_captured"] < 8
    assert all((r["best/modes_captured"], r["best/modes_captured_step"]) == (8.0, 3)
               for r in evals)
    assert last_ckpt(restored)["metrics"]["best"]["modes_captured"] == [8.0, 3]


@pytest.mark.slow  # three short runs
def test_resume_with_compatible_new_options_uses_the_new_settings(tmp_path: Path):
    """A resume with another learning rate warns, keeps the optimizer's state (Adam's moments
    and step counts) from the checkpoint and trains with the new rate (docs/reliability.md)."""
    first = tmp_path / "first"
    base = [*SMALL, "loss=ns", "optimizer.lr_d=2e-4", "train.ckpt_every_steps=6"]
    ok([*base, "train.steps=6"], first)
    ckpt = first / "checkpoints" / "step_00000006.pt"
    runs = {}
    for lr in ("2e-4", "1e-4"):
        run_dir = tmp_path / f"lr{lr}"
        proc = run_cli([*base, "train.steps=12", f"optimizer.lr_d={lr}", f"resume={ckpt}"],
                       run_dir)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[lr] = last_ckpt(run_dir)
        log_text = (run_dir / "train.log").read_text()
        differs = "options that differ from the checkpoint's" in log_text
        assert differs == (lr == "1e-4"), log_text[-2000:]
    new = runs["1e-4"]
    assert "optimizer.lr_d: checkpoint 0.0002, now 0.0001" in (tmp_path / "lr1e-4" /
                                                               "train.log").read_text()
    assert [g["lr"] for g in new["opt_d"]["param_groups"]] == [1e-4]
    assert [g["lr"] for g in new["opt_g"]["param_groups"]] == [runs["2e-4"]["opt_g"][
        "param_groups"][0]["lr"]]
    # the moments continued: 12 discriminator updates in all, not 6 since the resume
    assert all(int(s["step"]) == 12 for s in new["opt_d"]["state"].values())
    # and the new rate was used: D differs from the resume at the old rate, G's updates too
    assert any(not bool((new["D"][k] == runs["2e-4"]["D"][k]).all()) for k in new["D"])


@pytest.mark.slow  # two short runs
def test_resume_drops_the_records_logged_after_its_checkpoint(tmp_path: Path):
    """A run resumed in place from an earlier checkpoint: the records logged after that
    checkpoint are dropped, then logged again by the resumed run, once each and with the same
    values (the resume is exact)."""
    run_dir = tmp_path / "run"
    base = [*SMALL, "train.log_every_steps=2", "train.ckpt_every_steps=6", "train.keep_ckpts=3"]
    ok([*base, "train.steps=12"], run_dir)
    before = read_metrics(run_dir)
    assert [r["step"] for r in before] == [2, 4, 6, 8, 10, 12]
    kept = tmp_path / "straight"
    shutil.copytree(run_dir, kept)
    ok([*base, "train.steps=12", f"resume={run_dir / 'checkpoints' / 'step_00000006.pt'}"],
       run_dir)
    log_text = (run_dir / "train.log").read_text()
    assert "dropped the records logged after step 6" in log_text
    after = read_metrics(run_dir)
    same_records(before, after)
    assert_resumed_exactly(kept, run_dir)
