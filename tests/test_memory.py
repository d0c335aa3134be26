"""Peak memory of the training process (gan_cli/training/memory.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan_cli.training.memory import describe_peak, peak_memory


def test_peak_rss_counts_a_touched_allocation_in_mib():
    before = peak_memory(torch.device("cpu"))["peak_rss_mib"]
    block = torch.ones(256 * 2**20 // 4)  # 256 MiB of float32, written (resident)
    after = peak_memory(torch.device("cpu"))
    del block
    assert set(after) == {"peak_rss_mib"}  # no CUDA key on the CPU
    # the maximum RSS never falls, and covers the block on top of what was resident before it
    # (a peak before the block that was higher than before + 256 MiB would also pass: never lower)
    assert after["peak_rss_mib"] >= max(before, 256)
    # the kernel's own figure for the same peak (Linux: VmHWM in /proc/self/status, kB)
    status = Path("/proc/self/status")
    if status.exists():
        hwm_kib = next(int(line.split()[1]) for line in status.read_text().splitlines()
                       if line.startswith("VmHWM:"))
        assert after["peak_rss_mib"] == pytest.approx(hwm_kib / 1024, abs=1.0)


def test_describe_peak():
    assert describe_peak({"peak_rss_mib": 1234.4}) == "peak memory: RSS 1,234 MiB"
    assert describe_peak({"peak_rss_mib": 812.0, "cuda_max_allocated_mib": 2048.6}) == (
        "peak memory: RSS 812 MiB, CUDA max allocated 2,049 MiB")
