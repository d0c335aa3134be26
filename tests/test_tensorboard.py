"""logger=tensorboard and logger=wandb_tensorboard: the events, read back with TensorBoard's own
reader, hold the losses, the metrics and the sample figures (the 2D view's frames)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SMALL, read_metrics, run_cli


def read_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


@pytest.mark.parametrize("logger", ["tensorboard", "wandb_tensorboard"])
@pytest.mark.slow
def test_tensorboard_events_hold_the_losses_and_figures(tmp_path: Path, logger: str):
    run_dir = tmp_path / "run"
    args = [a for a in SMALL if not a.startswith("logger=")]
    proc = run_cli([*args, f"logger={logger}", "train.sample_every_steps=6"], run_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = read_events(run_dir / "tensorboard")
    tags = events.Tags()
    records = read_metrics(run_dir)
    for key in ("loss_d", "loss_g", "kimg", "imgs_per_s"):
        assert key in tags["scalars"], tags
        scalars = events.Scalars(key)
        assert [s.step for s in scalars] == [r["step"] for r in records]
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in records], rel=1e-6)
    assert "samples" in tags["images"]
    assert [im.step for im in events.Images("samples")] == [6, 12]  # the 2D view's frames
    assert events.Images("samples")[-1].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    if logger == "wandb_tensorboard":
        assert len(sorted((run_dir / "wandb").glob("offline-run-*"))) == 1
    else:
        assert not (run_dir / "wandb").exists()
