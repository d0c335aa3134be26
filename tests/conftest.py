"""Shared fixtures: the real CLI in a subprocess, and the real config composed in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GAN_TRAIN = [sys.executable, "-m", "gan_cli.cli"]
# conf/tiny/: a few seconds on a CPU, the same settings a user gets with `gan-train tiny=toy`.
SMALL = ["tiny=toy"]  # the MLP on ring8, 12 steps of batch 32, no W&B, no metrics, one thread
SMALL_IMAGES = ["tiny=images"]  # a narrow DCGAN on 256 real Fashion-MNIST images


def run_cli(args: list[str], run_dir: Path, *, timeout: float = 300, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``gan-train`` with ``args`` into ``run_dir``; return the finished process."""
    # PYTHONPATH: the subprocess imports this checkout's gan_cli, whatever is installed
    full_env = {**os.environ, "WANDB_SILENT": "true", "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([*GAN_TRAIN, *args, f"hydra.run.dir={run_dir}"], capture_output=True,
                          text=True, timeout=timeout, env=full_env, cwd=cwd or run_dir.parent)


def read_metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def cli():
    return run_cli


def pytest_collection_modifyitems(config, items):
    """Tests marked gpu are skipped where no CUDA device is visible."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
