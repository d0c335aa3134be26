"""Peak memory of the training process, for the run's last record and console line."""

from __future__ import annotations

import resource
import sys

import torch

MIB = 2**20


def peak_memory(device: torch.device) -> dict[str, float]:
    """This process's peak memory so far, in MiB: ``peak_rss_mib`` (the maximum resident set size,
    ``resource.getrusage``), and ``cuda_max_allocated_mib`` (``torch.cuda.max_memory_allocated``
    on ``device``) when ``device`` is a CUDA device."""
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    peak = {"peak_rss_mib": max_rss / (MIB if sys.platform == "darwin" else 1024)}
    if device.type == "cuda":
        peak["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(device) / MIB
    return peak


def describe_peak(peak: dict[str, float]) -> str:
    """The console line of :func:`peak_memory`'s dict, e.g. ``peak memory: RSS 812 MiB``."""
    text = f"peak memory: RSS {peak['peak_rss_mib']:,.0f} MiB"
    if "cuda_max_allocated_mib" in peak:
        text += f", CUDA max allocated {peak['cuda_max_allocated_mib']:,.0f} MiB"
    return text
